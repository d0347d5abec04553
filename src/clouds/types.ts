import type { CloudScriptSettings, RunnerCredential } from '../bootstrap/render.js';
import type { MachineSpec } from '../config.js';
import type { Log } from '../log.js';
import type { Clock } from '../retry.js';

/**
 * The one interface between the lifecycle and the clouds. A provider never reads inputs or the
 * process environment and never talks to the forge; it creates, watches and ends machines.
 */

/** What every provider is built with. `env` is the environment its SDK's credential chain reads. */
export interface CloudContext {
  env: Readonly<Record<string, string | undefined>>;
  log: Log;
  clock: Clock;
  /** The launch's cancel signal: retry waits and new creations stop when it aborts. */
  signal?: AbortSignal;
}

export interface MachineRequest {
  runnerName: string;
  /** 1 for the runner's first machine; more when an earlier one had no room and was ended. */
  attempt: number;
  /** The rendered startup script. */
  startupScript: string;
  /** Every tag the machine and its disks and interfaces carry. */
  tags: Record<string, string>;
  /** Idempotency key recorded before the create call, so an interrupted create can be found. */
  clientToken: string;
  /**
   * The runner's credential. A VM gets it inside `startupScript`, unless its cloud's
   * `credentialFrom` names another way (Azure user data); a container cloud keeps it out of the
   * script and hands it over apart (a Kubernetes Secret).
   */
  credential: RunnerCredential;
  /** The runner version the launch resolved, for images tagged by it. */
  runnerVersion: string;
  /** max-lifetime, for clouds that enforce it themselves (Kubernetes activeDeadlineSeconds). */
  maxLifetimeSeconds: number;
}

export interface Machine {
  id: string;
  type: string;
  spot: boolean;
  zone?: string;
}

/**
 * One place to try a machine: a native type, a market, and where (an AWS subnet, a Compute
 * Engine zone; undefined lets the cloud choose). The lifecycle tries them in order, moving on
 * only when the cloud had no capacity there.
 */
export interface Placement {
  type: string;
  spot: boolean;
  where?: string;
}

/** A machine found by its tags rather than a ledger: what cleanup and sweep act on. */
export interface ManagedMachine {
  id: string;
  runnerName: string;
  runId?: string;
  repo?: string;
  /** The cml-runner:expires-at tag, epoch ms. */
  expiresAt?: number;
  /** When the cloud created it, epoch ms. */
  createdAt?: number;
  state: MachineState;
}

/** `failed`: the machine cannot start (a pod that cannot be scheduled, an image that cannot be pulled). */
export type MachineState = 'starting' | 'running' | 'ending' | 'stopped' | 'failed' | 'gone';

export interface MachineStatus {
  state: MachineState;
  /** What the cloud says about it, for a failure message: a scheduler event, a termination reason. */
  detail?: string;
  /** `capacity`: it failed for lack of room (no node fits the pod); another type may fit. */
  fallback?: 'capacity';
}

/** A cloud, ready to watch and end machines. `prepare()` gives what can launch them. */
export interface Cloud {
  readonly name: string;
  /** How the cloud is named to users in errors: AWS, Azure, Google Cloud, Kubernetes. */
  readonly title: string;
  /** Region, or for Kubernetes the namespace. Post finds the machines again with it. */
  readonly region: string;
  /**
   * `vm`: the startup script carries the credential (or says where to read it) and ends with a
   * shutdown. `container`: the script is the container's command, reads the credential from its
   * environment and exits.
   */
  readonly kind: 'vm' | 'container';
  /**
   * Resolves what every machine of this launch shares (image, zones, a dry run) before anything
   * exists. Only the prepared cloud can launch, so the order is in the types.
   */
  prepare(spec: MachineSpec, resources?: ResourceRecorder): Promise<PreparedCloud>;
  /**
   * Every machine this action made for a repository, and for one run if `runId` is given: live
   * ones, and ended ones the cloud still shows (their tags name the runner whose registration
   * may be left).
   */
  list(filter: { repo: string; runId?: string }): Promise<ManagedMachine[]>;
  /** The state of each machine, in one call; a machine the cloud no longer knows is `gone`. */
  states(ids: readonly string[]): Promise<Map<string, MachineStatus>>;
  /** The machine's own console log, for a launch that failed. */
  consoleLog(id: string): Promise<string>;
  /** Ends a machine; one that is already gone counts as ended. */
  terminate(id: string): Promise<'terminated' | 'gone'>;
  /** Machines created with this client token, for a create whose answer never arrived. */
  findByClientToken(clientToken: string): Promise<string[]>;
  /**
   * What a launch made besides machines (an AWS security group), for a repository and for one run
   * if `runId` is given; `inUse` when a machine that is not ending still uses it, `held` when
   * only ending machines do (deleting it waits for them).
   */
  listResources?(filter: {
    repo: string;
    runId?: string;
  }): Promise<Array<CloudResource & { inUse: boolean; held: boolean }>>;
  /**
   * Deletes one, after the machines that used it were ended: waits a bounded time while ending
   * machines still hold it, then answers `in use`. One that is already gone counts as deleted.
   */
  deleteResource?(resource: CloudResource): Promise<'deleted' | 'gone' | 'in use'>;
}

/** A cloud resource a launch made besides machines; `id` is known once the create answered. */
export interface CloudResource {
  kind: string;
  name: string;
  id?: string;
}

/** Writes a resource down before the call that creates it; `created` records the cloud's id. */
export interface ResourceRecorder {
  add(kind: string, name: string): { created(id: string): void };
}

/** A cloud prepared for one launch spec. */
export interface PreparedCloud {
  /** What this cloud adds to the startup script: a spot notice to watch, a way to delete itself. */
  readonly scriptSettings: CloudScriptSettings;
  /**
   * Where this spec may go besides its type, in the order to try: AWS subnets, Compute Engine
   * zones; `[undefined]` when the cloud chooses.
   */
  readonly places: ReadonlyArray<string | undefined>;
  /**
   * The spec's types this cloud offers where it launches, in the spec's order, when it checked
   * (EC2 instance type offerings, Azure resource SKUs): the others are left out of the fallback
   * order. Absent: every type of the spec.
   */
  readonly types?: readonly string[];
  /** Warnings about this launch (a right the launching identity lacks), reported once. */
  readonly warnings: readonly string[];
  launch(request: MachineRequest, placement: Placement): Promise<Machine>;
  /**
   * Called once for each machine whose runner came online and is kept: the cloud removes what
   * the machine needed only to start (Compute Engine's startup-script metadata, which holds a
   * reusable runner's registration token). A failure is a warning; the runner stays.
   */
  online?(machine: Machine): Promise<void>;
}
