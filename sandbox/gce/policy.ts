/**
 * Who may do what in the sandbox project, read from the documents a user applies
 * (docs/permissions/gcp/): the launcher's two custom roles (launcher-role.yaml granted with the
 * IAM condition launcher-condition.txt, launcher-list-role.yaml without one), the VM's role
 * (vm-role.yaml with vm-delete-condition.txt), the launcher's binding on the VM's service account
 * (service-account-user.yaml) and the workload identity provider's attribute condition
 * (workload-identity-condition.txt). The fake reads these very files, so a run under
 * them proves them.
 *
 * Conditions are CEL, of which this evaluates the subset the documents use: `resource.name`,
 * `resource.type`, `assertion.CLAIM`, string literals, `.startsWith(s)`, `.extract(template)`,
 * `==`, `&&`, `||`, `!` and parentheses. Anything else refuses to load, so the documents cannot
 * outgrow the evaluator unnoticed.
 *
 * Facts (checked 2026-12):
 * - Compute Engine resource names in conditions are `projects/P/zones/Z/instances/NAME` (type
 *   `compute.googleapis.com/Instance`) and `projects/P/zones/Z/disks/NAME`
 *   (`compute.googleapis.com/Disk`); https://cloud.google.com/iam/docs/conditions-resource-attributes
 * - `extract(template)` gives the part of the name at the template's one `{}` placeholder, or
 *   `""` when the name does not match; https://cloud.google.com/iam/docs/conditions-attribute-reference
 * - A conditioned binding applies only where its condition holds; a permission checked on the
 *   project or on another kind of resource (a list, an operation, a subnetwork, an image) fails a
 *   condition on the instance's name, so those live in the unconditioned role
 *   (https://cloud.google.com/iam/docs/configuring-resource-based-access). Read the less
 *   convenient way: every permission is checked on its own resource, the boot disk's on the disk.
 * - A token exchange whose GitHub token fails the provider's attribute condition is refused with
 *   `{"error":"unauthorized_client","error_description":"The given credential is rejected by the
 *   attribute condition."}` (as quoted in https://github.com/circleci/circleci-docs/pull/8541, 2023-12;
 *   conditions: https://cloud.google.com/iam/docs/workload-identity-federation#conditions).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const POLICY_DIR = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'docs',
  'permissions',
  'gcp',
);

/** What a condition sees. */
export interface ConditionContext {
  resource?: { name: string; type: string };
  assertion?: Record<string, string>;
}

type Value = string | boolean;
type Node = { kind: 'string' | 'bool'; eval: (c: ConditionContext) => Value };

const TOKEN = /\s*(?:(&&|\|\||==|[!().])|"([^"\\]*)"|'([^'\\]*)'|([A-Za-z_][A-Za-z0-9_]*))/y;

interface Token {
  op?: string;
  str?: string;
  id?: string;
}

function tokenize(text: string, file: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  let at = 0;
  while (text.slice(at).trim() !== '') {
    TOKEN.lastIndex = at;
    const m = TOKEN.exec(text);
    if (!m) throw new Error(`${file}: the sandbox's condition evaluator cannot read "${text.slice(at).trim()}"`);
    at = TOKEN.lastIndex;
    if (m[1] !== undefined) out.push({ op: m[1] });
    else if (m[2] !== undefined || m[3] !== undefined) out.push({ str: m[2] ?? m[3]! });
    else out.push({ id: m[4]! });
  }
  return out;
}

/** One placeholder: the text between what precedes and what follows it, or "". */
function extract(name: string, template: string): string {
  const [before, after] = template.split(/\{[A-Za-z_]+\}/) as [string, string];
  const start = name.indexOf(before);
  if (start < 0) return '';
  const rest = name.slice(start + before.length);
  if (after === '') return rest;
  const end = rest.indexOf(after);
  return end < 0 ? '' : rest.slice(0, end);
}

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly file: string,
    private readonly roots: readonly string[],
  ) {}

  private fail(what: string): never {
    throw new Error(`${this.file}: the sandbox's condition evaluator does not support ${what}`);
  }
  private peek(op: string): boolean {
    return this.tokens[this.i]?.op === op;
  }
  private take(op: string): void {
    if (!this.peek(op)) this.fail(`this expression (expected "${op}" at token ${this.i + 1})`);
    this.i++;
  }
  private bool(n: Node, op: string): Node {
    if (n.kind !== 'bool') this.fail(`"${op}" on a string`);
    return n;
  }

  parseAll(): Node {
    const n = this.bool(this.or(), 'a condition');
    if (this.i !== this.tokens.length) this.fail(`what follows token ${this.i}`);
    return n;
  }

  private or(): Node {
    let left = this.and();
    while (this.peek('||')) {
      this.i++;
      const [a, b] = [this.bool(left, '||'), this.bool(this.and(), '||')];
      left = { kind: 'bool', eval: (c) => a.eval(c) === true || b.eval(c) === true };
    }
    return left;
  }

  private and(): Node {
    let left = this.unary();
    while (this.peek('&&')) {
      this.i++;
      const [a, b] = [this.bool(left, '&&'), this.bool(this.unary(), '&&')];
      left = { kind: 'bool', eval: (c) => a.eval(c) === true && b.eval(c) === true };
    }
    return left;
  }

  private unary(): Node {
    if (this.peek('!')) {
      this.i++;
      const n = this.bool(this.unary(), '!');
      return { kind: 'bool', eval: (c) => n.eval(c) !== true };
    }
    const left = this.primary();
    if (!this.peek('==')) return left;
    this.i++;
    const right = this.primary();
    if (left.kind !== 'string' || right.kind !== 'string') this.fail('"==" between non-strings');
    return { kind: 'bool', eval: (c) => left.eval(c) === right.eval(c) };
  }

  private primary(): Node {
    const t = this.tokens[this.i++];
    let node: Node;
    if (t?.op === '(') {
      node = this.or();
      this.take(')');
    } else if (t?.str !== undefined) {
      const s = t.str;
      node = { kind: 'string', eval: () => s };
    } else if (t?.id !== undefined) {
      node = this.variable(t.id);
    } else {
      return this.fail(`the token ${JSON.stringify(t ?? 'end')}`);
    }
    return this.methods(node);
  }

  private variable(root: string): Node {
    this.take('.');
    const field = this.tokens[this.i++]?.id;
    const name = `${root}.${field}`;
    if (field === undefined || !(this.roots.includes(name) || this.roots.includes(`${root}.*`))) {
      this.fail(`the attribute ${name}`);
    }
    if (root === 'resource') {
      const key = field as 'name' | 'type';
      return { kind: 'string', eval: (c) => c.resource?.[key] ?? '' };
    }
    return { kind: 'string', eval: (c) => c.assertion?.[field] ?? '' };
  }

  private methods(start: Node): Node {
    let node = start;
    while (this.peek('.')) {
      this.i++;
      const method = this.tokens[this.i++]?.id;
      this.take('(');
      const arg = this.tokens[this.i++]?.str;
      if (arg === undefined) this.fail(`a non-literal argument to ${method}()`);
      this.take(')');
      if (node.kind !== 'string') this.fail(`${method}() on a boolean`);
      const target = node;
      if (method === 'startsWith') {
        node = { kind: 'bool', eval: (c) => (target.eval(c) as string).startsWith(arg) };
      } else if (method === 'extract') {
        if ((arg.match(/\{[A-Za-z_]+\}/g) ?? []).length !== 1) this.fail(`extract("${arg}") without one placeholder`);
        node = { kind: 'string', eval: (c) => extract(target.eval(c) as string, arg) };
      } else {
        this.fail(`the function ${method}()`);
      }
    }
    return node;
  }
}

export type Condition = (c: ConditionContext) => boolean;

/** Compiles a condition; `roots` are the attributes it may use (`resource.name`, `assertion.*`). */
export function compileCondition(text: string, file: string, roots: readonly string[]): Condition {
  const node = new Parser(tokenize(text.trim(), file), file, roots).parseAll();
  return (c) => node.eval(c) === true;
}

// ---------------------------------------------------------------------------------------------
// The documents

export interface Binding {
  /** The role's file. */
  role: string;
  permissions: ReadonlySet<string>;
  /** Undefined: the binding has no condition. */
  condition?: Condition;
}

const RESOURCE_ROOTS = ['resource.name', 'resource.type'];

function readRole(file: string): ReadonlySet<string> {
  const doc = parse(fs.readFileSync(path.join(POLICY_DIR, file), 'utf8')) as { includedPermissions?: unknown };
  const list = doc?.includedPermissions;
  if (!Array.isArray(list) || list.some((p) => typeof p !== 'string' || !/^[a-z]+\.[A-Za-z]+\.[A-Za-z]+$/.test(p))) {
    throw new Error(`${file}: includedPermissions must be a list of permission names`);
  }
  return new Set(list as string[]);
}

function readCondition(file: string, roots: readonly string[]): Condition {
  return compileCondition(fs.readFileSync(path.join(POLICY_DIR, file), 'utf8'), file, roots);
}

/**
 * A binding on a service account (service-account-user.yaml): its members may act as it
 * (`iam.serviceAccounts.actAs`). `account` and the members are the document's placeholders
 * (`RUNNER_VM`, `serviceAccount:LAUNCHER`), which the README's commands replace.
 */
export interface ActAsBinding {
  account: string;
  members: readonly string[];
}

/**
 * The roles that hold iam.serviceAccounts.actAs, of those a binding on a service account may
 * name: roles/iam.serviceAccountUser ("Service account user role",
 * https://cloud.google.com/iam/docs/service-account-permissions#user-role). Any other role refuses
 * to load, so the document cannot name one the fake would not know.
 */
const ACT_AS_ROLES = new Set(['roles/iam.serviceAccountUser']);

function readActAs(file: string): ActAsBinding {
  const doc = parse(fs.readFileSync(path.join(POLICY_DIR, file), 'utf8')) as Record<string, unknown> | null;
  const resource = typeof doc?.resource === 'string' ? /^serviceAccounts\/([A-Z_]+)$/.exec(doc.resource) : null;
  const members = doc?.members;
  if (!resource || !Array.isArray(members) || members.some((m) => typeof m !== 'string')) {
    throw new Error(`${file}: expected resource: serviceAccounts/ACCOUNT, a role and a list of members`);
  }
  if (!ACT_AS_ROLES.has(String(doc?.role))) {
    throw new Error(`${file}: the sandbox knows no role ${String(doc?.role)} on a service account`);
  }
  return { account: resource[1]!, members: members as string[] };
}

export interface Policies {
  launcher: Binding[];
  vm: Binding[];
  /** Who may start VMs as which service account (instances.insert with serviceAccounts). */
  actAs: ActAsBinding[];
  /** The provider's attribute condition, for the repository given. */
  workloadIdentity: (repository: string) => Condition;
}

/** Reads docs/permissions/gcp/ (the role files as the README's gcloud commands grant them). */
export function loadPolicies(): Policies {
  const wif = fs.readFileSync(path.join(POLICY_DIR, 'workload-identity-condition.txt'), 'utf8');
  if (!wif.includes("'OWNER/REPO'")) throw new Error("workload-identity-condition.txt: expected 'OWNER/REPO'");
  compileCondition(wif, 'workload-identity-condition.txt', ['assertion.*']);
  return {
    launcher: [
      {
        role: 'launcher-role.yaml',
        permissions: readRole('launcher-role.yaml'),
        condition: readCondition('launcher-condition.txt', RESOURCE_ROOTS),
      },
      { role: 'launcher-list-role.yaml', permissions: readRole('launcher-list-role.yaml') },
    ],
    vm: [
      {
        role: 'vm-role.yaml',
        permissions: readRole('vm-role.yaml'),
        condition: readCondition('vm-delete-condition.txt', RESOURCE_ROOTS),
      },
    ],
    actAs: [readActAs('service-account-user.yaml')],
    workloadIdentity: (repository) =>
      compileCondition(wif.replaceAll('OWNER/REPO', repository), 'workload-identity-condition.txt', ['assertion.*']),
  };
}

/** Whether bindings grant `permission` on the resource (name and type as conditions see them). */
export function granted(bindings: readonly Binding[], permission: string, resource: { name: string; type: string }) {
  return bindings.some((b) => b.permissions.has(permission) && (b.condition?.({ resource }) ?? true));
}
