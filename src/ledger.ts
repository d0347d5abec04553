import type { CloudName } from './catalog/index.js';
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
}

export interface MachineEntry {
  runnerName: string;
  clientToken: string;
  /** Known once the cloud answered; otherwise the machine is found by client token. */
  id?: string;
  type?: string;
  spot?: boolean;
}

export interface LedgerData {
  cloud: CloudName;
  region: string;
  forge: { scope: ForgeScope; apiUrl: string };
  registrations: RegistrationEntry[];
  machines: MachineEntry[];
  /** True once every runner was online: healthy runners then end themselves. */
  complete: boolean;
}

export class Ledger {
  constructor(
    readonly data: LedgerData,
    private readonly persist: (data: LedgerData) => void,
  ) {
    this.persist(this.data);
  }

  static empty(cloud: CloudName, region: string, forge: LedgerData['forge']): LedgerData {
    return { cloud, region, forge, registrations: [], machines: [], complete: false };
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

  /** Records what an answer told us about an entry. */
  update<T extends object>(entry: T, fields: Partial<T>): void {
    Object.assign(entry, fields);
    this.persist(this.data);
  }

  markComplete(): void {
    this.data.complete = true;
    this.persist(this.data);
  }

  get isEmpty(): boolean {
    return this.data.registrations.length === 0 && this.data.machines.length === 0;
  }
}
