/**
 * How the fake API server names a request: method and path to a resource request with its RBAC
 * verb, discovery, or a 404 (as the real server routes them); the parameters faults match on;
 * who the bearer token is; and what RBAC lets them do (kubernetes/rbac.ts, from the documented Role).
 * https://kubernetes.io/docs/reference/access-authn-authz/authorization/#determine-the-request-verb
 */
import type http from 'node:http';
import type { Identified } from '../core/index.js';
import { REFS, type Resource } from './cluster.js';
import { type LauncherPolicy, allows } from './rbac.js';
import { ApiError, forbidden, methodNotAllowed, resourceNotFound, unauthorized } from './status.js';

/** The identity behind the `denied` token, as RBAC messages name it. */
export const DENIED_USER = 'system:serviceaccount:ci:cml-launcher';
const VERSION = {
  major: '1',
  minor: '34',
  gitVersion: 'v1.34.1',
  gitCommit: '93248f9ae092f571eb6fc0a2ec8a0b5c9a1f6c8b',
  gitTreeState: 'clean',
  buildDate: '2025-09-09T19:43:57Z',
  goVersion: 'go1.24.6',
  compiler: 'gc',
  platform: 'linux/amd64',
};

/** What each resource implements here (RBAC verbs); anything else is 405. */
const VERBS: Record<string, readonly string[]> = {
  jobs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'],
  'jobs/status': ['get'],
  secrets: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'],
  pods: ['get', 'list', 'watch', 'delete', 'deletecollection'],
  'pods/status': ['get'],
  'pods/log': ['get'],
  events: ['get', 'list', 'watch'],
  namespaces: ['get', 'list', 'watch'],
  nodes: ['get', 'list', 'watch'],
};

const CORE_RESOURCES = new Set(['pods', 'secrets', 'events', 'namespaces', 'nodes']);
const CLUSTER_SCOPED = new Set(['namespaces', 'nodes']);
const SUBRESOURCES: Record<string, readonly string[]> = { pods: ['log', 'status'], jobs: ['status'] };

export interface Route {
  group: string;
  version: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  verb: string;
}

/** A request as the fake names it: faults match `VERB resource` (`create jobs`, `get pods/log`). */
export interface KubeRequest extends Identified {
  method: string;
  pathname: string;
  q: URLSearchParams;
  parsed: Parsed;
  /** Set for a resource request: what the call log records. */
  route?: Route;
  contentType?: string;
  body: Buffer;
  bearer?: string;
  /** Warning headers the handler adds (unknown fields, the Job deletion default). */
  warnings: string[];
}

/** `admin` is cluster-admin; `launcher` is bound to the documented Role; `denied` to nothing. */
export type User = 'admin' | 'launcher' | 'denied';

/**
 * Names a request. A resource request is `VERB resource[/subresource]`; discovery and unknown
 * paths are a non-resource URL with the method's verb (`get /version`), which RBAC names the same
 * way. Parameters: `namespace`, and `name` (from the path, or the body of a create).
 */
export function identify(req: http.IncomingMessage, body: Buffer, url: URL): KubeRequest {
  const method = req.method ?? 'GET';
  const parsed = parseRoute(method, url.pathname, url.searchParams);
  const route = parsed.kind === 'route' ? parsed.route : undefined;
  const action = route
    ? `${route.verb} ${route.subresource ? `${route.resource}/${route.subresource}` : route.resource}`
    : `${method.toLowerCase()} ${url.pathname}`;
  const params: Record<string, string> = {};
  if (route?.namespace !== undefined) params.namespace = route.namespace;
  const name = route?.name ?? (route?.verb === 'create' ? nameInBody(body) : undefined);
  if (name !== undefined) params.name = name;
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  return {
    action,
    params,
    method,
    pathname: url.pathname,
    q: url.searchParams,
    parsed,
    ...(route ? { route } : {}),
    ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
    body,
    ...(bearer ? { bearer } : {}),
    warnings: [],
  };
}

function nameInBody(body: Buffer): string | undefined {
  try {
    const name = (JSON.parse(body.toString('utf8')) as { metadata?: { name?: unknown } })?.metadata?.name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined; // the handler answers a body that is not JSON
  }
}

/** No or an unknown bearer token is 401, whatever the path. */
export function authenticate(request: KubeRequest, tokens: Record<User, string>): User {
  for (const user of ['admin', 'launcher', 'denied'] as const) if (request.bearer === tokens[user]) return user;
  throw unauthorized();
}

/**
 * RBAC: every authenticated user may read discovery (system:discovery); `admin` may do anything;
 * `launcher` what its Role allows in its namespace; `denied` nothing. A refusal is 403, worded as
 * the authorizer words it. Then the router: a verb the resource does not serve is 405.
 */
export function authorize(user: User, request: KubeRequest, policy: LauncherPolicy): void {
  const { parsed } = request;
  if (parsed.kind === 'discovery') return;
  if (user !== 'admin') {
    const who = user === 'launcher' ? policy.user : DENIED_USER;
    if (parsed.kind === 'notFound')
      throw new ApiError(
        403,
        'Forbidden',
        `forbidden: User "${who}" cannot ${request.method.toLowerCase()} path "${request.pathname}"`,
        {},
      );
    const r = parsed.route;
    const what = r.subresource ? `${r.resource}/${r.subresource}` : r.resource;
    const attributes = {
      group: r.group,
      resource: what,
      verb: r.verb,
      ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
      ...(r.name !== undefined ? { name: r.name } : {}),
    };
    if (user === 'denied' || !allows(policy, attributes)) {
      const where = r.namespace !== undefined ? `in the namespace "${r.namespace}"` : 'at the cluster scope';
      throw forbidden(
        { group: r.group, resource: r.resource },
        r.name,
        `User "${who}" cannot ${r.verb} resource "${what}" in API group "${r.group}" ${where}`,
      );
    }
  }
  if (parsed.kind === 'route') {
    const r = parsed.route;
    const allowed = VERBS[r.subresource ? `${r.resource}/${r.subresource}` : r.resource] ?? [];
    if (!allowed.includes(r.verb)) throw methodNotAllowed();
  }
}

// ---------------------------------------------------------------------------------------------
// Routing

export type Parsed =
  | { kind: 'route'; route: Route }
  | { kind: 'discovery'; body?: unknown; text?: string }
  | { kind: 'notFound'; status?: ApiError };

/** Maps method and path to a resource request (with its RBAC verb), discovery, or a 404. */
export function parseRoute(method: string, pathname: string, q: URLSearchParams): Parsed {
  const segs = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const text = (t: string): Parsed => ({ kind: 'discovery', text: t });
  if (method === 'GET') {
    if (pathname === '/version') return { kind: 'discovery', body: VERSION };
    if (['/healthz', '/livez', '/readyz'].includes(pathname)) return text('ok');
    if (pathname === '/api')
      return {
        kind: 'discovery',
        body: {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:6443' }],
        },
      };
    if (pathname === '/apis') {
      const batch = {
        name: 'batch',
        versions: [{ groupVersion: 'batch/v1', version: 'v1' }],
        preferredVersion: { groupVersion: 'batch/v1', version: 'v1' },
      };
      return { kind: 'discovery', body: { kind: 'APIGroupList', apiVersion: 'v1', groups: [batch] } };
    }
    if (pathname === '/api/v1' || pathname === '/apis/batch/v1') {
      const group = pathname === '/api/v1' ? '' : 'batch';
      const resources = Object.entries(VERBS)
        .filter(([name]) => (group === '' ? CORE_RESOURCES.has(name.split('/')[0]!) : name.startsWith('jobs')))
        .map(([name, verbs]) => {
          const base = name.split('/')[0]!;
          const kind = base === 'jobs' ? 'Job' : REFS[base as Resource | 'nodes' | 'namespaces'].kind;
          return {
            name,
            singularName: name.includes('/') ? '' : kind.toLowerCase(),
            namespaced: !CLUSTER_SCOPED.has(base),
            kind: name.endsWith('/log') ? 'Pod' : kind,
            verbs,
          };
        });
      return {
        kind: 'discovery',
        body: { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? 'batch/v1' : 'v1', resources },
      };
    }
  }
  let group: string;
  let rest: string[];
  if (segs[0] === 'api' && segs[1] === 'v1') {
    group = '';
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs[1] === 'batch' && segs[2] === 'v1') {
    group = 'batch';
    rest = segs.slice(3);
  } else {
    return { kind: 'notFound' };
  }
  const known = (r: string): boolean => (group === '' ? CORE_RESOURCES.has(r) : r === 'jobs');
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, subresource, ...extra] = rest;
  if (!resource || !known(resource) || extra.length > 0) return { kind: 'notFound', status: resourceNotFound() };
  if (namespace !== undefined && CLUSTER_SCOPED.has(resource)) return { kind: 'notFound', status: resourceNotFound() };
  if (subresource !== undefined && !(SUBRESOURCES[resource] ?? []).includes(subresource))
    return { kind: 'notFound', status: resourceNotFound() };
  const collection = name === undefined;
  // A namespaced object is only addressable inside its namespace.
  if (!collection && namespace === undefined && !CLUSTER_SCOPED.has(resource))
    return { kind: 'notFound', status: resourceNotFound() };
  let verb: string;
  switch (method) {
    case 'GET':
      verb = collection ? (q.get('watch') === 'true' || q.get('watch') === '1' ? 'watch' : 'list') : 'get';
      break;
    case 'POST':
      verb = collection ? 'create' : 'create-on-object';
      break;
    case 'PUT':
      verb = collection ? 'update-on-collection' : 'update';
      break;
    case 'PATCH':
      verb = collection ? 'patch-on-collection' : 'patch';
      break;
    case 'DELETE':
      verb = collection ? 'deletecollection' : 'delete';
      break;
    default:
      verb = method.toLowerCase();
  }
  return {
    kind: 'route',
    route: {
      group,
      version: 'v1',
      resource,
      ...(subresource ? { subresource } : {}),
      ...(namespace !== undefined ? { namespace } : {}),
      ...(name !== undefined ? { name } : {}),
      verb,
    },
  };
}
