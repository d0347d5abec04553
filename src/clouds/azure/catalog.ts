import type { CloudCatalog } from '../descriptor.js';
import { InputError } from '../../errors.js';
import { type GenericGpu, type GenericRegion, type GenericType, isGenericRegion, isGenericType } from '../generic.js';

/**
 * Azure names for the generic vocabulary.
 *
 * Regions follow CML's table (terraform-provider-iterative, azure) so a migrated workflow lands
 * where it did before. GPU sizes: t4 = NCasT4_v3, a10g = NVadsA10_v5 (A10), a100 = NC A100 v4,
 * h100 = NCads H100 v5. The K80 (NC v1) is retired, and so is the V100 (NCv3).
 *
 * a10g takes only whole A10s: NV36ads_A10_v5 has one, NV72ads_A10_v5 two. NV6ads, NV12ads and
 * NV18ads hold 1/6, 1/3 and 1/2 of one, which only NVIDIA's GRID driver sees (the recommended
 * image has the datacenter driver); they stay available as native types.
 * https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/nvadsa10v5-series
 */
export const AZURE_REGIONS: Readonly<Record<GenericRegion, string>> = {
  'us-east': 'eastus',
  'us-west': 'westus2',
  'eu-west': 'westeurope',
  'eu-north': 'northeurope',
};

/** A string: the GPU is not offered on Azure, and what to ask for instead. */
export const AZURE_TYPES: Readonly<Record<GenericGpu, Readonly<Record<GenericType, string>> | string>> = {
  nogpu: { s: 'Standard_D2s_v5', m: 'Standard_D8s_v5', l: 'Standard_D32s_v5', xl: 'Standard_D64s_v5' },
  t4: { s: 'Standard_NC4as_T4_v3', m: 'Standard_NC8as_T4_v3', l: 'Standard_NC16as_T4_v3', xl: 'Standard_NC64as_T4_v3' },
  a10g: {
    s: 'Standard_NV36ads_A10_v5',
    m: 'Standard_NV36ads_A10_v5',
    l: 'Standard_NV72ads_A10_v5',
    xl: 'Standard_NV72ads_A10_v5',
  },
  a100: {
    s: 'Standard_NC24ads_A100_v4',
    m: 'Standard_NC48ads_A100_v4',
    l: 'Standard_NC96ads_A100_v4',
    xl: 'Standard_NC96ads_A100_v4',
  },
  h100: {
    s: 'Standard_NC40ads_H100_v5',
    m: 'Standard_NC80adis_H100_v5',
    l: 'Standard_NC80adis_H100_v5',
    xl: 'Standard_NC80adis_H100_v5',
  },
  v100: 'the V100 sizes (NCv3) were retired on 30 September 2025; use t4, a10g, a100 or h100',
  l4: 'the L4 is not offered on Azure; use t4, or a10g for 24 GB',
  l40s: 'the L40S is not offered on Azure; use a100 or h100',
};

/**
 * Sizes Azure retired, with what to use instead: the NCv3 (V100) sizes, on 30 September 2025.
 * https://learn.microsoft.com/azure/virtual-machines/sizes/retirement/ncv3-retirement
 */
const AZURE_RETIRED: ReadonlyArray<[RegExp, string]> = [
  [
    /^Standard_NC(6|12|24|24r)s_v3$/i,
    'the NCv3 (V100) sizes were retired on 30 September 2025; use an NCasT4_v3, NC A100 v4 or NCads H100 v5 size',
  ],
];

/**
 * Size families without Trusted Launch: those with no Gen2 (A, Dv2, Dv3, NC v1, NV v1, NP), the
 * confidential ones (DC, EC), and those not yet supported (Dpsv5 and its kin, M, NDasrA100_v4,
 * NDm_A100_v4). https://learn.microsoft.com/azure/virtual-machines/trusted-launch#virtual-machines-sizes
 * (read 2026-12-08). Resource SKUs also say so per size (`TrustedLaunchDisabled`).
 */
const NO_TRUSTED_LAUNCH = [
  /^(Standard|Basic)_A\d/i,
  /^Standard_DS?\d+(-\d+)?_v[23](_Promo)?$/i,
  /^Standard_D\d+p[a-z]*_v5$/i,
  /^Standard_(DC|EC)\d/i,
  /^Standard_M\d/i,
  /^Standard_ND96as?r_v4$/i,
  /^Standard_ND96amsr_A100_v4$/i,
  /^Standard_N[CV]\d+r?(_Promo)?$/i,
  /^Standard_NP\d/i,
];

export const azureSizeTakesTrustedLaunch = (size: string): boolean => !NO_TRUSTED_LAUNCH.some((re) => re.test(size));

/** `Standard_NC4as_T4_v3`, `Standard_D8s_v5`. */
export const AZURE_NATIVE_TYPE = /^(Standard|Basic)_[A-Za-z0-9_]+$/;
/** `eastus`, `westeurope`, `usgovvirginia`. */
export const AZURE_NATIVE_REGION = /^[a-z]+[a-z0-9]*$/;

/**
 * Arm sizes: a `p` among the additive feature letters after the vCPU count (Standard_D2ps_v5,
 * Standard_E4pds_v6, Standard_B2pts_v2). https://learn.microsoft.com/azure/virtual-machines/vm-naming-conventions
 * ("p = ARM Cpu", page dated 2023-05-01).
 */
export const AZURE_ARM_SIZE = /^(Standard|Basic)_[A-Z]+\d+(-\d+)?[a-z]*p[a-z]*_/;

/** N-series sizes carry NVIDIA GPUs. */
export const azureTypeHasGpu = (size: string): boolean => /^Standard_N/.test(size);

export interface AzureImage {
  publisher?: string;
  offer?: string;
  sku?: string;
  version?: string;
  id?: string;
}

/** Canonical Ubuntu 24.04 LTS. It carries no NVIDIA driver: GPU jobs need an image that has one. */
export const AZURE_DEFAULT_IMAGE = 'Canonical:ubuntu-24_04-lts:server:latest';

/** A managed image, a gallery image, or a gallery image version, by resource id. */
const AZURE_IMAGE_ID = new RegExp(
  String.raw`^/subscriptions/[0-9a-f-]{36}/resourceGroups/[\w.()-]+/providers/Microsoft\.Compute/` +
    String.raw`(images/[\w.-]+|galleries/[\w.]+/images/[\w.-]+(/versions/[\w.-]+)?)$`,
  'i',
);

/** A URN `publisher:offer:sku:version`, or an image or gallery image version resource id. */
export function parseAzureImage(value: string): AzureImage | undefined {
  const urn = /^([A-Za-z0-9._-]+):([A-Za-z0-9._-]+):([A-Za-z0-9._-]+):([A-Za-z0-9._-]+)$/.exec(value);
  if (urn) return { publisher: urn[1]!, offer: urn[2]!, sku: urn[3]!, version: urn[4]! };
  if (AZURE_IMAGE_ID.test(value)) return { id: value };
  return undefined;
}

/** Azure: a region, a VM size. */
export const AZURE_CATALOG: CloudCatalog = {
  nativeRegionHint: 'an Azure region such as eastus',
  nativeTypeHint: 'a VM size such as Standard_NC8as_T4_v3',
  region: (v) =>
    isGenericRegion(v) ? AZURE_REGIONS[v] : AZURE_NATIVE_REGION.test(v) && !v.includes('-') ? v : undefined,
  machineType: (t, gpu) => {
    if (!isGenericType(t)) {
      const retired = AZURE_RETIRED.find(([re]) => re.test(t));
      if (retired) throw new InputError('type', t, retired[1]);
      return AZURE_NATIVE_TYPE.test(t) ? t : undefined;
    }
    const row = AZURE_TYPES[gpu];
    if (typeof row === 'string') throw new InputError('gpu', gpu, row);
    return row[t];
  },
  typeHasGpu: azureTypeHasGpu,
  image: (v) => parseAzureImage(v) !== undefined,
  imageHint:
    'use an image URN publisher:offer:sku:version (Canonical:ubuntu-24_04-lts:server:latest) or an image resource id',
  architecture: (size) => (AZURE_ARM_SIZE.test(size) ? 'ARM64' : 'X64'),
};
