/**
 * instances.insert, get, list, aggregatedList, delete and getSerialPortOutput. Insert and delete
 * answer an operation at once and do their work later (lifecycle.ts); a `requestId` seen in the
 * last hour answers the first operation again ("Handling API responses: idempotency",
 * https://cloud.google.com/compute/docs/api/how-tos/api-requests-responses).
 */
import type { Fault } from '../../core/index.js';
import { GCE_PROJECT, GCE_PROJECT_NUMBER, ZONES, regionOf } from '../catalog.js';
import { type ErrorInfoDetail, GceError, alreadyExists, notFound } from '../errors.js';
import { parseFilter } from '../filter.js';
import { type GceStore, type Internal, type J, instanceLink, instancePath, numericId, zoneLink } from '../store.js';
import { type InsertPlan, decodeMetadata, quotaFor, validateInsert } from '../validate.js';
import { checkBoolean, checkRequestId, serialPortParams } from '../validation.js';
import { aggregated, instanceFields, ordered, page, zonalList } from './listing.js';
import { createInstance, removeInstance } from './lifecycle.js';
import { finishOp, newOp, opJson } from './operations.js';
import { instanceJson, metadataFingerprint } from './views.js';

/** Fault codes insert reports in its operation, after answering it (a stockout). */
export const CAPACITY_CODES: ReadonlySet<string> = new Set([
  'ZONE_RESOURCE_POOL_EXHAUSTED',
  'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
]);

/** What an instances method is given: its zone, its query and body, the caller, and a fault it reports itself. */
export interface InstanceCall {
  zone: string;
  /** The instance named in the path. */
  instance?: string;
  query: URLSearchParams;
  body?: J;
  /** The caller's identity, the operation's `user`. */
  user: string;
  fault?: Fault;
}

const retryAfter = (f: Fault): Record<string, string> =>
  f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {};

export function getInstance(store: GceStore, call: InstanceCall): J {
  return instanceJson(store.findLive(call.zone, call.instance!));
}

export function listInstances(store: GceStore, call: InstanceCall): J {
  const pred = parseFilter(call.query.get('filter') ?? undefined, instanceFields);
  const found = ordered(
    [...store.live.values()].filter((i) => i.zone === call.zone && pred(fieldsOf(i))),
    call.query,
  );
  const { items, next } = page(found, call.query);
  const id = `projects/${GCE_PROJECT}/zones/${call.zone}/instances`;
  return zonalList('compute#instanceList', id, `${zoneLink(call.zone)}/instances`, items.map(instanceJson), next);
}

export function aggregatedInstances(store: GceStore, query: URLSearchParams): J {
  const pred = parseFilter(query.get('filter') ?? undefined, instanceFields);
  const found = ordered(
    [...store.live.values()].filter((i) => pred(fieldsOf(i))),
    query,
  );
  const entries = ZONES.flatMap((z) =>
    found.filter((i) => i.zone === z).map((i) => [z, instanceJson(i)] as [string, J]),
  );
  return aggregated('compute#instanceAggregatedList', 'instances', entries, query);
}

const fieldsOf =
  (i: Internal) =>
  (f: string): string | undefined => {
    if (f === 'name') return i.name;
    if (f === 'status') return i.status;
    if (f === 'id') return i.id;
    if (f === 'zone') return zoneLink(i.zone);
    if (f === 'machineType') return `${zoneLink(i.zone)}/machineTypes/${i.machineType}`;
    if (f.startsWith('labels.')) return i.labels[f.slice(7)];
    return undefined;
  };

export function insertInstance(store: GceStore, call: InstanceCall): J {
  const { zone, query } = call;
  const requestId = checkRequestId(query);
  const prior = store.priorOp(requestId);
  if (prior) return opJson(prior);
  const template = query.get('sourceInstanceTemplate');
  if (template !== null)
    throw notFound(`projects/${GCE_PROJECT}/global/instanceTemplates/${template.split('/').pop()}`);
  const machineImage = query.get('sourceMachineImage');
  if (machineImage !== null)
    throw notFound(`projects/${GCE_PROJECT}/global/machineImages/${machineImage.split('/').pop()}`);

  const plan = validateInsert(call.body, zone, store.networks());
  if (store.live.has(`${zone}/${plan.name}`)) throw alreadyExists(instancePath(zone, plan.name));
  if (store.settings.denyExternalIp && plan.nics.some((n) => n.accessConfig)) {
    // A 412 on the insert itself, naming the project by number
    // (https://github.com/gardener/gardener-extension-provider-gcp/issues/415, 2022-03).
    throw new GceError(
      412,
      'conditionNotMet',
      `Constraint constraints/compute.vmExternalIpAccess violated for project ${GCE_PROJECT_NUMBER}. Add instance ` +
        `${instancePath(zone, plan.name)} to the constraint to use external IP with it.`,
    );
  }
  for (const d of plan.disks) {
    if (store.disks.has(`${zone}/${d.name}`))
      throw alreadyExists(`projects/${GCE_PROJECT}/zones/${zone}/disks/${d.name}`);
  }
  const fault = call.fault;
  if (fault?.code === 'QUOTA_EXCEEDED') throw quotaError(plan, zone, fault);
  const op =
    fault?.code && CAPACITY_CODES.has(fault.code)
      ? stockout(store, plan, call, fault)
      : createInstance(store, plan, zone, call.user, requestId);
  store.rememberRequest(requestId, op);
  return opJson(op);
}

/**
 * A stockout: the insert is accepted, and its operation ends in ZONE_RESOURCE_POOL_EXHAUSTED
 * with the ErrorInfo the API adds ("Troubleshooting resource availability errors",
 * https://cloud.google.com/compute/docs/resource-error).
 */
function stockout(store: GceStore, plan: InsertPlan, call: InstanceCall, fault: Fault) {
  const zone = call.zone;
  const op = newOp(store, zone, 'insert', { link: instanceLink(zone, plan.name), id: numericId() }, call.user);
  const where = `projects/${GCE_PROJECT}/zones/${zone}`;
  const message =
    fault.message ??
    (fault.code === 'ZONE_RESOURCE_POOL_EXHAUSTED'
      ? `The zone '${where}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.`
      : `The zone '${where}' does not have enough resources available to fulfill the request. '(resource type:compute)'.`);
  const accelerator = plan.guestAccelerators[0];
  const metadatas = {
    zone,
    vmType: plan.machineType.name,
    ...(accelerator ? { attachment: `${accelerator.spec.name}:${accelerator.count}` } : {}),
  };
  store.timers.later(Math.max(1, store.bootDelayMs), () =>
    finishOp(op, {
      code: fault.code!,
      message,
      http: 503,
      errorDetails: [
        { errorInfo: { reason: 'resource_availability', domain: 'compute.googleapis.com', metadatas } },
        {
          help: {
            links: [
              {
                description: 'Troubleshooting documentation',
                url: 'https://cloud.google.com/compute/docs/resource-error',
              },
            ],
          },
        },
      ],
    }),
  );
  return op;
}

/** QUOTA_EXCEEDED names the quota the insert counts against, with the ErrorInfo of quota errors. */
function quotaError(plan: InsertPlan, zone: string, fault: Fault): GceError {
  const quota = quotaFor(plan);
  const region = regionOf(zone);
  const message = fault.message ?? `Quota '${quota}' exceeded.  Limit: 0.0 in region ${region}.`;
  const detail: ErrorInfoDetail = {
    '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
    reason: 'QUOTA_EXCEEDED',
    domain: 'googleapis.com',
    metadata: {
      quota_metric: `compute.googleapis.com/${quota.toLowerCase()}`,
      quota_limit: `${quota.replace(/_/g, '-')}-per-project-region`,
      quota_limit_value: '0',
      region,
      service: 'compute.googleapis.com',
      consumer: `projects/${GCE_PROJECT_NUMBER}`,
    },
  };
  return new GceError(fault.status ?? 403, 'quotaExceeded', message, { details: [detail], headers: retryAfter(fault) });
}

export function deleteInstance(store: GceStore, call: InstanceCall): J {
  const { zone, query } = call;
  const requestId = checkRequestId(query);
  const prior = store.priorOp(requestId);
  if (prior) return opJson(prior);
  checkBoolean(query, 'noGracefulShutdown');
  const inst = store.findLive(zone, call.instance!);
  if (inst.deletionProtection) {
    throw new GceError(
      400,
      'resourceInUseByAnotherResource',
      "Invalid resource usage: 'Resource cannot be deleted if it's protected against deletion.'.",
    );
  }
  const op = newOp(store, zone, 'delete', { link: inst.selfLink, id: inst.id }, call.user);
  store.rememberRequest(requestId, op);
  const underWay = store.pendingDelete.get(inst.id);
  if (underWay) {
    // A delete already under way: a second one waits on the same end.
    void underWay.then(() => finishOp(op));
    return opJson(op);
  }
  const done = removeInstance(store, inst, 'deleted', op);
  store.pendingDelete.set(inst.id, done);
  void done.finally(() => store.pendingDelete.delete(inst.id));
  return opJson(op);
}

/**
 * instances.setMetadata: replaces every item, given the metadata's current fingerprint; a stale
 * or missing one is 412 conditionNotMet on the call itself ("You must always provide an
 * up-to-date fingerprint hash ... otherwise the request will fail with error 412 conditionNotMet",
 * https://cloud.google.com/compute/docs/reference/rest/v1/instances/setMetadata, Metadata, 2025-10;
 * the message as https://github.com/cloudfoundry/bosh-google-cpi-release/issues/159 quotes it).
 * The running machine carries on; its metadata server answers with the new items at once.
 */
export function setInstanceMetadata(store: GceStore, call: InstanceCall): J {
  const requestId = checkRequestId(call.query);
  const prior = store.priorOp(requestId);
  if (prior) return opJson(prior);
  const inst = store.findLive(call.zone, call.instance!);
  const body = call.body ?? {};
  const items = decodeMetadata({ metadata: body });
  if (typeof body.fingerprint !== 'string' || body.fingerprint !== metadataFingerprint(inst.metadata)) {
    throw new GceError(412, 'conditionNotMet', 'Supplied fingerprint does not match current metadata fingerprint.');
  }
  inst.metadata = Object.fromEntries(items.map((i) => [i.key, i.value]));
  const op = newOp(store, call.zone, 'setMetadata', { link: inst.selfLink, id: inst.id }, call.user);
  store.rememberRequest(requestId, op);
  store.timers.later(Math.max(1, Math.min(20, store.bootDelayMs)), () => finishOp(op));
  return opJson(op);
}

/** Port 1 is the serial console (the boot log and the startup script's output); ports 2 to 4 are empty. */
export function serialPortOutput(store: GceStore, call: InstanceCall): J {
  const inst = store.findLive(call.zone, call.instance!);
  const { port, portRaw, start: asked } = serialPortParams(call.query);
  if (inst.status === 'PROVISIONING' || inst.status === 'STAGING') {
    throw new GceError(400, 'resourceNotReady', `The resource '${instancePath(call.zone, inst.name)}' is not ready`);
  }
  const bytes = port === 1 ? (inst.machine?.consoleBytes() ?? Buffer.alloc(0)) : Buffer.alloc(0);
  const total = bytes.length;
  const start = Math.min(asked < 0 ? Math.max(0, total + asked) : asked, total);
  return {
    kind: 'compute#serialPortOutput',
    contents: bytes.subarray(start).toString('utf8'),
    start: String(start),
    next: String(total),
    selfLink: `${inst.selfLink}/serialPort?port=${portRaw}`,
  };
}
