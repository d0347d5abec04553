import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { ComputeManagementClient, type VirtualMachine } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import { ResourceManagementClient } from '@azure/arm-resources';
import { ClientSecretCredential } from '@azure/identity';
import type { Sandbox } from '../sandbox/index.js';
import { InputError } from '../src/errors.js';
import type { MachineRequest } from '../src/clouds/types.js';
import { useSandbox } from './support/sandbox.js';
import { attemptLaunch, cleanupRunOf, cloudFor, settle, specFor, until } from './helpers.js';

/**
 * Azure as it sells today, through the real SDK clients: retired and restricted sizes, resource
 * SKUs, the security type a VM gets, the A10 partitions and their driver, and OS disk sizes.
 */

const sandbox = useSandbox();
let sb: Sandbox;
/** With its own images, the launcher also reads them: the actions the README adds to its role for that. */
const IMAGE_READS = [
  'Microsoft.Compute/images/read',
  'Microsoft.Compute/galleries/images/read',
  'Microsoft.Compute/galleries/images/versions/read',
];
let launcherActions: string[] = [];
beforeAll(() => {
  sb = sandbox();
  const role = sb.azure.roleDefinition('cml-runner-action launcher');
  launcherActions = [...role.actions];
  role.actions = [...launcherActions, ...IMAGE_READS];
});
afterAll(() => {
  sb.azure.roleDefinition('cml-runner-action launcher').actions = launcherActions;
});

const base = { cloud: 'azure', region: 'eastus' };
const DSVM = 'microsoft-dsvm:ubuntu-hpc:2204:latest';
const imagesGroup = () => `/subscriptions/${sb.env.AZURE_SUBSCRIPTION_ID}/resourceGroups/sandbox-images`;
const GRID = () => `${imagesGroup()}/providers/Microsoft.Compute/galleries/sandboxgallery/images/ubuntu-grid`;
const MANAGED = () => `${imagesGroup()}/providers/Microsoft.Compute/images/ubuntu-cuda-100g`;
const vmOf = (group: string) => sb.azure.vms().findLast((v) => v.group === group)!;
const vmBody = (group: string) => (vmOf(group) as unknown as { body: { properties: VirtualMachine } }).body.properties;
const creates = () => sb.azure.calls.filter((c) => c.op === 'virtualMachines.createOrUpdate');

function clients() {
  const cred = new ClientSecretCredential(
    sb.env.AZURE_TENANT_ID!,
    sb.env.AZURE_CLIENT_ID!,
    sb.env.AZURE_CLIENT_SECRET!,
    { authorityHost: sb.env.AZURE_AUTHORITY_HOST!, disableInstanceDiscovery: true },
  );
  const endpoint = sb.env.AZURE_RESOURCE_MANAGER_ENDPOINT!;
  const options = { endpoint, credentials: { scopes: [`${endpoint}/.default`] }, retryOptions: { maxRetries: 0 } };
  const sub = sb.env.AZURE_SUBSCRIPTION_ID!;
  return {
    compute: new ComputeManagementClient(cred, sub, options),
    network: new NetworkManagementClient(cred, sub, options),
    resources: new ResourceManagementClient(cred, sub, options),
  };
}

const POLL = { updateIntervalInMs: 5 };

/** A VM PUT as a client sends it, without the product: its group and network first. */
async function rawVm(group: string, vm: Partial<VirtualMachine>): Promise<unknown> {
  const c = clients();
  const location = 'eastus';
  await c.resources.resourceGroups.createOrUpdate(group, { location });
  const vnet = await c.network.virtualNetworks.createOrUpdate(
    group,
    'vnet',
    {
      location,
      addressSpace: { addressPrefixes: ['10.0.0.0/24'] },
      subnets: [{ name: 's', addressPrefix: '10.0.0.0/24' }],
    },
    POLL,
  );
  const nic = await c.network.networkInterfaces.createOrUpdate(
    group,
    'nic',
    { location, ipConfigurations: [{ name: 'p', subnet: { id: vnet.subnets?.[0]?.id } }] },
    POLL,
  );
  try {
    return await c.compute.virtualMachines.createOrUpdate(
      group,
      'runner',
      {
        location,
        hardwareProfile: { vmSize: 'Standard_D2s_v5' },
        storageProfile: {
          imageReference: { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' },
          osDisk: { createOption: 'FromImage', deleteOption: 'Delete' },
        },
        osProfile: {
          computerName: 'runner',
          adminUsername: 'runner',
          customData: Buffer.from('nvidia-smi -L; echo "nvidia-smi exit $?"').toString('base64'),
          linuxConfiguration: {
            disablePasswordAuthentication: true,
            ssh: { publicKeys: [{ path: '/home/runner/.ssh/authorized_keys', keyData: 'ssh-ed25519 AAAAC3Nza sb' }] },
          },
        },
        networkProfile: { networkInterfaces: [{ id: nic.id, primary: true }] },
        ...vm,
      },
      POLL,
    );
  } catch (err) {
    return err;
  }
}

const dropGroup = (group: string) => clients().resources.resourceGroups.delete(group, POLL);

describe('retired sizes', () => {
  test('gpu: v100 is refused as an input, naming what to use; a native NCv3 size too; nothing is created', async () => {
    const before = sb.azure.groups().length;
    const refusal = (inputs: Record<string, string>): Error => {
      try {
        specFor(sb, inputs);
      } catch (err) {
        return err as Error;
      }
      throw new Error('expected an input error');
    };
    const generic = refusal({ ...base, gpu: 'v100', type: 's' });
    expect(generic).toBeInstanceOf(InputError);
    expect(generic.message).toMatch(/^Input 'gpu' has an invalid value "v100": .*retired.*t4.*a100/);
    const native = refusal({ ...base, type: 'Standard_NC24rs_v3' });
    expect(native).toBeInstanceOf(InputError);
    expect(native.message).toMatch(/^Input 'type' has an invalid value "Standard_NC24rs_v3": .*retired/);
    expect(sb.azure.groups()).toHaveLength(before);
  });

  test('the fake: NCv3 is absent from resource SKUs, and a create with it is InvalidParameter', async () => {
    const names: string[] = [];
    for await (const s of clients().compute.resourceSkus.list()) names.push(s.name ?? '');
    // Every region, over several pages (nextLink).
    expect(names.length).toBeGreaterThan(40);
    expect(names.filter((n) => /_v3$/.test(n) && /^Standard_NC\d+r?s_v3$/.test(n))).toEqual([]);
    const err = (await rawVm('cml-fid-ncv3', { hardwareProfile: { vmSize: 'Standard_NC6s_v3' } })) as {
      statusCode?: number;
      code?: string;
      message: string;
    };
    expect(err).toMatchObject({ statusCode: 400, code: 'InvalidParameter' });
    expect(err.message).toMatch(/^The requested VM size Standard_NC6s_v3 is not available in the current region/);
    await dropGroup('cml-fid-ncv3');
  });
});

describe('sizes the subscription may use here (resource SKUs)', () => {
  test('restricted sizes are left out of the fallback order: only the usable one is tried', async () => {
    const { result, error } = await attemptLaunch(sb, {
      ...base,
      type: 'Standard_NC80adis_H100_v5,Standard_NC96ads_A100_v4,Standard_NC4as_T4_v3',
      labels: 'cml-skus',
    });
    expect(error).toBeUndefined();
    expect(result!.runners[0]!.tried.map((t) => [t.type, t.outcome])).toEqual([['Standard_NC4as_T4_v3', 'obtained']]);
    expect(creates().filter((c) => /H100|A100/.test(c.params?.vmSize ?? ''))).toEqual([]);
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });

  test('no usable size here fails at once, naming the regions that offer it, and creates nothing', async () => {
    const before = sb.azure.groups().length;
    const { error } = await attemptLaunch(sb, { ...base, type: 'Standard_NV36adms_A10_v5' });
    expect(error?.message).toMatch(/^Azure refused with SkuNotAvailable: Standard_NV36adms_A10_v5: not offered/);
    expect(error?.message).toContain('is offered in southcentralus, westeurope');
    expect(sb.azure.groups()).toHaveLength(before);
  });

  test('the SKU list and the image look-up run side by side', async () => {
    sb.faults.add({ service: 'azure', action: 'resourceSkus.list .*', delayMs: 1500, times: 1 });
    const cloud = await cloudFor(sb, 'azure', 'eastus');
    const from = sb.azure.calls.length;
    await cloud.prepare(specFor(sb, { ...base, type: 's' }).machine);
    const calls = sb.azure.calls.slice(from);
    const skus = calls.find((c) => c.op === 'resourceSkus.list')!;
    const image = calls.find((c) => c.op === 'virtualMachineImages.list')!;
    expect(image.at).toBeLessThan(skus.at + skus.ms);
  });

  test('the fake: a restricted size is SkuNotAvailable for the subscription, as ARM says it', async () => {
    const err = (await rawVm('cml-fid-restricted', { hardwareProfile: { vmSize: 'Standard_NC80adis_H100_v5' } })) as {
      statusCode?: number;
      code?: string;
      message: string;
    };
    expect(err).toMatchObject({ statusCode: 409, code: 'SkuNotAvailable' });
    expect(err.message).toMatch(/is currently not available in location 'eastus' zones '' for subscription/);
    await dropGroup('cml-fid-restricted');
  });
});

describe('security type', () => {
  test('a T4 with the HPC image: Trusted Launch without Secure Boot, so the driver loads and the job sees the GPU', async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, gpu: 't4', type: 's', image: DSVM, labels: 'cml-tl' });
    expect(error).toBeUndefined();
    const { machine } = result!.runners[0]!;
    expect(vmBody(machine.id).securityProfile).toEqual({
      securityType: 'TrustedLaunch',
      uefiSettings: { secureBootEnabled: false, vTpmEnabled: true },
    });
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-tl'],
      script: 'nvidia-smi -L',
    });
    expect((await sb.github.waitJob(job.id, 30_000)).log).toContain('Tesla T4');
    expect(await settle(sb)).toEqual([]);
  });

  test('a size without Trusted Launch (ND96asr_v4) gets Standard, which the fake requires', async () => {
    const cloud = await cloudFor(sb, 'azure', 'eastus');
    const ready = await cloud.prepare(specFor(sb, { ...base, type: 'Standard_ND96asr_v4', image: DSVM }).machine);
    const machine = await ready.launch(request('cml-fid-nd'), { type: 'Standard_ND96asr_v4', spot: false });
    expect(vmBody(machine.id).securityProfile).toEqual({ securityType: 'Standard' });
    await cloud.terminate(machine.id);
    expect(await settle(sb)).toEqual([]);
  });

  test('the fake: no securityProfile is Trusted Launch with Secure Boot, and the NVIDIA module does not load', async () => {
    await rawVm('cml-fid-sb', {
      hardwareProfile: { vmSize: 'Standard_NC4as_T4_v3' },
      storageProfile: {
        imageReference: { publisher: 'microsoft-dsvm', offer: 'ubuntu-hpc', sku: '2204', version: 'latest' },
        osDisk: { createOption: 'FromImage', deleteOption: 'Delete' },
      },
    });
    expect(vmBody('cml-fid-sb').securityProfile).toMatchObject({
      securityType: 'TrustedLaunch',
      uefiSettings: { secureBootEnabled: true },
    });
    await until('it ran', () => /nvidia-smi exit/.test(vmOf('cml-fid-sb').console()));
    expect(vmOf('cml-fid-sb').console()).toMatch(/NVIDIA-SMI has failed because it couldn't communicate[\s\S]*exit 9/);
    expect(vmOf('cml-fid-sb').console()).toContain('unsigned module loading is restricted');
    const refused = (await rawVm('cml-fid-tl', {
      hardwareProfile: { vmSize: 'Standard_ND96asr_v4' },
      securityProfile: { securityType: 'TrustedLaunch' },
    })) as { statusCode?: number; code?: string; message: string };
    expect(refused).toMatchObject({ statusCode: 400, code: 'BadRequest' });
    expect(refused.message).toMatch(/'Standard_ND96asr_v4' is not supported for creation of VMs .* 'TrustedLaunch'/);
    await Promise.all([dropGroup('cml-fid-sb'), dropGroup('cml-fid-tl')]);
  });
});

describe('A10 partitions', () => {
  test('a10g gives whole A10s; a native partition works with a GRID image (a Trusted Launch only gallery image)', async () => {
    expect(specFor(sb, { ...base, gpu: 'a10g', type: 's,l' }).machine.types).toEqual([
      'Standard_NV36ads_A10_v5',
      'Standard_NV72ads_A10_v5',
    ]);
    const { result, error } = await attemptLaunch(sb, {
      ...base,
      type: 'Standard_NV6ads_A10_v5',
      image: GRID(),
      labels: 'cml-grid',
    });
    expect(error).toBeUndefined();
    const { machine } = result!.runners[0]!;
    // The gallery image without a version is its latest (1.1.0, 50 GB; 1.2.0 is excluded from latest).
    expect(vmBody(machine.id).storageProfile?.imageReference).toEqual({ id: GRID() });
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-grid'],
      script: 'nvidia-smi -L',
    });
    expect((await sb.github.waitJob(job.id, 30_000)).log).toContain('NVIDIA A10-4Q');
    expect(await settle(sb)).toEqual([]);
  });

  test('the fake: a partition with the datacenter (CUDA) driver finds no device', async () => {
    await rawVm('cml-fid-part', {
      hardwareProfile: { vmSize: 'Standard_NV12ads_A10_v5' },
      securityProfile: { securityType: 'Standard' },
      storageProfile: {
        imageReference: { publisher: 'microsoft-dsvm', offer: 'ubuntu-hpc', sku: '2204', version: 'latest' },
        osDisk: { createOption: 'FromImage', deleteOption: 'Delete' },
      },
    });
    await until('it ran', () => /nvidia-smi exit/.test(vmOf('cml-fid-part').console()));
    expect(vmOf('cml-fid-part').console()).toMatch(/No devices were found[\s\S]*exit 6/);
    await dropGroup('cml-fid-part');
  });
});

describe('OS disk size', () => {
  test('hdd-size below the image size is raised to it (Marketplace latest, managed image)', async () => {
    const cloud = await cloudFor(sb, 'azure', 'eastus');
    const small = await cloud.prepare(specFor(sb, { ...base, type: 's', 'hdd-size': '20' }).machine);
    const a = await small.launch(request('cml-fid-disk'), { type: 'Standard_D2s_v5', spot: false });
    expect(vmBody(a.id).storageProfile?.osDisk?.diskSizeGB).toBe(31);
    const managed = await cloud.prepare(
      specFor(sb, { ...base, gpu: 't4', type: 's', 'hdd-size': '50', image: MANAGED() }).machine,
    );
    const b = await managed.launch(request('cml-fid-disk2'), { type: 'Standard_NC4as_T4_v3', spot: false });
    expect(vmBody(b.id).storageProfile?.osDisk?.diskSizeGB).toBe(100);
    // A managed image takes no Trusted Launch.
    expect(vmBody(b.id).securityProfile).toEqual({ securityType: 'Standard' });
    await Promise.all([cloud.terminate(a.id), cloud.terminate(b.id)]);
    expect(await settle(sb)).toEqual([]);
  });

  test('a disk smaller than the image is a permanent error naming hdd-size, not a quota', async () => {
    sb.faults.add({
      service: 'azure',
      action: 'virtualMachines.createOrUpdate .*',
      code: 'OperationNotAllowed',
      message:
        'The specified disk size 20 GB is smaller than the size of the corresponding disk in the VM image: 31 GB. This is not allowed. Please choose equal or greater size or do not specify an explicit size.',
      times: 1,
    });
    const { error, ledger } = await attemptLaunch(sb, { ...base, type: 's,m', 'hdd-size': '40' });
    expect(error?.message).toMatch(/^Azure refused with OperationNotAllowed: /);
    expect(error?.message).toContain("Input 'hdd-size' (20 GB) is below the image's OS disk (31 GB)");
    expect(error?.message).not.toContain('Usage + quotas');
    expect(ledger!.machines).toHaveLength(1);
    expect(await settle(sb)).toEqual([]);
  });
});

function request(name: string): MachineRequest {
  return {
    runnerName: name,
    attempt: 1,
    startupScript: '#!/bin/bash\ntrue\n',
    tags: { Name: name, 'cml-runner:managed': 'true', 'cml-runner:repo': 'octo-org/ml', 'cml-runner:runner': name },
    clientToken: randomUUID(),
    credential: { jitConfig: 'not-a-real-config' },
    runnerVersion: '2.330.0',
    maxLifetimeSeconds: 3600,
  };
}
