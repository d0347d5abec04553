/**
 * The fake GitHub must be as strict as the real one (auth, validation, 404/409/422), and its
 * stand-in runner tarball must honour the real runner's contract end to end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Octokit } from '@octokit/core';
import { FaultPlan } from '../sandbox/core/index.js';
import { type FakeGitHub, RUNNER_VERSION, startFakeGitHub } from '../sandbox/github.js';
import { unfiredFaults } from './support/sandbox.js';
import { until } from './support/wait.js';

const HEARTBEAT = 200;

let gh: FakeGitHub;
let faults: FaultPlan;
const temps: string[] = [];
const procs: ChildProcess[] = [];

beforeEach(async () => {
  faults = new FaultPlan();
  gh = await startFakeGitHub({ faults, heartbeatMs: HEARTBEAT });
});

afterEach(async () => {
  const unfired = unfiredFaults(faults);
  for (const p of procs.splice(0)) {
    if (p.exitCode === null && p.signalCode === null && p.pid) {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  // Delete what a failed test left registered, then close.
  const admin = client(gh.tokens.admin);
  for (const r of gh.runners()) {
    const base = r.scope.includes('/') ? `/repos/${r.scope}` : `/orgs/${r.scope}`;
    await admin.request(`DELETE ${base}/actions/runners/{id}`, { id: r.id }).catch(() => undefined);
  }
  await gh.close();
  for (const d of temps.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  // Every fault a test added must have fired: one that never matches would pass silently.
  expect(unfired).toEqual([]);
});

function client(token?: string, extra: Record<string, unknown> = {}): Octokit {
  return new Octokit({ baseUrl: gh.apiUrl, ...(token ? { auth: token } : {}), ...extra });
}

async function failure(
  p: Promise<unknown>,
): Promise<{ status: number; message: string; data: Record<string, unknown>; headers: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    const err = e as {
      status: number;
      message: string;
      response?: { data: Record<string, unknown>; headers: Record<string, unknown> };
    };
    return {
      status: err.status,
      message: err.message,
      data: err.response?.data ?? {},
      headers: err.response?.headers ?? {},
    };
  }
  throw new Error('expected the request to fail');
}

function tmp(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(d);
  return d;
}

describe('REST: authentication and permissions', () => {
  test('no token is 401 Requires authentication, an unknown token 401 Bad credentials', async () => {
    const none = await failure(
      client().request('GET /repos/{owner}/{repo}/actions/runners', { owner: 'octo-org', repo: 'ml' }),
    );
    expect(none.status).toBe(401);
    expect(none.data.message).toBe('Requires authentication');
    const bad = await failure(
      client(gh.tokens.bad).request('POST /orgs/{org}/actions/runners/registration-token', { org: 'octo-org' }),
    );
    expect(bad.status).toBe(401);
    expect(bad.data).toMatchObject({ message: 'Bad credentials', status: '401' });
    expect(typeof bad.data.documentation_url).toBe('string');
  });

  test('a GITHUB_TOKEN-like token gets 403 Resource not accessible by integration', async () => {
    const ro = client(gh.tokens.readOnly);
    for (const p of [
      ro.request('POST /repos/{owner}/{repo}/actions/runners/registration-token', { owner: 'octo-org', repo: 'ml' }),
      ro.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
        org: 'octo-org',
        name: 'x',
        runner_group_id: 1,
        labels: ['a'],
      }),
      ro.request('GET /orgs/{org}/actions/runners', { org: 'octo-org' }),
    ]) {
      const f = await failure(p);
      expect(f.status).toBe(403);
      expect(f.data.message).toBe('Resource not accessible by integration');
    }
    const f = await failure(ro.request('GET /repos/{owner}/{repo}/actions/runners', { owner: 'octo-org', repo: 'ml' }));
    expect(f.headers['x-accepted-github-permissions']).toBe('administration=write');
  });

  test('unknown repositories, organisations and paths are 404 Not Found', async () => {
    const admin = client(gh.tokens.admin);
    for (const p of [
      admin.request('GET /repos/{owner}/{repo}/actions/runners', { owner: 'octo-org', repo: 'nope' }),
      admin.request('POST /orgs/{org}/actions/runners/registration-token', { org: 'other-org' }),
      admin.request('GET /repos/{owner}/{repo}/actions/runner-groups', { owner: 'octo-org', repo: 'ml' }),
      admin.request('GET /repos/{owner}/{repo}/actions/runners/{id}', { owner: 'octo-org', repo: 'ml', id: 999 }),
      admin.request('DELETE /orgs/{org}/actions/runners/{id}', { org: 'octo-org', id: 999 }),
    ]) {
      const f = await failure(p);
      expect(f.status).toBe(404);
      expect(f.data).toMatchObject({ message: 'Not Found', status: '404' });
    }
  });

  test('X-GitHub-Api-Version: known versions are honoured, unknown ones refused with 400', async () => {
    const admin = client(gh.tokens.admin);
    for (const v of ['2022-11-28', '2026-03-10']) {
      const ok = await admin.request('GET /orgs/{org}/actions/runner-groups', {
        org: 'octo-org',
        headers: { 'x-github-api-version': v },
      });
      expect(ok.headers['x-github-api-version-selected']).toBe(v);
    }
    const f = await failure(
      admin.request('GET /orgs/{org}/actions/runner-groups', {
        org: 'octo-org',
        headers: { 'x-github-api-version': 'v3' },
      }),
    );
    expect(f.status).toBe(400);
    expect(f.data.message).toMatch(/"v3", is not a supported version/);
  });

  test('responses carry rate-limit headers and a request id', async () => {
    const res = await client(gh.tokens.admin).request('GET /orgs/{org}/actions/runner-groups', { org: 'octo-org' });
    expect(res.headers['x-ratelimit-limit']).toBe('5000');
    expect(Number(res.headers['x-ratelimit-remaining'])).toBeLessThan(5000);
    expect(Number(res.headers['x-ratelimit-reset'])).toBeGreaterThan(Date.now() / 1000);
    expect(res.headers['x-github-request-id']).toMatch(/^[0-9A-F]+(:[0-9A-F]+){4}$/);
    expect(res.data).toMatchObject({
      total_count: 2,
      runner_groups: [
        { id: 1, name: 'Default', default: true },
        { id: 2, name: 'gpu', default: false },
      ],
    });
  });
});

describe('REST: tokens, JIT configs and runners', () => {
  test('registration and remove tokens are 201 and expire in one hour', async () => {
    const admin = client(gh.tokens.admin);
    for (const route of [
      'POST /repos/{owner}/{repo}/actions/runners/registration-token',
      'POST /repos/{owner}/{repo}/actions/runners/remove-token',
    ]) {
      const res = await admin.request(route, { owner: 'octo-org', repo: 'ml' });
      expect(res.status).toBe(201);
      expect(res.data.token).toMatch(/^[A-Z2-7]{29}$/);
      const ttl = Date.parse(res.data.expires_at) - Date.now();
      expect(ttl).toBeGreaterThan(3590_000);
      expect(ttl).toBeLessThanOrEqual(3600_000);
    }
  });

  test('generate-jitconfig validates its body like GitHub', async () => {
    const admin = client(gh.tokens.admin);
    const jit = (body: Record<string, unknown>, org = true) =>
      failure(
        org
          ? admin.request('POST /orgs/{org}/actions/runners/generate-jitconfig', { org: 'octo-org', ...body } as never)
          : admin.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
              owner: 'octo-org',
              repo: 'ml',
              ...body,
            } as never),
      );
    const missing = await jit({ labels: ['a'] });
    expect(missing.status).toBe(422);
    expect(missing.data.message).toBe('Validation Failed');
    expect(missing.data.errors).toEqual(
      expect.arrayContaining(['"name" wasn\'t supplied.', '"runner_group_id" wasn\'t supplied.']),
    );
    expect((await jit({ name: 'a', runner_group_id: '1', labels: ['a'] })).status).toBe(422);
    expect((await jit({ name: 'a', runner_group_id: 1, labels: [] })).status).toBe(422);
    expect(
      (await jit({ name: 'a', runner_group_id: 1, labels: Array.from({ length: 101 }, (_, i) => `l${i}`) })).status,
    ).toBe(422);
    expect((await jit({ name: 'a', runner_group_id: 1, labels: [1] })).status).toBe(422);
    expect((await jit({ name: 'a', runner_group_id: 1, labels: ['a'], work_folder: 3 })).status).toBe(422);
    expect((await jit({ name: 'a', runner_group_id: 99, labels: ['a'] })).status).toBe(404);
    // A repository has only the default group.
    expect((await jit({ name: 'a', runner_group_id: 2, labels: ['a'] }, false)).status).toBe(404);
    expect(gh.runners()).toEqual([]);
  });

  test('a JIT runner exists offline at once with exactly the labels sent, a second one with its name is 409', async () => {
    const admin = client(gh.tokens.admin);
    const res = await admin.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
      org: 'octo-org',
      name: 'cml-1',
      runner_group_id: 2,
      labels: ['cml', 'gpu'],
      work_folder: '_work',
    });
    expect(res.status).toBe(201);
    expect(res.data.runner).toMatchObject({
      name: 'cml-1',
      status: 'offline',
      busy: false,
      ephemeral: true,
      runner_group_id: 2,
    });
    // No default label is added to a JIT runner: not self-hosted, not the OS or architecture.
    expect(res.data.runner.labels).toEqual([
      expect.objectContaining({ name: 'cml', type: 'custom' }),
      expect.objectContaining({ name: 'gpu', type: 'custom' }),
    ]);
    expect(() => JSON.parse(Buffer.from(res.data.encoded_jit_config, 'base64').toString())).not.toThrow();
    expect(gh.runners()).toEqual([
      expect.objectContaining({ name: 'cml-1', scope: 'octo-org', status: 'offline', ephemeral: true }),
    ]);

    const dup = await failure(
      admin.request('POST /orgs/{org}/actions/runners/generate-jitconfig', {
        org: 'octo-org',
        name: 'cml-1',
        runner_group_id: 1,
        labels: ['x'],
      }),
    );
    expect(dup.status).toBe(409);
    expect(dup.data.message).toBe('Already exists - A runner with the name cml-1 already exists.');
    // The same name is free at repository level: another scope.
    await admin.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
      owner: 'octo-org',
      repo: 'ml',
      name: 'cml-1',
      runner_group_id: 1,
      labels: ['x'],
    });
    expect(gh.runners().map((r) => r.scope)).toEqual(['octo-org', 'octo-org/ml']);
  });

  test('runners list pages with a Link header, filters by name, and deletes', async () => {
    const admin = client(gh.tokens.admin);
    for (let i = 0; i < 5; i++) {
      await admin.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
        owner: 'octo-org',
        repo: 'ml',
        name: `r-${i}`,
        runner_group_id: 1,
        labels: ['cml'],
      });
    }
    const page1 = await admin.request('GET /repos/{owner}/{repo}/actions/runners', {
      owner: 'octo-org',
      repo: 'ml',
      per_page: 2,
    });
    expect(page1.data.total_count).toBe(5);
    expect(page1.data.runners.map((r) => r.name)).toEqual(['r-0', 'r-1']);
    expect(page1.headers.link).toContain('rel="next"');
    expect(page1.headers.link).toContain('page=3>; rel="last"');
    const page3 = await admin.request('GET /repos/{owner}/{repo}/actions/runners', {
      owner: 'octo-org',
      repo: 'ml',
      per_page: 2,
      page: 3,
    });
    expect(page3.data.runners.map((r) => r.name)).toEqual(['r-4']);
    expect(page3.headers.link).not.toContain('rel="next"');
    const big = await admin.request('GET /repos/{owner}/{repo}/actions/runners', {
      owner: 'octo-org',
      repo: 'ml',
      per_page: 500,
    });
    expect(big.data.runners).toHaveLength(5);
    const named = await admin.request('GET /repos/{owner}/{repo}/actions/runners', {
      owner: 'octo-org',
      repo: 'ml',
      name: 'r-3',
    });
    expect(named.data.runners.map((r) => r.name)).toEqual(['r-3']);
    // Org listing does not show repository runners.
    expect((await admin.request('GET /orgs/{org}/actions/runners', { org: 'octo-org' })).data.total_count).toBe(0);

    const id = named.data.runners[0].id;
    const one = await admin.request('GET /repos/{owner}/{repo}/actions/runners/{runner_id}', {
      owner: 'octo-org',
      repo: 'ml',
      runner_id: id,
    });
    expect(one.data).toMatchObject({ id, name: 'r-3', os: 'unknown', status: 'offline', busy: false });
    expect(
      (
        await admin.request('DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}', {
          owner: 'octo-org',
          repo: 'ml',
          runner_id: id,
        })
      ).status,
    ).toBe(204);
    expect(
      (
        await failure(
          admin.request('DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}', {
            owner: 'octo-org',
            repo: 'ml',
            runner_id: id,
          }),
        )
      ).status,
    ).toBe(404);
    expect(gh.runners()).toHaveLength(4);
  });

  test('downloads list every platform and the linux tarballs match their sha256', async () => {
    const res = await client(gh.tokens.admin).request('GET /repos/{owner}/{repo}/actions/runners/downloads', {
      owner: 'octo-org',
      repo: 'ml',
    });
    const platforms = res.data.map((a) => `${a.os}-${a.architecture}`);
    expect(platforms).toEqual(expect.arrayContaining(['linux-x64', 'linux-arm64', 'osx-x64', 'win-x64']));
    for (const arch of ['x64', 'arm64']) {
      const app = res.data.find((a) => a.os === 'linux' && a.architecture === arch)!;
      expect(app.filename).toBe(`actions-runner-linux-${arch}-${RUNNER_VERSION}.tar.gz`);
      expect(app.download_url.startsWith(gh.serverUrl)).toBe(true);
      const body = Buffer.from(await (await fetch(app.download_url)).arrayBuffer());
      expect(createHash('sha256').update(body).digest('hex')).toBe(app.sha256_checksum);
    }
  });

  test('faults answer with their status and Retry-After, and every REST call is recorded', async () => {
    faults.add({ service: 'github', action: 'POST /repos/.+/generate-jitconfig', status: 503 });
    faults.add({ service: 'github', action: 'GET /orgs/octo-org/actions/runners', status: 403, retryAfter: 2 });
    const admin = client(gh.tokens.admin);
    const body = { owner: 'octo-org', repo: 'ml', name: 'f', runner_group_id: 1, labels: ['a'] };
    expect(
      (await failure(admin.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', body))).status,
    ).toBe(503);
    expect((await admin.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', body)).status).toBe(
      201,
    );
    const throttled = await failure(admin.request('GET /orgs/{org}/actions/runners', { org: 'octo-org' }));
    expect(throttled.status).toBe(403);
    expect(throttled.headers['retry-after']).toBe('2');
    expect(throttled.data.message).toMatch(/secondary rate limit/);
    expect(gh.calls).toEqual([
      {
        method: 'POST',
        path: '/repos/octo-org/ml/actions/runners/generate-jitconfig',
        status: 503,
        params: { name: 'f', labels: '["a"]' },
      },
      {
        method: 'POST',
        path: '/repos/octo-org/ml/actions/runners/generate-jitconfig',
        status: 201,
        params: { name: 'f', labels: '["a"]' },
      },
      { method: 'GET', path: '/orgs/octo-org/actions/runners', status: 403 },
    ]);
  });

  test('a fault with where fires only for the runner it names, and the call log records the name', async () => {
    faults.add({
      service: 'github',
      action: 'POST /repos/.+/generate-jitconfig',
      where: { name: /^gpu-/ },
      status: 502,
    });
    const admin = client(gh.tokens.admin);
    const jit = (name: string) =>
      admin.request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
        owner: 'octo-org',
        repo: 'ml',
        name,
        runner_group_id: 1,
        labels: ['a'],
      });
    expect((await jit('cpu-1')).status).toBe(201);
    expect((await failure(jit('gpu-1'))).status).toBe(502);
    expect((await jit('gpu-2')).status).toBe(201);
    expect(faults.unfired()).toEqual([]);
    expect(faults.fired).toEqual([
      {
        service: 'github',
        action: 'POST /repos/octo-org/ml/actions/runners/generate-jitconfig',
        params: { name: 'gpu-1', labels: '["a"]' },
      },
    ]);
    expect(gh.calls.map((c) => [c.params?.name, c.status])).toEqual([
      ['cpu-1', 201],
      ['gpu-1', 502],
      ['gpu-2', 201],
    ]);
  });

  test('credentials and permissions are checked before an armed fault: refused requests leave it armed', async () => {
    faults.add({ service: 'github', action: 'GET /repos/.+/actions/runners', status: 503 });
    const args = { owner: 'octo-org', repo: 'ml' };
    const none = await failure(client().request('GET /repos/{owner}/{repo}/actions/runners', args));
    expect(none.status).toBe(401);
    expect(none.data.message).toBe('Requires authentication');
    const bad = await failure(client(gh.tokens.bad).request('GET /repos/{owner}/{repo}/actions/runners', args));
    expect(bad.status).toBe(401);
    expect(bad.data.message).toBe('Bad credentials');
    const ro = await failure(client(gh.tokens.readOnly).request('GET /repos/{owner}/{repo}/actions/runners', args));
    expect(ro.status).toBe(403);
    expect(ro.data.message).toBe('Resource not accessible by integration');
    expect(faults.fired).toEqual([]);
    // The first request the service would have served takes the fault.
    expect(
      (await failure(client(gh.tokens.admin).request('GET /repos/{owner}/{repo}/actions/runners', args))).status,
    ).toBe(503);
    expect(faults.unfired()).toEqual([]);
    expect(gh.calls.map((c) => c.status)).toEqual([401, 401, 403, 503]);
  });
});

// ---------------------------------------------------------------- the stand-in runner, end to end

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number>;
}

/** Downloads the tarball the way a machine does: list, fetch, verify sha256, extract. */
async function installRunner(): Promise<string> {
  const res = await client(gh.tokens.admin).request('GET /orgs/{org}/actions/runners/downloads', { org: 'octo-org' });
  const app = res.data.find((a) => a.os === 'linux' && a.architecture === 'x64')!;
  const dir = tmp('runner-');
  const tarball = path.join(dir, app.filename);
  const body = Buffer.from(await (await fetch(app.download_url)).arrayBuffer());
  expect(createHash('sha256').update(body).digest('hex')).toBe(app.sha256_checksum);
  fs.writeFileSync(tarball, body);
  await start('tar', ['xzf', tarball, '-C', dir], { cwd: dir }).exited;
  fs.rmSync(tarball);
  return dir;
}

function start(cmd: string, args: string[], o: { cwd: string; env?: Record<string, string | undefined> }): Proc {
  const child = spawn(cmd, args, {
    cwd: o.cwd,
    env: { ...process.env, RUNNER_ALLOW_RUNASROOT: '1', ...o.env } as NodeJS.ProcessEnv,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number>((resolve) =>
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1))),
  );
  return { child, output: () => out, exited };
}

async function registrationToken(scope: 'org' | 'repo' = 'repo', kind = 'registration-token'): Promise<string> {
  const admin = client(gh.tokens.admin);
  const res =
    scope === 'org'
      ? await admin.request(`POST /orgs/{org}/actions/runners/${kind}`, { org: 'octo-org' })
      : await admin.request(`POST /repos/{owner}/{repo}/actions/runners/${kind}`, { owner: 'octo-org', repo: 'ml' });
  return (res.data as { token: string }).token;
}

function writeHooks(dir: string): { env: Record<string, string>; marks: string } {
  const marks = path.join(dir, 'marks.log');
  const started = path.join(dir, 'job-started.sh');
  const completed = path.join(dir, 'job-completed.sh');
  fs.writeFileSync(started, `echo "started $GITHUB_JOB $GITHUB_REPOSITORY" >> ${marks}\necho hook-started-output\n`);
  fs.writeFileSync(completed, `echo "completed $GITHUB_JOB" >> ${marks}\n`);
  return { env: { ACTIONS_RUNNER_HOOK_JOB_STARTED: started, ACTIONS_RUNNER_HOOK_JOB_COMPLETED: completed }, marks };
}

describe('stand-in runner: config.sh + run.sh', () => {
  test('a registered runner goes online, runs jobs with hooks, stays, goes offline on SIGTERM, and is removed', async () => {
    const dir = await installRunner();
    const token = await registrationToken('repo');
    // Secrets come through ACTIONS_RUNNER_INPUT_*, as the product passes them.
    const cfg = start(
      './config.sh',
      [
        '--unattended',
        '--url',
        `${gh.serverUrl}/octo-org/ml`,
        '--name',
        'box-1',
        '--labels',
        'cml,gpu',
        '--disableupdate',
      ],
      {
        cwd: dir,
        env: { ACTIONS_RUNNER_INPUT_TOKEN: token },
      },
    );
    expect(await cfg.exited).toBe(0);
    expect(cfg.output()).toContain('√ Settings Saved.');
    expect(fs.existsSync(path.join(dir, '.runner'))).toBe(true);
    expect(gh.runners()).toEqual([
      {
        id: expect.any(Number),
        name: 'box-1',
        labels: ['self-hosted', 'X64', 'Linux', 'cml', 'gpu'],
        status: 'offline',
        busy: false,
        ephemeral: false,
        scope: 'octo-org/ml',
      },
    ]);

    const hooks = writeHooks(dir);
    const run = start('./run.sh', [], { cwd: dir, env: { ...hooks.env, ACTIONS_RUNNER_INPUT_TOKEN: token } });
    await until('Listening for Jobs', () => /\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ: Listening for Jobs/.test(run.output()));
    expect(run.output()).toContain('√ Connected to GitHub');
    expect(run.output()).toContain(`Current runner version: '${RUNNER_VERSION}'`);
    expect(gh.runners()[0].status).toBe('online');

    const a = gh.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'linux', 'cml'],
      name: 'train',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion the job's script runs
      script: 'echo "token=${ACTIONS_RUNNER_INPUT_TOKEN:-none}"; pwd',
      durationMs: 300,
    });
    await until('busy', () => gh.runners()[0].busy);
    const busy = await failure(
      client(gh.tokens.admin).request('DELETE /repos/{owner}/{repo}/actions/runners/{id}', {
        owner: 'octo-org',
        repo: 'ml',
        id: gh.runners()[0].id,
      }),
    );
    expect(busy.status).toBe(422);
    expect(busy.data.message).toBe('Bad request - Runner "box-1" is still running a job"');
    const ja = await gh.waitJob(a.id, 10000);
    expect(ja).toMatchObject({ status: 'completed', conclusion: 'success', runnerName: 'box-1' });
    expect(ja.log).toContain('hook-started-output');
    expect(ja.log).toContain('token=none'); // the registration token never reaches a job
    expect(ja.log).toContain(path.join(dir, '_work', 'ml', 'ml'));

    const b = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['gpu'], name: 'eval', script: 'exit 4' });
    expect(await gh.waitJob(b.id, 10000)).toMatchObject({ conclusion: 'failure' });
    await until('job lines', () => run.output().includes('Job eval completed with result: Failed'));
    expect(run.output()).toMatch(/Running job: train[\s\S]*Job train completed with result: Succeeded/);
    expect(fs.readFileSync(hooks.marks, 'utf8')).toBe(
      'started train octo-org/ml\ncompleted train\nstarted eval octo-org/ml\ncompleted eval\n',
    );

    // A job for other labels or another scope is not taken.
    const c = gh.queueJob({ owner: 'octo-org', repo: 'other', labels: ['cml'] });
    const d = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml', 'tpu'] });
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT));
    expect(gh.job(c.id).status).toBe('queued');
    expect(gh.job(d.id).status).toBe('queued');

    // Non-ephemeral: still registered and online. SIGTERM closes the session.
    expect(gh.runners()[0]).toMatchObject({ status: 'online', busy: false });
    process.kill(-run.child.pid!, 'SIGTERM');
    await run.exited;
    expect(gh.runners()[0].status).toBe('offline');

    const rm = start('./config.sh', ['remove', '--token', await registrationToken('repo', 'remove-token')], {
      cwd: dir,
    });
    expect(await rm.exited).toBe(0);
    expect(rm.output()).toContain('√ Runner removed successfully');
    expect(fs.existsSync(path.join(dir, '.runner'))).toBe(false);
    expect(gh.runners()).toEqual([]);
  });

  test('config.sh refuses what the real one refuses', async () => {
    const dir = await installRunner();
    const url = `${gh.serverUrl}/octo-org`;
    const noUrl = start('./config.sh', ['--unattended', '--token', 'X'], { cwd: dir });
    expect(await noUrl.exited).not.toBe(0);
    expect(noUrl.output()).toContain('Invalid configuration provided for url. Terminating unattended configuration.');
    const noToken = start('./config.sh', ['--unattended', '--url', url], { cwd: dir });
    expect(await noToken.exited).not.toBe(0);
    expect(noToken.output()).toContain('Invalid configuration provided for token');

    const bad = start('./config.sh', ['--unattended', '--url', url, '--token', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAA'], {
      cwd: dir,
    });
    expect(await bad.exited).not.toBe(0);
    expect(bad.output()).toMatch(/Http response code: NotFound from 'POST .*'[\s\S]*404 \(Not Found\)/);

    const token = await registrationToken('org');
    // A repository token does not register at organisation level.
    const wrongScope = start(
      './config.sh',
      ['--unattended', '--url', `${gh.serverUrl}/octo-org/ml`, '--token', token],
      { cwd: dir },
    );
    expect(await wrongScope.exited).not.toBe(0);

    const noGroup = start(
      './config.sh',
      ['--unattended', '--url', url, '--token', token, '--name', 'n', '--runnergroup', 'tpu'],
      { cwd: dir },
    );
    expect(await noGroup.exited).not.toBe(0);
    expect(noGroup.output()).toContain('Could not find any self-hosted runner group named "tpu".');

    const ok = start('./config.sh', ['--unattended', '--url', url, '--name', 'dup', '--runnergroup', 'gpu'], {
      cwd: dir,
      env: {
        ACTIONS_RUNNER_INPUT_TOKEN: token,
        ACTIONS_RUNNER_INPUT_EPHEMERAL: 'true',
        ACTIONS_RUNNER_INPUT_LABELS: 'a,b',
      },
    });
    expect(await ok.exited).toBe(0);
    expect(gh.runners()).toEqual([
      expect.objectContaining({
        name: 'dup',
        ephemeral: true,
        labels: ['self-hosted', 'X64', 'Linux', 'a', 'b'],
        scope: 'octo-org',
      }),
    ]);
    const again = start('./config.sh', ['--unattended', '--url', url, '--token', token, '--name', 'dup'], { cwd: dir });
    expect(await again.exited).not.toBe(0);
    expect(again.output()).toContain('Cannot configure the runner because it is already configured');

    const dir2 = await installRunner();
    const dup = start('./config.sh', ['--unattended', '--url', url, '--token', token, '--name', 'dup'], { cwd: dir2 });
    expect(await dup.exited).not.toBe(0);
    expect(dup.output()).toContain('A runner exists with the same name');
    const oldId = gh.runners()[0].id;
    const replace = start(
      './config.sh',
      ['--unattended', '--url', url, '--token', token, '--name', 'dup', '--replace'],
      { cwd: dir2 },
    );
    expect(await replace.exited).toBe(0);
    expect(gh.runners()).toEqual([expect.objectContaining({ name: 'dup', ephemeral: false })]);
    expect(gh.runners()[0].id).not.toBe(oldId);

    gh.expireTokens();
    const dir3 = await installRunner();
    const expired = start('./config.sh', ['--unattended', '--url', url, '--token', token, '--name', 'late'], {
      cwd: dir3,
    });
    expect(await expired.exited).not.toBe(0);
    expect(expired.output()).toContain('404 (Not Found)');
  });

  test('as root without RUNNER_ALLOW_RUNASROOT, config.sh and run.sh refuse', async () => {
    const dir = await installRunner();
    const fakeBin = tmp('fake-id-');
    fs.writeFileSync(path.join(fakeBin, 'id'), '#!/bin/bash\necho 0\n', { mode: 0o755 });
    const env = { RUNNER_ALLOW_RUNASROOT: undefined, PATH: `${fakeBin}:${process.env.PATH}` };
    const cfg = start('./config.sh', ['--unattended'], { cwd: dir, env });
    expect(await cfg.exited).toBe(1);
    expect(cfg.output().trim()).toBe('Must not run with sudo');
    const run = start('./run.sh', [], { cwd: dir, env });
    await run.exited;
    expect(run.output()).toContain('Must not run interactively with sudo');
    expect(run.output()).not.toContain('Listening for Jobs');
  });

  test('--ephemeral takes one job, exits 0, and its registration is gone', async () => {
    const dir = await installRunner();
    const cfg = start(
      './config.sh',
      [
        '--unattended',
        '--url',
        `${gh.serverUrl}/octo-org`,
        '--token',
        await registrationToken('org'),
        '--name',
        'eph',
        '--labels',
        'linux,cml',
        '--ephemeral',
      ],
      { cwd: dir },
    );
    expect(await cfg.exited).toBe(0);
    // config.sh adds the runner's defaults; a label that repeats one (in any case) is listed once.
    expect(gh.runners()[0]!.labels).toEqual(['self-hosted', 'X64', 'Linux', 'cml']);
    const run = start('./run.sh', [], { cwd: dir });
    const j = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml'] });
    const j2 = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml'] });
    expect(await gh.waitJob(j.id, 10000)).toMatchObject({ conclusion: 'success', runnerName: 'eph' });
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('Runner listener exit with 0 return code');
    expect(gh.runners()).toEqual([]);
    expect(gh.job(j2.id).status).toBe('queued');
  });
});

describe('stand-in runner: JIT', () => {
  async function jitConfig(name: string, labels = ['cml']): Promise<string> {
    const res = await client(gh.tokens.admin).request('POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig', {
      owner: 'octo-org',
      repo: 'ml',
      name,
      runner_group_id: 1,
      labels,
    });
    return res.data.encoded_jit_config;
  }

  test('run.sh --jitconfig runs one job with hooks, exits 0, the registration vanishes, the config is single-use', async () => {
    const dir = await installRunner();
    const jit = await jitConfig('jit-1');
    const hooks = writeHooks(dir);
    const run = start('./run.sh', ['--jitconfig', jit], { cwd: dir, env: hooks.env });
    await until('online', () => gh.runners()[0]?.status === 'online');
    // Online, it still has only the labels it was minted with: the runner adds none of its own.
    expect(gh.runners()[0]).toMatchObject({ labels: ['cml'], ephemeral: true });
    const j = gh.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['cml'],
      name: 'one',
      script: 'echo "$RUNNER_NAME did it"',
    });
    const done = await gh.waitJob(j.id, 10000);
    expect(done).toMatchObject({ status: 'completed', conclusion: 'success', runnerName: 'jit-1' });
    expect(done.log).toContain('jit-1 did it');
    expect(await run.exited).toBe(0);
    expect(run.output()).toMatch(
      /Listening for Jobs[\s\S]*Running job: one[\s\S]*Job one completed with result: Succeeded/,
    );
    expect(fs.readFileSync(hooks.marks, 'utf8')).toBe('started one octo-org/ml\ncompleted one\n');
    expect(gh.runners()).toEqual([]);

    const reuse = start('./run.sh', [], { cwd: dir, env: { ACTIONS_RUNNER_INPUT_JITCONFIG: jit } });
    await reuse.exited;
    expect(reuse.output()).toContain('The runner registration has been deleted from the server');
    expect(gh.runners()).toEqual([]);
  });

  test('ACTIONS_RUNNER_INPUT_JITCONFIG works, and a JIT config cannot start a second session', async () => {
    const dir = await installRunner();
    const jit = await jitConfig('jit-2');
    // With RUNNER_MANUALLY_TRAP_SIG, run.sh forwards SIGTERM to the listener and exits with its code.
    const run = start('./run.sh', [], {
      cwd: dir,
      env: { ACTIONS_RUNNER_INPUT_JITCONFIG: jit, RUNNER_MANUALLY_TRAP_SIG: '1' },
    });
    await until('online', () => gh.runners()[0]?.status === 'online');
    process.kill(run.child.pid!, 'SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('Exiting runner...');
    expect(gh.runners()[0].status).toBe('offline');
    const again = start('./run.sh', ['--jitconfig', jit], { cwd: dir });
    await again.exited;
    expect(again.output()).toContain('already been used');
    expect(gh.runners()[0].status).toBe('offline');
  });

  test('a JIT runner sent the default labels takes a job naming them in any case; one not sent them does not', async () => {
    const dir = await installRunner();
    const run = start('./run.sh', ['--jitconfig', await jitConfig('lab-1', ['self-hosted', 'Linux', 'X64', 'cml-l'])], {
      cwd: dir,
    });
    await until('online', () => gh.runners()[0]?.status === 'online');
    expect(gh.runners()[0]!.labels).toEqual(['self-hosted', 'Linux', 'X64', 'cml-l']);
    const j = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['SELF-HOSTED', 'linux', 'x64', 'Cml-L'] });
    expect(await gh.waitJob(j.id, 10000)).toMatchObject({ conclusion: 'success', runnerName: 'lab-1' });
    expect(await run.exited).toBe(0);

    const dir2 = await installRunner();
    const bare = start('./run.sh', ['--jitconfig', await jitConfig('lab-2', ['cml-l'])], { cwd: dir2 });
    await until('online', () => gh.runners()[0]?.status === 'online');
    const waiting = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['self-hosted', 'cml-l'] });
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT));
    expect(gh.job(waiting.id)).toMatchObject({ status: 'queued' });
    process.kill(-bare.child.pid!, 'SIGTERM');
    await bare.exited;
  });

  test('job steps get the runner’s environment and umask: without HOME, git config --global fails as git does', async () => {
    const dir = await installRunner();
    const script = 'stat -c "workspace=%a" "$GITHUB_WORKSPACE"; git config --global user.name cml; echo "stored"';
    // A runner started by a boot service: no HOME, and the service's umask.
    const bare = start('bash', ['-c', 'umask 077 && exec ./run.sh'], {
      cwd: dir,
      env: { HOME: undefined, ACTIONS_RUNNER_INPUT_JITCONFIG: await jitConfig('env-1') },
    });
    const j = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml'], script });
    const failed = await gh.waitJob(j.id, 10000);
    expect(failed.conclusion).toBe('failure');
    expect(failed.log).toContain('workspace=700');
    expect(failed.log).toContain('fatal: $HOME not set');
    expect(failed.log).toContain('Process completed with exit code 128.');
    expect(failed.log).not.toContain('stored');
    await bare.exited;

    const dir2 = await installRunner();
    const home = tmp('home-');
    const login = start('bash', ['-c', 'umask 022 && exec ./run.sh'], {
      cwd: dir2,
      env: { HOME: home, ACTIONS_RUNNER_INPUT_JITCONFIG: await jitConfig('env-2') },
    });
    const j2 = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml'], script });
    const ok = await gh.waitJob(j2.id, 10000);
    expect(ok).toMatchObject({ conclusion: 'success' });
    expect(ok.log).toContain('workspace=755');
    expect(fs.readFileSync(path.join(home, '.gitconfig'), 'utf8')).toContain('name = cml');
    await login.exited;
  });

  test('a failing job-started hook fails the job without running it; a failing completed hook fails it too', async () => {
    const dir = await installRunner();
    const hook = path.join(dir, 'fail.sh');
    fs.writeFileSync(hook, 'echo nope; exit 3\n');
    const ran = path.join(dir, 'ran');
    const run = start('./run.sh', ['--jitconfig', await jitConfig('h-1')], {
      cwd: dir,
      env: { ACTIONS_RUNNER_HOOK_JOB_STARTED: hook },
    });
    const j = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml'], script: `touch ${ran}` });
    const done = await gh.waitJob(j.id, 10000);
    expect(done.conclusion).toBe('failure');
    expect(done.log).toContain('Process completed with exit code 3.');
    expect(fs.existsSync(ran)).toBe(false);
    expect(await run.exited).toBe(0);

    const dir2 = await installRunner();
    const run2 = start('./run.sh', ['--jitconfig', await jitConfig('h-2')], {
      cwd: dir2,
      env: { ACTIONS_RUNNER_HOOK_JOB_COMPLETED: hook },
    });
    const j2 = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml'], script: `touch ${ran}` });
    expect((await gh.waitJob(j2.id, 10000)).conclusion).toBe('failure');
    expect(fs.existsSync(ran)).toBe(true);
    await run2.exited;
    expect(gh.runners()).toEqual([]);
  });

  test('a registration deleted through REST stops the runner with a clear message', async () => {
    const dir = await installRunner();
    const run = start('./run.sh', ['--jitconfig', await jitConfig('del-1')], { cwd: dir });
    await until('online', () => gh.runners()[0]?.status === 'online');
    await client(gh.tokens.admin).request('DELETE /repos/{owner}/{repo}/actions/runners/{id}', {
      owner: 'octo-org',
      repo: 'ml',
      id: gh.runners()[0].id,
    });
    await run.exited;
    expect(run.output()).toContain('Runner registration has been deleted from the server, please re-configure.');
    expect(run.output()).toContain('Runner listener exit with terminated error');
  });

  test('a runner killed without notice goes offline by itself, and its job fails', async () => {
    const dir = await installRunner();
    const run = start('./run.sh', ['--jitconfig', await jitConfig('kill-1')], { cwd: dir });
    await until('online', () => gh.runners()[0]?.status === 'online');
    const j = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml'], script: 'sleep 30' });
    await until('busy', () => gh.runners()[0]?.busy);
    process.kill(-run.child.pid!, 'SIGKILL');
    await until('offline', () => gh.runners()[0]?.status === 'offline', 5 * HEARTBEAT + 2000);
    const done = await gh.waitJob(j.id, 10 * HEARTBEAT + 2000);
    expect(done.conclusion).toBe('failure');
    expect(done.log).toContain('lost communication with the server');
    expect(gh.runners()[0]).toMatchObject({ busy: false, status: 'offline' });
  });

  test('SIGTERM during a job fails it with the runner shutdown message and closes the session', async () => {
    const dir = await installRunner();
    const run = start('./run.sh', ['--jitconfig', await jitConfig('term-1')], { cwd: dir });
    const j = gh.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml'], script: 'sleep 30' });
    await until('busy', () => gh.runners()[0]?.busy);
    process.kill(-run.child.pid!, 'SIGTERM');
    const done = await gh.waitJob(j.id, 5000);
    // As the real runner reports it: a failure, the shutdown error, then the cancellation.
    expect(done.conclusion).toBe('failure');
    expect(done.log).toMatch(
      /##\[error\]The runner has received a shutdown signal\. This can happen when the runner service is stopped, or a manually started runner is canceled\.\n(.*\n)*##\[error\]The operation was canceled\./,
    );
    await run.exited;
    expect(run.output()).toContain('Job job-');
    expect(run.output()).toContain('completed with result: Failed');
    // It took its one job, so the ephemeral registration is gone.
    expect(gh.runners()).toEqual([]);
  });
});
