import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { ActionRun } from '../sandbox/actions.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { settle } from './helpers.js';

/**
 * The action as the Actions runner runs it: INPUT_* variables, GITHUB_STATE between main and
 * post, signals on cancel. It runs the bundled dist/index.js, which CI rebuilds and checks before the tests.
 */

const ENTRY = join(process.cwd(), 'dist', 'index.js');
let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox();
});

afterAll(async () => {
  await sb.close();
});

function action(inputs: Record<string, string>): ActionRun {
  return new ActionRun({
    command: [process.execPath, ENTRY],
    env: sb.env,
    inputs: { cloud: 'aws', token: sb.tokens.admin, 'startup-timeout': '60', ...inputs },
  });
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
    expect(post.log).toContain('Every runner came online');
    expect(sb.ec2.instances().find((i) => i.id === main.outputs['instance-ids'])!.state).toBe('running');

    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-l4'], script: 'true' });
    await sb.github.waitJob(job.id, 30_000);
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

  test('SIGTERM during main stops it, and post ends everything it recorded', async () => {
    sb.faults.add({ service: 'ec2', action: 'RunInstances', delayMs: 2000 });
    const run = action({ count: '2' });
    const before = sb.ec2.calls.length;
    const { child, done } = run.main();
    const deadline = Date.now() + 20_000;
    while (!sb.ec2.calls.slice(before).some((c) => c.action === 'RunInstances') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGTERM');
    const main = await done;
    expect(main.code).not.toBe(0);
    expect(run.state().ledger).toBeDefined();
    const post = await run.post();
    expect(post.code).toBe(0);
    expect(post.log).toContain('Cleaning up the failed launch');
    expect(await settle(sb)).toEqual([]);
    sb.faults.clear();
    run.dispose();
  });
});
