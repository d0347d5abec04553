import { describe, expect, test } from '@jest/globals';
import type { Sandbox } from '../sandbox/index.js';
import { ForgeError } from '../src/errors.js';
import { GitHubForge } from '../src/forge/github.js';
import type { Clock } from '../src/retry.js';
import { MemoryLog } from './helpers.js';
import { useSandbox } from './support/sandbox.js';

/**
 * The GitHub forge against the fake GitHub: its one retry layer (what is retried, how often, how
 * long it waits, and that a cancel ends a wait), and the client's own pagination of long lists.
 */

const sandbox = useSandbox();
const REPO = { kind: 'repo' as const, owner: 'octo-org', repo: 'ml' };

/** A clock that does not wait: it records each wait the retry layer asks for. */
function recordingClock(): Clock & { waits: number[] } {
  const waits: number[] = [];
  return { waits, now: () => Date.now(), sleep: async (ms) => void waits.push(ms) };
}

function forgeOf(sb: Sandbox, retrying?: ConstructorParameters<typeof GitHubForge>[2]): GitHubForge {
  return new GitHubForge(
    { scope: REPO, apiUrl: sb.env.GITHUB_API_URL!, token: sb.tokens.admin },
    new MemoryLog(),
    retrying,
  );
}

/** Registers `n` runners straight through the REST API (not through the forge under test). */
async function registerMany(sb: Sandbox, prefix: string, n: number): Promise<number[]> {
  const created = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const res = await fetch(`${sb.env.GITHUB_API_URL}/repos/octo-org/ml/actions/runners/generate-jitconfig`, {
        method: 'POST',
        headers: { authorization: `token ${sb.tokens.admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `${prefix}-${i}`, labels: ['forge-test'], runner_group_id: 1 }),
      });
      if (res.status !== 201) throw new Error(`registering ${prefix}-${i}: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { runner: { id: number } }).runner.id;
    }),
  );
  return created;
}

async function deleteAll(sb: Sandbox, ids: number[]): Promise<void> {
  await Promise.all(
    ids.map((id) =>
      fetch(`${sb.env.GITHUB_API_URL}/repos/octo-org/ml/actions/runners/${id}`, {
        method: 'DELETE',
        headers: { authorization: `token ${sb.tokens.admin}` },
      }),
    ),
  );
}

const callsTo = (sb: Sandbox, method: string, path: RegExp): number =>
  sb.github.calls.filter((c) => c.method === method && path.test(c.path)).length;

describe('one retry layer', () => {
  test('a delete refused because the runner is still busy (422) is tried again, and the registration ends', async () => {
    const sb = sandbox();
    const [id] = await registerMany(sb, 'busy-then-free', 1);
    sb.faults.add({
      service: 'github',
      action: 'DELETE /repos/octo-org/ml/actions/runners/\\d+',
      status: 422,
      message: 'Bad request - Runner "busy-then-free-0" is still running a job"',
      times: 2,
    });
    const clock = recordingClock();
    const before = callsTo(sb, 'DELETE', /\/actions\/runners\/\d+$/);
    await expect(forgeOf(sb, { clock }).deleteRunner(id!)).resolves.toBe('deleted');
    expect(callsTo(sb, 'DELETE', /\/actions\/runners\/\d+$/) - before).toBe(3);
    expect(clock.waits).toHaveLength(2);
    expect(sb.github.runners().map((r) => r.name)).not.toContain('busy-then-free-0');
  });

  test('a runner busy for good fails within a minute of waiting, naming the 422; a missing one is gone', async () => {
    const sb = sandbox();
    const [id] = await registerMany(sb, 'busy-for-good', 1);
    sb.faults.add({
      service: 'github',
      action: 'DELETE /repos/octo-org/ml/actions/runners/\\d+',
      status: 422,
      message: 'Bad request - Runner "busy-for-good-0" is still running a job"',
      times: 5,
    });
    const clock = recordingClock();
    const forge = forgeOf(sb, { clock });
    const error = await forge.deleteRunner(id!).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForgeError);
    expect((error as ForgeError).message).toContain('422');
    expect((error as ForgeError).attempts).toBe(5);
    expect(clock.waits.reduce((a, b) => a + b, 0)).toBeLessThan(60_000);
    await expect(forge.deleteRunner(id!)).resolves.toBe('deleted');
    await expect(forge.deleteRunner(id!)).resolves.toBe('gone');
  });

  test('a 5xx on one page of a list is retried once for that page, and the list is whole', async () => {
    const sb = sandbox();
    const ids = await registerMany(sb, 'paged', 130);
    sb.faults.add({ service: 'github', action: 'GET /repos/octo-org/ml/actions/runners', status: 502, times: 1 });
    const before = callsTo(sb, 'GET', /\/actions\/runners$/);
    const runners = await forgeOf(sb, { clock: recordingClock() }).runners();
    // Two pages of 100, the first answered 502 once.
    expect(callsTo(sb, 'GET', /\/actions\/runners$/) - before).toBe(3);
    expect(runners.filter((r) => r.name.startsWith('paged-'))).toHaveLength(130);
    expect(new Set(runners.map((r) => r.id)).size).toBe(runners.length);
    await deleteAll(sb, ids);
  });

  test('a 4xx other than a busy delete fails at once, with one request, naming the permission', async () => {
    const sb = sandbox();
    sb.faults.add({
      service: 'github',
      action: 'POST /repos/.+/registration-token',
      status: 404,
      message: 'Not Found',
    });
    const before = callsTo(sb, 'POST', /registration-token$/);
    const error = await forgeOf(sb, { clock: recordingClock() })
      .registrationToken()
      .catch((e: unknown) => e);
    expect((error as ForgeError).status).toBe(404);
    expect((error as ForgeError).message).toContain('Administration: write');
    expect(callsTo(sb, 'POST', /registration-token$/) - before).toBe(1);
  });

  test('a cancel ends a retry wait at once, with the cancel as the reason', async () => {
    const sb = sandbox();
    sb.faults.add({ service: 'github', action: 'GET /repos/octo-org/ml/actions/runners', status: 503, times: 5 });
    const cancel = new AbortController();
    const realWaits: number[] = [];
    const clock: Clock = {
      now: () => Date.now(),
      // Real waits, told to the test; the first one is cancelled while it runs.
      sleep: (ms, signal) => {
        realWaits.push(ms);
        setTimeout(() => cancel.abort(new Error('cancelled by SIGTERM')), 20);
        return new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, ms);
          signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(signal.reason);
          });
        });
      },
    };
    const before = callsTo(sb, 'GET', /\/actions\/runners$/);
    const error = await forgeOf(sb, { clock, signal: cancel.signal })
      .runners()
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe('cancelled by SIGTERM');
    expect(realWaits).toHaveLength(1);
    expect(callsTo(sb, 'GET', /\/actions\/runners$/) - before).toBe(1);
  });
});

describe('just-in-time configs', () => {
  test('register the runner with exactly the labels given, each once whatever its case', async () => {
    const sb = sandbox();
    const forge = forgeOf(sb);
    const jit = await forge.jitConfig('labels-once', ['self-hosted', 'Linux', 'X64', 'linux', 'cml', 'CML', 'gpu'], 1);
    const sent = sb.github.calls.filter((c) => c.path.endsWith('generate-jitconfig')).at(-1)!;
    expect(JSON.parse(sent.params!.labels!)).toEqual(['self-hosted', 'Linux', 'X64', 'cml', 'gpu']);
    // GitHub adds no default label to a JIT runner: what is listed is what was sent.
    const registered = sb.github.runners().find((r) => r.id === jit.runnerId)!;
    expect(registered.labels).toEqual(['self-hosted', 'Linux', 'X64', 'cml', 'gpu']);
    await expect(forge.deleteRunner(jit.runnerId)).resolves.toBe('deleted');
  });
});
