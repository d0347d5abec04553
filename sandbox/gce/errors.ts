/**
 * Errors as Google APIs write them: `{"error": {"code", "message", "errors": [{message, domain,
 * reason}], "status"?, "details"?}}`. Compute Engine's own errors carry the legacy `errors` list
 * with its reason (`invalid`, `notFound`, `alreadyExists`, ...); the front end's (authentication,
 * scopes) also carry `status` and an ErrorInfo detail.
 */
import { GCE_PROJECT_NUMBER } from './catalog.js';

export interface ErrorInfoDetail {
  '@type': 'type.googleapis.com/google.rpc.ErrorInfo';
  reason: string;
  domain: string;
  metadata?: Record<string, string>;
}

export class GceError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly extra: {
      status?: string;
      details?: unknown[];
      /** The `errors[0].message` when it differs from the top message. */
      itemMessage?: string;
      location?: { location: string; locationType: string };
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    return {
      error: {
        code: this.code,
        message: this.message,
        errors: [
          {
            message: this.extra.itemMessage ?? this.message,
            domain: 'global',
            reason: this.reason,
            ...(this.extra.location ?? {}),
          },
        ],
        ...(this.extra.status ? { status: this.extra.status } : {}),
        ...(this.extra.details ? { details: this.extra.details } : {}),
      },
    };
  }
}

export const notFound = (resource: string): GceError =>
  new GceError(404, 'notFound', `The resource '${resource}' was not found`);
export const alreadyExists = (resource: string): GceError =>
  new GceError(409, 'alreadyExists', `The resource '${resource}' already exists`);
/** `Invalid value for field 'F': 'V'. WHY` (400 invalid). */
export const invalidField = (field: string, value: unknown, why: string): GceError =>
  new GceError(
    400,
    'invalid',
    `Invalid value for field '${field}': '${typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value)}'. ${why}`,
  );
export const invalid = (message: string): GceError => new GceError(400, 'invalid', message);
export const required = (field: string): GceError =>
  new GceError(400, 'required', `Required field '${field}' not specified`);
export const forbidden = (permission: string, resource: string): GceError =>
  new GceError(403, 'forbidden', `Required '${permission}' permission for '${resource}'`);
/**
 * instances.insert with a service account the caller may not act as (no iam.serviceAccounts.actAs
 * on it): 400 `badRequest`, worded as quoted from an insert in
 * https://kuritan.github.io/new-gcp-user-must-have-iam-serviceAccountUser-role ("The user does not
 * have access to service account '...'. User: '...'. Ask a project owner to grant you the
 * iam.serviceAccountUser role on the service account") and, 400 badRequest, by Terraform's
 * "googleapi: Error 400: The user does not have access to service account ..., badRequest".
 * The requirement: https://cloud.google.com/compute/docs/access/create-enable-service-accounts-for-instances
 */
export const actAsDenied = (account: string, user: string): GceError =>
  new GceError(
    400,
    'badRequest',
    `The user does not have access to service account '${account}'. User: '${user}'. ` +
      'Ask a project owner to grant you the iam.serviceAccountUser role on the service account',
  );
/** The JSON decoder's answer to a value of the wrong type (`Invalid value at 'resource.name' (TYPE_STRING), 5`). */
export const badType = (at: string, protoType: string, value: unknown): GceError =>
  new GceError(400, 'invalid', `Invalid value at '${at}' (${protoType}), ${JSON.stringify(value)}`, {
    status: 'INVALID_ARGUMENT',
  });
export const unknownName = (name: string, at: string): GceError =>
  new GceError(
    400,
    'invalid',
    `Invalid JSON payload received. Unknown name "${name}"${at ? ` at '${at}'` : ''}: Cannot find field.`,
    {
      status: 'INVALID_ARGUMENT',
    },
  );
export const unknownQuery = (name: string): GceError =>
  new GceError(
    400,
    'invalid',
    `Invalid JSON payload received. Unknown name "${name}": Cannot bind query parameter. Field '${name}' could not be found in request message.`,
    { status: 'INVALID_ARGUMENT' },
  );

const SIGN_IN = 'See https://developers.google.com/identity/sign-in/web/devconsole-project.';

export const missingCredentials = (service: string): GceError =>
  new GceError(
    401,
    'required',
    `Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. ${SIGN_IN}`,
    {
      status: 'UNAUTHENTICATED',
      itemMessage: 'Login Required.',
      location: { location: 'Authorization', locationType: 'header' },
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: 'CREDENTIALS_MISSING',
          domain: 'googleapis.com',
          metadata: { service },
        },
      ],
      headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' },
    },
  );

export const invalidCredentials = (): GceError =>
  new GceError(
    401,
    'authError',
    `Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. ${SIGN_IN}`,
    {
      status: 'UNAUTHENTICATED',
      itemMessage: 'Invalid Credentials',
      location: { location: 'Authorization', locationType: 'header' },
      headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
    },
  );

export const insufficientScopes = (service: string, method: string): GceError =>
  new GceError(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.', {
    status: 'PERMISSION_DENIED',
    itemMessage: 'Insufficient Permission',
    details: [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT',
        domain: 'googleapis.com',
        metadata: { service, method },
      },
    ],
    headers: { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="insufficient_scope"' },
  });

/** Google's 404 page for a path no API serves (it is HTML, not JSON). */
export function notFoundPage(path: string): string {
  return (
    `<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n` +
    `  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>${path.replace(/[<>&]/g, '')}</code> was not found on this server.  <ins>That’s all we know.</ins>\n`
  );
}

// ---------------------------------------------------------------------------------------------
// Injected faults, as Compute Engine words the same errors

const RATE_LIMIT_MESSAGE =
  "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'compute.googleapis.com' for consumer " +
  `'project_number:${GCE_PROJECT_NUMBER}'.`;

/** Default status and message per fault code; an unknown code is a 503. */
const FAULT_DEFAULTS: Record<string, { status: number; message: string }> = {
  backendError: { status: 503, message: 'The service is currently unavailable.' },
  internalError: {
    status: 500,
    message: "Internal error. Please try again or contact Google Support. (Code: '-4305279823658593215')",
  },
  rateLimitExceeded: { status: 403, message: RATE_LIMIT_MESSAGE },
  resourceNotReady: { status: 400, message: 'The resource is not ready' },
  invalid: { status: 400, message: 'Invalid request.' },
  notFound: { status: 404, message: 'The resource was not found' },
  forbidden: { status: 403, message: 'Forbidden' },
  alreadyExists: { status: 409, message: 'The resource already exists' },
  quotaExceeded: { status: 403, message: 'Quota exceeded.' },
  conditionNotMet: { status: 412, message: 'Supplied fingerprint does not match current metadata fingerprint.' },
  QUOTA_EXCEEDED: { status: 403, message: 'Quota exceeded.' },
};

/** A fault's error on a Compute method; its `retryAfter` becomes a `Retry-After` header. */
export function faultError(f: { code: string; status?: number; message?: string; retryAfter?: number }): GceError {
  const headers = f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : undefined;
  const code = f.code;
  if (code === 'rateLimitExceeded' || code === 'RATE_LIMIT_EXCEEDED') {
    const detail: ErrorInfoDetail = {
      '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
      reason: 'RATE_LIMIT_EXCEEDED',
      domain: 'googleapis.com',
      metadata: {
        service: 'compute.googleapis.com',
        quota_metric: 'compute.googleapis.com/default',
        quota_limit: 'defaultPerMinutePerProject',
        consumer: `projects/${GCE_PROJECT_NUMBER}`,
      },
    };
    return new GceError(f.status ?? 403, 'rateLimitExceeded', f.message ?? RATE_LIMIT_MESSAGE, {
      details: [detail],
      ...(headers ? { headers } : {}),
    });
  }
  if (code === 'QUOTA_EXCEEDED')
    return new GceError(f.status ?? 403, 'quotaExceeded', f.message ?? 'Quota exceeded.', headers ? { headers } : {});
  const known = FAULT_DEFAULTS[code];
  const status = f.status ?? known?.status ?? 503;
  return new GceError(
    status,
    code,
    f.message ?? known?.message ?? 'The service is currently unavailable.',
    headers ? { headers } : {},
  );
}
