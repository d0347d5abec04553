/**
 * Resource groups: createOrUpdate, get, list (a tag `$filter`), and delete, which answers 202 +
 * Location to an `operationresults` URL (202 until the group is gone) and takes everything in
 * the group with it, VMs' machines and the role assignments scoped inside included.
 * https://learn.microsoft.com/rest/api/resources/resource-groups
 */
import { AZURE_API_VERSIONS } from '../catalog.js';
import { type AzureStore, type Group, type Issued, type J, type Reply, b64url, lower, uuid } from '../store.js';
import {
  ArmError,
  beingDeleted,
  checkApiVersion,
  checkForceDeletionTypes,
  checkGroupPut,
  groupFilter,
  groupNotFound,
  jsonBody,
  notAllowed,
  operationNotFound,
} from '../validation.js';
import { endVm } from './virtual-machines.js';

export function groupOr404(store: AzureStore, name: string): Group {
  const g = store.group(name);
  if (!g) throw groupNotFound(name);
  return g;
}

function groupJson(g: Group): J {
  return {
    id: g.id,
    name: g.name,
    type: 'Microsoft.Resources/resourceGroups',
    location: g.location,
    ...(Object.keys(g.tags).length ? { tags: g.tags } : {}),
    properties: { provisioningState: g.provisioningState },
  };
}

export function putGroup(store: AzureStore, name: string, body: J): Reply {
  const { location, tags } = checkGroupPut(name, body);
  const old = store.group(name);
  if (old?.provisioningState === 'Deleting') throw beingDeleted(old);
  if (old && lower(old.location) !== lower(location)) {
    throw new ArmError(
      409,
      'InvalidResourceGroupLocation',
      `Invalid resource group location '${location}'. The Resource group already exists in location '${old.location}'.`,
    );
  }
  let g = old;
  if (!g) {
    g = {
      id: `${store.subScope}/resourceGroups/${name}`,
      name,
      location,
      tags: {},
      provisioningState: 'Succeeded',
      deleted: false,
      createdAt: new Date(),
      resources: new Map(),
    };
    store.groups.set(lower(name), g);
    store.allGroups.push(g);
  }
  g.tags = { ...tags };
  return { status: old ? 200 : 201, json: groupJson(g) };
}

export const getGroup = (store: AzureStore, name: string): Reply => ({
  status: 200,
  json: groupJson(groupOr404(store, name)),
});

export function listGroups(store: AzureStore, filter: string | null): Reply {
  const match = groupFilter(filter);
  return { status: 200, json: { value: [...store.groups.values()].filter(match).map(groupJson) } };
}

export function deleteGroup(store: AzureStore, name: string, force: string | null, by: Issued): Reply {
  checkForceDeletionTypes(force);
  const g = groupOr404(store, name);
  g.provisioningState = 'Deleting';
  g.deletedBy ??= by.identity;
  if (!g.deletion) {
    g.deletion = { doneAt: Date.now() + store.config.deleteMs };
    store.timers.later(store.config.deleteMs, () => finishDeletion(store, g, by));
  }
  const token = b64url(JSON.stringify({ jobId: `ResourceGroupDeletionJob-${uuid()}`, jobLocation: g.location }));
  store.deletions.set(token, g);
  const location = `${store.url}/subscriptions/${store.sub}/operationresults/${token}?api-version=${AZURE_API_VERSIONS.resources}`;
  return { status: 202, headers: { location, 'retry-after': store.config.retryAfter } };
}

function finishDeletion(store: AzureStore, g: Group, by: Issued): void {
  for (const r of g.resources.values()) {
    const vm = store.allVms.find((v) => v === r);
    if (vm)
      endVm(
        store,
        vm,
        vm.principalId !== undefined && vm.principalId === by.principal ? 'deleted by its own identity' : 'deleted',
      );
  }
  g.resources.clear();
  const prefix = lower(g.id);
  store.assignments = store.assignments.filter(
    (a) => lower(a.scope) !== prefix && !lower(a.scope).startsWith(`${prefix}/`),
  );
  g.deleted = true;
  g.deletedAt = new Date();
  if (store.group(g.name) === g) store.groups.delete(lower(g.name));
}

/** `GET /subscriptions/S/operationresults/{token}`: 202 + Location until the group is gone, then 200. */
export function deletionStatus(store: AzureStore, q: URLSearchParams, token: string, self: string): Reply {
  checkApiVersion(q, AZURE_API_VERSIONS.resources, 'operationresults');
  const g = store.deletions.get(token);
  if (!g) throw operationNotFound();
  if (!g.deleted)
    return {
      status: 202,
      headers: { location: self, 'retry-after': store.config.retryAfter },
      lroStatus: 'InProgress',
    };
  return { status: 200, lroStatus: 'Succeeded' };
}

/** `PATCH` of a group (resourceGroups.update): `tags`, when given, replace the group's. */
export function patchGroup(store: AzureStore, name: string, body: J): Reply {
  const g = groupOr404(store, name);
  if (g.provisioningState === 'Deleting') throw beingDeleted(g);
  if (body.tags !== undefined) g.tags = tagsOf(body.tags);
  return { status: 200, json: groupJson(g) };
}

/**
 * The Tags API at a group's scope: GET reads, PUT replaces, PATCH merges, replaces or deletes
 * (`operation`). https://learn.microsoft.com/rest/api/resources/tags/update-at-scope (read 2026-12-08)
 */
export function tagsAtScope(g: Group, method: string, raw: Buffer): Reply {
  const json = (): J => ({
    id: `${g.id}/providers/Microsoft.Resources/tags/default`,
    name: 'default',
    type: 'Microsoft.Resources/tags',
    properties: { tags: g.tags },
  });
  if (method === 'GET') return { status: 200, json: json() };
  if (method !== 'PUT' && method !== 'PATCH') throw notAllowed(method);
  if (g.provisioningState === 'Deleting') throw beingDeleted(g);
  const body = jsonBody(raw);
  const tags = tagsOf((body.properties as J | undefined)?.tags ?? {});
  const op = method === 'PUT' ? 'Replace' : String(body.operation ?? '');
  if (op === 'Replace') g.tags = tags;
  else if (op === 'Merge') g.tags = { ...g.tags, ...tags };
  else if (op === 'Delete') for (const k of Object.keys(tags)) delete g.tags[k];
  else throw new ArmError(400, 'InvalidRequestContent', `The value '${op}' of 'operation' is not valid.`);
  return { status: 200, json: json() };
}

function tagsOf(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null) throw new ArmError(400, 'InvalidRequestContent', 'The tags are not valid.');
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
}
