/**
 * Lists as the API pages them: `items` (left out when empty), `nextPageToken`, and for
 * aggregatedList one entry per zone, a zone without results carrying the NO_RESULTS_ON_PAGE
 * warning ("aggregatedList", https://cloud.google.com/compute/docs/reference/rest/v1/instances/aggregatedList).
 */
import { API_ROOT, GCE_PROJECT, ZONES } from '../catalog.js';
import type { Internal, J } from '../store.js';
import { pageToken, paging } from '../validation.js';

export function page<T>(items: T[], q: URLSearchParams): { items: T[]; next?: string } {
  const { max, start } = paging(q);
  const slice = items.slice(start, start + max);
  return { items: slice, ...(start + max < items.length ? { next: pageToken(start + max) } : {}) };
}

/** An aggregated list of `[zone, item]` entries, keyed `zones/<zone>`. */
export function aggregated<T>(kind: string, key: string, entries: Array<[string, T]>, q: URLSearchParams): J {
  const { items, next } = page(entries, q);
  const byZone = new Map<string, T[]>();
  for (const [z, x] of items) byZone.set(z, [...(byZone.get(z) ?? []), x]);
  const out: Record<string, J> = {};
  for (const z of ZONES) {
    const found = byZone.get(z);
    const scope = `zones/${z}`;
    out[scope] = found
      ? { [key]: found }
      : {
          warning: {
            code: 'NO_RESULTS_ON_PAGE',
            message: `There are no results for scope '${scope}' on this page.`,
            data: [{ key: 'scope', value: scope }],
          },
        };
  }
  return {
    kind,
    id: `projects/${GCE_PROJECT}/aggregated/${key}`,
    items: out,
    selfLink: `${API_ROOT}/projects/${GCE_PROJECT}/aggregated/${key}`,
    ...(next ? { nextPageToken: next } : {}),
  };
}

/** A zonal list: `kind`, `id`, `items` when any, `selfLink`, `nextPageToken`. */
export function zonalList(kind: string, id: string, selfLink: string, items: J[], next: string | undefined): J {
  return { kind, id, ...(items.length > 0 ? { items } : {}), selfLink, ...(next ? { nextPageToken: next } : {}) };
}

/** `orderBy`: `name` or `creationTimestamp desc`; otherwise creation order. */
export function ordered(list: Internal[], q: URLSearchParams): Internal[] {
  const order = q.get('orderBy');
  if (order === 'name') return [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (order === 'creationTimestamp desc')
    return [...list].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  return list;
}

/** Filter fields instances can be listed by. */
export const instanceFields = (f: string): boolean =>
  ['name', 'status', 'id', 'zone', 'machineType'].includes(f) || /^labels\.[a-z][a-z0-9_-]{0,62}$/.test(f);

export const nameOnly = (f: string): boolean => f === 'name';
export const nameGetter =
  (name: string) =>
  (f: string): string | undefined =>
    f === 'name' ? name : undefined;
