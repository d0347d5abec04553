import type { CloudName } from './clouds/index.js';
import type { ResourceRecorder } from './clouds/types.js';
import type { ForgeScope } from './config.js';

/**
 * Everything a launch created, written down before the next call. An entry is added before
 * the create call (with what lets us find the thing if the answer never arrives) and completed
 * when the answer comes. Post, cleanup and the tests read it back.
 */

export interface RegistrationEntry {
  name: string;
  /** Known once GitHub answered; otherwise the registration is found by name. */
  id?: number;
  /** Deleted already (by main, after a failed launch): post has nothing to do for it. */
  ended?: true;
}

export interface MachineEntry {
  runnerName: string;
  clientToken: string;
  /** Known once the cloud answered; otherwise the machine is found by client token. */
  id?: string;
  type?: string;
  spot?: boolean;
  /** The cloud refused this create outright (no capacity there): nothing exists, but post still checks. */
  refused?: string;
  /** Ended already (by main, after a failed launch). */
  ended?: true;
}

/**
 * A cloud resource the launch made besides machines (an AWS security group its machines share).
 * Written before the create call, so a lost answer is found by `name`; ended after the machines.
 */
export interface ResourceEntry {
  kind: string;
  name: string;
  /** Known once the cloud answered. */
  id?: string;
  /** Deleted already. */
  ended?: true;
}

export interface LedgerData {
  cloud: CloudName;
  region: string;
  forge: { scope: ForgeScope; apiUrl: string };
  registrations: RegistrationEntry[];
  machines: MachineEntry[];
  /** Absent in a ledger written before resources were recorded. */
  resources?: ResourceEntry[];
  /** True once the launch finished: the runners named in `keep` were online and end themselves. */
  complete: boolean;
  /**
   * Runners to leave alone: written when the launch finished, before anything else is ended.
   * Post ends every entry of a runner not named here.
   */
  keep: string[];
}

export class Ledger {
  constructor(
    readonly data: LedgerData,
    private readonly persist: (data: LedgerData) => void,
  ) {
    this.persist(this.data);
  }

  static empty(cloud: CloudName, region: string, forge: LedgerData['forge']): LedgerData {
    return { cloud, region, forge, registrations: [], machines: [], resources: [], complete: false, keep: [] };
  }

  registration(name: string): RegistrationEntry {
    const entry: RegistrationEntry = { name };
    this.data.registrations.push(entry);
    this.persist(this.data);
    return entry;
  }

  machine(runnerName: string, clientToken: string): MachineEntry {
    const entry: MachineEntry = { runnerName, clientToken };
    this.data.machines.push(entry);
    this.persist(this.data);
    return entry;
  }

  resource(kind: string, name: string): ResourceEntry {
    const entry: ResourceEntry = { kind, name };
    this.data.resources ??= [];
    this.data.resources.push(entry);
    this.persist(this.data);
    return entry;
  }

  /** What a cloud records its resources through, before each create. */
  get recorder(): ResourceRecorder {
    return {
      add: (kind, name) => {
        const entry = this.resource(kind, name);
        return { created: (id) => this.update(entry, { id }) };
      },
    };
  }

  /** Records what an answer told us about an entry. */
  update<T extends object>(entry: T, fields: Partial<T>): void {
    Object.assign(entry, fields);
    this.persist(this.data);
  }

  /** Drops an entry whose create was refused before anything was made (GitHub refused the token). */
  forget(entry: RegistrationEntry): void {
    const i = this.data.registrations.indexOf(entry);
    if (i >= 0) this.data.registrations.splice(i, 1);
    this.persist(this.data);
  }

  /** The launch is over: these runners stay; everything else is for main or post to end. */
  finish(keep: readonly string[]): void {
    this.data.keep = [...keep];
    this.data.complete = true;
    this.persist(this.data);
  }

  /**
   * Marks every entry outside `keep` as ended, once a cleanup succeeded; resources too when no
   * runner is kept, except those named in `left` (still in use: post tries them again).
   */
  markEnded(left: ReadonlySet<string> = new Set()): void {
    const keep = new Set(this.data.keep);
    for (const e of this.data.registrations) if (!keep.has(e.name)) e.ended = true;
    for (const e of this.data.machines) if (!keep.has(e.runnerName)) e.ended = true;
    if (keep.size === 0) for (const e of this.data.resources ?? []) if (!left.has(e.name)) e.ended = true;
    this.persist(this.data);
  }

  get isEmpty(): boolean {
    const { registrations, machines, resources } = this.data;
    return registrations.length === 0 && machines.length === 0 && (resources ?? []).length === 0;
  }
}

/**
 * What is left to end: entries of runners not kept, not ended yet; and the launch's resources
 * when no runner is kept (a kept runner's machine still uses them: cleanup or sweep ends them).
 */
export function pending(data: LedgerData): {
  registrations: RegistrationEntry[];
  machines: MachineEntry[];
  resources: ResourceEntry[];
} {
  const keep = new Set(data.keep ?? []);
  return {
    registrations: data.registrations.filter((e) => !keep.has(e.name) && !e.ended),
    machines: data.machines.filter((e) => !keep.has(e.runnerName) && !e.ended),
    resources: keep.size === 0 ? (data.resources ?? []).filter((e) => !e.ended) : [],
  };
}

/** Whether a pending set has nothing in it. */
export function nothingPending(todo: ReturnType<typeof pending>): boolean {
  return todo.registrations.length === 0 && todo.machines.length === 0 && todo.resources.length === 0;
}
