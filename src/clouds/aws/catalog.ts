import type { CloudCatalog } from '../descriptor.js';
import { InputError } from '../../errors.js';
import { type GenericGpu, type GenericRegion, type GenericType, isGenericRegion, isGenericType } from '../generic.js';

/**
 * AWS names for the generic vocabulary.
 *
 * Regions follow CML's table (terraform-provider-iterative, aws/provider.go) so a migrated
 * workflow lands where it did before. GPU families follow the EC2 accelerated computing
 * instance pages: g4dn = NVIDIA T4, g5 = A10G, g6 = L4, g6e = L40S, p3 = V100, p4d = A100,
 * p5 = H100.
 */
export const AWS_REGIONS: Readonly<Record<GenericRegion, string>> = {
  'us-east': 'us-east-1',
  'us-west': 'us-west-1',
  'eu-west': 'eu-west-1',
  'eu-north': 'eu-north-1',
};

/**
 * Instance type per generic size and GPU. CPU sizes keep CML's m5 choices; `s` is new. A string:
 * the GPU is not offered generically on AWS, and what to ask for instead.
 */
export const AWS_TYPES: Readonly<Record<GenericGpu, Readonly<Record<GenericType, string>> | string>> = {
  nogpu: { s: 'm5.large', m: 'm5.2xlarge', l: 'm5.8xlarge', xl: 'm5.16xlarge' },
  t4: { s: 'g4dn.xlarge', m: 'g4dn.4xlarge', l: 'g4dn.12xlarge', xl: 'g4dn.metal' },
  a10g: { s: 'g5.xlarge', m: 'g5.4xlarge', l: 'g5.12xlarge', xl: 'g5.48xlarge' },
  l4: { s: 'g6.xlarge', m: 'g6.4xlarge', l: 'g6.12xlarge', xl: 'g6.48xlarge' },
  l40s: { s: 'g6e.xlarge', m: 'g6e.4xlarge', l: 'g6e.12xlarge', xl: 'g6e.48xlarge' },
  // p4d has one size; every generic size gets the same eight-GPU machine.
  a100: { s: 'p4d.24xlarge', m: 'p4d.24xlarge', l: 'p4d.24xlarge', xl: 'p4d.24xlarge' },
  h100: { s: 'p5.4xlarge', m: 'p5.4xlarge', l: 'p5.48xlarge', xl: 'p5.48xlarge' },
  // p3 (the V100) is offered in few regions now, and the default GPU image's driver uses NVIDIA's
  // open kernel modules, which drive Turing and newer GPUs only, not the V100 (Volta).
  v100:
    'the V100 (p3) is not offered generically on AWS: p3 is left in few regions, and the default GPU ' +
    "image's NVIDIA driver (open kernel modules) does not support the V100; use t4, a10g or l4, or give a native " +
    'p3 type (p3.2xlarge) with an image whose NVIDIA driver supports Volta (the proprietary one)',
};

/** V100 (Volta) families: NVIDIA's open kernel modules, in the default GPU image, cannot drive them. */
export const AWS_VOLTA_FAMILIES: ReadonlySet<string> = new Set(['p3', 'p3dn']);

export const awsFamilyIsVolta = (instanceType: string): boolean =>
  AWS_VOLTA_FAMILIES.has(instanceType.split('.')[0] ?? '');

/** The native type for a generic or native `type`; a GPU AWS does not offer generically is an InputError on `gpu`. */
function awsMachineType(type: string, gpu: GenericGpu): string | undefined {
  if (!isGenericType(type)) return AWS_NATIVE_TYPE.test(type) ? type : undefined;
  const row = AWS_TYPES[gpu];
  if (typeof row === 'string') throw new InputError('gpu', gpu, row);
  return row[type];
}

/**
 * Instance families that carry NVIDIA GPUs, so a native `type` alone selects the GPU image.
 * Graviton GPU families (g5g) are arm64.
 */
export const AWS_GPU_FAMILIES: ReadonlySet<string> = new Set([
  'g4dn',
  'g5',
  'g5g',
  'g6',
  'g6e',
  'g6f',
  'gr6',
  'p3',
  'p3dn',
  'p4d',
  'p4de',
  'p5',
  'p5e',
  'p5en',
  'p6-b200',
]);

/** Graviton families: the image must be arm64. A family ending in `g` (m7g, c7gn, g5g) is Graviton. */
export function awsArchitecture(instanceType: string): 'x86_64' | 'arm64' {
  const family = instanceType.split('.')[0] ?? '';
  return /^[a-z]+\d+g[a-z]*$/.test(family) ? 'arm64' : 'x86_64';
}

export function awsFamilyHasGpu(instanceType: string): boolean {
  return AWS_GPU_FAMILIES.has(instanceType.split('.')[0] ?? '');
}

/**
 * Public SSM parameters that always point at the newest image.
 * - GPU: AWS Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04), driver and CUDA included.
 * - CPU: Canonical Ubuntu Server 24.04 LTS, gp3 root.
 */
export const AWS_IMAGE_PARAMETERS = {
  gpu: {
    x86_64: '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id',
    arm64: '/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id',
  },
  cpu: {
    x86_64: '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id',
    arm64: '/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id',
  },
} as const;

/** A native EC2 instance type: family, a dot, a size (`g5.xlarge`, `p6-b200.48xlarge`). */
export const AWS_NATIVE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
/** A native region: `us-east-1`, `ap-southeast-2`, `us-gov-west-1`. */
export const AWS_NATIVE_REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;

export const AWS_CATALOG: CloudCatalog = {
  nativeRegionHint: 'an AWS region such as us-east-2',
  nativeTypeHint: 'an EC2 instance type such as g5.2xlarge',
  region: (v) => (isGenericRegion(v) ? AWS_REGIONS[v] : AWS_NATIVE_REGION.test(v) ? v : undefined),
  machineType: awsMachineType,
  typeHasGpu: awsFamilyHasGpu,
  image: (v) => /^(ami-[0-9a-f]{8,17}|\/[A-Za-z0-9_./-]+)$/.test(v),
  imageHint: 'use an AMI id (ami-0123456789abcdef0) or the name of an SSM parameter that holds one (/aws/service/...)',
  architecture: (t) => (awsArchitecture(t) === 'arm64' ? 'ARM64' : 'X64'),
};
