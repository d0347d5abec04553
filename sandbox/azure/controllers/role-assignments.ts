/**
 * Role assignments at a resource group's scope: what lets a VM's managed identity delete its
 * own group.
 * https://learn.microsoft.com/rest/api/authorization/role-assignments/create
 */
import type { AzureRoleAssignment } from '../../azure.js';
import { AZURE_APPS } from '../catalog.js';
import type { AzureStore, Group, Issued, J, Reply } from '../store.js';
import { lower } from '../store.js';
import { ArmError, beingDeleted, checkAssignmentName, checkRoleDefinition, principalNotFound } from '../validation.js';

/** `body` is read after the name and the group's state are checked, as ARM reads it. */
export function createRoleAssignment(store: AzureStore, g: Group, name: string, body: () => J, who: Issued): Reply {
  const scope = g.id;
  checkAssignmentName(name);
  if (g.provisioningState === 'Deleting') throw beingDeleted(g);
  const props = (body().properties ?? {}) as J;
  const { roleDefinitionId, roleGuid } = checkRoleDefinition(store, props);
  const principalId = String(props.principalId ?? '');
  const vm = store.vmIdentities.get(principalId);
  const known = (vm !== undefined && !vm.deleted) || Object.values(AZURE_APPS).some((a) => a.objectId === principalId);
  // A just-created managed identity has not replicated yet: without principalType the
  // assignment fails as Azure's does (PrincipalNotFound); with it, it is accepted.
  // https://learn.microsoft.com/azure/role-based-access-control/role-assignments-template#new-service-principal
  if (!known || (vm !== undefined && props.principalType !== 'ServicePrincipal'))
    throw principalNotFound(principalId, store.tenant);
  const existing = store.assignments.find(
    (a) => lower(a.scope) === lower(scope) && a.principalId === principalId && a.roleDefinitionId.endsWith(roleGuid),
  );
  if (existing) throw new ArmError(409, 'RoleAssignmentExists', 'The role assignment already exists.');
  const ra: AzureRoleAssignment = {
    id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`,
    name,
    scope,
    principalId,
    ...(typeof props.principalType === 'string' ? { principalType: props.principalType } : {}),
    roleDefinitionId,
    createdBy: who.identity,
  };
  store.assignments.push(ra);
  return {
    status: 201,
    json: {
      id: ra.id,
      name,
      type: 'Microsoft.Authorization/roleAssignments',
      properties: {
        roleDefinitionId,
        principalId,
        principalType: ra.principalType,
        scope,
        createdOn: new Date().toISOString(),
        createdBy: who.principal,
      },
    },
  };
}

/**
 * `GET /subscriptions/S/providers/Microsoft.Authorization/roleDefinitions`, all of them or
 * `$filter=roleName eq '…'` (the name compared in any case).
 * https://learn.microsoft.com/rest/api/authorization/role-definitions/list (read 2026-12-08)
 */
export function listRoleDefinitions(store: AzureStore, filter: string | null): Reply {
  const m = filter === null ? undefined : /^roleName eq '((?:[^']|'')*)'$/.exec(filter.trim());
  if (filter !== null && !m)
    throw new ArmError(400, 'InvalidFilterInQueryString', `Invalid $filter '${filter}' specified in the query string.`);
  const name = m ? m[1]!.replace(/''/g, "'") : undefined;
  const roles = [...store.roles.values()].filter((r) => name === undefined || lower(r.roleName) === lower(name));
  return {
    status: 200,
    json: {
      value: roles.map((r) => ({
        id: `${store.subScope}/providers/Microsoft.Authorization/roleDefinitions/${r.id}`,
        name: r.id,
        type: 'Microsoft.Authorization/roleDefinitions',
        properties: {
          roleName: r.roleName,
          type: r.type,
          description: r.description,
          assignableScopes: r.assignableScopes,
          permissions: [{ actions: r.actions, notActions: r.notActions, dataActions: [], notDataActions: [] }],
        },
      })),
    },
  };
}
