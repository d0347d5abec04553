/**
 * Fake Azure: Microsoft Entra ID, Azure Resource Manager and each VM's instance metadata
 * service, driven by the real `@azure/identity` credentials and ARM clients
 * (`@azure/arm-resources`, `-network`, `-compute`, `-authorization`). See azure/FINDINGS.md for
 * what was measured against them.
 *
 * One https loopback server (the sandbox CA, sandbox/tls) answers:
 * - Entra: `GET /{tenant}/v2.0/.well-known/openid-configuration`, `POST /{tenant}/oauth2/v2.0/token`
 *   (client credentials with a secret or a federated client assertion).
 * - ARM: resource groups (createOrUpdate, get, list with a tag `$filter`, delete with 202 +
 *   Location, `forceDeletionTypes`), network security groups, virtual networks, public IPs,
 *   network interfaces and virtual machines (201 + Azure-AsyncOperation), a VM's instanceView and
 *   retrieveBootDiagnosticsData (a SAS URL of the serial log blob, served under `/_blob/`), role
 *   assignments. Every call needs a bearer token the fake issued for this ARM audience, the exact
 *   api-version the SDK sends (azure/catalog.ts), and a role at the scope.
 * One plain http server answers IMDS (`/_imds/{vmId}/metadata/...`), as a VM sees
 * `http://169.254.169.254`.
 *
 * VMs really boot: the decoded `customData` runs as a sandbox machine (machine.ts) when the VM's
 * creation succeeds. A guest `shutdown` leaves the VM stopped (PowerState/stopped: still billed).
 * Deleting a group takes everything in it (the VM's machine is killed) and the role assignments
 * scoped inside it. `evict(group)` evicts a Spot VM. Faults come from the shared FaultPlan with
 * `service: 'azure'` and actions `<resource>.<verb> <location>`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { type Fault, type FaultPlan, applyReset, sleep } from './core/index.js';
import type { GpuSpec, Machine, MachineFleet } from './machine.js';
import {
  AZURE_API_VERSIONS,
  AZURE_APPS,
  AZURE_CA_FILE,
  AZURE_SUBSCRIPTION_ID,
  AZURE_TENANT_ID,
  type AzureApp,
  type AzureAppName,
  FEDERATION_AUDIENCE,
  IMDS_VERSIONS,
  ROLE_IDS,
  TLS_DIR,
  gpuOfSize,
  imageHasNvidiaDriver,
} from './azure/catalog.js';

export {
  AZURE_API_VERSIONS,
  AZURE_APPS,
  AZURE_CA_FILE,
  AZURE_SUBSCRIPTION_ID,
  AZURE_TENANT_ID,
  FEDERATION_AUDIENCE as AZURE_FEDERATION_AUDIENCE,
  ROLE_IDS as AZURE_ROLE_IDS,
} from './azure/catalog.js';
export type { AzureApp, AzureAppName } from './azure/catalog.js';

type J = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Inventory

export interface AzureGroup {
  /** `/subscriptions/S/resourceGroups/NAME`. */
  id: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  provisioningState: 'Succeeded' | 'Deleting';
  /** Gone (its deletion finished); `groups()` keeps it. */
  deleted: boolean;
  /** Who deleted it: an app name or `vm:<group>`. */
  deletedBy?: string;
  createdAt: Date;
  deletedAt?: Date;
}

export type AzurePowerState = 'starting' | 'running' | 'stopped' | 'deallocated' | 'deleted';

export interface AzureVm {
  /** The ARM resource id. */
  id: string;
  /** The VM's unique id (`vmId`): its machine's id, and its IMDS path. */
  vmId: string;
  group: string;
  name: string;
  location: string;
  vmSize: string;
  priority: 'Regular' | 'Spot' | 'Low';
  evictionPolicy?: string;
  billingProfile?: { maxPrice?: number };
  /** The system-assigned identity's principal (object) id. */
  principalId?: string;
  /** The VM's `identity`, as ARM answers it. */
  identity?: { type: 'SystemAssigned'; principalId: string; tenantId: string };
  imageReference: J;
  osDiskDeleteOption?: string;
  nicDeleteOption?: string;
  /** Decoded `osProfile.customData`: the startup script. */
  customData?: string;
  tags: Record<string, string>;
  provisioningState: 'Creating' | 'Succeeded' | 'Failed';
  /** The async create's error code, for a Failed VM. */
  failureCode?: string;
  powerState: AzurePowerState;
  /** The GPUs `nvidia-smi` shows (only with a driver in the image). */
  gpu?: GpuSpec;
  deleted: boolean;
  endedReason?: 'deleted by its own identity' | 'deleted' | 'evicted';
  /** A Spot eviction was published on the scheduled events endpoint. */
  evictionNotice: boolean;
  createdAt: Date;
  endedAt?: Date;
  /** The machine running its customData, once created. */
  machine?: Machine;
  /** The serial console: boot banner and the machine's output. */
  console(): string;
}

export interface AzureRoleAssignment {
  id: string;
  name: string;
  scope: string;
  principalId: string;
  principalType?: string;
  roleDefinitionId: string;
  /** Who created it (app name). */
  createdBy: string;
}

export interface AzureCall {
  /** `virtualMachines.createOrUpdate eastus`, `resourceGroups.delete global`, `oauth2.token global`, `imds.token <vmId>`, ... */
  action: string;
  status: number;
  /** An app name (`launcher`), `vm:<group>` for a VM's managed identity, when the caller had a token. */
  identity?: string;
  /** ARM's `error.code` or Entra's `error`, for failed calls. */
  code?: string;
  service: 'entra' | 'arm' | 'imds' | 'blob';
  method: string;
  /** Path without the query (repeated slashes collapsed). */
  path: string;
  /** The path as sent, when it differed (`//subscriptions/...`). */
  rawPath?: string;
  apiVersion?: string;
  /** The action without its location: `virtualMachines.asyncOperation`, `token client_secret`, ... */
  op: string;
  /** An async operation's status as answered: InProgress, Succeeded, Failed. */
  lroStatus?: string;
  headers: Record<string, string | string[] | undefined>;
  body?: string;
  at: number;
  ms: number;
}

export interface FakeAzureOptions {
  faults: FaultPlan;
  machines: MachineFleet;
  /** Added to every Entra and ARM call (not IMDS or blobs). */
  latencyMs?: number;
  /** How long a VM create's async operation runs before the VM is up and its machine boots. Default 100 ms. */
  bootDelayMs?: number;
  /** How long a network create's async operation runs. Default 30 ms. */
  lroMs?: number;
  /** How long a resource group's deletion takes. Default 30 ms. */
  deleteMs?: number;
  /** `Retry-After` (seconds) on 201/202 and InProgress answers; 0 lets the client's own interval rule. Default 0. */
  retryAfterSeconds?: number;
}

export interface FakeAzure {
  /** `https://127.0.0.1:PORT`: Entra and ARM (the authority host and the ARM endpoint). */
  url: string;
  /** `http://127.0.0.1:PORT`: the IMDS servers, one per VM under `/_imds/<vmId>`. */
  imdsUrl: string;
  tenantId: string;
  subscriptionId: string;
  calls: AzureCall[];
  /** Every resource group ever created, deleted ones included, in creation order. */
  groups(): AzureGroup[];
  /** Every VM ever created, deleted ones included, in creation order. */
  vms(): AzureVm[];
  /** Role assignments that exist now. */
  roleAssignments(): AzureRoleAssignment[];
  /**
   * Evicts the Spot VM of a group: publishes a Preempt scheduled event, waits `noticeMs` (default
   * 0; Azure gives at least 30 s), then applies its evictionPolicy (Delete: the VM and its OS disk
   * go, the group and its network stay; Deallocate: the VM is deallocated). Resolves once applied.
   */
  evict(group: string, opts?: { noticeMs?: number }): Promise<void>;
  /** One line per resource group not deleted, per VM still running or stopped, and per machine of a deleted VM still on. */
  leftovers(): string[];
  ownsMachine(m: Machine): boolean;
  /** Writes a GitHub-Actions-like OIDC JWT (aud api://AzureADTokenExchange) that the app trusts; returns its path. */
  federatedTokenFile(dir: string, app?: AzureAppName): string;
  /** `http://127.0.0.1:PORT/_imds/<vmId>`, the base a VM uses instead of `http://169.254.169.254`. */
  imdsBase(vm: AzureVm): string;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Internals

class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: J = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Entra's OAuth error body: `{error, error_description: "AADSTSnnn: ...", error_codes, ...}`. */
class EntraError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly aadsts: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface Issued {
  token: string;
  principal: string;
  appId: string;
  /** App name, or `vm:<group>`. */
  identity: string;
  audience: string;
  expiresAt: number;
}

type OpResult = { status: 'Succeeded' } | { status: 'Failed'; error: { code: string; message: string } };

interface AsyncOp {
  id: string;
  started: Date;
  doneAt: number;
  /** Applies the result once (resource state), returns the final status. */
  finish: () => OpResult;
  result?: OpResult;
}

interface Resource {
  id: string;
  type: string;
  name: string;
  location: string;
  body: J;
}

interface Group extends AzureGroup {
  resources: Map<string, Resource>;
  deletion?: { doneAt: number };
}

interface Vm extends AzureVm, Resource {
  serialBanner: string[];
  /** Lower-case id of its primary NIC. */
  nicId: string;
}

interface Answer {
  status: number;
  json?: J;
  headers?: Record<string, string>;
}

interface Route {
  op: string;
  location: string;
  run: (fault: Fault | undefined) => Answer;
}

const uuid = (): string => crypto.randomUUID();
const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url');
const lower = (s: string): string => s.toLowerCase();
const VM_FAULTS = new Set(['SkuNotAvailable', 'OperationNotAllowed', 'AllocationFailed', 'ZonalAllocationFailed', 'OverconstrainedAllocationRequest']);
const ASYNC_VM_FAULTS = new Set(['AllocationFailed', 'ZonalAllocationFailed', 'OverconstrainedAllocationRequest']);
const ALLOCATION_MESSAGE =
  'Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance';

export async function startFakeAzure(opts: FakeAzureOptions): Promise<FakeAzure> {
  const lroMs = opts.lroMs ?? 30;
  const vmLroMs = opts.bootDelayMs ?? 100;
  const deleteMs = opts.deleteMs ?? 30;
  const retryAfter = String(opts.retryAfterSeconds ?? 0);
  const signingKey = crypto.randomBytes(32);
  const tenant = AZURE_TENANT_ID;
  const sub = AZURE_SUBSCRIPTION_ID;
  const subScope = `/subscriptions/${sub}`;
  const calls: AzureCall[] = [];
  const groups = new Map<string, Group>(); // live, by lower-case name
  const allGroups: Group[] = [];
  const allVms: Vm[] = [];
  let assignments: AzureRoleAssignment[] = [];
  const tokens = new Map<string, Issued>();
  const ops = new Map<string, AsyncOp>();
  const deletions = new Map<string, Group>();
  const federated = new Map<string, AzureAppName>(); // assertion -> app
  const vmIdentities = new Map<string, Vm>(); // principalId -> vm
  const blobSigs = new Map<string, { vm: Vm; expires: number }>();
  const timers = new Set<NodeJS.Timeout>();
  const owned = new Set<Machine>();
  let closed = false;

  let url = '';
  let imdsUrl = '';

  function later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, ms);
    timers.add(t);
  }

  // -------------------------------------------------------------------------------------------
  // Tokens

  function jwt(claims: J): string {
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256', kid: 'sandbox' }));
    const body = b64url(JSON.stringify(claims));
    const sig = crypto.createHmac('sha256', signingKey).update(`${head}.${body}`).digest('base64url');
    return `${head}.${body}.${sig}`;
  }

  function issue(principal: string, appId: string, identity: string, audience: string, lifetimeS = 3599): Issued {
    const now = Math.floor(Date.now() / 1000);
    const token = jwt({ aud: audience, iss: `https://sts.windows.net/${tenant}/`, iat: now, nbf: now, exp: now + lifetimeS, appid: appId, idtyp: 'app', oid: principal, sub: principal, tid: tenant, jti: uuid() });
    const rec = { token, principal, appId, identity, audience, expiresAt: (now + lifetimeS) * 1000 };
    tokens.set(token, rec);
    return rec;
  }

  /** The resource ARM accepts tokens for: the endpoint, with or without its trailing slash. */
  const armAudiences = (): string[] => [url, `${url}/`];

  // -------------------------------------------------------------------------------------------
  // Entra ID

  function appByClientId(id: string): [AzureAppName, AzureApp] | undefined {
    const e = Object.entries(AZURE_APPS).find(([, a]) => a.clientId === id);
    return e as [AzureAppName, AzureApp] | undefined;
  }

  function entraRoute(pathname: string): { op: string; tenantOk: string } {
    const m = /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/token)$/.exec(pathname);
    if (!m) throw new EntraError(404, 'invalid_request', 90002, 'Unknown path.');
    return { op: m[2]!.startsWith('v2.0') ? 'openid-configuration' : 'oauth2.token', tenantOk: m[1]! };
  }

  function entra(req: http.IncomingMessage, pathname: string, body: Buffer, call: AzureCall): { status: number; json: J } {
    const { op, tenantOk: t } = entraRoute(pathname);
    if (t !== tenant) {
      throw new EntraError(400, 'invalid_tenant', 90002, `Tenant '${t}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    }
    if (op === 'openid-configuration') {
      if (req.method !== 'GET') throw new EntraError(405, 'invalid_request', 900561, 'The endpoint only accepts GET requests.');
      const base = `${url}/${tenant}`;
      return {
        status: 200,
        json: {
          token_endpoint: `${base}/oauth2/v2.0/token`,
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
          jwks_uri: `${base}/discovery/v2.0/keys`,
          response_modes_supported: ['query', 'fragment', 'form_post'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['RS256'],
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
          scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
          issuer: `${base}/v2.0`,
          request_uri_parameter_supported: false,
          userinfo_endpoint: `${url}/oidc/userinfo`,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
          http_logout_supported: true,
          frontchannel_logout_supported: true,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'tid'],
          kerberos_endpoint: `${base}/kerberos`,
          tenant_region_scope: 'NA',
          cloud_instance_name: 'sandbox',
          cloud_graph_host_name: 'graph.windows.net',
          msgraph_host: 'graph.microsoft.com',
          rbac_url: 'https://pas.windows.net',
        },
      };
    }
    if (req.method !== 'POST') throw new EntraError(405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
    if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      throw new EntraError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
    }
    call.op = 'token';
    const form = new URLSearchParams(body.toString('utf8'));
    call.body = [...form.entries()]
      .filter(([k]) => !/secret|assertion$/.test(k))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const grant = form.get('grant_type');
    if (grant !== 'client_credentials') {
      throw new EntraError(400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant}'.`);
    }
    const found = appByClientId(form.get('client_id') ?? '');
    if (!found) {
      throw new EntraError(400, 'unauthorized_client', 700016, `Application with identifier '${form.get('client_id')}' was not found in the directory 'sandbox'.`);
    }
    const [appName, app] = found;
    const assertion = form.get('client_assertion');
    if (assertion !== null) {
      call.op = 'token client_assertion';
      if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
        throw new EntraError(400, 'invalid_request', 50027, 'Invalid JWT token. The client assertion type is not supported.');
      }
      if (federated.get(assertion) !== appName) {
        throw new EntraError(
          400,
          'invalid_client',
          700213,
          'No matching federated identity record found for presented assertion subject. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.',
        );
      }
    } else {
      call.op = 'token client_secret';
      if (form.get('client_secret') !== app.secret) {
        throw new EntraError(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
      }
    }
    const scope = form.get('scope') ?? '';
    const resources = scope.split(' ').filter((s) => s.endsWith('/.default'));
    if (resources.length !== 1) {
      throw new EntraError(
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    }
    const resource = resources[0]!.slice(0, -'/.default'.length);
    if (!armAudiences().includes(resource) && !armAudiences().includes(`${resource}/`)) {
      throw new EntraError(400, 'invalid_resource', 500011, `The resource principal named ${resource} was not found in the tenant named sandbox.`);
    }
    const t2 = issue(app.objectId, app.clientId, appName, `${url}/`);
    call.identity = appName;
    return { status: 200, json: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: t2.token } };
  }

  // -------------------------------------------------------------------------------------------
  // ARM authorization

  function authenticate(req: http.IncomingMessage): Issued {
    const h = req.headers.authorization;
    if (!h) {
      throw new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.", {}, {
        'www-authenticate': `Bearer authorization_uri="${url}/${tenant}", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`,
      });
    }
    const m = /^Bearer (.+)$/.exec(h);
    const rec = m ? tokens.get(m[1]!) : undefined;
    if (!rec) throw new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
    if (rec.expiresAt < Date.now()) throw new ArmError(401, 'ExpiredAuthenticationToken', 'The access token expiry UTC time is earlier than current UTC time.');
    if (!armAudiences().includes(rec.audience)) {
      throw new ArmError(
        401,
        'InvalidAuthenticationTokenAudience',
        `The access token has been obtained for wrong audience or resource '${rec.audience}'. It should exactly match with one of the allowed audiences '${url}/','${url}'.`,
      );
    }
    return rec;
  }

  /** Whether the principal may do `action` at `scope`: Owner anything, Contributor anything but Microsoft.Authorization writes and deletes. */
  function allowed(principal: string, action: string, scope: string): boolean {
    const roles: Array<{ scope: string; role: string }> = [];
    for (const a of Object.values(AZURE_APPS)) {
      if (a.objectId === principal) roles.push({ scope: subScope, role: ROLE_IDS[a.role] });
    }
    for (const r of assignments) {
      if (r.principalId === principal) roles.push({ scope: r.scope, role: r.roleDefinitionId.split('/').pop() ?? '' });
    }
    return roles.some((r) => {
      const inScope = lower(scope) === lower(r.scope) || lower(scope).startsWith(`${lower(r.scope)}/`);
      if (!inScope) return false;
      if (r.role === ROLE_IDS.owner) return true;
      if (r.role === ROLE_IDS.contributor) return !/^Microsoft\.Authorization\/.*\/(write|delete)$/i.test(action);
      return false;
    });
  }

  function authorize(who: Issued, action: string, scope: string): void {
    if (!allowed(who.principal, action, scope)) {
      throw new ArmError(
        403,
        'AuthorizationFailed',
        `The client '${who.appId}' with object id '${who.principal}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // ARM helpers

  function apiVersion(q: URLSearchParams, expected: string, resourceType: string, location?: string): void {
    const v = q.get('api-version');
    if (v === null) throw new ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
    if (v !== expected) {
      if (location) {
        throw new ArmError(
          400,
          'NoRegisteredProviderFound',
          `No registered resource provider found for location '${location}' and API version '${v}' for type '${resourceType}'. The supported api-versions are '${expected}'.`,
        );
      }
      throw new ArmError(400, 'InvalidApiVersionParameter', `The api-version '${v}' is invalid. The supported versions are '${expected}'.`);
    }
  }

  function groupOr404(name: string): Group {
    const g = groups.get(lower(name));
    if (!g) throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
    return g;
  }

  function groupJson(g: Group): J {
    return {
      id: g.id,
      name: g.name,
      type: 'Microsoft.Resources/resourceGroups',
      location: g.location,
      ...(Object.keys(g.tags).length ? { tags: g.tags } : {}),
      properties: { provisioningState: g.provisioningState },
    };
  }

  function jsonBody(body: Buffer): J {
    try {
      const v: unknown = JSON.parse(body.toString('utf8'));
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as J;
    } catch {
      // fall through
    }
    throw new ArmError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.');
  }

  function startOp(provider: 'Microsoft.Network' | 'Microsoft.Compute', location: string, ms: number, finish: AsyncOp['finish']): string {
    const id = uuid();
    const op: AsyncOp = { id, started: new Date(), doneAt: Date.now() + ms, finish };
    ops.set(id, op);
    const version = provider === 'Microsoft.Compute' ? AZURE_API_VERSIONS.compute : AZURE_API_VERSIONS.network;
    // Time-based: the operation ends whether or not anybody polls.
    later(ms, () => settle(op));
    return `${url}/subscriptions/${sub}/providers/${provider}/locations/${location}/operations/${id}?api-version=${version}`;
  }

  function settle(op: AsyncOp): OpResult {
    op.result ??= op.finish();
    return op.result;
  }

  const ref = (v: unknown): string | undefined => (v && typeof v === 'object' && typeof (v as J).id === 'string' ? ((v as J).id as string) : undefined);

  function lookup(id: string | undefined, type: string): Resource | undefined {
    if (!id) return undefined;
    const m = new RegExp(`^/subscriptions/${sub}/resourceGroups/([^/]+)/providers/${type}/([^/]+)(/.*)?$`, 'i').exec(id);
    if (!m) return undefined;
    return groups.get(lower(m[1]!))?.resources.get(lower(`${type}/${m[2]}`));
  }

  function invalid(message: string, target?: string): ArmError {
    return new ArmError(400, 'InvalidParameter', message, target ? { target } : {});
  }

  const notAllowed = (method: string): ArmError => new ArmError(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
  const beingDeleted = (g: Group): ArmError =>
    new ArmError(409, 'ResourceGroupBeingDeleted', `The resource group '${g.name}' is in deprovisioning state and cannot perform this operation.`);

  // -------------------------------------------------------------------------------------------
  // Network

  function putNetwork(g: Group, kind: string, name: string, body: J): Answer {
    const type = `Microsoft.Network/${kind}`;
    const location = body.location;
    if (typeof location !== 'string' || !location) throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
    const props = (body.properties ?? {}) as J;
    const id = `/subscriptions/${sub}/resourceGroups/${g.name}/providers/${type}/${name}`;
    const key = lower(`${type}/${name}`);
    const existed = g.resources.has(key);
    const out: J = {
      name,
      id,
      etag: `W/"${uuid()}"`,
      type,
      location,
      ...(body.tags ? { tags: body.tags } : {}),
      properties: { ...props, provisioningState: 'Updating', resourceGuid: uuid() },
    };
    switch (kind) {
      case 'networkSecurityGroups':
        for (const r of (props.securityRules as J[] | undefined) ?? []) {
          const rp = (r.properties ?? {}) as J;
          if (!r.name || !rp.protocol || !rp.access || !rp.direction || typeof rp.priority !== 'number') {
            throw new ArmError(400, 'SecurityRuleInvalid', `Security rule ${String(r.name)} is missing name, protocol, access, direction or priority.`);
          }
        }
        break;
      case 'virtualNetworks': {
        const prefixes = ((props.addressSpace as J | undefined)?.addressPrefixes as string[] | undefined) ?? [];
        if (!prefixes.length) throw new ArmError(400, 'InvalidAddressPrefixFormat', 'Address prefixes are required.');
        const subnets = (props.subnets as J[] | undefined) ?? [];
        (out.properties as J).subnets = subnets.map((s) => {
          const sp = (s.properties ?? {}) as J;
          if (typeof sp.addressPrefix !== 'string' && !Array.isArray(sp.addressPrefixes)) {
            throw new ArmError(400, 'InvalidAddressPrefixFormat', `Subnet ${String(s.name)} has no address prefix.`);
          }
          const nsg = ref(sp.networkSecurityGroup);
          const found = nsg ? lookup(nsg, 'Microsoft.Network/networkSecurityGroups') : undefined;
          if (nsg && (!found || found.location !== location)) {
            throw new ArmError(
              400,
              'InvalidResourceReference',
              `Resource ${nsg} referenced by resource ${id}/subnets/${String(s.name)} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
            );
          }
          return { name: s.name, id: `${id}/subnets/${String(s.name)}`, type: `${type}/subnets`, properties: { ...sp, provisioningState: 'Succeeded' } };
        });
        break;
      }
      case 'publicIPAddresses': {
        const sku = (body.sku as J | undefined)?.name ?? 'Basic';
        if (sku !== 'Standard') throw new ArmError(400, 'BasicSkuPublicIpRetired', 'The fake only takes Standard public IPs (Basic SKU public IPs are retired).');
        if ((props.publicIPAllocationMethod ?? 'Dynamic') !== 'Static') {
          throw new ArmError(400, 'StandardSkuPublicIPAddressesMustBeStatic', `Standard sku publicIp ${id} must have AllocationMethod set to Static.`);
        }
        (out.properties as J).ipAddress = `20.0.${allVms.length % 250}.${(allGroups.length % 250) + 1}`;
        out.sku = { name: 'Standard', tier: 'Regional' };
        break;
      }
      case 'networkInterfaces': {
        const cfgs = (props.ipConfigurations as J[] | undefined) ?? [];
        if (!cfgs.length) throw new ArmError(400, 'NetworkInterfaceMustHaveIpConfiguration', 'A network interface needs at least one IP configuration.');
        (out.properties as J).ipConfigurations = cfgs.map((c) => {
          const cp = (c.properties ?? {}) as J;
          const subnet = ref(cp.subnet);
          const m = subnet ? /^(.*)\/subnets\/([^/]+)$/i.exec(subnet) : null;
          const vnet = m ? lookup(m[1]!, 'Microsoft.Network/virtualNetworks') : undefined;
          const hasSubnet = vnet && ((vnet.body.properties as J).subnets as J[] | undefined)?.some((s) => lower(String(s.name)) === lower(m![2]!));
          if (!m || !vnet || !hasSubnet) throw new ArmError(400, 'InvalidResourceReference', `Resource ${String(subnet)} referenced by resource ${id} was not found.`);
          if (vnet.location !== location) throw new ArmError(400, 'InvalidResourceReference', `Subnet ${subnet} and network interface ${id} are in different locations.`);
          const pip = ref(cp.publicIPAddress);
          const pipRes = pip ? lookup(pip, 'Microsoft.Network/publicIPAddresses') : undefined;
          if (pip && (!pipRes || pipRes.location !== location)) {
            throw new ArmError(400, 'InvalidResourceReference', `Resource ${pip} referenced by resource ${id} was not found.`);
          }
          return { name: c.name, id: `${id}/ipConfigurations/${String(c.name)}`, properties: { ...cp, privateIPAddress: '10.0.0.4', provisioningState: 'Succeeded' } };
        });
        break;
      }
      default:
        throw new ArmError(404, 'InvalidResourceType', `The resource type '${kind}' could not be found in the namespace 'Microsoft.Network' for api version '${AZURE_API_VERSIONS.network}'.`);
    }
    const res: Resource = { id, type, name, location, body: out };
    g.resources.set(key, res);
    const asyncUrl = startOp('Microsoft.Network', location, lroMs, () => {
      (res.body.properties as J).provisioningState = 'Succeeded';
      return { status: 'Succeeded' };
    });
    return { status: existed ? 200 : 201, json: structuredClone(out), headers: { 'azure-asyncoperation': asyncUrl, 'retry-after': retryAfter } };
  }

  // -------------------------------------------------------------------------------------------
  // Compute

  function quotaFamily(size: string, priority: string): string {
    if (priority === 'Spot') return 'Total Regional Low-priority vCPUs';
    // Standard_NC4as_T4_v3 → standardNCASv3_T4Family; Standard_D8s_v5 → standardDSv5Family.
    const m = /^Standard_([A-Z]+)\d*([a-z]*)(?:_([A-Z]\d+\w*?))?_v(\d+)$/.exec(size);
    if (!m) return `standard${size.replace(/^Standard_/, '').replace(/[0-9_]/g, '')}Family`;
    const [, fam, feats, accel, ver] = m;
    return `standard${fam}${feats!.toUpperCase()}v${ver}${accel ? `_${accel}` : ''}Family`;
  }

  function putVm(g: Group, name: string, body: J, fault: Fault | undefined): Answer {
    const type = 'Microsoft.Compute/virtualMachines';
    const id = `/subscriptions/${sub}/resourceGroups/${g.name}/providers/${type}/${name}`;
    const location = body.location;
    if (typeof location !== 'string' || !location) throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
    if (g.resources.has(lower(`${type}/${name}`))) throw new ArmError(409, 'Conflict', `The fake does not update VMs: ${id} exists.`);
    if (body.properties === undefined) throw invalid("Required parameter 'properties' is missing (null).", 'properties');
    const p = body.properties as J;
    const size = (p.hardwareProfile as J | undefined)?.vmSize;
    if (typeof size !== 'string' || !/^(Standard|Basic)_\w+$/.test(size)) throw invalid(`The value '${String(size)}' provided for the VM size is not valid.`, 'hardwareProfile.vmSize');
    const os = (p.osProfile ?? {}) as J;
    if (typeof os.computerName !== 'string' || typeof os.adminUsername !== 'string') throw invalid("Required parameter 'osProfile' is missing (null).", 'osProfile');
    const linux = (os.linuxConfiguration ?? {}) as J;
    const keys = ((linux.ssh as J | undefined)?.publicKeys as J[] | undefined) ?? [];
    if (linux.disablePasswordAuthentication === true ? keys.length === 0 : typeof os.adminPassword !== 'string') {
      throw invalid("Required parameter 'adminPassword' is missing (null).", 'adminPassword');
    }
    for (const k of keys) {
      if (typeof k.keyData !== 'string' || !/^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/.test(k.keyData)) {
        throw invalid('The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.', 'linuxConfiguration.ssh.publicKeys.keyData');
      }
    }
    let customData: string | undefined;
    if (os.customData !== undefined) {
      const cd = os.customData;
      if (typeof cd !== 'string' || cd.length > 87380 || !/^[A-Za-z0-9+/]*={0,2}$/.test(cd)) {
        throw invalid('Custom data in OSProfile must be in Base64 encoding and with a maximum length of 87380 characters.', 'customData');
      }
      customData = Buffer.from(cd, 'base64').toString('utf8');
    }
    const storage = (p.storageProfile ?? {}) as J;
    const image = storage.imageReference as J | undefined;
    if (!image) throw invalid("Required parameter 'storageProfile.imageReference' is missing (null).", 'imageReference');
    if (typeof image.id !== 'string' && !(image.publisher && image.offer && image.sku && image.version)) {
      throw invalid('The image reference needs publisher, offer, sku and version, or an id.', 'imageReference');
    }
    const osDisk = (storage.osDisk ?? {}) as J;
    if (osDisk.deleteOption !== undefined && !['Delete', 'Detach'].includes(String(osDisk.deleteOption))) throw invalid('osDisk.deleteOption must be Delete or Detach.', 'osDisk.deleteOption');
    const priority = String(p.priority ?? 'Regular') as AzureVm['priority'];
    if (!['Regular', 'Spot', 'Low'].includes(priority)) throw invalid(`The value '${priority}' of parameter 'priority' is not valid.`, 'priority');
    const max = (p.billingProfile as J | undefined)?.maxPrice;
    if (priority === 'Spot') {
      if (!['Delete', 'Deallocate'].includes(String(p.evictionPolicy ?? 'Deallocate'))) throw invalid('A Spot VM needs evictionPolicy Delete or Deallocate.', 'evictionPolicy');
      if (max !== undefined && max !== -1 && !(typeof max === 'number' && max > 0)) throw invalid('billingProfile.maxPrice must be -1 or greater than 0.', 'billingProfile.maxPrice');
    } else if (p.evictionPolicy !== undefined || p.billingProfile !== undefined) {
      throw invalid('evictionPolicy and billingProfile are only for Spot (and Low) priority VMs.', 'evictionPolicy');
    }
    const nics = ((p.networkProfile as J | undefined)?.networkInterfaces as J[] | undefined) ?? [];
    if (!nics.length) throw invalid('At least one network interface is required.', 'networkProfile');
    for (const n of nics) {
      const nic = lookup(ref(n), 'Microsoft.Network/networkInterfaces');
      if (!nic) throw new ArmError(404, 'NotFound', `Resource ${String(ref(n))} was not found.`);
      if (nic.location !== location) throw new ArmError(400, 'NicInDifferentLocation', `The network interface ${nic.id} is in '${nic.location}', the VM in '${location}'.`);
      if (allVms.some((v) => !v.deleted && lower(v.group) === lower(g.name) && v.nicId === lower(nic.id))) {
        throw new ArmError(400, 'NicInUse', `Network Interface ${nic.id} is used by existing resource. In order to create a new resource, please detach the NIC.`);
      }
    }
    const diag = ((p.diagnosticsProfile as J | undefined)?.bootDiagnostics ?? {}) as J;
    if (diag.enabled === true && diag.storageUri !== undefined) throw invalid('The fake serves managed boot diagnostics only (no storageUri).', 'bootDiagnostics.storageUri');

    // Faults, after validation: capacity and quota are synchronous 409s.
    if (fault?.code === 'SkuNotAvailable') {
      throw new ArmError(
        fault.status ?? 409,
        'SkuNotAvailable',
        fault.message ??
          `The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: ${size}' is currently not available in location '${location}'. Please try another size or deploy to a different location or different zone. See https://aka.ms/azureskunotavailable for details.`,
      );
    }
    if (fault?.code === 'OperationNotAllowed') {
      const gpu = gpuOfSize(size);
      const cores = gpu ? Math.max(4, gpu.count * 4) : 4;
      throw new ArmError(
        fault.status ?? 409,
        'OperationNotAllowed',
        fault.message ??
          `Operation could not be completed as it results in exceeding approved ${quotaFamily(size, priority)} Cores quota. Additional details - Deployment Model: Resource Manager, Location: ${location}, Current Limit: 0, Current Usage: 0, Additional Required: ${cores}, (Minimum) New Limit Required: ${cores}. Submit a request for Quota increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView by specifying parameters listed in the ‘Details’ section for deployment to succeed.`,
      );
    }
    const vmId = uuid();
    const identityType = (body.identity as J | undefined)?.type;
    const principalId = identityType === 'SystemAssigned' ? uuid() : undefined;
    const out: J = {
      name,
      id,
      type,
      location,
      ...(body.tags ? { tags: body.tags } : {}),
      ...(principalId ? { identity: { type: 'SystemAssigned', principalId, tenantId: tenant } } : {}),
      properties: {
        ...p,
        osProfile: { ...os, customData: undefined, adminPassword: undefined },
        vmId,
        provisioningState: 'Creating',
        timeCreated: new Date().toISOString(),
      },
    };
    const nicRef = nics.find((n) => (n.properties as J | undefined)?.primary === true) ?? nics[0]!;
    const gpu = gpuOfSize(size);
    const vm: Vm = {
      id,
      type,
      body: out,
      vmId,
      group: g.name,
      name,
      location,
      vmSize: size,
      priority,
      ...(priority === 'Spot' ? { evictionPolicy: String(p.evictionPolicy ?? 'Deallocate') } : {}),
      ...(p.billingProfile ? { billingProfile: p.billingProfile as { maxPrice?: number } } : {}),
      ...(principalId ? { principalId, identity: { type: 'SystemAssigned' as const, principalId, tenantId: tenant } } : {}),
      imageReference: image,
      ...(osDisk.deleteOption !== undefined ? { osDiskDeleteOption: String(osDisk.deleteOption) } : {}),
      ...((nicRef.properties as J | undefined)?.deleteOption !== undefined ? { nicDeleteOption: String((nicRef.properties as J).deleteOption) } : {}),
      ...(customData !== undefined ? { customData } : {}),
      tags: { ...((body.tags as Record<string, string> | undefined) ?? {}) },
      provisioningState: 'Creating',
      powerState: 'starting',
      ...(gpu && imageHasNvidiaDriver(image) ? { gpu } : {}),
      deleted: false,
      evictionNotice: false,
      createdAt: new Date(),
      serialBanner: [
        '[    0.000000] Linux version 6.8.0-1021-azure (buildd@sandbox) #25-Ubuntu SMP',
        `[    0.000000] DMI: Microsoft Corporation Virtual Machine/Virtual Machine, ${size}`,
        `Ubuntu 24.04 LTS ${String(os.computerName)} ttyS0`,
        customData !== undefined ? `cloud-init[1021]: running customData (${customData.length} bytes)` : 'cloud-init[1021]: no customData',
      ],
      console() {
        return this.machine ? this.machine.console() : this.serialBanner.map((l) => `${l}\n`).join('');
      },
      nicId: lower(ref(nicRef) ?? ''),
    };
    g.resources.set(lower(`${type}/${name}`), vm);
    allVms.push(vm);
    if (principalId) vmIdentities.set(principalId, vm);
    const asyncCode = fault?.code && ASYNC_VM_FAULTS.has(fault.code) ? fault.code : undefined;
    const asyncUrl = startOp('Microsoft.Compute', location, vmLroMs, () => {
      if (vm.deleted) return { status: 'Failed', error: { code: 'Canceled', message: 'The operation was canceled: the VM was deleted.' } };
      if (asyncCode) {
        vm.provisioningState = 'Failed';
        vm.failureCode = asyncCode;
        vm.powerState = 'deallocated';
        (vm.body.properties as J).provisioningState = 'Failed';
        return { status: 'Failed', error: { code: asyncCode, message: fault?.message ?? ALLOCATION_MESSAGE } };
      }
      vm.provisioningState = 'Succeeded';
      (vm.body.properties as J).provisioningState = 'Succeeded';
      boot(vm);
      return { status: 'Succeeded' };
    });
    return { status: 201, json: structuredClone(out), headers: { 'azure-asyncoperation': asyncUrl, 'retry-after': retryAfter } };
  }

  function boot(vm: Vm): void {
    vm.powerState = 'running';
    const m = opts.machines.boot({
      id: vm.vmId,
      script: vm.customData ?? '',
      arch: /^Standard_[A-Z]+\d+[a-z]*p[a-z]*_v\d+$/.test(vm.vmSize) ? 'arm64' : 'x86_64',
      env: {
        SANDBOX_CLOUD: 'azure',
        SANDBOX_INSTANCE_ID: vm.vmId,
        AZURE_POD_IDENTITY_AUTHORITY_HOST: `${imdsUrl}/_imds/${vm.vmId}`,
        CURL_CA_BUNDLE: AZURE_CA_FILE,
      },
      ...(vm.gpu ? { gpu: vm.gpu } : {}),
      banner: vm.serialBanner,
      onShutdown: () => {
        // A guest shutdown stops the VM; it is not deallocated, so it still bills.
        if (!vm.deleted && vm.powerState === 'running') vm.powerState = 'stopped';
      },
    });
    vm.machine = m;
    owned.add(m);
  }

  /** Removes a VM (group deletion or eviction): its machine is powered off. */
  function endVm(vm: Vm, reason: NonNullable<AzureVm['endedReason']>): void {
    if (vm.deleted) return;
    vm.deleted = true;
    vm.endedReason ??= reason;
    vm.endedAt = new Date();
    vm.powerState = 'deleted';
    if (vm.principalId) assignments = assignments.filter((a) => a.principalId !== vm.principalId);
    void vm.machine?.kill();
  }

  // -------------------------------------------------------------------------------------------
  // Resource groups

  function deleteGroup(g: Group, by: Issued): string {
    g.provisioningState = 'Deleting';
    g.deletedBy ??= by.identity;
    if (!g.deletion) {
      g.deletion = { doneAt: Date.now() + deleteMs };
      later(deleteMs, () => finishDeletion(g, by));
    }
    const token = b64url(JSON.stringify({ jobId: `ResourceGroupDeletionJob-${uuid()}`, jobLocation: g.location }));
    deletions.set(token, g);
    return `${url}/subscriptions/${sub}/operationresults/${token}?api-version=${AZURE_API_VERSIONS.resources}`;
  }

  function finishDeletion(g: Group, by: Issued): void {
    for (const r of g.resources.values()) {
      const vm = allVms.find((v) => v === r);
      if (vm) endVm(vm, vm.principalId !== undefined && vm.principalId === by.principal ? 'deleted by its own identity' : 'deleted');
    }
    g.resources.clear();
    const prefix = lower(g.id);
    assignments = assignments.filter((a) => lower(a.scope) !== prefix && !lower(a.scope).startsWith(`${prefix}/`));
    g.deleted = true;
    g.deletedAt = new Date();
    if (groups.get(lower(g.name)) === g) groups.delete(lower(g.name));
  }

  // -------------------------------------------------------------------------------------------
  // ARM routing: what the call is (for faults and the log), then what it does.

  function route(req: http.IncomingMessage, u: URL, body: Buffer, call: AzureCall, who: Issued): Route {
    const q = u.searchParams;
    const segs = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    const noRoute = (): ArmError => new ArmError(404, 'InvalidResourceType', `No route for ${u.pathname}.`);
    if (lower(segs[0] ?? '') !== 'subscriptions') throw noRoute();
    if (segs[1] !== sub) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${segs[1]}' could not be found.`);

    // Async operation status (network, compute).
    if (segs.length === 8 && lower(segs[2]!) === 'providers' && lower(segs[4]!) === 'locations' && lower(segs[6]!) === 'operations') {
      const provider = segs[3]!;
      const compute = lower(provider) === 'microsoft.compute';
      return {
        op: compute ? 'virtualMachines.asyncOperation' : 'network.asyncOperation',
        location: segs[5]!,
        run: () => {
          apiVersion(q, compute ? AZURE_API_VERSIONS.compute : AZURE_API_VERSIONS.network, 'locations/operations');
          if (method !== 'GET') throw notAllowed(method);
          const op = ops.get(segs[7]!);
          if (!op) throw new ArmError(404, 'NotFound', 'The operation was not found.');
          if (Date.now() < op.doneAt && !op.result) {
            call.lroStatus = 'InProgress';
            return { status: 200, json: { name: op.id, status: 'InProgress', startTime: op.started.toISOString() }, headers: { 'retry-after': retryAfter } };
          }
          const r = settle(op);
          call.lroStatus = r.status;
          return { status: 200, json: { name: op.id, startTime: op.started.toISOString(), endTime: new Date().toISOString(), ...r } };
        },
      };
    }
    // Resource group deletion status.
    if (segs.length === 4 && lower(segs[2]!) === 'operationresults') {
      return {
        op: 'resourceGroups.deleteOperation',
        location: 'global',
        run: () => {
          apiVersion(q, AZURE_API_VERSIONS.resources, 'operationresults');
          const g = deletions.get(segs[3]!);
          if (!g) throw new ArmError(404, 'NotFound', 'The operation was not found.');
          if (!g.deleted) {
            call.lroStatus = 'InProgress';
            return { status: 202, headers: { location: `${url}${u.pathname}${u.search}`, 'retry-after': retryAfter } };
          }
          call.lroStatus = 'Succeeded';
          return { status: 200 };
        },
      };
    }
    // Resource groups: list.
    if (segs.length === 3 && lower(segs[2]!) === 'resourcegroups') {
      return {
        op: 'resourceGroups.list',
        location: 'global',
        run: () => {
          apiVersion(q, AZURE_API_VERSIONS.resources, 'resourceGroups');
          if (method !== 'GET') throw notAllowed(method);
          authorize(who, 'Microsoft.Resources/subscriptions/resourceGroups/read', subScope);
          const filter = q.get('$filter');
          let match: (g: Group) => boolean = () => true;
          if (filter !== null) {
            const f = /^tagName eq '((?:[^']|'')*)' and tagValue eq '((?:[^']|'')*)'$/.exec(filter);
            const n = /^tagName eq '((?:[^']|'')*)'$/.exec(filter);
            const un = (s: string): string => s.replace(/''/g, "'");
            if (f) match = (g) => Object.entries(g.tags).some(([k, v]) => lower(k) === lower(un(f[1]!)) && v === un(f[2]!));
            else if (n) match = (g) => Object.keys(g.tags).some((k) => lower(k) === lower(un(n[1]!)));
            else throw new ArmError(400, 'InvalidFilterInQueryString', `Invalid $filter '${filter}' specified in the query string.`);
          }
          return { status: 200, json: { value: [...groups.values()].filter(match).map(groupJson) } };
        },
      };
    }
    if (lower(segs[2] ?? '') !== 'resourcegroups' || segs.length < 4) throw noRoute();
    const rgName = segs[3]!;
    const rgScope = `${subScope}/resourceGroups/${rgName}`;
    // Resource groups: one.
    if (segs.length === 4) {
      const verb = method === 'PUT' ? 'createOrUpdate' : method === 'GET' ? 'get' : method === 'DELETE' ? 'delete' : method === 'HEAD' ? 'checkExistence' : 'unknown';
      return {
        op: `resourceGroups.${verb}`,
        location: 'global',
        run: () => {
          apiVersion(q, AZURE_API_VERSIONS.resources, 'resourceGroups');
          if (method === 'PUT') {
            authorize(who, 'Microsoft.Resources/subscriptions/resourceGroups/write', rgScope);
            const b = jsonBody(body);
            if (typeof b.location !== 'string' || !b.location) throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
            if (!/^[-\w._()]{1,90}$/.test(rgName) || rgName.endsWith('.')) {
              throw new ArmError(
                400,
                'InvalidResourceGroup',
                `The provided resource group name '${rgName}' has these invalid characters. The name can only be a letter, digit, '-', '.', '_', '(', ')' and cannot end with a period.`,
              );
            }
            const tags = (b.tags as Record<string, string> | undefined) ?? {};
            if (Object.keys(tags).length > 50) throw new ArmError(400, 'InvalidTag', 'A resource can have at most 50 tags.');
            for (const [k, v] of Object.entries(tags)) {
              if (k.length > 512 || String(v).length > 256 || /[<>%&\\?/]/.test(k)) throw new ArmError(400, 'InvalidTagNameCharacters', `The tag name '${k}' or its value is not valid.`);
            }
            const old = groups.get(lower(rgName));
            if (old?.provisioningState === 'Deleting') throw beingDeleted(old);
            if (old && lower(old.location) !== lower(b.location)) {
              throw new ArmError(409, 'InvalidResourceGroupLocation', `Invalid resource group location '${b.location}'. The Resource group already exists in location '${old.location}'.`);
            }
            let g = old;
            if (!g) {
              g = { id: rgScope, name: rgName, location: b.location, tags: {}, provisioningState: 'Succeeded', deleted: false, createdAt: new Date(), resources: new Map() };
              groups.set(lower(rgName), g);
              allGroups.push(g);
            }
            g.tags = { ...tags };
            return { status: old ? 200 : 201, json: groupJson(g) };
          }
          if (method === 'GET') {
            authorize(who, 'Microsoft.Resources/subscriptions/resourceGroups/read', rgScope);
            return { status: 200, json: groupJson(groupOr404(rgName)) };
          }
          if (method === 'DELETE') {
            authorize(who, 'Microsoft.Resources/subscriptions/resourceGroups/delete', rgScope);
            const force = q.get('forceDeletionTypes');
            if (force !== null && !['Microsoft.Compute/virtualMachines', 'Microsoft.Compute/virtualMachineScaleSets'].includes(force)) {
              throw new ArmError(400, 'InvalidForceDeletionTypes', `The value '${force}' of forceDeletionTypes is not supported. Supported: Microsoft.Compute/virtualMachines, Microsoft.Compute/virtualMachineScaleSets.`);
            }
            const g = groupOr404(rgName);
            return { status: 202, headers: { location: deleteGroup(g, who), 'retry-after': retryAfter } };
          }
          throw notAllowed(method);
        },
      };
    }
    // Resources in a group.
    if (lower(segs[4] ?? '') !== 'providers') throw noRoute();
    const provider = lower(segs[5] ?? '');
    // Role assignments at group scope.
    if (provider === 'microsoft.authorization' && lower(segs[6] ?? '') === 'roleassignments' && segs.length === 8) {
      return {
        op: 'roleAssignments.create',
        location: 'global',
        run: () => {
          apiVersion(q, AZURE_API_VERSIONS.authorization, 'roleAssignments');
          if (method !== 'PUT') throw notAllowed(method);
          const name = segs[7]!;
          const g = groupOr404(rgName);
          const scope = g.id;
          authorize(who, 'Microsoft.Authorization/roleAssignments/write', `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`);
          if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(name)) {
            throw new ArmError(400, 'InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
          }
          if (g.provisioningState === 'Deleting') throw beingDeleted(g);
          const props = (jsonBody(body).properties ?? {}) as J;
          const roleDefinitionId = String(props.roleDefinitionId ?? '');
          const roleGuid = roleDefinitionId.split('/').pop() ?? '';
          if (
            !new RegExp(`^/subscriptions/${sub}/providers/Microsoft\\.Authorization/roleDefinitions/[0-9a-f-]{36}$`, 'i').test(roleDefinitionId) ||
            !Object.values(ROLE_IDS).includes(roleGuid as never)
          ) {
            throw new ArmError(400, 'RoleDefinitionDoesNotExist', `The specified role definition with ID '${roleGuid}' does not exist.`);
          }
          const principalId = String(props.principalId ?? '');
          const vm = vmIdentities.get(principalId);
          const known = (vm !== undefined && !vm.deleted) || Object.values(AZURE_APPS).some((a) => a.objectId === principalId);
          // A just-created managed identity has not replicated yet: without principalType the
          // assignment fails as Azure's does (PrincipalNotFound); with it, it is accepted.
          if (!known || (vm !== undefined && props.principalType !== 'ServicePrincipal')) {
            throw new ArmError(
              400,
              'PrincipalNotFound',
              `Principal ${principalId.replace(/-/g, '')} does not exist in the directory ${tenant}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype`,
            );
          }
          const existing = assignments.find((a) => lower(a.scope) === lower(scope) && a.principalId === principalId && a.roleDefinitionId.endsWith(roleGuid));
          if (existing) throw new ArmError(409, 'RoleAssignmentExists', 'The role assignment already exists.');
          const ra: AzureRoleAssignment = {
            id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`,
            name,
            scope,
            principalId,
            ...(typeof props.principalType === 'string' ? { principalType: props.principalType } : {}),
            roleDefinitionId,
            createdBy: who.identity,
          };
          assignments.push(ra);
          return {
            status: 201,
            json: {
              id: ra.id,
              name,
              type: 'Microsoft.Authorization/roleAssignments',
              properties: { roleDefinitionId, principalId, principalType: ra.principalType, scope, createdOn: new Date().toISOString(), createdBy: who.principal },
            },
          };
        },
      };
    }
    // Network resources.
    if (provider === 'microsoft.network' && segs.length === 8) {
      const kind = segs[6]!;
      const name = segs[7]!;
      const type = `Microsoft.Network/${kind}`;
      const verb = method === 'PUT' ? 'createOrUpdate' : method === 'GET' ? 'get' : method === 'DELETE' ? 'delete' : 'unknown';
      const parsed = method === 'PUT' ? jsonBody(body) : undefined;
      const location = parsed ? String(parsed.location ?? '') : (groups.get(lower(rgName))?.location ?? 'global');
      return {
        op: `${kind}.${verb}`,
        location: location || 'global',
        run: () => {
          apiVersion(q, AZURE_API_VERSIONS.network, kind, location);
          const g = groupOr404(rgName);
          const scope = `${g.id}/providers/${type}/${name}`;
          if (method === 'PUT') {
            authorize(who, `${type}/write`, scope);
            if (g.provisioningState === 'Deleting') throw beingDeleted(g);
            return putNetwork(g, kind, name, parsed!);
          }
          if (method === 'GET') {
            authorize(who, `${type}/read`, scope);
            const r = g.resources.get(lower(`${type}/${name}`));
            if (!r) throw new ArmError(404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group '${rgName}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
            return { status: 200, json: structuredClone(r.body) };
          }
          throw notAllowed(method);
        },
      };
    }
    // Virtual machines.
    if (provider === 'microsoft.compute' && lower(segs[6] ?? '') === 'virtualmachines' && (segs.length === 8 || segs.length === 9)) {
      const name = segs[7]!;
      const type = 'Microsoft.Compute/virtualMachines';
      const sub9 = segs[8];
      const verb =
        sub9 === 'retrieveBootDiagnosticsData' && method === 'POST'
          ? 'retrieveBootDiagnosticsData'
          : sub9 === 'instanceView' && method === 'GET'
            ? 'instanceView'
            : sub9 !== undefined
              ? 'unknown'
              : method === 'PUT'
                ? 'createOrUpdate'
                : method === 'GET'
                  ? 'get'
                  : method === 'DELETE'
                    ? 'delete'
                    : 'unknown';
      const parsed = method === 'PUT' ? jsonBody(body) : undefined;
      const location = parsed ? String(parsed.location ?? '') : (groups.get(lower(rgName))?.location ?? 'global');
      return {
        op: `virtualMachines.${verb}`,
        location: location || 'global',
        run: (fault) => {
          if (verb === 'unknown') throw noRoute();
          apiVersion(q, AZURE_API_VERSIONS.compute, 'virtualMachines', location);
          const g = groupOr404(rgName);
          const scope = `${g.id}/providers/${type}/${name}`;
          const vm = g.resources.get(lower(`${type}/${name}`)) as Vm | undefined;
          const notFound = (): ArmError =>
            new ArmError(404, 'ResourceNotFound', `The Resource '${type}/${name}' under resource group '${rgName}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
          if (verb === 'retrieveBootDiagnosticsData') {
            authorize(who, `${type}/retrieveBootDiagnosticsData/action`, scope);
            if (!vm) throw notFound();
            const diag = ((vm.body.properties as J).diagnosticsProfile as J | undefined)?.bootDiagnostics as J | undefined;
            if (diag?.enabled !== true) throw new ArmError(409, 'OperationNotAllowed', 'Boot diagnostics are not enabled for this virtual machine.');
            const minutes = Number(q.get('sasUriExpirationTimeInMinutes') ?? 120);
            if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) throw invalid('sasUriExpirationTimeInMinutes must be 1 to 1440.', 'sasUriExpirationTimeInMinutes');
            const sig = crypto.randomBytes(16).toString('base64url');
            const expires = Date.now() + minutes * 60000;
            blobSigs.set(sig, { vm, expires });
            const se = new Date(expires).toISOString().replace(/\.\d+Z$/, 'Z');
            const sas = `sv=2018-03-28&sr=b&sp=r&se=${encodeURIComponent(se)}&sig=${sig}`;
            const base = `${url}/_blob/bootdiagnostics-${vm.vmId}/${name}.${vm.vmId}`;
            return { status: 200, json: { consoleScreenshotBlobUri: `${base}.screenshot.bmp?${sas}`, serialConsoleLogBlobUri: `${base}.serialconsole.log?${sas}` } };
          }
          if (verb === 'instanceView') {
            authorize(who, `${type}/read`, scope);
            if (!vm) throw notFound();
            return { status: 200, json: instanceView(vm) };
          }
          if (verb === 'createOrUpdate') {
            authorize(who, `${type}/write`, scope);
            if (g.provisioningState === 'Deleting') throw beingDeleted(g);
            return putVm(g, name, parsed!, fault);
          }
          if (verb === 'get') {
            authorize(who, `${type}/read`, scope);
            if (!vm) throw notFound();
            return { status: 200, json: structuredClone(vm.body) };
          }
          throw notAllowed(method);
        },
      };
    }
    throw new ArmError(400, 'InvalidResourceNamespace', `The fake does not serve ${u.pathname}.`);
  }

  function instanceView(vm: Vm): J {
    const now = new Date().toISOString();
    const statuses: J[] = [];
    if (vm.provisioningState === 'Failed') {
      // Real instance views name the error in the code: ProvisioningState/failed/<code>.
      statuses.push({ code: `ProvisioningState/failed/${vm.failureCode ?? 'InternalError'}`, level: 'Error', displayStatus: 'Provisioning failed', message: ALLOCATION_MESSAGE, time: now });
    } else {
      statuses.push({
        code: `ProvisioningState/${lower(vm.provisioningState)}`,
        level: 'Info',
        displayStatus: vm.provisioningState === 'Succeeded' ? 'Provisioning succeeded' : 'Creating',
        ...(vm.provisioningState === 'Succeeded' ? { time: now } : {}),
      });
    }
    const power = vm.powerState === 'deleted' ? 'deallocated' : vm.powerState;
    if (vm.provisioningState !== 'Failed') {
      statuses.push({ code: `PowerState/${power}`, level: 'Info', displayStatus: `VM ${power}` });
    }
    return {
      computerName: ((vm.body.properties as J).osProfile as J).computerName,
      osName: 'ubuntu',
      osVersion: '24.04',
      hyperVGeneration: 'V2',
      vmAgent: { vmAgentVersion: '2.12.0.2', statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Ready', time: now }] },
      disks: [{ name: `${vm.name}_OsDisk_1_${vm.vmId.replace(/-/g, '')}`, statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded' }] }],
      bootDiagnostics: {},
      statuses,
    };
  }

  // -------------------------------------------------------------------------------------------
  // Blob (serial log) and IMDS

  function blob(u: URL): { status: number; text: string } {
    const s = blobSigs.get(u.searchParams.get('sig') ?? '');
    const se = Date.parse(u.searchParams.get('se') ?? '');
    if (!s || !(se > Date.now()) || s.expires < Date.now()) return { status: 403, text: 'AuthenticationFailed: Server failed to authenticate the request.' };
    if (u.pathname.endsWith('.serialconsole.log')) return { status: 200, text: s.vm.console() };
    return { status: 404, text: 'BlobNotFound: The specified blob does not exist.' };
  }

  function imds(req: http.IncomingMessage, u: URL, call: AzureCall): { status: number; json: J; text?: string } {
    const m = /^\/_imds\/([^/]+)(\/.*)$/.exec(u.pathname);
    const vm = m ? allVms.find((v) => v.vmId === m[1]) : undefined;
    if (!m || !vm || vm.deleted) return { status: 404, json: { error: 'not_found' } };
    const rest = m[2]!;
    call.path = rest;
    call.op = 'imds';
    call.action = `imds ${vm.vmId}`;
    call.identity = `vm:${vm.group}`;
    const v = u.searchParams.get('api-version');
    if (v !== null) call.apiVersion = v;
    if (req.headers['x-forwarded-for']) return { status: 400, json: { error: 'bad_request', error_description: 'Forwarded requests are not allowed.' } };
    if (lower(String(req.headers.metadata ?? '')) !== 'true') {
      return { status: 400, json: { error: 'bad_request', error_description: 'Required metadata header not specified' } };
    }
    if (req.method !== 'GET') return { status: 405, json: { error: 'method_not_allowed' } };
    if (!v || !IMDS_VERSIONS.includes(v)) {
      return { status: 400, json: { error: 'Bad request. api-version is invalid or was not specified in the request.', 'newest-versions': [...IMDS_VERSIONS].reverse().slice(0, 3) } };
    }
    if (rest === '/metadata/identity/oauth2/token') {
      call.op = 'imds.token';
      call.action = `imds.token ${vm.vmId}`;
      if (!vm.principalId) return { status: 400, json: { error: 'invalid_request', error_description: 'Identity not found' } };
      const resource = u.searchParams.get('resource') ?? '';
      if (!armAudiences().includes(resource)) {
        return { status: 400, json: { error: 'invalid_resource', error_description: `AADSTS500011: The resource principal named ${resource} was not found in the tenant.` } };
      }
      const t = issue(vm.principalId, vm.principalId, `vm:${vm.group}`, resource, 86399);
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
    if (rest === '/metadata/scheduledevents') {
      call.op = 'imds.scheduledevents';
      call.action = `imds.scheduledevents ${vm.vmId}`;
      const events = vm.evictionNotice
        ? [
            {
              EventId: crypto.createHash('sha256').update(vm.vmId).digest('hex').slice(0, 32),
              EventType: 'Preempt',
              ResourceType: 'VirtualMachine',
              Resources: [vm.name],
              EventStatus: 'Scheduled',
              NotBefore: new Date(Date.now() + 30_000).toUTCString(),
              Description: 'The Spot VM is being evicted.',
              EventSource: 'Platform',
              DurationInSeconds: -1,
            },
          ]
        : [];
      return { status: 200, json: { DocumentIncarnation: events.length, Events: events } };
    }
    const inst = /^\/metadata\/instance(?:\/compute(?:\/(\w+))?)?$/.exec(rest);
    if (inst) {
      call.op = 'imds.instance';
      call.action = `imds.instance ${vm.vmId}`;
      const compute = {
        azEnvironment: 'AzurePublicCloud',
        location: vm.location,
        name: vm.name,
        osType: 'Linux',
        priority: vm.priority === 'Spot' ? 'Spot' : '',
        provider: 'Microsoft.Compute',
        resourceGroupName: vm.group,
        resourceId: vm.id,
        subscriptionId: sub,
        tagsList: Object.entries(vm.tags).map(([name, value]) => ({ name, value })),
        vmId: vm.vmId,
        vmSize: vm.vmSize,
      };
      if (inst[1] !== undefined) {
        // A leaf: `?format=text` gives the bare value (what a shell script wants), JSON otherwise.
        const leaf = (compute as J)[inst[1]];
        if (leaf === undefined) return { status: 404, json: { error: 'Not found' } };
        if (u.searchParams.get('format') === 'text') return { status: 200, json: {}, text: String(leaf) };
        return { status: 200, json: { value: leaf } };
      }
      if (u.searchParams.get('format') === 'text') return { status: 400, json: { error: 'Bad request. format=text is only for leaf nodes.' } };
      return { status: 200, json: rest.endsWith('/compute') ? compute : { compute, network: { interface: [] } } };
    }
    return { status: 404, json: { error: 'Not found' } };
  }

  // -------------------------------------------------------------------------------------------
  // Faults

  function faultHeaders(f: Fault): Record<string, string> {
    if (f.retryAfter !== undefined) return { 'retry-after': String(f.retryAfter) };
    return f.code === 'TooManyRequests' ? { 'retry-after': '1' } : {};
  }

  function faultError(f: Fault): ArmError {
    const code = f.code!;
    if (code === 'TooManyRequests') {
      return new ArmError(f.status ?? 429, 'TooManyRequests', f.message ?? 'The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:05:00.', {}, faultHeaders(f));
    }
    return new ArmError(f.status ?? 503, code, f.message ?? 'The service is temporarily unavailable. Please try again later.', {}, faultHeaders(f));
  }

  // -------------------------------------------------------------------------------------------
  // Servers

  const tlsOpts = { cert: fs.readFileSync(path.join(TLS_DIR, 'server.pem')), key: fs.readFileSync(path.join(TLS_DIR, 'server-key.pem')) };

  function record(service: AzureCall['service'], req: http.IncomingMessage, u: URL): AzureCall {
    const rawPath = (req.url ?? '/').split('?')[0]!;
    const call: AzureCall = { action: '', service, method: req.method ?? 'GET', path: u.pathname, op: '', status: 0, headers: { ...req.headers }, at: Date.now(), ms: 0 };
    if (rawPath !== u.pathname) call.rawPath = rawPath;
    delete call.headers.authorization;
    calls.push(call);
    return call;
  }

  function send(res: http.ServerResponse, call: AzureCall, status: number, json: J | undefined, headers: Record<string, string> = {}): void {
    call.status = status;
    call.ms = Date.now() - call.at;
    const text = json === undefined ? '' : JSON.stringify(json);
    res.writeHead(status, {
      ...(json === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
      'x-ms-request-id': uuid(),
      'x-ms-correlation-request-id': String(call.headers['x-ms-client-request-id'] ?? uuid()),
      ...headers,
    });
    res.end(text);
  }

  function sendText(res: http.ServerResponse, call: AzureCall, status: number, text: string, type: string): void {
    call.status = status;
    call.ms = Date.now() - call.at;
    res.writeHead(status, { 'content-type': type });
    res.end(text);
  }

  function sendError(res: http.ServerResponse, call: AzureCall, err: unknown): void {
    if (err instanceof ArmError) {
      call.code = err.code;
      send(res, call, err.status, { error: { code: err.code, message: err.message, ...err.extra } }, err.headers);
    } else if (err instanceof EntraError) {
      call.code = err.error;
      send(
        res,
        call,
        err.status,
        {
          error: err.error,
          error_description: `AADSTS${err.aadsts}: ${err.message} Trace ID: ${uuid()} Correlation ID: ${uuid()} Timestamp: ${new Date().toISOString().replace('T', ' ')}`,
          error_codes: [err.aadsts],
          timestamp: new Date().toISOString(),
          trace_id: uuid(),
          correlation_id: uuid(),
          error_uri: `${url}/error?code=${err.aadsts}`,
        },
        err.headers,
      );
    } else {
      call.code = 'InternalServerError';
      send(res, call, 500, { error: { code: 'InternalServerError', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } });
    }
  }

  async function handle(service: 'https' | 'imds', req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    // Not `new URL(req.url, base)`: a path that starts with `//` would parse as a host. The
    // authorization client sends `//subscriptions/...` when the scope starts with `/`, and ARM
    // takes it; so does the fake, collapsing repeated slashes (kept raw in `call.rawPath`).
    const u = new URL(`http://x${(req.url ?? '/').replace(/^\/{2,}/, '/')}`);
    u.pathname = u.pathname.replace(/\/{2,}/g, '/');
    if (service === 'imds') {
      const call = record('imds', req, u);
      const r = imds(req, u, call);
      if (!call.action) call.action = `imds ${u.pathname}`;
      if (r.text !== undefined) sendText(res, call, r.status, r.text, 'text/plain; charset=utf-8');
      else send(res, call, r.status, r.json);
      return;
    }
    if (u.pathname.startsWith('/_blob/')) {
      const call = record('blob', req, u);
      call.op = 'blob.get';
      call.action = 'blob.get global';
      const r = blob(u);
      sendText(res, call, r.status, r.text, 'text/plain');
      return;
    }
    const isEntra = !/^\/subscriptions\//i.test(u.pathname);
    const call = record(isEntra ? 'entra' : 'arm', req, u);
    try {
      if (opts.latencyMs) await sleep(opts.latencyMs);
      if (isEntra) {
        const { op } = entraRoute(u.pathname);
        call.op = op;
        call.action = `${op} global`;
        const fault = opts.faults.take('azure', call.action);
        if (fault?.delayMs) await sleep(fault.delayMs);
        if (applyReset(fault, res)) return;
        if (fault?.code) {
          throw new EntraError(fault.status ?? 503, fault.code, 50000, fault.message ?? 'There was an error issuing a token or an issue with our sign-in service.', faultHeaders(fault));
        }
        const r = entra(req, u.pathname, body, call);
        send(res, call, r.status, r.json);
        return;
      }
      call.apiVersion = u.searchParams.get('api-version') ?? undefined;
      if (body.length) call.body = body.toString('utf8');
      const who = authenticate(req);
      call.identity = who.identity;
      const r = route(req, u, body, call, who);
      call.op = r.op;
      call.action = `${r.op} ${r.location}`;
      const fault = opts.faults.take('azure', call.action);
      if (fault?.delayMs) await sleep(fault.delayMs);
      if (applyReset(fault, res)) return;
      const toVm = r.op === 'virtualMachines.createOrUpdate' && fault?.code !== undefined && VM_FAULTS.has(fault.code);
      if (fault?.code && !toVm) throw faultError(fault);
      const a = r.run(toVm ? fault : undefined);
      send(res, call, a.status, a.json, a.headers);
    } catch (err) {
      if (!call.action) call.action = `${call.method} ${call.path}`;
      sendError(res, call, err);
    }
  }

  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const listener =
    (service: 'https' | 'imds') =>
    (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        handle(service, req, Buffer.concat(chunks), res).catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`azure fake failed: ${err instanceof Error ? err.stack : String(err)}`);
        });
      });
    };
  const main = https.createServer(tlsOpts, listener('https'));
  const meta = http.createServer(listener('imds'));
  main.on('secureConnection', track);
  main.on('connection', track);
  meta.on('connection', track);
  await new Promise<void>((r) => main.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => meta.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(main.address() as AddressInfo).port}`;
  imdsUrl = `http://127.0.0.1:${(meta.address() as AddressInfo).port}`;

  // -------------------------------------------------------------------------------------------
  // Test controls

  async function evict(groupName: string, how: { noticeMs?: number } = {}): Promise<void> {
    const g = groups.get(lower(groupName));
    const vm = allVms.find((v) => !v.deleted && lower(v.group) === lower(groupName) && g?.resources.get(lower(`${v.type}/${v.name}`)) === v);
    if (!g || !vm) throw new Error(`no live VM in resource group ${groupName}`);
    if (vm.priority === 'Regular') throw new Error(`${groupName}/${vm.name} is not a Spot VM`);
    if (vm.powerState === 'deallocated') return;
    vm.evictionNotice = true;
    if (how.noticeMs && how.noticeMs > 0) await sleep(how.noticeMs);
    if (closed || vm.deleted) return;
    if (vm.evictionPolicy === 'Delete') {
      // The VM and its OS disk go (and a NIC with deleteOption Delete); the group and the rest stay.
      g.resources.delete(lower(`${vm.type}/${vm.name}`));
      endVm(vm, 'evicted');
    } else {
      vm.endedReason ??= 'evicted';
      vm.powerState = 'deallocated';
      void vm.machine?.kill();
    }
    await vm.machine?.exited;
  }

  function leftovers(): string[] {
    const lines: string[] = [];
    const tagText = (t: Record<string, string>): string =>
      Object.entries(t)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
    for (const g of allGroups) {
      if (g.deleted) continue;
      const inside = [...g.resources.values()].map((r) => `${r.type.split('/').pop()}/${r.name}`);
      lines.push(
        `Azure resource group ${g.name} (${g.location}, ${g.provisioningState}) still exists${inside.length ? ` with ${inside.join(', ')}` : ''}${Object.keys(g.tags).length ? `; tags ${tagText(g.tags)}` : ''}`,
      );
    }
    for (const vm of allVms) {
      const m = vm.machine;
      if (!vm.deleted && (vm.powerState === 'running' || vm.powerState === 'starting' || vm.powerState === 'stopped')) {
        lines.push(
          `Azure VM ${vm.group}/${vm.name} (vmId ${vm.vmId}, ${vm.vmSize}, ${vm.priority}, ${vm.location}) is ${vm.powerState}${vm.powerState === 'stopped' ? ' (stopped, not deallocated: still billed)' : ''}${Object.keys(vm.tags).length ? `; tags ${tagText(vm.tags)}` : ''}`,
        );
        continue;
      }
      // A VM that is gone (or deallocated) but whose machine lives on, or left processes.
      if (!m) continue;
      const pids = m.processes();
      if (pids.length > 0) lines.push(`machine ${m.id} (Azure VM ${vm.group}/${vm.name}, ${vm.deleted ? 'deleted' : vm.powerState}) still has ${pids.length} process(es) running (pids ${pids.join(', ')})`);
      else if (m.running) lines.push(`machine ${m.id} (Azure VM ${vm.group}/${vm.name}, ${vm.deleted ? 'deleted' : vm.powerState}) is still powered on`);
    }
    return lines;
  }

  return {
    url,
    imdsUrl,
    tenantId: tenant,
    subscriptionId: sub,
    calls,
    groups: () => [...allGroups],
    vms: () => [...allVms],
    roleAssignments: () => [...assignments],
    evict,
    leftovers,
    ownsMachine: (m) => owned.has(m),
    federatedTokenFile(dir, app = 'launcher') {
      const now = Math.floor(Date.now() / 1000);
      const assertion = jwt({
        iss: 'https://token.actions.githubusercontent.com',
        aud: FEDERATION_AUDIENCE,
        sub: 'repo:octo-org/ml:ref:refs/heads/main',
        iat: now,
        nbf: now,
        exp: now + 3600,
        repository: 'octo-org/ml',
      });
      federated.set(assertion, app);
      fs.mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `azure-federated-token-${app}`);
      fs.writeFileSync(file, assertion, { mode: 0o600 });
      return file;
    },
    imdsBase: (vm) => `${imdsUrl}/_imds/${vm.vmId}`,
    close: async () => {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise<void>((r) => main.close(() => r())), new Promise<void>((r) => meta.close(() => r()))]);
      await Promise.all(allVms.map((v) => v.machine?.kill()));
    },
  };
}
