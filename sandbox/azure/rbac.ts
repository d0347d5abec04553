/**
 * Azure RBAC as Resource Manager evaluates it, from the very documents users copy
 * (docs/permissions/azure/): role definitions (Actions and NotActions, `*` wildcards, compared
 * case-insensitively; DataActions are not modelled), role assignments at a scope and every
 * scope under it, and role assignment conditions (ABAC, condition version 2.0) in the part of
 * the condition language the launcher's condition uses: `ActionMatches{'…'}`,
 * `@Request[…:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {…}`, `!`, `AND`, `OR` and
 * parentheses. Anything else in a condition is refused when the fake starts.
 *
 * An assignment grants an action when one of its role's Actions matches it, none of its
 * NotActions does, and its condition (if any) holds for the request.
 * https://learn.microsoft.com/azure/role-based-access-control/role-definitions#actions (read 2026-12-08)
 * https://learn.microsoft.com/azure/role-based-access-control/conditions-format (read 2026-12-08)
 * https://learn.microsoft.com/azure/role-based-access-control/delegate-role-assignments-examples#example-constrain-roles
 * (read 2026-12-08)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** docs/permissions/azure/ of this repository: the fake reads the files the README shows. */
export const PERMISSIONS_DIR = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'docs',
  'permissions',
  'azure',
);

export interface RoleDefinition {
  /** The role definition's GUID (its `name` in ARM). */
  id: string;
  roleName: string;
  type: 'BuiltInRole' | 'CustomRole';
  description: string;
  /** Live: a test may take an action out and put it back. */
  actions: string[];
  notActions: string[];
  assignableScopes: string[];
}

/** What a condition may ask of a request: the action, and the request's attributes. */
export interface RequestContext {
  action: string;
  /** `Microsoft.Authorization/roleAssignments:RoleDefinitionId` → its values (GUIDs). */
  request?: Record<string, string[]>;
}

export type Condition = (ctx: RequestContext) => boolean;

/** An action pattern (such as `Microsoft.Compute/*`) as ARM matches it: the whole action, any case. */
export function actionMatches(pattern: string, action: string): boolean {
  const re = pattern
    .split('*')
    .map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${re}$`, 'i').test(action);
}

export function grants(role: RoleDefinition, action: string): boolean {
  return role.actions.some((a) => actionMatches(a, action)) && !role.notActions.some((a) => actionMatches(a, action));
}

/** A scope and the scopes under it. */
export function covers(assignmentScope: string, scope: string): boolean {
  const a = assignmentScope.toLowerCase().replace(/\/+$/, '');
  const s = scope.toLowerCase();
  return s === a || s.startsWith(`${a}/`);
}

/**
 * A custom role from a docs/permissions/azure/ file, as `az role definition create` makes it:
 * the placeholder subscription of AssignableScopes becomes this subscription, the id is `id`.
 */
export function customRole(file: string, id: string, subscriptionId: string): RoleDefinition {
  const doc = JSON.parse(fs.readFileSync(path.join(PERMISSIONS_DIR, file), 'utf8')) as {
    Name: string;
    Description?: string;
    Actions: string[];
    NotActions?: string[];
    DataActions?: string[];
    AssignableScopes: string[];
  };
  if (!doc.Name || !Array.isArray(doc.Actions) || !Array.isArray(doc.AssignableScopes)) {
    throw new Error(`azure fake: ${file} is not a role definition (Name, Actions, AssignableScopes)`);
  }
  if (doc.DataActions?.length) throw new Error(`azure fake: ${file} has DataActions, which the fake does not model`);
  return {
    id,
    roleName: doc.Name,
    type: 'CustomRole',
    description: doc.Description ?? '',
    actions: [...doc.Actions],
    notActions: [...(doc.NotActions ?? [])],
    assignableScopes: doc.AssignableScopes.map((s) =>
      s.replace(/^\/subscriptions\/00000000-0000-0000-0000-000000000000/i, `/subscriptions/${subscriptionId}`),
    ),
  };
}

/** Built-in roles the fake knows, with their ids (the same in every tenant) and permissions. */
export function builtInRoles(ids: { owner: string; contributor: string; reader: string }): RoleDefinition[] {
  const role = (id: string, roleName: string, actions: string[], notActions: string[] = []): RoleDefinition => ({
    id,
    roleName,
    type: 'BuiltInRole',
    description: '',
    actions,
    notActions,
    assignableScopes: ['/'],
  });
  // https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/privileged (read 2026-12-08)
  return [
    role(ids.owner, 'Owner', ['*']),
    role(
      ids.contributor,
      'Contributor',
      ['*'],
      [
        'Microsoft.Authorization/*/Delete',
        'Microsoft.Authorization/*/Write',
        'Microsoft.Authorization/elevateAccess/Action',
        'Microsoft.Blueprint/blueprintAssignments/write',
        'Microsoft.Blueprint/blueprintAssignments/delete',
        'Microsoft.Compute/galleries/share/action',
        'Microsoft.Purview/consents/write',
        'Microsoft.Purview/consents/delete',
        'Microsoft.Resources/deploymentStacks/manageDenySetting/action',
        'Microsoft.Subscription/cancel/action',
        'Microsoft.Subscription/enable/action',
      ],
    ),
    role(ids.reader, 'Reader', ['*/read']),
  ];
}

/**
 * The launcher's condition file, with `VM_ROLE_ID` replaced by the VM role's id as the README's
 * setup does, parsed. A condition outside the language described above throws.
 */
export function conditionFromFile(file: string, vmRoleId: string): { text: string; check: Condition } {
  const text = fs.readFileSync(path.join(PERMISSIONS_DIR, file), 'utf8').replace(/VM_ROLE_ID/g, vmRoleId);
  return { text, check: parseCondition(text) };
}

type Token = { kind: 'open' | 'close' | 'not' | 'and' | 'or' } | { kind: 'atom'; test: Condition };

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  const atoms: Array<[RegExp, (m: RegExpExecArray) => Condition]> = [
    [/^ActionMatches\{'([^']+)'\}/, (m) => (ctx) => actionMatches(m[1]!, ctx.action)],
    [
      /^@Request\[([A-Za-z0-9./]+:[A-Za-z]+)\]\s+ForAnyOfAnyValues:GuidEquals\s+\{([^}]*)\}/,
      (m) => {
        const wanted = m[2]!.split(',').map((g) => g.trim().toLowerCase());
        for (const g of wanted) if (!GUID.test(g)) throw new Error(`azure fake: not a GUID in a condition: '${g}'`);
        return (ctx) => (ctx.request?.[m[1]!] ?? []).some((v) => wanted.includes(v.toLowerCase()));
      },
    ],
  ];
  let rest = text.trim();
  while (rest) {
    const simple = /^(\(|\)|!|AND\b|OR\b)/.exec(rest);
    if (simple) {
      const s = simple[1]!;
      out.push({ kind: s === '(' ? 'open' : s === ')' ? 'close' : s === '!' ? 'not' : s === 'AND' ? 'and' : 'or' });
      rest = rest.slice(s.length).trimStart();
      continue;
    }
    const found = atoms.map(([re, make]) => [re.exec(rest), make] as const).find(([m]) => m);
    if (!found) throw new Error(`azure fake: a condition the fake does not evaluate, at: ${rest.slice(0, 60)}`);
    const [m, make] = found;
    out.push({ kind: 'atom', test: make(m!) });
    rest = rest.slice(m![0].length).trimStart();
  }
  return out;
}

/** `expr := and (OR and)*`, `and := unary (AND unary)*`, `unary := ! unary | ( expr ) | atom`. */
export function parseCondition(text: string): Condition {
  const tokens = tokenize(text);
  let i = 0;
  const fail = (): never => {
    throw new Error(`azure fake: a condition the fake cannot parse at token ${i}: ${text}`);
  };
  const unary = (): Condition => {
    const t = tokens[i++] ?? fail();
    if (t.kind === 'not') {
      const inner = unary();
      return (ctx) => !inner(ctx);
    }
    if (t.kind === 'open') {
      const inner = expr();
      if (tokens[i++]?.kind !== 'close') fail();
      return inner;
    }
    return t.kind === 'atom' ? t.test : fail();
  };
  const and = (): Condition => {
    const parts = [unary()];
    while (tokens[i]?.kind === 'and') {
      i++;
      parts.push(unary());
    }
    return (ctx) => parts.every((p) => p(ctx));
  };
  const expr = (): Condition => {
    const parts = [and()];
    while (tokens[i]?.kind === 'or') {
      i++;
      parts.push(and());
    }
    return (ctx) => parts.some((p) => p(ctx));
  };
  const top = expr();
  if (i !== tokens.length) fail();
  return top;
}
