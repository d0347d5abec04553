import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import type { Sandbox } from '../sandbox/index.js';
import { GCE_SERVICE_ACCOUNTS } from '../sandbox/gce.js';
import { useSandbox } from './support/sandbox.js';
import { MemoryLog, attemptLaunch, cleanupRunOf, settle, specFor, until } from './helpers.js';

/**
 * Google Cloud as it is, not as it is convenient: which driver drives a V100, networks other than
 * `default` and VMs without an external IP, A3 High shapes sold only as Spot, and the reusable
 * runner's registration token leaving the metadata server once the runner is online.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

/** Each test leaves the project as it found it. */
let restore: Parameters<Sandbox['gce']['configure']>[0] | undefined;
const configure = (settings: Parameters<Sandbox['gce']['configure']>[0]): void => {
  const before = sb.gce.configure(settings);
  restore ??= before;
};
afterEach(() => {
  if (restore) sb.gce.configure(restore);
  restore = undefined;
});

const base = { cloud: 'gcp', region: 'us-central1', 'gcp-service-account': GCE_SERVICE_ACCOUNTS.runner };
const instanceOf = (id: string) => {
  const [zone, name] = id.split('/') as [string, string];
  return sb.gce.instances().find((i) => i.zone === zone && i.name === name)!;
};
const DLVM = 'projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570';
const PROPRIETARY = 'projects/sandbox-project/global/images/runner-nvidia-proprietary-570';

/** Runs a job on the launch's runner and returns it once done. */
async function job(script: string) {
  const queued = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['self-hosted', 'cml'], script });
  return sb.github.waitJob(queued.id, 30_000);
}

describe('V100', () => {
  test('a generic V100 is refused, naming what to use; a native V100 type needs an image the user vouches for', () => {
    const made = sb.gce.instances().length;
    expect(() => specFor(sb, { ...base, gpu: 'v100' })).toThrow(/Input 'gpu' .*"v100".*proprietary.*use t4 or l4/);
    expect(() => specFor(sb, { ...base, gpu: 'tesla', type: 'm' })).toThrow(/Input 'gpu' .*"v100"/);
    expect(() => specFor(sb, { ...base, type: 'n1-standard-8+nvidia-tesla-v100' })).toThrow(
      /Input 'image' .*n1-standard-8\+nvidia-tesla-v100 has a V100 \(Volta\).*open kernel modules.*give an image/,
    );
    expect(() => specFor(sb, { ...base, type: 'n1-standard-16', gpu: 'v100' })).toThrow(/Input 'image'/);
    expect(specFor(sb, { ...base, type: 'n1-standard-8+nvidia-tesla-v100', image: PROPRIETARY }).machine.types).toEqual(
      ['n1-standard-8+nvidia-tesla-v100'],
    );
    expect(sb.gce.instances().length).toBe(made);
  });

  test("the Deep Learning VM image's open modules do not drive a V100; a proprietary driver does", async () => {
    const open = await attemptLaunch(sb, { ...base, type: 'n1-standard-8+nvidia-tesla-v100', image: DLVM });
    expect(open.error).toBeUndefined();
    const openVm = instanceOf(open.result!.runners[0]!.machine.id);
    const failed = await job('nvidia-smi');
    expect(failed.conclusion).toBe('failure');
    expect(failed.log).toContain("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver");
    expect(openVm.console()).toContain('not supported by open nvidia.ko');
    await until('the VM deleted itself', () => openVm.deleted, 30_000);

    const proprietary = await attemptLaunch(sb, {
      ...base,
      type: 'n1-standard-8+nvidia-tesla-v100',
      image: PROPRIETARY,
    });
    expect(proprietary.error).toBeUndefined();
    const done = await job('nvidia-smi -L');
    expect(done.conclusion).toBe('success');
    expect(done.log).toContain('Tesla V100-SXM2-16GB');
    expect(await settle(sb)).toEqual([]);
  });
});

describe('networks', () => {
  test('bad network inputs name the input, and a subnetwork of another region is refused before anything exists', () => {
    const made = sb.gce.instances().length;
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ 'gcp-network': 'ci vpc; rm -rf /' }, /Input 'gcp-network' .*"ci vpc; rm -rf \/".*VPC network name/],
      [{ 'gcp-network': 'https://evil.example/x' }, /Input 'gcp-network'/],
      [{ 'gcp-subnetwork': '../../subnetworks/x' }, /Input 'gcp-subnetwork' .*subnetwork name in us-central1/],
      [
        { 'gcp-subnetwork': 'projects/sandbox-project/regions/europe-west4/subnetworks/ci-europe-west4' },
        /Input 'gcp-subnetwork' .*in europe-west4 but the machines launch in us-central1/,
      ],
      [{ 'gcp-external-ip': 'no' }, /Input 'gcp-external-ip' .*"no".*true or false/],
    ];
    for (const [inputs, message] of bad) expect(() => specFor(sb, { ...base, ...inputs })).toThrow(message);
    expect(sb.gce.instances().length).toBe(made);
  });

  test('a project without a default network refuses the default; gcp-subnetwork puts the VM on its network', async () => {
    configure({ noDefaultNetwork: true });
    const refused = await attemptLaunch(sb, { ...base, type: 's' });
    expect(refused.error?.message).toMatch(
      /GCP refused with invalid: .*networks\/default'\. The referenced network resource cannot be found/,
    );
    expect(refused.error?.message).toContain('gcp-network or gcp-subnetwork');
    expect(await settle(sb)).toEqual([]);

    const { result, error } = await attemptLaunch(sb, { ...base, type: 's', 'gcp-subnetwork': 'ci-us-central1' });
    expect(error).toBeUndefined();
    const vm = instanceOf(result!.runners[0]!.machine.id);
    expect(vm).toMatchObject({ network: 'ci-vpc', subnetwork: 'ci-us-central1', natIP: expect.any(String) });
    expect(await job('echo on ci-vpc')).toMatchObject({ conclusion: 'success' });
    expect(await settle(sb)).toEqual([]);
  });

  test('an organisation policy against external IPs refuses the VM; without one, Cloud NAT is the way out', async () => {
    configure({ denyExternalIp: true });
    const refused = await attemptLaunch(sb, { ...base, type: 's', 'gcp-subnetwork': 'ci-us-central1' });
    expect(refused.error?.message).toMatch(
      /GCP refused with conditionNotMet: .*Constraint constraints\/compute\.vmExternalIpAccess violated for project 123456789012/,
    );
    expect(refused.error?.message).toContain('gcp-external-ip: false');
    expect(await settle(sb)).toEqual([]);

    const { result, error } = await attemptLaunch(sb, {
      ...base,
      type: 's',
      'gcp-network': 'ci-vpc',
      'gcp-subnetwork': 'ci-us-central1',
      'gcp-external-ip': 'false',
    });
    expect(error).toBeUndefined();
    const vm = instanceOf(result!.runners[0]!.machine.id);
    expect(vm).toMatchObject({ network: 'ci-vpc', subnetwork: 'ci-us-central1' });
    expect(vm.natIP).toBeUndefined();
    expect(await job('echo through Cloud NAT')).toMatchObject({ conclusion: 'success' });
    expect(await settle(sb)).toEqual([]);
  });

  test('without an external IP and without Cloud NAT the VM cannot reach GitHub: the launch fails with its console', async () => {
    const { error } = await attemptLaunch(sb, {
      ...base,
      type: 's',
      'gcp-external-ip': 'false',
      'startup-timeout': '20',
    });
    expect(error?.message).toMatch(/Failed to connect to 127\.0\.0\.1 port \d+/);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('H100 below 8 GPUs', () => {
  test('on-demand, or spot with an on-demand fallback, is refused before anything exists; 8 GPUs are sold on-demand', () => {
    const made = sb.gce.instances().length;
    expect(() => specFor(sb, { ...base, gpu: 'h100', type: 's' })).toThrow(
      /Input 'type' .*"s".*a3-highgpu-1g is sold only as Spot or Flex-start VMs, not on-demand: set spot: true/,
    );
    expect(() => specFor(sb, { ...base, type: 'a3-highgpu-4g' })).toThrow(/Input 'type' .*"a3-highgpu-4g"/);
    expect(() => specFor(sb, { ...base, gpu: 'h100', type: 'm', spot: 'true' })).toThrow(
      /Input 'on-demand-fallback' .*"true".*a3-highgpu-2g .*no on-demand VM to fall back to/,
    );
    expect(() => specFor(sb, { ...base, type: 'a3-highgpu-8g,a3-highgpu-1g', spot: 'true' })).toThrow(
      /Input 'on-demand-fallback'/,
    );
    expect(specFor(sb, { ...base, gpu: 'h100', type: 'xl' }).machine.types).toEqual(['a3-highgpu-8g']);
    expect(sb.gce.instances().length).toBe(made);
  });

  test('spot without fallback gets a Spot a3-highgpu-1g, and only Spot is tried', async () => {
    const { result, error } = await attemptLaunch(sb, {
      ...base,
      gpu: 'h100',
      type: 's',
      spot: 'true',
      'on-demand-fallback': 'false',
    });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(runner.machine).toMatchObject({ type: 'a3-highgpu-1g', spot: true });
    expect(runner.tried.every((t) => t.spot)).toBe(true);
    expect(instanceOf(runner.machine.id).provisioningModel).toBe('SPOT');
    expect((await job('nvidia-smi -L')).log).toContain('NVIDIA H100 80GB HBM3');
    expect(await settle(sb)).toEqual([]);
  });
});

describe("a reusable runner's registration token", () => {
  const reusable = { ...base, type: 's', single: 'false', 'idle-timeout': '600' };
  const READ_SCRIPT =
    'curl -s -o /dev/null -w "%{http_code}" -H "Metadata-Flavor: Google" ' +
    '"http://$GCE_METADATA_HOST/computeMetadata/v1/instance/attributes/startup-script"; echo';

  test('leaves the metadata once the runner is online: a job reading the startup script gets 404', async () => {
    const { result, error } = await attemptLaunch(sb, reusable);
    expect(error).toBeUndefined();
    const vm = instanceOf(result!.runners[0]!.machine.id);
    expect(vm.metadata['startup-script']).toBeUndefined();
    expect(vm.metadata).toMatchObject({ 'cml-runner-repo': 'octo-org/ml' });
    const [setMetadata] = sb.gce.calls.filter((c) => c.action.startsWith('instances.setMetadata'));
    expect(setMetadata).toMatchObject({ status: 200, identity: GCE_SERVICE_ACCOUNTS.deployer });
    const done = await job(READ_SCRIPT);
    expect(done).toMatchObject({ conclusion: 'success' });
    expect(done.log).toMatch(/^404$/m);
    // The runner carries on: it takes a second job.
    expect(await job('echo still here')).toMatchObject({ conclusion: 'success', runnerName: result!.runners[0]!.name });
    await cleanupRunOf(sb, 'gcp');
    expect(await settle(sb)).toEqual([]);
  });

  test('a fingerprint that changed meanwhile is read again once', async () => {
    sb.faults.add({ service: 'gce', action: 'instances.setMetadata .*', code: 'conditionNotMet', times: 1 });
    const before = sb.gce.calls.length;
    const { result, error, log } = await attemptLaunch(sb, reusable);
    expect(error).toBeUndefined();
    const calls = sb.gce.calls.slice(before).filter((c) => /^instances\.(get|setMetadata) /.test(c.action));
    expect(calls.map((c) => `${c.action.split(' ')[0]} ${c.status}`)).toEqual([
      'instances.get 200',
      'instances.setMetadata 412',
      'instances.get 200',
      'instances.setMetadata 200',
    ]);
    expect(instanceOf(result!.runners[0]!.machine.id).metadata['startup-script']).toBeUndefined();
    expect(log.lines.join('\n')).not.toContain('after it came online');
    await cleanupRunOf(sb, 'gcp');
    expect(await settle(sb)).toEqual([]);
  });

  test('a launcher without compute.instances.get keeps the runner, with a warning', async () => {
    // Without compute.instances.setMetadata there is no launch at all: an insert with metadata needs it.
    configure({ deployerLacks: ['compute.instances.get'] });
    const log = new MemoryLog();
    const { result, error } = await attemptLaunch(sb, reusable, undefined, '4242', log);
    expect(error).toBeUndefined();
    expect(log.lines.join('\n')).toMatch(/after it came online: .*Required 'compute\.instances\.get' permission/);
    expect(instanceOf(result!.runners[0]!.machine.id).metadata['startup-script']).toBeDefined();
    expect(await job('echo kept')).toMatchObject({ conclusion: 'success' });
    await cleanupRunOf(sb, 'gcp');
    expect(await settle(sb)).toEqual([]);
  });

  test('a single-use runner has no token to remove: no call is made', async () => {
    const before = sb.gce.calls.length;
    const { error } = await attemptLaunch(sb, { ...base, type: 's' });
    expect(error).toBeUndefined();
    expect(sb.gce.calls.slice(before).filter((c) => c.action.startsWith('instances.setMetadata'))).toEqual([]);
    await job('echo once');
    expect(await settle(sb)).toEqual([]);
  });
});
