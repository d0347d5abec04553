import { InputError } from '../errors.js';
import { AWS_NATIVE_REGION, AWS_NATIVE_TYPE, AWS_REGIONS, AWS_TYPES, awsFamilyHasGpu } from './aws.js';
import { AZURE_NATIVE_REGION, AZURE_NATIVE_TYPE, AZURE_REGIONS, AZURE_TYPES, azureTypeHasGpu, parseAzureImage } from './azure.js';
import { GCP_IMAGE, GCP_NATIVE_REGION, GCP_REGIONS, gcpMachineType, gcpTypeHasGpu } from './gcp.js';
import type { GenericGpu } from './generic.js';
import { isGenericRegion, isGenericType } from './generic.js';
import { formatPodSize, kubernetesSize } from './kubernetes.js';

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
  /** Whether the `image` input names an image this cloud can boot; `imageHint` says what it accepts. */
  image(value: string): boolean;
  imageHint: string;
}

const aws: CloudCatalog = {
  nativeRegionHint: 'an AWS region such as us-east-2',
  nativeTypeHint: 'an EC2 instance type such as g5.2xlarge',
  region: (v) => (isGenericRegion(v) ? AWS_REGIONS[v] : AWS_NATIVE_REGION.test(v) ? v : undefined),
  machineType: (t, gpu) => (isGenericType(t) ? AWS_TYPES[gpu][t] : AWS_NATIVE_TYPE.test(t) ? t : undefined),
  typeHasGpu: awsFamilyHasGpu,
  image: (v) => /^(ami-[0-9a-f]{8,17}|\/[A-Za-z0-9_.\/-]+)$/.test(v),
  imageHint: 'use an AMI id (ami-0123456789abcdef0) or the name of an SSM parameter that holds one (/aws/service/...)',
};

/** Azure: a region, a VM size. */
const azure: CloudCatalog = {
  nativeRegionHint: 'an Azure region such as eastus',
  nativeTypeHint: 'a VM size such as Standard_NC8as_T4_v3',
  region: (v) => (isGenericRegion(v) ? AZURE_REGIONS[v] : AZURE_NATIVE_REGION.test(v) && !v.includes('-') ? v : undefined),
  machineType: (t, gpu) => {
    if (!isGenericType(t)) return AZURE_NATIVE_TYPE.test(t) ? t : undefined;
    const row = AZURE_TYPES[gpu];
    if (typeof row === 'string') throw new InputError('gpu', gpu, row);
    return row[t];
  },
  typeHasGpu: azureTypeHasGpu,
  image: (v) => parseAzureImage(v) !== undefined,
  imageHint: 'use an image URN publisher:offer:sku:version (Canonical:ubuntu-24_04-lts:server:latest) or an image resource id',
};

/** Google Cloud: a region (the zone is chosen at launch), a machine type with its GPUs. */
const gcp: CloudCatalog = {
  nativeRegionHint: 'a Google Cloud region such as us-central1',
  nativeTypeHint: 'a Compute Engine machine type such as g2-standard-8, or an N1 type with GPUs attached such as n1-standard-8+nvidia-tesla-t4 or n1-standard-16+2xnvidia-tesla-v100',
  region: (v) => (isGenericRegion(v) ? GCP_REGIONS[v] : GCP_NATIVE_REGION.test(v) ? v : undefined),
  machineType: (t, gpu) => gcpMachineType(t, gpu, isGenericType(t)),
  typeHasGpu: gcpTypeHasGpu,
  image: (v) => GCP_IMAGE.test(v),
  imageHint: 'use an image or image family path (projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64, projects/my-project/global/images/my-runner) or its full URL',
};

/** A cluster has no regions: the namespace (kubernetes-namespace) is where runners go. */
const kubernetes: CloudCatalog = {
  nativeRegionHint: 'any value (region does not apply to Kubernetes)',
  nativeTypeHint: 'a pod size CPU/MEMORY or CPU/MEMORY/GPUS in Kubernetes quantities, such as 4/16Gi or 16/64Gi/2',
  region: (v) => v,
  machineType: (t, gpu) => {
    const size = kubernetesSize(t, gpu);
    return size && formatPodSize(size);
  },
  typeHasGpu: (t) => (kubernetesSize(t, 'nogpu')?.gpus ?? 0) > 0,
  image: () => false,
  imageHint: 'on Kubernetes the container image is the kubernetes-image input; leave image empty',
};

export const CATALOGS = { aws, azure, gcp, kubernetes } as const;
export type CloudName = keyof typeof CATALOGS;
export const CLOUDS = Object.keys(CATALOGS) as CloudName[];
