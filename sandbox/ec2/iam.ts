/**
 * IAM as the fake EC2 and SSM apply it to the launching identity: every call is checked against
 * identity-based policy documents, by default the ones the README tells users to attach
 * (docs/permissions/aws/), read from those files. What the documents use is evaluated as IAM does
 * ("Policy evaluation logic", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
 * read 2026-12-08): an explicit Deny wins, then any Allow, else the call is denied by default.
 * Action matches with `*`/`?` wildcards, case-insensitively; Resource matches the ARN with
 * wildcards; Condition operators StringEquals, StringNotEquals, StringLike, StringNotLike, with
 * the ForAllValues:/ForAnyValue: qualifiers, on keys such as `aws:RequestTag/<key>`,
 * `aws:TagKeys`, `ec2:CreateAction`, `ec2:ResourceTag/<key>`, `iam:AWSServiceName`,
 * `iam:PassedToService`. A key the request does not carry fails its condition (the negated
 * operators excepted, as in IAM). Condition key names match case-insensitively.
 *
 * A denial's wording is EC2's and SSM's: "User: <arn> is not authorized to perform: <action> on
 * resource: <arn> because no identity-based policy allows the <action> action" (EC2 adds "You are
 * not authorized to perform this operation." before and an encoded authorization failure message
 * after: https://repost.aws/knowledge-center/ec2-not-auth-launch, read 2026-12-08; "with an explicit
 * deny in an identity-based policy" for a Deny:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html, read 2026-12-08).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ACCOUNT_ID } from './catalog.js';

type OneOrMany<T> = T | T[];

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  /** A trust policy's: who may assume the role (`Federated`: an OIDC provider's ARN). */
  Principal?: '*' | Record<string, OneOrMany<string>>;
  Action?: OneOrMany<string>;
  NotAction?: OneOrMany<string>;
  Resource?: OneOrMany<string>;
  NotResource?: OneOrMany<string>;
  Condition?: Record<string, Record<string, OneOrMany<string | boolean>>>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: OneOrMany<PolicyStatement>;
}

/** One authorisation IAM makes: an action on a resource ARN (`*` for actions without resource-level permissions). */
export interface AccessRequest {
  action: string;
  resource: string;
  /** Condition keys and their values for this resource. */
  context?: Record<string, string | string[]>;
}

export interface Denial {
  request: AccessRequest;
  explicit: boolean;
  principal: string;
}

const DOCS = path.join(import.meta.dirname, '..', '..', 'docs', 'permissions', 'aws');
/** The policy the README gives the role the workflow assumes. */
export const LAUNCHER_POLICY_FILE = path.join(DOCS, 'launcher-policy.json');
/** The trust policy the README gives the launcher role (GitHub OIDC, one repository and branch). */
export const TRUST_POLICY_FILE = path.join(DOCS, 'trust-policy.json');
/** The statement added when aws-instance-profile is given (iam:PassRole). */
export const INSTANCE_PROFILE_POLICY_FILE = path.join(DOCS, 'instance-profile-policy.json');

export function readPolicy(file: string): PolicyDocument {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as PolicyDocument;
}

/** The role the workflow assumes through GitHub OIDC, as STS names its session. */
export const LAUNCHER_PRINCIPAL = `arn:aws:sts::${ACCOUNT_ID}:assumed-role/cml-runner-launcher/GitHubActions`;

const list = <T>(v: OneOrMany<T> | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** An IAM wildcard pattern (`*` any run, `?` one character) as a regular expression. */
function glob(pattern: string, flags = ''): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, flags);
}

const STRING_TESTS: Record<string, (value: string, wanted: string) => boolean> = {
  StringEquals: (v, w) => v === w,
  StringLike: (v, w) => glob(w).test(v),
  StringEqualsIgnoreCase: (v, w) => v.toLowerCase() === w.toLowerCase(),
};

/** One operator and key of a Condition block against the request's values. */
function conditionHolds(operator: string, key: string, wanted: string[], context: Map<string, string[]>): boolean {
  const qualified = /^(ForAllValues|ForAnyValue):(.+)$/.exec(operator);
  const setOp = qualified?.[1];
  let op = qualified ? qualified[2]! : operator;
  const negated = /^String(Not)/.test(op);
  if (negated) op = op.replace('Not', '');
  const test = STRING_TESTS[op];
  if (!test) throw new Error(`sandbox IAM: condition operator ${operator} is not evaluated here`);
  const values = context.get(key.toLowerCase());
  const matches = (v: string): boolean => wanted.some((w) => test(v, w));
  if (setOp === 'ForAllValues') return (values ?? []).every((v) => (negated ? !matches(v) : matches(v)));
  if (setOp === 'ForAnyValue') return (values ?? []).some((v) => (negated ? !matches(v) : matches(v)));
  if (values === undefined || values.length === 0) return negated;
  return negated ? !values.some(matches) : values.some(matches);
}

function statementApplies(s: PolicyStatement, request: AccessRequest, context: Map<string, string[]>): boolean {
  const actionIn = (patterns: string[]) => patterns.some((a) => glob(a, 'i').test(request.action));
  if (s.Action !== undefined && !actionIn(list(s.Action))) return false;
  if (s.NotAction !== undefined && actionIn(list(s.NotAction))) return false;
  const resourceIn = (patterns: string[]) => patterns.some((r) => glob(r).test(request.resource));
  if (s.Resource !== undefined && !resourceIn(list(s.Resource))) return false;
  if (s.NotResource !== undefined && resourceIn(list(s.NotResource))) return false;
  for (const [operator, keys] of Object.entries(s.Condition ?? {})) {
    for (const [key, wanted] of Object.entries(keys)) {
      if (!conditionHolds(operator, key, list(wanted).map(String), context)) return false;
    }
  }
  return true;
}

/** IAM's decision for one request under identity-based policies. */
export function evaluate(policies: readonly PolicyDocument[], request: AccessRequest): 'allow' | 'deny' | 'implicit' {
  const context = new Map(
    Object.entries(request.context ?? {}).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v : [v]]),
  );
  const statements = policies.flatMap((p) => list(p.Statement));
  if (statements.some((s) => s.Effect === 'Deny' && statementApplies(s, request, context))) return 'deny';
  return statements.some((s) => s.Effect === 'Allow' && statementApplies(s, request, context)) ? 'allow' : 'implicit';
}

/**
 * A role's trust policy (a resource-based policy on the role) deciding an
 * sts:AssumeRoleWithWebIdentity: the statement's `Principal.Federated` must name the OIDC provider
 * that issued the token, its Action the call, and its Condition holds on the token's claims as
 * condition keys `<provider host>:aud`, `:sub` ("Available keys for AWS web identity federation",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#condition-keys-wif,
 * read 2026-12-08). An explicit Deny wins; without an Allow the role is not assumed.
 */
export function evaluateTrust(
  policy: PolicyDocument,
  request: { federated: string; action: string; claims: Record<string, string> },
): 'allow' | 'deny' | 'implicit' {
  const host = request.federated.replace(/^arn:aws[\w-]*:iam::\d{12}:oidc-provider\//, '');
  const context = new Map(Object.entries(request.claims).map(([k, v]) => [`${host}:${k}`.toLowerCase(), [v]]));
  const asks: AccessRequest = { action: request.action, resource: '*' };
  const applies = (s: PolicyStatement): boolean => {
    const p = s.Principal;
    const principal = p === '*' || (p !== undefined && list(p.Federated).includes(request.federated));
    return principal && statementApplies(s, asks, context);
  };
  const statements = list(policy.Statement);
  if (statements.some((s) => s.Effect === 'Deny' && applies(s))) return 'deny';
  return statements.some((s) => s.Effect === 'Allow' && applies(s)) ? 'allow' : 'implicit';
}

/** The condition keys of tags a request puts on a resource: `aws:RequestTag/<key>` and `aws:TagKeys`. */
export function requestTagContext(tags: Readonly<Record<string, string>>): Record<string, string | string[]> {
  return {
    ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
    'aws:TagKeys': Object.keys(tags),
  };
}

/** The condition keys of the tags a resource already has: `ec2:ResourceTag/<key>` (and `aws:ResourceTag/<key>`). */
export function resourceTagContext(tags: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(tags).flatMap(([k, v]) => [
      [`ec2:ResourceTag/${k}`, v],
      [`aws:ResourceTag/${k}`, v],
    ]),
  );
}

/**
 * The account's IAM as the fakes see it: the launching identity's policies (the documented ones
 * unless a test substitutes others) and an administrator that may do anything (a test's own
 * setup, such as a stranger's instance in the account).
 */
export class AwsIam {
  private policies: PolicyDocument[];

  constructor(private readonly defaults: readonly PolicyDocument[] = [readPolicy(LAUNCHER_POLICY_FILE)]) {
    this.policies = [...defaults];
  }

  /** The launching identity's policies now. */
  launcherPolicies(): PolicyDocument[] {
    return this.policies;
  }

  /** Substitutes the launching identity's policies; without arguments, restores the defaults. */
  setLauncherPolicies(...docs: PolicyDocument[]): void {
    this.policies = docs.length > 0 ? docs : [...this.defaults];
  }

  /** The first request the launching identity may not make, or undefined when every one is allowed. */
  check(admin: boolean, requests: readonly AccessRequest[]): Denial | undefined {
    if (admin) return undefined;
    for (const request of requests) {
      const decision = evaluate(this.policies, request);
      if (decision !== 'allow') return { request, explicit: decision === 'deny', principal: LAUNCHER_PRINCIPAL };
    }
    return undefined;
  }
}

/** IAM's sentence for a denial, as EC2 and SSM put it in their messages. */
export function denialSentence(d: Denial): string {
  const on = d.request.resource === '*' ? '' : ` on resource: ${d.request.resource}`;
  const why = d.explicit
    ? 'with an explicit deny in an identity-based policy'
    : `because no identity-based policy allows the ${d.request.action} action`;
  return `User: ${d.principal} is not authorized to perform: ${d.request.action}${on} ${why}`;
}

/** EC2's opaque encoded authorization failure message (only sts:DecodeAuthorizationMessage reads it). */
export function encodedFailure(): string {
  return crypto.randomBytes(96).toString('base64url');
}
