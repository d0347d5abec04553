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
 *   assignments, role definitions (list by name), a group's tags (PATCH, the Tags API). Every
 *   call needs a bearer token the fake issued for this ARM audience, the exact api-version the
 *   SDK sends (azure/catalog.ts), and a role at the scope that grants the action: the launcher
 *   has the documented launcher role and condition, a VM's identity what the launcher assigned it
 *   (azure/rbac.ts).
 * One plain http server answers IMDS (`/_imds/{vmId}/metadata/...`), as a VM sees
 * `http://169.254.169.254`.
 *
 * VMs really boot: the decoded `customData` runs as a sandbox machine (machine.ts) when the VM's
 * creation succeeds. A guest `shutdown` leaves the VM stopped (PowerState/stopped: still billed).
 * Deleting a group takes everything in it (the VM's machine is killed) and the role assignments
 * scoped inside it. `evict(group)` evicts a Spot VM. Faults come from the shared FaultPlan with
 * `service: 'azure'` and actions `<resource>.<verb> <location>`.
 *
 * Its parts (azure/): `store.ts` (the state and the inventory), `routes.ts` (requests named,
 * authenticated and authorised through the sandbox pipeline, then dispatched), `identity.ts`
 * (Entra sign-in, tokens, RBAC), `validation.ts` (parameter checks and error shapes),
 * `controllers/` (what each resource does), `imds.ts` (each VM's IMDS and the serial log blob),
 * `catalog.ts` (ids, api-versions, roles, apps, GPU sizes), `rbac.ts` (role definitions and
 * conditions from docs/permissions/azure/, evaluated as ARM does).
 */
import fs from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import type { FaultPlan } from './core/index.js';
import { serve } from './http.js';
import type { GpuSpec, Machine, MachineFleet } from './machine.js';
import { type AzureAppName, FEDERATION_AUDIENCE, TLS_DIR } from './azure/catalog.js';
import { evict } from './azure/controllers/virtual-machines.js';
import { jwt } from './azure/identity.js';
import type { RoleDefinition as AzureRoleDefinition } from './azure/rbac.js';
import { serveBlob, serveImds } from './azure/imds.js';
import { azurePipeline, requestUrl } from './azure/routes.js';
import { AzureStore, type J } from './azure/store.js';

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
export type { RoleDefinition as AzureRoleDefinition } from './azure/rbac.js';

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

export type AzurePowerState = 'starting' | 'running' | 'stopped' | 'deallocating' | 'deallocated' | 'deleted';

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
  /**
   * `properties.userData` as ARM holds it (base64), absent or empty when there is none; a PATCH
   * changes it, ARM's GET shows it only with `$expand=userData`, the VM's IMDS serves it.
   */
  userData?: string;
  /** How many PATCHes changed its userData. */
  userDataUpdates: number;
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
  /** When the eviction may start (the Preempt event's NotBefore), once announced. */
  evictionNotBefore?: Date;
  /** Who deallocated it: `vm:<group>` for its own identity, or an app name. */
  deallocatedBy?: string;
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
  /** The request parameters faults match on (azure/routes.ts): resourceGroup, name, location, vmSize, priority, clientId. */
  params?: Record<string, string>;
  /** Set when an injected fault answered or shaped this call. */
  fault?: string;
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
  /**
   * How long a VM's first scheduled events request takes, the one that enables the service
   * (Azure: up to two minutes); later ones answer at once. Default 1000 ms.
   */
  scheduledEventsStartMs?: number;
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
   * A role definition by its name (`cml-runner-action launcher`, `cml-runner-action VM`,
   * `Owner`...), live: a test may change its `actions` (and must put them back).
   */
  roleDefinition(name: string): AzureRoleDefinition;
  /**
   * Evicts the Spot VM of a group: publishes a Preempt scheduled event, waits `noticeMs` (default
   * 30 s, Azure's minimum notice), then applies its evictionPolicy (Delete: the VM and its OS disk
   * go, the group and its network stay; Deallocate: the VM is deallocated). Resolves once applied,
   * or as soon as the VM is gone on its own (its machine deleted its group during the notice).
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

export async function startFakeAzure(opts: FakeAzureOptions): Promise<FakeAzure> {
  const store = new AzureStore({
    machines: opts.machines,
    lroMs: opts.lroMs ?? 30,
    vmLroMs: opts.bootDelayMs ?? 100,
    deleteMs: opts.deleteMs ?? 30,
    retryAfter: String(opts.retryAfterSeconds ?? 0),
    scheduledEventsStartMs: opts.scheduledEventsStartMs ?? 1000,
  });
  const api = azurePipeline(store, opts.faults, opts.latencyMs);
  const main = await listenHttps(async (req, body, res) => {
    const u = requestUrl(req);
    // The serial log blob is storage, not ARM: it takes no token and no faults.
    if (u.pathname.startsWith('/_blob/')) serveBlob(store, req, u, res);
    else await api(req, body, res);
  });
  const meta = await serve('azure-imds', (req, _body, res) => serveImds(store, req, requestUrl(req), res));
  store.url = main.url;
  store.imdsUrl = meta.url;

  return {
    url: store.url,
    imdsUrl: store.imdsUrl,
    tenantId: store.tenant,
    subscriptionId: store.sub,
    calls: store.calls,
    groups: () => [...store.allGroups],
    vms: () => [...store.allVms],
    roleAssignments: () => [...store.assignments],
    roleDefinition: (name) => {
      const role = store.roleByName(name);
      if (!role) throw new Error(`azure fake: no role definition named ${name}`);
      return role;
    },
    evict: (group, how = {}) => evict(store, group, how.noticeMs),
    leftovers: () => store.leftovers(),
    ownsMachine: (m) => store.owned.has(m),
    federatedTokenFile: (dir, app = 'launcher') => federatedTokenFile(store, dir, app),
    imdsBase: (vm) => `${store.imdsUrl}/_imds/${vm.vmId}`,
    close: async () => {
      store.timers.close();
      await Promise.all([main.close(), meta.close()]);
      await Promise.all(store.allVms.map((v) => v.machine?.kill()));
    },
  };
}

/** A GitHub-Actions-like OIDC token (aud api://AzureADTokenExchange) that `app` trusts, written to a file. */
function federatedTokenFile(store: AzureStore, dir: string, app: AzureAppName): string {
  const now = Math.floor(Date.now() / 1000);
  const assertion = jwt(store, {
    iss: 'https://token.actions.githubusercontent.com',
    aud: FEDERATION_AUDIENCE,
    sub: 'repo:octo-org/ml:ref:refs/heads/main',
    iat: now,
    nbf: now,
    exp: now + 3600,
    repository: 'octo-org/ml',
  } satisfies J);
  store.federated.set(assertion, app);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `azure-federated-token-${app}`);
  fs.writeFileSync(file, assertion, { mode: 0o600 });
  return file;
}

type Handler = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => Promise<void> | void;

/** ARM and Entra are https only: a loopback https server with the sandbox certificate (tls/). */
async function listenHttps(handler: Handler): Promise<{ url: string; close(): Promise<void> }> {
  const tls = {
    cert: fs.readFileSync(path.join(TLS_DIR, 'server.pem')),
    key: fs.readFileSync(path.join(TLS_DIR, 'server-key.pem')),
  };
  const sockets = new Set<Socket>();
  const server = https.createServer(tls, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve(handler(req, Buffer.concat(chunks), res)).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`azure fake failed: ${err instanceof Error ? err.stack : String(err)}`);
      });
    });
  });
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  server.on('secureConnection', track);
  server.on('connection', track);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
