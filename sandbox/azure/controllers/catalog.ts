/**
 * What the subscription may use, read-only: resource SKUs (Microsoft.Compute/skus, paged with
 * nextLink), Marketplace image versions, the subscription's managed images and gallery images.
 * https://learn.microsoft.com/rest/api/compute/resource-skus/list
 * https://learn.microsoft.com/rest/api/compute/virtual-machine-images
 * https://learn.microsoft.com/rest/api/compute/gallery-image-versions
 */
import {
  AZURE_API_VERSIONS,
  IMAGE_GROUP,
  MANAGED_IMAGES,
  SKU_REGIONS,
  diskSkus,
  galleryImage,
  imageSizeGb,
  marketplaceImage,
  regionalSizes,
  resourceSku,
} from '../catalog.js';
import type { AzureStore, J, Reply } from '../store.js';
import { ArmError, groupNotFound, resourceNotFound } from '../validation.js';

/** Items per page of the SKU list; a client must follow nextLink. */
const SKU_PAGE = 20;

/** `$filter=location eq 'R'` (the only filter the list takes), or every region. */
export function listSkus(store: AzureStore, q: URLSearchParams): Reply {
  const filter = q.get('$filter');
  let regions = SKU_REGIONS;
  if (filter !== null) {
    const m = /^location eq '([^']+)'$/i.exec(filter.trim());
    if (!m) {
      throw new ArmError(
        400,
        'InvalidFilterInQueryString',
        `Invalid $filter '${filter}' specified in the query string. Only location filter is supported.`,
      );
    }
    regions = SKU_REGIONS.filter((r) => r === m[1]!.toLowerCase());
  }
  const all = regions.flatMap((r) => [...diskSkus(r), ...regionalSizes(r).map((s) => resourceSku(r, s))]);
  const skip = Number(q.get('$skiptoken') ?? 0) || 0;
  const page = all.slice(skip, skip + SKU_PAGE);
  const next = new URLSearchParams({ 'api-version': AZURE_API_VERSIONS.skus });
  if (filter !== null) next.set('$filter', filter);
  next.set('$skiptoken', String(skip + SKU_PAGE));
  const nextLink =
    skip + SKU_PAGE < all.length
      ? `${store.url}/subscriptions/${store.sub}/providers/Microsoft.Compute/skus?${next.toString()}`
      : undefined;
  return { status: 200, json: { value: page, ...(nextLink ? { nextLink } : {}) } };
}

const artifactNotFound = (): ArmError => new ArmError(404, 'NotFound', 'Artifact: VMImage was not found.');

/** A Marketplace image version. `latest` is not a version here: a client lists the versions first. */
export function getMarketplaceImage(
  store: AzureStore,
  location: string,
  p: { publisher: string; offer: string; sku: string; version?: string },
): Reply {
  const img = marketplaceImage(p.publisher, p.offer, p.sku);
  if (!img) throw artifactNotFound();
  const base = `/Subscriptions/${store.sub}/Providers/Microsoft.Compute/Locations/${location}/Publishers/${img.publisher}/ArtifactTypes/VMImage/Offers/${img.offer}/Skus/${img.sku}/Versions`;
  if (p.version === undefined) {
    return { status: 200, json: img.versions.map((v) => ({ location, name: v, id: `${base}/${v}` })) as unknown as J };
  }
  if (!img.versions.includes(p.version)) throw artifactNotFound();
  return {
    status: 200,
    json: {
      location,
      name: p.version,
      id: `${base}/${p.version}`,
      properties: {
        hyperVGeneration: img.generation,
        architecture: 'x64',
        osDiskImage: { operatingSystem: 'Linux', sizeInBytes: img.sizeInBytes, sizeinGB: imageSizeGb(img.sizeInBytes) },
        dataDiskImages: [],
        disallowed: { vmDiskType: 'Unmanaged' },
        ...(img.generation === 'V2' ? { features: [{ name: 'SecurityType', value: 'TrustedLaunchSupported' }] } : {}),
      },
    },
  };
}

function inImageGroup(store: AzureStore, rgName: string): void {
  if (rgName.toLowerCase() !== IMAGE_GROUP && !store.group(rgName)) throw groupNotFound(rgName);
}

/** `images.get`: a managed image of the subscription. */
export function getManagedImage(store: AzureStore, rgName: string, name: string): Reply {
  inImageGroup(store, rgName);
  const img =
    rgName.toLowerCase() === IMAGE_GROUP
      ? MANAGED_IMAGES.find((i) => i.name.toLowerCase() === name.toLowerCase())
      : undefined;
  if (!img) throw resourceNotFound('Microsoft.Compute/images', name, rgName);
  return {
    status: 200,
    json: {
      name: img.name,
      id: `/subscriptions/${store.sub}/resourceGroups/${IMAGE_GROUP}/providers/Microsoft.Compute/images/${img.name}`,
      type: 'Microsoft.Compute/images',
      location: 'eastus',
      properties: {
        storageProfile: {
          osDisk: { osType: 'Linux', osState: 'Generalized', diskSizeGB: img.diskSizeGB, caching: 'ReadWrite' },
          dataDisks: [],
        },
        provisioningState: 'Succeeded',
        hyperVGeneration: img.generation,
      },
    },
  };
}

/** A gallery image definition, its versions (`version` undefined: the list), or one version. */
export function getGalleryImage(
  store: AzureStore,
  rgName: string,
  gallery: string,
  name: string,
  version?: string | null,
): Reply {
  inImageGroup(store, rgName);
  const img = rgName.toLowerCase() === IMAGE_GROUP ? galleryImage(gallery, name) : undefined;
  if (!img) throw resourceNotFound('Microsoft.Compute/galleries/images', `${gallery}/${name}`, rgName);
  const id = `/subscriptions/${store.sub}/resourceGroups/${IMAGE_GROUP}/providers/Microsoft.Compute/galleries/${img.gallery}/images/${img.name}`;
  const versionBody = (v: (typeof img.versions)[number]): J => ({
    name: v.name,
    id: `${id}/versions/${v.name}`,
    type: 'Microsoft.Compute/galleries/images/versions',
    location: 'eastus',
    properties: {
      publishingProfile: {
        excludeFromLatest: v.excludeFromLatest ?? false,
        publishedDate: '2026-11-01T00:00:00Z',
        targetRegions: [{ name: 'East US', regionalReplicaCount: 1 }],
      },
      storageProfile: { osDiskImage: { sizeInGB: v.sizeInGB, hostCaching: 'ReadWrite' } },
      provisioningState: 'Succeeded',
    },
  });
  if (version === null) return { status: 200, json: { value: img.versions.map(versionBody) } };
  if (version !== undefined) {
    const v = img.versions.find((x) => x.name === version);
    if (!v)
      throw resourceNotFound('Microsoft.Compute/galleries/images/versions', `${gallery}/${name}/${version}`, rgName);
    return { status: 200, json: versionBody(v) };
  }
  return {
    status: 200,
    json: {
      name: img.name,
      id,
      type: 'Microsoft.Compute/galleries/images',
      location: 'eastus',
      properties: {
        osType: 'Linux',
        osState: 'Generalized',
        hyperVGeneration: img.generation,
        identifier: { publisher: 'sandbox', offer: img.name, sku: 'default' },
        ...(img.securityType ? { features: [{ name: 'SecurityType', value: img.securityType }] } : {}),
        provisioningState: 'Succeeded',
      },
    },
  };
}
