/**
 * What a VM reaches that is not ARM: its instance metadata service (IMDS, plain http as at
 * `http://169.254.169.254`, one base per VM under `/_imds/<vmId>`) and the boot diagnostics blob
 * its serial log is read from. Neither takes faults; both are in the call log.
 * https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service
 * https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events
 * The VM's user data is `compute.userData` (base64, as ARM holds it) from api-version 2021-01-01;
 * its custom data is never served ("you can't retrieve custom data from IMDS").
 * https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#get-user-data
 * https://learn.microsoft.com/azure/virtual-machines/user-data#user-data-and-custom-data
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import type { AzureCall } from '../azure.js';
import { IMDS_VERSIONS } from './catalog.js';
import { issue } from './identity.js';
import { type AzureStore, type J, type Vm, lower, uuid } from './store.js';

interface Served {
  status: number;
  json?: J;
  text?: string;
}

/** A call log entry for a request outside ARM's pipeline. */
export function logCall(
  store: AzureStore,
  service: AzureCall['service'],
  req: http.IncomingMessage,
  u: URL,
): AzureCall {
  const rawPath = (req.url ?? '/').split('?')[0]!;
  const call: AzureCall = {
    action: '',
    service,
    method: req.method ?? 'GET',
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
  return call;
}

function send(res: http.ServerResponse, call: AzureCall, r: Served, textType: string): void {
  call.status = r.status;
  call.ms = Date.now() - call.at;
  if (r.text !== undefined) {
    res.writeHead(r.status, { 'content-type': textType });
    res.end(r.text);
    return;
  }
  res.writeHead(r.status, {
    'content-type': 'application/json; charset=utf-8',
    'x-ms-request-id': uuid(),
    'x-ms-correlation-request-id': String(call.headers['x-ms-client-request-id'] ?? uuid()),
  });
  res.end(JSON.stringify(r.json ?? {}));
}

/** The serial log blob: `/_blob/...serialconsole.log?...&se=...&sig=...`. */
export function serveBlob(store: AzureStore, req: http.IncomingMessage, u: URL, res: http.ServerResponse): void {
  const call = logCall(store, 'blob', req, u);
  call.op = 'blob.get';
  call.action = 'blob.get global';
  const s = store.blobSigs.get(u.searchParams.get('sig') ?? '');
  const se = Date.parse(u.searchParams.get('se') ?? '');
  let r: Served;
  if (!s || !(se > Date.now()) || s.expires < Date.now())
    r = { status: 403, text: 'AuthenticationFailed: Server failed to authenticate the request.' };
  else if (u.pathname.endsWith('.serialconsole.log')) r = { status: 200, text: s.vm.console() };
  else r = { status: 404, text: 'BlobNotFound: The specified blob does not exist.' };
  send(res, call, r, 'text/plain');
}

/**
 * One IMDS request of a VM: `/_imds/<vmId>/metadata/...`. A scheduled events request before the
 * service is enabled waits until it is (see `scheduledEventsWait`), then reads the events.
 */
export function serveImds(store: AzureStore, req: http.IncomingMessage, u: URL, res: http.ServerResponse): void {
  const call = logCall(store, 'imds', req, u);
  const answer = (): void => {
    const r = imds(store, req, u, call);
    if (!call.action) call.action = `imds ${u.pathname}`;
    if (!res.destroyed) send(res, call, r, 'text/plain; charset=utf-8');
  };
  const wait = scheduledEventsWait(store, req, u);
  if (wait > 0) store.timers.later(wait, answer);
  else answer();
}

/**
 * "Scheduled Events is enabled for your service the first time you make a request for events.
 * You should expect a delayed response in your first call of up to two minutes": the first
 * well-formed request starts the service, and every request until it is up waits for it. The
 * less convenient reading: a client that gives up early has still only started it.
 * https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events (2023-01-25)
 */
function scheduledEventsWait(store: AzureStore, req: http.IncomingMessage, u: URL): number {
  const m = /^\/_imds\/([^/]+)\/metadata\/scheduledevents$/.exec(u.pathname);
  if (!m || req.method !== 'GET' || lower(String(req.headers.metadata ?? '')) !== 'true') return 0;
  if (!IMDS_VERSIONS.includes(u.searchParams.get('api-version') ?? '')) return 0;
  const vmId = m[1]!;
  if (!store.allVms.some((v) => v.vmId === vmId && !v.deleted)) return 0;
  let from = store.scheduledEventsFrom.get(vmId);
  if (from === undefined) {
    from = Date.now() + store.config.scheduledEventsStartMs;
    store.scheduledEventsFrom.set(vmId, from);
  }
  return from - Date.now();
}

function imds(store: AzureStore, req: http.IncomingMessage, u: URL, call: AzureCall): Served {
  const m = /^\/_imds\/([^/]+)(\/.*)$/.exec(u.pathname);
  const vm = m ? store.allVms.find((v) => v.vmId === m[1]) : undefined;
  if (!m || !vm || vm.deleted) return { status: 404, json: { error: 'not_found' } };
  const rest = m[2]!;
  call.path = rest;
  call.op = 'imds';
  call.action = `imds ${vm.vmId}`;
  call.identity = `vm:${vm.group}`;
  const v = u.searchParams.get('api-version');
  if (v !== null) call.apiVersion = v;
  if (req.headers['x-forwarded-for'])
    return { status: 400, json: { error: 'bad_request', error_description: 'Forwarded requests are not allowed.' } };
  if (lower(String(req.headers.metadata ?? '')) !== 'true') {
    return { status: 400, json: { error: 'bad_request', error_description: 'Required metadata header not specified' } };
  }
  if (req.method !== 'GET') return { status: 405, json: { error: 'method_not_allowed' } };
  if (!v || !IMDS_VERSIONS.includes(v)) {
    const newest = [...IMDS_VERSIONS].reverse().slice(0, 3);
    return {
      status: 400,
      json: {
        error: 'Bad request. api-version is invalid or was not specified in the request.',
        'newest-versions': newest,
      },
    };
  }
  const named = (op: string): void => {
    call.op = op;
    call.action = `${op} ${vm.vmId}`;
  };
  if (rest === '/metadata/identity/oauth2/token') {
    named('imds.token');
    return managedIdentityToken(store, vm, u);
  }
  if (rest === '/metadata/scheduledevents') {
    named('imds.scheduledevents');
    return scheduledEvents(vm);
  }
  const inst = /^\/metadata\/instance(?:\/compute(?:\/(\w+))?)?$/.exec(rest);
  if (inst) {
    named('imds.instance');
    return instance(store, vm, u, rest, inst[1]);
  }
  return { status: 404, json: { error: 'Not found' } };
}

/** The VM's system-assigned identity's token, for ARM only. */
function managedIdentityToken(store: AzureStore, vm: Vm, u: URL): Served {
  if (!vm.principalId)
    return { status: 400, json: { error: 'invalid_request', error_description: 'Identity not found' } };
  const resource = u.searchParams.get('resource') ?? '';
  if (!store.armAudiences().includes(resource)) {
    return {
      status: 400,
      json: {
        error: 'invalid_resource',
        error_description: `AADSTS500011: The resource principal named ${resource} was not found in the tenant.`,
      },
    };
  }
  const t = issue(store, vm.principalId, vm.principalId, `vm:${vm.group}`, resource, 86399);
  const now = Math.floor(Date.now() / 1000);
  return {
    status: 200,
    json: {
      access_token: t.token,
      client_id: vm.principalId,
      expires_in: '86399',
      expires_on: String(now + 86399),
      ext_expires_in: '86399',
      not_before: String(now),
      resource,
      token_type: 'Bearer',
    },
  };
}

/**
 * The VM's scheduled events: none, or a `Preempt` event once its Spot eviction is announced, in
 * the 2020-07-01 shape. DocumentIncarnation grows when the events change (0, then 1).
 * https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events (2023-01-25)
 */
function scheduledEvents(vm: Vm): Served {
  const id = crypto.createHash('sha256').update(vm.vmId).digest('hex');
  const events = vm.evictionNotice
    ? [
        {
          EventId:
            `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20, 32)}`.toUpperCase(),
          EventType: 'Preempt',
          ResourceType: 'VirtualMachine',
          Resources: [vm.name],
          EventStatus: 'Scheduled',
          NotBefore: (vm.evictionNotBefore ?? new Date()).toUTCString(),
          Description: '',
          EventSource: 'Platform',
          DurationInSeconds: -1,
        },
      ]
    : [];
  return { status: 200, json: { DocumentIncarnation: events.length, Events: events } };
}

function instance(store: AzureStore, vm: Vm, u: URL, rest: string, leafName: string | undefined): Served {
  const compute = {
    azEnvironment: 'AzurePublicCloud',
    location: vm.location,
    name: vm.name,
    osType: 'Linux',
    priority: vm.priority === 'Spot' ? 'Spot' : '',
    provider: 'Microsoft.Compute',
    resourceGroupName: vm.group,
    resourceId: vm.id,
    subscriptionId: store.sub,
    tagsList: Object.entries(vm.tags).map(([name, value]) => ({ name, value })),
    vmId: vm.vmId,
    vmSize: vm.vmSize,
    // Read at each request: a PATCH of the VM's userData shows here at once.
    ...((u.searchParams.get('api-version') ?? '') >= '2021-01-01' ? { userData: vm.userData ?? '' } : {}),
  };
  const text = u.searchParams.get('format') === 'text';
  if (leafName !== undefined) {
    // A leaf: `?format=text` gives the bare value (what a shell script wants), JSON otherwise.
    const leaf = (compute as J)[leafName];
    if (leaf === undefined) return { status: 404, json: { error: 'Not found' } };
    return text ? { status: 200, text: String(leaf) } : { status: 200, json: { value: leaf } };
  }
  if (text) return { status: 400, json: { error: 'Bad request. format=text is only for leaf nodes.' } };
  return { status: 200, json: rest.endsWith('/compute') ? compute : { compute, network: { interface: [] } } };
}
