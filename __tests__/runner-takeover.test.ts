import { readFileSync, readdirSync } from 'node:fs';
import { beforeAll, describe, expect, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import type { Sandbox } from '../sandbox/index.js';
import { attemptLaunch, cleanupKept, cleanupRunOf } from './helpers.js';
import { useSandbox } from './support/sandbox.js';

/**
 * Which job a new runner takes. GitHub gives a queued job to any online runner that has every
 * label the job asks for, so a job asking for the user's labels and the run label alone can be
 * given to any runner of that workflow run. Each launch adds a random label to its runners, and
 * a job whose `runs-on` names it runs on that launch's runners and no other.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

describe('runners taken by their own jobs', () => {
  test('each launch of one workflow run gets its own unpredictable label, and a job naming it runs only there', async () => {
    const first = await attemptLaunch(sb, { labels: 'cml-gpu' });
    expect(first.error).toBeUndefined();
    const second = await attemptLaunch(sb, { labels: 'cml-gpu' });
    expect(second.error).toBeUndefined();
    const [a, b] = [first.result!, second.result!];
    expect(a.runLabel).toBe('cml-run-4242');
    expect(b.runLabel).toBe(a.runLabel);
    expect(a.launchLabel).toMatch(/^cml-[0-9a-f]{16}$/);
    expect(b.launchLabel).toMatch(/^cml-[0-9a-f]{16}$/);
    expect(b.launchLabel).not.toBe(a.launchLabel);

    // Both runners are online and idle: the second launch's job must not go to the first runner.
    const runners = sb.github.runners();
    const runnerA = runners.find((r) => r.name === a.runners[0]!.name)!;
    const runnerB = runners.find((r) => r.name === b.runners[0]!.name)!;
    expect(runnerA.labels).toContain(a.launchLabel);
    expect(runnerA.labels).not.toContain(b.launchLabel);
    expect(runnerB.labels).toContain(b.launchLabel);

    const labelsOf = (launchLabel: string): string[] => ['self-hosted', 'cml-gpu', a.runLabel, launchLabel];
    const jobB = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: labelsOf(b.launchLabel), script: 'true' });
    const doneB = await sb.github.waitJob(jobB.id, 30_000);
    expect(doneB.runnerName).toBe(runnerB.name);
    expect(sb.github.runners().find((r) => r.name === runnerA.name)?.busy).toBe(false);

    const jobA = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: labelsOf(a.launchLabel), script: 'true' });
    const doneA = await sb.github.waitJob(jobA.id, 30_000);
    expect(doneA.runnerName).toBe(runnerA.name);
    await cleanupKept(sb, a.ledger);
  });

  test('a reusable runner (single: false) registers with the launch label too', async () => {
    const { result, error } = await attemptLaunch(sb, { single: 'false', 'idle-timeout': '0', labels: 'cml-reusable' });
    expect(error).toBeUndefined();
    const runner = sb.github.runners().find((r) => r.name === result!.runners[0]!.name)!;
    expect(runner.labels).toEqual(expect.arrayContaining(['cml-reusable', result!.runLabel, result!.launchLabel]));
    await cleanupRunOf(sb);
  });

  test('a runner a job took before the launch saw it online is reported as taken by that job', async () => {
    // A job asking only for the user's labels and the run label, queued before the launch.
    const other = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-taken', 'cml-run-4242'],
      script: 'true',
      name: 'deploy-preview',
    });
    // GitHub's list of runners answers slowly: by its first answer the job has run on the new
    // runner, GitHub has removed the ephemeral registration, and the machine has ended.
    sb.faults.add({ service: 'github', action: 'GET /repos/octo-org/ml/actions/runners', delayMs: 8000, times: 1 });
    const { error, ledger } = await attemptLaunch(sb, { labels: 'cml-taken' });
    const job = sb.github.job(other.id);
    expect(job.status).toBe('completed');
    expect(error).toBeDefined();
    const name = ledger!.registrations[0]!.name;
    expect(job.runnerName).toBe(name);
    expect(error!.message).toContain(`Runner ${name} was taken by job "deploy-preview"`);
    expect(error!.message).toContain('GitHub removed its registration');
    expect(error!.message).not.toContain('ended before its runner came online');
  });

  test("every example's job on a launched runner asks for its launch label", () => {
    type Job = { needs?: string | string[]; 'runs-on': string | string[]; outputs?: Record<string, string> };
    const files = readdirSync('.github/workflows').filter((f) => /^example-.*\.yml$/.test(f));
    let checked = 0;
    for (const file of files) {
      const { jobs } = parseYaml(readFileSync(`.github/workflows/${file}`, 'utf8')) as { jobs: Record<string, Job> };
      for (const [name, job] of Object.entries(jobs)) {
        const launch = [job.needs ?? []].flat().find((n) => jobs[n]?.outputs?.['launch-label']);
        if (name === 'cleanup' || !launch) continue;
        expect([job['runs-on']].flat()).toContain(`\${{ needs.${launch}.outputs.launch-label }}`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4);
    const readme = readFileSync('README.md', 'utf8');
    expect(
      readme.match(/runs-on: \[self-hosted, '\$\{\{ needs\.launch\.outputs\.launch-label \}\}'\]/g)!.length,
    ).toBeGreaterThanOrEqual(5);
  });
});
