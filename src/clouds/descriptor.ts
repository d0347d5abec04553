import type { InputReader, MachineSpec } from '../config/spec.js';
import type { GenericGpu } from './generic.js';
import type { Cloud, CloudContext } from './types.js';

/** The process environment, read once by the entry and passed down. */
export type Env = Readonly<Record<string, string | undefined>>;

/** What a cloud's catalog answers: native names for the generic words, and what it accepts natively. */
export interface CloudCatalog {
  /** Native region names accepted besides the generic ones, described for error messages. */
  nativeRegionHint: string;
  nativeTypeHint: string;
  /** The native region; '' where regions do not apply (Kubernetes); undefined when not accepted. */
  region(value: string): string | undefined;
  /** The native machine type for a generic or native `type`, given the GPU asked for. */
  machineType(type: string, gpu: GenericGpu): string | undefined;
  /** Whether a native type already carries a GPU. */
  typeHasGpu(nativeType: string): boolean;
  /** Whether the `image` input names an image this cloud can boot; `imageHint` says what it accepts. */
  image(value: string): boolean;
  imageHint: string;
  /**
   * The runner architecture of a native type, with the cloud's own options (a Kubernetes node
   * selector); undefined when it is not known before the machine starts.
   */
  architecture(nativeType: string, options: unknown): RunnerArchitecture | undefined;
}

/** A runner's architecture as GitHub labels it. */
export type RunnerArchitecture = 'X64' | 'ARM64';

/**
 * The architecture every machine of a spec will have, when all its types agree on one. A fallback
 * list that mixes x86 and Arm types, or a type whose architecture is known only once it starts,
 * has none, and `unknown` says why.
 */
export function sharedArchitecture(
  catalog: Pick<CloudCatalog, 'architecture'>,
  types: readonly string[],
  options: unknown,
): { architecture: RunnerArchitecture } | { unknown: string } {
  const found = types.map((type) => ({ type, architecture: catalog.architecture(type, options) }));
  const open = found.find((f) => f.architecture === undefined);
  if (open) return { unknown: `the architecture of ${open.type} is not known before the machine starts` };
  const first = found[0]?.architecture;
  if (first === undefined) return { unknown: 'no machine type was given' };
  if (found.some((f) => f.architecture !== first)) {
    return { unknown: `the types mix architectures (${found.map((f) => `${f.type} ${f.architecture}`).join(', ')})` };
  }
  return { architecture: first };
}

/** What a provider module exports: how to build its Cloud. */
export interface ProviderModule<O> {
  createCloud(options: O, region: string, ctx: CloudContext): Cloud;
}

/**
 * One cloud, as the rest of the product sees it before its SDK is loaded. A descriptor never
 * imports its SDK: `load()` does, so each SDK stays a chunk of its own in the bundle.
 */
export interface CloudDescriptor<O = unknown> {
  readonly name: string;
  /** How the cloud is named to users: AWS, Azure, Google Cloud, Kubernetes. */
  readonly title: string;
  readonly catalog: CloudCatalog;
  /**
   * Reads this cloud's own inputs and environment into typed options, validated with InputError.
   * With `machine` (main) the rules that depend on the machine are checked too; post passes
   * none, and gets what is needed to reach the machines again.
   */
  options(read: InputReader, env: Env, machine?: MachineSpec): O;
  /** Values inside the options that must never reach a log (a kubeconfig's token). */
  secrets?(options: O): string[];
  load(): Promise<ProviderModule<O>>;
}
