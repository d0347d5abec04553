/**
 * Requests to the fake Compute Engine: which API and method a request is (the action faults and
 * the call log name it by, with the parameters a fault may match on), and the method's
 * controller. Compute methods are named `method scope` (`instances.insert us-central1-a`,
 * `machineTypes.aggregatedList global`), the token exchange `sts.token global` and
 * `iamcredentials.generateAccessToken global`; a path no API serves is `METHOD /path`.
 */
import type http from 'node:http';
import type { Fault, Identified } from '../core/index.js';
import { GceError, notFoundPage } from './errors.js';
import type { GceStore, J } from './store.js';
import { checkQuery, decodeBody } from './validation.js';
import {
  getImage,
  getZone,
  listZones,
  type OfferingResource,
  type OfferingVerb,
  zonalOffering,
} from './controllers/catalog.js';
import {
  type InstanceCall,
  aggregatedInstances,
  deleteInstance,
  getInstance,
  insertInstance,
  listInstances,
  serialPortOutput,
  setInstanceMetadata,
} from './controllers/instances.js';
import { getOperation, waitOperation } from './controllers/operations.js';

export interface Route {
  /** `instances.insert`, ... */
  method: string;
  /** A zone, or `global`. */
  scope: string;
  project: string;
  /** The permission it needs, and on what. */
  permission: string;
  resource: string;
  /** Needs a read-write scope (compute or cloud-platform) rather than compute.readonly. */
  write: boolean;
  /** Query parameters the method binds. */
  params: readonly string[];
  /** Path values (instance name, operation, ...). */
  args: string[];
  /** The method reads public images: any authenticated caller may. */
  publicRead?: boolean;
}

/** One request, as the pipeline carries it. */
export interface GceRequest extends Identified {
  api: 'compute' | 'sts' | 'iam' | 'none';
  query: URLSearchParams;
  body: Buffer;
  contentType?: string;
  authorization?: string;
  /** Compute: the method. */
  route?: Route;
  /** Compute: the instance resource of instances.insert. */
  resource?: J;
  /** IAM Credentials: the service account to impersonate. */
  email?: string;
  /**
   * Refused before the caller is even looked at, as Google's front end refuses it: a path no API
   * serves (404), a query parameter the method does not bind or a body it cannot decode (400).
   */
  early?: unknown;
}

/** An answer that is not a Compute error body (OAuth's, IAM Credentials', an HTML 404), thrown as an error. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly payload: string,
    readonly contentType: string,
    readonly reason?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(reason ?? String(status));
  }
}

/** Methods whose request body is a resource: the instance, or the metadata. */
const BODY_METHODS = new Set(['instances.insert', 'instances.setMetadata']);
const LIST_PARAMS = ['filter', 'maxResults', 'orderBy', 'pageToken', 'returnPartialSuccess'];
const AGG_PARAMS = [...LIST_PARAMS, 'includeAllScopes', 'serviceProjectNumber'];
const IAM_PATH = /^\/iamcredentials\/v1\/projects\/([^/]+)\/serviceAccounts\/([^/:]+):generateAccessToken$/;

/** Names a request: its API, action and parameters. Never throws: what it cannot decode is `early`. */
export function identify(req: http.IncomingMessage, body: Buffer, url: URL): GceRequest {
  const httpMethod = req.method ?? 'GET';
  const base = {
    query: url.searchParams,
    body,
    ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
    ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
  };
  const htmlNotFound = new Refusal(404, notFoundPage(url.pathname), 'text/html; charset=UTF-8', 'notFound');
  if (url.pathname === '/sts/v1/token') {
    const wrongMethod = new Refusal(404, notFoundPage(url.pathname), 'text/html; charset=UTF-8');
    return {
      ...base,
      api: 'sts',
      action: 'sts.token global',
      ...(httpMethod !== 'POST' ? { early: wrongMethod } : {}),
    };
  }
  const iam = IAM_PATH.exec(url.pathname);
  if (iam && httpMethod === 'POST') {
    const email = decodeURIComponent(iam[2]!);
    return {
      ...base,
      api: 'iam',
      action: 'iamcredentials.generateAccessToken global',
      email,
      params: { serviceAccount: email },
    };
  }
  const r = route(httpMethod, url.pathname);
  if (!r) return { ...base, api: 'none', action: `${httpMethod} ${url.pathname}`, early: htmlNotFound };
  const request: GceRequest = { ...base, api: 'compute', action: `${r.method} ${r.scope}`, route: r };
  try {
    checkQuery(url.searchParams, r.params);
    const resource = decodeBody(httpMethod, body, BODY_METHODS.has(r.method));
    if (resource) request.resource = resource;
  } catch (err) {
    request.early = err;
  }
  request.params = computeParams(r, request.resource);
  return request;
}

/**
 * What a fault may match on (core/faults.ts `where`): `zone` for a zonal method; `instance`,
 * `operation`; for instances.insert `name`, `machineType` (the short name), `spot` (`true` for
 * a SPOT or preemptible VM) and `acceleratorType` when it asks for one; `project` for images.
 */
function computeParams(r: Route, resource: J | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  if (r.scope !== 'global') params.zone = r.scope;
  const [arg] = r.args;
  if (arg !== undefined && r.method.startsWith('instances.')) params.instance = arg;
  if (arg !== undefined && r.method.startsWith('zoneOperations.')) params.operation = arg;
  if (r.method.startsWith('images.')) params.project = r.project;
  if (r.method === 'instances.insert' && resource) Object.assign(params, insertParams(resource));
  return params;
}

function insertParams(resource: J): Record<string, string> {
  const out: Record<string, string> = {};
  const last = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v.split('/').pop() : undefined);
  if (typeof resource.name === 'string') out.name = resource.name;
  const machineType = last(resource.machineType);
  if (machineType) out.machineType = machineType;
  const s = resource.scheduling;
  const scheduling = typeof s === 'object' && s !== null ? (s as J) : {};
  out.spot = String(scheduling.provisioningModel === 'SPOT' || scheduling.preemptible === true);
  const accelerators = Array.isArray(resource.guestAccelerators) ? resource.guestAccelerators : [];
  const first = accelerators[0] as J | undefined;
  const acceleratorType = last(first?.acceleratorType);
  if (acceleratorType) out.acceleratorType = acceleratorType;
  return out;
}

function route(method: string, pathname: string): Route | undefined {
  const m = /^\/compute\/v1\/projects\/([^/]+)\/(.*)$/.exec(pathname);
  if (!m) return undefined;
  const project = decodeURIComponent(m[1]!);
  const rest = m[2]!.split('/').map((s) => decodeURIComponent(s));
  const r = (
    name: string,
    scope: string,
    permission: string,
    resource: string,
    params: readonly string[],
    args: string[] = [],
    write = false,
  ): Route => ({
    method: name,
    scope,
    project,
    permission,
    resource,
    write,
    params,
    args,
  });
  const p = `projects/${project}`;
  const [a, b, c, d, e] = rest;
  const n = rest.length;
  if (a === 'zones') {
    if (n === 1 && method === 'GET') return r('zones.list', 'global', 'compute.zones.list', p, LIST_PARAMS);
    const z = b!;
    const zp = `${p}/zones/${z}`;
    if (n === 2 && method === 'GET') return r('zones.get', z, 'compute.zones.get', zp, []);
    if (c === 'instances') {
      if (n === 3 && method === 'GET') return r('instances.list', z, 'compute.instances.list', zp, LIST_PARAMS);
      if (n === 3 && method === 'POST') {
        return r(
          'instances.insert',
          z,
          'compute.instances.create',
          `${zp}/instances`,
          ['requestId', 'sourceInstanceTemplate', 'sourceMachineImage'],
          [],
          true,
        );
      }
      if (n === 4 && method === 'GET')
        return r('instances.get', z, 'compute.instances.get', `${zp}/instances/${d}`, [], [d!]);
      if (n === 4 && method === 'DELETE') {
        return r(
          'instances.delete',
          z,
          'compute.instances.delete',
          `${zp}/instances/${d}`,
          ['requestId', 'noGracefulShutdown'],
          [d!],
          true,
        );
      }
      if (n === 5 && e === 'setMetadata' && method === 'POST') {
        return r(
          'instances.setMetadata',
          z,
          'compute.instances.setMetadata',
          `${zp}/instances/${d}`,
          ['requestId'],
          [d!],
          true,
        );
      }
      if (n === 5 && e === 'serialPort' && method === 'GET') {
        return r(
          'instances.getSerialPortOutput',
          z,
          'compute.instances.getSerialPortOutput',
          `${zp}/instances/${d}`,
          ['port', 'start'],
          [d!],
        );
      }
    }
    if (c === 'operations') {
      if (n === 4 && method === 'GET')
        return r('zoneOperations.get', z, 'compute.zoneOperations.get', `${zp}/operations/${d}`, [], [d!]);
      if (n === 5 && e === 'wait' && method === 'POST')
        return r('zoneOperations.wait', z, 'compute.zoneOperations.get', `${zp}/operations/${d}`, [], [d!]);
    }
    if (c === 'machineTypes' && method === 'GET') {
      if (n === 3) return r('machineTypes.list', z, 'compute.machineTypes.list', zp, LIST_PARAMS);
      if (n === 4) return r('machineTypes.get', z, 'compute.machineTypes.get', `${zp}/machineTypes/${d}`, [], [d!]);
    }
    if (c === 'acceleratorTypes' && method === 'GET') {
      if (n === 3) return r('acceleratorTypes.list', z, 'compute.acceleratorTypes.list', zp, LIST_PARAMS);
      if (n === 4)
        return r('acceleratorTypes.get', z, 'compute.acceleratorTypes.get', `${zp}/acceleratorTypes/${d}`, [], [d!]);
    }
    return undefined;
  }
  if (a === 'aggregated' && n === 2 && method === 'GET') {
    if (b === 'instances') return r('instances.aggregatedList', 'global', 'compute.instances.list', p, AGG_PARAMS);
    if (b === 'machineTypes')
      return r('machineTypes.aggregatedList', 'global', 'compute.machineTypes.list', p, AGG_PARAMS);
    if (b === 'acceleratorTypes')
      return r('acceleratorTypes.aggregatedList', 'global', 'compute.acceleratorTypes.list', p, AGG_PARAMS);
    return undefined;
  }
  if (a === 'global' && b === 'images' && method === 'GET') {
    if (n === 4 && c === 'family') {
      return {
        ...r(
          'images.getFromFamily',
          'global',
          'compute.images.getFromFamily',
          `${p}/global/images/family/${d}`,
          [],
          [d!],
        ),
        publicRead: true,
      };
    }
    if (n === 3)
      return {
        ...r('images.get', 'global', 'compute.images.get', `${p}/global/images/${c}`, [], [c!]),
        publicRead: true,
      };
  }
  return undefined;
}

/** `instances.delete` → `compute.v1.InstancesService.Delete`, as ErrorInfo metadata names it. */
export function serviceMethod(method: string): string {
  const [res, verb] = method.split('.') as [string, string];
  const service = res.charAt(0).toUpperCase() + res.slice(1);
  return `compute.v1.${service}Service.${verb.charAt(0).toUpperCase()}${verb.slice(1)}`;
}

/** Runs a Compute method's controller. `fault` is one the method reports itself (insert's stockout and quota). */
export function dispatch(store: GceStore, request: GceRequest, user: string, fault: Fault | undefined): J | Promise<J> {
  const r = request.route!;
  const [arg] = r.args;
  const call: InstanceCall = {
    zone: r.scope,
    ...(arg !== undefined ? { instance: arg } : {}),
    query: request.query,
    ...(request.resource ? { body: request.resource } : {}),
    user,
    ...(fault ? { fault } : {}),
  };
  switch (r.method) {
    case 'instances.insert':
      return insertInstance(store, call);
    case 'instances.get':
      return getInstance(store, call);
    case 'instances.delete':
      return deleteInstance(store, call);
    case 'instances.list':
      return listInstances(store, call);
    case 'instances.aggregatedList':
      return aggregatedInstances(store, request.query);
    case 'instances.getSerialPortOutput':
      return serialPortOutput(store, call);
    case 'instances.setMetadata':
      return setInstanceMetadata(store, call);
    case 'zoneOperations.get':
      return getOperation(store, r.scope, arg!);
    case 'zoneOperations.wait':
      return waitOperation(store, r.scope, arg!);
    case 'machineTypes.get':
    case 'acceleratorTypes.get':
    case 'machineTypes.list':
    case 'acceleratorTypes.list':
    case 'machineTypes.aggregatedList':
    case 'acceleratorTypes.aggregatedList': {
      const [resource, verb] = r.method.split('.') as [OfferingResource, OfferingVerb];
      return zonalOffering(resource, verb, r.scope, arg, request.query);
    }
    case 'zones.get':
      return getZone(r.scope);
    case 'zones.list':
      return listZones(request.query);
    case 'images.getFromFamily':
      return getImage(r.project, arg, undefined);
    case 'images.get':
      return getImage(r.project, undefined, arg);
    default:
      throw new GceError(500, 'internalError', `unrouted ${r.method}`);
  }
}
