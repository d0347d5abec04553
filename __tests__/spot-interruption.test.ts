import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { GitHubForge } from '../src/forge/github.js';
import type { LedgerData } from '../src/ledger.js';
import { endRun, type EndReport } from '../src/lifecycle/index.js';
import { attemptLaunch, cloudFor, context, MemoryLog, settle } from './helpers.js';
import { until } from './support/wait.js';

/**
 * What a user sees when a runner's machine goes away mid-job: a spot interruption on AWS (the
 * notice in the instance metadata, then the interruption) and a runner that crashes. The real
 * SDK clients launch through the sandbox; the machines run the rendered startup script and the
 * stand-in runner.
 */

let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox();
});

afterAll(async () => {
  await sb.close();
});

const SHUTDOWN_MESSAGE =
  '##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped, or a manually started runner is canceled.';

/**
 * `mode: cleanup` at the end of the workflow. Post leaves the runners that came online to end
 * themselves, so what an interrupted machine leaves (an offline registration) is ended here.
 */
async function cleanupTheRun(ledger: LedgerData): Promise<EndReport> {
  const cloud = await cloudFor(sb, ledger.cloud, ledger.region);
  const forge = new GitHubForge(
    { scope: ledger.forge.scope, apiUrl: ledger.forge.apiUrl, token: sb.tokens.admin },
    new MemoryLog(),
  );
  return endRun(context(sb), { cloud, forge, log: new MemoryLog() });
}

describe('a spot interruption', () => {
  // The startup script checks the notice every 5 s; AWS gives two minutes, the test 10 s.
  const NOTICE_MS = 10_000;

  test.each<{ kind: string; inputs: Record<string, string>; registration: string }>([
    { kind: 'a single-use (JIT) runner', inputs: {}, registration: 'is removed by GitHub, its one job being done' },
    {
      kind: 'a reusable runner',
      inputs: { single: 'false' },
      registration: 'stays offline until cleanup: the machine cannot delete it',
    },
  ])(
    '$kind: the notice stops the runner, its job fails with the shutdown message, the machine ends; its registration $registration',
    async ({ inputs }) => {
      const attempt = await attemptLaunch(sb, { spot: 'true', labels: 'cml-spot', ...inputs });
      expect(attempt.error).toBeUndefined();
      const runner = attempt.result!.runners[0]!;
      const id = runner.machine.id;
      expect(sb.ec2.instance(id)).toMatchObject({ spot: true, state: 'running' });
      const reusable = 'single' in inputs;
      expect(sb.github.runners().find((r) => r.name === runner.name)).toMatchObject({
        status: 'online',
        ephemeral: !reusable,
      });

      const job = sb.github.queueJob({
        owner: 'octo-org',
        repo: 'ml',
        labels: ['self-hosted', 'cml-spot'],
        script: 'echo "training"; sleep 30',
      });
      await until('the job runs', () => sb.github.job(job.id).status === 'in_progress', 30_000);
      const interruption = sb.ec2.interruptSpot(id, { noticeMs: NOTICE_MS });

      // The job fails as the real runner reports a shutdown: the shutdown error, then the cancellation.
      const done = await sb.github.waitJob(job.id, NOTICE_MS + 10_000);
      expect(done).toMatchObject({ status: 'completed', conclusion: 'failure', runnerName: runner.name });
      expect(done.log).toContain('training');
      expect(done.log).toContain(SHUTDOWN_MESSAGE);
      expect(done.log.indexOf(SHUTDOWN_MESSAGE)).toBeLessThan(done.log.indexOf('##[error]The operation was canceled.'));
      expect(done.log).not.toContain('lost communication with the server');

      // The console says why, before AWS acts.
      const machineConsole = sb.ec2.consoleOf(id);
      expect(machineConsole).toMatch(
        /cml-runner: spot interruption notice: AWS will terminate this machine at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; stopping the runner so its job fails visibly\n/,
      );
      expect(machineConsole).toMatch(/cml-runner: ending the machine: spot interruption at \d{4}-[\dT:-]+Z\n/);
      expect(machineConsole).not.toContain('the startup script failed');

      await interruption;
      await until('the instance is terminated', () => sb.ec2.instance(id)!.state === 'terminated', 30_000);
      // The machine ended itself during the notice; AWS found nothing left to interrupt.
      expect(sb.ec2.instance(id)!.stateReason?.code).toBe('Client.InstanceInitiatedShutdown');

      const registration = sb.github.runners().find((r) => r.name === runner.name);
      if (reusable) {
        expect(registration).toMatchObject({ status: 'offline', busy: false });
      } else {
        expect(registration).toBeUndefined();
      }
      const report = await cleanupTheRun(attempt.ledger!);
      expect(report.machines.filter((m) => m.id === id)).toEqual([]);
      expect(report.registrations.map((r) => r.name)).toEqual(reusable ? [runner.name] : []);
      expect(await settle(sb)).toEqual([]);
    },
    60_000,
  );
});

describe('a runner that crashes', () => {
  test('GitHub fails its job, the machine ends itself, the registration stays offline until cleanup', async () => {
    const attempt = await attemptLaunch(sb, { labels: 'cml-crash' });
    expect(attempt.error).toBeUndefined();
    const runner = attempt.result!.runners[0]!;
    const id = runner.machine.id;
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-crash'], script: 'sleep 30' });
    await until('the job runs', () => sb.github.job(job.id).status === 'in_progress', 30_000);

    expect(sb.machines.crashRunner(id)).toBe(true);
    const done = await sb.github.waitJob(job.id, 20_000);
    expect(done).toMatchObject({ conclusion: 'failure', runnerName: runner.name });
    expect(done.log).toContain(`The self-hosted runner: ${runner.name} lost communication with the server.`);
    expect(done.log).not.toContain(SHUTDOWN_MESSAGE);

    await until('the instance is terminated', () => sb.ec2.instance(id)!.state === 'terminated', 30_000);
    expect(sb.ec2.consoleOf(id)).toMatch(/cml-runner: ending the machine: the runner exited with status \d+\n/);
    expect(sb.machines.crashRunner(id)).toBe(false);
    // GitHub keeps a runner that vanished mid-job, offline.
    expect(sb.github.runners().find((r) => r.name === runner.name)).toMatchObject({
      status: 'offline',
      busy: false,
      ephemeral: true,
    });

    const report = await cleanupTheRun(attempt.ledger!);
    expect(report.registrations).toMatchObject([{ name: runner.name, result: 'deleted' }]);
    expect(await settle(sb)).toEqual([]);
  }, 60_000);
});
