import { beforeAll, describe, expect, test } from '@jest/globals';
import { ActionRun } from '../sandbox/actions.js';
import type { Sandbox } from '../sandbox/index.js';
import { settle } from './helpers.js';
import { useSandbox } from './support/sandbox.js';
import { until } from './support/wait.js';

/**
 * The action as the Actions runner runs it: the entries action.yml names (dist/index.js for
 * main, dist/post.js for post), INPUT_* variables, GITHUB_STATE between main and post, signals
 * on cancel. It runs the bundle, which CI rebuilds and checks before the tests. After each test
 * the sandbox must hold nothing, and every fault the test added must have fired.
 */

// A Kubernetes second lasts 20 ms, so a finished Job's TTL passes within the test.
const sandbox = useSandbox({ kubernetesSecondMs: 20 });
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

/** Main's last resort after a signal (src/action/main.ts): it exits on its own this long after. */
const HARD_EXIT_MS = 3000;

function action(inputs: Record<string, string>): ActionRun {
  return new ActionRun({
    env: sb.env,
    inputs: { cloud: 'aws', token: sb.tokens.admin, 'startup-timeout': '60', ...inputs },
  });
}

/**
 * The workflow's final `mode: cleanup` job: a kept runner's machine ends itself, and the launch's
 * own AWS security group, which it used, is ended here.
 */
async function finalCleanup(): Promise<void> {
  const cleanup = action({ mode: 'cleanup' });
  expect((await cleanup.main().done).code).toBe(0);
  cleanup.dispose();
}

describe('the action', () => {
  test('main sets outputs and a summary, keeps every secret off the machine, and post leaves healthy runners alone', async () => {
    const run = action({ gpu: 'l4', type: 's', labels: 'cml-l4' });
    const main = await run.main().done;
    expect(main.code).toBe(0);
    const names = main.outputs['runner-names']!.split(',');
    expect(names).toHaveLength(1);
    expect(main.outputs).toMatchObject({ labels: 'cml-l4', 'instance-types': 'g6.xlarge', spot: 'false' });
    expect(main.outputs['instance-ids']).toMatch(/^i-[0-9a-f]+$/);
    expect(main.outputs['runner-ids']).toMatch(/^\d+$/);
    expect(main.outputs['launch-label']).toMatch(/^cml-[0-9a-f]{16}$/);
    expect(main.summary).toContain(main.outputs['launch-label']!);
    expect(main.summary).toContain(names[0]);
    expect(main.summary).toContain('g6.xlarge');
    expect(main.summary).toContain('on-demand');

    // The PAT reaches neither the machine nor the state; the JIT config is masked in the log.
    const instance = sb.ec2.instances().find((i) => i.id === main.outputs['instance-ids'])!;
    expect(instance.userData).not.toContain(sb.tokens.admin);
    expect(JSON.stringify(run.state())).not.toContain(sb.tokens.admin);
    expect(main.log).toContain(`::add-mask::${sb.tokens.admin}`);
    expect(main.log.match(/::add-mask::/g)!.length).toBeGreaterThanOrEqual(2);

    const post = await run.post();
    expect(post.code).toBe(0);
    expect(post.log).toContain('Every runner that came online');
    expect(sb.ec2.instances().find((i) => i.id === main.outputs['instance-ids'])!.state).toBe('running');

    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-l4'], script: 'true' });
    await sb.github.waitJob(job.id, 30_000);
    await finalCleanup();
    expect(await settle(sb)).toEqual([]);
    run.dispose();
  });

  test('a bad input fails main with one clear error, and nothing is created', async () => {
    const before = sb.ec2.calls.length + sb.github.calls.length;
    const run = action({ gpu: 'k80' });
    const main = await run.main().done;
    expect(main.code).not.toBe(0);
    const errors = main.log.split('\n').filter((l) => l.startsWith('::error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain("Input 'gpu'");
    expect(errors[0]).toContain('"k80"');
    expect(sb.ec2.calls.length + sb.github.calls.length).toBe(before);
    const post = await run.post();
    expect(post.code).toBe(0);
    expect(post.log).toContain('Nothing was created');
    run.dispose();
  });

  test('on Kubernetes: the kubeconfig from KUBERNETES_CONFIGURATION is masked, outputs name the Job, and SIGTERM mid-launch leaves nothing after post', async () => {
    const kubeconfig = sb.kubernetes.kubeconfig();
    const env = { ...sb.env, KUBECONFIG: '', KUBERNETES_CONFIGURATION: kubeconfig };
    const healthy = new ActionRun({
      env,
      inputs: { cloud: 'kubernetes', token: sb.tokens.admin, gpu: 't4', labels: 'cml-k8s', 'startup-timeout': '60' },
    });
    const main = await healthy.main().done;
    expect(main.code).toBe(0);
    expect(main.outputs).toMatchObject({ labels: 'cml-k8s', 'instance-types': '2/8Gi/1', spot: 'false' });
    expect(sb.kubernetes.jobs().map((j) => j.metadata.name)).toContain(main.outputs['instance-ids']);
    expect(main.log).toContain(`::add-mask::${sb.kubernetes.tokens.launcher}`);
    expect(main.log.replace(/::add-mask::.*/g, '')).not.toContain(sb.kubernetes.tokens.launcher);
    expect((await healthy.post()).code).toBe(0);
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-k8s'], script: 'true' });
    await sb.github.waitJob(job.id, 30_000);
    // The runner ends, the Job completes, and its TTL removes the Job, the pod and the Secret.
    expect(await settle(sb)).toEqual([]);
    healthy.dispose();

    // The Job creations are slow: SIGTERM arrives once a runner's Secret exists and its Job is on the way.
    sb.faults.add({ service: 'kubernetes', action: 'create jobs', delayMs: 1500, times: 3 });
    const cancelled = new ActionRun({
      env,
      inputs: { cloud: 'kubernetes', token: sb.tokens.admin, count: '2', 'startup-timeout': '60' },
    });
    const { child, done } = cancelled.main();
    const deadline = Date.now() + 20_000;
    while (sb.kubernetes.secrets().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGTERM');
    expect((await done).code).not.toBe(0);
    const post = await cancelled.post();
    expect(post.code).toBe(0);
    expect(post.log).toContain('Cleaning up the failed launch');
    expect(await settle(sb)).toEqual([]);
    cancelled.dispose();
  });

  test('a token GitHub refuses fails main with its answer, and post finds nothing left to end', async () => {
    const run = action({ token: sb.tokens.bad });
    const main = await run.main().done;
    expect(main.code).not.toBe(0);
    expect(main.log).toContain('GitHub refused the token input (401');
    const post = await run.post();
    expect(post.code).toBe(0);
    expect(post.log).toContain('Nothing was created; nothing to clean up.');
    expect(post.log).not.toContain('end these by hand');
    run.dispose();
  });

  test('the summary shows labels as text, never as Markdown or HTML', async () => {
    const label = 'cml-<b>gpu</b>_*x*';
    const run = action({ labels: label });
    const main = await run.main().done;
    expect(main.code).toBe(0);
    expect(main.summary).toContain('cml-&#60;b&#62;gpu&#60;/b&#62;&#95;&#42;x&#42;');
    expect(main.summary).not.toContain('<b>gpu');
    expect((await run.post()).code).toBe(0);
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: [label], script: 'true' });
    await sb.github.waitJob(job.id, 30_000);
    await finalCleanup();
    expect(await settle(sb)).toEqual([]);
    run.dispose();
  });

  test('a post whose main was killed before it could write anything never launches', async () => {
    const run = action({ gpu: 't4' });
    const before = sb.ec2.calls.length + sb.github.calls.length + sb.kubernetes.calls.length;
    const post = await run.post();
    expect(post.code).toBe(0);
    expect(post.log).toContain('Nothing was created');
    expect(sb.ec2.calls.length + sb.github.calls.length + sb.kubernetes.calls.length).toBe(before);
    run.dispose();
  });

  const phases = {
    // The image lookup is slow: SIGTERM arrives while the JIT configs are minted beside it.
    preparing: {
      arm: () => sb.faults.add({ service: 'ssm', action: 'GetParameter', delayMs: 1500 }),
      reached: (base: Counts) => sb.github.calls.slice(base.github).some((c) => c.path.endsWith('generate-jitconfig')),
    },
    // One creation is slow: SIGTERM arrives while a RunInstances call is in flight.
    creating: {
      arm: () => sb.faults.add({ service: 'ec2', action: 'RunInstances', delayMs: 1000 }),
      reached: (base: Counts) => sb.ec2.calls.slice(base.ec2).some((c) => c.action === 'RunInstances'),
    },
    // A machine never boots: SIGTERM arrives while main polls for runners.
    waiting: {
      arm: () => sb.machines.failBoot(1),
      reached: (base: Counts) =>
        sb.ec2.calls.slice(base.ec2).filter((c) => c.action === 'DescribeInstances').length >= 2,
    },
  } as const;
  type Counts = { ec2: number; github: number };

  test.each(Object.keys(phases) as Array<keyof typeof phases>)(
    'SIGTERM while %s stops main at once, and post ends everything it recorded',
    async (phase) => {
      const run = action({ count: '2' });
      const base = { ec2: sb.ec2.calls.length, github: sb.github.calls.length };
      phases[phase].arm();
      const { child, done } = run.main();
      await until(`main is ${phase}`, () => phases[phase].reached(base), 20_000, 20);
      const killedAt = Date.now();
      child.kill('SIGTERM');
      const main = await done;
      const tookMs = Date.now() - killedAt;
      expect(main.code).not.toBe(0);
      // The launch itself stopped, and said so: not the signal handler's hard exit, which comes
      // HARD_EXIT_MS after the signal and prints nothing of the launch's.
      expect(main.log).toContain('Received SIGTERM');
      expect(main.log).toContain('::error::The launch was cancelled');
      expect(tookMs).toBeLessThan(HARD_EXIT_MS - 500);
      // No machine was asked for once the signal was sent.
      const created = sb.ec2.calls.slice(base.ec2).filter((c) => c.action === 'RunInstances');
      expect(created.filter((c) => c.at >= killedAt)).toEqual([]);
      const ledger = JSON.parse(run.state().ledger!) as { registrations: unknown[]; machines: unknown[] };
      expect(ledger.registrations.length).toBeGreaterThan(0);
      const post = await run.post();
      expect(post.code).toBe(0);
      expect(post.log).toContain('Cleaning up the failed launch');
      expect(post.log).toContain(
        `Ended ${ledger.machines.length} machine(s) and ${ledger.registrations.length} registration(s).`,
      );
      expect(await settle(sb)).toEqual([]);
      run.dispose();
    },
  );

  test('mode cleanup in a final job ends what the run launched and says so in its summary', async () => {
    const launch = action({ single: 'false', 'idle-timeout': '0', labels: 'cml-final' });
    const main = await launch.main().done;
    expect(main.code).toBe(0);
    expect(main.outputs['run-label']).toBe('cml-run-4242');
    expect((await launch.post()).code).toBe(0);
    // The runner outlives the launch job; the final job ends it.
    const cleanup = action({ mode: 'cleanup' });
    const ended = await cleanup.main().done;
    expect(ended.code).toBe(0);
    expect(ended.outputs['instance-ids']).toBe(main.outputs['instance-ids']);
    expect(ended.outputs['runner-names']).toBe(main.outputs['runner-names']);
    expect(ended.summary).toContain('Cleanup of run 4242');
    expect(ended.summary).toContain('launched by run 4242');
    // The launch's own security group, which the kept runner's machine used, goes with it.
    const group = sb.ec2.calls.find((c) => c.action === 'CreateSecurityGroup' && c.status === 200);
    expect(group).toBeDefined();
    expect(ended.summary).toMatch(/security-group sg-[0-9a-f]+<\/td><td>all<\/td><td>deleted/);
    expect((await cleanup.post()).log).toContain('Nothing was created');
    expect(await settle(sb)).toEqual([]);
    launch.dispose();
    cleanup.dispose();
  });

  test('a retried cloud call is told at debug level, which the runner shows with step debug logging', async () => {
    sb.faults.add({ service: 'ec2', action: 'DescribeInstances', code: 'RequestLimitExceeded', times: 1 });
    const cleanup = action({ mode: 'cleanup' });
    const ended = await cleanup.main().done;
    expect(ended.code).toBe(0);
    const debug = ended.log.split('\n').filter((l) => l.startsWith('::debug::'));
    expect(debug.some((l) => l.includes('DescribeInstances') && l.includes('attempt 2'))).toBe(true);
    // Debug detail stays out of the plain log a user reads without step debug logging.
    expect(ended.log.split('\n').filter((l) => !l.startsWith('::') && l.includes('RequestLimitExceeded'))).toEqual([]);
    cleanup.dispose();
  });
});
