/**
 * RBAC as the API server's authorizer applies it, read from the documents users apply: the
 * Namespace, Role and RoleBinding of docs/permissions/kubernetes/launcher-role.yaml. A request of
 * the bound service account is allowed when one rule of its Role matches the request's API group,
 * resource (with its subresource, `pods/log`), verb and, where the rule names them, the object's
 * name; anything else is 403 with the authorizer's own wording. Rules only add: there is no deny.
 * https://kubernetes.io/docs/reference/access-authn-authz/rbac/ (2025-09, v1.34)
 * https://kubernetes.io/docs/reference/access-authn-authz/authorization/#determine-the-request-verb
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

/** One rule of a Role (rbac.authorization.k8s.io/v1 PolicyRule). */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** A Role bound to one service account in its namespace, and the labels of that namespace. */
export interface LauncherPolicy {
  namespace: string;
  /** The user name RBAC messages show: `system:serviceaccount:NAMESPACE:NAME`. */
  user: string;
  rules: PolicyRule[];
  namespaceLabels: Record<string, string>;
}

export const LAUNCHER_ROLE_FILE = path.join(process.cwd(), 'docs', 'permissions', 'kubernetes', 'launcher-role.yaml');

interface Doc {
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  rules?: PolicyRule[];
  subjects?: Array<{ kind: string; name: string; namespace?: string }>;
  roleRef?: { kind: string; name: string };
}

/** The launcher's policy from the documented file (or another text of the same shape). */
export function readLauncherPolicy(text = readFileSync(LAUNCHER_ROLE_FILE, 'utf8')): LauncherPolicy {
  const docs = parseAllDocuments(text).map((d) => d.toJSON() as Doc);
  const binding = docs.find((d) => d.kind === 'RoleBinding');
  const role = docs.find((d) => d.kind === 'Role' && d.metadata?.name === binding?.roleRef?.name);
  const subject = binding?.subjects?.find((s) => s.kind === 'ServiceAccount');
  if (!binding || !role || !subject) throw new Error('the launcher Role file has no Role bound to a ServiceAccount');
  const namespace = role.metadata?.namespace ?? 'default';
  const ns = docs.find((d) => d.kind === 'Namespace' && d.metadata?.name === namespace);
  return {
    namespace,
    user: `system:serviceaccount:${subject.namespace ?? namespace}:${subject.name}`,
    rules: structuredClone(role.rules ?? []),
    namespaceLabels: { ...(ns?.metadata?.labels ?? {}) },
  };
}

export interface Attributes {
  group: string;
  /** `pods`, or `pods/log` for a subresource. */
  resource: string;
  verb: string;
  namespace?: string;
  name?: string;
}

/** Whether the policy allows a resource request (RBAC's RuleAllows, for a namespaced Role). */
export function allows(policy: Pick<LauncherPolicy, 'namespace' | 'rules'>, a: Attributes): boolean {
  if (a.namespace !== policy.namespace) return false;
  const has = (list: readonly string[] | undefined, v: string): boolean =>
    (list ?? []).includes('*') || (list ?? []).includes(v);
  return policy.rules.some((r) => {
    if (!has(r.apiGroups, a.group) || !has(r.verbs, a.verb)) return false;
    // `*` is every resource and subresource; `*/log` is that subresource of any resource.
    const sub = a.resource.split('/')[1];
    const resourceOk = r.resources.some(
      (res) => res === '*' || res === a.resource || (sub !== undefined && res === `*/${sub}`),
    );
    if (!resourceOk) return false;
    // A rule with resourceNames matches only requests naming one of them (never a create or a list).
    if (r.resourceNames && r.resourceNames.length > 0) return a.name !== undefined && r.resourceNames.includes(a.name);
    return true;
  });
}
