import type { CloudName } from '../catalog/index.js';
import type { MachineSpec } from '../config.js';

/**
 * The one interface between the lifecycle and the clouds. A provider never reads inputs and
 * never talks to the forge; it creates, watches and ends machines.
 */

export interface MachineRequest {
  runnerName: string;
  /** The rendered startup script. */
  startupScript: string;
  /** Every tag the machine and its disks and interfaces carry. */
  tags: Record<string, string>;
  /** Idempotency key recorded before the create call, so an interrupted create can be found. */
  clientToken: string;
}

export interface Machine {
  id: string;
  type: string;
  spot: boolean;
  zone?: string;
}

export type MachineState = 'starting' | 'running' | 'ending' | 'stopped' | 'gone';

export interface Cloud {
  readonly name: CloudName;
  readonly region: string;
  /** Resolves what every machine of this launch shares (image, disk layout) before anything exists. */
  prepare(spec: MachineSpec): Promise<void>;
  launch(spec: MachineSpec, request: MachineRequest): Promise<Machine>;
  /** The state of each machine, in one call; a machine the cloud no longer knows is `gone`. */
  states(ids: readonly string[]): Promise<Map<string, MachineState>>;
  /** The machine's own console log, for a launch that failed. */
  consoleLog(id: string): Promise<string>;
  /** Ends a machine; one that is already gone counts as ended. */
  terminate(id: string): Promise<'terminated' | 'gone'>;
  /** Machines created with this client token, for a create whose answer never arrived. */
  findByClientToken(clientToken: string): Promise<string[]>;
}

export async function loadCloud(name: CloudName, region: string): Promise<Cloud> {
  switch (name) {
    case 'aws': {
      const { AwsCloud } = await import('./aws.js');
      return new AwsCloud(region);
    }
  }
}
