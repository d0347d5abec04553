import { AWS_NATIVE_REGION, AWS_NATIVE_TYPE, AWS_REGIONS, AWS_TYPES, awsFamilyHasGpu } from './aws.js';
import type { GenericGpu } from './generic.js';
import { isGenericRegion, isGenericType } from './generic.js';

/** What a cloud's catalog answers: native names for the generic words, and what it accepts natively. */
export interface CloudCatalog {
  /** Native region names accepted besides the generic ones, described for error messages. */
  nativeRegionHint: string;
  nativeTypeHint: string;
  region(value: string): string | undefined;
  /** The native machine type for a generic or native `type`, given the GPU asked for. */
  machineType(type: string, gpu: GenericGpu): string | undefined;
  /** Whether a native type already carries a GPU. */
  typeHasGpu(nativeType: string): boolean;
}

const aws: CloudCatalog = {
  nativeRegionHint: 'an AWS region such as us-east-2',
  nativeTypeHint: 'an EC2 instance type such as g5.2xlarge',
  region: (v) => (isGenericRegion(v) ? AWS_REGIONS[v] : AWS_NATIVE_REGION.test(v) ? v : undefined),
  machineType: (t, gpu) => (isGenericType(t) ? AWS_TYPES[gpu][t] : AWS_NATIVE_TYPE.test(t) ? t : undefined),
  typeHasGpu: awsFamilyHasGpu,
};

export const CATALOGS = { aws } as const;
export type CloudName = keyof typeof CATALOGS;
export const CLOUDS = Object.keys(CATALOGS) as CloudName[];
