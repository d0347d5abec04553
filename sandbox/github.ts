/**
 * Fake GitHub for self-hosted runners: the REST endpoints the product calls (runners, registration
 * and remove tokens, JIT configs, runner downloads, runner groups), the stand-in `actions-runner`
 * tarball, and the private protocol the stand-in runner speaks (`/_runner/…`).
 *
 * Shapes follow GitHub's REST description (`@octokit/openapi-types`): `runner`, `runner-label`,
 * `runner-application`, `authentication-token`, `runner-groups-org`, `basic-error`,
 * `validation-error-simple`. The REST API lives under `/api/v3` as on GitHub Enterprise Server,
 * so `GITHUB_API_URL` = `<server>/api/v3` and `GITHUB_SERVER_URL` = `<server>`.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { components } from '@octokit/openapi-types';
import { type FaultPlan, applyReset, sleep } from './core/index.js';
import { serve } from './http.js';

type Runner = components['schemas']['runner'];
type RunnerLabel = components['schemas']['runner-label'];
type RunnerApplication = components['schemas']['runner-application'];
type AuthenticationToken = components['schemas']['authentication-token'];
type RunnerGroup = components['schemas']['runner-groups-org'];

/** The newest stand-in runner release; the previous one is still accepted, older ones are refused. */
export const RUNNER_VERSION = '2.331.0';
const ACCEPTED_VERSIONS = new Set([RUNNER_VERSION, '2.330.0']);

export const API_VERSIONS = ['2026-03-10', '2022-11-28'] as const;

export type JobStatus = 'queued' | 'in_progress' | 'completed';
export type JobConclusion = 'success' | 'failure' | 'cancelled';

export interface JobView {
  id: number;
  status: JobStatus;
  conclusion?: JobConclusion;
  runnerName?: string;
  log: string;
}

export interface RunnerView {
  id: number;
  name: string;
  labels: string[];
  status: 'online' | 'offline';
  busy: boolean;
  ephemeral: boolean;
  /** `octo-org` for an organisation runner, `octo-org/ml` for a repository runner. */
  scope: string;
  /** When the runner's current session began: the moment the API starts listing it online (epoch ms). */
  onlineSince?: number;
}

export interface FakeGitHub {
  /** What GITHUB_API_URL is set to: `<serverUrl>/api/v3`. */
  apiUrl: string;
  /** What GITHUB_SERVER_URL is set to. Runner URLs are `<serverUrl>/octo-org` or `<serverUrl>/octo-org/ml`. */
  serverUrl: string;
  tokens: { admin: string; readOnly: string; bad: string };
  queueJob(j: { owner: string; repo?: string; labels: string[]; script?: string; durationMs?: number; name?: string }): { id: number };
  job(id: number): JobView;
  /** Resolves with the job once it completed; rejects with its state when `timeoutMs` passes first. */
  waitJob(id: number, timeoutMs: number): Promise<JobView>;
  runners(): RunnerView[];
  /** REST calls only (path without `/api/v3` and without the query), oldest first. */
  calls: Array<{ method: string; path: string; status: number }>;
  /** Extra: the tarball served for linux x64 / arm64 at the current version. */
  tarball(arch?: 'x64' | 'arm64'): Promise<{ url: string; sha256: string; filename: string; version: string }>;
  /** Extra: the same tarball's bytes, for fakes that preinstall the runner (the Kubernetes runner image). */
  runnerPackage(arch?: 'x64' | 'arm64'): Promise<{ body: Buffer; sha256: string; filename: string; version: string }>;
  /** Extra: makes every registration and remove token issued so far expire now. */
  expireTokens(): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- the known world

const ORG = 'octo-org';
const REPO = 'octo-org/ml';
const GROUPS = [
  { id: 1, name: 'Default', default: true },
  { id: 2, name: 'gpu', default: false },
];
const DOCS = 'https://docs.github.com/rest/actions/self-hosted-runners';
const READ_ONLY_LABEL_IDS: Record<string, number> = { 'self-hosted': 1, X64: 2, ARM64: 3, Linux: 4, ARM: 5 };

interface Registration {
  id: number;
  name: string;
  scope: string;
  groupId: number;
  custom: string[];
  noDefaultLabels: boolean;
  /** Known once the runner registered through config.sh or first connected. */
  arch?: string;
  version?: string;
  ephemeral: boolean;
  jit: boolean;
  jitUsed: boolean;
  credential: string;
  clientId: string;
  session?: Session;
  busyJob?: number;
}

interface Session {
  id: string;
  started: number;
  lastSeen: number;
  pendingPolls: number;
  closed: boolean;
}

interface Job {
  id: number;
  owner: string;
  repo?: string;
  labels: string[];
  script?: string;
  durationMs?: number;
  name: string;
  runId: number;
  status: JobStatus;
  conclusion?: JobConclusion;
  runnerId?: number;
  runnerName?: string;
  log: string;
  lastRenew?: number;
  waiters: Array<() => void>;
}

interface IssuedToken {
  kind: 'registration' | 'remove';
  scope: string;
  expiresAt: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const notFound = () => new HttpError(404, 'Not Found');

// ---------------------------------------------------------------- tarball packing

function runnerSourceDir(): string {
  // Works under ts-jest (ESM) and under tsx (which provides import.meta.url in CJS output too).
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(here, 'runner');
}

interface Packed {
  body: Buffer;
  sha256: string;
  filename: string;
}

async function packRunner(version: string, osName: string, arch: string): Promise<Packed> {
  const ext = osName === 'win' ? 'zip' : 'tar.gz';
  const filename = `actions-runner-${osName}-${arch}-${version}.${ext}`;
  if (osName !== 'linux') {
    // Only the Linux stand-in runs here; other platforms are listed and served as placeholders.
    const body = Buffer.from(`sandbox placeholder for ${filename}: only Linux runners run in the sandbox\n`);
    return { body, sha256: sha256(body), filename };
  }
  const stage = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'fake-runner-pack-'));
  try {
    await fs.promises.chmod(stage, 0o755);
    await fs.promises.cp(runnerSourceDir(), stage, { recursive: true });
    await fs.promises.writeFile(path.join(stage, 'bin', 'stand-in.json'), JSON.stringify({ version, os: osName, arch }) + '\n');
    await fs.promises.mkdir(path.join(stage, 'externals', 'node24', 'bin'), { recursive: true });
    // The real tarball ships its own node under externals/; the stand-in borrows this one.
    await fs.promises.symlink(process.execPath, path.join(stage, 'externals', 'node24', 'bin', 'node'));
    const out = path.join(stage, '..', `${path.basename(stage)}.tar.gz`);
    await new Promise<void>((resolve, reject) => {
      const tar = spawn('tar', ['-czf', out, '--owner=0', '--group=0', '--numeric-owner', '-C', stage, '.'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      tar.stderr.on('data', (d: Buffer) => (err += d.toString()));
      tar.on('error', reject);
      tar.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar failed (${code}): ${err}`))));
    });
    const body = await fs.promises.readFile(out);
    await fs.promises.rm(out, { force: true });
    return { body, sha256: sha256(body), filename };
  } finally {
    await fs.promises.rm(stage, { recursive: true, force: true });
  }
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

const PLATFORMS: Array<[string, string]> = [
  ['osx', 'x64'],
  ['osx', 'arm64'],
  ['linux', 'x64'],
  ['linux', 'arm'],
  ['linux', 'arm64'],
  ['win', 'x64'],
  ['win', 'arm64'],
];

// ---------------------------------------------------------------- the server

export async function startFakeGitHub(opts: { faults: FaultPlan; latencyMs?: number; heartbeatMs?: number }): Promise<FakeGitHub> {
  const { faults } = opts;
  const latencyMs = opts.latencyMs ?? 0;
  const heartbeatMs = opts.heartbeatMs ?? 500;
  const staleMs = 3 * heartbeatMs;

  const token = (prefix: string) => prefix + randomBytes(27).toString('base64url').replace(/[-_]/g, 'x').slice(0, 36);
  const tokens = { admin: token('ghp_'), readOnly: token('ghs_'), bad: token('ghp_') };

  const registrations = new Map<number, Registration>();
  const jobs = new Map<number, Job>();
  const issued = new Map<string, IssuedToken>();
  const customLabelIds = new Map<string, number>();
  const calls: FakeGitHub['calls'] = [];
  const pollWakers = new Set<() => void>();
  const rate = new Map<string, number>();
  let nextRunnerId = 23;
  let nextJobId = 1001;
  let closed = false;

  const packs = new Map<string, Promise<Packed>>();
  const pack = (version: string, osName: string, arch: string) => {
    const key = `${version}/${osName}/${arch}`;
    let p = packs.get(key);
    if (!p) {
      p = packRunner(version, osName, arch);
      packs.set(key, p);
      p.catch(() => packs.delete(key));
    }
    return p;
  };

  // -------------------------------------------------------------- runner state helpers

  const isOnline = (r: Registration) =>
    !!r.session && !r.session.closed && (r.session.pendingPolls > 0 || Date.now() - r.session.lastSeen <= staleMs);

  const labelsOf = (r: Registration): RunnerLabel[] => {
    const out: RunnerLabel[] = [];
    if (!r.noDefaultLabels) {
      out.push({ id: READ_ONLY_LABEL_IDS['self-hosted'], name: 'self-hosted', type: 'read-only' });
      if (r.arch) {
        const archLabel = archName(r.arch);
        out.push({ id: READ_ONLY_LABEL_IDS[archLabel], name: archLabel, type: 'read-only' });
        out.push({ id: READ_ONLY_LABEL_IDS.Linux, name: 'Linux', type: 'read-only' });
      }
    }
    for (const name of r.custom) {
      const key = name.toLowerCase();
      if (!customLabelIds.has(key)) customLabelIds.set(key, 100 + customLabelIds.size);
      out.push({ id: customLabelIds.get(key), name, type: 'custom' });
    }
    return out;
  };

  const runnerJson = (r: Registration): Runner => ({
    id: r.id,
    name: r.name,
    os: r.arch ? 'Linux' : 'unknown',
    status: isOnline(r) ? 'online' : 'offline',
    busy: r.busyJob !== undefined,
    ephemeral: r.ephemeral,
    labels: labelsOf(r),
    runner_group_id: r.groupId,
    version: r.version ?? null,
  });

  const removeRegistration = (r: Registration) => {
    registrations.delete(r.id);
    if (r.session) r.session.closed = true;
    wakePolls();
  };

  const wakePolls = () => {
    for (const wake of [...pollWakers]) wake();
  };

  const finishJob = (job: Job, conclusion: JobConclusion, log: string, runnerLost = false) => {
    job.status = 'completed';
    job.conclusion = conclusion;
    job.log += log;
    const r = job.runnerId !== undefined ? registrations.get(job.runnerId) : undefined;
    if (r && r.busyJob === job.id) {
      r.busyJob = undefined;
      // Ephemeral runners take exactly one job; GitHub removes their registration afterwards.
      // A runner that vanished mid-job stays listed offline, as on GitHub, until someone deletes it.
      if (r.ephemeral && !runnerLost) removeRegistration(r);
    }
    for (const w of job.waiters.splice(0)) w();
  };

  /** Jobs whose runner stopped renewing fail, as GitHub fails them after losing the runner. */
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const job of jobs.values()) {
      if (job.status !== 'in_progress') continue;
      if (now - (job.lastRenew ?? now) > staleMs * 2) {
        finishJob(job, 'failure', `##[error]The self-hosted runner: ${job.runnerName} lost communication with the server.\n`, true);
      }
    }
  }, Math.max(50, heartbeatMs / 2));
  sweeper.unref();

  const claimJob = (r: Registration): Job | undefined => {
    if (r.busyJob !== undefined) return undefined;
    const names = new Set(labelsOf(r).map((l) => l.name.toLowerCase()));
    for (const job of jobs.values()) {
      if (job.status !== 'queued') continue;
      const inScope = r.scope === job.owner || (job.repo !== undefined && r.scope === `${job.owner}/${job.repo}`);
      if (!inScope) continue;
      if (!job.labels.every((l) => names.has(l.toLowerCase()))) continue;
      job.status = 'in_progress';
      job.runnerId = r.id;
      job.runnerName = r.name;
      job.lastRenew = Date.now();
      r.busyJob = job.id;
      return job;
    }
    return undefined;
  };

  // -------------------------------------------------------------- responses

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  };

  const errorBody = (status: number, message: string, extra: Record<string, unknown> = {}) => ({
    message,
    ...extra,
    documentation_url: (extra.documentation_url as string | undefined) ?? DOCS,
    status: String(status),
  });

  // -------------------------------------------------------------- REST

  const restHeaders = (who: string | undefined, apiVersion: string, accepted?: string): Record<string, string> => {
    const limit = who === tokens.admin ? 5000 : who === tokens.readOnly ? 1000 : 60;
    const key = who ?? 'anonymous';
    const used = Math.min(limit, (rate.get(key) ?? 0) + 1);
    rate.set(key, used);
    const h: Record<string, string> = {
      'x-github-media-type': 'github.v3; format=json',
      'x-github-api-version-selected': apiVersion,
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(limit - used),
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
      'x-ratelimit-used': String(used),
      'x-ratelimit-resource': 'core',
      'x-github-request-id': `${randomBytes(2).toString('hex').toUpperCase()}:${randomBytes(3).toString('hex').toUpperCase()}:${randomBytes(4).toString('hex').toUpperCase()}:${randomBytes(4).toString('hex').toUpperCase()}:${randomBytes(4).toString('hex').toUpperCase()}`,
    };
    if (who === tokens.admin) h['x-oauth-scopes'] = 'admin:org, repo, workflow';
    if (accepted) h['x-accepted-github-permissions'] = accepted;
    return h;
  };

  const handleRest = async (req: http.IncomingMessage, raw: Buffer, res: http.ServerResponse, url: URL) => {
    const method = req.method ?? 'GET';
    const p = url.pathname.slice('/api/v3'.length) || '/';
    let status = 500;
    const record = () => calls.push({ method, path: p, status });

    if (latencyMs > 0) await sleep(latencyMs);
    const fault = faults.take('github', `${method} ${p}`);
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (applyReset(fault, res)) return;

    const auth = req.headers.authorization;
    const m = auth ? /^(?:token|bearer)\s+(\S+)$/i.exec(auth) : null;
    const who = m ? m[1] : undefined;
    const requested = req.headers['x-github-api-version'];
    const apiVersion = typeof requested === 'string' ? requested : '2022-11-28';
    const scopeMatch = /^\/(repos\/[^/]+\/[^/]+|orgs\/[^/]+)\//.exec(p);
    const accepted = scopeMatch
      ? scopeMatch[1].startsWith('orgs/')
        ? 'organization_self_hosted_runners=write'
        : 'administration=write'
      : undefined;
    const headers = restHeaders(who, apiVersion, accepted);

    try {
      if (fault?.status !== undefined || fault?.code !== undefined) {
        throw faultError(fault.status ?? 500, fault.message, fault.retryAfter, headers);
      }
      if (typeof requested === 'string' && !(API_VERSIONS as readonly string[]).includes(requested)) {
        throw new HttpError(
          400,
          `The version you specified in the "X-GitHub-Api-Version" request header, "${requested}", is not a supported version. ` +
            `The following versions are currently supported: ${API_VERSIONS.map((v, i) => `"${v}"${i === 0 ? ' (most recent)' : ''}`).join(', ')}.`,
          { documentation_url: 'https://docs.github.com/rest/about-the-rest-api/api-versions' },
        );
      }
      if (!auth) throw new HttpError(401, 'Requires authentication', { documentation_url: 'https://docs.github.com/rest' });
      if (who !== tokens.admin && who !== tokens.readOnly) {
        throw new HttpError(401, 'Bad credentials', { documentation_url: 'https://docs.github.com/rest' });
      }
      const result = await route(method, p, url, raw, who === tokens.admin);
      status = result.status;
      send(res, result.status, result.body, { ...headers, ...(result.headers ?? {}) });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      status = err.status;
      send(res, err.status, errorBody(err.status, err.message, err.extra), { ...headers, ...err.headers });
    } finally {
      record();
    }
  };

  const faultError = (status: number, message: string | undefined, retryAfter: number | undefined, headers: Record<string, string>) => {
    const extra: Record<string, string> = {};
    if (retryAfter !== undefined) extra['retry-after'] = String(retryAfter);
    let msg = message;
    if (status === 403 || status === 429) {
      if (retryAfter !== undefined || status === 429) {
        msg ??= 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.';
      } else {
        // A primary rate limit: GitHub says so with remaining 0 and the reset time.
        msg ??= 'API rate limit exceeded for user ID 1.';
        extra['x-ratelimit-remaining'] = '0';
        extra['x-ratelimit-used'] = headers['x-ratelimit-limit'];
        extra['x-ratelimit-reset'] = String(Math.floor(Date.now() / 1000) + 1);
      }
    }
    msg ??= status >= 500 ? (status === 503 ? 'Service Unavailable' : 'Server Error') : 'Injected fault';
    return new HttpError(status, msg, {}, extra);
  };

  interface Result {
    status: number;
    body?: unknown;
    headers?: Record<string, string>;
  }

  const route = async (method: string, p: string, url: URL, raw: Buffer, admin: boolean): Promise<Result> => {
    const parts = p.split('/').filter(Boolean);
    let scope: string;
    let rest: string[];
    if (parts[0] === 'repos' && parts.length >= 4 && parts[3] === 'actions') {
      scope = `${parts[1]}/${parts[2]}`;
      rest = parts.slice(4);
      if (scope.toLowerCase() !== REPO) throw notFound();
      scope = REPO;
    } else if (parts[0] === 'orgs' && parts.length >= 3 && parts[2] === 'actions') {
      scope = parts[1];
      rest = parts.slice(3);
      if (scope.toLowerCase() !== ORG) throw notFound();
      scope = ORG;
    } else {
      throw notFound();
    }
    const isOrg = scope === ORG;
    const key = `${method} ${rest.join('/')}`;
    const known =
      /^GET runner-groups$/.test(key) ||
      /^GET runners(\/downloads)?$/.test(key) ||
      /^POST runners\/(registration-token|remove-token|generate-jitconfig)$/.test(key) ||
      /^(GET|DELETE) runners\/\d+$/.test(key) ||
      /^GET runners\/\d+\/labels$/.test(key);
    if (!known || (key === 'GET runner-groups' && !isOrg)) throw notFound();
    // A workflow's GITHUB_TOKEN can never administer runners (it has no Administration or
    // organisation Self-hosted runners permission).
    if (!admin) throw new HttpError(403, 'Resource not accessible by integration', { documentation_url: DOCS });

    const base = `/api/v3/${isOrg ? `orgs/${ORG}` : `repos/${REPO}`}/actions`;
    if (key === 'GET runner-groups') return listRunnerGroups(url);
    if (key === 'GET runners/downloads') return { status: 200, body: await downloads() };
    if (key === 'POST runners/registration-token') return { status: 201, body: issueToken('registration', scope) };
    if (key === 'POST runners/remove-token') return { status: 201, body: issueToken('remove', scope) };
    if (key === 'POST runners/generate-jitconfig') return generateJit(scope, raw);
    if (key === 'GET runners') return listRunners(scope, url, base);
    const id = Number(rest[1]);
    const r = registrations.get(id);
    if (!r || r.scope !== scope) throw notFound();
    if (rest[2] === 'labels') {
      const labels = labelsOf(r);
      return { status: 200, body: { total_count: labels.length, labels } };
    }
    if (method === 'GET') return { status: 200, body: runnerJson(r) };
    if (r.busyJob !== undefined) {
      throw new HttpError(422, `Bad request - Runner "${r.name}" is still running a job"`, { documentation_url: `${DOCS}#delete-a-self-hosted-runner-from-${isOrg ? 'an-organization' : 'a-repository'}` });
    }
    removeRegistration(r);
    return { status: 204 };
  };

  const pageParams = (url: URL) => {
    const perPage = Math.min(100, Math.max(1, Number.parseInt(url.searchParams.get('per_page') ?? '30', 10) || 30));
    const page = Math.max(1, Number.parseInt(url.searchParams.get('page') ?? '1', 10) || 1);
    return { perPage, page };
  };

  const linkHeader = (url: URL, page: number, perPage: number, total: number): Record<string, string> => {
    const last = Math.max(1, Math.ceil(total / perPage));
    const link = (n: number, rel: string) => {
      const u = new URL(url.toString());
      u.searchParams.set('per_page', String(perPage));
      u.searchParams.set('page', String(n));
      return `<${serverUrl}${u.pathname}${u.search}>; rel="${rel}"`;
    };
    const parts: string[] = [];
    if (page > 1) parts.push(link(page - 1, 'prev'));
    if (page < last) parts.push(link(page + 1, 'next'), link(last, 'last'));
    if (page > 1) parts.push(link(1, 'first'));
    return parts.length ? { link: parts.join(', ') } : {};
  };

  const listRunners = (scope: string, url: URL, _base: string): Result => {
    const { perPage, page } = pageParams(url);
    const name = url.searchParams.get('name');
    const all = [...registrations.values()]
      .filter((r) => r.scope === scope && (name === null || r.name === name))
      .sort((a, b) => a.id - b.id);
    const slice = all.slice((page - 1) * perPage, page * perPage);
    return {
      status: 200,
      body: { total_count: all.length, runners: slice.map(runnerJson) },
      headers: linkHeader(url, page, perPage, all.length),
    };
  };

  const listRunnerGroups = (url: URL): Result => {
    const { perPage, page } = pageParams(url);
    const groups: RunnerGroup[] = GROUPS.map((g) => ({
      id: g.id,
      name: g.name,
      visibility: 'all',
      default: g.default,
      runners_url: `${apiUrl}/orgs/${ORG}/actions/runner-groups/${g.id}/runners`,
      hosted_runners_url: `${apiUrl}/orgs/${ORG}/actions/runner-groups/${g.id}/hosted-runners`,
      inherited: false,
      allows_public_repositories: false,
      restricted_to_workflows: false,
      selected_workflows: [],
      workflow_restrictions_read_only: false,
    }));
    const slice = groups.slice((page - 1) * perPage, page * perPage);
    return { status: 200, body: { total_count: groups.length, runner_groups: slice }, headers: linkHeader(url, page, perPage, groups.length) };
  };

  const downloads = async (): Promise<RunnerApplication[]> =>
    Promise.all(
      PLATFORMS.map(async ([osName, arch]) => {
        const packed = await pack(RUNNER_VERSION, osName, arch);
        return {
          os: osName,
          architecture: arch,
          download_url: `${serverUrl}/actions/runner/releases/download/v${RUNNER_VERSION}/${packed.filename}`,
          filename: packed.filename,
          sha256_checksum: packed.sha256,
        };
      }),
    );

  const issueToken = (kind: IssuedToken['kind'], scope: string): AuthenticationToken => {
    // Real tokens look like `AABF3JGZDX3P5PMEXLND6TS6FCWO6`: 29 upper-case base32 characters.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const bytes = randomBytes(29);
    let t = '';
    for (const b of bytes) t += alphabet[b % 32];
    const expiresAt = Date.now() + 3600_000;
    issued.set(t, { kind, scope, expiresAt });
    return { token: t, expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z') };
  };

  const parseJson = (raw: Buffer): unknown => {
    if (raw.length === 0) return {};
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'Problems parsing JSON', { documentation_url: `${DOCS}#create-configuration-for-a-just-in-time-runner-for-an-organization` });
    }
  };

  const describe = (v: unknown) => JSON.stringify(v);

  const generateJit = (scope: string, raw: Buffer): Result => {
    const body = parseJson(raw);
    const isOrg = scope === ORG;
    const docs = `${DOCS}#create-configuration-for-a-just-in-time-runner-for-${isOrg ? 'an-organization' : 'a-repository'}`;
    const errors: string[] = [];
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      errors.push(`${describe(body)} is not an object.`);
    } else {
      const b = body as Record<string, unknown>;
      for (const k of ['name', 'runner_group_id', 'labels']) if (!(k in b)) errors.push(`"${k}" wasn't supplied.`);
      if ('name' in b && (typeof b.name !== 'string' || b.name.trim() === '')) errors.push(`For 'properties/name', ${describe(b.name)} is not a non-empty string.`);
      if ('runner_group_id' in b && !Number.isInteger(b.runner_group_id)) errors.push(`For 'properties/runner_group_id', ${describe(b.runner_group_id)} is not an integer.`);
      if ('labels' in b) {
        if (!Array.isArray(b.labels)) errors.push(`For 'properties/labels', ${describe(b.labels)} is not an array.`);
        else {
          if (b.labels.length < 1) errors.push(`For 'properties/labels', ${describe(b.labels)} has fewer items than 1.`);
          if (b.labels.length > 100) errors.push(`For 'properties/labels', the array has more items than 100.`);
          b.labels.forEach((l, i) => {
            if (typeof l !== 'string' || l.trim() === '') errors.push(`For 'items' at index ${i}, ${describe(l)} is not a non-empty string.`);
          });
        }
      }
      if ('work_folder' in b && typeof b.work_folder !== 'string') errors.push(`For 'properties/work_folder', ${describe(b.work_folder)} is not a string.`);
      const allowed = new Set(['name', 'runner_group_id', 'labels', 'work_folder']);
      for (const k of Object.keys(b)) if (!allowed.has(k)) errors.push(`"${k}" is not a permitted key.`);
    }
    if (errors.length) throw new HttpError(422, 'Validation Failed', { errors, documentation_url: docs });
    const b = body as { name: string; runner_group_id: number; labels: string[]; work_folder?: string };
    // Repositories have no runner groups of their own: only the default group (1) exists there.
    const group = GROUPS.find((g) => g.id === b.runner_group_id && (isOrg || g.default));
    if (!group) throw new HttpError(404, 'Not Found', { documentation_url: docs });
    if ([...registrations.values()].some((r) => r.scope === scope && r.name.toLowerCase() === b.name.toLowerCase())) {
      throw new HttpError(409, `Already exists - A runner with the name ${b.name} already exists.`, { documentation_url: docs });
    }
    const r = createRegistration({ scope, name: b.name, groupId: group.id, labels: b.labels, ephemeral: true, jit: true, noDefaultLabels: false });
    const runnerFile = {
      agentId: r.id,
      agentName: r.name,
      poolId: group.id,
      poolName: group.name,
      serverUrl,
      gitHubUrl: `${serverUrl}/${scope}`,
      workFolder: b.work_folder ?? '_work',
      ephemeral: true,
    };
    const credentialsFile = { scheme: 'OAuth', data: { clientId: r.clientId, credential: r.credential } };
    const files = {
      '.runner': Buffer.from(JSON.stringify(runnerFile)).toString('base64'),
      '.credentials': Buffer.from(JSON.stringify(credentialsFile)).toString('base64'),
    };
    return { status: 201, body: { runner: runnerJson(r), encoded_jit_config: Buffer.from(JSON.stringify(files)).toString('base64') } };
  };

  const createRegistration = (o: {
    scope: string;
    name: string;
    groupId: number;
    labels: string[];
    ephemeral: boolean;
    jit: boolean;
    noDefaultLabels: boolean;
    arch?: string;
  }): Registration => {
    const custom: string[] = [];
    for (const l of o.labels) {
      const name = l.trim();
      if (name && !custom.some((c) => c.toLowerCase() === name.toLowerCase())) custom.push(name);
    }
    const r: Registration = {
      id: nextRunnerId++,
      name: o.name,
      scope: o.scope,
      groupId: o.groupId,
      custom,
      noDefaultLabels: o.noDefaultLabels,
      arch: o.arch,
      ephemeral: o.ephemeral,
      jit: o.jit,
      jitUsed: false,
      credential: randomBytes(32).toString('hex'),
      clientId: randomUUID(),
    };
    registrations.set(r.id, r);
    return r;
  };

  // -------------------------------------------------------------- the runner's private protocol

  const handleRunner = async (req: http.IncomingMessage, raw: Buffer, res: http.ServerResponse, url: URL) => {
    const method = req.method ?? 'GET';
    const parts = url.pathname.split('/').filter(Boolean).slice(1);
    let body: Record<string, unknown> = {};
    try {
      body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
    } catch {
      return send(res, 400, { message: 'Problems parsing JSON' });
    }

    if (method === 'POST' && parts[0] === 'register') return runnerRegister(res, body);
    if (method === 'POST' && parts[0] === 'remove') return runnerRemove(res, body);

    // Everything else is authenticated with the runner's own credential.
    const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const r = auth ? [...registrations.values()].find((x) => x.credential === auth[1]) : undefined;
    if (!r) return send(res, 404, { message: 'The runner registration has been deleted from the server, please re-configure.' });

    if (method === 'POST' && parts[0] === 'sessions' && parts.length === 1) {
      const version = String(body.version ?? '');
      if (!ACCEPTED_VERSIONS.has(version)) {
        return send(res, 403, { message: `Runner version v${version} is deprecated and cannot receive messages.`, deprecated: true });
      }
      if (r.jit && r.jitUsed) {
        return send(res, 403, { message: 'This just-in-time runner configuration has already been used; generate a new one.' });
      }
      if (r.session && !r.session.closed && isOnline(r)) {
        return send(res, 409, { message: `A session for this runner already exists. The actions runner ${r.name} already has an active session.` });
      }
      if (r.jit) r.jitUsed = true;
      r.arch ??= typeof body.arch === 'string' ? body.arch : 'x64';
      r.version = version;
      r.session = { id: randomUUID(), started: Date.now(), lastSeen: Date.now(), pendingPolls: 0, closed: false };
      return send(res, 201, { sessionId: r.session.id, heartbeatMs });
    }

    const s = r.session;
    if (parts[0] !== 'sessions' || !s || s.closed || s.id !== parts[1]) {
      return send(res, 404, { message: 'The runner session has expired or does not exist.' });
    }
    s.lastSeen = Date.now();

    if (method === 'DELETE' && parts.length === 2) {
      s.closed = true;
      r.session = undefined;
      return send(res, 204, undefined);
    }
    if (method === 'POST' && parts[2] === 'renew') {
      const job = r.busyJob !== undefined ? jobs.get(r.busyJob) : undefined;
      if (job) job.lastRenew = Date.now();
      return send(res, 204, undefined);
    }
    if (method === 'POST' && parts[2] === 'jobs' && parts[4] === 'complete') {
      const job = jobs.get(Number(parts[3]));
      if (!job || job.runnerId !== r.id || job.status !== 'in_progress') return send(res, 404, { message: 'No such job for this runner.' });
      const conclusion = (['success', 'failure', 'cancelled'] as const).find((c) => c === body.conclusion) ?? 'failure';
      finishJob(job, conclusion, typeof body.log === 'string' ? body.log : '');
      return send(res, 204, undefined);
    }
    if (method === 'GET' && parts[2] === 'message') {
      // Long poll: answer at once with a job, or hold for up to one heartbeat.
      s.pendingPolls++;
      try {
        const deadline = Date.now() + heartbeatMs;
        for (;;) {
          if (closed || s.closed || !registrations.has(r.id)) {
            return send(res, 404, { message: 'The runner registration has been deleted from the server, please re-configure.' });
          }
          const job = claimJob(r);
          if (job) {
            return send(res, 200, {
              job: {
                id: job.id,
                name: job.name,
                runId: job.runId,
                owner: job.owner,
                repository: job.repo !== undefined ? `${job.owner}/${job.repo}` : undefined,
                labels: job.labels,
                script: job.script,
                durationMs: job.durationMs,
              },
            });
          }
          const left = deadline - Date.now();
          if (left <= 0 || res.destroyed) return send(res, 204, undefined);
          await new Promise<void>((resolve) => {
            const t = setTimeout(done, left);
            function done() {
              clearTimeout(t);
              pollWakers.delete(done);
              resolve();
            }
            pollWakers.add(done);
          });
        }
      } finally {
        s.pendingPolls--;
        s.lastSeen = Date.now();
      }
    }
    return send(res, 404, { message: 'Not Found' });
  };

  const takeIssued = (t: unknown, kind: IssuedToken['kind']): IssuedToken | undefined => {
    const it = typeof t === 'string' ? issued.get(t) : undefined;
    if (!it || it.kind !== kind || it.expiresAt <= Date.now()) return undefined;
    return it;
  };

  const runnerRegister = (res: http.ServerResponse, body: Record<string, unknown>) => {
    // Registration tokens may register several runners until they expire (one hour).
    const it = takeIssued(body.token, 'registration');
    const scope = typeof body.scope === 'string' ? body.scope : '';
    if (!it || it.scope.toLowerCase() !== scope.toLowerCase()) {
      return send(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    }
    const name = String(body.name ?? '');
    let groupId = 1;
    let groupName = 'Default';
    if (typeof body.runnerGroup === 'string' && body.runnerGroup !== '' && it.scope === ORG) {
      const g = GROUPS.find((x) => x.name.toLowerCase() === String(body.runnerGroup).toLowerCase());
      if (!g) return send(res, 422, { message: `Could not find any self-hosted runner group named "${body.runnerGroup}".` });
      groupId = g.id;
      groupName = g.name;
    }
    const existing = [...registrations.values()].find((r) => r.scope === it.scope && r.name.toLowerCase() === name.toLowerCase());
    if (existing && !body.replace) return send(res, 409, { message: `A runner exists with the same name ${name}.` });
    if (existing) removeRegistration(existing);
    const r = createRegistration({
      scope: it.scope,
      name,
      groupId,
      labels: Array.isArray(body.labels) ? body.labels.map(String) : [],
      ephemeral: body.ephemeral === true,
      jit: false,
      noDefaultLabels: body.noDefaultLabels === true,
      arch: typeof body.arch === 'string' ? body.arch : 'x64',
    });
    return send(res, 201, {
      runnerId: r.id,
      runnerGroupId: groupId,
      runnerGroupName: groupName,
      credential: r.credential,
      clientId: r.clientId,
      replaced: !!existing,
    });
  };

  const runnerRemove = (res: http.ServerResponse, body: Record<string, unknown>) => {
    const it = takeIssued(body.token, 'remove');
    if (!it) return send(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    const r = registrations.get(Number(body.runnerId));
    if (r && r.scope === it.scope) {
      if (r.busyJob !== undefined) return send(res, 422, { message: `Bad request - Runner "${r.name}" is still running a job"` });
      removeRegistration(r);
    }
    return send(res, 204, undefined);
  };

  // -------------------------------------------------------------- downloads

  const handleDownload = async (res: http.ServerResponse, url: URL) => {
    const m = /^\/actions\/runner\/releases\/download\/v(\d+\.\d+\.\d+)\/actions-runner-(linux|osx|win)-(x64|arm64|arm)-(\d+\.\d+\.\d+)\.(tar\.gz|zip)$/.exec(url.pathname);
    if (m && m[1] === m[4] && (m[5] === 'zip') === (m[2] === 'win')) {
      // github.com answers release downloads with a redirect to its object storage; follow it (curl -L).
      return send(res, 302, undefined, { location: `${serverUrl}/_objects/${m[1]}/${m[2]}/${m[3]}` });
    }
    const o = /^\/_objects\/(\d+\.\d+\.\d+)\/(linux|osx|win)\/(x64|arm64|arm)$/.exec(url.pathname);
    if (!o) return send(res, 404, { message: 'Not Found' });
    const packed = await pack(o[1], o[2], o[3]);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(packed.body.length),
      'content-disposition': `attachment; filename=${packed.filename}`,
    });
    res.end(packed.body);
  };

  // -------------------------------------------------------------- wiring

  const server = await serve('github', async (req, raw, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname === '/api/v3' || url.pathname.startsWith('/api/v3/')) return handleRest(req, raw, res, url);
    if (url.pathname.startsWith('/_runner/')) return handleRunner(req, raw, res, url);
    if (req.method === 'GET' || req.method === 'HEAD') return handleDownload(res, url);
    return send(res, 404, { message: 'Not Found' });
  });
  const serverUrl = server.url;
  const apiUrl = `${serverUrl}/api/v3`;

  const jobView = (j: Job): JobView => ({
    id: j.id,
    status: j.status,
    ...(j.conclusion ? { conclusion: j.conclusion } : {}),
    ...(j.runnerName ? { runnerName: j.runnerName } : {}),
    log: j.log,
  });

  const mustJob = (id: number) => {
    const j = jobs.get(id);
    if (!j) throw new Error(`fake GitHub: no job ${id}`);
    return j;
  };

  return {
    apiUrl,
    serverUrl,
    tokens,
    calls,
    queueJob(j) {
      const id = nextJobId++;
      jobs.set(id, {
        id,
        owner: j.owner,
        repo: j.repo,
        labels: [...j.labels],
        script: j.script,
        durationMs: j.durationMs,
        name: j.name ?? `job-${id}`,
        runId: 7_000_000 + id,
        status: 'queued',
        log: '',
        waiters: [],
      });
      wakePolls();
      return { id };
    },
    job: (id) => jobView(mustJob(id)),
    waitJob(id, timeoutMs) {
      const j = mustJob(id);
      if (j.status === 'completed') return Promise.resolve(jobView(j));
      return new Promise<JobView>((resolve, reject) => {
        const done = () => {
          clearTimeout(t);
          resolve(jobView(j));
        };
        const t = setTimeout(() => {
          j.waiters = j.waiters.filter((w) => w !== done);
          const rs = [...registrations.values()].map((r) => `${r.name}(${r.scope},${isOnline(r) ? 'online' : 'offline'}${r.busyJob ? ',busy' : ''})`).join(' ');
          reject(new Error(`fake GitHub: job ${id} (${j.name}, labels ${j.labels.join(',')}) is still ${j.status} after ${timeoutMs} ms; runners: ${rs || 'none'}`));
        }, timeoutMs);
        j.waiters.push(done);
      });
    },
    runners: () =>
      [...registrations.values()]
        .sort((a, b) => a.id - b.id)
        .map((r) => ({
          id: r.id,
          name: r.name,
          labels: labelsOf(r).map((l) => l.name),
          status: isOnline(r) ? ('online' as const) : ('offline' as const),
          busy: r.busyJob !== undefined,
          ephemeral: r.ephemeral,
          scope: r.scope,
          ...(isOnline(r) ? { onlineSince: r.session!.started } : {}),
        })),
    async tarball(arch = 'x64') {
      const packed = await pack(RUNNER_VERSION, 'linux', arch);
      return {
        url: `${serverUrl}/actions/runner/releases/download/v${RUNNER_VERSION}/${packed.filename}`,
        sha256: packed.sha256,
        filename: packed.filename,
        version: RUNNER_VERSION,
      };
    },
    async runnerPackage(arch = 'x64') {
      const packed = await pack(RUNNER_VERSION, 'linux', arch);
      return { body: packed.body, sha256: packed.sha256, filename: packed.filename, version: RUNNER_VERSION };
    },
    expireTokens() {
      for (const t of issued.values()) t.expiresAt = Date.now() - 1;
    },
    async close() {
      closed = true;
      clearInterval(sweeper);
      wakePolls();
      await server.close();
    },
  };
}

function archName(arch: string): string {
  return arch === 'arm64' ? 'ARM64' : arch === 'arm' ? 'ARM' : 'X64';
}
