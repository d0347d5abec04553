/**
 * Fake Google Compute Engine: the Compute REST API v1 (JSON) at the server root
 * (`/compute/v1/projects/...`), the Security Token Service (`/sts/v1/token`) and IAM Credentials
 * (`/iamcredentials/v1/...:generateAccessToken`) the product's workload identity federation goes
 * through, and each VM's metadata server (`/_gce_md/<instance id>/computeMetadata/v1/...`). One
 * loopback server answers all of it, driven by the real `@google-cloud/compute` clients
 * (`apiEndpoint: '127.0.0.1', port, protocol: 'http'`) and google-auth-library.
 *
 * Strict on purpose: requests are decoded and validated as the API does (gce/validate.ts), with
 * its error shapes, reasons and messages (gce/errors.ts); every call needs a bearer token the
 * fake issued, and each identity only has its own permissions and scopes (gce/auth.ts).
 *
 * Implemented: instances insert, get, delete, list, aggregatedList, getSerialPortOutput;
 * zoneOperations get and wait; machineTypes and acceleratorTypes get, list, aggregatedList;
 * images get and getFromFamily; zones get and list. Instances really boot: the `startup-script`
 * metadata item runs as a sandbox machine (machine.ts), which finds its metadata server through
 * `GCE_METADATA_HOST`; a guest `shutdown` leaves the instance TERMINATED (its disks still bill),
 * and `maxRunDuration` and Spot preemption apply `instanceTerminationAction`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { type Fault, type FaultPlan, applyReset, sleep } from './core/index.js';
import { serve } from './http.js';
import type { Machine, MachineFleet } from './machine.js';
import {
  ACCELERATORS,
  API_ROOT,
  GCE_PROJECT,
  GCE_PROJECT_NUMBER,
  GCE_SERVICE_ACCOUNTS,
  type GceImageSpec,
  IMAGE_PROJECTS,
  MACHINE_TYPES,
  PUBLIC_IMAGE_PROJECTS,
  SCOPE_CLOUD_PLATFORM,
  SCOPE_COMPUTE,
  SCOPE_COMPUTE_READONLY,
  WIF_AUDIENCE,
  ZONES,
  imageLink,
  regionOf,
} from './gce/catalog.js';
import { TokenStore, type TokenInfo, generateAccessToken, hasPermission, makeSubjectToken, stsToken } from './gce/auth.js';
import {
  GceError,
  type ErrorInfoDetail,
  forbidden,
  insufficientScopes,
  invalidCredentials,
  invalidField,
  missingCredentials,
  notFound,
  notFoundPage,
  alreadyExists,
  unknownQuery,
} from './gce/errors.js';
import { parseFilter } from './gce/filter.js';
import { answerMetadata } from './gce/metadata.js';
import { type InsertPlan, findImage, quotaFor, validateInsert } from './gce/validate.js';

export {
  ACCELERATORS as GCE_ACCELERATORS,
  GCE_PROJECT,
  GCE_PROJECT_NUMBER,
  GCE_SERVICE_ACCOUNTS,
  IMAGES as GCE_IMAGES,
  MACHINE_TYPES as GCE_MACHINE_TYPES,
  REGIONS as GCE_REGIONS,
  WIF_AUDIENCE as GCE_WIF_AUDIENCE,
  ZONES as GCE_ZONES,
} from './gce/catalog.js';

// ---------------------------------------------------------------------------------------------
// Inventory

export type GceStatus = 'PROVISIONING' | 'STAGING' | 'RUNNING' | 'STOPPING' | 'TERMINATED' | 'SUSPENDED';

export interface GceDisk {
  name: string;
  zone: string;
  sizeGb: number;
  /** `pd-standard`, `pd-balanced`, `pd-ssd`. */
  type: string;
  boot: boolean;
  autoDelete: boolean;
  deviceName: string;
  /** The image link it was made from. */
  sourceImage?: string;
  /** The instance it was created with. */
  instanceName: string;
  /** `attached` while its instance exists; then `deleted` (autoDelete) or `detached` (left over, still billed). */
  state: 'attached' | 'deleted' | 'detached';
}

export interface GceInstance {
  /** Numeric id, as a string (uint64). */
  id: string;
  name: string;
  /** Short zone name, e.g. `us-central1-a`. */
  zone: string;
  status: GceStatus;
  /** Gone from the API (404); `instances()` keeps it. */
  deleted: boolean;
  /** Short machine type name. */
  machineType: string;
  /** The `guestAccelerators` asked for, by short type name. */
  guestAccelerators: Array<{ type: string; count: number }>;
  /** The GPUs the VM has: its accelerators, or those of its machine type (g2, a2, a3). */
  gpus?: { type: string; count: number; model: string };
  /** The `scheduling` object as it was sent. */
  scheduling: Record<string, unknown>;
  provisioningModel: 'STANDARD' | 'SPOT';
  preemptible: boolean;
  instanceTerminationAction?: 'DELETE' | 'STOP';
  maxRunDurationSeconds?: number;
  labels: Record<string, string>;
  /** Metadata items by key (`startup-script`, ...). */
  metadata: Record<string, string>;
  serviceAccount?: { email: string; scopes: string[] };
  disks: GceDisk[];
  /** The boot image's link. */
  image: string;
  selfLink: string;
  createdAt: Date;
  runningAt?: Date;
  endedAt?: Date;
  /** Why it stopped or went: `maxRunDuration`, `deleted`, `preempted`, `guest shutdown`. */
  endedReason?: string;
  /** Spot preemption published in its metadata (`instance/preempted`). */
  preempted: boolean;
  deletionProtection: boolean;
  networkIP: string;
  natIP?: string;
  requestId?: string;
  /** The machine running its startup script, once it is RUNNING. */
  machine?: Machine;
  /** The serial console: boot banner and the machine's output. */
  console(): string;
}

export interface GceCall {
  /** `instances.insert us-central1-a`, `zoneOperations.wait us-central1-a`, `sts.token global`, ... */
  action: string;
  status: number;
  /** The error's reason, for failed calls. */
  reason?: string;
  /** Who called (service account email or federated principal), when known. */
  identity?: string;
  at: number;
  ms: number;
}

export interface FakeGceOptions {
  faults: FaultPlan;
  machines: MachineFleet;
  /** Added to every API call (not to metadata server requests). */
  latencyMs?: number;
  /** PROVISIONING → RUNNING (and the machine boot); also the time spent STOPPING. Default 100 ms. */
  bootDelayMs?: number;
  /** Length of a Compute Engine second for `maxRunDuration`. Default 1000 ms. */
  secondMs?: number;
}

export interface FakeGce {
  /** `http://127.0.0.1:PORT`: Compute, STS, IAM Credentials and the metadata servers. */
  url: string;
  /** Writes an `external_account` credential configuration and its GitHub OIDC token file into `dir`; returns the JSON's path. */
  credentialsFile(dir: string): string;
  /** Every instance ever created, deleted ones included, in creation order. */
  instances(): GceInstance[];
  /** The live (not deleted) instance of that name, else the last one that had it. */
  instance(zone: string, name: string): GceInstance | undefined;
  /** Every disk ever created. */
  disks(): GceDisk[];
  calls: GceCall[];
  /**
   * Preempts a Spot (or preemptible) instance: publishes `instance/preempted` = TRUE at once, then
   * after `noticeMs` (default 0; Compute Engine gives 30 s) applies its
   * `instanceTerminationAction` (DELETE deletes it, STOP leaves it TERMINATED). Resolves once applied.
   */
  preempt(zone: string, name: string, opts?: { noticeMs?: number }): Promise<void>;
  /** One line per instance not deleted (TERMINATED included: its disks bill) and per orphaned disk. */
  leftovers(): string[];
  ownsMachine(m: Machine): boolean;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Internals

type J = Record<string, unknown>;

interface Internal extends GceInstance {
  plan: InsertPlan;
  mac: string;
  lastStartTimestamp?: Date;
  lastStopTimestamp?: Date;
  insertOp?: OpRecord;
  bannerLines: string[];
}

interface OpRecord {
  id: string;
  name: string;
  zone: string;
  operationType: 'insert' | 'delete';
  targetLink: string;
  targetId: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  user: string;
  progress: number;
  insertTime: Date;
  startTime?: Date;
  endTime?: Date;
  error?: { errors: Array<{ code: string; message: string; errorDetails?: unknown[] }> };
  httpErrorStatusCode?: number;
  httpErrorMessage?: string;
  waiters: Set<() => void>;
}

const zoneLink = (zone: string): string => `${API_ROOT}/projects/${GCE_PROJECT}/zones/${zone}`;
const instanceLink = (zone: string, name: string): string => `${zoneLink(zone)}/instances/${name}`;
const instancePath = (zone: string, name: string): string => `projects/${GCE_PROJECT}/zones/${zone}/instances/${name}`;

/** Timestamps as the API writes them: RFC 3339 with milliseconds in Pacific time. */
function gceTime(d: Date): string {
  return new Date(d.getTime() - 7 * 3600_000).toISOString().replace('Z', '-07:00');
}
const numericId = (): string => `${1 + crypto.randomInt(9)}${Array.from({ length: 18 }, () => crypto.randomInt(10)).join('')}`;
const stableId = (s: string): string => {
  const h = crypto.createHash('sha256').update(s).digest();
  return (h.readBigUInt64BE(0) % 9_000_000_000_000_000_000n + 1_000_000_000_000_000_000n).toString();
};
const fingerprint = (o: unknown): string => crypto.createHash('sha256').update(JSON.stringify(o)).digest().subarray(0, 8).toString('base64');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REQUEST_ID_TTL_MS = 60 * 60 * 1000;
const WAIT_MAX_MS = 2000;
const MD_PREFIX = '/_gce_md';
const MD_PATH = /^\/_gce_md\/([^/?]+)\/computeMetadata\/v1(\/[^?]*)?$/;

/** Query parameters every Google API accepts. */
const SYSTEM_PARAMS = new Set(['alt', 'prettyPrint', 'fields', 'key', 'quotaUser', 'userIp', 'callback', 'upload_protocol', 'uploadType', '.xgafv', 'access_token', 'oauth_token']);

const HTTP_STATUS_TEXT: Record<number, string> = { 400: 'BAD REQUEST', 403: 'FORBIDDEN', 404: 'NOT FOUND', 409: 'CONFLICT', 429: 'TOO MANY REQUESTS', 500: 'INTERNAL SERVER ERROR', 503: 'SERVICE UNAVAILABLE' };

const FAULT_DEFAULTS: Record<string, { status: number; message: string }> = {
  backendError: { status: 503, message: 'The service is currently unavailable.' },
  internalError: { status: 500, message: "Internal error. Please try again or contact Google Support. (Code: '-4305279823658593215')" },
  rateLimitExceeded: {
    status: 403,
    message: `Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'compute.googleapis.com' for consumer 'project_number:${GCE_PROJECT_NUMBER}'.`,
  },
  resourceNotReady: { status: 400, message: 'The resource is not ready' },
  invalid: { status: 400, message: 'Invalid request.' },
  notFound: { status: 404, message: 'The resource was not found' },
  forbidden: { status: 403, message: 'Forbidden' },
  alreadyExists: { status: 409, message: 'The resource already exists' },
  quotaExceeded: { status: 403, message: 'Quota exceeded.' },
  QUOTA_EXCEEDED: { status: 403, message: 'Quota exceeded.' },
};
const CAPACITY_CODES = new Set(['ZONE_RESOURCE_POOL_EXHAUSTED', 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS']);

interface Route {
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

const LIST_PARAMS = ['filter', 'maxResults', 'orderBy', 'pageToken', 'returnPartialSuccess'];
const AGG_PARAMS = [...LIST_PARAMS, 'includeAllScopes', 'serviceProjectNumber'];

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
  ): Route => ({ method: name, scope, project, permission, resource, write, params, args });
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
        return r('instances.insert', z, 'compute.instances.create', `${zp}/instances`, ['requestId', 'sourceInstanceTemplate', 'sourceMachineImage'], [], true);
      }
      if (n === 4 && method === 'GET') return r('instances.get', z, 'compute.instances.get', `${zp}/instances/${d}`, [], [d!]);
      if (n === 4 && method === 'DELETE') {
        return r('instances.delete', z, 'compute.instances.delete', `${zp}/instances/${d}`, ['requestId', 'noGracefulShutdown'], [d!], true);
      }
      if (n === 5 && e === 'serialPort' && method === 'GET') {
        return r('instances.getSerialPortOutput', z, 'compute.instances.getSerialPortOutput', `${zp}/instances/${d}`, ['port', 'start'], [d!]);
      }
    }
    if (c === 'operations') {
      if (n === 4 && method === 'GET') return r('zoneOperations.get', z, 'compute.zoneOperations.get', `${zp}/operations/${d}`, [], [d!]);
      if (n === 5 && e === 'wait' && method === 'POST') return r('zoneOperations.wait', z, 'compute.zoneOperations.get', `${zp}/operations/${d}`, [], [d!]);
    }
    if (c === 'machineTypes' && method === 'GET') {
      if (n === 3) return r('machineTypes.list', z, 'compute.machineTypes.list', zp, LIST_PARAMS);
      if (n === 4) return r('machineTypes.get', z, 'compute.machineTypes.get', `${zp}/machineTypes/${d}`, [], [d!]);
    }
    if (c === 'acceleratorTypes' && method === 'GET') {
      if (n === 3) return r('acceleratorTypes.list', z, 'compute.acceleratorTypes.list', zp, LIST_PARAMS);
      if (n === 4) return r('acceleratorTypes.get', z, 'compute.acceleratorTypes.get', `${zp}/acceleratorTypes/${d}`, [], [d!]);
    }
    return undefined;
  }
  if (a === 'aggregated' && n === 2 && method === 'GET') {
    if (b === 'instances') return r('instances.aggregatedList', 'global', 'compute.instances.list', p, AGG_PARAMS);
    if (b === 'machineTypes') return r('machineTypes.aggregatedList', 'global', 'compute.machineTypes.list', p, AGG_PARAMS);
    if (b === 'acceleratorTypes') return r('acceleratorTypes.aggregatedList', 'global', 'compute.acceleratorTypes.list', p, AGG_PARAMS);
    return undefined;
  }
  if (a === 'global' && b === 'images' && method === 'GET') {
    if (n === 4 && c === 'family') {
      return { ...r('images.getFromFamily', 'global', 'compute.images.getFromFamily', `${p}/global/images/family/${d}`, [], [d!]), publicRead: true };
    }
    if (n === 3) return { ...r('images.get', 'global', 'compute.images.get', `${p}/global/images/${c}`, [], [c!]), publicRead: true };
  }
  return undefined;
}

/** `instances.delete` → `compute.v1.InstancesService.Delete`, as ErrorInfo metadata names it. */
function serviceMethod(method: string): string {
  const [res, verb] = method.split('.') as [string, string];
  const service = res.charAt(0).toUpperCase() + res.slice(1);
  return `compute.v1.${service}Service.${verb.charAt(0).toUpperCase()}${verb.slice(1)}`;
}

// ---------------------------------------------------------------------------------------------
// The server

export async function startFakeGce(opts: FakeGceOptions): Promise<FakeGce> {
  const machines = opts.machines;
  const bootDelayMs = opts.bootDelayMs ?? 100;
  const stopDelayMs = bootDelayMs;
  const secondMs = opts.secondMs ?? 1000;
  const tokens = new TokenStore();
  const subjectToken = makeSubjectToken();
  const all: Internal[] = [];
  const live = new Map<string, Internal>(); // zone/name → not deleted
  const byId = new Map<string, Internal>();
  const disks = new Map<string, GceDisk>(); // zone/name → not deleted
  const allDisks: GceDisk[] = [];
  const ops = new Map<string, OpRecord>(); // zone/name
  const requestIds = new Map<string, { op: OpRecord; at: number }>();
  const owned = new Set<Machine>();
  const timers = new Set<NodeJS.Timeout>();
  const instanceTimers = new Map<string, NodeJS.Timeout>();
  const pendingDelete = new Map<string, Promise<void>>();
  const calls: GceCall[] = [];
  let closed = false;
  let ipCounter = 2;

  const later = (ms: number, f: () => void): NodeJS.Timeout => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) f();
    }, ms);
    timer.unref();
    timers.add(timer);
    return timer;
  };

  // ----- operations -----

  function newOp(zone: string, type: 'insert' | 'delete', target: { link: string; id: string }, user: string): OpRecord {
    const now = Date.now();
    const op: OpRecord = {
      id: numericId(),
      name: `operation-${now}-${crypto.randomBytes(7).toString('hex').slice(0, 13)}-${crypto.randomBytes(4).toString('hex')}-${crypto.randomBytes(4).toString('hex')}`,
      zone,
      operationType: type,
      targetLink: target.link,
      targetId: target.id,
      status: 'PENDING',
      user,
      progress: 0,
      insertTime: new Date(now),
      waiters: new Set(),
    };
    ops.set(`${zone}/${op.name}`, op);
    later(Math.min(10, bootDelayMs), () => startOp(op));
    return op;
  }

  function startOp(op: OpRecord): void {
    if (op.status !== 'PENDING') return;
    op.status = 'RUNNING';
    op.startTime = new Date();
    notify(op);
  }

  function finishOp(op: OpRecord, error?: { code: string; message: string; errorDetails?: unknown[]; http: number }): void {
    if (op.status === 'DONE') return;
    if (op.status === 'PENDING') op.startTime = new Date();
    op.status = 'DONE';
    op.progress = 100;
    op.endTime = new Date();
    if (error) {
      op.error = { errors: [{ code: error.code, message: error.message, ...(error.errorDetails ? { errorDetails: error.errorDetails } : {}) }] };
      op.httpErrorStatusCode = error.http;
      op.httpErrorMessage = HTTP_STATUS_TEXT[error.http] ?? 'ERROR';
    }
    notify(op);
  }

  function notify(op: OpRecord): void {
    for (const w of [...op.waiters]) w();
  }

  function opJson(op: OpRecord): J {
    return {
      kind: 'compute#operation',
      id: op.id,
      name: op.name,
      zone: zoneLink(op.zone),
      operationType: op.operationType,
      targetLink: op.targetLink,
      targetId: op.targetId,
      status: op.status,
      user: op.user,
      progress: op.progress,
      insertTime: gceTime(op.insertTime),
      ...(op.startTime ? { startTime: gceTime(op.startTime) } : {}),
      ...(op.endTime ? { endTime: gceTime(op.endTime) } : {}),
      ...(op.error ? { error: op.error, httpErrorStatusCode: op.httpErrorStatusCode, httpErrorMessage: op.httpErrorMessage } : {}),
      selfLink: `${zoneLink(op.zone)}/operations/${op.name}`,
    };
  }

  // ----- instance lifecycle -----

  function clearInstanceTimer(inst: Internal): void {
    const t = instanceTimers.get(inst.id);
    if (t) {
      clearTimeout(t);
      timers.delete(t);
      instanceTimers.delete(inst.id);
    }
  }

  function setStatus(inst: Internal, status: GceStatus): void {
    inst.status = status;
    if (status === 'RUNNING') {
      inst.runningAt = new Date();
      inst.lastStartTimestamp = inst.runningAt;
    }
    if (status === 'TERMINATED') {
      inst.lastStopTimestamp = new Date();
      inst.endedAt ??= inst.lastStopTimestamp;
    }
  }

  function boot(inst: Internal): void {
    if (inst.deleted || inst.status !== 'STAGING') return;
    setStatus(inst, 'RUNNING');
    if (inst.insertOp) finishOp(inst.insertOp);
    const script = inst.metadata['startup-script'];
    const mdHost = `${server.url.replace(/^http:\/\//, '')}${MD_PREFIX}/${inst.id}`;
    const m = machines.boot({
      id: inst.id,
      script: script ?? '',
      arch: 'x86_64',
      env: { SANDBOX_INSTANCE_ID: inst.id, SANDBOX_CLOUD: 'gcp', GCE_METADATA_HOST: mdHost },
      ...(inst.gpus && inst.plan.image.nvidiaDriver
        ? { gpu: { model: inst.gpus.model, count: inst.gpus.count, memoryMiB: inst.plan.gpus!.spec.memoryMiB } }
        : {}),
      banner: [
        ...inst.bannerLines,
        script !== undefined
          ? `[    3.210000] google_metadata_script_runner[733]: Found startup-script in metadata.`
          : `[    3.210000] google_metadata_script_runner[733]: No startup scripts to run.`,
      ],
      onShutdown: () => guestShutdown(inst),
    });
    inst.machine = m;
    owned.add(m);
    const s = inst.plan.scheduling;
    if (s.maxRunDurationSeconds !== undefined || s.terminationTime !== undefined) {
      const ms = s.maxRunDurationSeconds !== undefined ? s.maxRunDurationSeconds * secondMs : s.terminationTime!.getTime() - Date.now();
      instanceTimers.set(
        inst.id,
        later(Math.max(0, ms), () => {
          instanceTimers.delete(inst.id);
          void applyTermination(inst, 'maxRunDuration');
        }),
      );
    }
  }

  /** DELETE or STOP, as the instance's `instanceTerminationAction` says. */
  async function applyTermination(inst: Internal, reason: string): Promise<void> {
    if (inst.deleted || inst.status === 'TERMINATED' || inst.status === 'STOPPING') return;
    if (inst.plan.scheduling.instanceTerminationAction === 'DELETE') await removeInstance(inst, reason);
    else await stopInstance(inst, reason);
  }

  function guestShutdown(inst: Internal): void {
    if (inst.deleted || inst.status !== 'RUNNING') return;
    clearInstanceTimer(inst);
    inst.endedReason ??= 'guest shutdown';
    setStatus(inst, 'STOPPING');
    later(stopDelayMs, () => setStatus(inst, 'TERMINATED'));
  }

  async function stopInstance(inst: Internal, reason: string): Promise<void> {
    clearInstanceTimer(inst);
    inst.endedReason ??= reason;
    setStatus(inst, 'STOPPING');
    if (inst.insertOp) finishOp(inst.insertOp);
    await inst.machine?.kill();
    await sleep(stopDelayMs);
    if (!inst.deleted) setStatus(inst, 'TERMINATED');
  }

  /** Deletes an instance: STOPPING, its machine killed, then gone; its disks go with it or stay (autoDelete). */
  async function removeInstance(inst: Internal, reason: string, op?: OpRecord): Promise<void> {
    clearInstanceTimer(inst);
    inst.endedReason ??= reason;
    if (inst.insertOp) finishOp(inst.insertOp);
    const wasTerminated = inst.status === 'TERMINATED';
    if (!wasTerminated) setStatus(inst, 'STOPPING');
    await inst.machine?.kill();
    await sleep(wasTerminated ? Math.min(10, stopDelayMs) : stopDelayMs);
    if (inst.deleted) return;
    inst.deleted = true;
    inst.endedAt ??= new Date();
    if (inst.status !== 'TERMINATED') inst.status = 'TERMINATED';
    live.delete(`${inst.zone}/${inst.name}`);
    for (const d of inst.disks) {
      if (d.state !== 'attached') continue;
      if (d.autoDelete) {
        d.state = 'deleted';
        disks.delete(`${d.zone}/${d.name}`);
      } else {
        d.state = 'detached';
      }
    }
    if (op) finishOp(op);
  }

  function createInstance(plan: InsertPlan, zone: string, user: string, requestId: string | undefined): { inst: Internal; op: OpRecord } {
    const id = numericId();
    const name = plan.name;
    const selfLink = instanceLink(zone, name);
    const n = ipCounter++;
    const networkIP = `10.128.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`;
    const natIP = plan.nics[0]?.accessConfig ? `34.${100 + (n % 100)}.${Math.floor(n / 100) % 250}.${(n % 250) + 1}` : undefined;
    const gpuSpec = plan.gpus;
    const diskList: GceDisk[] = plan.disks.map((d) => ({
      name: d.name,
      zone,
      sizeGb: d.sizeGb,
      type: d.type,
      boot: d.boot,
      autoDelete: d.autoDelete,
      deviceName: d.deviceName,
      ...(d.image ? { sourceImage: imageLink(d.image) } : {}),
      instanceName: name,
      state: 'attached',
    }));
    const mem = plan.machineType.memoryMb;
    const inst: Internal = {
      id,
      name,
      zone,
      status: 'PROVISIONING',
      deleted: false,
      machineType: plan.machineType.name,
      guestAccelerators: plan.guestAccelerators.map((a) => ({ type: a.spec.name, count: a.count })),
      ...(gpuSpec ? { gpus: { type: gpuSpec.spec.name, count: gpuSpec.count, model: gpuSpec.spec.smiName } } : {}),
      scheduling: plan.schedulingSent,
      provisioningModel: plan.scheduling.provisioningModel,
      preemptible: plan.scheduling.preemptible,
      ...(plan.scheduling.instanceTerminationAction ? { instanceTerminationAction: plan.scheduling.instanceTerminationAction } : {}),
      ...(plan.scheduling.maxRunDurationSeconds !== undefined ? { maxRunDurationSeconds: plan.scheduling.maxRunDurationSeconds } : {}),
      labels: { ...plan.labels },
      metadata: Object.fromEntries(plan.metadata.map((i) => [i.key, i.value])),
      ...(plan.serviceAccount ? { serviceAccount: { email: plan.serviceAccount.email, scopes: [...plan.serviceAccount.scopes] } } : {}),
      disks: diskList,
      image: imageLink(plan.image),
      selfLink,
      createdAt: new Date(),
      preempted: false,
      deletionProtection: plan.deletionProtection,
      networkIP,
      ...(natIP ? { natIP } : {}),
      ...(requestId ? { requestId } : {}),
      plan,
      mac: `42:01:0a:80:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
      bannerLines: [
        'SeaBIOS (version 1.8.2-google)',
        `Total RAM Size = 0x${(mem * 1024 * 1024).toString(16).padStart(16, '0')} = ${mem} MiB`,
        'Booting from Hard Disk 0...',
        `[    0.000000] Linux version 6.8.0-1015-gcp (buildd@lcy02-amd64-033) #17~22.04.1-Ubuntu SMP`,
        `[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.8.0-1015-gcp root=PARTUUID=${crypto.randomUUID()} ro console=ttyS0,115200`,
        `[    0.000000] DMI: Google Google Compute Engine/Google Compute Engine, BIOS Google 01/01/2011`,
        `[    2.904411] google_guest_agent[612]: GCE Agent Started (version 20250901.00).`,
        `[    3.200000] google_metadata_script_runner[733]: Starting startup scripts (version 20250901.00).`,
      ],
      console(): string {
        return this.machine ? this.machine.console() : '';
      },
    };
    all.push(inst);
    live.set(`${zone}/${name}`, inst);
    byId.set(id, inst);
    for (const d of diskList) {
      disks.set(`${zone}/${d.name}`, d);
      allDisks.push(d);
    }
    const op = newOp(zone, 'insert', { link: selfLink, id }, user);
    inst.insertOp = op;
    later(Math.max(1, Math.floor(bootDelayMs / 2)), () => {
      if (!inst.deleted && inst.status === 'PROVISIONING') setStatus(inst, 'STAGING');
    });
    later(bootDelayMs, () => {
      if (!inst.deleted && inst.status === 'PROVISIONING') setStatus(inst, 'STAGING');
      boot(inst);
    });
    return { inst, op };
  }

  // ----- JSON views -----

  function instanceJson(i: Internal): J {
    const s = i.plan.scheduling;
    const running = i.status === 'RUNNING' || i.status === 'STOPPING';
    return {
      kind: 'compute#instance',
      id: i.id,
      creationTimestamp: gceTime(i.createdAt),
      name: i.name,
      ...(i.plan.description !== undefined ? { description: i.plan.description } : {}),
      tags: { fingerprint: '42WmSpB8rSM=' },
      machineType: `${zoneLink(i.zone)}/machineTypes/${i.machineType}`,
      status: i.status,
      zone: zoneLink(i.zone),
      canIpForward: false,
      networkInterfaces: i.plan.nics.map((nic, idx) => ({
        kind: 'compute#networkInterface',
        network: `${API_ROOT}/${nic.network}`,
        subnetwork: `${API_ROOT}/${nic.subnetwork}`,
        networkIP: i.networkIP,
        name: `nic${idx}`,
        ...(nic.accessConfig
          ? {
              accessConfigs: [
                {
                  kind: 'compute#accessConfig',
                  type: nic.accessConfig.type,
                  name: nic.accessConfig.name,
                  ...(running && i.natIP ? { natIP: i.natIP } : {}),
                  networkTier: nic.accessConfig.networkTier,
                },
              ],
            }
          : {}),
        fingerprint: fingerprint([i.id, idx]),
        stackType: 'IPV4_ONLY',
      })),
      disks: i.disks
        .filter((d) => d.state === 'attached')
        .map((d, idx) => ({
          kind: 'compute#attachedDisk',
          type: 'PERSISTENT',
          mode: 'READ_WRITE',
          source: `${zoneLink(d.zone)}/disks/${d.name}`,
          deviceName: d.deviceName,
          index: idx,
          boot: d.boot,
          autoDelete: d.autoDelete,
          interface: 'SCSI',
          diskSizeGb: String(d.sizeGb),
          architecture: 'X86_64',
          ...(d.boot ? { guestOsFeatures: [{ type: 'VIRTIO_SCSI_MULTIQUEUE' }, { type: 'SEV_CAPABLE' }, { type: 'UEFI_COMPATIBLE' }, { type: 'GVNIC' }] } : {}),
        })),
      metadata: {
        kind: 'compute#metadata',
        fingerprint: fingerprint(i.metadata),
        ...(Object.keys(i.metadata).length > 0 ? { items: Object.entries(i.metadata).map(([key, value]) => ({ key, value })) } : {}),
      },
      ...(i.serviceAccount ? { serviceAccounts: [{ email: i.serviceAccount.email, scopes: i.serviceAccount.scopes }] } : {}),
      selfLink: i.selfLink,
      scheduling: {
        onHostMaintenance: s.onHostMaintenance,
        automaticRestart: s.automaticRestart,
        preemptible: s.preemptible,
        provisioningModel: s.provisioningModel,
        ...(s.instanceTerminationAction ? { instanceTerminationAction: s.instanceTerminationAction } : {}),
        ...(s.maxRunDurationSeconds !== undefined ? { maxRunDuration: { seconds: String(Math.floor(s.maxRunDurationSeconds)) } } : {}),
        ...(s.terminationTime ? { terminationTime: gceTime(s.terminationTime) } : {}),
      },
      cpuPlatform: running ? 'Intel Cascade Lake' : 'Unknown CPU Platform',
      ...(Object.keys(i.labels).length > 0 ? { labels: i.labels } : {}),
      labelFingerprint: fingerprint(i.labels),
      startRestricted: false,
      deletionProtection: i.deletionProtection,
      ...(i.guestAccelerators.length > 0
        ? { guestAccelerators: i.guestAccelerators.map((g) => ({ acceleratorType: `${zoneLink(i.zone)}/acceleratorTypes/${g.type}`, acceleratorCount: g.count })) }
        : {}),
      fingerprint: fingerprint([i.id, i.status]),
      ...(i.lastStartTimestamp ? { lastStartTimestamp: gceTime(i.lastStartTimestamp) } : {}),
      ...(i.lastStopTimestamp ? { lastStopTimestamp: gceTime(i.lastStopTimestamp) } : {}),
      satisfiesPzi: true,
    };
  }

  const OLD = '1969-12-31T16:00:00.000-08:00';

  function machineTypeJson(name: string, zone: string): J {
    const m = MACHINE_TYPES[name]!;
    return {
      kind: 'compute#machineType',
      id: stableId(`mt/${name}`).slice(0, 13),
      creationTimestamp: OLD,
      name,
      description: m.description,
      guestCpus: m.guestCpus,
      memoryMb: m.memoryMb,
      imageSpaceGb: 0,
      maximumPersistentDisks: 128,
      maximumPersistentDisksSizeGb: '263168',
      zone,
      selfLink: `${zoneLink(zone)}/machineTypes/${name}`,
      isSharedCpu: false,
      ...(m.gpu ? { accelerators: [{ guestAcceleratorType: m.gpu.type, guestAcceleratorCount: m.gpu.count }] } : {}),
      architecture: 'X86_64',
    };
  }

  function acceleratorJson(name: string, zone: string): J {
    const a = ACCELERATORS[name]!;
    return {
      kind: 'compute#acceleratorType',
      id: stableId(`acc/${name}`).slice(0, 5),
      creationTimestamp: OLD,
      name,
      description: a.description,
      zone: zoneLink(zone),
      selfLink: `${zoneLink(zone)}/acceleratorTypes/${name}`,
      maximumCardsPerInstance: a.maximumCardsPerInstance,
    };
  }

  function zoneJson(zone: string): J {
    const region = regionOf(zone);
    return {
      kind: 'compute#zone',
      id: stableId(`zone/${zone}`).slice(0, 4),
      creationTimestamp: OLD,
      name: zone,
      description: zone,
      status: 'UP',
      region: `${API_ROOT}/projects/${GCE_PROJECT}/regions/${region}`,
      selfLink: zoneLink(zone),
      availableCpuPlatforms: ['Intel Cascade Lake', 'Intel Ice Lake', 'AMD Milan', 'Intel Sapphire Rapids'],
      supportsPzs: true,
    };
  }

  function imageJson(i: GceImageSpec): J {
    return {
      kind: 'compute#image',
      id: i.id,
      creationTimestamp: i.creationTimestamp,
      name: i.name,
      description: i.description,
      sourceType: 'RAW',
      status: 'READY',
      archiveSizeBytes: String(i.diskSizeGb * 180_000_000),
      diskSizeGb: String(i.diskSizeGb),
      ...(i.family ? { family: i.family } : {}),
      selfLink: imageLink(i),
      labelFingerprint: '42WmSpB8rSM=',
      guestOsFeatures: [{ type: 'VIRTIO_SCSI_MULTIQUEUE' }, { type: 'SEV_CAPABLE' }, { type: 'UEFI_COMPATIBLE' }, { type: 'GVNIC' }],
      storageLocations: ['us', 'eu', 'asia'],
      architecture: i.architecture,
    };
  }

  // ----- listing -----

  function paging(q: URLSearchParams): { max: number; start: number; order?: string } {
    const raw = q.get('maxResults');
    let max = 500;
    if (raw !== null) {
      if (!/^\d+$/.test(raw)) throw invalidField('maxResults', raw, 'Must be a non-negative integer.');
      const n = Number(raw);
      if (n > 500) throw invalidField('maxResults', raw, 'Must be less than or equal to 500');
      if (n > 0) max = n;
    }
    const token = q.get('pageToken');
    let start = 0;
    if (token !== null && token !== '') {
      const m = /^p(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
      if (!m) throw invalidField('pageToken', token, 'Invalid page token.');
      start = Number(m[1]);
    }
    const order = q.get('orderBy') ?? undefined;
    if (order !== undefined && order !== 'name' && order !== 'creationTimestamp desc') {
      throw invalidField('orderBy', order, "Only 'name' and 'creationTimestamp desc' are supported.");
    }
    return { max, start, ...(order ? { order } : {}) };
  }
  const pageToken = (n: number): string => Buffer.from(`p${n}`).toString('base64url');

  function page<T>(items: T[], q: URLSearchParams): { items: T[]; next?: string } {
    const { max, start } = paging(q);
    const slice = items.slice(start, start + max);
    return { items: slice, ...(start + max < items.length ? { next: pageToken(start + max) } : {}) };
  }

  function aggregated<T>(kind: string, key: string, entries: Array<[string, T]>, q: URLSearchParams, self: string): J {
    const { items, next } = page(entries, q);
    const byZone = new Map<string, T[]>();
    for (const [z, x] of items) byZone.set(z, [...(byZone.get(z) ?? []), x]);
    const out: Record<string, J> = {};
    for (const z of ZONES) {
      const found = byZone.get(z);
      out[`zones/${z}`] = found
        ? { [key]: found }
        : { warning: { code: 'NO_RESULTS_ON_PAGE', message: `There are no results for scope 'zones/${z}' on this page.`, data: [{ key: 'scope', value: `zones/${z}` }] } };
    }
    return { kind, id: `projects/${GCE_PROJECT}/aggregated/${key}`, items: out, selfLink: self, ...(next ? { nextPageToken: next } : {}) };
  }

  const instanceFields = (f: string): boolean => ['name', 'status', 'id', 'zone', 'machineType'].includes(f) || /^labels\.[a-z][a-z0-9_-]{0,62}$/.test(f);
  const instanceGetter = (i: Internal) => (f: string): string | undefined => {
    if (f === 'name') return i.name;
    if (f === 'status') return i.status;
    if (f === 'id') return i.id;
    if (f === 'zone') return zoneLink(i.zone);
    if (f === 'machineType') return `${zoneLink(i.zone)}/machineTypes/${i.machineType}`;
    if (f.startsWith('labels.')) return i.labels[f.slice(7)];
    return undefined;
  };
  /**
   * Machine types and accelerator types: read-only, per zone, the same three calls each (get,
   * list, aggregatedList), with a name filter.
   */
  function zonalOffering(
    resource: 'machineTypes' | 'acceleratorTypes',
    verb: 'get' | 'list' | 'aggregatedList',
    zone: string,
    name: string | undefined,
    q: URLSearchParams,
  ): { status: number; body: J } {
    const table: Record<string, { name: string; zones: readonly string[] }> = resource === 'machineTypes' ? MACHINE_TYPES : ACCELERATORS;
    const json = resource === 'machineTypes' ? machineTypeJson : acceleratorJson;
    const kind = resource === 'machineTypes' ? 'compute#machineType' : 'compute#acceleratorType';
    if (verb === 'get') {
      const item = table[name!];
      if (!item || !item.zones.includes(zone)) throw notFound(`projects/${GCE_PROJECT}/zones/${zone}/${resource}/${name}`);
      return { status: 200, body: json(name!, zone) };
    }
    const pred = parseFilter(q.get('filter') ?? undefined, nameOnly);
    const offered = (z: string) => Object.values(table).filter((item) => item.zones.includes(z) && pred(nameGetter(item.name)));
    if (verb === 'aggregatedList') {
      const entries = ZONES.flatMap((z) => offered(z).map((item) => [z, json(item.name, z)] as [string, J]));
      return { status: 200, body: aggregated(`${kind}AggregatedList`, resource, entries, q, `${API_ROOT}/projects/${GCE_PROJECT}/aggregated/${resource}`) };
    }
    const { items, next } = page(offered(zone), q);
    return {
      status: 200,
      body: {
        kind: `${kind}List`,
        id: `projects/${GCE_PROJECT}/zones/${zone}/${resource}`,
        ...(items.length > 0 ? { items: items.map((item) => json(item.name, zone)) } : {}),
        selfLink: `${zoneLink(zone)}/${resource}`,
        ...(next ? { nextPageToken: next } : {}),
      },
    };
  }

  const nameOnly = (f: string): boolean => f === 'name';
  const nameGetter = (name: string) => (f: string): string | undefined => (f === 'name' ? name : undefined);

  function ordered(list: Internal[], q: URLSearchParams): Internal[] {
    const order = q.get('orderBy');
    if (order === 'name') return [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (order === 'creationTimestamp desc') return [...list].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
    return list;
  }

  // ----- request handling -----

  type Ctx = { route: Route; q: URLSearchParams; body: J | undefined; caller: TokenInfo; fault?: Fault };

  function requireZone(zone: string): void {
    if (!ZONES.includes(zone)) throw notFound(`projects/${GCE_PROJECT}/zones/${zone}`);
  }

  function findLive(zone: string, name: string): Internal {
    const i = live.get(`${zone}/${name}`);
    if (!i) throw notFound(instancePath(zone, name));
    return i;
  }

  async function handle(ctx: Ctx): Promise<{ status: number; body: J }> {
    const { route: r, q } = ctx;
    const [arg] = r.args;
    switch (r.method) {
      case 'instances.insert':
        return { status: 200, body: insert(ctx) };
      case 'instances.get':
        return { status: 200, body: instanceJson(findLive(r.scope, arg!)) };
      case 'instances.delete':
        return { status: 200, body: remove(ctx) };
      case 'instances.list': {
        const pred = parseFilter(q.get('filter') ?? undefined, instanceFields);
        const found = ordered([...live.values()].filter((i) => i.zone === r.scope && pred(instanceGetter(i))), q);
        const { items, next } = page(found, q);
        return {
          status: 200,
          body: {
            kind: 'compute#instanceList',
            id: `projects/${GCE_PROJECT}/zones/${r.scope}/instances`,
            ...(items.length > 0 ? { items: items.map(instanceJson) } : {}),
            selfLink: `${zoneLink(r.scope)}/instances`,
            ...(next ? { nextPageToken: next } : {}),
          },
        };
      }
      case 'instances.aggregatedList': {
        const pred = parseFilter(q.get('filter') ?? undefined, instanceFields);
        const found = ordered([...live.values()].filter((i) => pred(instanceGetter(i))), q);
        const byZoneOrder = ZONES.flatMap((z) => found.filter((i) => i.zone === z).map((i) => [z, instanceJson(i)] as [string, J]));
        return {
          status: 200,
          body: aggregated('compute#instanceAggregatedList', 'instances', byZoneOrder, q, `${API_ROOT}/projects/${GCE_PROJECT}/aggregated/instances`),
        };
      }
      case 'instances.getSerialPortOutput':
        return { status: 200, body: serialPort(ctx) };
      case 'zoneOperations.get':
        return { status: 200, body: opJson(findOp(r.scope, arg!)) };
      case 'zoneOperations.wait': {
        const op = findOp(r.scope, arg!);
        if (op.status !== 'DONE') {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              if (op.status !== 'DONE' && !closed) return;
              clearTimeout(timer);
              op.waiters.delete(done);
              resolve();
            };
            const timer = setTimeout(() => {
              op.waiters.delete(done);
              resolve();
            }, WAIT_MAX_MS);
            timer.unref();
            op.waiters.add(done);
          });
        }
        return { status: 200, body: opJson(op) };
      }
      case 'machineTypes.get':
      case 'acceleratorTypes.get':
      case 'machineTypes.list':
      case 'acceleratorTypes.list':
      case 'machineTypes.aggregatedList':
      case 'acceleratorTypes.aggregatedList': {
        const [resource, verb] = r.method.split('.') as ['machineTypes' | 'acceleratorTypes', 'get' | 'list' | 'aggregatedList'];
        return zonalOffering(resource, verb, r.scope, arg, q);
      }
      case 'zones.get':
        return { status: 200, body: zoneJson(r.scope) };
      case 'zones.list': {
        const pred = parseFilter(q.get('filter') ?? undefined, nameOnly);
        const { items, next } = page(ZONES.filter((z) => pred(nameGetter(z))), q);
        return {
          status: 200,
          body: {
            kind: 'compute#zoneList',
            id: `projects/${GCE_PROJECT}/zones`,
            items: items.map(zoneJson),
            selfLink: `${API_ROOT}/projects/${GCE_PROJECT}/zones`,
            ...(next ? { nextPageToken: next } : {}),
          },
        };
      }
      case 'images.getFromFamily': {
        const image = findImage(r.project, arg, undefined);
        if (!image) throw notFound(`projects/${r.project}/global/images/family/${arg}`);
        return { status: 200, body: imageJson(image) };
      }
      case 'images.get': {
        const image = findImage(r.project, undefined, arg);
        if (!image) throw notFound(`projects/${r.project}/global/images/${arg}`);
        return { status: 200, body: imageJson(image) };
      }
      default:
        throw new Error(`unrouted ${r.method}`);
    }
  }

  function findOp(zone: string, name: string): OpRecord {
    const op = ops.get(`${zone}/${name}`);
    if (!op) throw notFound(`projects/${GCE_PROJECT}/zones/${zone}/operations/${name}`);
    return op;
  }

  function checkRequestId(q: URLSearchParams): string | undefined {
    const requestId = q.get('requestId') ?? undefined;
    if (requestId === undefined) return undefined;
    if (!UUID.test(requestId) || /^[0-]+$/.test(requestId)) {
      throw invalidField('requestId', requestId, 'The request id must be a valid UUID with the exception that zero UUID is not supported.');
    }
    return requestId.toLowerCase();
  }

  function priorOp(requestId: string | undefined): OpRecord | undefined {
    if (requestId === undefined) return undefined;
    const prior = requestIds.get(requestId);
    if (!prior || Date.now() - prior.at > REQUEST_ID_TTL_MS) return undefined;
    return prior.op;
  }

  function insert(ctx: Ctx): J {
    const zone = ctx.route.scope;
    const q = ctx.q;
    const requestId = checkRequestId(q);
    const prior = priorOp(requestId);
    if (prior) return opJson(prior);
    const template = q.get('sourceInstanceTemplate');
    if (template !== null) throw notFound(`projects/${GCE_PROJECT}/global/instanceTemplates/${template.split('/').pop()}`);
    const machineImage = q.get('sourceMachineImage');
    if (machineImage !== null) throw notFound(`projects/${GCE_PROJECT}/global/machineImages/${machineImage.split('/').pop()}`);

    const plan = validateInsert(ctx.body, zone);
    if (live.has(`${zone}/${plan.name}`)) throw alreadyExists(instancePath(zone, plan.name));
    for (const d of plan.disks) {
      if (disks.has(`${zone}/${d.name}`)) throw alreadyExists(`projects/${GCE_PROJECT}/zones/${zone}/disks/${d.name}`);
    }
    const fault = ctx.fault;
    if (fault?.code === 'QUOTA_EXCEEDED') throw quotaError(plan, zone, fault);
    if (fault?.code && CAPACITY_CODES.has(fault.code)) {
      const id = numericId();
      const op = newOp(zone, 'insert', { link: instanceLink(zone, plan.name), id }, ctx.caller.identity);
      if (requestId) requestIds.set(requestId, { op, at: Date.now() });
      const where = `projects/${GCE_PROJECT}/zones/${zone}`;
      const message =
        fault.message ??
        (fault.code === 'ZONE_RESOURCE_POOL_EXHAUSTED'
          ? `The zone '${where}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.`
          : `The zone '${where}' does not have enough resources available to fulfill the request. '(resource type:compute)'.`);
      later(Math.max(1, bootDelayMs), () =>
        finishOp(op, {
          code: fault.code!,
          message,
          http: 503,
          errorDetails: [
            {
              errorInfo: {
                reason: 'resource_availability',
                domain: 'compute.googleapis.com',
                metadatas: {
                  zone,
                  vmType: plan.machineType.name,
                  ...(plan.guestAccelerators[0] ? { attachment: `${plan.guestAccelerators[0].spec.name}:${plan.guestAccelerators[0].count}` } : {}),
                },
              },
            },
            { help: { links: [{ description: 'Troubleshooting documentation', url: 'https://cloud.google.com/compute/docs/resource-error' }] } },
          ],
        }),
      );
      return opJson(op);
    }
    const { op } = createInstance(plan, zone, ctx.caller.identity, requestId);
    if (requestId) requestIds.set(requestId, { op, at: Date.now() });
    return opJson(op);
  }

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
    return new GceError(fault.status ?? 403, 'quotaExceeded', message, { details: [detail] });
  }

  function remove(ctx: Ctx): J {
    const zone = ctx.route.scope;
    const name = ctx.route.args[0]!;
    const requestId = checkRequestId(ctx.q);
    const prior = priorOp(requestId);
    if (prior) return opJson(prior);
    const graceful = ctx.q.get('noGracefulShutdown');
    if (graceful !== null && graceful !== 'true' && graceful !== 'false') {
      throw invalidField('noGracefulShutdown', graceful, 'Must be a boolean.');
    }
    const inst = findLive(zone, name);
    if (inst.deletionProtection) {
      throw new GceError(400, 'resourceInUseByAnotherResource', "Invalid resource usage: 'Resource cannot be deleted if it's protected against deletion.'.");
    }
    const underWay = pendingDelete.get(inst.id);
    if (underWay) {
      // A delete already under way: a second one waits on the same end.
      const op = newOp(zone, 'delete', { link: inst.selfLink, id: inst.id }, ctx.caller.identity);
      void underWay.then(() => finishOp(op));
      if (requestId) requestIds.set(requestId, { op, at: Date.now() });
      return opJson(op);
    }
    const op = newOp(zone, 'delete', { link: inst.selfLink, id: inst.id }, ctx.caller.identity);
    if (requestId) requestIds.set(requestId, { op, at: Date.now() });
    const done = removeInstance(inst, 'deleted', op);
    pendingDelete.set(inst.id, done);
    void done.finally(() => pendingDelete.delete(inst.id));
    return opJson(op);
  }

  function serialPort(ctx: Ctx): J {
    const zone = ctx.route.scope;
    const inst = findLive(zone, ctx.route.args[0]!);
    const portRaw = ctx.q.get('port') ?? '1';
    if (!/^\d+$/.test(portRaw) || Number(portRaw) < 1 || Number(portRaw) > 4) {
      throw invalidField('port', portRaw, 'Must be greater than or equal to 1 and less than or equal to 4.');
    }
    const startRaw = ctx.q.get('start') ?? '0';
    if (!/^-?\d+$/.test(startRaw)) throw invalidField('start', startRaw, 'Must be an integer.');
    if (inst.status === 'PROVISIONING' || inst.status === 'STAGING') {
      throw new GceError(400, 'resourceNotReady', `The resource '${instancePath(zone, inst.name)}' is not ready`);
    }
    const bytes = Number(portRaw) === 1 ? (inst.machine?.consoleBytes() ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const total = bytes.length;
    let start = Number(startRaw);
    if (start < 0) start = Math.max(0, total + start);
    start = Math.min(start, total);
    return {
      kind: 'compute#serialPortOutput',
      contents: bytes.subarray(start).toString('utf8'),
      start: String(start),
      next: String(total),
      selfLink: `${inst.selfLink}/serialPort?port=${portRaw}`,
    };
  }

  // ----- HTTP -----

  function respondJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', vary: 'Origin, X-Origin, Referer', ...headers });
    res.end(JSON.stringify(body));
  }

  const server = await serve('gce', async (req, body, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const md = MD_PATH.exec(url.pathname);
    if (md || url.pathname.startsWith(`${MD_PREFIX}/`)) {
      const inst = md ? byId.get(decodeURIComponent(md[1]!)) : undefined;
      if (!md) {
        res.destroy();
        return;
      }
      const view =
        inst && !inst.deleted && inst.status === 'RUNNING'
          ? {
              id: inst.id,
              name: inst.name,
              zone: inst.zone,
              machineType: inst.machineType,
              hostname: inst.plan.hostname ?? `${inst.name}.${inst.zone}.c.${GCE_PROJECT}.internal`,
              image: `projects/${inst.plan.image.project}/global/images/${inst.plan.image.name}`,
              attributes: inst.metadata,
              ...(inst.serviceAccount ? { serviceAccount: inst.serviceAccount } : {}),
              scheduling: {
                automaticRestart: inst.plan.scheduling.automaticRestart,
                onHostMaintenance: inst.plan.scheduling.onHostMaintenance,
                preemptible: inst.plan.scheduling.preemptible,
                provisioningModel: inst.plan.scheduling.provisioningModel,
              },
              preempted: inst.preempted,
              networkIP: inst.networkIP,
              ...(inst.natIP ? { natIP: inst.natIP } : {}),
              mac: inst.mac,
            }
          : undefined;
      answerMetadata(req, res, view, md[2] ?? '', url.searchParams, () => {
        if (!inst?.serviceAccount) return undefined;
        const t = tokens.issue('service-account', inst.serviceAccount.email, inst.serviceAccount.scopes, 3599, inst.id);
        return { token: t.token, expiresIn: 3599 };
      });
      return;
    }

    const started = Date.now();
    let action = `${req.method ?? 'GET'} ${url.pathname}`;
    let identity: string | undefined;
    const record = (status: number, reason?: string): void => {
      calls.push({ action, status, ...(reason ? { reason } : {}), ...(identity ? { identity } : {}), at: started, ms: Date.now() - started });
    };

    if (opts.latencyMs) await sleep(opts.latencyMs);

    // Security Token Service.
    if (url.pathname === '/sts/v1/token') {
      action = 'sts.token global';
      if (req.method !== 'POST') {
        record(404);
        res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8' }).end(notFoundPage(url.pathname));
        return;
      }
      const fault = opts.faults.take('gce', action);
      if (fault?.delayMs) await sleep(fault.delayMs);
      if (applyReset(fault, res)) return;
      if (fault?.code) {
        const status = fault.status ?? 503;
        record(status, fault.code);
        respondJson(res, status, { error: fault.code, error_description: fault.message ?? 'The service is currently unavailable.' }, retryAfter(fault));
        return;
      }
      const answer = stsToken(req.headers['content-type'], body, subjectToken, tokens);
      record(answer.status, answer.reason);
      respondJson(res, answer.status, answer.body);
      return;
    }

    // IAM Credentials.
    const iam = /^\/iamcredentials\/v1\/projects\/([^/]+)\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(url.pathname);
    if (iam && req.method === 'POST') {
      action = 'iamcredentials.generateAccessToken global';
      const caller = tokens.lookup(/^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '');
      identity = caller?.identity;
      const fault = opts.faults.take('gce', action);
      if (fault?.delayMs) await sleep(fault.delayMs);
      if (applyReset(fault, res)) return;
      if (fault?.code) {
        const status = fault.status ?? 503;
        record(status, fault.code);
        respondJson(
          res,
          status,
          { error: { code: status, message: fault.message ?? 'The service is currently unavailable.', status: fault.code } },
          retryAfter(fault),
        );
        return;
      }
      const answer = generateAccessToken(decodeURIComponent(iam[2]!), req.headers.authorization, body, tokens);
      record(answer.status, answer.reason);
      respondJson(res, answer.status, answer.body);
      return;
    }

    // Compute Engine.
    const r = route(req.method ?? 'GET', url.pathname);
    if (!r) {
      record(404, 'notFound');
      res.writeHead(404, { 'content-type': 'text/html; charset=UTF-8' }).end(notFoundPage(url.pathname));
      return;
    }
    action = `${r.method} ${r.scope}`;
    const fault0: { fault?: Fault } = {};
    try {
      // Query parameters the method does not bind are refused.
      for (const key of new Set(url.searchParams.keys())) {
        const bare = key.startsWith('$') ? key.slice(1) : key;
        if (!SYSTEM_PARAMS.has(bare) && !r.params.includes(key)) throw unknownQuery(key);
      }
      // The body.
      let parsed: J | undefined;
      if (req.method === 'POST') {
        const textBody = body.toString('utf8');
        let value: unknown = undefined;
        if (textBody.trim() !== '') {
          try {
            value = JSON.parse(textBody);
          } catch (err) {
            throw new GceError(400, 'parseError', `Invalid JSON payload received. ${(err as Error).message}`, { status: 'INVALID_ARGUMENT' });
          }
        }
        if (r.method === 'instances.insert') {
          if (value === undefined || typeof value !== 'object' || value === null || Array.isArray(value)) {
            throw new GceError(400, 'invalid', 'Invalid JSON payload received. Expected an object for the instance resource.', { status: 'INVALID_ARGUMENT' });
          }
          parsed = value as J;
        }
      }
      // Authentication, then scopes.
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!bearer) throw missingCredentials('compute.googleapis.com');
      const caller = tokens.lookup(bearer[1]!);
      if (!caller) throw invalidCredentials();
      identity = caller.identity;
      const scopes = caller.scopes;
      const scoped = scopes.includes(SCOPE_CLOUD_PLATFORM) || scopes.includes(SCOPE_COMPUTE) || (!r.write && scopes.includes(SCOPE_COMPUTE_READONLY));
      if (!scoped) throw insufficientScopes('compute.googleapis.com', serviceMethod(r.method));

      // Faults.
      const fault = opts.faults.take('gce', action);
      fault0.fault = fault;
      if (fault?.delayMs) await sleep(fault.delayMs);
      if (applyReset(fault, res)) return;
      const passToInsert = r.method === 'instances.insert' && fault?.code !== undefined && (fault.code === 'QUOTA_EXCEEDED' || CAPACITY_CODES.has(fault.code));
      if (fault?.code && !passToInsert) throw faultError(fault);

      // Project, zone, permission.
      const imageRead = r.publicRead === true;
      if (imageRead ? !IMAGE_PROJECTS.has(r.project) : r.project !== GCE_PROJECT) {
        throw notFound(imageRead ? r.resource : `projects/${r.project}`);
      }
      if (r.scope !== 'global') requireZone(r.scope);
      const permitted = (imageRead && PUBLIC_IMAGE_PROJECTS.has(r.project)) || hasPermission(caller.identity, r.permission);
      if (!permitted) {
        const resource = r.method === 'instances.insert' ? `${r.resource}/${typeof parsed?.name === 'string' ? parsed.name : ''}` : r.resource;
        throw forbidden(r.permission, resource);
      }

      const answer = await handle({ route: r, q: url.searchParams, body: parsed, caller, ...(passToInsert ? { fault } : {}) });
      record(answer.status);
      respondJson(res, answer.status, answer.body);
    } catch (err) {
      if (err instanceof GceError) {
        const headers = fault0.fault ? retryAfter(fault0.fault) : {};
        record(err.code, err.reason);
        respondJson(res, err.code, err.body(), { ...headers, ...(err.extra.headers ?? {}) });
        return;
      }
      throw err;
    }
  });

  function retryAfter(f: Fault): Record<string, string> {
    return f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {};
  }

  function faultError(f: Fault): GceError {
    const code = f.code!;
    if (code === 'rateLimitExceeded' || code === 'RATE_LIMIT_EXCEEDED') {
      return new GceError(f.status ?? 403, 'rateLimitExceeded', f.message ?? FAULT_DEFAULTS.rateLimitExceeded!.message, {
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'RATE_LIMIT_EXCEEDED',
            domain: 'googleapis.com',
            metadata: { service: 'compute.googleapis.com', quota_metric: 'compute.googleapis.com/default', quota_limit: 'defaultPerMinutePerProject', consumer: `projects/${GCE_PROJECT_NUMBER}` },
          },
        ],
      });
    }
    if (code === 'QUOTA_EXCEEDED') return new GceError(f.status ?? 403, 'quotaExceeded', f.message ?? 'Quota exceeded.');
    const known = FAULT_DEFAULTS[code];
    const status = f.status ?? known?.status ?? 503;
    return new GceError(status, code, f.message ?? known?.message ?? 'The service is currently unavailable.');
  }

  // ----- test controls -----

  async function preempt(zone: string, name: string, how: { noticeMs?: number } = {}): Promise<void> {
    const inst = live.get(`${zone}/${name}`);
    if (!inst) throw new Error(`no live instance ${zone}/${name}`);
    if (!inst.preemptible) throw new Error(`${zone}/${name} is not a Spot or preemptible instance`);
    if (inst.status !== 'RUNNING' && inst.status !== 'STAGING' && inst.status !== 'PROVISIONING') return;
    inst.preempted = true;
    if (how.noticeMs && how.noticeMs > 0) await sleep(how.noticeMs);
    // The instance may have ended meanwhile; applyTermination leaves an ended one as it is.
    if (closed) return;
    await applyTermination(inst, 'preempted');
  }

  function credentialsFile(dir: string): string {
    fs.mkdirSync(dir, { recursive: true });
    const tokenFile = path.join(dir, 'github-oidc-token');
    fs.writeFileSync(tokenFile, subjectToken, { mode: 0o600 });
    const file = path.join(dir, 'gcp-credentials.json');
    const config = {
      type: 'external_account',
      audience: WIF_AUDIENCE,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: `${server.url}/sts/v1/token`,
      service_account_impersonation_url: `${server.url}/iamcredentials/v1/projects/-/serviceAccounts/${GCE_SERVICE_ACCOUNTS.deployer}:generateAccessToken`,
      credential_source: { file: tokenFile },
    };
    fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    return file;
  }

  function leftovers(): string[] {
    const lines: string[] = [];
    for (const i of all) {
      if (!i.deleted) {
        const labels = Object.entries(i.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ');
        lines.push(
          `GCE instance ${i.name} (id ${i.id}, ${i.machineType}, ${i.provisioningModel}, ${i.zone}) is ${i.status}${i.status === 'TERMINATED' ? ' (stopped: its disks are still billed)' : ''}${labels ? `; labels ${labels}` : ''}`,
        );
      }
    }
    for (const d of allDisks) {
      if (d.state === 'detached') {
        lines.push(`GCE disk ${d.name} (${d.sizeGb} GB ${d.type}, ${d.zone}) was left after instance ${d.instanceName} was deleted: autoDelete was false`);
      }
    }
    return lines;
  }

  return {
    url: server.url,
    credentialsFile,
    instances: () => [...all],
    instance: (zone, name) => live.get(`${zone}/${name}`) ?? all.findLast((i) => i.zone === zone && i.name === name),
    disks: () => [...allDisks],
    calls,
    preempt,
    leftovers,
    ownsMachine: (m) => owned.has(m),
    close: async () => {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const op of ops.values()) notify(op);
      await server.close();
      await Promise.all(all.map((i) => i.machine?.kill()));
    },
  };
}
