import { beforeAll, describe, expect, test } from '@jest/globals';
import type { Sandbox } from '../sandbox/index.js';
import { GitHubForge } from '../src/forge/github.js';
import { sweep } from '../src/lifecycle/index.js';
import { MemoryLog, attemptLaunch, cleanupRunOf, cloudFor, context, sweepOf } from './helpers.js';
import { useSandbox } from './support/sandbox.js';

/**
 * The lifecycle when clouds and GitHub misbehave: placements tried in order, count all or
 * nothing (or partial), reuse, cleanup and sweep. Real SDK clients against the sandbox, which
 * after each test must hold nothing, with every fault the test added fired.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

const runInstances = (): number => sb.ec2.calls.filter((c) => c.action === 'RunInstances').length;
const capacity = (times = 1): void =>
  sb.faults.add({ service: 'ec2', action: 'RunInstances', code: 'InsufficientInstanceCapacity', times });

async function runJob(label: string): Promise<void> {
  const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: [label], script: 'true' });
  const done = await sb.github.waitJob(job.id, 30_000);
  expect(done.conclusion).toBe('success');
}

describe('capacity fallback', () => {
  test('a type list: no capacity for the first type, the next one is launched and the order is reported', async () => {
    capacity();
    const { result, error, log } = await attemptLaunch(sb, { type: 'g4dn.xlarge,g5.xlarge', labels: 'fb-type' });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(runner.machine.type).toBe('g5.xlarge');
    expect(sb.ec2.instance(runner.machine.id)!.type).toBe('g5.xlarge');
    expect(runner.tried).toEqual([
      { type: 'g4dn.xlarge', spot: false, outcome: 'InsufficientInstanceCapacity' },
      { type: 'g5.xlarge', spot: false, outcome: 'obtained' },
    ]);
    expect(
      log.lines.some(
        (l) => l.startsWith('warning:') && l.includes('g4dn.xlarge on-demand: InsufficientInstanceCapacity'),
      ),
    ).toBe(true);
    await runJob('fb-type');
    await cleanupRunOf(sb); // the kept runner's AWS security group, as the README says
  });

  test('a subnet list: no capacity in the first zone, the next subnet is used', async () => {
    capacity();
    const { result, error } = await attemptLaunch(sb, {
      type: 's',
      'aws-subnet': 'subnet-0a1,subnet-0b2',
      labels: 'fb-subnet',
    });
    expect(error).toBeUndefined();
    const instance = sb.ec2.instance(result!.runners[0]!.machine.id)!;
    expect(instance.subnetId).toBe('subnet-0b2');
    expect(instance.availabilityZone).toBe('us-east-1b');
    expect(result!.runners[0]!.tried.map((t) => [t.where, t.outcome])).toEqual([
      ['subnet-0a1', 'InsufficientInstanceCapacity'],
      ['subnet-0b2', 'obtained'],
    ]);
    await runJob('fb-subnet');
    await cleanupRunOf(sb); // the kept runner's AWS security group, as the README says
  });

  test('spot without capacity anywhere falls back to on-demand, with a warning', async () => {
    capacity(2); // both spot placements
    const { result, error, log } = await attemptLaunch(sb, {
      type: 'g4dn.xlarge,g5.xlarge',
      spot: 'true',
      labels: 'fb-spot',
    });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(runner.machine).toMatchObject({ type: 'g4dn.xlarge', spot: false });
    expect(sb.ec2.instance(runner.machine.id)!.market).toBe('on-demand');
    expect(runner.tried.map((t) => `${t.type} ${t.spot ? 'spot' : 'on-demand'} ${t.outcome}`)).toEqual([
      'g4dn.xlarge spot InsufficientInstanceCapacity',
      'g5.xlarge spot InsufficientInstanceCapacity',
      'g4dn.xlarge on-demand obtained',
    ]);
    expect(log.lines.some((l) => l.startsWith('warning:') && l.includes('falling back to on-demand'))).toBe(true);
    await runJob('fb-spot');
    await cleanupRunOf(sb); // the kept runner's AWS security group, as the README says
  });

  test('a spot price below the market goes on-demand at once, skipping the other spot placements', async () => {
    const before = runInstances();
    const { result, error } = await attemptLaunch(sb, {
      type: 'g4dn.xlarge,g5.xlarge',
      spot: 'true',
      'spot-price': '0.001',
      labels: 'fb-price',
    });
    expect(error).toBeUndefined();
    expect(result!.runners[0]!.tried.map((t) => t.outcome)).toEqual(['SpotMaxPriceTooLow', 'obtained']);
    expect(result!.runners[0]!.machine.spot).toBe(false);
    expect(runInstances() - before).toBe(2);
    await runJob('fb-price');
    await cleanupRunOf(sb); // the kept runner's AWS security group, as the README says
  });

  test('on-demand-fallback: false keeps to spot and fails with the cloud code; nothing is left', async () => {
    capacity();
    const { error, ledger } = await attemptLaunch(sb, { type: 's', spot: 'true', 'on-demand-fallback': 'false' });
    expect(error?.message).toContain('InsufficientInstanceCapacity');
    expect(ledger!.machines.map((m) => m.refused)).toEqual(['InsufficientInstanceCapacity']);
  });

  test('a quota error is not retried elsewhere as if it were capacity', async () => {
    sb.faults.add({ service: 'ec2', action: 'RunInstances', code: 'VcpuLimitExceeded' });
    const before = runInstances();
    const { error } = await attemptLaunch(sb, {
      type: 'g4dn.xlarge,g5.xlarge',
      'aws-subnet': 'subnet-0a1,subnet-0b2',
      spot: 'true',
    });
    expect(error?.message).toContain('VcpuLimitExceeded');
    expect(error?.message).toContain('Service Quotas');
    expect(runInstances() - before).toBe(1);
  });

  test('with several runners, a placement without capacity is skipped by the others', async () => {
    // g4dn.xlarge never has capacity, however often it is asked for.
    sb.faults.add({
      service: 'ec2',
      action: 'RunInstances',
      where: { InstanceType: 'g4dn.xlarge' },
      code: 'InsufficientInstanceCapacity',
      times: Infinity,
    });
    // The other two runners get their credential late, so they place after the first one was refused.
    sb.faults.add({
      service: 'github',
      action: 'POST /repos/octo-org/ml/actions/runners/generate-jitconfig',
      where: { name: /^fb-many-[23]$/ },
      delayMs: 2000,
      times: 2,
    });
    const before = sb.ec2.calls.length;
    const { result, error } = await attemptLaunch(sb, {
      type: 'g4dn.xlarge,g5.xlarge',
      count: '3',
      name: 'fb-many',
      labels: 'fb-many',
    });
    expect(error).toBeUndefined();
    const asked = sb.ec2.calls
      .slice(before)
      .filter((c) => c.action === 'RunInstances')
      .map((c) => c.params?.InstanceType);
    // The refusal is learnt once: only the first runner asked for g4dn.xlarge.
    expect(asked.filter((t) => t === 'g4dn.xlarge')).toEqual(['g4dn.xlarge']);
    expect(asked.filter((t) => t === 'g5.xlarge')).toHaveLength(3);
    const tried = new Map(result!.runners.map((r) => [r.name, r.tried.map((t) => `${t.type} ${t.outcome}`)]));
    expect(tried).toEqual(
      new Map([
        ['fb-many-1', ['g4dn.xlarge InsufficientInstanceCapacity', 'g5.xlarge obtained']],
        ['fb-many-2', ['g5.xlarge obtained']],
        ['fb-many-3', ['g5.xlarge obtained']],
      ]),
    );
    for (let i = 0; i < 3; i++) await runJob('fb-many');
    await cleanupRunOf(sb); // the kept runner's AWS security group, as the README says
  });
});

describe('count', () => {
  test('all or nothing: one runner that never comes up ends all of them, and the launch fails', async () => {
    sb.machines.failBoot(1);
    const { error, ledger } = await attemptLaunch(sb, { count: '3', 'startup-timeout': '6', labels: 'count-all' });
    expect(error?.message).toContain('1 of 3 runners did not come up, so every runner of this launch was ended');
    expect(error?.message).toContain('did not come online within startup-timeout (6s)');
    expect(ledger!.keep).toEqual([]);
    expect(ledger!.machines.every((m) => m.ended)).toBe(true);
    // Nothing is left for post: main ended the machines that were up, and every registration.
    expect(sb.github.runners().filter((r) => r.labels.includes('count-all'))).toEqual([]);
  });

  test('allow-partial keeps the runners that came up and ends the one that did not', async () => {
    sb.machines.failBoot(1);
    const { result, error, log } = await attemptLaunch(sb, {
      count: '3',
      'startup-timeout': '6',
      'allow-partial': 'true',
      labels: 'count-partial',
    });
    expect(error).toBeUndefined();
    expect(result!.runners).toHaveLength(2);
    expect(result!.failed).toHaveLength(1);
    expect(result!.failed[0]!.reason).toContain('did not come online within startup-timeout');
    expect(result!.ledger.keep.sort()).toEqual(result!.runners.map((r) => r.name).sort());
    expect(
      log.lines.some((l) => l.startsWith('warning: 1 of 3 runners did not come up; allow-partial keeps the 2')),
    ).toBe(true);
    const failedEntry = result!.ledger.machines.find((m) => m.runnerName === result!.failed[0]!.name)!;
    expect(sb.ec2.instance(failedEntry.id!)!.state).toMatch(/shutting-down|terminated/);
    expect(sb.github.runners().map((r) => r.name)).not.toContain(result!.failed[0]!.name);
    await runJob('count-partial');
    await runJob('count-partial');
    await cleanupRunOf(sb); // the kept runner's AWS security group, as the README says
  });

  test('allow-partial with nothing up still fails and leaves nothing', async () => {
    sb.faults.add({ service: 'ec2', action: 'RunInstances', code: 'VcpuLimitExceeded', times: Infinity });
    const { error } = await attemptLaunch(sb, { count: '2', 'allow-partial': 'true' });
    expect(error?.message).toContain('VcpuLimitExceeded');
  });
});

describe('reuse', () => {
  test('reuse skips the launch when a matching runner is online; reuse-idle does not count a busy one', async () => {
    const first = await attemptLaunch(sb, { labels: 'reuse-gpu,big', single: 'false', 'idle-timeout': '60' });
    expect(first.error).toBeUndefined();
    const name = first.result!.runners[0]!.name;

    const before = runInstances();
    const reused = await attemptLaunch(sb, { labels: 'reuse-gpu', reuse: 'true' });
    expect(reused.error).toBeUndefined();
    expect(reused.result!.reused.map((r) => r.name)).toEqual([name]);
    expect(reused.result!.runners).toEqual([]);
    expect(runInstances()).toBe(before);

    // A runner without every label does not match.
    const other = await attemptLaunch(sb, { labels: 'reuse-gpu,other', reuse: 'true', count: '1' });
    expect(other.result!.reused).toEqual([]);
    expect(other.result!.runners).toHaveLength(1);
    await runJob('other');

    // Busy: reuse still counts it; reuse-idle does not, and launches.
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['reuse-gpu', 'big'], script: 'sleep 4' });
    const deadline = Date.now() + 15_000;
    while (sb.github.job(job.id).status !== 'in_progress' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect((await attemptLaunch(sb, { labels: 'reuse-gpu', reuse: 'true' })).result!.reused.map((r) => r.name)).toEqual(
      [name],
    );
    const idle = await attemptLaunch(sb, { labels: 'reuse-gpu', 'reuse-idle': 'true' });
    expect(idle.result!.reused).toEqual([]);
    expect(idle.result!.runners).toHaveLength(1);
    await sb.github.waitJob(job.id, 30_000);
    await runJob('reuse-gpu');
    await cleanupRunOf(sb);
  });

  test('an offline registration never satisfies reuse', async () => {
    const forge = new GitHubForge(
      { scope: { kind: 'repo', owner: 'octo-org', repo: 'ml' }, apiUrl: sb.env.GITHUB_API_URL, token: sb.tokens.admin },
      new MemoryLog(),
    );
    await forge.jitConfig('cml-offline-one', ['reuse-off', 'cml-run-4242'], 1);
    const { result } = await attemptLaunch(sb, { labels: 'reuse-off', reuse: 'true' });
    expect(result!.reused).toEqual([]);
    expect(result!.runners).toHaveLength(1);
    await runJob('reuse-off');
    const report = await cleanupRunOf(sb);
    expect(report.registrations.map((r) => r.name)).toContain('cml-offline-one');
  });
});

describe('cleanup and sweep', () => {
  test('mode cleanup ends every machine and registration of its run, and nothing of another run', async () => {
    const mine = await attemptLaunch(sb, { count: '2', single: 'false', 'idle-timeout': '0', labels: 'cleanup-mine' });
    const theirs = await attemptLaunch(
      sb,
      { single: 'false', 'idle-timeout': '0', labels: 'cleanup-theirs' },
      undefined,
      '777',
    );
    expect(mine.error).toBeUndefined();
    expect(theirs.error).toBeUndefined();
    const forge = new GitHubForge(
      { scope: { kind: 'repo', owner: 'octo-org', repo: 'ml' }, apiUrl: sb.env.GITHUB_API_URL, token: sb.tokens.admin },
      new MemoryLog(),
    );
    // A registration minted by a launch that died before its machine: only the run label ties it to the run.
    await forge.jitConfig('gpu-trainer-orphan', ['cleanup-mine', 'cml-run-4242'], 1);

    const report = await cleanupRunOf(sb);
    expect(report.machines.map((m) => m.id).sort()).toEqual(mine.result!.runners.map((r) => r.machine.id).sort());
    expect(report.registrations.map((r) => r.name).sort()).toEqual(
      [...mine.result!.runners.map((r) => r.name), 'gpu-trainer-orphan'].sort(),
    );
    expect(sb.ec2.instance(theirs.result!.runners[0]!.machine.id)!.state).toBe('running');
    expect(sb.github.runners().map((r) => r.name)).toContain(theirs.result!.runners[0]!.name);

    // Idempotent: a second cleanup finds everything already gone.
    const again = await cleanupRunOf(sb);
    expect(again.machines.filter((m) => m.result !== 'gone')).toEqual([]);
    expect(again.registrations).toEqual([]);
    await cleanupRunOf(sb, 'aws', '777');
  });

  test('mode sweep ends what is past expires-at or whose runner is gone, and offline registrations of ours; it spares the healthy', async () => {
    const expiring = await attemptLaunch(
      sb,
      { single: 'false', 'idle-timeout': '0', 'max-lifetime': '60', labels: 'sweep-a' },
      undefined,
      '801',
    );
    const healthy = await attemptLaunch(
      sb,
      { single: 'false', 'idle-timeout': '0', labels: 'sweep-b' },
      undefined,
      '802',
    );
    const orphaned = await attemptLaunch(
      sb,
      { single: 'false', 'idle-timeout': '0', labels: 'sweep-c' },
      undefined,
      '803',
    );
    const forge = new GitHubForge(
      { scope: { kind: 'repo', owner: 'octo-org', repo: 'ml' }, apiUrl: sb.env.GITHUB_API_URL, token: sb.tokens.admin },
      new MemoryLog(),
    );
    // Its registration deleted by hand: the machine has no runner any more.
    await forge.deleteRunner(orphaned.result!.runners[0]!.id);
    // An offline registration of ours with no machine (it carries a run label), and strangers'
    // offline ones: one named as CML itself names its runners.
    await forge.jitConfig('cml-left-behind', ['x', 'cml-run-799'], 1);
    await forge.jitConfig('someone-elses', ['x'], 1);
    await forge.jitConfig('cml-a1b2c3d4', ['cml'], 1);

    // Two minutes from now: the 60 s max-lifetime has passed; with a 10 minute grace, a machine
    // whose runner is gone is still given time (it may be registering).
    const report = await sweepOf(sb, 'aws', 600, Date.now() + 120_000);
    const reasons = new Map(report.machines.map((m) => [m.id, m.reason]));
    expect(reasons.get(expiring.result!.runners[0]!.machine.id)).toContain('past its expires-at');
    expect(reasons.has(healthy.result!.runners[0]!.machine.id)).toBe(false);
    expect(reasons.has(orphaned.result!.runners[0]!.machine.id)).toBe(false); // within the grace period
    expect(report.registrations.map((r) => r.name)).toContain('cml-left-behind');
    expect(report.registrations.map((r) => r.name)).not.toContain('someone-elses');
    expect(report.registrations.map((r) => r.name)).not.toContain('cml-a1b2c3d4');

    // Past the grace period the machine without a runner goes too.
    const later = await sweepOf(sb, 'aws', 60, Date.now() + 120_000);
    const laterReasons = new Map(later.machines.map((m) => [m.id, m.reason]));
    expect(laterReasons.get(orphaned.result!.runners[0]!.machine.id)).toContain('is no longer registered');
    expect(laterReasons.has(healthy.result!.runners[0]!.machine.id)).toBe(false);

    for (const stranger of ['someone-elses', 'cml-a1b2c3d4'])
      await forge.deleteRunner(sb.github.runners().find((r) => r.name === stranger)!.id);
    await cleanupRunOf(sb, 'aws', '802');
    await cleanupRunOf(sb, 'aws', '801');
    // The orphan's AWS security group was still held by its ending machine: the next sweep's, or cleanup's.
    await cleanupRunOf(sb, 'aws', '803');
  });
});

describe('refused credentials', () => {
  test.each([
    ['a bad token (401)', 'bad'],
    ['a token without the permission (403)', 'readOnly'],
  ] as const)('%s: the failed mint leaves nothing in the ledger for post', async (_what, token) => {
    const { error, ledger } = await attemptLaunch(sb, { token: sb.tokens[token], labels: 'refused' });
    expect(error).toBeDefined();
    expect(error!.message).toMatch(/GitHub (refused the token input \(401|answered 403)/);
    expect(ledger!.registrations).toEqual([]);
    expect(ledger!.machines).toEqual([]);
  });
});

describe('sweep at organisation scope', () => {
  test("spares another repository's offline runner, though it carries a run label", async () => {
    const log = new MemoryLog();
    const orgForge = new GitHubForge(
      { scope: { kind: 'org', org: 'octo-org' }, apiUrl: sb.env.GITHUB_API_URL, token: sb.tokens.admin },
      log,
    );
    // Another repository's launch left an offline organisation runner: its run label says
    // nothing of which repository launched it.
    const theirs = await orgForge.jitConfig('cml-other-repo', ['x', 'cml-run-555'], 1);
    const cloud = await cloudFor(sb, 'aws', 'us-east-1', log);
    const later = Date.now() + 120_000;
    const clock = { now: () => later, sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
    const report = await sweep(context(sb), 60, { cloud, forge: orgForge, log, clock });
    expect(report.registrations.map((r) => r.name)).not.toContain('cml-other-repo');
    expect(sb.github.runners().map((r) => r.name)).toContain('cml-other-repo');
    await orgForge.deleteRunner(theirs.runnerId);
  });
});

describe('retries', () => {
  test('answers lost to a reset connection: the retried create finds what the first one made, nothing is doubled', async () => {
    const fired = sb.faults.fired.length;
    sb.faults.add({ service: 'ec2', action: 'RunInstances', reset: 'after' });
    sb.faults.add({
      service: 'github',
      action: 'POST /repos/octo-org/ml/actions/runners/generate-jitconfig',
      reset: 'after',
    });
    const before = sb.ec2.instances().length;
    const { result, error } = await attemptLaunch(sb, { labels: 'retry-lost' });
    expect(error).toBeUndefined();
    // EC2 answered the retry from its client token: one instance, not two.
    expect(sb.ec2.instances().length - before).toBe(1);
    // GitHub had registered the name before the reset: that registration was replaced, not left.
    expect(sb.github.runners().filter((r) => r.name === result!.runners[0]!.name)).toHaveLength(1);
    expect(
      sb.faults.fired
        .slice(fired)
        .map((f) => f.service)
        .sort(),
    ).toEqual(['ec2', 'github']);
    await runJob('retry-lost');
    await cleanupRunOf(sb); // the kept runner's AWS security group, as the README says
  });

  test('a connection reset before the cloud acts is retried like a 5xx', async () => {
    sb.faults.add({ service: 'ec2', action: 'DescribeInstances', reset: 'before', times: 2 });
    sb.faults.add({ service: 'github', action: 'GET /repos/octo-org/ml/actions/runners', reset: 'before', times: 2 });
    const { error } = await attemptLaunch(sb, { labels: 'retry-reset' });
    expect(error).toBeUndefined();
    await runJob('retry-reset');
    await cleanupRunOf(sb); // the kept runner's AWS security group, as the README says
  });

  test('GitHub 5xx answers are retried; a 4xx fails at once with its status', async () => {
    sb.faults.add({
      service: 'github',
      action: 'POST /repos/octo-org/ml/actions/runners/generate-jitconfig',
      status: 502,
      times: 2,
    });
    const ok = await attemptLaunch(sb, { labels: 'retry-ok' });
    expect(ok.error).toBeUndefined();
    await runJob('retry-ok');
    await cleanupRunOf(sb); // the kept runner's AWS security group, as the README says

    const before = sb.github.calls.filter((c) => c.path.endsWith('generate-jitconfig')).length;
    sb.faults.add({
      service: 'github',
      action: 'POST /repos/octo-org/ml/actions/runners/generate-jitconfig',
      status: 422,
      message: 'Validation Failed',
      times: 1,
    });
    const failed = await attemptLaunch(sb, {});
    expect(failed.error?.message).toContain('422');
    expect(sb.github.calls.filter((c) => c.path.endsWith('generate-jitconfig')).length - before).toBe(1);
  });
});
