import type { CloudCatalog } from '../descriptor.js';
import { InputError } from '../../errors.js';
import { type GenericGpu, type GenericRegion, type GenericType, isGenericRegion, isGenericType } from '../generic.js';

/**
 * Google Cloud names for the generic vocabulary.
 *
 * Regions follow CML's table (terraform-provider-iterative, gcp) so a migrated workflow lands
 * where it did before; the zone is chosen at launch among the region's zones that offer the
 * machine type and its GPU.
 *
 * GPUs come two ways on Compute Engine:
 * - accelerator-optimised machine types carry theirs: g2 = NVIDIA L4, a2 = A100, a3 = H100;
 * - T4 and V100 attach to an N1 machine as `guestAccelerators`.
 * Both are written as one native type here: the machine type, then `+` and the attached GPUs,
 * such as `n1-standard-8+nvidia-tesla-t4` or `n1-standard-16+2xnvidia-tesla-v100`.
 */
export const GCP_REGIONS: Readonly<Record<GenericRegion, string>> = {
  'us-east': 'us-east1',
  'us-west': 'us-west1',
  'eu-west': 'europe-west1',
  'eu-north': 'europe-north1',
};

/** What a V100 needs here, for a generic size and for a native type without an image. */
export const V100_INSTEAD =
  "the V100 (Volta) needs NVIDIA's proprietary driver, and the default Deep Learning VM image may load NVIDIA's " +
  'open kernel modules, which drive Turing and newer GPUs only: use t4 or l4, or give a native type such as ' +
  'n1-standard-8+nvidia-tesla-v100 with an image input whose NVIDIA driver is the proprietary flavour';

/** A string: the GPU is not offered on Compute Engine by a generic size; it says what to ask for instead. */
export const GCP_TYPES: Readonly<Record<GenericGpu, Readonly<Record<GenericType, string>> | string>> = {
  nogpu: { s: 'n2-standard-2', m: 'n2-standard-8', l: 'n2-standard-32', xl: 'n2-standard-64' },
  t4: {
    s: 'n1-standard-4+nvidia-tesla-t4',
    m: 'n1-standard-8+nvidia-tesla-t4',
    l: 'n1-standard-16+2xnvidia-tesla-t4',
    xl: 'n1-standard-32+4xnvidia-tesla-t4',
  },
  // The V100 (Volta) needs NVIDIA's proprietary kernel modules; NVIDIA's open ones drive Turing
  // and newer only, and are the default since driver 560. Which of the two the default image
  // (Deep Learning VM, driver 570) loads is not documented, so no generic size promises a V100.
  // https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/kernel-modules.html (2025-10)
  v100: V100_INSTEAD,
  l4: { s: 'g2-standard-4', m: 'g2-standard-16', l: 'g2-standard-24', xl: 'g2-standard-48' },
  a100: { s: 'a2-highgpu-1g', m: 'a2-highgpu-2g', l: 'a2-highgpu-4g', xl: 'a2-highgpu-8g' },
  h100: { s: 'a3-highgpu-1g', m: 'a3-highgpu-2g', l: 'a3-highgpu-4g', xl: 'a3-highgpu-8g' },
  a10g: 'the A10G is an AWS GPU; on Google Cloud use l4 (24 GB, the closest) or t4',
  l40s: 'the L40S is not offered on Compute Engine; use l4, a100 or h100',
};

/** GPUs that attach to N1 machines, by the generic name. */
export const GCP_ATTACHED_GPUS: Readonly<Partial<Record<GenericGpu, string>>> = {
  t4: 'nvidia-tesla-t4',
  v100: 'nvidia-tesla-v100',
};

/**
 * Machine types Compute Engine sells only as Spot or Flex-start VMs, never on-demand: A3 High
 * with fewer than 8 GPUs. "Consumption option availability by machine type",
 * https://cloud.google.com/compute/docs/accelerator-optimized-machines#consumption_option_availability_by_machine_type
 * (2025-09; also https://github.com/dstackai/gpuhunt/pull/176, 2025-09-13).
 */
export const GCP_SPOT_ONLY: ReadonlySet<string> = new Set(['a3-highgpu-1g', 'a3-highgpu-2g', 'a3-highgpu-4g']);

/**
 * Arm machine series: Tau T2A (Ampere Altra), C4A and N4A (Google Axion), A4X (NVIDIA Grace).
 * https://cloud.google.com/compute/docs/instances/arm-on-compute and
 * https://cloud.google.com/compute/docs/accelerator-optimized-machines#a4x-vms (2025).
 */
const GCP_ARM_FAMILIES: ReadonlySet<string> = new Set(['t2a', 'c4a', 'n4a', 'a4x']);

/** Machine families that carry GPUs of their own. */
const GPU_FAMILIES = new Set(['g2', 'a2', 'a3', 'a4', 'g4']);

/** `n1-standard-8`, `g2-standard-4`, `e2-custom-4-16384`, `a2-ultragpu-1g`. */
const MACHINE_TYPE = /^[a-z][a-z0-9]*-[a-z0-9-]+$/;
/** `nvidia-tesla-t4`, `nvidia-l4`. */
const ACCELERATOR = /^nvidia-[a-z0-9-]+$/;

export interface GcpMachineType {
  machineType: string;
  /** Attached GPUs (N1 only). */
  accelerator?: { type: string; count: number };
}

/** Reads a native type: `n1-standard-8`, `n1-standard-8+nvidia-tesla-t4`, `n1-standard-16+2xnvidia-tesla-v100`. */
export function parseGcpType(value: string): GcpMachineType | undefined {
  const [machineType, attached, extra] = value.split('+');
  if (extra !== undefined || !machineType || !MACHINE_TYPE.test(machineType)) return undefined;
  if (attached === undefined) return { machineType };
  const m = /^(?:([1-8])x)?(.+)$/.exec(attached);
  if (!m || !ACCELERATOR.test(m[2]!) || !machineType.startsWith('n1-')) return undefined;
  return { machineType, accelerator: { type: m[2]!, count: Number(m[1] ?? 1) } };
}

export function formatGcpType(t: GcpMachineType): string {
  if (!t.accelerator) return t.machineType;
  return `${t.machineType}+${t.accelerator.count > 1 ? `${t.accelerator.count}x` : ''}${t.accelerator.type}`;
}

export function gcpTypeHasGpu(value: string): boolean {
  const t = parseGcpType(value);
  return !!t && (t.accelerator !== undefined || GPU_FAMILIES.has(t.machineType.split('-')[0]!));
}

const FAMILY_GPUS: Readonly<Record<string, GenericGpu>> = { g2: 'l4', a2: 'a100', a3: 'h100' };

/** The generic GPU a native type carries, when it is one of ours. */
function gpuOf(t: GcpMachineType): GenericGpu | undefined {
  if (t.accelerator)
    return (Object.keys(GCP_ATTACHED_GPUS) as GenericGpu[]).find((g) => GCP_ATTACHED_GPUS[g] === t.accelerator!.type);
  return FAMILY_GPUS[t.machineType.split('-')[0]!];
}

/**
 * The native type for a generic or native `type` and the `gpu` input. A GPU asked for is never
 * dropped: a native N1 type gets it attached; any other type without a GPU of its own is an error.
 */
export function gcpMachineType(type: string, gpu: GenericGpu, generic: boolean): string | undefined {
  if (generic) {
    const row = GCP_TYPES[gpu];
    if (typeof row === 'string') throw new InputError('gpu', gpu, row);
    return row[type as GenericType];
  }
  const parsed = parseGcpType(type);
  if (!parsed || gpu === 'nogpu') return parsed && type;
  if (gcpTypeHasGpu(type)) {
    const carried = gpuOf(parsed);
    if (carried && carried !== gpu)
      throw new InputError(
        'type',
        type,
        `${type} carries a ${carried} GPU but gpu is ${gpu}: leave gpu out, or give a type with a ${gpu}`,
      );
    return type;
  }
  const attach = GCP_ATTACHED_GPUS[gpu];
  if (attach && parsed.machineType.startsWith('n1-'))
    return formatGcpType({ machineType: parsed.machineType, accelerator: { type: attach, count: 1 } });
  const instead = attach
    ? `give an N1 type (n1-standard-8) to attach a ${gpu}`
    : `give the machine type that carries it (${Object.values(GCP_TYPES[gpu] as Record<string, string>)[0]})`;
  throw new InputError(
    'type',
    type,
    `${type} has no GPU and gpu is ${gpu}: ${instead}, a generic size (s, m, l, xl), or leave gpu out`,
  );
}

/**
 * Images when the image input is empty: a Deep Learning VM image with the NVIDIA driver and
 * CUDA for GPU machines, Canonical Ubuntu 24.04 LTS otherwise.
 */
export const GCP_IMAGES = {
  gpu: 'projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570',
  cpu: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64',
} as const;

/** `projects/P/global/images/NAME`, `projects/P/global/images/family/F`, or a full URL of either. */
export const GCP_IMAGE = new RegExp(
  String.raw`^(https://(compute|www)\.googleapis\.com/compute/v1/)?` +
    'projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/global/images/(family/)?[a-z]([-a-z0-9]{0,61}[a-z0-9])?$',
);

/** `us-central1`, `europe-west4`, `me-central2`. */
export const GCP_NATIVE_REGION = /^[a-z]+-[a-z]+\d+$/;

/** Google Cloud: a region (the zone is chosen at launch), a machine type with its GPUs. */
export const GCP_CATALOG: CloudCatalog = {
  nativeRegionHint: 'a Google Cloud region such as us-central1',
  nativeTypeHint:
    'a Compute Engine machine type such as g2-standard-8, or an N1 type with GPUs attached such as ' +
    'n1-standard-8+nvidia-tesla-t4 or n1-standard-16+2xnvidia-tesla-v100',
  region: (v) => (isGenericRegion(v) ? GCP_REGIONS[v] : GCP_NATIVE_REGION.test(v) ? v : undefined),
  machineType: (t, gpu) => gcpMachineType(t, gpu, isGenericType(t)),
  typeHasGpu: gcpTypeHasGpu,
  image: (v) => GCP_IMAGE.test(v),
  imageHint:
    'use an image or image family path (projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64, ' +
    'projects/my-project/global/images/my-runner) or its full URL',
  architecture: (t) => (GCP_ARM_FAMILIES.has(t.split('-')[0]!) ? 'ARM64' : 'X64'),
};
