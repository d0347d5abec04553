import type { CloudCatalog } from '../descriptor.js';
import { InputError } from '../../errors.js';
import { type GenericGpu, type GenericRegion, type GenericType, isGenericRegion, isGenericType } from '../generic.js';

/**
 * Azure names for the generic vocabulary.
 *
 * Regions follow CML's table (terraform-provider-iterative, azure) so a migrated workflow lands
 * where it did before. GPU sizes: t4 = NCasT4_v3, a10g = NVadsA10_v5 (A10), a100 = NC A100 v4,
 * h100 = NCads H100 v5, v100 = NCv3. The K80 (NC v1) is retired.
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
    s: 'Standard_NV6ads_A10_v5',
    m: 'Standard_NV12ads_A10_v5',
    l: 'Standard_NV36ads_A10_v5',
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
  v100: { s: 'Standard_NC6s_v3', m: 'Standard_NC12s_v3', l: 'Standard_NC24s_v3', xl: 'Standard_NC24s_v3' },
  l4: 'the L4 is not offered on Azure; use t4, or a10g for 24 GB',
  l40s: 'the L40S is not offered on Azure; use a100 or h100',
};

/** `Standard_NC4as_T4_v3`, `Standard_D8s_v5`. */
export const AZURE_NATIVE_TYPE = /^(Standard|Basic)_[A-Za-z0-9_]+$/;
/** `eastus`, `westeurope`, `usgovvirginia`. */
export const AZURE_NATIVE_REGION = /^[a-z]+[a-z0-9]*$/;

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
    if (!isGenericType(t)) return AZURE_NATIVE_TYPE.test(t) ? t : undefined;
    const row = AZURE_TYPES[gpu];
    if (typeof row === 'string') throw new InputError('gpu', gpu, row);
    return row[t];
  },
  typeHasGpu: azureTypeHasGpu,
  image: (v) => parseAzureImage(v) !== undefined,
  imageHint:
    'use an image URN publisher:offer:sku:version (Canonical:ubuntu-24_04-lts:server:latest) or an image resource id',
};
