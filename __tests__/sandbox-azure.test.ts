import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import https from 'node:https';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ComputeManagementClient, type VirtualMachine } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import { ResourceManagementClient } from '@azure/arm-resources';
import { ClientAssertionCredential, ClientSecretCredential, WorkloadIdentityCredential } from '@azure/identity';
import {
  AZURE_API_VERSIONS,
  AZURE_APPS,
  AZURE_CA_FILE,
  AZURE_ROLE_IDS,
  AZURE_SUBSCRIPTION_ID,
  AZURE_TENANT_ID,
  type AzureAppName,
  type FakeAzure,
  startFakeAzure,
} from '../sandbox/azure.js';
import { FaultPlan } from '../sandbox/core/index.js';
import { MachineFleet } from '../sandbox/machine.js';
import { unfiredFaults } from './support/sandbox.js';
import { until } from './support/wait.js';

/**
 * The sandbox's Azure (sandbox/azure.ts) driven by the real @azure/identity credentials and ARM
 * clients, over https with the sandbox CA, which __tests__/setup-tls.ts trusts in-process (no
 * `tlsOptions` here). The calls are the product's (src/clouds/azure/provider.ts): a resource group, then
 * runner-nsg, runner-vnet (subnet runner), runner-ip, runner-nic, the VM `runner` and a role
 * assignment; VMs really boot their customData. Every test ends with nothing left.
 */

const LOCATION = 'eastus';
const POLL = { updateIntervalInMs: 5 };
const CANONICAL = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' };
const DSVM = { publisher: 'microsoft-dsvm', offer: 'ubuntu-hpc', sku: '2204', version: 'latest' };
const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNtbC1ydW5uZXItc2FuZGJveC1vbmx5LW5vdC1hLWtleQ sandbox';

let az: FakeAzure;
let faults: FaultPlan;
let fleet: MachineFleet;
let dir: string;

beforeAll(async () => {
  faults = new FaultPlan();
  fleet = new MachineFleet({ minuteMs: 50 });
  az = await startFakeAzure({ faults, machines: fleet, bootDelayMs: 30 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-azure-'));
});

afterEach(async () => {
  const unfired = unfiredFaults(faults);
  faults.clear();
  // Every test leaves nothing: no group, no running or stopped VM, no machine; every fault it added fired.
  expect(await settled()).toEqual([]);
  expect(unfired).toEqual([]);
});

afterAll(async () => {
  await az.close();
  await fleet.killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function settled(ms = 5000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = az.leftovers();
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(20);
  }
}

interface Clients {
  resources: ResourceManagementClient;
  network: NetworkManagementClient;
  compute: ComputeManagementClient;
  authorization: AuthorizationManagementClient;
}

/** The product's clients: one ARM endpoint, passed as `endpoint` and scope to each. */
function clients(app: AzureAppName = 'launcher'): Clients {
  const cred = new ClientSecretCredential(AZURE_TENANT_ID, AZURE_APPS[app].clientId, AZURE_APPS[app].secret, {
    authorityHost: az.url,
    disableInstanceDiscovery: true,
  });
  const scopes = [`${az.url}/.default`];
  const options = { endpoint: az.url, credentials: { scopes }, retryOptions: { maxRetries: 4, retryDelayInMs: 10 } };
  return {
    resources: new ResourceManagementClient(cred, AZURE_SUBSCRIPTION_ID, options),
    network: new NetworkManagementClient(cred, AZURE_SUBSCRIPTION_ID, options),
    compute: new ComputeManagementClient(cred, AZURE_SUBSCRIPTION_ID, options),
    authorization: new AuthorizationManagementClient(cred, AZURE_SUBSCRIPTION_ID, {
      endpoint: az.url,
      credentialScopes: scopes,
    }),
  };
}

type Failure = Error & { statusCode?: number; code?: string };
async function failure(p: PromiseLike<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (e) {
    return e as Failure;
  }
  throw new Error('expected a rejection');
}

/** What src/bootstrap/startup.sh does to end an Azure machine: delete its own group with its managed identity. */
const SELF_DELETE = `#!/bin/bash
set -uo pipefail
arm="@ARM@"
imds="\${AZURE_POD_IDENTITY_AUTHORITY_HOST:-http://169.254.169.254}"
echo "runner machine $SANDBOX_INSTANCE_ID on $SANDBOX_CLOUD"
@WORK@
for attempt in $(seq 1 100); do
  token_json="$(curl -sf --max-time 5 -H 'Metadata: true' --get --data-urlencode 'api-version=2018-02-01' --data-urlencode "resource=$arm/" "$imds/metadata/identity/oauth2/token")" || { sleep 0.1; continue; }
  [[ "$token_json" =~ \\"access_token\\":\\ *\\"([^\\"]+)\\" ]] && token="\${BASH_REMATCH[1]}"
  compute="$(curl -sf --max-time 5 -H 'Metadata: true' "$imds/metadata/instance/compute?api-version=2021-02-01")"
  [[ "$compute" =~ \\"subscriptionId\\":\\ *\\"([^\\"]+)\\" ]] && sub="\${BASH_REMATCH[1]}"
  [[ "$compute" =~ \\"resourceGroupName\\":\\ *\\"([^\\"]+)\\" ]] && group="\${BASH_REMATCH[1]}"
  status="$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $token" "$arm/subscriptions/$sub/resourcegroups/$group?api-version=2025-04-01")"
  echo "delete $group: $status"
  if [[ "$status" == 200 || "$status" == 202 ]]; then sleep 120; fi
  [[ -n "\${GIVE_UP_AFTER_ONE:-}" ]] && break
  sleep 0.1
done
echo "Azure refused to delete"
`;

const script = (work = '', giveUp = false): string =>
  SELF_DELETE.replace('@ARM@', az.url).replace('@WORK@', `${giveUp ? 'GIVE_UP_AFTER_ONE=1\n' : ''}${work}`);

interface LaunchOptions {
  size?: string;
  security?: VirtualMachine['securityProfile'];
  spot?: boolean;
  image?: Record<string, string>;
  customData?: string;
  /** `properties.userData`, base64 as sent. */
  userData?: string;
  app?: AzureAppName;
  tags?: Record<string, string>;
}

/** The product's launch, call for call: group, NSG, VNet, public IP, NIC, VM, role assignment. */
async function launch(group: string, o: LaunchOptions = {}): Promise<{ vm: VirtualMachine; c: Clients }> {
  const c = clients(o.app);
  const tags = o.tags ?? { 'cml-runner:managed': 'true', 'cml-runner:run-id': '4242', 'cml-runner:runner': group };
  const location = LOCATION;
  await c.resources.resourceGroups.createOrUpdate(group, { location, tags });
  const nsg = await c.network.networkSecurityGroups.createOrUpdate(
    group,
    'runner-nsg',
    { location, tags, securityRules: [] },
    POLL,
  );
  const vnet = await c.network.virtualNetworks.createOrUpdate(
    group,
    'runner-vnet',
    {
      location,
      tags,
      addressSpace: { addressPrefixes: ['10.0.0.0/24'] },
      subnets: [{ name: 'runner', addressPrefix: '10.0.0.0/24', networkSecurityGroup: { id: nsg.id } }],
    },
    POLL,
  );
  const ip = await c.network.publicIPAddresses.createOrUpdate(
    group,
    'runner-ip',
    { location, tags, sku: { name: 'Standard' }, publicIPAllocationMethod: 'Static' },
    POLL,
  );
  const nic = await c.network.networkInterfaces.createOrUpdate(
    group,
    'runner-nic',
    {
      location,
      tags,
      ipConfigurations: [
        {
          name: 'primary',
          subnet: { id: vnet.subnets?.[0]?.id },
          publicIPAddress: { id: ip.id, deleteOption: 'Delete' },
        },
      ],
    },
    POLL,
  );
  const body: VirtualMachine = {
    location,
    tags,
    identity: { type: 'SystemAssigned' },
    hardwareProfile: { vmSize: o.size ?? 'Standard_D2s_v5' },
    ...(o.security ? { securityProfile: o.security } : {}),
    storageProfile: {
      imageReference: o.image ?? CANONICAL,
      osDisk: {
        createOption: 'FromImage',
        deleteOption: 'Delete',
        managedDisk: { storageAccountType: 'StandardSSD_LRS' },
      },
    },
    osProfile: {
      computerName: 'runner',
      adminUsername: 'runner',
      customData: Buffer.from(o.customData ?? 'echo hello from customData', 'utf8').toString('base64'),
      linuxConfiguration: {
        disablePasswordAuthentication: true,
        ssh: { publicKeys: [{ path: '/home/runner/.ssh/authorized_keys', keyData: SSH_KEY }] },
        provisionVMAgent: true,
      },
    },
    ...(o.userData !== undefined ? { userData: o.userData } : {}),
    networkProfile: { networkInterfaces: [{ id: nic.id, primary: true, deleteOption: 'Delete' }] },
    diagnosticsProfile: { bootDiagnostics: { enabled: true } },
    ...(o.spot ? { priority: 'Spot', evictionPolicy: 'Delete', billingProfile: { maxPrice: -1 } } : {}),
  };
  const vm = await c.compute.virtualMachines.createOrUpdate(group, 'runner', body, POLL);
  return { vm, c };
}

async function grant(c: Clients, group: string, principalId: string): Promise<void> {
  await c.authorization.roleAssignments.create(
    `/subscriptions/${AZURE_SUBSCRIPTION_ID}/resourceGroups/${group}`,
    crypto.randomUUID(),
    {
      roleDefinitionId: `/subscriptions/${AZURE_SUBSCRIPTION_ID}/providers/Microsoft.Authorization/roleDefinitions/${AZURE_ROLE_IDS.vm}`,
      principalId,
      principalType: 'ServicePrincipal',
    },
  );
}

async function powerState(c: Clients, group: string): Promise<string[]> {
  const view = await c.compute.virtualMachines.instanceView(group, 'runner');
  return (view.statuses ?? []).map((s) => s.code ?? '');
}

const vmOf = (group: string) => az.vms().findLast((v) => v.group === group)!;
const groupOf = (group: string) => az.groups().findLast((g) => g.name === group)!;

function httpsGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { headers }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      })
      .on('error', reject);
  });
}

describe('a runner life, with the product calls', () => {
  test('spot VM boots its customData, the role lets its identity delete its own group, and everything goes', async () => {
    const group = 'cml-runner-life';
    const n = az.calls.length;
    const { vm, c } = await launch(group, { spot: true, customData: script('sleep 0.3') });
    expect(vm).toMatchObject({ provisioningState: 'Succeeded', priority: 'Spot', evictionPolicy: 'Delete' });
    await grant(c, group, vm.identity!.principalId!);

    const made = vmOf(group);
    expect(made).toMatchObject({
      name: 'runner',
      vmSize: 'Standard_D2s_v5',
      priority: 'Spot',
      evictionPolicy: 'Delete',
      billingProfile: { maxPrice: -1 },
      osDiskDeleteOption: 'Delete',
      nicDeleteOption: 'Delete',
      provisioningState: 'Succeeded',
      tags: { 'cml-runner:run-id': '4242' },
    });
    expect(made.identity?.principalId).toBe(vm.identity?.principalId);
    expect(made.customData).toContain('runner machine');
    expect(az.roleAssignments().map((r) => r.scope)).toEqual([
      `/subscriptions/${AZURE_SUBSCRIPTION_ID}/resourceGroups/${group}`,
    ]);
    expect(await powerState(c, group)).toEqual(['ProvisioningState/succeeded', 'PowerState/running']);
    expect(az.leftovers().join('\n')).toContain(`Azure resource group ${group} (eastus, Succeeded) still exists`);
    expect(az.leftovers().join('\n')).toContain('cml-runner:run-id=4242');

    // The list the product's cleanup does.
    const listed: string[] = [];
    for await (const g of c.resources.resourceGroups.list({
      filter: "tagName eq 'cml-runner:run-id' and tagValue eq '4242'",
    }))
      listed.push(g.name!);
    expect(listed).toEqual([group]);
    expect((await c.resources.resourceGroups.get(group)).tags).toMatchObject({ 'cml-runner:managed': 'true' });

    // The serial log (boot diagnostics) is the machine's console.
    await until('the script ran', () => made.console().includes('runner machine'));
    const diag = await c.compute.virtualMachines.retrieveBootDiagnosticsData(group, 'runner', {
      sasUriExpirationTimeInMinutes: 10,
    });
    const log = await httpsGet(diag.serialConsoleLogBlobUri!);
    expect(log.status).toBe(200);
    expect(log.text).toContain(`runner machine ${made.vmId} on azure`);

    // The VM deletes its own group: its machine is powered off, the role assignment goes.
    await until('the group deleted', () => groupOf(group).deleted);
    expect(made).toMatchObject({ deleted: true, endedReason: 'deleted by its own identity' });
    expect(made.console()).toMatch(/delete cml-runner-life: 202/);
    expect(groupOf(group).deletedBy).toBe(`vm:${group}`);
    expect(az.roleAssignments()).toEqual([]);
    expect(
      az.calls.filter((x) => x.action === 'resourceGroups.delete global').map((x) => `${x.identity} ${x.status}`),
    ).toEqual([`vm:${group} 202`]);
    const actions = [
      ...new Set(
        az.calls
          .slice(n)
          .filter((x) => x.service === 'arm' && x.status < 300)
          .map((x) => x.action),
      ),
    ];
    expect(actions).toEqual(
      expect.arrayContaining([
        'resourceGroups.createOrUpdate global',
        'networkSecurityGroups.createOrUpdate eastus',
        'virtualNetworks.createOrUpdate eastus',
        'publicIPAddresses.createOrUpdate eastus',
        'networkInterfaces.createOrUpdate eastus',
        'virtualMachines.createOrUpdate eastus',
        'virtualMachines.asyncOperation eastus',
        'roleAssignments.create global',
        'virtualMachines.instanceView eastus',
        'resourceGroups.list global',
        'virtualMachines.retrieveBootDiagnosticsData eastus',
        'resourceGroups.delete global',
      ]),
    );
    const gone = await failure(c.resources.resourceGroups.get(group));
    expect(gone).toMatchObject({ statusCode: 404, code: 'ResourceGroupNotFound' });
  });

  test('the launcher deletes a group as the product does (forceDeletionTypes, 202 + Location): the VM ends "deleted"', async () => {
    const group = 'cml-runner-cleanup';
    const { c } = await launch(group, { customData: 'echo up; sleep 60' });
    await until('the machine is up', () => vmOf(group).machine?.console().includes('up') ?? false);
    const poller = c.resources.resourceGroups.delete(group, {
      forceDeletionTypes: 'Microsoft.Compute/virtualMachines',
      ...POLL,
    });
    await poller.submitted();
    await poller;
    expect(vmOf(group)).toMatchObject({ deleted: true, endedReason: 'deleted' });
    expect(groupOf(group)).toMatchObject({ deleted: true, deletedBy: 'launcher' });
    const bad = await failure(
      c.resources.resourceGroups.delete('nope', { forceDeletionTypes: 'Microsoft.Network/virtualNetworks' }),
    );
    expect(bad).toMatchObject({ statusCode: 400, code: 'InvalidForceDeletionTypes' });
  });

  test('a guest shutdown leaves the VM stopped, still billed and a leftover', async () => {
    const group = 'cml-runner-shutdown';
    const { c } = await launch(group, { customData: 'echo bye; shutdown -h now' });
    await until('stopped', () => vmOf(group).powerState === 'stopped');
    expect(await powerState(c, group)).toEqual(['ProvisioningState/succeeded', 'PowerState/stopped']);
    expect(az.leftovers().join('\n')).toMatch(
      /Azure VM cml-runner-shutdown\/runner .* is stopped \(stopped, not deallocated: still billed\)/,
    );
    await c.resources.resourceGroups.delete(group, POLL);
  });

  test('evict(group): the Spot VM and its disk go (evictionPolicy Delete), the group stays until deleted', async () => {
    const group = 'cml-runner-evict';
    const { c } = await launch(group, { spot: true, customData: 'sleep 60' });
    await az.evict(group, { noticeMs: 0 });
    expect(vmOf(group)).toMatchObject({ deleted: true, endedReason: 'evicted', evictionNotice: true });
    expect(vmOf(group).machine?.running).toBe(false);
    expect(await failure(c.compute.virtualMachines.instanceView(group, 'runner'))).toMatchObject({
      statusCode: 404,
      code: 'ResourceNotFound',
    });
    expect(az.leftovers()).toEqual([expect.stringContaining(`Azure resource group ${group}`)]);
    await c.resources.resourceGroups.delete(group, POLL);
  });

  test('GPU sizes: nvidia-smi only with a driver image (microsoft-dsvm:ubuntu-hpc), not on Canonical Ubuntu', async () => {
    const { c } = await launch('cml-runner-gpu', {
      size: 'Standard_NC4as_T4_v3',
      image: DSVM,
      // Without it a Gen2 VM is Trusted Launch with Secure Boot, under which the driver does not load.
      security: { securityType: 'TrustedLaunch', uefiSettings: { secureBootEnabled: false, vTpmEnabled: true } },
      customData: 'nvidia-smi -L',
    });
    await launch('cml-runner-nogpu', { size: 'Standard_NC4as_T4_v3', customData: 'nvidia-smi -L || echo no-driver' });
    await until(
      'both ran',
      () => /GPU 0/.test(vmOf('cml-runner-gpu').console()) && /no-driver/.test(vmOf('cml-runner-nogpu').console()),
    );
    expect(vmOf('cml-runner-gpu').gpu).toMatchObject({ model: 'Tesla T4', count: 1 });
    expect(vmOf('cml-runner-gpu').console()).toContain('Tesla T4');
    expect(vmOf('cml-runner-nogpu').gpu).toBeUndefined();
    await Promise.all(['cml-runner-gpu', 'cml-runner-nogpu'].map((g) => c.resources.resourceGroups.delete(g, POLL)));
  });
});

describe('user data', () => {
  /** On the VM: its user data from IMDS, then a PATCH of it with the VM's own identity. */
  const READ_AND_PATCH = `
for attempt in $(seq 1 100); do
  token_json="$(curl -sf --max-time 5 -H 'Metadata: true' --get --data-urlencode 'api-version=2018-02-01' --data-urlencode "resource=$arm/" "$imds/metadata/identity/oauth2/token")" && break
  sleep 0.1
done
[[ "$token_json" =~ \\"access_token\\":\\ *\\"([^\\"]+)\\" ]] && token="\${BASH_REMATCH[1]}"
compute="$(curl -sf -H 'Metadata: true' "$imds/metadata/instance/compute?api-version=2021-02-01")"
[[ "$compute" =~ \\"resourceId\\":\\ *\\"([^\\"]+)\\" ]] && id="\${BASH_REMATCH[1]}"
echo "user data: $(curl -sf -H 'Metadata: true' "$imds/metadata/instance/compute/userData?api-version=2021-01-01&format=text")"
echo "before 2021-01-01: $(curl -s -o /dev/null -w '%{http_code}' -H 'Metadata: true' "$imds/metadata/instance/compute/userData?api-version=2020-09-01&format=text")"
until [[ -e "\${0%/*}/go" ]]; do sleep 0.05; done
echo "own patch: $(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H "Authorization: Bearer $token" -H 'content-type: application/json' -d '{"properties":{"userData":""}}' "$arm$id?api-version=${AZURE_API_VERSIONS.compute}")"
`;

  test('kept apart from the model view, served by IMDS, changed by PATCH (validated), never by the VM itself', async () => {
    const group = 'cml-runner-userdata';
    const userData = Buffer.from('RUNNER_TOKEN\0AABBCC\0').toString('base64');
    const { vm, c } = await launch(group, { userData, customData: script(READ_AND_PATCH, true) });
    await grant(c, group, vm.identity!.principalId!);
    const made = vmOf(group);
    expect(made).toMatchObject({ userData, userDataUpdates: 0 });
    // ARM shows it only when asked: not in the create's answer, nor in a plain GET.
    expect(vm.userData).toBeUndefined();
    expect((await c.compute.virtualMachines.get(group, 'runner')).userData).toBeUndefined();
    expect((await c.compute.virtualMachines.get(group, 'runner', { expand: 'userData' })).userData).toBe(userData);
    // The VM reads it from IMDS as given (base64), from api-version 2021-01-01 on.
    await until('the VM read its user data', () => made.console().includes('before 2021-01-01'));
    expect(made.console()).toContain(`user data: ${userData}\n`);
    expect(made.console()).toContain('before 2021-01-01: 404');

    // Not base64, or longer than 87384 characters: InvalidParameter, nothing changed.
    for (const bad of ['not base64!', 'QUJ', 'A'.repeat(87388)]) {
      const refused = await failure(c.compute.virtualMachines.update(group, 'runner', { userData: bad }, POLL));
      expect(refused).toMatchObject({ statusCode: 400, code: 'InvalidParameter' });
      expect(refused.message).toBe(
        'UserData must be in Base64 encoding and with a maximum length of 87384 characters.',
      );
    }
    expect(made).toMatchObject({ userData, userDataUpdates: 0 });

    // An empty string deletes it, at once for IMDS too; the VM's own identity may not write it.
    const updated = await c.compute.virtualMachines.update(group, 'runner', { userData: '' }, POLL);
    expect(updated.userData).toBeUndefined();
    expect(made).toMatchObject({ userData: '', userDataUpdates: 1 });
    expect((await c.compute.virtualMachines.get(group, 'runner', { expand: 'userData' })).userData).toBe('');
    fs.writeFileSync(path.join(made.machine!.root, '.sandbox', 'go'), '');
    await until('the VM tried its own patch', () => made.console().includes('own patch:'));
    expect(made.console()).toContain('own patch: 403');
    expect(made).toMatchObject({ userData: '', userDataUpdates: 1 });
    expect(
      az.calls
        .filter((x) => x.action === 'virtualMachines.update eastus')
        .map((x) => `${x.identity} ${x.status} ${x.code ?? ''}`),
    ).toEqual([
      'launcher 400 InvalidParameter',
      'launcher 400 InvalidParameter',
      'launcher 400 InvalidParameter',
      'launcher 200 ',
      `vm:${group} 403 AuthorizationFailed`,
    ]);
    // Then it deletes its own group, as the product's VM does.
    await until('the group deleted', () => groupOf(group).deleted);
  });
});

describe('faults through the shared FaultPlan', () => {
  test('SkuNotAvailable and OperationNotAllowed are synchronous 409s; AllocationFailed fails the poller and leaves a Failed VM', async () => {
    const c = clients();
    for (const [code, group] of [
      ['SkuNotAvailable', 'cml-f-sku'],
      ['OperationNotAllowed', 'cml-f-quota'],
    ] as const) {
      faults.add({ service: 'azure', action: 'virtualMachines.createOrUpdate eastus', code });
      const err = await failure(launch(group, { size: 'Standard_NC4as_T4_v3' }));
      expect(err).toMatchObject({ name: 'RestError', statusCode: 409, code });
      if (code === 'OperationNotAllowed')
        expect(err.message).toMatch(/exceeding approved standardNCASv3_T4Family Cores quota/);
      expect(az.vms().some((v) => v.group === group)).toBe(false);
      await c.resources.resourceGroups.delete(group, POLL);
    }
    faults.add({ service: 'azure', action: 'virtualMachines.createOrUpdate .*', code: 'AllocationFailed' });
    const err = await failure(launch('cml-f-alloc'));
    expect(err.constructor).toBe(Error);
    expect(/^The long-running operation has failed\. (\w+)\. /.exec(err.message)?.[1]).toBe('AllocationFailed');
    expect(vmOf('cml-f-alloc')).toMatchObject({ provisioningState: 'Failed', failureCode: 'AllocationFailed' });
    expect(vmOf('cml-f-alloc').machine).toBeUndefined();
    const codes = await powerState(c, 'cml-f-alloc');
    expect(codes).toEqual(['ProvisioningState/failed/AllocationFailed']);
    await c.resources.resourceGroups.delete('cml-f-alloc', POLL);
    expect(vmOf('cml-f-alloc')).toMatchObject({ deleted: true, endedReason: 'deleted' });
    expect(faults.fired.map((f) => f.code)).toEqual(['SkuNotAvailable', 'OperationNotAllowed', 'AllocationFailed']);
  });

  test('TooManyRequests is a 429 with Retry-After, which the SDK retries; other codes answer their status', async () => {
    const c = clients();
    faults.add({ service: 'azure', action: 'resourceGroups.list global', code: 'TooManyRequests', retryAfter: 0 });
    const n = az.calls.length;
    const names: string[] = [];
    for await (const g of c.resources.resourceGroups.list()) names.push(g.name!);
    expect(
      az.calls
        .slice(n)
        .filter((x) => x.action === 'resourceGroups.list global')
        .map((x) => x.status),
    ).toEqual([429, 200]);
    faults.add({
      service: 'azure',
      action: 'resourceGroups.createOrUpdate global',
      code: 'Conflict',
      status: 409,
      message: 'busy',
    });
    expect(await failure(c.resources.resourceGroups.createOrUpdate('cml-f-x', { location: LOCATION }))).toMatchObject({
      statusCode: 409,
      code: 'Conflict',
      message: 'busy',
    });
    faults.add({ service: 'azure', action: 'resourceGroups.createOrUpdate global', reset: 'after' });
    await c.resources.resourceGroups.createOrUpdate('cml-f-reset', { location: LOCATION }).catch(() => undefined);
    // A reset after: the group was created, the client never heard of it (it retries, and gets 200).
    expect(groupOf('cml-f-reset')).toMatchObject({ deleted: false });
    await c.resources.resourceGroups.delete('cml-f-reset', POLL);
  });

  test('a launcher without roleAssignments/write (noRoleAssignments) gets 403 AuthorizationFailed; its VM cannot delete itself', async () => {
    const group = 'cml-f-norole';
    const { vm, c } = await launch(group, { app: 'noRoleAssignments', customData: script('', true) });
    const err = await failure(grant(c, group, vm.identity!.principalId!));
    expect(err).toMatchObject({ name: 'RestError', statusCode: 403, code: 'AuthorizationFailed' });
    expect(err.message).toContain(
      "does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write'",
    );
    await until('the VM gave up', () => vmOf(group).console().includes('Azure refused to delete'));
    expect(vmOf(group).console()).toContain(`delete ${group}: 403`);
    expect(groupOf(group).deleted).toBe(false);
    await c.resources.resourceGroups.delete(group, POLL);
    expect(groupOf(group).deletedBy).toBe('noRoleAssignments');
  });
});

describe('the request pipeline', () => {
  test('a fault with `where` fires only for requests with those parameters, which the call log records', async () => {
    faults.add({
      service: 'azure',
      action: 'virtualMachines.createOrUpdate .*',
      where: { vmSize: 'Standard_NC4as_T4_v3', priority: 'Spot' },
      code: 'SkuNotAvailable',
    });
    const n = az.calls.length;
    // Another size, and the same size on demand: the fault does not match.
    const { c } = await launch('cml-w-other', { customData: 'true' });
    await launch('cml-w-regular', { size: 'Standard_NC4as_T4_v3', customData: 'true' });
    expect(faults.unfired()).toHaveLength(1);
    const err = await failure(launch('cml-w-spot', { size: 'Standard_NC4as_T4_v3', spot: true }));
    expect(err).toMatchObject({ statusCode: 409, code: 'SkuNotAvailable' });
    expect(faults.unfired()).toEqual([]);
    const puts = az.calls.slice(n).filter((x) => x.op === 'virtualMachines.createOrUpdate');
    expect(puts.map((x) => [x.params?.resourceGroup, x.params?.vmSize, x.params?.priority, x.status, x.fault])).toEqual(
      [
        ['cml-w-other', 'Standard_D2s_v5', 'Regular', 201, undefined],
        ['cml-w-regular', 'Standard_NC4as_T4_v3', 'Regular', 201, undefined],
        ['cml-w-spot', 'Standard_NC4as_T4_v3', 'Spot', 409, 'SkuNotAvailable'],
      ],
    );
    expect(puts[0]!.params).toMatchObject({ name: 'runner', location: LOCATION });
    expect(faults.fired).toEqual([
      {
        service: 'azure',
        action: 'virtualMachines.createOrUpdate eastus',
        code: 'SkuNotAvailable',
        params: expect.objectContaining({
          resourceGroup: 'cml-w-spot',
          vmSize: 'Standard_NC4as_T4_v3',
          priority: 'Spot',
        }),
      },
    ]);
    // A resource group is a parameter of every call in it.
    faults.add({
      service: 'azure',
      action: 'resourceGroups.get global',
      where: { resourceGroup: 'cml-w-regular' },
      code: 'Conflict',
      status: 409,
    });
    expect((await c.resources.resourceGroups.get('cml-w-other')).name).toBe('cml-w-other');
    expect(await failure(c.resources.resourceGroups.get('cml-w-regular'))).toMatchObject({
      statusCode: 409,
      code: 'Conflict',
    });
    await Promise.all(
      ['cml-w-other', 'cml-w-regular', 'cml-w-spot'].map((g) => c.resources.resourceGroups.delete(g, POLL)),
    );
  });

  test('a request without valid credentials is refused as such even with a fault armed, and the fault waits', async () => {
    faults.add({ service: 'azure', action: 'resourceGroups.list global', code: 'TooManyRequests', retryAfter: 0 });
    faults.add({ service: 'azure', action: 'oauth2.token global', code: 'temporarily_unavailable', status: 503 });
    const list = `${az.url}/subscriptions/${AZURE_SUBSCRIPTION_ID}/resourcegroups?api-version=${AZURE_API_VERSIONS.resources}`;
    const n = az.calls.length;
    expect(await httpsGet(list)).toMatchObject({
      status: 401,
      text: expect.stringContaining('"code":"AuthenticationFailed"'),
    });
    expect(await httpsGet(list, { authorization: 'Bearer not-a-token' })).toMatchObject({
      status: 401,
      text: expect.stringContaining('"code":"InvalidAuthenticationToken"'),
    });
    const opts = { authorityHost: az.url, disableInstanceDiscovery: true };
    const wrong = await failure(
      new ClientSecretCredential(AZURE_TENANT_ID, AZURE_APPS.launcher.clientId, 'wrong', opts).getToken(
        `${az.url}/.default`,
      ),
    );
    expect(wrong.message).toMatch(/AADSTS7000215/);
    expect(faults.unfired()).toHaveLength(2);
    const refused = az.calls.slice(n).filter((x) => x.action !== 'openid-configuration global');
    expect(refused.map((x) => [x.action, x.status, x.code, x.fault])).toEqual([
      ['resourceGroups.list global', 401, 'AuthenticationFailed', undefined],
      ['resourceGroups.list global', 401, 'InvalidAuthenticationToken', undefined],
      ['oauth2.token global', 401, 'invalid_client', undefined],
    ]);
    expect(az.calls.at(-1)?.params).toEqual({ clientId: AZURE_APPS.launcher.clientId });
    // With credentials, the faults answer: Entra's 503 (which the credential retries), then ARM's 429.
    const m = az.calls.length;
    const names: string[] = [];
    for await (const g of clients().resources.resourceGroups.list()) names.push(g.name!);
    expect(faults.unfired()).toEqual([]);
    expect(az.calls.slice(m).map((x) => `${x.action} ${x.status}${x.fault ? ` ${x.fault}` : ''}`)).toEqual(
      expect.arrayContaining([
        'oauth2.token global 503 temporarily_unavailable',
        'resourceGroups.list global 429 TooManyRequests',
        'resourceGroups.list global 200',
      ]),
    );
  });
});

describe('strictness', () => {
  test('credentials: secret, workload identity and client assertion; a wrong secret is AADSTS7000215', async () => {
    const opts = { authorityHost: az.url, disableInstanceDiscovery: true };
    const file = az.federatedTokenFile(dir);
    expect(
      (
        await new WorkloadIdentityCredential({
          ...opts,
          tenantId: AZURE_TENANT_ID,
          clientId: AZURE_APPS.launcher.clientId,
          tokenFilePath: file,
        }).getToken(`${az.url}/.default`)
      ).token,
    ).toBeTruthy();
    const assertion = fs.readFileSync(file, 'utf8');
    await new ClientAssertionCredential(
      AZURE_TENANT_ID,
      AZURE_APPS.launcher.clientId,
      async () => assertion,
      opts,
    ).getToken(`${az.url}/.default`);
    const err = await failure(
      new ClientSecretCredential(AZURE_TENANT_ID, AZURE_APPS.launcher.clientId, 'wrong', opts).getToken(
        `${az.url}/.default`,
      ),
    );
    expect(err.message).toMatch(/AADSTS7000215/);
  });

  test('raw requests: api-version, auth, references', async () => {
    const c = clients();
    const token = (
      await new ClientSecretCredential(AZURE_TENANT_ID, AZURE_APPS.launcher.clientId, AZURE_APPS.launcher.secret, {
        authorityHost: az.url,
        disableInstanceDiscovery: true,
      }).getToken(`${az.url}/.default`)
    ).token;
    const get = (
      p: string,
      headers: Record<string, string> = { authorization: `Bearer ${token}` },
    ): Promise<{ status: number; text: string }> =>
      new Promise((resolve, reject) => {
        https
          .get(`${az.url}${p}`, { headers }, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          })
          .on('error', reject);
      });
    const base = `/subscriptions/${AZURE_SUBSCRIPTION_ID}/resourcegroups`;
    expect(await get(`${base}?api-version=2099-01-01`)).toMatchObject({
      status: 400,
      text: expect.stringContaining('"code":"InvalidApiVersionParameter"'),
    });
    expect(await get(base)).toMatchObject({
      status: 400,
      text: expect.stringContaining('"code":"MissingApiVersionParameter"'),
    });
    expect(await get(`${base}?api-version=${AZURE_API_VERSIONS.resources}`, {})).toMatchObject({
      status: 401,
      text: expect.stringContaining('"code":"AuthenticationFailed"'),
    });
    expect(await get(`${base}?api-version=${AZURE_API_VERSIONS.resources}`)).toMatchObject({ status: 200 });
    // A NIC whose subnet does not exist; a VM whose NIC does not exist.
    await c.resources.resourceGroups.createOrUpdate('cml-strict', { location: LOCATION });
    const nic = await failure(
      c.network.networkInterfaces.createOrUpdate(
        'cml-strict',
        'runner-nic',
        {
          location: LOCATION,
          ipConfigurations: [
            {
              name: 'p',
              subnet: { id: `${base}/cml-strict/providers/Microsoft.Network/virtualNetworks/x/subnets/runner` },
            },
          ],
        },
        POLL,
      ),
    );
    expect(nic).toMatchObject({ statusCode: 400, code: 'InvalidResourceReference' });
    await c.resources.resourceGroups.delete('cml-strict', POLL);
  });

  test('api-versions the clients sent (each checked strictly by the fake)', () => {
    const seen = new Map<string, string>();
    for (const x of az.calls) if (x.service === 'arm' && x.apiVersion && x.status < 300) seen.set(x.op, x.apiVersion);
    const want: Record<string, string> = {
      'network.asyncOperation': AZURE_API_VERSIONS.network,
      'networkInterfaces.createOrUpdate': AZURE_API_VERSIONS.network,
      'networkInterfaces.get': AZURE_API_VERSIONS.network,
      'networkSecurityGroups.createOrUpdate': AZURE_API_VERSIONS.network,
      'networkSecurityGroups.get': AZURE_API_VERSIONS.network,
      'publicIPAddresses.createOrUpdate': AZURE_API_VERSIONS.network,
      'publicIPAddresses.get': AZURE_API_VERSIONS.network,
      'resourceGroups.createOrUpdate': AZURE_API_VERSIONS.resources,
      'resourceGroups.delete': AZURE_API_VERSIONS.resources,
      'resourceGroups.deleteOperation': AZURE_API_VERSIONS.resources,
      'resourceGroups.get': AZURE_API_VERSIONS.resources,
      'resourceGroups.list': AZURE_API_VERSIONS.resources,
      'roleAssignments.create': AZURE_API_VERSIONS.authorization,
      'virtualMachines.asyncOperation': AZURE_API_VERSIONS.compute,
      'virtualMachines.createOrUpdate': AZURE_API_VERSIONS.compute,
      'virtualMachines.get': AZURE_API_VERSIONS.compute,
      'virtualMachines.instanceView': AZURE_API_VERSIONS.compute,
      'virtualMachines.retrieveBootDiagnosticsData': AZURE_API_VERSIONS.compute,
      'virtualMachines.update': AZURE_API_VERSIONS.compute,
      'virtualNetworks.createOrUpdate': AZURE_API_VERSIONS.network,
      'virtualNetworks.get': AZURE_API_VERSIONS.network,
    };
    expect(Object.fromEntries([...seen].sort())).toEqual(want);
  });
});

test('the CA file is what setup-tls.ts trusts', () => {
  expect(fs.readFileSync(AZURE_CA_FILE, 'utf8')).toContain('BEGIN CERTIFICATE');
});
