import { CloudError, type ErrorKind, errorMessage } from '../../errors.js';
import { isConnectionError } from '../call.js';

/**
 * What each Compute Engine error means: its kind, and what the user can do. Codes pass through
 * verbatim. Reasons: https://cloud.google.com/compute/docs/troubleshooting/troubleshooting-vm-creation
 */
const KNOWN: Record<string, { kind: ErrorKind; advice: string }> = {
  ZONE_RESOURCE_POOL_EXHAUSTED: {
    kind: 'capacity',
    advice:
      'Compute Engine has no capacity for this machine in this zone right now. Other zones of the region are tried; ' +
      'give more types (type takes a comma list), another region, or spot: false.',
  },
  ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS: {
    kind: 'capacity',
    advice: 'Compute Engine has no capacity for this machine in this zone right now.',
  },
  NOT_OFFERED: { kind: 'capacity', advice: 'This zone does not offer the machine type or its GPU.' },
  // A quota holds in every zone of the region: trying the next zone only repeats the refusal.
  QUOTA_EXCEEDED: {
    kind: 'quota',
    advice:
      'A quota of the project is too low for this machine. Request an increase under IAM & Admin > Quotas for the ' +
      'quota named above (GPU quotas are per region and per model; spot VMs use the PREEMPTIBLE_ ones).',
  },
  forbidden: {
    kind: 'permanent',
    advice:
      'The credentials may not do this. Grant the role in the README (Google Cloud section) to the service account ' +
      'the workflow authenticates as.',
  },
  notFound: { kind: 'gone', advice: 'Check the gcp-project, region, type and image inputs.' },
  RESOURCE_NOT_FOUND: { kind: 'gone', advice: 'Check the gcp-project, region, type and image inputs.' },
  invalid: {
    kind: 'permanent',
    advice:
      'Compute Engine refused the request; check the type, image, tags, gcp-network, gcp-subnetwork and ' +
      'gcp-service-account inputs (a project without a default network needs gcp-network or gcp-subnetwork).',
  },
  // An organisation policy, or a precondition such as a metadata fingerprint.
  conditionNotMet: {
    kind: 'permanent',
    advice:
      'A condition of the project refused this. For constraints/compute.vmExternalIpAccess (an organisation ' +
      'policy against external IPs), set gcp-external-ip: false on a network whose Cloud NAT (or a proxy) ' +
      'reaches GitHub.',
  },
  alreadyExists: { kind: 'permanent', advice: '' },
  UNAUTHENTICATED: {
    kind: 'permanent',
    advice: 'No valid Google Cloud credentials: authenticate with google-github-actions/auth before this step.',
  },
};

const TRANSIENT = new Set([
  'rateLimitExceeded',
  'userRateLimitExceeded',
  'backendError',
  'RATE_LIMIT_EXCEEDED',
  'internalError',
]);
/**
 * gRPC codes the REST transport maps HTTP statuses to: 4 deadline, 8 resource exhausted (429),
 * 13 internal, 14 unavailable.
 */
const TRANSIENT_GRPC = new Set([4, 8, 13, 14]);

/** The REST transport keeps the raw error body here; Compute Engine's own reason is only in it. */
const RAW_PAYLOAD = Symbol.for('google-gax.rawHttpResponsePayload');
/** HTTP statuses without a reason in the body, as Compute Engine names them. */
const STATUS_CODES: Record<number, string> = {
  401: 'UNAUTHENTICATED',
  403: 'forbidden',
  404: 'notFound',
  409: 'alreadyExists',
};

/**
 * The Compute Engine reason (notFound, alreadyExists, quotaExceeded…) as the code, read from the
 * raw error body, or from the ErrorInfo detail the client decodes (QUOTA_EXCEEDED).
 */
export function gceCode(err: unknown): string {
  const e = err as {
    code?: unknown;
    reason?: string;
    httpStatusCode?: number;
    message?: string;
    [RAW_PAYLOAD]?: unknown;
  };
  let reason: string | undefined;
  try {
    const raw = e[RAW_PAYLOAD];
    const body =
      typeof raw === 'string' ? (JSON.parse(raw) as { error?: { errors?: Array<{ reason?: string }> } }) : undefined;
    reason = body?.error?.errors?.[0]?.reason;
  } catch {
    // Not JSON: the status alone says it.
  }
  let code = e.reason ?? reason ?? (e.httpStatusCode ? STATUS_CODES[e.httpStatusCode] : undefined);
  if (code === 'quotaExceeded') code = 'QUOTA_EXCEEDED';
  if (!code && /invalid_grant|unauthorized_client|invalid_client/.test(e.message ?? '')) code = 'UNAUTHENTICATED';
  return code ?? String(e.code ?? 'Error');
}

/** The kind of a Compute Engine error, by its reason, then by its status, then by its connection. */
export function gceErrorKind(code: string, err?: unknown): ErrorKind {
  const known = KNOWN[code];
  if (known) return known.kind;
  if (TRANSIENT.has(code)) return 'transient';
  const e = (err ?? {}) as { code?: unknown; httpStatusCode?: number };
  if (typeof e.code === 'number' && TRANSIENT_GRPC.has(e.code)) return 'transient';
  if (e.httpStatusCode !== undefined)
    return e.httpStatusCode === 429 || e.httpStatusCode >= 500 ? 'transient' : 'permanent';
  return err !== undefined && isConnectionError(err) ? 'transient' : 'permanent';
}

/** Compute Engine's words when the caller may not run a VM as that service account. */
const NO_ACT_AS = /does not have access to service account '([^']+)'/;

export function gceError(err: unknown, action: string): CloudError {
  const code = gceCode(err);
  const message = errorMessage(err);
  const actAs = NO_ACT_AS.exec(message);
  const advice = actAs
    ? `The launching identity needs iam.serviceAccounts.actAs on ${actAs[1]}: grant it ` +
      'roles/iam.serviceAccountUser on that account alone (docs/permissions/gcp/service-account-user.yaml, ' +
      'README "The launcher\'s roles").'
    : (KNOWN[code]?.advice ?? '');
  return new CloudError('GCP', code, `compute ${action}: ${message}`, advice, gceErrorKind(code, err));
}

/** A refusal made here, or an operation's own error, in the same shape as the service's. */
export const gceRefusal = (
  code: string,
  detail: string,
  advice = KNOWN[code]?.advice ?? '',
  kind: ErrorKind = gceErrorKind(code),
): CloudError => new CloudError('GCP', code, detail, advice, kind);
