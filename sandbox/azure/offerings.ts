/**
 * What the fake Azure sells where: VM sizes per region as resource SKUs (with the sandbox
 * subscription's restrictions), sizes that are retired, which sizes take Trusted Launch, and the
 * images it knows (Marketplace images and the sandbox subscription's own), with their OS disk
 * sizes and the NVIDIA driver each carries.
 *
 * Sources, as read on 2026-12-08:
 * - Resource SKUs, their shape and restrictions (type Location or Zone, reasonCode
 *   NotAvailableForSubscription): https://learn.microsoft.com/rest/api/compute/resource-skus/list
 *   (api-version 2021-07-01). Which region offers which size is the sandbox's own choice, in the
 *   spirit of https://azure.microsoft.com/explore/global-infrastructure/products-by-region/; a
 *   subscription's restrictions are its own, so those here are the sandbox subscription's.
 * - NCv3 retirement (Standard_NC6s_v3, NC12s_v3, NC24s_v3 and NC24rs_v3 on 30 September 2025):
 *   https://learn.microsoft.com/azure/virtual-machines/sizes/retirement/ncv3-retirement
 *   (MicrosoftDocs/azure-docs articles/virtual-machines/ncv3-nc6s-nc12s-nc24s-retirement.md).
 * - NVadsA10 v5 sizes and their GPU partitions (NV6ads 1/6, NV12ads 1/3, NV18ads 1/2, NV36ads and
 *   NV36adms one A10, NV72ads two): https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/nvadsa10v5-series
 *   The partitions need NVIDIA's GRID (vGPU) driver: the GPU driver extension's table picks GRID
 *   for "NVadsA10_v5 Series" and CUDA for NCasT4_v3, NC A100 v4 (Azure/azhpc-extensions
 *   NvidiaGPU/Nvidia-GPU-Linux-Resources.json).
 * - Trusted Launch sizes and Secure Boot: https://learn.microsoft.com/azure/virtual-machines/trusted-launch
 *   (Gen2 VMs default to Trusted Launch with Secure Boot and vTPM; GPU families NC, ND, NV are
 *   supported except NDasrA100_v4 and NDm_A100_v4; Dv2, Dv3, A and M families are not; "the GRID
 *   driver requires Secure Boot to be disabled for Linux VMs" and a CUDA driver on Ubuntu needs
 *   extra signing steps; managed images are not supported with Trusted Launch). Resource SKUs
 *   carry the capability `TrustedLaunchDisabled: True` for sizes without it.
 * - Error texts: InvalidParameter "The requested VM size X is not available in the current
 *   region..." (Azure/azure-quickstart-templates#7147, microsoft/onefuzz#1126); SkuNotAvailable
 *   "The requested size for resource ... for subscription ..." (Azure/pcs-cli#147,
 *   MicrosoftDocs/azure-docs#44340); OperationNotAllowed "The specified disk size N GB is smaller
 *   than the size of the corresponding disk in the VM image: M GB..." with target
 *   osDisk.diskSizeGB (hitachienergy/epiphany#1049, Azure/avdaccelerator#523); BadRequest "The VM
 *   size 'X' is not supported for creation of VMs and Virtual Machine Scale Set with
 *   'TrustedLaunch' security type..." and "Use of TrustedLaunch setting is not supported for the
 *   provided image..." (Azure/azure-cli#28005); "The provided gallery image only supports
 *   creation of VMs and VM Scale Sets with 'TrustedLaunch' security type." (microsoft/STL#3159).
 * - A Marketplace image's OS disk: `osDiskImage: {operatingSystem, sizeInBytes, sizeinGB}` as ARM
 *   answers it (Azure/azure-cli#17599: 32213303808 bytes, `sizeinGB` 31, for Canonical's Ubuntu);
 *   the SDK's model keeps only operatingSystem.
 */

/** Retired sizes: no region sells them, and resource SKUs no longer list them. */
export const RETIRED_SIZES: ReadonlyMap<string, string> = new Map(
  ['Standard_NC6s_v3', 'Standard_NC12s_v3', 'Standard_NC24s_v3', 'Standard_NC24rs_v3'].map((s) => [
    s.toLowerCase(),
    '2025-09-30',
  ]),
);

export interface SizeSpec {
  name: string;
  family: string;
  vCPUs: number;
  generations: 'V1,V2' | 'V2';
  /** Trusted Launch not supported (resource SKUs say `TrustedLaunchDisabled: True`). */
  noTrustedLaunch?: true;
}

const size = (name: string, family: string, vCPUs: number, extra: Partial<SizeSpec> = {}): SizeSpec => ({
  name,
  family,
  vCPUs,
  generations: 'V1,V2',
  ...extra,
});

/** Every size the fake knows, by lower-case name. */
export const SIZES: ReadonlyMap<string, SizeSpec> = new Map(
  [
    size('Standard_D2s_v5', 'standardDSv5Family', 2),
    size('Standard_D4s_v5', 'standardDSv5Family', 4),
    size('Standard_D8s_v5', 'standardDSv5Family', 8),
    size('Standard_D32s_v5', 'standardDSv5Family', 32),
    size('Standard_D64s_v5', 'standardDSv5Family', 64),
    size('Standard_D2_v3', 'standardDv3Family', 2, { noTrustedLaunch: true }),
    size('Standard_NC4as_T4_v3', 'standardNCASv3_T4Family', 4),
    size('Standard_NC8as_T4_v3', 'standardNCASv3_T4Family', 8),
    size('Standard_NC16as_T4_v3', 'standardNCASv3_T4Family', 16),
    size('Standard_NC64as_T4_v3', 'standardNCASv3_T4Family', 64),
    size('Standard_NV6ads_A10_v5', 'StandardNVADSA10v5Family', 6),
    size('Standard_NV12ads_A10_v5', 'StandardNVADSA10v5Family', 12),
    size('Standard_NV18ads_A10_v5', 'StandardNVADSA10v5Family', 18),
    size('Standard_NV36ads_A10_v5', 'StandardNVADSA10v5Family', 36),
    size('Standard_NV36adms_A10_v5', 'StandardNVADSA10v5Family', 36),
    size('Standard_NV72ads_A10_v5', 'StandardNVADSA10v5Family', 72),
    size('Standard_NC24ads_A100_v4', 'StandardNCADSA100v4Family', 24, { generations: 'V2' }),
    size('Standard_NC48ads_A100_v4', 'StandardNCADSA100v4Family', 48, { generations: 'V2' }),
    size('Standard_NC96ads_A100_v4', 'StandardNCADSA100v4Family', 96, { generations: 'V2' }),
    size('Standard_ND96asr_v4', 'standardNDASv4_A100Family', 96, { generations: 'V2', noTrustedLaunch: true }),
    size('Standard_NC40ads_H100_v5', 'standardNCadsH100v5Family', 40, { generations: 'V2' }),
    size('Standard_NC80adis_H100_v5', 'standardNCadsH100v5Family', 80, { generations: 'V2' }),
  ].map((s) => [s.name.toLowerCase(), s]),
);

/** A size in a region: its zones, and a restriction of the sandbox subscription if any. */
export interface RegionalSize {
  size: SizeSpec;
  zones: string[];
  /** `location`: not available for the subscription in the region; `zones`: in none of its zones. */
  restricted?: 'location' | 'zones';
}

const D = ['Standard_D2s_v5', 'Standard_D4s_v5', 'Standard_D8s_v5', 'Standard_D32s_v5', 'Standard_D64s_v5'];
const T4 = ['Standard_NC4as_T4_v3', 'Standard_NC8as_T4_v3', 'Standard_NC16as_T4_v3', 'Standard_NC64as_T4_v3'];
const A10 = [
  'Standard_NV6ads_A10_v5',
  'Standard_NV12ads_A10_v5',
  'Standard_NV18ads_A10_v5',
  'Standard_NV36ads_A10_v5',
  'Standard_NV72ads_A10_v5',
];
const A100 = ['Standard_NC24ads_A100_v4', 'Standard_NC48ads_A100_v4', 'Standard_NC96ads_A100_v4'];
const H100 = ['Standard_NC40ads_H100_v5', 'Standard_NC80adis_H100_v5'];

/**
 * Sizes per region, with the sandbox subscription's restrictions. eastus: NC80adis_H100_v5 is
 * not available for the subscription, and NC96ads_A100_v4 is restricted in all three zones;
 * NV36adms_A10_v5 is only in westeurope and southcentralus.
 */
const REGIONS: Record<string, { sizes: string[]; location?: string[]; zones?: string[] }> = {
  eastus: {
    sizes: [...D, 'Standard_D2_v3', ...T4, ...A10, ...A100, ...H100, 'Standard_ND96asr_v4'],
    location: ['Standard_NC80adis_H100_v5'],
    zones: ['Standard_NC96ads_A100_v4'],
  },
  westus2: { sizes: [...D, 'Standard_D2_v3', ...T4, ...A10, ...A100, 'Standard_ND96asr_v4'] },
  westeurope: { sizes: [...D, ...T4, ...A10, 'Standard_NV36adms_A10_v5', ...A100, ...H100] },
  northeurope: { sizes: [...D, ...T4, 'Standard_NC24ads_A100_v4', 'Standard_NC48ads_A100_v4'] },
  southcentralus: { sizes: [...D, ...T4, ...A10, 'Standard_NV36adms_A10_v5', ...H100] },
};

export const SKU_REGIONS = Object.keys(REGIONS);

/** The sizes a region offers (restricted ones included, as resource SKUs list them). */
export function regionalSizes(region: string): RegionalSize[] {
  const r = REGIONS[region.toLowerCase()];
  if (!r) return [];
  return r.sizes.map((name) => ({
    size: SIZES.get(name.toLowerCase())!,
    zones: ['1', '2', '3'],
    ...(r.location?.includes(name) ? { restricted: 'location' as const } : {}),
    ...(r.zones?.includes(name) ? { restricted: 'zones' as const } : {}),
  }));
}

export function regionalSize(region: string, name: string): RegionalSize | undefined {
  return regionalSizes(region).find((s) => s.size.name.toLowerCase() === name.toLowerCase());
}

/** A resource SKU as `GET /subscriptions/S/providers/Microsoft.Compute/skus` lists it. */
export function resourceSku(region: string, r: RegionalSize): Record<string, unknown> {
  const restrictions: unknown[] = [];
  if (r.restricted === 'location') {
    restrictions.push({
      type: 'Location',
      values: [region],
      restrictionInfo: { locations: [region] },
      reasonCode: 'NotAvailableForSubscription',
    });
  } else if (r.restricted === 'zones') {
    restrictions.push({
      type: 'Zone',
      values: [region],
      restrictionInfo: { locations: [region], zones: r.zones },
      reasonCode: 'NotAvailableForSubscription',
    });
  }
  const s = r.size;
  return {
    resourceType: 'virtualMachines',
    name: s.name,
    tier: 'Standard',
    size: s.name.replace(/^Standard_/, ''),
    family: s.family,
    locations: [region],
    locationInfo: [{ location: region, zones: r.zones, zoneDetails: [] }],
    capabilities: [
      { name: 'vCPUs', value: String(s.vCPUs) },
      { name: 'HyperVGenerations', value: s.generations },
      { name: 'CpuArchitectureType', value: 'x64' },
      ...(s.noTrustedLaunch ? [{ name: 'TrustedLaunchDisabled', value: 'True' }] : []),
    ],
    restrictions,
  };
}

/** Disk SKUs come in the same list: a client must keep to `resourceType: virtualMachines`. */
export const diskSkus = (region: string): Array<Record<string, unknown>> =>
  ['Standard_LRS', 'StandardSSD_LRS', 'Premium_LRS'].map((name) => ({
    resourceType: 'disks',
    name,
    tier: name.split('_')[0],
    locations: [region],
    locationInfo: [{ location: region, zones: ['1', '2', '3'], zoneDetails: [] }],
    capabilities: [],
    restrictions: [],
  }));

// ---------------------------------------------------------------------------------------------
// GPU partitions

/** The fraction of one A10 a NVadsA10 v5 size has, when it is less than a whole GPU. */
export function a10Fraction(vmSize: string): number | undefined {
  const m = /^Standard_NV(\d+)ads_A10_v5$/i.exec(vmSize);
  if (!m) return undefined;
  const fraction = ({ 6: 1 / 6, 12: 1 / 3, 18: 1 / 2 } as Record<number, number>)[Number(m[1])];
  return fraction;
}

// ---------------------------------------------------------------------------------------------
// Images

export type NvidiaDriver = 'none' | 'cuda' | 'grid';

export interface MarketplaceImage {
  publisher: string;
  offer: string;
  sku: string;
  /** Oldest first; `latest` is the last. */
  versions: string[];
  generation: 'V1' | 'V2';
  sizeInBytes: number;
  driver: NvidiaDriver;
}

const GiB = 1024 ** 3;

/** Marketplace images the fake knows. Canonical's carry no NVIDIA driver; the Ubuntu HPC image the datacenter (CUDA) one. */
export const MARKETPLACE_IMAGES: MarketplaceImage[] = [
  {
    publisher: 'Canonical',
    offer: 'ubuntu-24_04-lts',
    sku: 'server',
    versions: ['24.04.202509090', '24.04.202511050'],
    generation: 'V2',
    sizeInBytes: 30 * GiB + 1024 ** 2,
    driver: 'none',
  },
  {
    publisher: 'Canonical',
    offer: 'ubuntu-24_04-lts',
    sku: 'server-gen1',
    versions: ['24.04.202511050'],
    generation: 'V1',
    sizeInBytes: 30 * GiB + 1024 ** 2,
    driver: 'none',
  },
  {
    // https://github.com/Azure/azhpc-images: the NVIDIA datacenter driver, CUDA, NCCL.
    publisher: 'microsoft-dsvm',
    offer: 'ubuntu-hpc',
    sku: '2204',
    versions: ['22.04.2025080101', '22.04.2025110401'],
    generation: 'V2',
    sizeInBytes: 64 * GiB,
    driver: 'cuda',
  },
];

export function marketplaceImage(publisher: string, offer: string, sku: string): MarketplaceImage | undefined {
  const key = (...p: string[]) => p.join(':').toLowerCase();
  return MARKETPLACE_IMAGES.find((i) => key(i.publisher, i.offer, i.sku) === key(publisher, offer, sku));
}

/** `sizeinGB` as ARM answers it: whole GiB, rounded up. */
export const imageSizeGb = (bytes: number): number => Math.ceil(bytes / GiB);

/** The sandbox subscription's own images, in a resource group `sandbox-images` outside the inventory. */
export const IMAGE_GROUP = 'sandbox-images';

export interface GalleryImage {
  gallery: string;
  name: string;
  generation: 'V1' | 'V2';
  /** The image definition's SecurityType feature: `TrustedLaunch` takes only Trusted Launch VMs. */
  securityType?: 'TrustedLaunch' | 'TrustedLaunchSupported';
  driver: NvidiaDriver;
  versions: Array<{ name: string; sizeInGB: number; excludeFromLatest?: true }>;
}

/** An Ubuntu image with NVIDIA's GRID driver (for the A10 partitions), Trusted Launch only. */
export const GALLERY_IMAGES: GalleryImage[] = [
  {
    gallery: 'sandboxgallery',
    name: 'ubuntu-grid',
    generation: 'V2',
    securityType: 'TrustedLaunch',
    driver: 'grid',
    versions: [
      { name: '1.0.0', sizeInGB: 40 },
      { name: '1.1.0', sizeInGB: 50 },
      { name: '1.2.0', sizeInGB: 60, excludeFromLatest: true },
    ],
  },
];

export interface ManagedImage {
  name: string;
  generation: 'V1' | 'V2';
  diskSizeGB: number;
  driver: NvidiaDriver;
}

export const MANAGED_IMAGES: ManagedImage[] = [
  { name: 'ubuntu-cuda-100g', generation: 'V2', diskSizeGB: 100, driver: 'cuda' },
];

/** What a VM's image reference resolves to, for the create's checks. */
export interface ResolvedImage {
  kind: 'marketplace' | 'gallery' | 'managed';
  generation: 'V1' | 'V2';
  sizeGb: number;
  driver: NvidiaDriver;
  trustedLaunchOnly?: boolean;
}

/** Compares dotted versions numerically (1.10.0 > 1.9.0). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The latest version of a gallery image: the highest not excluded from latest. */
export function latestGalleryVersion(img: GalleryImage): GalleryImage['versions'][number] | undefined {
  return img.versions
    .filter((v) => !v.excludeFromLatest)
    .sort((a, b) => compareVersions(a.name, b.name))
    .at(-1);
}

/** Resolves an image reference (`{publisher, offer, sku, version}` or `{id}`) in this subscription. */
export function resolveImage(sub: string, ref: Record<string, unknown>): ResolvedImage | undefined {
  if (typeof ref.id === 'string') return resolveImageId(sub, ref.id);
  const img = marketplaceImage(String(ref.publisher), String(ref.offer), String(ref.sku));
  const version = String(ref.version ?? '');
  if (!img || (version.toLowerCase() !== 'latest' && !img.versions.includes(version))) return undefined;
  return { kind: 'marketplace', generation: img.generation, sizeGb: imageSizeGb(img.sizeInBytes), driver: img.driver };
}

function resolveImageId(sub: string, id: string): ResolvedImage | undefined {
  const base = `^/subscriptions/${sub}/resourceGroups/${IMAGE_GROUP}/providers/Microsoft\\.Compute/`;
  const managed = new RegExp(`${base}images/([^/]+)$`, 'i').exec(id);
  if (managed) {
    const m = MANAGED_IMAGES.find((i) => i.name.toLowerCase() === managed[1]!.toLowerCase());
    return m && { kind: 'managed', generation: m.generation, sizeGb: m.diskSizeGB, driver: m.driver };
  }
  const gallery = new RegExp(`${base}galleries/([^/]+)/images/([^/]+)(?:/versions/([^/]+))?$`, 'i').exec(id);
  if (!gallery) return undefined;
  const g = galleryImage(gallery[1]!, gallery[2]!);
  const v = g && (gallery[3] ? g.versions.find((x) => x.name === gallery[3]) : latestGalleryVersion(g));
  if (!g || !v) return undefined;
  return {
    kind: 'gallery',
    generation: g.generation,
    sizeGb: v.sizeInGB,
    driver: g.driver,
    ...(g.securityType === 'TrustedLaunch' ? { trustedLaunchOnly: true } : {}),
  };
}

export function galleryImage(gallery: string, name: string): GalleryImage | undefined {
  return GALLERY_IMAGES.find(
    (i) => i.gallery.toLowerCase() === gallery.toLowerCase() && i.name.toLowerCase() === name.toLowerCase(),
  );
}
