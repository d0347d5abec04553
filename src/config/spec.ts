import type { CloudSpec } from '../clouds/index.js';
import type { Env } from '../clouds/descriptor.js';
import type { GenericGpu } from '../clouds/generic.js';

/**
 * The launch spec: one validated, typed object composed of the machine (generic words made
 * native), the runner, the forge, and the cloud's own options.
 */

/**
 * `launch` starts runners; `cleanup` ends everything this workflow run launched; `sweep` ends
 * everything of this repository's that outlived its purpose.
 */
export const MODES = ['launch', 'cleanup', 'sweep'] as const;
export type Mode = (typeof MODES)[number];

/** Where runners register: a repository or a whole organisation, on github.com or GHES. */
export type ForgeScope = { kind: 'repo'; owner: string; repo: string } | { kind: 'org'; org: string };

export interface ForgeSpec {
  driver: 'github';
  scope: ForgeScope;
  /** `https://github.com/owner/repo` or `https://github.com/org`: what `config.sh --url` takes. */
  url: string;
  apiUrl: string;
  token: string;
}

export interface RunnerSpec {
  labels: string[];
  /** One unique name per runner. */
  names: string[];
  single: boolean;
  idleTimeoutSeconds: number;
  maxLifetimeSeconds: number;
  startupTimeoutSeconds: number;
  /** Runner group by id or name; undefined means the default group. */
  group?: number | string;
  /** `latest`, or a version that must be the one GitHub offers. */
  version: string;
  /** A runner already unpacked in the machine image, used when its version is the one GitHub accepts. */
  cache?: string;
  /** Keep the runners that came online when others failed (otherwise all or nothing). */
  allowPartial: boolean;
  /** Skip launching when a matching runner is online (`online`), or online and idle (`idle`). */
  reuse?: 'online' | 'idle';
  /** On a VM, the runner's user may use sudo without a password (it is never root itself). */
  sudo: boolean;
}

/** What every cloud's machine is asked for, in generic terms made native by the cloud's catalog. */
export interface MachineSpec {
  /** The native region; '' where regions do not apply (Kubernetes). */
  region: string;
  /** Native machine types, in the order to try. */
  types: string[];
  gpu: GenericGpu;
  /** Whether the machine needs a GPU image: a GPU was asked for, or the native type has one. */
  wantsGpu: boolean;
  /** Root disk in GB; undefined keeps the image's own size. */
  hddSizeGb?: number;
  image?: string;
  spot: boolean;
  /** When spot has no capacity (or is refused at this price), try on-demand. */
  onDemandFallback: boolean;
  /** Maximum hourly price; undefined means up to the on-demand price (`spot-price: -1`). */
  spotPrice?: number;
  /** The user's own script, run first on the machine. */
  startupScript?: string;
  tags: Record<string, string>;
}

export interface LaunchSpec {
  mode: Mode;
  machine: MachineSpec;
  /** Which cloud, and its own options as its descriptor read them. */
  cloud: CloudSpec;
  runner: RunnerSpec;
  forge: ForgeSpec;
}

/** The workflow run a launch belongs to; it goes into tags. `env` is the process environment, read once. */
export interface RunContext {
  repository: string;
  runId: string;
  serverUrl: string;
  apiUrl: string;
  env: Env;
}

/**
 * Reads an input's value, '' when empty. `isSet` tells an input set to '' from one not given at
 * all, where the caller knows (the Actions runner sets every input with a default, so one that
 * is '' was set so); without it, an empty input takes its default.
 */
export type InputReader = ((name: string) => string) & { isSet?: (name: string) => boolean };
