/**
 * Google authentication as the product meets it:
 *
 * - Security Token Service (`POST /sts/v1/token`, RFC 8693 token exchange) turns the workflow's
 *   GitHub OIDC token into a federated access token, for the workload identity pool provider
 *   `WIF_AUDIENCE` only. Errors are OAuth's `{"error": "invalid_grant", "error_description"}`.
 * - IAM Credentials (`POST /iamcredentials/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`)
 *   turns the federated token into the deployer service account's token. The GitHub identity may
 *   impersonate the deployer only.
 * - A VM's metadata server issues its service account's tokens (metadata.ts).
 *
 * Every token is opaque, remembered with its identity, scopes and expiry; Compute checks them.
 */
import crypto from 'node:crypto';
import { GCE_PROJECT_NUMBER, GCE_SERVICE_ACCOUNTS, SCOPE_CLOUD_PLATFORM, SCOPE_IAM, WIF_AUDIENCE } from './catalog.js';
import { type Condition, type Policies, granted } from './policy.js';

export interface TokenInfo {
  token: string;
  /** `federated`: from STS (the GitHub identity); `service-account`: a service account's. */
  kind: 'federated' | 'service-account';
  /** The service account's email, or the federated principal. */
  identity: string;
  scopes: string[];
  expiresAt: number;
  /** The VM whose metadata server issued it. */
  instanceId?: string;
}

export const GITHUB_SUBJECT = 'repo:octo-org/ml:ref:refs/heads/main';
export const GITHUB_PRINCIPAL = `principal://iam.googleapis.com/projects/${GCE_PROJECT_NUMBER}/locations/global/workloadIdentityPools/github/subject/${GITHUB_SUBJECT}`;

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const SUBJECT_TOKEN_TYPES = ['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'];

export class TokenStore {
  private readonly tokens = new Map<string, TokenInfo>();

  issue(
    kind: TokenInfo['kind'],
    identity: string,
    scopes: string[],
    lifetimeSeconds: number,
    instanceId?: string,
  ): TokenInfo {
    const prefix = kind === 'federated' ? 'ya29.d.' : 'ya29.c.';
    const info: TokenInfo = {
      token: `${prefix}${crypto.randomBytes(48).toString('base64url')}`,
      kind,
      identity,
      scopes,
      expiresAt: Date.now() + lifetimeSeconds * 1000,
      ...(instanceId !== undefined ? { instanceId } : {}),
    };
    this.tokens.set(info.token, info);
    return info;
  }

  /** The token's record, unless it is unknown or expired. */
  lookup(token: string): TokenInfo | undefined {
    const info = this.tokens.get(token);
    if (!info || info.expiresAt <= Date.now()) return undefined;
    return info;
  }
}

const b64url = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A GitHub Actions OIDC token, shaped like the real one (issuer, audience, repository claims). */
export function makeSubjectToken(): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', kid: 'sandbox-github-oidc', typ: 'JWT', x5t: 'sandbox' };
  const payload = {
    jti: crypto.randomUUID(),
    sub: GITHUB_SUBJECT,
    aud: `https:${WIF_AUDIENCE}`,
    ref: 'refs/heads/main',
    sha: crypto.randomBytes(20).toString('hex'),
    repository: 'octo-org/ml',
    repository_owner: 'octo-org',
    repository_owner_id: '1001',
    repository_id: '2002',
    run_id: '3003',
    run_number: '1',
    run_attempt: '1',
    actor: 'octocat',
    workflow: 'ci',
    event_name: 'push',
    ref_type: 'branch',
    job_workflow_ref: 'octo-org/ml/.github/workflows/ci.yml@refs/heads/main',
    runner_environment: 'github-hosted',
    iss: 'https://token.actions.githubusercontent.com',
    nbf: now - 5,
    exp: now + 24 * 3600,
    iat: now,
  };
  return `${b64url(header)}.${b64url(payload)}.${crypto.randomBytes(256).toString('base64url')}`;
}

export interface JsonAnswer {
  status: number;
  body: unknown;
  /** For the call log: an error's reason. */
  reason?: string;
}

const oauthError = (status: number, error: string, description: string): JsonAnswer => ({
  status,
  body: { error, error_description: description },
  reason: error,
});

/**
 * `POST /sts/v1/token`, the request half: checks the exchange (its form and the GitHub OIDC token
 * it carries, the caller's only credential) and gives the scopes to grant, or the OAuth error.
 */
export function checkExchange(
  contentType: string | undefined,
  body: Buffer,
  subjectToken: string,
  accepts: Condition,
): { scopes: string[] } | JsonAnswer {
  if (!(contentType ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    return oauthError(400, 'invalid_request', 'Request must use Content-Type: application/x-www-form-urlencoded.');
  }
  const form = new URLSearchParams(body.toString('utf8'));
  const get = (k: string): string | undefined => form.get(k) ?? undefined;
  const grantType = get('grant_type');
  if (grantType === undefined) return oauthError(400, 'invalid_request', 'Missing required field: "grant_type".');
  if (grantType !== TOKEN_EXCHANGE)
    return oauthError(400, 'unsupported_grant_type', `Unsupported grant_type: "${grantType}".`);
  const audience = get('audience');
  if (audience === undefined) return oauthError(400, 'invalid_request', 'Missing required field: "audience".');
  if (audience !== WIF_AUDIENCE) {
    return oauthError(
      400,
      'invalid_target',
      'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.',
    );
  }
  const requested = get('requested_token_type');
  if (requested === undefined)
    return oauthError(400, 'invalid_request', 'Missing required field: "requested_token_type".');
  if (requested !== ACCESS_TOKEN_TYPE)
    return oauthError(400, 'invalid_request', `Invalid value for "requested_token_type": ${requested}`);
  const subjectType = get('subject_token_type');
  if (subjectType === undefined)
    return oauthError(400, 'invalid_request', 'Missing required field: "subject_token_type".');
  if (!SUBJECT_TOKEN_TYPES.includes(subjectType)) {
    return oauthError(
      400,
      'invalid_request',
      `Invalid value for "subject_token_type": ${subjectType}. The provider expects an OIDC token.`,
    );
  }
  const subject = get('subject_token');
  if (subject === undefined || subject === '')
    return oauthError(400, 'invalid_request', 'Missing required field: "subject_token".');
  const scope = get('scope');
  if (scope === undefined || scope.trim() === '')
    return oauthError(400, 'invalid_request', 'Missing required field: "scope".');
  const scopes = scope.split(/\s+/).filter(Boolean);
  if (scopes.some((s) => !/^https:\/\/www\.googleapis\.com\/auth\/[a-z0-9._-]+$/.test(s))) {
    return oauthError(400, 'invalid_scope', `The scope "${scope}" is invalid.`);
  }
  const options = get('options');
  if (options !== undefined) {
    try {
      JSON.parse(options);
    } catch {
      return oauthError(400, 'invalid_request', 'Invalid value for "options": must be a JSON object.');
    }
  }
  if (subject.split('.').length !== 3) return oauthError(400, 'invalid_grant', 'Unable to parse the ID Token.');
  if (subject !== subjectToken) return oauthError(400, 'invalid_grant', 'Invalid JWT signature.');
  // The provider's attribute condition, on the token's claims (the answer's source: policy.ts).
  const claims = JSON.parse(Buffer.from(subject.split('.')[1]!, 'base64url').toString('utf8')) as Record<
    string,
    string
  >;
  if (!accepts({ assertion: claims })) {
    return oauthError(400, 'unauthorized_client', 'The given credential is rejected by the attribute condition.');
  }
  return { scopes };
}

/** `POST /sts/v1/token`, the answer: a federated access token for the GitHub identity. */
export function federatedToken(scopes: string[], tokens: TokenStore): JsonAnswer {
  const issued = tokens.issue('federated', GITHUB_PRINCIPAL, scopes, 3600);
  return {
    status: 200,
    body: { access_token: issued.token, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: 3600 },
  };
}

const googleError = (code: number, status: string, message: string, details?: unknown[]): JsonAnswer => ({
  status: code,
  body: { error: { code, message, status, ...(details ? { details } : {}) } },
  reason: status,
});

const IAM_METHOD = 'google.iam.credentials.v1.IAMCredentials.GenerateAccessToken';

/** IAM Credentials: who calls, from the bearer token; the 401 for a missing or unknown one. */
export function iamCaller(authorization: string | undefined, tokens: TokenStore): TokenInfo | JsonAnswer {
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!bearer) {
    return googleError(
      401,
      'UNAUTHENTICATED',
      'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
      [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'CREDENTIALS_MISSING',
          domain: 'googleapis.com',
          metadata: { service: 'iamcredentials.googleapis.com', method: IAM_METHOD },
        },
      ],
    );
  }
  const caller = tokens.lookup(bearer[1]!);
  if (!caller) {
    return googleError(
      401,
      'UNAUTHENTICATED',
      'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    );
  }
  return caller;
}

/**
 * IAM Credentials: may the caller's token impersonate `email`? It needs an IAM scope, and only
 * the GitHub identity may impersonate, and only the deployer. Undefined when it may.
 */
export function iamRefusal(caller: TokenInfo, email: string): JsonAnswer | undefined {
  if (!caller.scopes.includes(SCOPE_CLOUD_PLATFORM) && !caller.scopes.includes(SCOPE_IAM)) {
    return googleError(403, 'PERMISSION_DENIED', 'Request had insufficient authentication scopes.', [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT',
        domain: 'googleapis.com',
        metadata: { service: 'iamcredentials.googleapis.com', method: IAM_METHOD },
      },
    ]);
  }
  if (caller.kind !== 'federated' || email !== GCE_SERVICE_ACCOUNTS.deployer) return denied();
  return undefined;
}

/** `POST /iamcredentials/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`, for a caller iamRefusal let through. */
export function generateAccessToken(email: string, body: Buffer, tokens: TokenStore): JsonAnswer {
  let req: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8') || '{}');
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    req = parsed as Record<string, unknown>;
  } catch {
    return googleError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received. Expected an object.');
  }
  for (const k of Object.keys(req)) {
    if (!['delegates', 'scope', 'lifetime'].includes(k)) {
      return googleError(
        400,
        'INVALID_ARGUMENT',
        `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`,
      );
    }
  }
  const scope = req.scope;
  if (!Array.isArray(scope) || scope.length === 0 || scope.some((s) => typeof s !== 'string' || s === '')) {
    return googleError(400, 'INVALID_ARGUMENT', 'Scope required.');
  }
  let lifetime = 3600;
  if (req.lifetime !== undefined) {
    const m = typeof req.lifetime === 'string' ? /^(\d+)(?:\.\d+)?s$/.exec(req.lifetime) : null;
    if (!m)
      return googleError(
        400,
        'INVALID_ARGUMENT',
        `Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), ${JSON.stringify(req.lifetime)}`,
      );
    lifetime = Number(m[1]);
    if (lifetime < 1 || lifetime > 3600) {
      return googleError(400, 'INVALID_ARGUMENT', 'The lifetime must be between 1s and 3600s.');
    }
  }
  if (req.delegates !== undefined && (!Array.isArray(req.delegates) || req.delegates.length > 0)) {
    return denied();
  }
  const issued = tokens.issue('service-account', email, scope as string[], lifetime);
  return {
    status: 200,
    body: { accessToken: issued.token, expireTime: `${new Date(issued.expiresAt).toISOString().slice(0, 19)}Z` },
  };
}

function denied(): JsonAnswer {
  return googleError(
    403,
    'PERMISSION_DENIED',
    "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
    [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'IAM_PERMISSION_DENIED',
        domain: 'iam.googleapis.com',
        metadata: { permission: 'iam.serviceAccounts.getAccessToken' },
      },
    ],
  );
}

// ---------------------------------------------------------------------------------------------
// Compute Engine permissions of each identity

/** Where a permission is checked: the resource's name and type, as IAM conditions see them. */
export interface Target {
  name: string;
  type: string;
}

/**
 * Whether an identity holds a Compute Engine permission on a resource of the sandbox project:
 * the launcher (deployer) and the VM's account (runner) hold the roles of docs/permissions/gcp/
 * under their conditions; the owner holds everything; other accounts hold nothing.
 */
export function hasPermission(policies: Policies, identity: string, permission: string, target: Target): boolean {
  if (identity === GCE_SERVICE_ACCOUNTS.admin) return true;
  if (identity === GCE_SERVICE_ACCOUNTS.deployer) return granted(policies.launcher, permission, target);
  if (identity === GCE_SERVICE_ACCOUNTS.runner) return granted(policies.vm, permission, target);
  return false;
}

/** The documents' placeholders for the accounts of the sandbox project (the README's $RUNNER_VM and $LAUNCHER). */
const PLACEHOLDERS: Readonly<Record<string, string>> = {
  RUNNER_VM: GCE_SERVICE_ACCOUNTS.runner,
  LAUNCHER: GCE_SERVICE_ACCOUNTS.deployer,
};

/**
 * Whether an identity may act as a service account (iam.serviceAccounts.actAs on that account):
 * a member of a binding on the account (service-account-user.yaml), or the owner. A grant on the
 * project would reach every account; the documents make none.
 */
export function mayActAs(policies: Policies, identity: string, account: string): boolean {
  if (identity === GCE_SERVICE_ACCOUNTS.admin) return true;
  return policies.actAs.some(
    (b) =>
      PLACEHOLDERS[b.account] === account &&
      b.members.some(
        (m) => m.startsWith('serviceAccount:') && PLACEHOLDERS[m.slice('serviceAccount:'.length)] === identity,
      ),
  );
}
