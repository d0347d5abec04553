/**
 * What the project may use, read-only: machine types and accelerator types per zone (get, list,
 * aggregatedList, with a name filter), zones, and public or project images.
 */
import { ACCELERATORS, API_ROOT, GCE_PROJECT, MACHINE_TYPES, ZONES } from '../catalog.js';
import { notFound } from '../errors.js';
import { parseFilter } from '../filter.js';
import type { J } from '../store.js';
import { findImage } from '../validate.js';
import { aggregated, nameGetter, nameOnly, page, zonalList } from './listing.js';
import { acceleratorJson, imageJson, machineTypeJson, zoneJson } from './views.js';
import { zoneLink } from '../store.js';

export type OfferingResource = 'machineTypes' | 'acceleratorTypes';
export type OfferingVerb = 'get' | 'list' | 'aggregatedList';

/** Machine types and accelerator types: the same three calls each, over their catalogue tables. */
export function zonalOffering(
  resource: OfferingResource,
  verb: OfferingVerb,
  zone: string,
  name: string | undefined,
  q: URLSearchParams,
): J {
  const table: Record<string, { name: string; zones: readonly string[] }> =
    resource === 'machineTypes' ? MACHINE_TYPES : ACCELERATORS;
  const json = resource === 'machineTypes' ? machineTypeJson : acceleratorJson;
  const kind = resource === 'machineTypes' ? 'compute#machineType' : 'compute#acceleratorType';
  if (verb === 'get') {
    const item = table[name!];
    if (!item?.zones.includes(zone)) throw notFound(`projects/${GCE_PROJECT}/zones/${zone}/${resource}/${name}`);
    return json(name!, zone);
  }
  const pred = parseFilter(q.get('filter') ?? undefined, nameOnly);
  const offered = (z: string) =>
    Object.values(table).filter((item) => item.zones.includes(z) && pred(nameGetter(item.name)));
  if (verb === 'aggregatedList') {
    const entries = ZONES.flatMap((z) => offered(z).map((item) => [z, json(item.name, z)] as [string, J]));
    return aggregated(`${kind}AggregatedList`, resource, entries, q);
  }
  const { items, next } = page(offered(zone), q);
  const id = `projects/${GCE_PROJECT}/zones/${zone}/${resource}`;
  return zonalList(
    `${kind}List`,
    id,
    `${zoneLink(zone)}/${resource}`,
    items.map((item) => json(item.name, zone)),
    next,
  );
}

export function getZone(zone: string): J {
  return zoneJson(zone);
}

/** `zones.list`: unlike zonal lists, `items` is written even when empty. */
export function listZones(q: URLSearchParams): J {
  const pred = parseFilter(q.get('filter') ?? undefined, nameOnly);
  const { items, next } = page(
    ZONES.filter((z) => pred(nameGetter(z))),
    q,
  );
  return {
    kind: 'compute#zoneList',
    id: `projects/${GCE_PROJECT}/zones`,
    items: items.map(zoneJson),
    selfLink: `${API_ROOT}/projects/${GCE_PROJECT}/zones`,
    ...(next ? { nextPageToken: next } : {}),
  };
}

export function getImage(project: string, family: string | undefined, name: string | undefined): J {
  const image = findImage(project, family, name);
  if (!image) throw notFound(`projects/${project}/global/images/${family !== undefined ? `family/${family}` : name}`);
  return imageJson(image);
}
