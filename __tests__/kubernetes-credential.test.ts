import { beforeAll, describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import type { Sandbox } from '../sandbox/index.js';
import type { Machine } from '../sandbox/machine.js';
import { useSandbox } from './support/sandbox.js';
import { attemptLaunch, cleanupLedger, cleanupRunOf, settle } from './helpers.js';

/**
 * A runner pod's credential (issue 15): it reaches the container from the pod's Secret, is in no
 * long-lived process's environment (/proc/<pid>/environ keeps what a process was started with,
 * whatever it unsets later), and its Secret is deleted once the runner is online while the pod
 * runs on. Real @kubernetes/client-node and Octokit clients against the sandbox.
 */

let sb: Sandbox;
const sandbox = useSandbox({ kubernetesSecondMs: 20 });

beforeAll(() => {
  sb = sandbox();
});

// biome-ignore lint/suspicious/noExplicitAny: the fake's raw objects
type Json = Record<string, any>;

/**
 * Runs `fn` while noting every Secret's data as it shows in the cluster: the launcher deletes a
 * runner's Secret once the runner is online, so the credential is caught while it exists.
 */
async function watchingSecrets<T>(fn: () => Promise<T>): Promise<{ value: T; seen: Map<string, Json> }> {
  const seen = new Map<string, Json>();
  const look = (): void => {
    for (const s of sb.kubernetes.secrets() as Json[]) if (s.data) seen.set(s.metadata.name, s.data);
  };
  const timer = setInterval(look, 5);
  try {
    return { value: await fn(), seen };
  } finally {
    clearInterval(timer);
    look();
  }
}

/** The Secret as an admin reads it through the real client: its HTTP status. */
async function secretStatus(name: string): Promise<number> {
  const kc = new KubeConfig();
  kc.loadFromString(sb.kubernetes.kubeconfig({ token: sb.kubernetes.tokens.admin }));
  try {
    await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name, namespace: 'ci-runners' });
    return 200;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

/** The pod's running container, as the fake kubelet booted it. */
function containerOf(jobName: string): Machine {
  const pod = (sb.kubernetes.pods() as Json[]).find((p) => p.metadata.labels?.['job-name'] === jobName)!;
  return sb.machines.all().find((m) => m.id === pod.metadata.name && m.running)!;
}

/** Each live process of the machine with its command line and environment, read on the host. */
function processesOf(machine: Machine): Array<{ pid: number; cmdline: string; environ: string }> {
  const out: Array<{ pid: number; cmdline: string; environ: string }> = [];
  for (const pid of machine.processes()) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      out.push({ pid, cmdline, environ: readFileSync(`/proc/${pid}/environ`, 'utf8') });
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return out;
}

/** A job step that looks for a runner credential in the environment of each of its ancestors. */
const ANCESTORS_SCRIPT = [
  'pid=$$',
  'while [ "$pid" -gt 1 ]; do',
  '  if tr "\\0" "\\n" < /proc/$pid/environ | grep -q "^ACTIONS_RUNNER_INPUT_"; then echo "credential in the environment of $pid"; fi',
  "  pid=$(awk '/^PPid:/ {print $2}' /proc/$pid/status)",
  'done',
  'echo "ancestors checked"',
].join('\n');

describe('a runner pod holds its credential only while it must', () => {
  test('a reusable runner: its token is in no process environment, its Secret is gone once online, and it keeps taking jobs', async () => {
    const { value: attempt, seen } = await watchingSecrets(() =>
      attemptLaunch(sb, {
        cloud: 'kubernetes',
        kubeconfig: sb.kubernetes.kubeconfig(),
        single: 'false',
        'idle-timeout': '0',
        labels: 'cml-credential-reusable',
      }),
    );
    const { result, error, ledger } = attempt;
    try {
      expect(error).toBeUndefined();
      const name = result!.runners[0]!.machine.id;
      const token = Buffer.from(seen.get(name)!.token, 'base64').toString('utf8');
      expect(token.length).toBeGreaterThan(10);

      // The Secret is deleted by name once the runner is online; the pod runs on.
      expect(await secretStatus(name)).toBe(404);
      const calls = sb.kubernetes.calls.filter(
        (c) => c.resource === 'secrets' && (c.name ?? c.params?.name) === name && c.verb !== 'get',
      );
      expect(calls.map((c) => [c.verb, c.status])).toEqual([
        ['create', 201],
        ['delete', 200],
      ]);

      // No process of the pod, the startup script (the container's first process) included, has the token.
      const processes = processesOf(containerOf(name));
      expect(processes.some((p) => p.cmdline.includes('startup.sh'))).toBe(true);
      expect(processes.some((p) => p.cmdline.includes('Runner.Listener'))).toBe(true);
      expect(processes.filter((p) => p.environ.includes(token)).map((p) => p.cmdline)).toEqual([]);
      expect(processes.filter((p) => p.environ.includes('ACTIONS_RUNNER_INPUT_TOKEN=')).map((p) => p.pid)).toEqual([]);

      // A job finds no credential in any ancestor's environment, and the runner takes the next job too.
      for (const script of [ANCESTORS_SCRIPT, 'echo second job']) {
        const queued = sb.github.queueJob({
          owner: 'octo-org',
          repo: 'ml',
          labels: ['cml-credential-reusable'],
          script,
        });
        const done = await sb.github.waitJob(queued.id, 30_000);
        expect(done).toMatchObject({ conclusion: 'success', runnerName: result!.runners[0]!.name });
        if (script === ANCESTORS_SCRIPT) {
          expect(done.log).toContain('ancestors checked');
          expect(done.log).not.toContain('credential in the environment');
        }
      }
      expect(containerOf(name).running).toBe(true);
    } finally {
      if (ledger && error) await cleanupLedger(sb, ledger);
      await cleanupRunOf(sb, 'kubernetes');
    }
    expect(await settle(sb)).toEqual([]);
  });

  test('a single runner: its Secret is gone once online, only the runner holds its JIT config, and it takes its job', async () => {
    const { value: attempt, seen } = await watchingSecrets(() =>
      attemptLaunch(sb, {
        cloud: 'kubernetes',
        kubeconfig: sb.kubernetes.kubeconfig(),
        labels: 'cml-credential-single',
      }),
    );
    const { result, error, ledger } = attempt;
    let taken = false;
    try {
      expect(error).toBeUndefined();
      const name = result!.runners[0]!.machine.id;
      const jit = Buffer.from(seen.get(name)!.jitconfig, 'base64').toString('utf8');
      expect(jit.length).toBeGreaterThan(10);
      expect(await secretStatus(name)).toBe(404);

      // The runner (run.sh, its listener) gets its own identity; the startup script keeps none.
      const processes = processesOf(containerOf(name));
      const script = processes.filter((p) => p.cmdline.includes('startup.sh'));
      expect(script.length).toBeGreaterThan(0);
      expect(script.filter((p) => p.environ.includes(jit) || p.environ.includes('ACTIONS_RUNNER_INPUT_'))).toEqual([]);
      const holders = processes.filter((p) => p.environ.includes(jit));
      expect(holders.length).toBeGreaterThan(0);
      expect(holders.every((p) => /\/run(-helper)?\.sh|Runner\.Listener/.test(p.cmdline))).toBe(true);

      const queued = sb.github.queueJob({
        owner: 'octo-org',
        repo: 'ml',
        labels: ['cml-credential-single'],
        script: 'true',
      });
      expect(await sb.github.waitJob(queued.id, 30_000)).toMatchObject({
        conclusion: 'success',
        runnerName: result!.runners[0]!.name,
      });
      taken = true;
    } finally {
      if (ledger && error) await cleanupLedger(sb, ledger);
      if (!taken) await cleanupRunOf(sb, 'kubernetes');
    }
    // The ephemeral runner exits after its job; the Job completes and its TTL removes it.
    expect(await settle(sb)).toEqual([]);
  });
});
