/**
 * Entra and ARM requests through the sandbox pipeline: each request is named `<resource>.<verb>
 * <location>` (resource groups and role assignments `global`), with the parameters faults match
 * on, then authenticated (Entra: the client's secret or assertion; ARM: the bearer token) and
 * authorised (ARM: api-version, then the caller's role at the scope) before any fault, and
 * dispatched to its controller.
 *
 * Fault `where` parameters: `resourceGroup` and `name` (the resource's) on every ARM request in
 * a group, `location` on a PUT that names one, `vmSize` and `priority` (as requested, `Regular`
 * unless set) on `virtualMachines.createOrUpdate`, `clientId` on `oauth2.token`.
 */
import type http from 'node:http';
import { type Answer, type Fault, type FaultPlan, type Identified, pipeline } from '../core/index.js';
import type { AzureCall } from '../azure.js';
import { AZURE_API_VERSIONS, type AzureAppName } from './catalog.js';
import { getGalleryImage, getManagedImage, getMarketplaceImage, listSkus } from './controllers/catalog.js';
import {
  deleteGroup,
  deletionStatus,
  getGroup,
  groupOr404,
  listGroups,
  patchGroup,
  putGroup,
  tagsAtScope,
} from './controllers/groups.js';
import { getNetwork, putNetwork } from './controllers/network.js';
import { operationStatus } from './controllers/operations.js';
import { createRoleAssignment, listRoleDefinitions } from './controllers/role-assignments.js';
import {
  bootDiagnostics,
  deallocateVm,
  getVm,
  instanceView,
  patchVm,
  putVm,
  vmIn,
} from './controllers/virtual-machines.js';
import {
  authenticateBearer,
  authenticateClient,
  authorize,
  clientToken,
  entraPath,
  openidConfiguration,
  unknownEntraPath,
  unknownTenant,
} from './identity.js';
import { type AzureStore, type Issued, type J, type Reply, lower, uuid } from './store.js';
import {
  ArmError,
  EntraError,
  VM_FAULTS,
  armFault,
  beingDeleted,
  checkApiVersion,
  entraFault,
  jsonBody,
  notAllowed,
  resourceNotFound,
} from './validation.js';

/** An ARM request, once routed: what it needs checked before it runs, and what it does. */
interface ArmRoute {
  op: string;
  location: string;
  params?: Record<string, string>;
  /** A request ARM cannot route or read: refused once the caller is known, before any fault. */
  refusal?: ArmError;
  apiVersion?: { expected: string; type: string; location?: string };
  /** The RBAC action and scope the caller needs, and the request attributes a condition may read. */
  permission?: { action: string; scope: string; request?: Record<string, string[]> };
  /** Further actions the caller needs, read when the request is authorised (a group's resources). */
  also?: () => Array<{ action: string; scope: string }>;
  /** `fault` is given only for a fault the VM PUT takes itself (capacity, quota, allocation). */
  run(who: Issued, fault: Fault | undefined): Reply;
}

type Target =
  | { api: 'entra'; op: 'openid-configuration' | 'oauth2.token'; form: URLSearchParams; refusal?: EntraError }
  | { api: 'arm'; route: ArmRoute };

export interface AzureRequest extends Identified {
  call: AzureCall;
  req: http.IncomingMessage;
  /** The URL with repeated slashes collapsed (see requestUrl). */
  url: URL;
  target: Target;
}

type Caller = { kind: 'arm'; token: Issued } | { kind: 'client'; app: AzureAppName } | { kind: 'anonymous' };

/** The Entra and ARM handler: every request through the sandbox pipeline, in its order. */
export function azurePipeline(store: AzureStore, faults: FaultPlan, latencyMs: number | undefined) {
  return pipeline<AzureRequest, Caller>({
    service: 'azure',
    faults,
    ...(latencyMs ? { latencyMs } : {}),
    identify: (req, body) => identify(store, req, body),
    authenticate: (req, _body, request) => authenticate(store, req, request),
    authorize: (who, request) => {
      if (request.target.api !== 'arm' || who.kind !== 'arm') return;
      const { refusal, apiVersion, permission, also } = request.target.route;
      if (refusal) throw refusal;
      if (apiVersion)
        checkApiVersion(request.url.searchParams, apiVersion.expected, apiVersion.type, apiVersion.location);
      if (permission) authorize(store, who.token, permission.action, permission.scope, permission.request);
      if (permission) for (const p of also?.() ?? []) authorize(store, who.token, p.action, p.scope);
    },
    identityOf: (who) => (who.kind === 'arm' ? who.token.identity : who.kind === 'client' ? who.app : undefined),
    faultError: (fault, request) => {
      if (request.target.api === 'entra') return entraFault(fault);
      if (request.target.route.op === 'virtualMachines.createOrUpdate' && fault.code && VM_FAULTS.has(fault.code))
        return undefined;
      return armFault(fault);
    },
    handle: (request, who, fault) => handle(store, request, who, fault),
    errorAnswer: (err, request) => errorAnswer(store, err, request),
    record: (c, request) => {
      if (!request) return;
      const call = request.call;
      call.action = c.action;
      call.status = c.status;
      call.at = c.at;
      call.ms = c.ms;
      if (c.code) call.code = c.code;
      if (c.identity) call.identity = c.identity;
      if (c.params) call.params = c.params;
      if (c.fault) call.fault = c.fault;
    },
  });
}

/**
 * The request's URL. Not `new URL(req.url, base)`: a path that starts with `//` would parse as a
 * host. The authorization client sends `//subscriptions/...` when the scope starts with `/`, and
 * ARM takes it; so does the fake, collapsing repeated slashes (kept raw in `call.rawPath`).
 */
export function requestUrl(req: http.IncomingMessage): URL {
  const u = new URL(`http://x${(req.url ?? '/').replace(/^\/{2,}/, '/')}`);
  u.pathname = u.pathname.replace(/\/{2,}/g, '/');
  return u;
}

function identify(store: AzureStore, req: http.IncomingMessage, body: Buffer): AzureRequest {
  const u = requestUrl(req);
  const method = req.method ?? 'GET';
  const isEntra = !/^\/subscriptions\//i.test(u.pathname);
  const rawPath = (req.url ?? '/').split('?')[0]!;
  const call: AzureCall = {
    action: '',
    service: isEntra ? 'entra' : 'arm',
    method,
    path: u.pathname,
    op: '',
    status: 0,
    headers: { ...req.headers },
    at: Date.now(),
    ms: 0,
  };
  if (rawPath !== u.pathname) call.rawPath = rawPath;
  delete call.headers.authorization;
  store.calls.push(call);
  const unnamed = `${method} ${u.pathname}`;
  if (isEntra) {
    const path = entraPath(u.pathname);
    const form = new URLSearchParams(body.toString('utf8'));
    if (!path)
      return {
        action: unnamed,
        call,
        req,
        url: u,
        target: { api: 'entra', op: 'oauth2.token', form, refusal: unknownEntraPath() },
      };
    call.op = path.op;
    const refusal = path.tenant !== store.tenant ? unknownTenant(path.tenant) : undefined;
    if (
      path.op === 'oauth2.token' &&
      method === 'POST' &&
      String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
    ) {
      call.body = [...form.entries()]
        .filter(([k]) => !/secret|assertion$/.test(k))
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
    }
    const clientId = path.op === 'oauth2.token' ? form.get('client_id') : null;
    return {
      action: `${path.op} global`,
      ...(clientId !== null ? { params: { clientId } } : {}),
      call,
      req,
      url: u,
      target: { api: 'entra', op: path.op, form, ...(refusal ? { refusal } : {}) },
    };
  }
  call.apiVersion = u.searchParams.get('api-version') ?? undefined;
  if (body.length) call.body = body.toString('utf8');
  const route = armRoute(store, method, u, body);
  if (!route) {
    const refusal = unroutable(store, u);
    const route: ArmRoute = {
      op: '',
      location: '',
      refusal,
      run: () => {
        throw refusal;
      },
    };
    return { action: unnamed, call, req, url: u, target: { api: 'arm', route } };
  }
  call.op = route.op;
  const params = route.params ? { params: route.params } : {};
  return { action: `${route.op} ${route.location}`, ...params, call, req, url: u, target: { api: 'arm', route } };
}

function unroutable(store: AzureStore, u: URL): ArmError {
  const segs = u.pathname.split('/').filter(Boolean);
  if (segs[1] !== store.sub)
    return new ArmError(404, 'SubscriptionNotFound', `The subscription '${segs[1]}' could not be found.`);
  if (lower(segs[2] ?? '') === 'resourcegroups' && segs.length >= 5 && lower(segs[4]!) === 'providers') {
    return new ArmError(400, 'InvalidResourceNamespace', `The fake does not serve ${u.pathname}.`);
  }
  return new ArmError(404, 'InvalidResourceType', `No route for ${u.pathname}.`);
}

function authenticate(store: AzureStore, req: http.IncomingMessage, request: AzureRequest): Caller {
  const t = request.target;
  if (t.api === 'arm') return { kind: 'arm', token: authenticateBearer(store, req) };
  if (t.refusal) throw t.refusal;
  if (t.op === 'openid-configuration') return { kind: 'anonymous' };
  return { kind: 'client', app: authenticateClient(store, req, t.form, (op) => (request.call.op = op)) };
}

function handle(store: AzureStore, request: AzureRequest, who: Caller, fault: Fault | undefined): Answer {
  const t = request.target;
  if (t.api === 'entra') {
    if (t.op === 'openid-configuration') {
      if (request.req.method !== 'GET')
        throw new EntraError(405, 'invalid_request', 900561, 'The endpoint only accepts GET requests.');
      return answer(request, { status: 200, json: openidConfiguration(store) });
    }
    if (who.kind !== 'client') throw new Error('azure fake: a token request without an authenticated client');
    return answer(request, { status: 200, json: clientToken(store, who.app, t.form) });
  }
  if (who.kind !== 'arm') throw new Error('azure fake: an ARM request without a token');
  const vmFault = fault?.code !== undefined && VM_FAULTS.has(fault.code) ? fault : undefined;
  const reply = t.route.run(who.token, vmFault);
  if (reply.lroStatus) request.call.lroStatus = reply.lroStatus;
  return answer(request, reply);
}

function answer(
  request: AzureRequest | undefined,
  r: { status: number; json?: J; headers?: Record<string, string> },
): Answer {
  return {
    status: r.status,
    body: r.json === undefined ? '' : JSON.stringify(r.json),
    headers: {
      ...(r.json === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      'x-ms-request-id': uuid(),
      'x-ms-correlation-request-id': String(request?.call.headers['x-ms-client-request-id'] ?? uuid()),
      ...r.headers,
    },
  };
}

function errorAnswer(store: AzureStore, err: unknown, request: AzureRequest | undefined): Answer {
  if (err instanceof ArmError)
    return { ...answer(request, { status: err.status, json: err.body(), headers: err.headers }), code: err.code };
  if (err instanceof EntraError)
    return {
      ...answer(request, { status: err.status, json: err.body(store.url), headers: err.headers }),
      code: err.error,
    };
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return {
    ...answer(request, { status: 500, json: { error: { code: 'InternalServerError', message } } }),
    code: 'InternalServerError',
  };
}

// ---------------------------------------------------------------------------------------------
// ARM routes: `/subscriptions/{sub}/...`

function armRoute(store: AzureStore, method: string, u: URL, body: Buffer): ArmRoute | undefined {
  const q = u.searchParams;
  const segs = u.pathname.split('/').filter(Boolean).map(decodeSegment);
  if (lower(segs[0] ?? '') !== 'subscriptions' || segs[1] !== store.sub) return undefined;
  // Async operation status (network, compute).
  if (
    segs.length === 8 &&
    lower(segs[2]!) === 'providers' &&
    lower(segs[4]!) === 'locations' &&
    lower(segs[6]!) === 'operations'
  ) {
    const compute = lower(segs[3]!) === 'microsoft.compute';
    return {
      op: compute ? 'virtualMachines.asyncOperation' : 'network.asyncOperation',
      location: segs[5]!,
      run: () => operationStatus(store, q, method, compute, segs[7]!),
    };
  }
  // Resource group deletion status.
  if (segs.length === 4 && lower(segs[2]!) === 'operationresults') {
    return {
      op: 'resourceGroups.deleteOperation',
      location: 'global',
      run: () => deletionStatus(store, q, segs[3]!, `${store.url}${u.pathname}${u.search}`),
    };
  }
  if (
    segs.length === 5 &&
    lower(segs[2]!) === 'providers' &&
    lower(segs[3]!) === 'microsoft.authorization' &&
    lower(segs[4]!) === 'roledefinitions'
  ) {
    const permission = { action: 'Microsoft.Authorization/roleDefinitions/read', scope: store.subScope };
    return readRoute(
      method,
      'roleDefinitions.list',
      'global',
      AZURE_API_VERSIONS.authorization,
      'roleDefinitions',
      permission,
      () => listRoleDefinitions(store, q.get('$filter')),
    );
  }
  const catalog = catalogRoute(store, method, segs, q);
  if (catalog) return catalog;
  if (segs.length === 3 && lower(segs[2]!) === 'resourcegroups') {
    const read = { action: 'Microsoft.Resources/subscriptions/resourceGroups/read', scope: store.subScope };
    return {
      op: 'resourceGroups.list',
      location: 'global',
      apiVersion: { expected: AZURE_API_VERSIONS.resources, type: 'resourceGroups' },
      ...(method === 'GET' ? { permission: read } : {}),
      run: () => {
        if (method !== 'GET') throw notAllowed(method);
        return listGroups(store, q.get('$filter'));
      },
    };
  }
  if (lower(segs[2] ?? '') !== 'resourcegroups' || segs.length < 4) return undefined;
  if (segs.length === 4) return groupRoute(store, method, segs[3]!, q, body);
  if (lower(segs[4] ?? '') !== 'providers') return undefined;
  const provider = lower(segs[5] ?? '');
  if (provider === 'microsoft.authorization' && lower(segs[6] ?? '') === 'roleassignments' && segs.length === 8) {
    return roleAssignmentRoute(store, method, segs[3]!, segs[7]!, body);
  }
  if (
    provider === 'microsoft.resources' &&
    segs.length === 8 &&
    lower(segs[6]!) === 'tags' &&
    lower(segs[7]!) === 'default'
  )
    return tagsRoute(store, method, segs[3]!, body);
  if (provider === 'microsoft.network' && segs.length === 8)
    return networkRoute(store, method, segs[3]!, segs[6]!, segs[7]!, body);
  if (
    provider === 'microsoft.compute' &&
    lower(segs[6] ?? '') === 'virtualmachines' &&
    (segs.length === 8 || segs.length === 9)
  ) {
    return vmRoute(store, method, segs[3]!, segs[7]!, segs[8], q, body);
  }
  if (provider === 'microsoft.compute') return imageRoute(store, method, segs);
  return undefined;
}

/** A read-only GET route: refused for any other method. */
function readRoute(
  method: string,
  op: string,
  location: string,
  apiVersion: string,
  type: string,
  permission: { action: string; scope: string },
  run: () => Reply,
  params?: Record<string, string>,
): ArmRoute {
  return {
    op,
    location,
    ...(params ? { params } : {}),
    apiVersion: { expected: apiVersion, type },
    ...(method === 'GET' ? { permission } : {}),
    run: () => {
      if (method !== 'GET') throw notAllowed(method);
      return run();
    },
  };
}

/** Subscription-level reads: resource SKUs, Marketplace image versions. */
function catalogRoute(store: AzureStore, method: string, segs: string[], q: URLSearchParams): ArmRoute | undefined {
  if (lower(segs[2] ?? '') !== 'providers' || lower(segs[3] ?? '') !== 'microsoft.compute') return undefined;
  const scope = store.subScope;
  if (segs.length === 5 && lower(segs[4]!) === 'skus') {
    const permission = { action: 'Microsoft.Compute/skus/read', scope };
    return readRoute(method, 'resourceSkus.list', 'global', AZURE_API_VERSIONS.skus, 'skus', permission, () =>
      listSkus(store, q),
    );
  }
  const shape = ['locations', null, 'publishers', null, 'artifacttypes', 'vmimage', 'offers', null, 'skus', null];
  const tail = segs.slice(4);
  const images =
    (tail.length === 11 || tail.length === 12) &&
    shape.every((s, i) => s === null || lower(tail[i]!) === s) &&
    lower(tail[10]!) === 'versions';
  if (!images) return undefined;
  const [location, publisher, offer, sku, version] = [tail[1]!, tail[3]!, tail[7]!, tail[9]!, tail[11]];
  const action = 'Microsoft.Compute/locations/publishers/artifacttypes/offers/skus/versions/read';
  return readRoute(
    method,
    version === undefined ? 'virtualMachineImages.list' : 'virtualMachineImages.get',
    location,
    AZURE_API_VERSIONS.compute,
    'locations/publishers/artifacttypes/offers/skus/versions',
    { action, scope },
    () => getMarketplaceImage(store, location, { publisher, offer, sku, ...(version ? { version } : {}) }),
  );
}

/** A group's managed image or gallery image (its definition, versions, a version). */
function imageRoute(store: AzureStore, method: string, segs: string[]): ArmRoute | undefined {
  const rgName = segs[3]!;
  const path = segs.slice(6).map(lower);
  const scope = `${store.subScope}/resourceGroups/${rgName}/providers/Microsoft.Compute/${segs.slice(6).join('/')}`;
  const params = { resourceGroup: rgName, name: segs.at(-1)! };
  if (path.length === 2 && path[0] === 'images') {
    const permission = { action: 'Microsoft.Compute/images/read', scope };
    return readRoute(
      method,
      'images.get',
      'global',
      AZURE_API_VERSIONS.compute,
      'images',
      permission,
      () => getManagedImage(store, rgName, segs[7]!),
      params,
    );
  }
  if (path[0] !== 'galleries' || path[2] !== 'images' || path.length < 4 || path.length > 6) return undefined;
  if (path.length >= 5 && path[4] !== 'versions') return undefined;
  const [gallery, image, version] = [segs[7]!, segs[9]!, segs[11]];
  const op =
    path.length === 4
      ? 'galleryImages.get'
      : path.length === 5
        ? 'galleryImageVersions.listByGalleryImage'
        : 'galleryImageVersions.get';
  const action =
    path.length === 4 ? 'Microsoft.Compute/galleries/images/read' : 'Microsoft.Compute/galleries/images/versions/read';
  return readRoute(
    method,
    op,
    'global',
    AZURE_API_VERSIONS.galleries,
    path.length === 4 ? 'galleries/images' : 'galleries/images/versions',
    { action, scope },
    () => getGalleryImage(store, rgName, gallery, image, path.length === 5 ? null : version),
    params,
  );
}

const VERBS: Record<string, string> = { PUT: 'createOrUpdate', GET: 'get', DELETE: 'delete', PATCH: 'update' };

function groupRoute(store: AzureStore, method: string, rgName: string, q: URLSearchParams, body: Buffer): ArmRoute {
  const verb = method === 'HEAD' ? 'checkExistence' : (VERBS[method] ?? 'unknown');
  const scope = `${store.subScope}/resourceGroups/${rgName}`;
  const rbac: Record<string, string> = { PUT: 'write', PATCH: 'write', GET: 'read', DELETE: 'delete' };
  const parsed = method === 'PUT' ? lenientJson(body) : undefined;
  const location = typeof parsed?.location === 'string' ? parsed.location : undefined;
  return {
    op: `resourceGroups.${verb}`,
    location: 'global',
    params: { resourceGroup: rgName, ...(location ? { location } : {}) },
    apiVersion: { expected: AZURE_API_VERSIONS.resources, type: 'resourceGroups' },
    ...(rbac[method]
      ? { permission: { action: `Microsoft.Resources/subscriptions/resourceGroups/${rbac[method]}`, scope } }
      : {}),
    ...(method === 'DELETE' ? { also: () => deletesInside(store, rgName) } : {}),
    run: (who) => {
      if (method === 'PUT') return putGroup(store, rgName, jsonBody(body));
      if (method === 'PATCH') return patchGroup(store, rgName, jsonBody(body));
      if (method === 'GET') return getGroup(store, rgName);
      if (method === 'DELETE') return deleteGroup(store, rgName, q.get('forceDeletionTypes'), who);
      throw notAllowed(method);
    },
  };
}

function roleAssignmentRoute(store: AzureStore, method: string, rgName: string, name: string, body: Buffer): ArmRoute {
  const scope = `${store.subScope}/resourceGroups/${rgName}/providers/Microsoft.Authorization/roleAssignments/${name}`;
  return {
    op: 'roleAssignments.create',
    location: 'global',
    params: { resourceGroup: rgName, name },
    apiVersion: { expected: AZURE_API_VERSIONS.authorization, type: 'roleAssignments' },
    ...(method === 'PUT'
      ? {
          permission: {
            action: 'Microsoft.Authorization/roleAssignments/write',
            scope,
            request: assignmentRequest(body),
          },
        }
      : {}),
    run: (who) => {
      if (method !== 'PUT') throw notAllowed(method);
      const g = groupOr404(store, rgName);
      return createRoleAssignment(store, g, name, () => jsonBody(body), who);
    },
  };
}

function networkRoute(
  store: AzureStore,
  method: string,
  rgName: string,
  kind: string,
  name: string,
  body: Buffer,
): ArmRoute {
  const type = `Microsoft.Network/${kind}`;
  const verb = VERBS[method] ?? 'unknown';
  const put = resourcePut(store, method, rgName, body);
  const scope = `${store.subScope}/resourceGroups/${rgName}/providers/${type}/${name}`;
  const rbac: Record<string, string> = { PUT: 'write', GET: 'read' };
  return {
    op: `${kind}.${verb}`,
    location: put.location || 'global',
    params: { resourceGroup: rgName, name, ...(put.parsed ? { location: put.location } : {}) },
    ...(put.refusal ? { refusal: put.refusal } : {}),
    apiVersion: { expected: AZURE_API_VERSIONS.network, type: kind, location: put.location },
    ...(rbac[method] ? { permission: { action: `${type}/${rbac[method]}`, scope } } : {}),
    ...(put.parsed ? { also: () => joins(put.parsed!) } : {}),
    run: () => {
      const g = groupOr404(store, rgName);
      if (method === 'PUT') {
        if (g.provisioningState === 'Deleting') throw beingDeleted(g);
        return putNetwork(store, g, kind, name, put.parsed!);
      }
      if (method === 'GET') return getNetwork(g, rgName, kind, name);
      throw notAllowed(method);
    },
  };
}

function vmRoute(
  store: AzureStore,
  method: string,
  rgName: string,
  name: string,
  sub: string | undefined,
  q: URLSearchParams,
  body: Buffer,
): ArmRoute {
  const type = 'Microsoft.Compute/virtualMachines';
  let verb: string;
  if (sub === undefined) verb = VERBS[method] ?? 'unknown';
  else if ((sub === 'retrieveBootDiagnosticsData' || sub === 'deallocate') && method === 'POST') verb = sub;
  else if (sub === 'instanceView' && method === 'GET') verb = sub;
  else verb = 'unknown';
  const put = resourcePut(store, method, rgName, body);
  const props = (put.parsed?.properties ?? {}) as J;
  const size = (props.hardwareProfile as J | undefined)?.vmSize;
  const scope = `${store.subScope}/resourceGroups/${rgName}/providers/${type}/${name}`;
  const rbac: Record<string, string> = {
    retrieveBootDiagnosticsData: 'retrieveBootDiagnosticsData/action',
    deallocate: 'deallocate/action',
    instanceView: 'instanceView/read',
    createOrUpdate: 'write',
    update: 'write',
    get: 'read',
  };
  const path = `${store.subScope}/resourceGroups/${rgName}/providers/Microsoft.Compute/virtualMachines/${name}${sub ? `/${sub}` : ''}`;
  const refusal = verb === 'unknown' ? new ArmError(404, 'InvalidResourceType', `No route for ${path}.`) : put.refusal;
  return {
    op: `virtualMachines.${verb}`,
    location: put.location || 'global',
    params: {
      resourceGroup: rgName,
      name,
      ...(put.parsed ? { location: put.location, priority: String(props.priority ?? 'Regular') } : {}),
      ...(typeof size === 'string' ? { vmSize: size } : {}),
    },
    ...(refusal ? { refusal } : {}),
    apiVersion: { expected: AZURE_API_VERSIONS.compute, type: 'virtualMachines', location: put.location },
    ...(rbac[verb] ? { permission: { action: `${type}/${rbac[verb]}`, scope } } : {}),
    ...(put.parsed
      ? {
          also: () => [
            ...joins(put.parsed!),
            ...['write', 'read'].map((v) => ({
              action: `Microsoft.Compute/disks/${v}`,
              scope: `${store.subScope}/resourceGroups/${rgName}/providers/Microsoft.Compute/disks/${name}-osdisk`,
            })),
          ],
        }
      : {}),
    run: (who, fault) => {
      const g = groupOr404(store, rgName);
      if (verb === 'createOrUpdate') {
        if (g.provisioningState === 'Deleting') throw beingDeleted(g);
        return putVm(store, g, name, put.parsed!, fault);
      }
      const vm = vmIn(g, name);
      if (verb !== 'delete' && !vm) throw resourceNotFound(type, name, rgName);
      if (verb === 'retrieveBootDiagnosticsData') return bootDiagnostics(store, vm!, q);
      if (verb === 'deallocate') return deallocateVm(store, vm!, who);
      if (verb === 'instanceView') return { status: 200, json: instanceView(vm!) };
      if (verb === 'get') return getVm(vm!, q);
      if (verb === 'update') return patchVm(store, vm!, jsonBody(body));
      throw notAllowed(method);
    },
  };
}

/** A regional resource's PUT body and location (else its group's); an unreadable body is refused. */
function resourcePut(
  store: AzureStore,
  method: string,
  rgName: string,
  body: Buffer,
): { parsed?: J; location: string; refusal?: ArmError } {
  if (method !== 'PUT') return { location: store.group(rgName)?.location ?? 'global' };
  try {
    const parsed = jsonBody(body);
    return { parsed, location: String(parsed.location ?? '') };
  } catch (err) {
    if (!(err instanceof ArmError)) throw err;
    return { location: '', refusal: err };
  }
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function lenientJson(body: Buffer): J | undefined {
  try {
    return jsonBody(body);
  } catch {
    return undefined;
  }
}

/**
 * The request attributes of a role assignment PUT that a condition reads: its role definition
 * (the GUID, the last segment of `properties.roleDefinitionId`).
 */
function assignmentRequest(body: Buffer): Record<string, string[]> {
  const props = (lenientJson(body)?.properties ?? {}) as J;
  const id = typeof props.roleDefinitionId === 'string' ? props.roleDefinitionId.split('/').pop()! : '';
  return { 'Microsoft.Authorization/roleAssignments:RoleDefinitionId': id ? [id] : [] };
}

/**
 * Deleting a group deletes what is in it: the caller needs each resource's delete action too (a
 * VM's OS disk included). Whether ARM checks them is not documented; the fake takes the stricter
 * reading and refuses the whole deletion, before anything goes, for the first one missing.
 */
function deletesInside(store: AzureStore, rgName: string): Array<{ action: string; scope: string }> {
  const g = store.group(rgName);
  if (!g) return [];
  return [...g.resources.values()].flatMap((r) => [
    { action: `${r.type}/delete`, scope: r.id },
    ...(r.type === 'Microsoft.Compute/virtualMachines'
      ? [
          {
            action: 'Microsoft.Compute/disks/delete',
            scope: `${g.id}/providers/Microsoft.Compute/disks/${r.name}-osdisk`,
          },
        ]
      : []),
  ]);
}

/** `…/resourceGroups/G/providers/Microsoft.Resources/tags/default`: the Tags API at a group's scope. */
function tagsRoute(store: AzureStore, method: string, rgName: string, body: Buffer): ArmRoute {
  const scope = `${store.subScope}/resourceGroups/${rgName}`;
  const action = method === 'GET' ? 'Microsoft.Resources/tags/read' : 'Microsoft.Resources/tags/write';
  return {
    op: `tags.${method === 'PUT' ? 'createOrUpdateAtScope' : method === 'PATCH' ? 'updateAtScope' : 'getAtScope'}`,
    location: 'global',
    params: { resourceGroup: rgName, name: 'default' },
    apiVersion: { expected: AZURE_API_VERSIONS.resources, type: 'tags' },
    ...(['GET', 'PUT', 'PATCH'].includes(method) ? { permission: { action, scope } } : {}),
    run: () => tagsAtScope(groupOr404(store, rgName), method, body),
  };
}

/**
 * What a PUT refers to needs the right to use it: a subnet's security group, a network
 * interface's subnet (read and join) and public address, a VM's network interfaces (the
 * `join/action` of each), and a VM's implicit OS disk (disks/write and read, checked on the VM's
 * PUT). Which of these ARM checks is not all documented; the fake takes the stricter reading.
 * https://learn.microsoft.com/azure/virtual-network/virtual-network-network-interface#permissions (read 2026-12-08)
 */
function joins(body: J): Array<{ action: string; scope: string }> {
  const props = (body.properties ?? {}) as J;
  const out: Array<{ action: string; scope: string }> = [];
  const ref = (v: unknown): string | undefined => {
    const id = (v as J | undefined)?.id;
    return typeof id === 'string' ? id : undefined;
  };
  for (const s of (props.subnets as J[] | undefined) ?? []) {
    const nsg = ref(((s.properties ?? {}) as J).networkSecurityGroup);
    if (nsg) out.push({ action: 'Microsoft.Network/networkSecurityGroups/join/action', scope: nsg });
  }
  for (const c of (props.ipConfigurations as J[] | undefined) ?? []) {
    const cp = (c.properties ?? {}) as J;
    const subnet = ref(cp.subnet);
    if (subnet) {
      out.push({ action: 'Microsoft.Network/virtualNetworks/subnets/read', scope: subnet });
      out.push({ action: 'Microsoft.Network/virtualNetworks/subnets/join/action', scope: subnet });
    }
    const ip = ref(cp.publicIPAddress);
    if (ip) out.push({ action: 'Microsoft.Network/publicIPAddresses/join/action', scope: ip });
  }
  for (const n of (((props.networkProfile ?? {}) as J).networkInterfaces as J[] | undefined) ?? []) {
    const nic = ref(n);
    if (nic) out.push({ action: 'Microsoft.Network/networkInterfaces/join/action', scope: nic });
  }
  return out;
}
