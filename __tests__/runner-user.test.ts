import { beforeAll, describe, expect, test } from '@jest/globals';
import type { Sandbox } from '../sandbox/index.js';
import { attemptLaunch, cleanupKept, cleanupRunOf, settle, specFor } from './helpers.js';
import { useSandbox } from './support/sandbox.js';
import { until } from './support/wait.js';

/**
 * On a VM the runner and its jobs run as the unprivileged user cml-runner, and the timers that
 * end the machine are the startup script's, as root: job code cannot stop them, read the script's
 * state or power the machine off, and sudo is refused unless the `sudo` input grants it. The
 * sandbox gives the machine's users real uids of their own, which needs the sandbox to run as root.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

/** What hostile job code tries against the machine it runs on; each line reports what happened. */
const HOSTILE = [
  'echo "uid=$(id -u)"',
  'echo "user=$(id -un)"',
  // The startup script and its timer subshells share its command line, which anyone may read.
  'script="$SANDBOX_MACHINE_ROOT/.sandbox/user-data.sh"',
  'pids="$(pgrep -f -- "$script" | tr "\\n" " ")"',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion the job runs
  'echo "script-pids=${pids:-none}"',
  'if kill -TERM $pids 2>/dev/null; then echo "kill=done"; else echo "kill=refused"; fi',
  'if ls "$CML_RUNNER_HOME/state" >/dev/null 2>&1; then echo "state=readable"; else echo "state=refused"; fi',
  'if shutdown -h now 2>/dev/null; then echo "shutdown=done"; else echo "shutdown=refused"; fi',
  'if sudo -n true 2>/dev/null; then echo "sudo=granted"; else echo "sudo=refused"; fi',
  'true',
].join('\n');

/** The `key=value` lines a hostile job printed. */
function report(log: string): Record<string, string> {
  return Object.fromEntries([...log.matchAll(/^([a-z-]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}

describe('a VM runner’s user', () => {
  test('needs the sandbox to run as root, to give the runner a uid of its own', () => {
    expect({
      uid: process.getuid?.(),
      needed: 'npm test as root (the sandbox drops the runner to its own uid)',
    }).toEqual({ uid: 0, needed: 'npm test as root (the sandbox drops the runner to its own uid)' });
  });

  test('cannot stop the timers, read the script’s state, power off or sudo: the machine still ends at idle-timeout', async () => {
    const { result, error } = await attemptLaunch(sb, {
      type: 'm5.large',
      labels: 'cml-user',
      single: 'false',
      'idle-timeout': '4',
    });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-user'], script: HOSTILE });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done).toMatchObject({ conclusion: 'success', runnerName: runner.name });
    const seen = report(done.log);
    expect(seen.user).toBe('cml-runner');
    expect(seen.uid).not.toBe('0');
    expect(seen['script-pids']).not.toBe('none');
    expect(seen).toMatchObject({ kill: 'refused', state: 'refused', shutdown: 'refused', sudo: 'refused' });
    // The idle watchdog, which the job tried to kill, ends the machine itself.
    const id = runner.machine.id;
    await until('the machine ends itself at idle-timeout', () => sb.ec2.instance(id)?.state === 'terminated', 30_000);
    expect(sb.ec2.consoleOf(id)).toMatch(/ending the machine: idle for \d+s \(idle-timeout 4s\)/);
    // Its offline registration is the cleanup job's to end, as for every reusable runner.
    await cleanupRunOf(sb);
    expect(await settle(sb)).toEqual([]);
  });

  test('with sudo: true may use sudo without a password, as on a GitHub-hosted runner', async () => {
    const { result, error } = await attemptLaunch(sb, { type: 'm5.large', labels: 'cml-sudo', sudo: 'true' });
    expect(error).toBeUndefined();
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-sudo'], script: HOSTILE });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(report(done.log)).toMatchObject({ user: 'cml-runner', sudo: 'granted' });
    expect(sb.ec2.consoleOf(result!.runners[0]!.machine.id)).toContain(
      'the runner user cml-runner may use sudo without a password (the sudo input)',
    );
    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('the sudo input', () => {
  test('is true or false', () => {
    expect(() => specFor(sb, { sudo: 'yes please' })).toThrow(/sudo.*yes please/);
  });

  test('is refused on Kubernetes, naming the input that decides the pod’s user', () => {
    expect(() =>
      specFor(sb, {
        cloud: 'kubernetes',
        sudo: 'true',
        kubeconfig: sb.kubernetes.kubeconfig(),
        'kubernetes-namespace': 'ci',
      }),
    ).toThrow(/sudo.*true.*kubernetes-security-context/s);
    expect(() =>
      specFor(sb, { cloud: 'kubernetes', kubeconfig: sb.kubernetes.kubeconfig(), 'kubernetes-namespace': 'ci' }),
    ).not.toThrow();
  });
});
