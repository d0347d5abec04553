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
