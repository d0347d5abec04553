/**
 * Who calls, and what they may do, before any fault or method runs:
 * - Compute: a bearer token the fake issued (401 `required` without one, `authError` for an
 *   unknown or expired one); a Compute scope (read-only methods accept compute.readonly); the
 *   project and zone exist (404); the identity holds the method's permission (403 `forbidden`).
 *   Public images may be read by any authenticated caller.
 * - STS: the exchange itself is the credential (the GitHub OIDC token in the form).
 * - IAM Credentials: a bearer token, an IAM scope, and the right to impersonate the account.
 */
import { type TokenInfo, checkExchange, hasPermission, iamCaller, iamRefusal, type JsonAnswer } from './auth.js';
import {
  GCE_PROJECT,
  GCE_SERVICE_ACCOUNTS,
  IMAGE_PROJECTS,
  PUBLIC_IMAGE_PROJECTS,
  SCOPE_CLOUD_PLATFORM,
  SCOPE_COMPUTE,
  SCOPE_COMPUTE_READONLY,
  ZONES,
} from './catalog.js';
import { forbidden, insufficientScopes, invalidCredentials, missingCredentials, notFound } from './errors.js';
import { type GceRequest, Refusal, serviceMethod } from './routes.js';
import type { GceStore } from './store.js';

/** The caller: a token's holder, or (STS) the scopes the exchange asks for. */
export interface Caller {
  token?: TokenInfo;
  exchange?: { scopes: string[] };
}

const JSON_TYPE = 'application/json; charset=UTF-8';

export const jsonRefusal = (a: JsonAnswer): Refusal =>
  new Refusal(a.status, JSON.stringify(a.body), JSON_TYPE, a.reason);

export function authenticate(store: GceStore, request: GceRequest): Caller {
  if (request.early !== undefined) throw request.early;
  if (request.api === 'sts') {
    const grant = checkExchange(request.contentType, request.body, store.subjectToken);
    if ('status' in grant) throw jsonRefusal(grant);
    return { exchange: grant };
  }
  if (request.api === 'iam') {
    const caller = iamCaller(request.authorization, store.tokens);
    if ('status' in caller) throw jsonRefusal(caller);
    return { token: caller };
  }
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.authorization ?? '');
  if (!bearer) throw missingCredentials('compute.googleapis.com');
  const token = store.tokens.lookup(bearer[1]!);
  if (!token) throw invalidCredentials();
  return { token };
}

/** `lacks`: permissions the deployer's role does not grant here (GceProjectSettings.deployerLacks). */
export function authorize(who: Caller, request: GceRequest, lacks: readonly string[] = []): void {
  if (request.api === 'iam') {
    const refusal = iamRefusal(who.token!, request.email!);
    if (refusal) throw jsonRefusal(refusal);
    return;
  }
  if (request.api !== 'compute') return;
  const r = request.route!;
  const { scopes, identity } = who.token!;
  const scoped =
    scopes.includes(SCOPE_CLOUD_PLATFORM) ||
    scopes.includes(SCOPE_COMPUTE) ||
    (!r.write && scopes.includes(SCOPE_COMPUTE_READONLY));
  if (!scoped) throw insufficientScopes('compute.googleapis.com', serviceMethod(r.method));
  const imageRead = r.publicRead === true;
  if (imageRead ? !IMAGE_PROJECTS.has(r.project) : r.project !== GCE_PROJECT) {
    throw notFound(imageRead ? r.resource : `projects/${r.project}`);
  }
  if (r.scope !== 'global' && !ZONES.includes(r.scope)) throw notFound(`projects/${GCE_PROJECT}/zones/${r.scope}`);
  const held =
    hasPermission(identity, r.permission) &&
    !(identity === GCE_SERVICE_ACCOUNTS.deployer && lacks.includes(r.permission));
  const permitted = (imageRead && PUBLIC_IMAGE_PROJECTS.has(r.project)) || held;
  if (!permitted) {
    const name = request.resource?.name;
    const resource =
      r.method === 'instances.insert' ? `${r.resource}/${typeof name === 'string' ? name : ''}` : r.resource;
    throw forbidden(r.permission, resource);
  }
}
