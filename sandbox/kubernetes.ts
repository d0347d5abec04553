/**
 * Fake Kubernetes API server: REST/JSON over plain http on 127.0.0.1, driven by the real
 * `@kubernetes/client-node` from a kubeconfig (bearer token, `insecure-skip-tls-verify`), with a
 * fake control plane and nodes behind it (kubernetes/cluster.ts, kubernetes/kubelet.ts).
 *
 * Resources: batch/v1 jobs; v1 secrets, pods (and pods/log), events; read-only namespaces and
 * nodes. Verbs are those of RBAC (get, list, watch, create, update, patch, delete,
 * deletecollection); what a resource does not implement here answers 405, unknown paths 404,
 * as the real server answers them. Errors are `Status` objects with the real reasons and
 * messages (kubernetes/status.ts); decoding, validation and defaulting follow the real server
 * (kubernetes/validation.ts).
 * https://kubernetes.io/docs/reference/using-api/api-concepts/
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type http from 'node:http';
import { type Fault, type FaultPlan, applyReset, sleep } from './core/index.js';
import type { FakeGitHub } from './github.js';
import { serve } from './http.js';
import { type Machine, MachineFleet } from './machine.js';
import { Cluster, DEFAULT_NODES, type NodeSpec, type Propagation, REFS, type Resource } from './kubernetes/cluster.js';
import { applyPatch, patchType } from './kubernetes/patch.js';
import { type LabelSelector, parseFieldSelector, parseLabelSelector } from './kubernetes/selectors.js';
import {
  ApiError,
  type Json,
  badRequest,
  conflict,
  forbidden,
  invalid,
  invalidObject,
  methodNotAllowed,
  notFound,
  notSupported,
  resourceNotFound,
  unauthorized,
} from './kubernetes/status.js';
import { decode, deepEqual, defaultJob, prepareSecret, validateJob } from './kubernetes/validation.js';

export type { NodeSpec, Taint } from './kubernetes/cluster.js';
export { DEFAULT_NODES, fitErrorMessage } from './kubernetes/cluster.js';

/** A Kubernetes object as the fake stores it: apiVersion, kind, metadata, and the rest. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    generation?: number;
    generateName?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
    finalizers?: string[];
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
  };
  [field: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: string | null;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: { exitCode: number; reason?: string; message?: string; startedAt?: string | null; finishedAt?: string | null; containerID?: string };
}

export interface JobObject extends KubeObject {
  spec: Json;
  status?: {
    active?: number;
    ready?: number;
    terminating?: number;
    succeeded?: number;
    failed?: number;
    startTime?: string;
    completionTime?: string;
    conditions?: Condition[];
  };
}

export interface PodObject extends KubeObject {
  spec: Json & { nodeName?: string };
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    conditions?: Condition[];
    containerStatuses?: Array<{ name: string; state?: ContainerState; lastState?: ContainerState; ready: boolean; restartCount: number; image: string; imageID: string; containerID?: string; started?: boolean }>;
    hostIP?: string;
    podIP?: string;
    startTime?: string;
    qosClass?: string;
  };
}

export interface SecretObject extends KubeObject {
  type?: string;
  /** Values in base64, as the API returns them. */
  data?: Record<string, string>;
  immutable?: boolean;
}

export interface EventObject extends KubeObject {
  involvedObject: { kind: string; namespace?: string; name: string; uid: string; apiVersion?: string; fieldPath?: string };
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
  reportingComponent: string;
  count?: number;
  series?: { count: number; lastObservedTime: string };
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  eventTime?: string | null;
}

export interface KubernetesCall {
  /** RBAC verb: get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  /** API group: '' for the core group, 'batch' for Jobs. */
  group: string;
  version: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  status: number;
  /** Status reason of a failed call (NotFound, Invalid, Forbidden, ...). */
  reason?: string;
  /** Warning headers sent (unknown fields, the Job deletion default). */
  warnings?: string[];
  at: number;
  ms: number;
}

export interface FakeKubernetesOptions {
  faults: FaultPlan;
  /** Boots the pods' containers; shared with the sandbox so leftovers and `failBoot` see them. */
  machines?: MachineFleet;
  /** Added to every call. */
  latencyMs?: number;
  /** How long a Kubernetes second lasts (deadlines, TTLs, grace periods, back-offs). Default 1000. */
  secondMs?: number;
  /** The cluster's nodes. Default: `sandbox-cpu-1` and `sandbox-gpu-1` (one Tesla T4, tainted). */
  nodes?: readonly NodeSpec[];
  /** RuntimeClasses that exist. Default `['nvidia']`. */
  runtimeClasses?: readonly string[];
  /** Namespaces that exist (the kube-* ones always do). Default `['default', 'ci']`. */
  namespaces?: readonly string[];
  /** Images that cannot be pulled. Default: any reference containing `does-not-exist`. */
  unpullableImages?: readonly string[] | ((image: string) => boolean);
  /** Where the `ghcr.io/actions/actions-runner` image gets its runner (the fake GitHub's tarball). */
  github?: Pick<FakeGitHub, 'runnerPackage'>;
}

export interface FakeKubernetes {
  url: string;
  /** `admin` may do everything; `denied` is authenticated and may do nothing (403). */
  tokens: { admin: string; denied: string };
  /** A kubeconfig (YAML) for this server: the token (default admin) and the context's namespace (default `default`). */
  kubeconfig(opts?: { token?: string; namespace?: string }): string;
  /** Every API call, oldest first. */
  calls: KubernetesCall[];
  jobs(): JobObject[];
  pods(): PodObject[];
  secrets(): SecretObject[];
  events(): EventObject[];
  nodes(): KubeObject[];
  /** The console of a pod's container (its first one unless named), as `kubectl logs` shows it. */
  podLog(name: string, opts?: { namespace?: string; container?: string }): string;
  /** One line per Job, pod and Secret still present, and per container process still running. */
  leftovers(): string[];
  /** Whether a machine is one of this cluster's containers. */
  ownsMachine(m: Machine): boolean;
  close(): Promise<void>;
}

/** The identity behind the `denied` token, as RBAC messages name it. */
const DENIED_USER = 'system:serviceaccount:ci:cml-launcher';
const VERSION = { major: '1', minor: '34', gitVersion: 'v1.34.1', gitCommit: '93248f9ae092f571eb6fc0a2ec8a0b5c9a1f6c8b', gitTreeState: 'clean', buildDate: '2025-09-09T19:43:57Z', goVersion: 'go1.24.6', compiler: 'gc', platform: 'linux/amd64' };

/** Fields each resource supports in a fieldSelector (the server's field label conversion functions). */
const FIELDS: Record<Resource | 'namespaces' | 'nodes', readonly string[]> = {
  jobs: ['metadata.name', 'metadata.namespace', 'status.successful'],
  pods: ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
  secrets: ['metadata.name', 'metadata.namespace', 'type'],
  events: [
    'metadata.name',
    'metadata.namespace',
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
  namespaces: ['metadata.name', 'status.phase'],
  nodes: ['metadata.name', 'spec.unschedulable'],
};

function fieldsOf(resource: Resource | 'namespaces' | 'nodes', o: Json): Record<string, string> {
  const base = { 'metadata.name': o.metadata.name, 'metadata.namespace': o.metadata.namespace ?? '' };
  switch (resource) {
    case 'jobs':
      return { ...base, 'status.successful': String(o.status?.succeeded ?? 0) };
    case 'pods':
      return {
        ...base,
        'spec.nodeName': o.spec?.nodeName ?? '',
        'spec.restartPolicy': o.spec?.restartPolicy ?? '',
        'spec.schedulerName': o.spec?.schedulerName ?? '',
        'spec.serviceAccountName': o.spec?.serviceAccountName ?? '',
        'spec.hostNetwork': String(o.spec?.hostNetwork ?? false),
        'status.phase': o.status?.phase ?? '',
        'status.podIP': o.status?.podIP ?? '',
        'status.nominatedNodeName': o.status?.nominatedNodeName ?? '',
      };
    case 'secrets':
      return { ...base, type: o.type ?? '' };
    case 'events':
      return {
        ...base,
        'involvedObject.kind': o.involvedObject?.kind ?? '',
        'involvedObject.namespace': o.involvedObject?.namespace ?? '',
        'involvedObject.name': o.involvedObject?.name ?? '',
        'involvedObject.uid': o.involvedObject?.uid ?? '',
        'involvedObject.apiVersion': o.involvedObject?.apiVersion ?? '',
        'involvedObject.resourceVersion': o.involvedObject?.resourceVersion ?? '',
        'involvedObject.fieldPath': o.involvedObject?.fieldPath ?? '',
        reason: o.reason ?? '',
        reportingComponent: o.reportingComponent ?? '',
        source: o.source?.component ?? '',
        type: o.type ?? '',
      };
    case 'namespaces':
      return { 'metadata.name': o.metadata.name, 'status.phase': o.status?.phase ?? '' };
    case 'nodes':
      return { 'metadata.name': o.metadata.name, 'spec.unschedulable': String(o.spec?.unschedulable ?? false) };
  }
}

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

interface Route {
  group: string;
  version: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  verb: string;
}

export async function startFakeKubernetes(opts: FakeKubernetesOptions): Promise<FakeKubernetes> {
  const machines = opts.machines ?? new MachineFleet();
  const ownsMachines = opts.machines === undefined;
  const unpullable = opts.unpullableImages;
  const cluster = new Cluster({
    machines,
    secondMs: opts.secondMs ?? 1000,
    nodes: opts.nodes ?? DEFAULT_NODES,
    runtimeClasses: opts.runtimeClasses ?? ['nvidia'],
    namespaces: opts.namespaces ?? ['default', 'ci'],
    unpullable: typeof unpullable === 'function' ? unpullable : unpullable ? (image) => unpullable.includes(image) : (image) => image.includes('does-not-exist'),
    ...(opts.github ? { runnerTarball: async () => (await opts.github!.runnerPackage()).body } : {}),
  });
  const token = (): string => `sandbox-${randomBytes(24).toString('base64url')}`;
  const tokens = { admin: token(), denied: token() };
  const calls: KubernetesCall[] = [];
  const watches = new Set<http.ServerResponse>();

  const server = await serve('kubernetes', async (req, body, res) => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const q = url.searchParams;
    const warnings: string[] = [];
    let route: Route | undefined;
    const headers = (): Record<string, string> => ({
      'audit-id': randomUUID(),
      'cache-control': 'no-cache, private',
      ...(warnings.length > 0 ? { warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') } : {}),
    });
    const record = (status: number, reason?: string): void => {
      if (!route) return;
      calls.push({
        verb: route.verb,
        group: route.group,
        version: route.version,
        resource: route.resource,
        ...(route.subresource ? { subresource: route.subresource } : {}),
        ...(route.namespace !== undefined ? { namespace: route.namespace } : {}),
        ...(route.name !== undefined ? { name: route.name } : {}),
        status,
        ...(reason ? { reason } : {}),
        ...(warnings.length > 0 ? { warnings: [...warnings] } : {}),
        at: started,
        ms: Date.now() - started,
      });
    };
    const json = (status: number, obj: unknown): void => {
      record(status);
      res.writeHead(status, { 'content-type': 'application/json', ...headers() });
      res.end(JSON.stringify(obj));
    };
    const fail = (err: ApiError): void => {
      record(err.code, err.reason);
      res.writeHead(err.code, { 'content-type': 'application/json', ...headers(), ...err.headers });
      res.end(JSON.stringify(err.status()));
    };

    if (opts.latencyMs) await sleep(opts.latencyMs);
    try {
      // Authentication first: no or an unknown bearer token is 401 whatever the path.
      const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const user = auth === tokens.admin ? 'admin' : auth === tokens.denied ? 'denied' : undefined;
      const parsed = parseRoute(req.method ?? 'GET', url.pathname, q);
      if (parsed.kind === 'route') route = parsed.route;
      if (!user) throw unauthorized();
      if (parsed.kind === 'discovery') {
        res.writeHead(200, { 'content-type': parsed.text ? 'text/plain; charset=utf-8' : 'application/json', ...headers() });
        res.end(parsed.text ?? JSON.stringify(parsed.body));
        return;
      }
      if (parsed.kind === 'notFound') {
        if (user === 'denied') throw new ApiError(403, 'Forbidden', `forbidden: User "${DENIED_USER}" cannot ${(req.method ?? 'get').toLowerCase()} path "${url.pathname}"`, {});
        if (parsed.status) throw parsed.status;
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', ...headers() });
        res.end('404 page not found\n');
        return;
      }
      const r = parsed.route;
      const ref = { group: r.group, resource: r.resource };
      if (user === 'denied') {
        const what = r.subresource ? `${r.resource}/${r.subresource}` : r.resource;
        const where = r.namespace !== undefined ? `in the namespace "${r.namespace}"` : 'at the cluster scope';
        throw forbidden(ref, r.name, `User "${DENIED_USER}" cannot ${r.verb} resource "${what}" in API group "${r.group}" ${where}`);
      }
      const allowed = VERBS[r.subresource ? `${r.resource}/${r.subresource}` : r.resource] ?? [];
      if (!allowed.includes(r.verb)) throw methodNotAllowed();

      const fault = opts.faults.take('kubernetes', `${r.verb} ${r.subresource ? `${r.resource}/${r.subresource}` : r.resource}`);
      if (fault?.delayMs) await sleep(fault.delayMs);
      if (applyReset(fault, res)) return;
      if (fault?.code) throw faultError(fault, ref, r.name);

      const answer = await handle(r, req, body, q, warnings, res);
      if (answer === 'streamed') {
        record(200);
        return;
      }
      if (answer.text !== undefined) {
        record(answer.status);
        res.writeHead(answer.status, { 'content-type': 'text/plain', ...headers() });
        res.end(answer.text);
        return;
      }
      json(answer.status, answer.body);
    } catch (err) {
      if (err instanceof ApiError) fail(err);
      else throw err;
    }
  });

  type Answer = { status: number; body?: unknown; text?: string } | 'streamed';

  async function handle(r: Route, req: http.IncomingMessage, body: Buffer, q: URLSearchParams, warnings: string[], res: http.ServerResponse): Promise<Answer> {
    if (r.resource === 'namespaces' || r.resource === 'nodes') return readClusterScoped(r, q);
    const resource = r.resource as Resource;
    const refs = REFS[resource];
    const ns = r.namespace;
    switch (r.verb) {
      case 'list': {
        const all = filtered(resource, ns, q);
        return { status: 200, body: paginate(all, q, refs.listKind, refs.apiVersion) };
      }
      case 'watch':
        return watch(resource, ns, q, res);
      case 'get': {
        const obj = mustGet(resource, ns!, r.name!);
        if (r.subresource === 'log') return { status: 200, text: cluster.kubelet.log(obj, q) };
        return { status: 200, body: structuredClone(obj) };
      }
      case 'create':
        return { status: 201, body: create(resource, ns!, body, q, warnings) };
      case 'update':
      case 'patch':
        return { status: 200, body: modify(r.verb, resource, ns!, r.name!, body, req.headers['content-type'], q, warnings) };
      case 'delete': {
        const obj = mustGet(resource, ns!, r.name!);
        return remove(resource, obj, deleteOptions(body, q), q, warnings);
      }
      case 'deletecollection': {
        const options = deleteOptions(body, q);
        const items = filtered(resource, ns, q);
        for (const obj of items) remove(resource, cluster.get(resource, obj.metadata.namespace, obj.metadata.name)!, options, q, warnings);
        return { status: 200, body: { kind: refs.listKind, apiVersion: refs.apiVersion, metadata: { resourceVersion: cluster.resourceVersion }, items } };
      }
    }
    throw methodNotAllowed();
  }

  function readClusterScoped(r: Route, q: URLSearchParams): Answer {
    const refs = REFS[r.resource as 'namespaces' | 'nodes'];
    const objects = r.resource === 'namespaces' ? [...cluster.namespaceObjects.values()] : cluster.nodeObjects;
    if (r.verb === 'get') {
      const obj = objects.find((o) => o.metadata.name === r.name);
      if (!obj) throw notFound(refs, r.name!);
      return { status: 200, body: structuredClone(obj) };
    }
    if (r.verb === 'watch') throw methodNotAllowed();
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', FIELDS[r.resource as 'nodes']);
    const items = objects.filter((o) => labels(o.metadata.labels) && fields(fieldsOf(r.resource as 'nodes', o)));
    return { status: 200, body: paginate(items, q, refs.listKind, refs.apiVersion) };
  }

  function mustGet(resource: Resource, ns: string, name: string): Json {
    const obj = cluster.get(resource, ns, name);
    if (!obj) throw notFound(REFS[resource], name);
    return obj;
  }

  function filtered(resource: Resource, ns: string | undefined, q: URLSearchParams): Json[] {
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', FIELDS[resource]);
    return cluster.list(resource, ns).filter((o) => labels(o.metadata.labels) && fields(fieldsOf(resource, o)));
  }

  /** A list answer; `limit` and `continue` page through it as the server does. Items carry no kind. */
  function paginate(all: Json[], q: URLSearchParams, listKind: string, apiVersion: string): Json {
    let start = 0;
    const token = q.get('continue');
    if (token) {
      try {
        const { after } = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after: string };
        start = all.findIndex((o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}` > after);
        if (start < 0) start = all.length;
      } catch {
        throw badRequest('continue key is not valid: illegal base64 data at input byte 0');
      }
    }
    const limit = Number(q.get('limit') ?? 0);
    const page = limit > 0 ? all.slice(start, start + limit) : all.slice(start);
    const more = limit > 0 && start + limit < all.length;
    const last = page[page.length - 1];
    const items = page.map((o) => {
      const { apiVersion: _a, kind: _k, ...rest } = structuredClone(o);
      return rest;
    });
    return {
      kind: listKind,
      apiVersion,
      metadata: {
        resourceVersion: cluster.resourceVersion,
        ...(more && last
          ? {
              continue: Buffer.from(JSON.stringify({ after: `${last.metadata.namespace ?? ''}/${last.metadata.name}`, rv: cluster.resourceVersion })).toString('base64url'),
              remainingItemCount: all.length - start - page.length,
            }
          : {}),
      },
      items,
    };
  }

  /** A streaming watch: the current objects as ADDED (unless a resourceVersion was given), then changes. */
  function watch(resource: Resource, ns: string | undefined, q: URLSearchParams, res: http.ServerResponse): Answer {
    const labels: LabelSelector = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', FIELDS[resource]);
    const matches = (o: Json): boolean => (ns === undefined || o.metadata.namespace === ns) && labels(o.metadata.labels) && fields(fieldsOf(resource, o));
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache, private' });
    const send = (type: string, o: Json): void => {
      res.write(`${JSON.stringify({ type, object: structuredClone(o) })}\n`);
    };
    const rv = q.get('resourceVersion');
    if (!rv || rv === '0') for (const o of cluster.list(resource, ns)) if (matches(o)) send('ADDED', o);
    const stop = cluster.onChange((r, type, o) => {
      if (r === resource && matches(o)) send(type, o);
    });
    watches.add(res);
    const timeout = Number(q.get('timeoutSeconds') ?? 1800) * 1000;
    const end = (): void => {
      stop();
      watches.delete(res);
      clearTimeout(timer);
      if (!res.writableEnded) res.end();
    };
    const timer = setTimeout(end, timeout);
    timer.unref();
    res.on('close', end);
    return 'streamed';
  }

  function decodeBody(kind: 'Job' | 'Secret', resource: Resource, ns: string, body: Buffer, q: URLSearchParams, warnings: string[]): Json {
    let raw: unknown;
    try {
      raw = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
    }
    const refs = REFS[resource];
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      const { apiVersion, kind: k } = raw as Json;
      if (apiVersion !== undefined && apiVersion !== refs.apiVersion) throw badRequest(`the API version in the data (${apiVersion}) does not match the expected API version (${refs.apiVersion})`);
      if (k !== undefined && k !== refs.kind) throw badRequest(`the kind in the data (${k}) does not match the expected kind (${refs.kind})`);
    }
    const unknown: string[] = [];
    const obj = decode(kind, raw, unknown);
    const validation = q.get('fieldValidation') ?? 'Warn';
    if (!['Ignore', 'Warn', 'Strict'].includes(validation)) throw badRequest(`fieldValidation: Invalid value: ${JSON.stringify(validation)}: must be one of "Ignore", "Warn" or "Strict"`);
    if (unknown.length > 0 && validation === 'Strict') {
      throw badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: strict decoding error: ${unknown.map((u) => `unknown field ${JSON.stringify(u)}`).join(', ')}`);
    }
    if (validation === 'Warn') for (const u of unknown) warnings.push(`unknown field ${JSON.stringify(u)}`);
    obj.metadata ??= {};
    if (obj.metadata.namespace && obj.metadata.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    return obj;
  }

  function create(resource: Resource, ns: string, body: Buffer, q: URLSearchParams, warnings: string[]): Json {
    if (resource !== 'jobs' && resource !== 'secrets') throw methodNotAllowed();
    const kind = resource === 'jobs' ? 'Job' : 'Secret';
    const obj = decodeBody(kind, resource, ns, body, q, warnings);
    // Admission (NamespaceLifecycle) refuses a namespace that does not exist before validation runs.
    if (!cluster.namespaceExists(ns)) throw notFound(REFS.namespaces, ns);
    cluster.stamp(obj, resource, ns);
    delete obj.status;
    let errors;
    if (resource === 'secrets') {
      errors = prepareSecret(obj);
    } else {
      defaultJob(obj);
      generateSelector(obj);
      errors = validateJob(obj);
      obj.status = {};
    }
    if (errors.length > 0) throw invalidObject(kind, REFS[resource].group, obj.metadata.name ?? '', errors);
    if (q.get('dryRun') === 'All') return structuredClone(obj);
    return structuredClone(cluster.create(resource, obj));
  }

  /** PUT (update) or PATCH: the new object, checked as an update, stored. */
  function modify(verb: 'update' | 'patch', resource: Resource, ns: string, name: string, body: Buffer, contentType: string | undefined, q: URLSearchParams, warnings: string[]): Json {
    if (resource !== 'jobs' && resource !== 'secrets') throw methodNotAllowed();
    const kind = resource === 'jobs' ? 'Job' : 'Secret';
    const existing = mustGet(resource, ns, name);
    let next: Json;
    if (verb === 'patch') {
      const patched = applyPatch(existing, body, patchType(contentType));
      next = decodeBody(kind, resource, ns, Buffer.from(JSON.stringify(patched)), q, warnings);
    } else {
      next = decodeBody(kind, resource, ns, body, q, warnings);
    }
    const meta = next.metadata as Json;
    if (meta.name !== undefined && meta.name !== name) throw badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    if (meta.resourceVersion && meta.resourceVersion !== existing.metadata.resourceVersion) {
      throw conflict(REFS[resource], name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    const errors = [];
    if (meta.uid && meta.uid !== existing.metadata.uid) errors.push(invalid('metadata.uid', meta.uid, 'field is immutable'));
    // What an update cannot change: identity, timestamps, and (on the main resource) the status.
    Object.assign(meta, {
      name,
      namespace: ns,
      uid: existing.metadata.uid,
      creationTimestamp: existing.metadata.creationTimestamp,
      ...(existing.metadata.generation !== undefined ? { generation: existing.metadata.generation } : {}),
      ...(existing.metadata.deletionTimestamp ? { deletionTimestamp: existing.metadata.deletionTimestamp, deletionGracePeriodSeconds: existing.metadata.deletionGracePeriodSeconds } : {}),
    });
    if (existing.metadata.generation === undefined) delete meta.generation;
    next.apiVersion = existing.apiVersion;
    next.kind = existing.kind;
    let specChanged = false;
    if (resource === 'secrets') {
      errors.push(...prepareSecret(next));
      if (existing.immutable) {
        if (!deepEqual(next.data ?? {}, existing.data ?? {})) errors.push(forbiddenAt('data', 'field is immutable when `immutable` is set'));
        if (next.immutable !== true) errors.push(forbiddenAt('immutable', 'field is immutable when `immutable` is set'));
      }
      if (next.type !== existing.type) errors.push(invalid('type', next.type, 'field is immutable'));
    } else {
      next.status = existing.status;
      defaultJob(next);
      // The generated selector and labels stay as they were generated.
      next.spec.selector = existing.spec.selector;
      next.spec.template.metadata.labels = { ...next.spec.template.metadata.labels, ...generatedLabels(existing) };
      errors.push(...validateJob(next));
      for (const field of ['template', 'completions', 'completionMode', 'podFailurePolicy', 'backoffLimitPerIndex', 'podReplacementPolicy'] as const) {
        if (!deepEqual(next.spec[field], existing.spec[field])) errors.push(invalid(`spec.${field}`, next.spec[field], 'field is immutable'));
      }
      specChanged = !deepEqual(next.spec, existing.spec);
    }
    if (errors.length > 0) throw invalidObject(kind, REFS[resource].group, name, errors);
    if (q.get('dryRun') === 'All') return structuredClone(next);
    return structuredClone(cluster.replace(resource, next, specChanged));
  }

  function deleteOptions(body: Buffer, q: URLSearchParams): Json {
    // A body wins; without one, the options come from the query, as the server reads them.
    if (body.length > 0 && body.toString('utf8').trim() !== '') {
      let raw: unknown;
      try {
        raw = JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
      }
      return decode('DeleteOptions', raw, []);
    }
    const options: Json = {};
    if (q.has('propagationPolicy')) options.propagationPolicy = q.get('propagationPolicy');
    if (q.has('orphanDependents')) options.orphanDependents = q.get('orphanDependents') === 'true';
    if (q.has('gracePeriodSeconds')) options.gracePeriodSeconds = Number(q.get('gracePeriodSeconds'));
    if (q.has('dryRun')) options.dryRun = q.getAll('dryRun');
    return options;
  }

  function remove(resource: Resource, obj: Json, options: Json, q: URLSearchParams, warnings: string[]): Answer {
    const refs = REFS[resource];
    const name = obj.metadata.name as string;
    const errors = [];
    if (options.orphanDependents !== undefined && options.propagationPolicy !== undefined) {
      errors.push(invalid('propagationPolicy', options.propagationPolicy, 'orphanDependents and deletionPropagation cannot be both set'));
    }
    if (options.propagationPolicy !== undefined && !['Foreground', 'Background', 'Orphan'].includes(options.propagationPolicy)) {
      errors.push(notSupported('propagationPolicy', options.propagationPolicy, ['Foreground', 'Background', 'Orphan', 'nil']));
    }
    if (options.gracePeriodSeconds !== undefined && options.gracePeriodSeconds < 0) options.gracePeriodSeconds = 0;
    if (errors.length > 0) throw invalidObject('DeleteOptions', 'meta.k8s.io', '', errors);
    const pre = options.preconditions as Json | undefined;
    if (pre?.uid && pre.uid !== obj.metadata.uid) throw conflict(refs, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${obj.metadata.uid}`);
    if (pre?.resourceVersion && pre.resourceVersion !== obj.metadata.resourceVersion) {
      throw conflict(refs, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${obj.metadata.resourceVersion}`);
    }
    let propagation: Propagation;
    if (options.propagationPolicy) propagation = options.propagationPolicy;
    else if (options.orphanDependents !== undefined) propagation = options.orphanDependents ? 'Orphan' : 'Background';
    else if (resource === 'jobs') {
      // batch/v1 Jobs deleted through the API orphan their pods unless told otherwise (kept for
      // backwards compatibility); the server says so in a warning since v1.27.
      propagation = 'Orphan';
      warnings.push('child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning');
    } else propagation = 'Background';
    if ((options.dryRun ?? []).includes('All') || q.get('dryRun') === 'All') return { status: 200, body: structuredClone(obj) };
    const { gone, obj: last } = cluster.delete(resource, obj, propagation, options.gracePeriodSeconds);
    if (!gone) return { status: 202, body: structuredClone(last) };
    // Pods answer with the deleted object; other resources with a Status.
    if (resource === 'pods') return { status: 200, body: structuredClone(last) };
    return {
      status: 200,
      body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, ...(refs.group ? { group: refs.group } : {}), kind: refs.resource, uid: obj.metadata.uid } },
    };
  }

  function kubeconfig(o: { token?: string; namespace?: string } = {}): string {
    return [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: sandbox',
      '  cluster:',
      `    server: ${server.url}`,
      '    insecure-skip-tls-verify: true',
      'users:',
      '- name: sandbox-user',
      '  user:',
      `    token: ${JSON.stringify(o.token ?? tokens.admin)}`,
      'contexts:',
      '- name: sandbox',
      '  context:',
      '    cluster: sandbox',
      '    user: sandbox-user',
      `    namespace: ${JSON.stringify(o.namespace ?? 'default')}`,
      'current-context: sandbox',
      '',
    ].join('\n');
  }

  function leftovers(): string[] {
    const lines: string[] = [];
    const labels = (o: Json): string => {
      const l = Object.entries((o.metadata.labels ?? {}) as Record<string, string>).filter(([k]) => !/(^|\/)(controller-uid|job-name)$/.test(k));
      return l.length > 0 ? `; labels ${l.map(([k, v]) => `${k}=${v}`).join(', ')}` : '';
    };
    for (const job of cluster.list('jobs')) {
      const done = (job.status?.conditions as Json[] | undefined)?.find((c) => c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed'));
      const state = job.metadata.deletionTimestamp ? 'being deleted' : done ? `${done.type}${done.reason ? ` (${done.reason})` : ''}` : `active ${job.status?.active ?? 0}`;
      lines.push(`Kubernetes Job ${job.metadata.namespace}/${job.metadata.name} is still present (${state})${labels(job)}`);
    }
    const podsWithMachines = new Set<string>();
    for (const pod of cluster.list('pods')) {
      const running = cluster.kubelet.machines().filter((m) => m.namespace === pod.metadata.namespace && m.pod === pod.metadata.name && (m.machine.running || m.machine.processes().length > 0));
      if (running.length > 0) podsWithMachines.add(`${pod.metadata.namespace}/${pod.metadata.name}`);
      const owner = (pod.metadata.ownerReferences as Json[] | undefined)?.find((o) => o.controller);
      lines.push(
        `Kubernetes pod ${pod.metadata.namespace}/${pod.metadata.name} is still present (${pod.status?.phase ?? 'Pending'}${pod.spec.nodeName ? ` on ${pod.spec.nodeName}` : ''}${pod.metadata.deletionTimestamp ? ', being deleted' : ''}${owner ? `, owned by ${owner.kind} ${owner.name}` : ', no owner'}${running.length > 0 ? ', its container is running' : ''})`,
      );
    }
    for (const secret of cluster.list('secrets')) {
      const owner = (secret.metadata.ownerReferences as Json[] | undefined)?.[0];
      lines.push(`Kubernetes Secret ${secret.metadata.namespace}/${secret.metadata.name} is still present${owner ? ` (owned by ${owner.kind} ${owner.name})` : ''}`);
    }
    for (const m of cluster.kubelet.machines()) {
      if (podsWithMachines.has(`${m.namespace}/${m.pod}`)) continue;
      const pids = m.machine.processes();
      if (pids.length > 0) lines.push(`Kubernetes container ${m.container} of pod ${m.namespace}/${m.pod} (gone) still has ${pids.length} process(es) running (pids ${pids.join(', ')})`);
      else if (m.machine.running) lines.push(`Kubernetes container ${m.container} of pod ${m.namespace}/${m.pod} (gone) is still running`);
    }
    return lines;
  }

  const snapshot = <T extends KubeObject>(resource: Resource): T[] => structuredClone(cluster.list(resource)) as T[];

  return {
    url: server.url,
    tokens,
    kubeconfig,
    calls,
    jobs: () => snapshot<JobObject>('jobs'),
    pods: () => snapshot<PodObject>('pods'),
    secrets: () => snapshot<SecretObject>('secrets'),
    events: () => snapshot<EventObject>('events'),
    nodes: () => structuredClone(cluster.nodeObjects) as KubeObject[],
    podLog(name, o = {}) {
      const pod = cluster.list('pods', o.namespace).find((p) => p.metadata.name === name);
      if (!pod) return '';
      const m = cluster.kubelet.machines().find((x) => x.namespace === pod.metadata.namespace && x.pod === name && (o.container === undefined || x.container === o.container));
      return m?.machine.console() ?? '';
    },
    leftovers,
    ownsMachine: (m) => cluster.kubelet.owns(m),
    async close() {
      for (const res of watches) res.end();
      await server.close();
      await cluster.close();
      if (ownsMachines) await machines.killAll();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Routing

type Parsed = { kind: 'route'; route: Route } | { kind: 'discovery'; body?: unknown; text?: string } | { kind: 'notFound'; status?: ApiError };

/** Maps method and path to a resource request (with its RBAC verb), discovery, or a 404. */
function parseRoute(method: string, pathname: string, q: URLSearchParams): Parsed {
  const segs = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const text = (t: string): Parsed => ({ kind: 'discovery', text: t });
  if (method === 'GET') {
    if (pathname === '/version') return { kind: 'discovery', body: VERSION };
    if (['/healthz', '/livez', '/readyz'].includes(pathname)) return text('ok');
    if (pathname === '/api') return { kind: 'discovery', body: { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1:6443' }] } };
    if (pathname === '/apis') {
      const batch = { name: 'batch', versions: [{ groupVersion: 'batch/v1', version: 'v1' }], preferredVersion: { groupVersion: 'batch/v1', version: 'v1' } };
      return { kind: 'discovery', body: { kind: 'APIGroupList', apiVersion: 'v1', groups: [batch] } };
    }
    if (pathname === '/api/v1' || pathname === '/apis/batch/v1') {
      const group = pathname === '/api/v1' ? '' : 'batch';
      const resources = Object.entries(VERBS)
        .filter(([name]) => (group === '' ? CORE_RESOURCES.has(name.split('/')[0]!) : name.startsWith('jobs')))
        .map(([name, verbs]) => {
          const base = name.split('/')[0]!;
          const kind = base === 'jobs' ? 'Job' : REFS[base as Resource | 'nodes' | 'namespaces'].kind;
          return { name, singularName: name.includes('/') ? '' : kind.toLowerCase(), namespaced: !CLUSTER_SCOPED.has(base), kind: name.endsWith('/log') ? 'Pod' : kind, verbs };
        });
      return { kind: 'discovery', body: { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? 'batch/v1' : 'v1', resources } };
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
  if (subresource !== undefined && !(SUBRESOURCES[resource] ?? []).includes(subresource)) return { kind: 'notFound', status: resourceNotFound() };
  const collection = name === undefined;
  // A namespaced object is only addressable inside its namespace.
  if (!collection && namespace === undefined && !CLUSTER_SCOPED.has(resource)) return { kind: 'notFound', status: resourceNotFound() };
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
  return { kind: 'route', route: { group, version: 'v1', resource, ...(subresource ? { subresource } : {}), ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}), verb } };
}

/** The template labels and selector a Job's registry strategy generates from its uid and name. */
function generatedLabels(job: Json): Record<string, string> {
  return {
    'batch.kubernetes.io/controller-uid': job.metadata.uid,
    'batch.kubernetes.io/job-name': job.metadata.name,
    'controller-uid': job.metadata.uid,
    'job-name': job.metadata.name,
  };
}

function generateSelector(job: Json): void {
  if (job.spec.manualSelector) return;
  job.spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': job.metadata.uid } };
  job.spec.template.metadata.labels = { ...job.spec.template.metadata.labels, ...generatedLabels(job) };
}

const forbiddenAt = (field: string, detail: string) => ({ type: 'FieldValueForbidden' as const, field, body: `Forbidden: ${detail}` });

/** The Status an injected fault answers with: the code as reason, with the real status and message. */
function faultError(fault: Fault, ref: { group: string; resource: string }, name: string | undefined): ApiError {
  const code = fault.code!;
  const defaults: Record<string, [number, string]> = {
    TooManyRequests: [429, 'Too many requests, please try again later.'],
    InternalError: [500, 'Internal error occurred: injected by the sandbox'],
    ServiceUnavailable: [503, 'the server is currently unable to handle the request'],
    Timeout: [504, 'Timeout: request did not complete within requested timeout - context deadline exceeded'],
    ServerTimeout: [500, 'The list operation could not be completed at this time, please try again.'],
    Conflict: [409, `Operation cannot be fulfilled on ${ref.group ? `${ref.resource}.${ref.group}` : ref.resource} "${name ?? ''}": the object has been modified; please apply your changes to the latest version and try again`],
    Forbidden: [403, 'forbidden'],
    Unauthorized: [401, 'Unauthorized'],
    BadRequest: [400, 'bad request'],
    NotFound: [404, `${ref.group ? `${ref.resource}.${ref.group}` : ref.resource} "${name ?? ''}" not found`],
  };
  const [status, message] = defaults[code] ?? [500, `injected fault ${code}`];
  const retryAfter = fault.retryAfter ?? (code === 'TooManyRequests' ? 1 : undefined);
  return new ApiError(
    fault.status ?? status,
    code,
    fault.message ?? message,
    { ...(name !== undefined ? { name } : {}), ...(ref.group ? { group: ref.group } : {}), kind: ref.resource, ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}) },
    retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {},
  );
}
