import { beforeAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Sandbox } from '../sandbox/index.js';
import { useSandbox } from './support/sandbox.js';
import { GCE_SERVICE_ACCOUNTS } from '../sandbox/gce.js';
import {
  MemoryLog,
  attemptLaunch,
  cleanupLedger,
  cleanupRunOf,
  settle,
  specFor,
  sweepOf,
  unended,
  until,
} from './helpers.js';

/**
 * The Google Cloud slice end to end: the real @google-cloud/compute clients (REST) and
 * google-auth-library's Workload Identity Federation credential against the sandbox, with VMs
 * that really run the rendered startup script and delete themselves through their metadata
 * server's token.
 */

/** One GCE second lasts 100 ms: a 60 s maxRunDuration ends after 6 s. */
const GCE_SECOND_MS = 100;
// After each test: nothing left in the sandbox, and every fault the test added fired.
const sandbox = useSandbox({ gceSecondMs: GCE_SECOND_MS });
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

const base = { cloud: 'gcp', region: 'us-central1', 'gcp-service-account': GCE_SERVICE_ACCOUNTS.runner };
const instanceOf = (id: string) => {
  const [zone, name] = id.split('/') as [string, string];
  return sb.gce.instances().find((i) => i.zone === zone && i.name === name)!;
};
const consoleOf = (id: string): string => instanceOf(id).machine?.console() ?? '';

describe('a healthy launch', () => {
  test('a T4 on N1 comes online, runs a job on its GPU and the VM deletes itself', async () => {
    const { result, error, ledger } = await attemptLaunch(sb, { ...base, gpu: 't4', type: 's', labels: 'cml-gpu' });
    expect(error).toBeUndefined();
    expect(ledger!.complete).toBe(true);
    const runner = result!.runners[0]!;
    expect(runner.machine.id).toMatch(/^us-central1-[a-f]\/cml-[0-9a-f]{10}$/);
    expect(runner.machine.type).toBe('n1-standard-4+nvidia-tesla-t4');

    const vm = instanceOf(runner.machine.id);
    expect(vm).toMatchObject({
      machineType: 'n1-standard-4',
      status: 'RUNNING',
      guestAccelerators: [{ type: 'nvidia-tesla-t4', count: 1 }],
    });
    // GCE itself deletes the VM at max-lifetime; GPUs cannot live-migrate.
    expect(vm.scheduling).toMatchObject({
      provisioningModel: 'STANDARD',
      instanceTerminationAction: 'DELETE',
      onHostMaintenance: 'TERMINATE',
      maxRunDuration: { seconds: '86400' },
    });
    expect(vm.serviceAccount).toEqual({
      email: GCE_SERVICE_ACCOUNTS.runner,
      scopes: ['https://www.googleapis.com/auth/cloud-platform'],
    });
    expect(vm.disks[0]).toMatchObject({ boot: true, autoDelete: true });
    expect(vm.disks[0]!.sourceImage).toContain('projects/deeplearning-platform-release/');
    expect(vm.labels).toMatchObject({
      'cml-runner-managed': 'true',
      'cml-runner-repo': 'octo-org_ml',
      'cml-runner-run-id': '4242',
      'cml-runner-runner': runner.name,
    });
    expect(vm.metadata).toMatchObject({ 'cml-runner-repo': 'octo-org/ml', 'cml-runner-runner': runner.name });
    expect(vm.metadata['startup-script']).toMatch(/^#!\/bin\/bash/);
    // No way in: project-wide SSH keys blocked, and the tag a deny-ingress firewall rule targets.
    expect(vm.metadata['block-project-ssh-keys']).toBe('TRUE');
    expect(vm.networkTags).toEqual(['cml-runner']);
    // The PAT never reaches the machine.
    expect(JSON.stringify(vm.metadata)).not.toContain(sb.tokens.admin);

    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-gpu'],
      script: 'nvidia-smi -L',
    });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done).toMatchObject({ status: 'completed', conclusion: 'success', runnerName: runner.name });
    expect(done.log).toContain('Tesla T4');

    expect(await settle(sb)).toEqual([]);
    expect(instanceOf(runner.machine.id)).toMatchObject({ deleted: true, endedReason: 'deleted' });
    // The VM deleted itself, with its own service account's token; nobody else deleted anything.
    expect(sb.gce.calls.filter((c) => c.action.startsWith('instances.delete'))).toEqual([
      expect.objectContaining({ status: 200, identity: GCE_SERVICE_ACCOUNTS.runner }),
    ]);
    expect(consoleOf(runner.machine.id)).toContain('asking Compute Engine to delete this instance');
  });

  test('a spot L4 gets a g2 machine with the SPOT model, and ends after idle-timeout', async () => {
    const { result, error } = await attemptLaunch(sb, {
      ...base,
      gpu: 'l4',
      type: 's',
      spot: 'true',
      single: 'false',
      'idle-timeout': '3',
      'hdd-size': '120',
    });
    expect(error).toBeUndefined();
    const { machine } = result!.runners[0]!;
    expect(machine).toMatchObject({ type: 'g2-standard-4', spot: true });
    const vm = instanceOf(machine.id);
    expect(vm.scheduling).toMatchObject({
      provisioningModel: 'SPOT',
      automaticRestart: false,
      instanceTerminationAction: 'DELETE',
      onHostMaintenance: 'TERMINATE',
    });
    expect(vm.guestAccelerators).toEqual([]);
    expect(vm.disks[0]).toMatchObject({ sizeGb: 120, autoDelete: true });
    await until('the idle VM deleted itself', () => instanceOf(machine.id).deleted);
    expect(consoleOf(machine.id)).toMatch(/idle for \d+s \(idle-timeout 3s\)/);
    // A reusable runner's registration outlives its machine; the cleanup job removes it.
    await cleanupRunOf(sb, 'gcp');
    expect(await settle(sb)).toEqual([]);
  });

  test('a CPU machine gets Ubuntu 24.04 and live migration', async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, type: 's', region: 'us-east' });
    expect(error).toBeUndefined();
    const vm = instanceOf(result!.runners[0]!.machine.id);
    expect(vm.zone).toMatch(/^us-east1-/);
    expect(vm.machineType).toBe('n2-standard-2');
    expect(vm.scheduling).toMatchObject({ provisioningModel: 'STANDARD', onHostMaintenance: 'MIGRATE' });
    expect(vm.disks[0]!.sourceImage).toMatch(/projects\/ubuntu-os-cloud\/global\/images\/ubuntu-2404-/);
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml'],
      script: 'echo trained',
    });
    await sb.github.waitJob(job.id, 30_000);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('capacity and quota', () => {
  test('a zone without capacity moves the runner to the next zone of the region', async () => {
    sb.faults.add({ service: 'gce', action: 'instances.insert us-central1-a', code: 'ZONE_RESOURCE_POOL_EXHAUSTED' });
    const { result, error } = await attemptLaunch(sb, { ...base, gpu: 'a100', type: 's' });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(runner.tried).toEqual([
      { type: 'a2-highgpu-1g', spot: false, where: 'us-central1-a', outcome: 'ZONE_RESOURCE_POOL_EXHAUSTED' },
      { type: 'a2-highgpu-1g', spot: false, where: 'us-central1-b', outcome: 'obtained' },
    ]);
    expect(instanceOf(runner.machine.id).zone).toBe('us-central1-b');
    // The refused zone holds nothing.
    expect(
      sb.gce.instances().filter((i) => i.zone === 'us-central1-a' && i.labels['cml-runner-runner'] === runner.name),
    ).toEqual([]);
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml'],
      script: 'nvidia-smi -L',
    });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done.log).toContain('A100');
    expect(await settle(sb)).toEqual([]);
  });

  test('zones that do not offer the GPU are never tried', async () => {
    // V100s are in us-central1 a, b, c and f; so are T4s, and us-west1 offers T4 only in a and b.
    const { result, error } = await attemptLaunch(sb, {
      ...base,
      region: 'us-west1',
      gpu: 't4',
      type: 's',
      spot: 'true',
      'on-demand-fallback': 'false',
    });
    expect(error).toBeUndefined();
    expect(result!.runners[0]!.machine.zone).toBe('us-west1-a');
    await cleanupRunOf(sb, 'gcp');
    expect(await settle(sb)).toEqual([]);

    const none = await attemptLaunch(sb, { ...base, region: 'europe-north1', gpu: 't4' });
    expect(none.error?.message).toMatch(/no zone of europe-north1 offers n1-standard-8\+nvidia-tesla-t4/);
    expect(none.ledger?.machines ?? []).toEqual([]);
    expect(await settle(sb)).toEqual([]);
  });

  test('spot without capacity anywhere falls back to on-demand', async () => {
    sb.faults.add({ service: 'gce', action: 'instances.insert .*', code: 'ZONE_RESOURCE_POOL_EXHAUSTED', times: 3 });
    const log = new MemoryLog();
    const { result, error } = await attemptLaunch(sb, { ...base, gpu: 'l4', spot: 'true' }, undefined, '4242', log);
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(runner.machine).toMatchObject({ spot: false, type: 'g2-standard-16' });
    expect(runner.tried.filter((t) => t.outcome === 'ZONE_RESOURCE_POOL_EXHAUSTED').every((t) => t.spot)).toBe(true);
    expect(log.lines.some((l) => l.includes('falling back to on-demand'))).toBe(true);
    await cleanupRunOf(sb, 'gcp');
    expect(await settle(sb)).toEqual([]);
  });

  test('a quota error names the quota, and fails at once: a quota holds in every zone of the region', async () => {
    sb.faults.add({ service: 'gce', action: 'instances.insert .*', code: 'QUOTA_EXCEEDED', times: Infinity });
    const firedBefore = sb.faults.fired.length;
    const { error, ledger } = await attemptLaunch(sb, { ...base, gpu: 't4' });
    expect(error?.message).toContain('GCP refused with QUOTA_EXCEEDED');
    expect(error?.message).toContain("Quota 'NVIDIA_T4_GPUS' exceeded");
    expect(error?.message).toContain('IAM & Admin > Quotas');
    // One insert in one zone: neither retried nor tried in the next zone.
    expect(sb.faults.fired.slice(firedBefore).map((f) => f.code)).toEqual(['QUOTA_EXCEEDED']);
    expect(ledger!.machines).toHaveLength(1);
    // Nothing was created, and main ended the registration.
    expect(await settle(sb)).toEqual([]);
    await cleanupLedger(sb, unended(ledger!));
    expect(await settle(sb)).toEqual([]);
  });
});

describe('ends that need help', () => {
  test('Compute Engine deletes the VM at max-lifetime (maxRunDuration), and cleanup removes its registration', async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, type: 's', 'max-lifetime': '60' });
    expect(error).toBeUndefined();
    const { machine } = result!.runners[0]!;
    expect(instanceOf(machine.id).scheduling).toMatchObject({ maxRunDuration: { seconds: '60' } });
    await until('maxRunDuration deleted the VM', () => instanceOf(machine.id).deleted, 30_000);
    expect(instanceOf(machine.id).endedReason).toBe('maxRunDuration');
    const report = await cleanupRunOf(sb, 'gcp');
    expect(report.registrations.map((r) => r.name)).toEqual([result!.runners[0]!.name]);
    expect(await settle(sb)).toEqual([]);
  });

  test('a VM whose service account may not delete it stops instead, says why, and cleanup deletes it', async () => {
    // The launcher was granted roles/iam.serviceAccountUser on this account too (service-account-user.yaml's step).
    const before = sb.gce.configure({ deployerActsAs: [GCE_SERVICE_ACCOUNTS.runnerNoDelete] });
    const { result, error } = await attemptLaunch(sb, {
      ...base,
      type: 's',
      'gcp-service-account': GCE_SERVICE_ACCOUNTS.runnerNoDelete,
    }).finally(() => sb.gce.configure(before));
    expect(error).toBeUndefined();
    const { machine } = result!.runners[0]!;
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml'],
      script: 'echo done',
    });
    await sb.github.waitJob(job.id, 30_000);
    await until('the VM stopped', () => instanceOf(machine.id).status === 'TERMINATED', 30_000);
    expect(consoleOf(machine.id)).toMatch(/Compute Engine refused to delete this instance \(HTTP 403\)/);
    // A stopped VM keeps its disk: it is left over until cleanup.
    expect((await sb.leftovers()).join('\n')).toContain(machine.id.split('/')[1]);
    const report = await cleanupRunOf(sb, 'gcp');
    expect(report.machines.map((m) => m.id)).toEqual([machine.id]);
    expect(await settle(sb)).toEqual([]);
  });

  test('without a service account the VM stops, and a sweep deletes it', async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, type: 's', 'gcp-service-account': '' });
    expect(error).toBeUndefined();
    const { machine } = result!.runners[0]!;
    expect(instanceOf(machine.id).serviceAccount).toBeUndefined();
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml'],
      script: 'echo done',
    });
    await sb.github.waitJob(job.id, 30_000);
    await until('the VM stopped', () => instanceOf(machine.id).status === 'TERMINATED', 30_000);
    const report = await sweepOf(sb, 'gcp', 0);
    expect(report.machines.map((m) => m.id)).toEqual([machine.id]);
    expect(await settle(sb)).toEqual([]);
  });

  test("a preempted spot VM fails its job with the runner's shutdown message, Compute Engine deletes it, and nothing is left", async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, gpu: 'l4', type: 's', spot: 'true' });
    expect(error).toBeUndefined();
    const { machine, name } = result!.runners[0]!;
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml'],
      script: 'echo training; sleep 30',
    });
    await until('the job started', () => sb.github.job(job.id).status === 'in_progress');
    const [zone, vm] = machine.id.split('/') as [string, string];
    await sb.gce.preempt(zone, vm);
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done.conclusion).toBe('failure');
    expect(done.log).toContain('The runner has received a shutdown signal');
    expect(instanceOf(machine.id)).toMatchObject({ deleted: true, endedReason: 'preempted' });
    // The ephemeral registration went with its failed job; the cleanup job finds nothing more.
    await until('the registration is gone', () => !sb.github.runners().some((r) => r.name === name));
    const report = await cleanupRunOf(sb, 'gcp');
    expect(report.machines).toEqual([]);
    expect(await settle(sb)).toEqual([]);
  });

  test('an insert retried after a lost answer creates one VM, not two', async () => {
    sb.faults.add({ service: 'gce', action: 'instances.insert .*', reset: 'after', times: 1 });
    const insertsBefore = sb.gce.calls.filter((c) => c.action.startsWith('instances.insert')).length;
    const { result, error } = await attemptLaunch(sb, { ...base, type: 's' });
    expect(error).toBeUndefined();
    const name = result!.runners[0]!.name;
    // The retry carried the same requestId: Compute Engine answered with the first operation.
    expect(sb.gce.instances().filter((i) => i.labels['cml-runner-runner'] === name)).toHaveLength(1);
    expect(sb.gce.calls.filter((c) => c.action.startsWith('instances.insert')).length - insertsBefore).toBe(2);
    await cleanupRunOf(sb, 'gcp');
    expect(await settle(sb)).toEqual([]);
  });

  test('a VM that never boots fails the launch with its serial console, and nothing is left', async () => {
    sb.machines.failBoot(1);
    const { error, ledger } = await attemptLaunch(sb, { ...base, type: 's', 'startup-timeout': '5' });
    expect(error?.message).toMatch(/did not come online/);
    expect(ledger!.machines).toHaveLength(1);
    expect(await settle(sb)).toEqual([]);
    // Post, finding the ledger without main's ends, is idempotent: already gone is success.
    await cleanupLedger(sb, unended(ledger!));
    expect(await settle(sb)).toEqual([]);
  });

  test('an insert whose answer is lost is found by its client token and ended by post', async () => {
    sb.faults.add({ service: 'gce', action: 'instances.insert .*', reset: 'after', times: 5 });
    const { error, ledger } = await attemptLaunch(sb, { ...base, type: 's' });
    expect(error).toBeDefined();
    const entry = ledger!.machines[0]!;
    expect(entry.id).toBeUndefined();
    // Main may not know the machine; post finds it by its client token.
    await cleanupLedger(sb, unended(ledger!));
    expect(await settle(sb)).toEqual([]);
  });
});

describe('inputs and credentials', () => {
  test('bad Google Cloud inputs name the input and create nothing', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ gpu: 'a10g' }, /Input 'gpu' .*"a10g".*l4/],
      [{ type: 'n2-standard-8', gpu: 't4' }, /Input 'type' .*"n2-standard-8".*N1/],
      [{ type: 'g2-standard-8', gpu: 't4' }, /Input 'type' .*carries a l4/],
      [{ spot: 'true', 'spot-price': '0.5' }, /Input 'spot-price' .*use -1 on Google Cloud/],
      [{ tags: 'Team=ML' }, /Input 'tags' .*"Team=ML".*lowercase/],
      [{ 'gcp-service-account': 'runner; rm -rf /' }, /Input 'gcp-service-account'/],
      [
        { 'gcp-service-account': GCE_SERVICE_ACCOUNTS.defaultCompute },
        /Input 'gcp-service-account' .*"123456789012-compute@developer\.gserviceaccount\.com".*default service account.*Editor/,
      ],
      [{ 'gcp-project': 'x' }, /Input 'gcp-project' .*"x"/],
      [{ image: 'ubuntu' }, /Input 'image' .*projects\//],
    ];
    for (const [inputs, message] of bad) expect(() => specFor(sb, { ...base, ...inputs })).toThrow(message);
    expect(sb.gce.instances().filter((i) => !i.deleted)).toEqual([]);
  });

  test('an image that does not exist fails before any VM, naming the image', async () => {
    const { error, ledger } = await attemptLaunch(sb, {
      ...base,
      type: 's',
      image: 'projects/sandbox-project/global/images/no-such-image',
    });
    expect(error?.message).toMatch(/GCP refused with notFound: compute images.get: .*no-such-image/);
    expect(ledger?.machines ?? []).toEqual([]);
    expect(await settle(sb)).toEqual([]);
  });

  test("a service account that does not exist is refused with Compute Engine's reason and advice, and nothing is left", async () => {
    const { error } = await attemptLaunch(sb, {
      ...base,
      type: 's',
      'gcp-service-account': 'ghost-vm@sandbox-project.iam.gserviceaccount.com',
    });
    expect(error?.message).toMatch(
      /GCP refused with invalid: compute instances.insert in us-central1-a: .*ghost-vm@sandbox-project/,
    );
    expect(error?.message).toContain('gcp-service-account');
    expect(await settle(sb)).toEqual([]);
  });

  test('rate limits and backend errors are retried; the launch goes on', async () => {
    const firedBefore = sb.faults.fired.length;
    sb.faults.add({
      service: 'gce',
      action: 'machineTypes.aggregatedList global',
      code: 'rateLimitExceeded',
      times: 2,
    });
    sb.faults.add({ service: 'gce', action: 'instances.insert .*', code: 'backendError', times: 1 });
    const { error } = await attemptLaunch(sb, { ...base, type: 's' });
    expect(error).toBeUndefined();
    expect(sb.faults.fired.slice(firedBefore).map((f) => f.code)).toEqual([
      'rateLimitExceeded',
      'rateLimitExceeded',
      'backendError',
    ]);
    await cleanupRunOf(sb, 'gcp');
    expect(await settle(sb)).toEqual([]);
  });

  test('credentials that GCP refuses fail the launch before any VM, with advice', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcp-creds-'));
    const file = sb.gce.credentialsFile(dir);
    fs.writeFileSync(path.join(dir, 'github-oidc-token'), 'not-the-token');
    try {
      const env = { ...sb.env, GOOGLE_APPLICATION_CREDENTIALS: file };
      const { error, ledger } = await attemptLaunch(sb, { ...base, type: 's' }, undefined, '4242', undefined, env);
      expect(error?.message).toMatch(/GCP refused with UNAUTHENTICATED: .*invalid_grant/);
      expect(error?.message).toContain('google-github-actions/auth');
      expect(ledger?.machines ?? []).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(await settle(sb)).toEqual([]);
  });
});
