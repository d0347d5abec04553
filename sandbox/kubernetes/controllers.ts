/**
 * What each Kubernetes API request does once routed, authenticated and authorised: lists (with
 * label and field selectors and `limit`/`continue` paging), watches, gets (and pods/log), creates,
 * updates and patches, deletes and deletecollections, with the server's decoding, defaulting and
 * validation (validation.ts) and the cluster's controllers behind them (cluster.ts).
 * https://kubernetes.io/docs/reference/using-api/api-concepts/
 */
import type http from 'node:http';
import { type Cluster, type Propagation, REFS, type Resource } from './cluster.js';
import { applyPatch, patchType } from './patch.js';
import type { Route } from './routes.js';
import { type LabelSelector, parseFieldSelector, parseLabelSelector } from './selectors.js';
import {
  type FieldError,
  type Json,
  badRequest,
  conflict,
  invalid,
  invalidObject,
  methodNotAllowed,
  notFound,
  notSupported,
} from './status.js';
import { decode, deepEqual, defaultJob, prepareSecret, validateJob } from './validation.js';

/** A JSON answer (`body`), a text one (`text`, pods/log), or a watch stream (`stream`). */
export interface ApiAnswer {
  status: number;
  body?: unknown;
  text?: string;
  stream?: (res: http.ServerResponse) => void;
}

/** Fields each resource supports in a fieldSelector (the server's field label conversion functions). */
const FIELDS: Record<Resource | 'namespaces' | 'nodes', readonly string[]> = {
  jobs: ['metadata.name', 'metadata.namespace', 'status.successful'],
  pods: [
    'metadata.name',
    'metadata.namespace',
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ],
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

/** The API's resource handlers, on the cluster; `watches` are the open watch streams, ended on close. */
export class KubeApi {
  constructor(
    private readonly cluster: Cluster,
    private readonly watches: Set<http.ServerResponse>,
  ) {}

  /** Runs a resource request the router named, with its RBAC verb. */
  handle(r: Route, contentType: string | undefined, body: Buffer, q: URLSearchParams, warnings: string[]): ApiAnswer {
    if (r.resource === 'namespaces' || r.resource === 'nodes') return this.readClusterScoped(r, q);
    const resource = r.resource as Resource;
    const refs = REFS[resource];
    const ns = r.namespace;
    switch (r.verb) {
      case 'list': {
        const all = this.filtered(resource, ns, q);
        return { status: 200, body: this.paginate(all, q, refs.listKind, refs.apiVersion) };
      }
      case 'watch':
        return this.watch(resource, ns, q);
      case 'get': {
        const obj = this.mustGet(resource, ns!, r.name!);
        if (r.subresource === 'log') return { status: 200, text: this.cluster.kubelet.log(obj, q) };
        return { status: 200, body: structuredClone(obj) };
      }
      case 'create':
        return { status: 201, body: this.create(resource, ns!, body, q, warnings) };
      case 'update':
      case 'patch':
        return { status: 200, body: this.modify(r.verb, resource, ns!, r.name!, body, contentType, q, warnings) };
      case 'delete': {
        const obj = this.mustGet(resource, ns!, r.name!);
        return this.remove(resource, obj, this.deleteOptions(body, q), q, warnings);
      }
      case 'deletecollection': {
        const options = this.deleteOptions(body, q);
        const items = this.filtered(resource, ns, q);
        for (const obj of items)
          this.remove(
            resource,
            this.cluster.get(resource, obj.metadata.namespace, obj.metadata.name)!,
            options,
            q,
            warnings,
          );
        return {
          status: 200,
          body: {
            kind: refs.listKind,
            apiVersion: refs.apiVersion,
            metadata: { resourceVersion: this.cluster.resourceVersion },
            items,
          },
        };
      }
    }
    throw methodNotAllowed();
  }

  readClusterScoped(r: Route, q: URLSearchParams): ApiAnswer {
    const refs = REFS[r.resource as 'namespaces' | 'nodes'];
    const objects =
      r.resource === 'namespaces' ? [...this.cluster.namespaceObjects.values()] : this.cluster.nodeObjects;
    if (r.verb === 'get') {
      const obj = objects.find((o) => o.metadata.name === r.name);
      if (!obj) throw notFound(refs, r.name!);
      return { status: 200, body: structuredClone(obj) };
    }
    if (r.verb === 'watch') throw methodNotAllowed();
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', FIELDS[r.resource as 'nodes']);
    const items = objects.filter((o) => labels(o.metadata.labels) && fields(fieldsOf(r.resource as 'nodes', o)));
    return { status: 200, body: this.paginate(items, q, refs.listKind, refs.apiVersion) };
  }

  mustGet(resource: Resource, ns: string, name: string): Json {
    const obj = this.cluster.get(resource, ns, name);
    if (!obj) throw notFound(REFS[resource], name);
    return obj;
  }

  filtered(resource: Resource, ns: string | undefined, q: URLSearchParams): Json[] {
    const labels = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', FIELDS[resource]);
    return this.cluster.list(resource, ns).filter((o) => labels(o.metadata.labels) && fields(fieldsOf(resource, o)));
  }

  /** A list answer; `limit` and `continue` page through it as the server does. Items carry no kind. */
  paginate(all: Json[], q: URLSearchParams, listKind: string, apiVersion: string): Json {
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
        resourceVersion: this.cluster.resourceVersion,
        ...(more && last
          ? {
              continue: Buffer.from(
                JSON.stringify({
                  after: `${last.metadata.namespace ?? ''}/${last.metadata.name}`,
                  rv: this.cluster.resourceVersion,
                }),
              ).toString('base64url'),
              remainingItemCount: all.length - start - page.length,
            }
          : {}),
      },
      items,
    };
  }

  /** A streaming watch: the current objects as ADDED (unless a resourceVersion was given), then changes. */
  watch(resource: Resource, ns: string | undefined, q: URLSearchParams): ApiAnswer {
    const labels: LabelSelector = parseLabelSelector(q.get('labelSelector') ?? '');
    const fields = parseFieldSelector(q.get('fieldSelector') ?? '', FIELDS[resource]);
    const matches = (o: Json): boolean =>
      (ns === undefined || o.metadata.namespace === ns) && labels(o.metadata.labels) && fields(fieldsOf(resource, o));
    const stream = (res: http.ServerResponse): void => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
        'cache-control': 'no-cache, private',
      });
      const send = (type: string, o: Json): void => {
        res.write(`${JSON.stringify({ type, object: structuredClone(o) })}\n`);
      };
      const rv = q.get('resourceVersion');
      if (!rv || rv === '0') for (const o of this.cluster.list(resource, ns)) if (matches(o)) send('ADDED', o);
      const stop = this.cluster.onChange((r, type, o) => {
        if (r === resource && matches(o)) send(type, o);
      });
      this.watches.add(res);
      const end = (): void => {
        stop();
        this.watches.delete(res);
        this.cluster.timers.cancel(timer);
        if (!res.writableEnded) res.end();
      };
      // The server ends a watch after its timeoutSeconds; without one, after 30 minutes here.
      const timer = this.cluster.timers.later(Number(q.get('timeoutSeconds') ?? 1800) * 1000, end);
      res.on('close', end);
    };
    return { status: 200, stream };
  }

  decodeBody(
    kind: 'Job' | 'Secret',
    resource: Resource,
    ns: string,
    body: Buffer,
    q: URLSearchParams,
    warnings: string[],
  ): Json {
    let raw: unknown;
    try {
      raw = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
    }
    const refs = REFS[resource];
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      const { apiVersion, kind: k } = raw as Json;
      if (apiVersion !== undefined && apiVersion !== refs.apiVersion)
        throw badRequest(
          `the API version in the data (${apiVersion}) does not match the expected API version (${refs.apiVersion})`,
        );
      if (k !== undefined && k !== refs.kind)
        throw badRequest(`the kind in the data (${k}) does not match the expected kind (${refs.kind})`);
    }
    const unknown: string[] = [];
    const obj = decode(kind, raw, unknown);
    const validation = q.get('fieldValidation') ?? 'Warn';
    if (!['Ignore', 'Warn', 'Strict'].includes(validation))
      throw badRequest(
        `fieldValidation: Invalid value: ${JSON.stringify(validation)}: must be one of "Ignore", "Warn" or "Strict"`,
      );
    if (unknown.length > 0 && validation === 'Strict') {
      throw badRequest(
        `${kind} in version "v1" cannot be handled as a ${kind}: strict decoding error: ${unknown.map((u) => `unknown field ${JSON.stringify(u)}`).join(', ')}`,
      );
    }
    if (validation === 'Warn') for (const u of unknown) warnings.push(`unknown field ${JSON.stringify(u)}`);
    obj.metadata ??= {};
    if (obj.metadata.namespace && obj.metadata.namespace !== ns)
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    return obj;
  }

  create(resource: Resource, ns: string, body: Buffer, q: URLSearchParams, warnings: string[]): Json {
    if (resource !== 'jobs' && resource !== 'secrets') throw methodNotAllowed();
    const kind = resource === 'jobs' ? 'Job' : 'Secret';
    const obj = this.decodeBody(kind, resource, ns, body, q, warnings);
    // Admission (NamespaceLifecycle) refuses a namespace that does not exist before validation runs.
    if (!this.cluster.namespaceExists(ns)) throw notFound(REFS.namespaces, ns);
    this.cluster.stamp(obj, resource, ns);
    delete obj.status;
    let errors: FieldError[];
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
    return structuredClone(this.cluster.create(resource, obj));
  }

  /** PUT (update) or PATCH: the new object, checked as an update, stored. */
  modify(
    verb: 'update' | 'patch',
    resource: Resource,
    ns: string,
    name: string,
    body: Buffer,
    contentType: string | undefined,
    q: URLSearchParams,
    warnings: string[],
  ): Json {
    if (resource !== 'jobs' && resource !== 'secrets') throw methodNotAllowed();
    const kind = resource === 'jobs' ? 'Job' : 'Secret';
    const existing = this.mustGet(resource, ns, name);
    let next: Json;
    if (verb === 'patch') {
      const patched = applyPatch(existing, body, patchType(contentType));
      next = this.decodeBody(kind, resource, ns, Buffer.from(JSON.stringify(patched)), q, warnings);
    } else {
      next = this.decodeBody(kind, resource, ns, body, q, warnings);
    }
    const meta = next.metadata as Json;
    if (meta.name !== undefined && meta.name !== name)
      throw badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    if (meta.resourceVersion && meta.resourceVersion !== existing.metadata.resourceVersion) {
      throw conflict(
        REFS[resource],
        name,
        'the object has been modified; please apply your changes to the latest version and try again',
      );
    }
    const errors = [];
    if (meta.uid && meta.uid !== existing.metadata.uid)
      errors.push(invalid('metadata.uid', meta.uid, 'field is immutable'));
    // What an update cannot change: identity, timestamps, and (on the main resource) the status.
    Object.assign(meta, {
      name,
      namespace: ns,
      uid: existing.metadata.uid,
      creationTimestamp: existing.metadata.creationTimestamp,
      ...(existing.metadata.generation !== undefined ? { generation: existing.metadata.generation } : {}),
      ...(existing.metadata.deletionTimestamp
        ? {
            deletionTimestamp: existing.metadata.deletionTimestamp,
            deletionGracePeriodSeconds: existing.metadata.deletionGracePeriodSeconds,
          }
        : {}),
    });
    if (existing.metadata.generation === undefined) delete meta.generation;
    next.apiVersion = existing.apiVersion;
    next.kind = existing.kind;
    let specChanged = false;
    if (resource === 'secrets') {
      errors.push(...prepareSecret(next));
      if (existing.immutable) {
        if (!deepEqual(next.data ?? {}, existing.data ?? {}))
          errors.push(forbiddenAt('data', 'field is immutable when `immutable` is set'));
        if (next.immutable !== true)
          errors.push(forbiddenAt('immutable', 'field is immutable when `immutable` is set'));
      }
      if (next.type !== existing.type) errors.push(invalid('type', next.type, 'field is immutable'));
    } else {
      next.status = existing.status;
      defaultJob(next);
      // The generated selector and labels stay as they were generated.
      next.spec.selector = existing.spec.selector;
      next.spec.template.metadata.labels = { ...next.spec.template.metadata.labels, ...generatedLabels(existing) };
      errors.push(...validateJob(next));
      for (const field of [
        'template',
        'completions',
        'completionMode',
        'podFailurePolicy',
        'backoffLimitPerIndex',
        'podReplacementPolicy',
      ] as const) {
        if (!deepEqual(next.spec[field], existing.spec[field]))
          errors.push(invalid(`spec.${field}`, next.spec[field], 'field is immutable'));
      }
      specChanged = !deepEqual(next.spec, existing.spec);
    }
    if (errors.length > 0) throw invalidObject(kind, REFS[resource].group, name, errors);
    if (q.get('dryRun') === 'All') return structuredClone(next);
    return structuredClone(this.cluster.replace(resource, next, specChanged));
  }

  deleteOptions(body: Buffer, q: URLSearchParams): Json {
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

  remove(resource: Resource, obj: Json, options: Json, q: URLSearchParams, warnings: string[]): ApiAnswer {
    const refs = REFS[resource];
    const name = obj.metadata.name as string;
    const errors = [];
    if (options.orphanDependents !== undefined && options.propagationPolicy !== undefined) {
      errors.push(
        invalid(
          'propagationPolicy',
          options.propagationPolicy,
          'orphanDependents and deletionPropagation cannot be both set',
        ),
      );
    }
    if (
      options.propagationPolicy !== undefined &&
      !['Foreground', 'Background', 'Orphan'].includes(options.propagationPolicy)
    ) {
      errors.push(
        notSupported('propagationPolicy', options.propagationPolicy, ['Foreground', 'Background', 'Orphan', 'nil']),
      );
    }
    if (options.gracePeriodSeconds !== undefined && options.gracePeriodSeconds < 0) options.gracePeriodSeconds = 0;
    if (errors.length > 0) throw invalidObject('DeleteOptions', 'meta.k8s.io', '', errors);
    const pre = options.preconditions as Json | undefined;
    if (pre?.uid && pre.uid !== obj.metadata.uid)
      throw conflict(
        refs,
        name,
        `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${obj.metadata.uid}`,
      );
    if (pre?.resourceVersion && pre.resourceVersion !== obj.metadata.resourceVersion) {
      throw conflict(
        refs,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${obj.metadata.resourceVersion}`,
      );
    }
    let propagation: Propagation;
    if (options.propagationPolicy) propagation = options.propagationPolicy;
    else if (options.orphanDependents !== undefined) propagation = options.orphanDependents ? 'Orphan' : 'Background';
    else if (resource === 'jobs') {
      // batch/v1 Jobs deleted through the API orphan their pods unless told otherwise (kept for
      // backwards compatibility); the server says so in a warning since v1.27.
      propagation = 'Orphan';
      warnings.push(
        'child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning',
      );
    } else propagation = 'Background';
    if ((options.dryRun ?? []).includes('All') || q.get('dryRun') === 'All')
      return { status: 200, body: structuredClone(obj) };
    const { gone, obj: last } = this.cluster.delete(resource, obj, propagation, options.gracePeriodSeconds);
    if (!gone) return { status: 202, body: structuredClone(last) };
    // Pods answer with the deleted object; other resources with a Status.
    if (resource === 'pods') return { status: 200, body: structuredClone(last) };
    return {
      status: 200,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { name, ...(refs.group ? { group: refs.group } : {}), kind: refs.resource, uid: obj.metadata.uid },
      },
    };
  }
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

const forbiddenAt = (field: string, detail: string) => ({
  type: 'FieldValueForbidden' as const,
  field,
  body: `Forbidden: ${detail}`,
});
