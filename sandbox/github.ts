/**
 * Fake GitHub for self-hosted runners: the REST endpoints the product calls (runners, registration
 * and remove tokens, JIT configs, runner downloads, runner groups), the stand-in `actions-runner`
 * tarball, and the private protocol the stand-in runner speaks (`/_runner/…`).
 *
 * Shapes follow GitHub's REST description (`@octokit/openapi-types`): `runner`, `runner-label`,
 * `runner-application`, `authentication-token`, `runner-groups-org`, `basic-error`,
 * `validation-error-simple`. The REST API lives under `/api/v3` as on GitHub Enterprise Server,
 * so `GITHUB_API_URL` = `<server>/api/v3` and `GITHUB_SERVER_URL` = `<server>`.
 *
 * Its parts live in github/: `store.ts` (registrations, sessions, jobs, tokens), `routes.ts`
 * (naming and dispatching REST requests), `validation.ts` (API versions, bodies, paging),
 * `controllers.ts` (what each REST action does), `errors.ts` (error bodies, fault answers),
 * `runner-protocol.ts` (the stand-in runner's protocol) and `tarball.ts` (the runner release).
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { type Answer, type FaultPlan, Timers, pipeline } from './core/index.js';
import type { GitHubContext } from './github/controllers.js';
import { HttpError, errorBody, faultError } from './github/errors.js';
import { handleRunner } from './github/runner-protocol.js';
import { type RestRequest, dispatch, identifyRest, rateLimit, requireAdmin, restHeaders } from './github/routes.js';
import { GitHubStore, type JobView, type RunnerView } from './github/store.js';
import { RUNNER_VERSION, RunnerPacks } from './github/tarball.js';
import { apiVersion } from './github/validation.js';
import { serve } from './http.js';

export type { JobConclusion, JobStatus, JobView, RunnerView } from './github/store.js';
export { RUNNER_VERSION } from './github/tarball.js';
export { API_VERSIONS } from './github/validation.js';

export interface FakeGitHub {
  /** What GITHUB_API_URL is set to: `<serverUrl>/api/v3`. */
  apiUrl: string;
  /** What GITHUB_SERVER_URL is set to. Runner URLs are `<serverUrl>/octo-org` or `<serverUrl>/octo-org/ml`. */
  serverUrl: string;
  tokens: { admin: string; readOnly: string; bad: string };
  queueJob(j: {
    owner: string;
    repo?: string;
    labels: string[];
    script?: string;
    durationMs?: number;
    name?: string;
  }): { id: number };
  job(id: number): JobView;
  /** Resolves with the job once it completed; rejects with its state when `timeoutMs` passes first. */
  waitJob(id: number, timeoutMs: number): Promise<JobView>;
  runners(): RunnerView[];
  /**
   * REST calls only (path without `/api/v3` and without the query), oldest first; `params` are
   * those faults match on (`name`, `id`), when the request had any. Status 0: a fault reset it.
   */
  calls: Array<{ method: string; path: string; status: number; params?: Record<string, string> }>;
  /** Extra: the tarball served for linux x64 / arm64 at the current version. */
  tarball(arch?: 'x64' | 'arm64'): Promise<{ url: string; sha256: string; filename: string; version: string }>;
  /** Extra: the same tarball's bytes, for fakes that preinstall the runner (the Kubernetes runner image). */
  runnerPackage(arch?: 'x64' | 'arm64'): Promise<{ body: Buffer; sha256: string; filename: string; version: string }>;
  /** Extra: makes every registration and remove token issued so far expire now. */
  expireTokens(): void;
  close(): Promise<void>;
}

export async function startFakeGitHub(opts: {
  faults: FaultPlan;
  latencyMs?: number;
  heartbeatMs?: number;
}): Promise<FakeGitHub> {
  const timers = new Timers();
  const store = new GitHubStore(opts.heartbeatMs ?? 500, timers);
  const token = (prefix: string): string =>
    prefix + randomBytes(27).toString('base64url').replace(/[-_]/g, 'x').slice(0, 36);
  const ctx: GitHubContext = {
    store,
    packs: new RunnerPacks(),
    serverUrl: '',
    apiUrl: '',
    tokens: { admin: token('ghp_'), readOnly: token('ghs_'), bad: token('ghp_') },
  };
  const calls: FakeGitHub['calls'] = [];
  sweepLostJobs(store, timers);

  // The REST API, in the pipeline's order: the version header and credentials, then the
  // permission, then a fault, then the action (see core/pipeline.ts).
  const rest = pipeline<RestRequest, 'admin' | 'readOnly'>({
    service: 'github',
    faults: opts.faults,
    ...(opts.latencyMs ? { latencyMs: opts.latencyMs } : {}),
    identify: identifyRest,
    authenticate: (_req, _raw, request) => {
      // An unsupported version is refused before the credentials are read, with or without a token.
      apiVersion(request.requestedVersion);
      if (!request.hasAuth)
        throw new HttpError(401, 'Requires authentication', { documentation_url: 'https://docs.github.com/rest' });
      if (request.token === ctx.tokens.admin) return 'admin';
      if (request.token === ctx.tokens.readOnly) return 'readOnly';
      throw new HttpError(401, 'Bad credentials', { documentation_url: 'https://docs.github.com/rest' });
    },
    authorize: (who, request) => requireAdmin(request, who === 'admin'),
    faultError: (fault, request) => faultError(fault, rateLimit(ctx, request.token)),
    handle: async (request) => {
      const result = await dispatch(ctx, request);
      return jsonAnswer(result.status, result.body, { ...headersFor(request), ...(result.headers ?? {}) });
    },
    errorAnswer: (err, request) => {
      if (!(err instanceof HttpError) || !request) throw err;
      return jsonAnswer(err.status, errorBody(err.status, err.message, err.extra), {
        ...headersFor(request),
        ...err.headers,
      });
    },
    record: (call, request) => {
      if (!request) return;
      const params = call.params && Object.keys(call.params).length > 0 ? { params: call.params } : {};
      calls.push({ method: request.method, path: request.path, status: call.status, ...params });
    },
  });
  // The selected version echoes what was asked, even a version about to be refused.
  const headersFor = (request: RestRequest): Record<string, string> =>
    restHeaders(ctx, request, request.requestedVersion ?? '2022-11-28');

  const server = await serve('github', async (req, raw, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname === '/api/v3' || url.pathname.startsWith('/api/v3/')) return rest(req, raw, res);
    if (url.pathname.startsWith('/_runner/')) return handleRunner(ctx, req, raw, res, url);
    if (req.method === 'GET' || req.method === 'HEAD') return ctx.packs.serve(res, url, ctx.serverUrl);
    return sendJson(res, 404, { message: 'Not Found' }, {});
  });
  ctx.serverUrl = server.url;
  ctx.apiUrl = `${server.url}/api/v3`;

  return {
    apiUrl: ctx.apiUrl,
    serverUrl: ctx.serverUrl,
    tokens: ctx.tokens,
    calls,
    queueJob: (j) => store.queueJob(j),
    job: (id) => store.jobView(store.mustJob(id)),
    waitJob: (id, timeoutMs) => waitJob(store, id, timeoutMs),
    runners: () => store.runnerViews(),
    async tarball(arch = 'x64') {
      const packed = await ctx.packs.get(RUNNER_VERSION, 'linux', arch);
      return {
        url: `${ctx.serverUrl}/actions/runner/releases/download/v${RUNNER_VERSION}/${packed.filename}`,
        sha256: packed.sha256,
        filename: packed.filename,
        version: RUNNER_VERSION,
      };
    },
    async runnerPackage(arch = 'x64') {
      const packed = await ctx.packs.get(RUNNER_VERSION, 'linux', arch);
      return { body: packed.body, sha256: packed.sha256, filename: packed.filename, version: RUNNER_VERSION };
    },
    expireTokens: () => store.expireTokens(),
    async close() {
      timers.close();
      store.wakePolls();
      await server.close();
    },
  };
}

function jsonAnswer(status: number, body: unknown, headers: Record<string, string>): Answer {
  const text = body === undefined ? '' : JSON.stringify(body);
  return {
    status,
    body: text,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    },
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  const answer = jsonAnswer(status, body, headers);
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}

/** Fails, every half heartbeat, the jobs whose runner stopped renewing them. */
function sweepLostJobs(store: GitHubStore, timers: Timers): void {
  timers.later(Math.max(50, store.heartbeatMs / 2), () => {
    store.failLostJobs();
    sweepLostJobs(store, timers);
  });
}

/** A test's wait for a job; its own timer, so a wait still fails after the fake closed. */
function waitJob(store: GitHubStore, id: number, timeoutMs: number): Promise<JobView> {
  const j = store.mustJob(id);
  if (j.status === 'completed') return Promise.resolve(store.jobView(j));
  return new Promise<JobView>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(t);
      resolve(store.jobView(j));
    };
    const t = setTimeout(() => {
      j.waiters = j.waiters.filter((w) => w !== done);
      const rs = store.describeRunners();
      reject(
        new Error(
          `fake GitHub: job ${id} (${j.name}, labels ${j.labels.join(',')}) is still ${j.status} after ${timeoutMs} ms; runners: ${rs || 'none'}`,
        ),
      );
    }, timeoutMs);
    j.waiters.push(done);
  });
}
