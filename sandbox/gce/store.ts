/**
 * The fake Compute Engine's state: instances (live, by id, and every one ever made), disks,
 * zone operations, request ids, the tokens it issued, the machines it booted, its timers and its
 * call log; and what is left over. Controllers (controllers/) act on it; nothing else keeps state.
 */
import crypto from 'node:crypto';
import type { GceCall, GceDisk, GceInstance } from '../gce.js';
import { Timers } from '../core/index.js';
import type { Machine, MachineFleet } from '../machine.js';
import { TokenStore, makeSubjectToken } from './auth.js';
import { API_ROOT, GCE_PROJECT, NETWORKS, type NetworkSpec } from './catalog.js';
import { notFound } from './errors.js';
import type { InsertPlan } from './validate.js';
import { type Policies, loadPolicies } from './policy.js';

export type J = Record<string, unknown>;

export interface Internal extends GceInstance {
  plan: InsertPlan;
  mac: string;
  lastStartTimestamp?: Date;
  lastStopTimestamp?: Date;
  insertOp?: OpRecord;
  bannerLines: string[];
}

export interface OpError {
  code: string;
  message: string;
  errorDetails?: unknown[];
  http: number;
}

export interface OpRecord {
  id: string;
  name: string;
  zone: string;
  operationType: 'insert' | 'delete' | 'setMetadata';
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

/** What the sandbox project is like beyond the catalogue; tests change it with `configure`. */
export interface GceProjectSettings {
  /** The project has no `default` network (deleted, or constraints/compute.skipDefaultNetworkCreation). */
  noDefaultNetwork: boolean;
  /**
   * The organisation policy constraints/compute.vmExternalIpAccess allows no VM an external IP
   * ("Organization policy constraints", https://cloud.google.com/resource-manager/docs/organization-policy/org-policy-constraints).
   */
  denyExternalIp: boolean;
  /**
   * Permissions taken out of the deployer's roles (narrower than docs/permissions/gcp/);
   * `iam.serviceAccounts.actAs` takes away its binding on the VM's account (service-account-user.yaml).
   */
  deployerLacks: string[];
  /** Accounts besides the documented one that the deployer was also granted roles/iam.serviceAccountUser on. */
  deployerActsAs: string[];
  /** The repository that workload-identity-condition.txt names (`OWNER/REPO`) in the provider. */
  wifRepository: string;
}

export const DEFAULT_PROJECT_SETTINGS: GceProjectSettings = {
  noDefaultNetwork: false,
  denyExternalIp: false,
  deployerLacks: [],
  deployerActsAs: [],
  wifRepository: 'octo-org/ml',
};

export interface StoreOptions {
  machines: MachineFleet;
  /** PROVISIONING → RUNNING (and the machine boot); also the time spent STOPPING. */
  bootDelayMs: number;
  /** Length of a Compute Engine second for `maxRunDuration`. */
  secondMs: number;
}

export const zoneLink = (zone: string): string => `${API_ROOT}/projects/${GCE_PROJECT}/zones/${zone}`;
export const instanceLink = (zone: string, name: string): string => `${zoneLink(zone)}/instances/${name}`;
export const instancePath = (zone: string, name: string): string =>
  `projects/${GCE_PROJECT}/zones/${zone}/instances/${name}`;

/** Timestamps as the API writes them: RFC 3339 with milliseconds in Pacific time. */
export function gceTime(d: Date): string {
  return new Date(d.getTime() - 7 * 3600_000).toISOString().replace('Z', '-07:00');
}
export const numericId = (): string =>
  `${1 + crypto.randomInt(9)}${Array.from({ length: 18 }, () => crypto.randomInt(10)).join('')}`;

/** How long a `requestId` makes a retried insert or delete answer the first operation. */
const REQUEST_ID_TTL_MS = 60 * 60 * 1000;

export class GceStore {
  readonly machines: MachineFleet;
  readonly bootDelayMs: number;
  readonly stopDelayMs: number;
  readonly secondMs: number;
  readonly tokens = new TokenStore();
  /** The workflow's GitHub OIDC token, the one STS accepts. */
  readonly subjectToken = makeSubjectToken();
  /** The roles and conditions of docs/permissions/gcp/ (a document the evaluator cannot read stops the fake here). */
  readonly policies: Policies = loadPolicies();
  readonly timers = new Timers();
  readonly calls: GceCall[] = [];
  /** Every instance ever created, in creation order. */
  readonly all: Internal[] = [];
  /** zone/name → the instance not deleted. */
  readonly live = new Map<string, Internal>();
  readonly byId = new Map<string, Internal>();
  /** zone/name → a disk not deleted. */
  readonly disks = new Map<string, GceDisk>();
  readonly allDisks: GceDisk[] = [];
  /** zone/name → operation. */
  readonly ops = new Map<string, OpRecord>();
  readonly owned = new Set<Machine>();
  /** An instance's `maxRunDuration` timer, by instance id. */
  readonly instanceTimers = new Map<string, NodeJS.Timeout>();
  /** Deletes under way, by instance id: a second delete waits on the same end. */
  readonly pendingDelete = new Map<string, Promise<void>>();
  private readonly requestIds = new Map<string, { op: OpRecord; at: number }>();
  private readonly pauses = new Set<() => void>();
  private ipCounter = 2;
  /** The loopback server's URL, once it listens (metadata hosts are built from it). */
  url = '';
  settings: GceProjectSettings = { ...DEFAULT_PROJECT_SETTINGS };

  constructor(opts: StoreOptions) {
    this.machines = opts.machines;
    this.bootDelayMs = opts.bootDelayMs;
    this.stopDelayMs = opts.bootDelayMs;
    this.secondMs = opts.secondMs;
  }

  get closed(): boolean {
    return this.timers.isClosed;
  }

  /** Waits `ms` of the service's time; closing the fake ends every wait at once. */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) {
        resolve();
        return;
      }
      const done = (): void => {
        this.pauses.delete(done);
        resolve();
      };
      this.pauses.add(done);
      this.timers.later(ms, done);
    });
  }

  /** The project's VPC networks, as the settings leave them. */
  networks(): readonly NetworkSpec[] {
    return NETWORKS.filter((n) => !(n.name === 'default' && this.settings.noDefaultNetwork));
  }

  nextAddressIndex(): number {
    return this.ipCounter++;
  }

  findLive(zone: string, name: string): Internal {
    const i = this.live.get(`${zone}/${name}`);
    if (!i) throw notFound(instancePath(zone, name));
    return i;
  }

  /** The live instance of that name, else the last one that had it. */
  instance(zone: string, name: string): Internal | undefined {
    return this.live.get(`${zone}/${name}`) ?? this.all.findLast((i) => i.zone === zone && i.name === name);
  }

  findOp(zone: string, name: string): OpRecord {
    const op = this.ops.get(`${zone}/${name}`);
    if (!op) throw notFound(`projects/${GCE_PROJECT}/zones/${zone}/operations/${name}`);
    return op;
  }

  /** The operation a request id already answered, while the id is remembered. */
  priorOp(requestId: string | undefined): OpRecord | undefined {
    if (requestId === undefined) return undefined;
    const prior = this.requestIds.get(requestId);
    if (!prior || Date.now() - prior.at > REQUEST_ID_TTL_MS) return undefined;
    return prior.op;
  }

  rememberRequest(requestId: string | undefined, op: OpRecord): void {
    if (requestId) this.requestIds.set(requestId, { op, at: Date.now() });
  }

  addInstance(inst: Internal): void {
    this.all.push(inst);
    this.live.set(`${inst.zone}/${inst.name}`, inst);
    this.byId.set(inst.id, inst);
    for (const d of inst.disks) {
      this.disks.set(`${d.zone}/${d.name}`, d);
      this.allDisks.push(d);
    }
  }

  /** The instance is gone from the API; its disks go with it (autoDelete) or stay, still billed. */
  dropInstance(inst: Internal): void {
    inst.deleted = true;
    inst.endedAt ??= new Date();
    if (inst.status !== 'TERMINATED') inst.status = 'TERMINATED';
    this.live.delete(`${inst.zone}/${inst.name}`);
    for (const d of inst.disks) {
      if (d.state !== 'attached') continue;
      if (d.autoDelete) {
        d.state = 'deleted';
        this.disks.delete(`${d.zone}/${d.name}`);
      } else {
        d.state = 'detached';
      }
    }
  }

  /** One line per instance not deleted (TERMINATED included: its disks bill) and per orphaned disk. */
  leftovers(): string[] {
    const lines: string[] = [];
    for (const i of this.all) {
      if (i.deleted) continue;
      const labels = Object.entries(i.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      const stopped = i.status === 'TERMINATED' ? ' (stopped: its disks are still billed)' : '';
      lines.push(
        `GCE instance ${i.name} (id ${i.id}, ${i.machineType}, ${i.provisioningModel}, ${i.zone}) is ${i.status}${stopped}` +
          `${labels ? `; labels ${labels}` : ''}`,
      );
    }
    for (const d of this.allDisks) {
      if (d.state === 'detached') {
        lines.push(
          `GCE disk ${d.name} (${d.sizeGb} GB ${d.type}, ${d.zone}) was left after instance ${d.instanceName} was deleted: autoDelete was false`,
        );
      }
    }
    return lines;
  }

  /** Cancels every timer, ends every wait, and wakes every operation waiter. */
  close(): void {
    this.timers.close();
    for (const done of [...this.pauses]) done();
    for (const op of this.ops.values()) for (const w of [...op.waiters]) w();
  }
}
