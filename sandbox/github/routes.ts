/**
 * REST requests of the fake GitHub: how a request is named (its action, `METHOD /path` without
 * `/api/v3` and the query, and the parameters faults match on), the headers every REST answer
 * carries, and the dispatch to the controllers.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { Identified } from '../core/index.js';
import {
  type GitHubContext,
  type Result,
  createToken,
  generateJitConfig,
  listDownloads,
  listRunnerGroups,
  listRunners,
  runnerById,
} from './controllers.js';
import { DOCS, HttpError, notFound } from './errors.js';
import { ORG, REPO } from './store.js';

export interface RestRequest extends Identified {
  method: string;
  /** The path without `/api/v3` and without the query. */
  path: string;
  url: URL;
  raw: Buffer;
  /** Whether an Authorization header was sent at all, and the token it carries. */
  hasAuth: boolean;
  token?: string;
  /** The `X-GitHub-Api-Version` header, when sent. */
  requestedVersion?: string;
  /** The permission GitHub says the route needs (`x-accepted-github-permissions`). */
  accepted?: string;
  /** The owner (`octo-org`) or repository (`octo-org/ml`) when the path names a known one. */
  scope?: string;
  /** What follows `…/actions/`, e.g. `POST runners/generate-jitconfig`. */
  key: string;
  rest: string[];
  /** Whether the route exists for this scope; an unknown one is 404 whoever asks. */
  known: boolean;
}

const ROUTES = [
  /^GET runner-groups$/,
  /^GET runners(\/downloads)?$/,
  /^POST runners\/(registration-token|remove-token|generate-jitconfig)$/,
  /^(GET|DELETE) runners\/\d+$/,
  /^GET runners\/\d+\/labels$/,
];

/** Names a REST request; never throws, so every request reaches the call log with its path. */
export function identifyRest(req: http.IncomingMessage, raw: Buffer, url: URL): RestRequest {
  const method = req.method ?? 'GET';
  const path = url.pathname.slice('/api/v3'.length) || '/';
  const auth = req.headers.authorization;
  const token = auth ? /^(?:token|bearer)\s+(\S+)$/i.exec(auth)?.[1] : undefined;
  const requested = req.headers['x-github-api-version'];
  const scopeMatch = /^\/(repos\/[^/]+\/[^/]+|orgs\/[^/]+)\//.exec(path);
  const accepted = scopeMatch
    ? scopeMatch[1].startsWith('orgs/')
      ? 'organization_self_hosted_runners=write'
      : 'administration=write'
    : undefined;
  const { scope, rest } = scopeOf(path);
  const key = `${method} ${rest.join('/')}`;
  const known =
    scope !== undefined && ROUTES.some((r) => r.test(key)) && !(key === 'GET runner-groups' && scope !== ORG);
  return {
    action: `${method} ${path}`,
    params: paramsOf(rest, url, raw),
    method,
    path,
    url,
    raw,
    hasAuth: !!auth,
    ...(token ? { token } : {}),
    ...(typeof requested === 'string' ? { requestedVersion: requested } : {}),
    ...(accepted ? { accepted } : {}),
    ...(scope ? { scope } : {}),
    key,
    rest,
    known,
  };
}

/** The known scope a path names (`/repos/o/r/actions/…`, `/orgs/o/actions/…`), matched case-insensitively. */
function scopeOf(path: string): { scope?: string; rest: string[] } {
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'repos' && parts.length >= 4 && parts[3] === 'actions') {
    const rest = parts.slice(4);
    return `${parts[1]}/${parts[2]}`.toLowerCase() === REPO ? { scope: REPO, rest } : { rest };
  }
  if (parts[0] === 'orgs' && parts.length >= 3 && parts[2] === 'actions') {
    const rest = parts.slice(3);
    return parts[1].toLowerCase() === ORG ? { scope: ORG, rest } : { rest };
  }
  return { rest: [] };
}

/**
 * Parameters faults match on: `name` (a JIT runner's name, or the runners list's `name` filter)
 * and `id` (a runner's id in the path); a JIT request's `labels` (as JSON) are recorded too.
 */
function paramsOf(rest: string[], url: URL, raw: Buffer): Record<string, string> {
  const params: Record<string, string> = {};
  if (rest[0] === 'runners' && rest[1] !== undefined && /^\d+$/.test(rest[1])) params.id = rest[1];
  const filter = url.searchParams.get('name');
  if (filter !== null) params.name = filter;
  if (rest[1] === 'generate-jitconfig' && raw.length > 0) {
    try {
      const body = JSON.parse(raw.toString('utf8')) as { name?: unknown; labels?: unknown };
      if (typeof body?.name === 'string') params.name = body.name;
      if (Array.isArray(body?.labels)) params.labels = JSON.stringify(body.labels);
    } catch {
      // The controller answers a body that is not JSON.
    }
  }
  return params;
}

/** Headers on every REST answer: the media type, the API version, the rate limit, a request id. */
export function restHeaders(ctx: GitHubContext, request: RestRequest, apiVersion: string): Record<string, string> {
  const limit = rateLimit(ctx, request.token);
  const key = request.token ?? 'anonymous';
  const used = Math.min(limit, (ctx.store.rate.get(key) ?? 0) + 1);
  ctx.store.rate.set(key, used);
  const hex = (n: number): string => randomBytes(n).toString('hex').toUpperCase();
  const h: Record<string, string> = {
    'x-github-media-type': 'github.v3; format=json',
    'x-github-api-version-selected': apiVersion,
    'x-ratelimit-limit': String(limit),
    'x-ratelimit-remaining': String(limit - used),
    'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
    'x-ratelimit-used': String(used),
    'x-ratelimit-resource': 'core',
    'x-github-request-id': `${hex(2)}:${hex(3)}:${hex(4)}:${hex(4)}:${hex(4)}`,
  };
  if (request.token === ctx.tokens.admin) h['x-oauth-scopes'] = 'admin:org, repo, workflow';
  if (request.accepted) h['x-accepted-github-permissions'] = request.accepted;
  return h;
}

/** Requests per hour: a personal access token 5000, an installation token 1000, anyone else 60. */
export function rateLimit(ctx: GitHubContext, token: string | undefined): number {
  return token === ctx.tokens.admin ? 5000 : token === ctx.tokens.readOnly ? 1000 : 60;
}

/**
 * A workflow's GITHUB_TOKEN can never administer runners (it has no Administration or
 * organisation Self-hosted runners permission); an unknown route stays a 404 for it.
 */
export function requireAdmin(request: RestRequest, admin: boolean): void {
  if (request.known && !admin)
    throw new HttpError(403, 'Resource not accessible by integration', { documentation_url: DOCS });
}

/** Runs the controller for a known route; anything else is 404. */
export async function dispatch(ctx: GitHubContext, request: RestRequest): Promise<Result> {
  const { key, rest, scope, url } = request;
  if (!request.known || scope === undefined) throw notFound();
  if (key === 'GET runner-groups') return listRunnerGroups(ctx, url);
  if (key === 'GET runners/downloads') return listDownloads(ctx);
  if (key === 'POST runners/registration-token') return createToken(ctx, 'registration', scope);
  if (key === 'POST runners/remove-token') return createToken(ctx, 'remove', scope);
  if (key === 'POST runners/generate-jitconfig') return generateJitConfig(ctx, scope, request.raw);
  if (key === 'GET runners') return listRunners(ctx, scope, url);
  return runnerById(ctx, request.method, scope, Number(rest[1]), rest[2] === 'labels');
}
