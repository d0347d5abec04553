import { beforeAll, describe, expect, test } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sandbox } from '../sandbox/index.js';
import { MemoryLog, attemptLaunch, cleanupKept, cleanupLedger, cleanupRunOf, settle, unended } from './helpers.js';
import { useSandbox } from './support/sandbox.js';
import { until } from './support/wait.js';

/**
 * The AWS slice end to end: the real EC2, SSM and Octokit clients against the sandbox, with
 * machines that really run the rendered startup script and the stand-in runner. After each test
 * the sandbox must hold nothing, and every fault the test added must have fired.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

describe('a healthy launch', () => {
  test('an on-demand T4 runner comes online, takes one job and its machine terminates itself', async () => {
    const { result, error, ledger } = await attemptLaunch(sb, { gpu: 't4', type: 's', labels: 'cml-gpu' });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(runner.name).toMatch(/^cml-[0-9a-f]{10}$/);
    expect(ledger!.complete).toBe(true);

    const instance = sb.ec2.instances().find((i) => i.id === runner.machine.id)!;
    expect(instance).toMatchObject({
      type: 'g4dn.xlarge',
      state: 'running',
      spot: false,
      shutdownBehavior: 'terminate',
    });
    expect(instance.metadataOptions).toMatchObject({ httpTokens: 'required', httpPutResponseHopLimit: 1 });
    // The GPU image, its root grown in place rather than a second disk added.
    expect(instance.imageId).toBe(sb.ec2.images.gpuX64);
    expect(instance.volumes).toHaveLength(1);
    expect(instance.volumes[0]!.deviceName).toBe(instance.rootDeviceName);
    for (const tags of [instance.tags, instance.volumes[0]!.tags, instance.networkInterfaceTags]) {
      expect(tags).toMatchObject({
        Name: runner.name,
        'cml-runner:runner': runner.name,
        'cml-runner:repo': 'octo-org/ml',
        'cml-runner:run-id': '4242',
        'cml-runner:managed': 'true',
      });
      expect(Date.parse(tags['cml-runner:expires-at']!)).toBeGreaterThan(Date.now() + 23 * 3600_000);
    }

    const registered = sb.github.runners().find((r) => r.name === runner.name)!;
    expect(registered).toMatchObject({ status: 'online', ephemeral: true, id: runner.id });
    expect(registered.labels).toEqual(expect.arrayContaining(['self-hosted', 'cml-gpu']));

    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-gpu'],
      script: 'nvidia-smi -L',
    });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done).toMatchObject({ status: 'completed', conclusion: 'success', runnerName: runner.name });
    expect(done.log).toContain('Tesla T4');

    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
    expect(sb.ec2.instances().find((i) => i.id === runner.machine.id)!.state).toBe('terminated');
  });

  test('a spot CPU runner gets the Ubuntu image, the asked disk size and the spot market', async () => {
    const { result, error } = await attemptLaunch(sb, {
      type: 'm',
      spot: 'true',
      'spot-price': '0.5',
      'hdd-size': '120',
      single: 'false',
      'idle-timeout': '3',
    });
    expect(error).toBeUndefined();
    const id = result!.runners[0]!.machine.id;
    const instance = sb.ec2.instances().find((i) => i.id === id)!;
    expect(instance).toMatchObject({ type: 'm5.2xlarge', spot: true, imageId: sb.ec2.images.ubuntuX64 });
    expect(instance.spotOptions).toMatchObject({
      spotInstanceType: 'one-time',
      instanceInterruptionBehavior: 'terminate',
      maxPrice: '0.5',
    });
    expect(instance.volumes[0]).toMatchObject({
      deviceName: instance.rootDeviceName,
      size: 120,
      deleteOnTermination: true,
    });

    // A reusable runner registered with a token, not JIT; it ends after idle-timeout with no job.
    const registered = sb.github.runners().find((r) => r.name === result!.runners[0]!.name)!;
    expect(registered.ephemeral).toBe(false);
    const deadline = Date.now() + 20_000;
    while (sb.ec2.instances().find((i) => i.id === id)!.state !== 'terminated' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(sb.ec2.instances().find((i) => i.id === id)!.state).toBe('terminated');
    expect(sb.ec2.consoleOf(id)).toMatch(/idle for \d+s \(idle-timeout 3s\)/);
    // Its offline registration stays until cleanup (or GitHub after 14 days); post leaves it, as it kept the runner.
    expect(result!.ledger.keep).toEqual([result!.runners[0]!.name]);
    const report = await cleanupRunOf(sb);
    expect(report.registrations.map((r) => r.name)).toEqual([result!.runners[0]!.name]);
    expect(await settle(sb)).toEqual([]);
  });

  test('organisation runners use a runner group by name', async () => {
    const { result, error } = await attemptLaunch(sb, {
      repo: `${sb.env.GITHUB_SERVER_URL}/octo-org`,
      'runner-group': 'gpu',
      labels: 'org-gpu',
    });
    expect(error).toBeUndefined();
    const registered = sb.github.runners().find((r) => r.name === result!.runners[0]!.name)!;
    expect(registered).toMatchObject({ scope: expect.stringContaining('octo-org'), status: 'online' });
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['org-gpu'], script: 'true' });
    await sb.github.waitJob(job.id, 30_000);
    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
  });

  test('hostile labels and tags reach GitHub and EC2 verbatim and never execute', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cml-hostile-'));
    const marker = join(dir, 'pwned');
    const label = `x$(touch ${marker})\`touch ${marker}\`'"`;
    const { result, error } = await attemptLaunch(sb, {
      labels: `${label},ünï✓`,
      tags: `note=$(touch ${marker})`,
      'startup-script': `echo 'CML_RUNNER_SETTINGS'; echo "user script ran"`,
    });
    expect(error).toBeUndefined();
    const name = result!.runners[0]!.name;
    expect(sb.github.runners().find((r) => r.name === name)!.labels).toEqual(expect.arrayContaining([label, 'ünï✓']));
    expect(sb.ec2.instances().find((i) => i.name === name)!.tags.note).toBe(`$(touch ${marker})`);
    expect(sb.ec2.consoleOf(result!.runners[0]!.machine.id)).toContain('user script ran');
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: [label], script: 'true' });
    await sb.github.waitJob(job.id, 30_000);
    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
    expect(existsSync(marker)).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});

test('the largest startup-script accepted fits the 16 KB user data, gzipped, and runs', async () => {
  const script =
    `echo "big script starts"\n${'# padding line of a long user script, kept as it is\n'.repeat(110)}echo "big script ends"\n`.slice(
      0,
      6100,
    );
  const { result, error } = await attemptLaunch(sb, {
    'startup-script': `${script}\necho "big script ends"\n`,
    labels: 'cml-big-script',
  });
  expect(error).toBeUndefined();
  const instance = sb.ec2.instances().find((i) => i.id === result!.runners[0]!.machine.id)!;
  expect(instance.userDataBytes).toBeLessThan(16384);
  expect(instance.userData.length).toBeGreaterThan(16384); // what the machine runs, unpacked
  expect(sb.ec2.consoleOf(instance.id)).toContain('big script ends');
  const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-big-script'], script: 'true' });
  await sb.github.waitJob(job.id, 30_000);
  await cleanupKept(sb, result!.ledger);
  expect(await settle(sb)).toEqual([]);
});

describe('failures leave nothing behind', () => {
  test('a machine whose startup script fails ends itself, and the error shows its console', async () => {
    const { error, ledger } = await attemptLaunch(sb, {
      'startup-script': 'echo "installing CUDA extras"; echo "E: disk full" >&2; exit 3',
    });
    expect(error?.message).toContain('ended before its runner came online');
    expect(error?.message).toContain('E: disk full');
    expect(error?.message).toContain('the startup-script input failed');
    await cleanupLedger(sb, ledger!);
    expect(await settle(sb)).toEqual([]);
  });

  test('a runner that never comes online fails after startup-timeout; the launch ends machine and registration at once', async () => {
    sb.machines.failBoot(1);
    const { error, ledger, log } = await attemptLaunch(sb, { 'startup-timeout': '5' });
    expect(error?.name).toBe('StartupTimeoutError');
    expect(error?.message).toContain('did not come online within startup-timeout (5s)');
    expect(ledger!.machines[0]!.id).toMatch(/^i-/);
    expect(ledger!.registrations[0]!.id).toBeGreaterThan(0);
    // Main ended both before failing, and wrote so: post has nothing left to do.
    expect(log.lines).toContain(`machine ${ledger!.machines[0]!.id} (${ledger!.machines[0]!.runnerName}): terminated`);
    expect(ledger!.machines[0]!.ended).toBe(true);
    expect(ledger!.registrations[0]!.ended).toBe(true);
    expect((await cleanupLedger(sb, ledger!)).machines).toEqual([]);
    expect(await settle(sb)).toEqual([]);
    // Cleanup is idempotent: ending the same things again finds them already gone.
    const again = await cleanupLedger(sb, unended(ledger!));
    expect(again.machines[0]!.result).toBe('gone');
    expect(again.registrations[0]!.result).toBe('gone');
  });

  test('a launch that fails after the instance exists (GitHub errors while waiting) is cleaned from the ledger', async () => {
    sb.faults.add({
      service: 'github',
      action: 'GET /repos/octo-org/ml/actions/runners',
      status: 500,
      times: Infinity,
    });
    const { error, ledger } = await attemptLaunch(sb, {});
    expect(error?.message).toContain('500');
    expect(ledger!.machines[0]!.id).toMatch(/^i-/);
    sb.faults.clear();
    await cleanupLedger(sb, ledger!);
    expect(await settle(sb)).toEqual([]);
  });

  test('capacity errors pass through with their code and what to do; nothing is left', async () => {
    sb.faults.add({ service: 'ec2', action: 'RunInstances', code: 'InsufficientInstanceCapacity', times: Infinity });
    const { error, ledger } = await attemptLaunch(sb, { gpu: 'a100' });
    expect(error?.message).toContain('InsufficientInstanceCapacity');
    expect(error?.message).toContain('no capacity for this instance type');
    await cleanupLedger(sb, ledger!);
    expect(await settle(sb)).toEqual([]);
  });

  test('a vCPU quota error names the quota to raise', async () => {
    sb.faults.add({ service: 'ec2', action: 'RunInstances', code: 'VcpuLimitExceeded' });
    const { error, ledger } = await attemptLaunch(sb, { gpu: 'h100' });
    expect(error?.message).toContain('VcpuLimitExceeded');
    expect(error?.message).toContain('Service Quotas');
    await cleanupLedger(sb, ledger!);
    expect(await settle(sb)).toEqual([]);
  });

  test('throttling by EC2 and GitHub is answered by retries', async () => {
    sb.faults.add({ service: 'ec2', action: 'RunInstances', code: 'RequestLimitExceeded', times: 2 });
    sb.faults.add({
      service: 'github',
      action: 'POST /repos/octo-org/ml/actions/runners/generate-jitconfig',
      status: 403,
      retryAfter: 1,
      message: 'You have exceeded a secondary rate limit',
      times: 1,
    });
    const before = sb.ec2.calls.filter((c) => c.action === 'RunInstances').length;
    const { error, result } = await attemptLaunch(sb, {});
    expect(error).toBeUndefined();
    expect(sb.ec2.calls.filter((c) => c.action === 'RunInstances').length - before).toBe(3);
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml'], script: 'true' });
    await sb.github.waitJob(job.id, 30_000);
    expect(result!.runners).toHaveLength(1);
    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
  });

  test.each([
    ['readOnly', 403, 'Administration: write'],
    ['bad', 401, '401'],
  ] as const)(
    'a %s token fails with the permission needed, before anything is created',
    async (kind, _status, expected) => {
      const before = sb.ec2.calls.length;
      const { error, ledger } = await attemptLaunch(sb, { token: sb.tokens[kind] });
      expect(error?.message).toContain(expected);
      if (kind === 'readOnly') expect(error?.message).toContain('GITHUB_TOKEN can never manage self-hosted runners');
      expect(sb.ec2.calls.slice(before).filter((c) => c.action === 'RunInstances')).toHaveLength(0);
      expect(ledger!.machines).toHaveLength(0);
      expect(await sb.leftovers()).toEqual([]);
    },
  );

  test('a cancel that arrives as the runner comes online still cancels: nothing is kept for post to leave', async () => {
    const cancel = new AbortController();
    const log = new MemoryLog();
    const info = log.info.bind(log);
    log.info = (m: string) => {
      info(m);
      if (m.includes('online after')) cancel.abort(new Error('SIGTERM'));
    };
    const { error, ledger } = await attemptLaunch(sb, { labels: 'cml-cancel-online' }, cancel.signal, '4242', log);
    expect(error?.message).toContain('cancelled');
    expect(ledger!.keep).toEqual([]);
    const report = await cleanupLedger(sb, ledger!);
    expect(report.machines.map((m) => m.result)).toEqual(['terminated']);
    expect(await settle(sb)).toEqual([]);
  });

  test('cancelling mid-launch stops new creations, and the ledger still names what exists', async () => {
    const cancel = new AbortController();
    // The second and third runners get their credential late: the cancel comes while they wait
    // for it, after the first runner's machine was created.
    sb.faults.add({
      service: 'github',
      action: 'POST /repos/octo-org/ml/actions/runners/generate-jitconfig',
      where: { name: /^cml-cancel-[23]$/ },
      delayMs: 2000,
      times: 2,
    });
    const runInstances = () => sb.ec2.calls.filter((c) => c.action === 'RunInstances');
    const before = runInstances().length;
    const pending = attemptLaunch(sb, { count: '3', name: 'cml-cancel', labels: 'cml-cancel' }, cancel.signal);
    await until('the first machine is created', () => runInstances().length > before, 10_000, 20);
    const sentBeforeCancel = runInstances().length;
    cancel.abort(new Error('SIGTERM'));
    const { error, ledger } = await pending;
    expect(error?.message).toContain('The launch was cancelled');
    // Nothing was asked of EC2 after the cancel, and fewer machines than asked for were ever made.
    expect(runInstances().length).toBe(sentBeforeCancel);
    const made = sb.ec2.instances().filter((i) => i.tags['cml-runner:runner']?.startsWith('cml-cancel-'));
    expect(made.map((i) => i.tags['cml-runner:runner'])).toEqual(['cml-cancel-1']);
    // The ledger names that machine and no other: no entry for a machine that was never asked for.
    expect(ledger!.complete).toBe(false);
    expect(ledger!.machines.map((m) => [m.runnerName, m.id])).toEqual([['cml-cancel-1', made[0]!.id]]);
    const report = await cleanupLedger(sb, ledger!);
    expect(report.machines.map((m) => [m.id, m.result])).toEqual([[made[0]!.id, 'terminated']]);
    expect(await settle(sb)).toEqual([]);
  });
});
