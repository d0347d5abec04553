import type { ComputeManagementClient, ImageReference, ResourceSku, SecurityProfile } from '@azure/arm-compute';
import { CloudError } from '../../errors.js';
import { type AzureImage, azureSizeTakesTrustedLaunch } from './catalog.js';

/**
 * What a launch checks before it creates anything: which of its sizes the subscription may use
 * in the region (resource SKUs), and the image (its OS disk size and VM generation).
 */

type Call = <T>(action: string, fn: () => Promise<T>) => Promise<T>;

/** A size as resource SKUs list it for one region. */
export interface OfferedSize {
  /** Not restricted for the subscription in the region, nor in every zone of it. */
  usable: boolean;
  /** The size says it has no Trusted Launch (capability `TrustedLaunchDisabled: True`). */
  trustedLaunchDisabled: boolean;
}

const lower = (s: string | undefined): string => (s ?? '').toLowerCase();

/** VM sizes by lower-case name, for one region or (region undefined) each region that lists them. */
export async function offeredSizes(
  compute: ComputeManagementClient,
  call: Call,
  region?: string,
): Promise<Map<string, Map<string, OfferedSize>>> {
  return call('resourceSkus.list', async () => {
    const byRegion = new Map<string, Map<string, OfferedSize>>();
    const options = region ? { filter: `location eq '${region}'` } : {};
    for await (const sku of compute.resourceSkus.list(options)) {
      if (lower(sku.resourceType) !== 'virtualmachines' || !sku.name) continue;
      for (const location of sku.locations ?? []) {
        if (region && lower(location) !== lower(region)) continue;
        const sizes = byRegion.get(lower(location)) ?? byRegion.set(lower(location), new Map()).get(lower(location))!;
        sizes.set(lower(sku.name), {
          usable: !restricted(sku, location),
          trustedLaunchDisabled:
            sku.capabilities?.some((c) => c.name === 'TrustedLaunchDisabled' && lower(c.value) === 'true') ?? false,
        });
      }
    }
    return byRegion;
  });
}

/** Restricted in the region (Location), or in every zone the region has for it (Zone). */
function restricted(sku: ResourceSku, location: string): boolean {
  const zones = sku.locationInfo?.find((l) => lower(l.location) === lower(location))?.zones ?? [];
  return (sku.restrictions ?? []).some((r) => {
    const here = [...(r.values ?? []), ...(r.restrictionInfo?.locations ?? [])].some(
      (v) => lower(v) === lower(location),
    );
    if (!here) return false;
    if (r.type === 'Location') return true;
    const out = new Set(r.restrictionInfo?.zones ?? []);
    return r.type === 'Zone' && (zones.length === 0 || zones.every((z) => out.has(z)));
  });
}

/** The launch's sizes nowhere usable here: a permanent refusal naming the regions that have them. */
export async function notOffered(
  compute: ComputeManagementClient,
  call: Call,
  region: string,
  types: readonly string[],
): Promise<CloudError> {
  const everywhere = await offeredSizes(compute, call);
  const where = types.map((t) => {
    const regions = [...everywhere]
      .filter(([, sizes]) => sizes.get(lower(t))?.usable)
      .map(([r]) => r)
      .sort();
    return `${t} ${regions.length ? `is offered in ${regions.join(', ')}` : 'is offered in no region'}`;
  });
  return new CloudError(
    'Azure',
    'SkuNotAvailable',
    `${types.join(', ')}: not offered to this subscription in ${region} (${where.join('; ')})`,
    'Pick a region that offers a size, or other sizes (the type input takes a comma list).',
    'permanent',
  );
}

/** What the VM create needs from its image. */
export interface PreparedImage {
  /** What the create sends: a Marketplace image with `latest` resolved, or the resource id. */
  reference: ImageReference;
  /** The image's OS disk in GB, when the image says. */
  sizeGb?: number;
  generation?: string;
  kind: 'marketplace' | 'managed' | 'gallery';
}

/** The image as given, when it could not be read: its kind from its resource id. */
export const unreadImage = (image: AzureImage): PreparedImage => ({
  reference: image.id ? { id: image.id } : image,
  kind: !image.id ? 'marketplace' : /\/providers\/Microsoft\.Compute\/images\//i.test(image.id) ? 'managed' : 'gallery',
});

/** Compares dotted versions numerically (1.10.0 after 1.9.0). */
function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0 && !Number.isNaN(d)) return d;
  }
  return a.localeCompare(b);
}

/**
 * A Marketplace image's `osDiskImage` carries its size, which the SDK's model drops: read it from
 * the raw answer, whatever its casing (`sizeInGb`, `sizeinGB`), or from `sizeInBytes`.
 */
function osDiskGb(body: unknown): number | undefined {
  const disk = (body as { properties?: { osDiskImage?: Record<string, unknown> } })?.properties?.osDiskImage ?? {};
  for (const [k, v] of Object.entries(disk)) if (/^sizeingb$/i.test(k) && typeof v === 'number') return v;
  const bytes = Object.entries(disk).find(([k]) => /^sizeinbytes$/i.test(k))?.[1];
  return typeof bytes === 'number' ? Math.ceil(bytes / 1024 ** 3) : undefined;
}

/** Resolves the image input: its OS disk size and generation, and `latest` to a version. */
export async function prepareImage(
  compute: ComputeManagementClient,
  call: Call,
  region: string,
  image: AzureImage,
  input: string,
): Promise<PreparedImage> {
  try {
    if (!image.id) return await marketplaceImage(compute, call, region, image);
    return await imageById(compute, call, image.id);
  } catch (err) {
    if (err instanceof CloudError && err.kind === 'gone') {
      throw new CloudError('Azure', err.code, `image ${input} was not found`, 'Check the image input.', 'permanent');
    }
    throw err;
  }
}

async function marketplaceImage(
  compute: ComputeManagementClient,
  call: Call,
  region: string,
  image: AzureImage,
): Promise<PreparedImage> {
  const { publisher, offer, sku } = image as Required<AzureImage>;
  let version = image.version!;
  if (version.toLowerCase() === 'latest') {
    const versions = await call('virtualMachineImages.list', () =>
      compute.virtualMachineImages.list(region, publisher, offer, sku),
    );
    const names = versions.map((v) => v.name).sort(compareVersions);
    if (names.length === 0) {
      throw new CloudError('Azure', 'NotFound', `no version of ${publisher}:${offer}:${sku} in ${region}`, '', 'gone');
    }
    version = names.at(-1)!;
  }
  let raw: unknown;
  const got = await call('virtualMachineImages.get', () =>
    compute.virtualMachineImages.get(region, publisher, offer, sku, version, {
      onResponse: (r) => {
        raw = r.parsedBody;
      },
    }),
  );
  const sizeGb = osDiskGb(raw);
  return {
    reference: { publisher, offer, sku, version },
    ...(sizeGb ? { sizeGb } : {}),
    ...(got.hyperVGeneration ? { generation: got.hyperVGeneration } : {}),
    kind: 'marketplace',
  };
}

async function imageById(compute: ComputeManagementClient, call: Call, id: string): Promise<PreparedImage> {
  const parts = id.split('/');
  const group = parts[4]!;
  if (parts[7]?.toLowerCase() === 'images') {
    const img = await call('images.get', () => compute.images.get(group, parts[8]!));
    const sizeGb = img.storageProfile?.osDisk?.diskSizeGB;
    return {
      reference: { id },
      ...(sizeGb ? { sizeGb } : {}),
      ...(img.hyperVGeneration ? { generation: img.hyperVGeneration } : {}),
      kind: 'managed',
    };
  }
  const [gallery, name, version] = [parts[8]!, parts[10]!, parts[12]];
  const [definition, chosen] = await Promise.all([
    call('galleryImages.get', () => compute.galleryImages.get(group, gallery, name)),
    version
      ? call('galleryImageVersions.get', () => compute.galleryImageVersions.get(group, gallery, name, version))
      : call('galleryImageVersions.listByGalleryImage', async () => {
          // The create takes the newest version not excluded from latest.
          let latest: { name?: string; storageProfile?: { osDiskImage?: { sizeInGB?: number } } } | undefined;
          for await (const v of compute.galleryImageVersions.listByGalleryImage(group, gallery, name)) {
            if (v.publishingProfile?.excludeFromLatest || !v.name) continue;
            if (!latest || compareVersions(v.name, latest.name!) > 0) latest = v;
          }
          return latest;
        }),
  ]);
  const sizeGb = chosen?.storageProfile?.osDiskImage?.sizeInGB;
  return {
    reference: { id },
    ...(sizeGb ? { sizeGb } : {}),
    ...(definition.hyperVGeneration ? { generation: definition.hyperVGeneration } : {}),
    kind: 'gallery',
  };
}

/**
 * The security type, always explicit: a new Gen2 VM left without one may be Trusted Launch with
 * Secure Boot on, under which an NVIDIA driver the image or the startup script brings does not
 * load. Trusted Launch without Secure Boot (vTPM on) where the size and image take it, which an
 * image that takes only Trusted Launch needs too; Standard otherwise (Gen1 and managed images,
 * sizes without Trusted Launch).
 */
export function securityProfileFor(
  size: string,
  offered: OfferedSize | undefined,
  image: PreparedImage,
): SecurityProfile {
  const imageTakesIt = image.generation?.toUpperCase() !== 'V1' && image.kind !== 'managed';
  if (imageTakesIt && azureSizeTakesTrustedLaunch(size) && !offered?.trustedLaunchDisabled) {
    return { securityType: 'TrustedLaunch', uefiSettings: { secureBootEnabled: false, vTpmEnabled: true } };
  }
  return { securityType: 'Standard' };
}
