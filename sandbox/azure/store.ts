/**
 * The fake Azure's state: resource groups and what is in them, VMs, role assignments, issued
 * tokens, asynchronous operations and the inventory (`leftovers`). Every part of the fake is
 * handed this store; none keeps state of its own.
 */
import crypto from 'node:crypto';
import { Timers } from '../core/index.js';
import type { Machine, MachineFleet } from '../machine.js';
import type { AzureCall, AzureGroup, AzureRoleAssignment, AzureVm } from '../azure.js';
import { AZURE_APPS, AZURE_SUBSCRIPTION_ID, AZURE_TENANT_ID, type AzureAppName, ROLE_IDS } from './catalog.js';
import { type Condition, type RoleDefinition, builtInRoles, conditionFromFile, customRole } from './rbac.js';

export type J = Record<string, unknown>;

export const uuid = (): string => crypto.randomUUID();
export const b64url = (v: string | Buffer): string => Buffer.from(v).toString('base64url');
export const lower = (s: string): string => s.toLowerCase();

/** A token the fake issued (Entra or a VM's IMDS); ARM accepts only these. */
export interface Issued {
  token: string;
  principal: string;
  appId: string;
  /** App name, or `vm:<group>`. */
  identity: string;
  audience: string;
  expiresAt: number;
}

export type OpResult = { status: 'Succeeded' } | { status: 'Failed'; error: { code: string; message: string } };

export interface AsyncOp {
  id: string;
  started: Date;
  doneAt: number;
  /** Applies the result once (resource state), returns the final status. */
  finish: () => OpResult;
  result?: OpResult;
}

export interface Resource {
  id: string;
  type: string;
  name: string;
  location: string;
  body: J;
}

export interface Group extends AzureGroup {
  resources: Map<string, Resource>;
  deletion?: { doneAt: number };
}

export interface Vm extends AzureVm, Resource {
  serialBanner: string[];
  /** The GPU's driver does not work on this VM: what `nvidia-smi` says, its exit code, the kernel's line. */
  driverFailure?: { message: string; exit: number; kernel?: string };
  /** Lower-case id of its primary NIC. */
  nicId: string;
}

/** What a controller answers; the routes add ARM's headers and the call log's fields. */
export interface Reply {
  status: number;
  json?: J;
  headers?: Record<string, string>;
  /** An async operation's status as answered: InProgress, Succeeded, Failed. */
  lroStatus?: string;
}

export interface StoreConfig {
  machines: MachineFleet;
  /** A network create's async operation. */
  lroMs: number;
  /** A VM create's async operation, before the VM is up and its machine boots. */
  vmLroMs: number;
  /** A resource group's deletion. */
  deleteMs: number;
  /** `Retry-After` (seconds, as text) on 201/202 and InProgress answers. */
  retryAfter: string;
  /** How long a VM's first scheduled events request takes (it enables the service). */
  scheduledEventsStartMs: number;
}

export class AzureStore {
  readonly tenant = AZURE_TENANT_ID;
  readonly sub = AZURE_SUBSCRIPTION_ID;
  readonly subScope = `/subscriptions/${AZURE_SUBSCRIPTION_ID}`;
  readonly signingKey = crypto.randomBytes(32);
  readonly timers = new Timers();
  readonly calls: AzureCall[] = [];
  /** Live groups, by lower-case name. */
  readonly groups = new Map<string, Group>();
  readonly allGroups: Group[] = [];
  readonly allVms: Vm[] = [];
  assignments: AzureRoleAssignment[] = [];
  /** Role definitions by lower-case id: the built-in ones, and the custom roles of docs/permissions/azure/. */
  readonly roles = new Map<string, RoleDefinition>();
  /** Each app's own role at subscription scope (the launcher's with its condition); not in `assignments`. */
  readonly standing: Array<{ principalId: string; scope: string; roleId: string; condition?: Condition }> = [];
  readonly tokens = new Map<string, Issued>();
  readonly ops = new Map<string, AsyncOp>();
  /** A group deletion's operation token → the group. */
  readonly deletions = new Map<string, Group>();
  /** A federated assertion → the app that trusts it. */
  readonly federated = new Map<string, AzureAppName>();
  /** A VM's managed identity (principal id) → the VM. */
  readonly vmIdentities = new Map<string, Vm>();
  /** A VM's id → when its scheduled events service is enabled (its first request plus the start time). */
  readonly scheduledEventsFrom = new Map<string, number>();
  /** Boot diagnostics SAS signatures → the VM whose serial log they read. */
  readonly blobSigs = new Map<string, { vm: Vm; expires: number }>();
  readonly owned = new Set<Machine>();
  /** `https://127.0.0.1:PORT` (Entra, ARM, blobs); set once listening. */
  url = '';
  /** `http://127.0.0.1:PORT` (IMDS); set once listening. */
  imdsUrl = '';

  constructor(readonly config: StoreConfig) {
    const launcher = customRole('launcher-role.json', ROLE_IDS.launcher, this.sub);
    const without = {
      ...launcher,
      id: ROLE_IDS.launcherWithoutAssignments,
      roleName: `${launcher.roleName} (without role assignments)`,
      actions: launcher.actions.filter((a) => a !== 'Microsoft.Authorization/roleAssignments/write'),
    };
    const vm = customRole('vm-role.json', ROLE_IDS.vm, this.sub);
    for (const r of [...builtInRoles(ROLE_IDS), launcher, without, vm]) this.roles.set(lower(r.id), r);
    const condition = conditionFromFile('launcher-condition.txt', ROLE_IDS.vm).check;
    for (const app of Object.values(AZURE_APPS)) {
      this.standing.push({
        principalId: app.objectId,
        scope: this.subScope,
        roleId: ROLE_IDS[app.role],
        ...(app.conditioned ? { condition } : {}),
      });
    }
  }

  /** A role definition by its name (`roleName`), any case. */
  roleByName(name: string): RoleDefinition | undefined {
    return [...this.roles.values()].find((r) => lower(r.roleName) === lower(name));
  }

  /** The resource ARM accepts tokens for: the endpoint, with or without its trailing slash. */
  armAudiences(): string[] {
    return [this.url, `${this.url}/`];
  }

  /** The live group of that name (any case). */
  group(name: string): Group | undefined {
    return this.groups.get(lower(name));
  }

  /** A resource by its ARM id, if it exists and has that type. */
  lookup(id: string | undefined, type: string): Resource | undefined {
    if (!id) return undefined;
    const m = new RegExp(
      `^/subscriptions/${this.sub}/resourceGroups/([^/]+)/providers/${type}/([^/]+)(/.*)?$`,
      'i',
    ).exec(id);
    if (!m) return undefined;
    return this.group(m[1]!)?.resources.get(lower(`${type}/${m[2]}`));
  }

  /** The VM of a group that is still in it, if any. */
  liveVm(groupName: string): Vm | undefined {
    const g = this.group(groupName);
    return this.allVms.find(
      (v) => !v.deleted && lower(v.group) === lower(groupName) && g?.resources.get(lower(`${v.type}/${v.name}`)) === v,
    );
  }

  /** One line per resource group not deleted, per VM still running or stopped, and per machine of a gone VM still on. */
  leftovers(): string[] {
    const lines: string[] = [];
    for (const g of this.allGroups) {
      if (g.deleted) continue;
      const inside = [...g.resources.values()].map((r) => `${r.type.split('/').pop()}/${r.name}`);
      lines.push(
        `Azure resource group ${g.name} (${g.location}, ${g.provisioningState}) still exists${inside.length ? ` with ${inside.join(', ')}` : ''}${tagText(g.tags)}`,
      );
    }
    for (const vm of this.allVms) {
      const line = vmLeftover(vm);
      if (line) lines.push(line);
    }
    return lines;
  }
}

function tagText(t: Record<string, string>): string {
  const text = Object.entries(t)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return text ? `; tags ${text}` : '';
}

function vmLeftover(vm: Vm): string | undefined {
  if (!vm.deleted && (vm.powerState === 'running' || vm.powerState === 'starting' || vm.powerState === 'stopped')) {
    const billed = vm.powerState === 'stopped' ? ' (stopped, not deallocated: still billed)' : '';
    return `Azure VM ${vm.group}/${vm.name} (vmId ${vm.vmId}, ${vm.vmSize}, ${vm.priority}, ${vm.location}) is ${vm.powerState}${billed}${tagText(vm.tags)}`;
  }
  // A VM that is gone (or deallocated) but whose machine lives on, or left processes.
  const m = vm.machine;
  if (!m) return undefined;
  const what = `machine ${m.id} (Azure VM ${vm.group}/${vm.name}, ${vm.deleted ? 'deleted' : vm.powerState})`;
  const pids = m.processes();
  if (pids.length > 0) return `${what} still has ${pids.length} process(es) running (pids ${pids.join(', ')})`;
  if (m.running) return `${what} is still powered on`;
  return undefined;
}
