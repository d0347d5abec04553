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
 * Implemented: instances insert, get, delete, list, aggregatedList, getSerialPortOutput,
 * setMetadata;
 * zoneOperations get and wait; machineTypes and acceleratorTypes get, list, aggregatedList;
 * images get and getFromFamily; zones get and list. Instances really boot: the `startup-script`
 * metadata item runs as a sandbox machine (machine.ts), which finds its metadata server through
 * `GCE_METADATA_HOST`; a guest `shutdown` leaves the instance TERMINATED (its disks still bill),
 * and `maxRunDuration` and Spot preemption apply `instanceTerminationAction`.
 */
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { type Answer, type Fault, type FaultPlan, pipeline } from './core/index.js';
import { serve } from './http.js';
import type { Machine, MachineFleet } from './machine.js';
import { type Caller, authenticate, authorize, jsonRefusal } from './gce/access.js';
import { federatedToken, generateAccessToken } from './gce/auth.js';
import { GCE_SERVICE_ACCOUNTS, SCOPE_CLOUD_PLATFORM, WIF_AUDIENCE } from './gce/catalog.js';
import { CAPACITY_CODES } from './gce/controllers/instances.js';
import { MD_PREFIX, metadataView, preempt } from './gce/controllers/lifecycle.js';
import { GceError, faultError } from './gce/errors.js';
import { answerMetadata } from './gce/metadata.js';
import { type GceRequest, Refusal, dispatch, identify } from './gce/routes.js';
import { DEFAULT_PROJECT_SETTINGS, type GceProjectSettings, GceStore } from './gce/store.js';

export type { GceProjectSettings } from './gce/store.js';

export {
  ACCELERATORS as GCE_ACCELERATORS,
  GCE_PROJECT,
  GCE_PROJECT_NUMBER,
  GCE_SERVICE_ACCOUNTS,
  IMAGES as GCE_IMAGES,
  MACHINE_TYPES as GCE_MACHINE_TYPES,
  NETWORKS as GCE_NETWORKS,
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
  /** Network tags (`tags.items`), which firewall rules target. */
  networkTags: string[];
  /** Metadata items by key (`startup-script`, `block-project-ssh-keys`, ...). */
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
  /** The external IP (an access config), if it has one. */
  natIP?: string;
  /** Its network and subnetwork, by name. */
  network: string;
  subnetwork: string;
  requestId?: string;
  /** The machine running its startup script, once it is RUNNING. */
  machine?: Machine;
  /** The serial console: boot banner and the machine's output. */
  console(): string;
}

export interface GceCall {
  /** `instances.insert us-central1-a`, `zoneOperations.wait us-central1-a`, `sts.token global`, ... */
  action: string;
  /** 0 when an injected reset dropped the connection. */
  status: number;
  /** The error's reason, for failed calls. */
  reason?: string;
  /** Who called (service account email or federated principal), when known. */
  identity?: string;
  /** The request parameters faults match on (routes.ts): `zone`, `machineType`, `spot`, `instance`, ... */
  params?: Record<string, string>;
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
  /** What the project is like: its networks, its organisation policy, the deployer's role. */
  project?: Partial<GceProjectSettings>;
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
  /** A Compute Engine access token of a service account of the project (`admin` for an owner's), with cloud-platform. */
  accessToken(identity: string): string;
  /** Changes what the project is like from now on; returns the settings as they were. */
  configure(settings: Partial<GceProjectSettings>): GceProjectSettings;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The server: one loopback server for Compute, STS, IAM Credentials and the metadata servers

const JSON_HEADERS = { 'content-type': 'application/json; charset=UTF-8', vary: 'Origin, X-Origin, Referer' };
const MD_PATH = /^\/_gce_md\/([^/?]+)\/computeMetadata\/v1(\/[^?]*)?$/;

const json = (status: number, body: unknown, headers: Record<string, string> = {}, code?: string): Answer => ({
  status,
  body: JSON.stringify(body),
  headers: { ...JSON_HEADERS, ...headers },
  ...(code ? { code } : {}),
});
const retryAfter = (f: Fault): Record<string, string> =>
  f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {};

/**
 * A fault's error in the API's own shape; undefined hands it to the method (insert reports a
 * stockout in its operation, and a quota error naming the quota the VM counts against).
 */
function faultAnswer(fault: Fault, request: GceRequest): unknown {
  if (!fault.code) return undefined;
  const message = fault.message ?? 'The service is currently unavailable.';
  const status = fault.status ?? 503;
  if (request.api === 'sts') {
    return new Refusal(
      status,
      JSON.stringify({ error: fault.code, error_description: message }),
      JSON_HEADERS['content-type'],
      fault.code,
      retryAfter(fault),
    );
  }
  if (request.api === 'iam') {
    const body = { error: { code: status, message, status: fault.code } };
    return new Refusal(status, JSON.stringify(body), JSON_HEADERS['content-type'], fault.code, retryAfter(fault));
  }
  const reported = fault.code === 'QUOTA_EXCEEDED' || CAPACITY_CODES.has(fault.code);
  if (request.route?.method === 'instances.insert' && reported) return undefined;
  return faultError({ ...fault, code: fault.code });
}

async function handle(store: GceStore, request: GceRequest, who: Caller, fault: Fault | undefined): Promise<Answer> {
  if (request.api === 'sts') {
    const a = federatedToken(who.exchange!.scopes, store.tokens);
    return json(a.status, a.body);
  }
  if (request.api === 'iam') {
    const a = generateAccessToken(request.email!, request.body, store.tokens);
    if (a.status !== 200) throw jsonRefusal(a);
    return json(a.status, a.body);
  }
  return json(200, await dispatch(store, request, who.token!.identity, fault));
}

function errorAnswer(err: unknown): Answer {
  if (err instanceof GceError) return json(err.code, err.body(), err.extra.headers ?? {}, err.reason);
  if (err instanceof Refusal) {
    const headers = {
      ...(err.contentType.startsWith('application/json') ? JSON_HEADERS : { 'content-type': err.contentType }),
      ...err.headers,
    };
    return { status: err.status, body: err.payload, headers, ...(err.reason ? { code: err.reason } : {}) };
  }
  throw err;
}

/** A VM's metadata server: not the Compute API, so outside the pipeline (no latency, no faults, no call log). */
function serveMetadata(store: GceStore, req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
  const md = MD_PATH.exec(url.pathname);
  if (!md) {
    res.destroy();
    return;
  }
  const inst = store.byId.get(decodeURIComponent(md[1]!));
  answerMetadata(req, res, metadataView(inst), md[2] ?? '', url.searchParams, () => {
    if (!inst?.serviceAccount) return undefined;
    const t = store.tokens.issue(
      'service-account',
      inst.serviceAccount.email,
      inst.serviceAccount.scopes,
      3599,
      inst.id,
    );
    return { token: t.token, expiresIn: 3599 };
  });
}

export async function startFakeGce(opts: FakeGceOptions): Promise<FakeGce> {
  const store = new GceStore({
    machines: opts.machines,
    bootDelayMs: opts.bootDelayMs ?? 100,
    secondMs: opts.secondMs ?? 1000,
  });
  const api = pipeline<GceRequest, Caller>({
    service: 'gce',
    faults: opts.faults,
    ...(opts.latencyMs ? { latencyMs: opts.latencyMs } : {}),
    identify: (req, body, url) => identify(req, body, url),
    authenticate: (_req, _body, request) => authenticate(store, request),
    authorize: (who, request) => authorize(who, request, store),
    identityOf: (who) => who.token?.identity,
    faultError: faultAnswer,
    handle: (request, who, fault) => handle(store, request, who, fault),
    errorAnswer,
    record: (call) =>
      store.calls.push({
        action: call.action,
        status: call.status,
        ...(call.code ? { reason: call.code } : {}),
        ...(call.identity ? { identity: call.identity } : {}),
        ...(call.params ? { params: call.params } : {}),
        at: call.at,
        ms: call.ms,
      }),
  });
  const server = await serve('gce', (req, body, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname.startsWith(`${MD_PREFIX}/`)) return serveMetadata(store, req, res, url);
    return api(req, body, res);
  });
  store.url = server.url;
  store.settings = { ...DEFAULT_PROJECT_SETTINGS, ...opts.project };

  return {
    url: server.url,
    credentialsFile: (dir) => credentialsFile(dir, server.url, store.subjectToken),
    instances: () => [...store.all],
    instance: (zone, name) => store.instance(zone, name),
    disks: () => [...store.allDisks],
    calls: store.calls,
    preempt: (zone, name, how = {}) => preempt(store, zone, name, how.noticeMs),
    leftovers: () => store.leftovers(),
    ownsMachine: (m) => store.owned.has(m),
    accessToken: (identity) => store.tokens.issue('service-account', identity, [SCOPE_CLOUD_PLATFORM], 3600).token,
    configure: (settings) => {
      const before = store.settings;
      store.settings = { ...before, ...settings };
      return before;
    },
    close: async () => {
      store.close();
      await server.close();
      await Promise.all(store.all.map((i) => i.machine?.kill()));
    },
  };
}

/** The `external_account` configuration google-github-actions/auth writes, and the GitHub OIDC token it points to. */
function credentialsFile(dir: string, url: string, subjectToken: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const tokenFile = path.join(dir, 'github-oidc-token');
  fs.writeFileSync(tokenFile, subjectToken, { mode: 0o600 });
  const file = path.join(dir, 'gcp-credentials.json');
  const config = {
    type: 'external_account',
    audience: WIF_AUDIENCE,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: `${url}/sts/v1/token`,
    service_account_impersonation_url: `${url}/iamcredentials/v1/projects/-/serviceAccounts/${GCE_SERVICE_ACCOUNTS.deployer}:generateAccessToken`,
    credential_source: { file: tokenFile },
  };
  fs.writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return file;
}
