import { CloudError, type ErrorKind, errorMessage } from '../../errors.js';
import { isConnectionError, retryAfterHeader } from '../call.js';

/**
 * What each ARM error means: its kind, and what the user can do. Codes pass through verbatim.
 * Codes: https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/common-deployment-errors
 */
const KNOWN: Record<string, { kind: ErrorKind; advice: string }> = {
  SkuNotAvailable: {
    kind: 'capacity',
    advice:
      'This VM size is not available in this region for the subscription right now. Give more types (type takes a ' +
      'comma list) or another region.',
  },
  AllocationFailed: {
    kind: 'capacity',
    advice:
      'Azure has no capacity for this VM size in this region right now. Give more types, another region, or spot: ' +
      'false.',
  },
  ZonalAllocationFailed: { kind: 'capacity', advice: 'Azure has no capacity for this VM size in this zone right now.' },
  OverconstrainedAllocationRequest: {
    kind: 'capacity',
    advice: 'Azure cannot place this VM size with these constraints right now.',
  },
  OperationNotAllowed: {
    kind: 'quota',
    advice:
      'A quota of the subscription is too low for this VM (the message names it). Request an increase under ' +
      'Subscriptions > Usage + quotas (GPU families have their own vCPU quotas; spot VMs use the Spot quota).',
  },
  AuthorizationFailed: {
    kind: 'permanent',
    advice:
      'The Azure credentials may not do this. Grant the custom role in the README (Azure section) to the identity ' +
      'the workflow signs in as.',
  },
  InvalidAuthenticationToken: {
    kind: 'permanent',
    advice: 'Azure did not accept the token; check the AZURE_* variables or azure/login.',
  },
  InvalidTemplateDeployment: { kind: 'permanent', advice: 'Check the type, image and tags inputs.' },
  InvalidParameter: { kind: 'permanent', advice: 'Check the type, image and tags inputs.' },
  ResourceGroupNotFound: { kind: 'gone', advice: '' },
  ResourceNotFound: { kind: 'gone', advice: '' },
  NotFound: { kind: 'gone', advice: '' },
};

/** Throttles and service-side failures: the same request may succeed. */
const TRANSIENT = new Set([
  'TooManyRequests',
  'InternalServerError',
  'ServiceUnavailable',
  'GatewayTimeout',
  'RetryableError',
]);

/** The poller's message for a failed operation: `The long-running operation has failed. AllocationFailed. ...`. */
const FAILED_OPERATION = /^The long-running operation has failed\. (\w+)\./;

interface ArmError {
  code?: string;
  statusCode?: number;
  details?: { error?: { code?: string } };
  message?: string;
  response?: { headers?: { get(name: string): string | undefined } };
}

export function armCode(err: unknown): string {
  const e = err as ArmError;
  const code = e.code && e.code !== 'REQUEST_SEND_ERROR' ? e.code : undefined;
  return (
    code ??
    e.details?.error?.code ??
    FAILED_OPERATION.exec(e.message ?? '')?.[1] ??
    String(e.statusCode ?? e.code ?? 'Error')
  );
}

/** The kind of an ARM error, by its code, then by its HTTP status, then by its connection. */
export function azureErrorKind(err: unknown): ErrorKind {
  const e = err as ArmError;
  const code = armCode(err);
  const known = KNOWN[code];
  // OperationNotAllowed is also how ARM refuses other operations; only a quota one is a quota.
  if (code === 'OperationNotAllowed' && !/quota|limit/i.test(e.message ?? '')) return 'permanent';
  if (known) return known.kind;
  if (TRANSIENT.has(code)) return 'transient';
  if (e.statusCode !== undefined) return e.statusCode === 429 || e.statusCode >= 500 ? 'transient' : 'permanent';
  return e.code === 'REQUEST_SEND_ERROR' || isConnectionError(err) ? 'transient' : 'permanent';
}

/** ARM's refusal of an OS disk smaller than the image's: `...disk size 20 GB is smaller than ...: 30 GB...`. */
const DISK_TOO_SMALL =
  /disk size (\d+) GB is smaller than the size of the corresponding disk in the VM image: (\d+) GB/;

/**
 * The RBAC action each list needs. A refused page of a list keeps no more than "Pagination failed
 * with unexpected statusCode 403" (the SDK drops ARM's answer, which names the action), so the
 * message names the action itself.
 */
const LIST_ACTIONS: Record<string, string> = {
  'resourceGroups.list': 'Microsoft.Resources/subscriptions/resourceGroups/read',
  'resourceSkus.list': 'Microsoft.Compute/skus/read',
  'galleryImageVersions.listByGalleryImage': 'Microsoft.Compute/galleries/images/versions/read',
};

function armMessage(err: unknown, code: string, action: string): string {
  const message = errorMessage(err);
  const needed = LIST_ACTIONS[action];
  if (code !== 'AuthorizationFailed' || !needed || !/^Pagination failed/.test(message)) return message;
  return `${message}: the client does not have authorization to perform action '${needed}'`;
}

export function azureError(err: unknown, action: string): CloudError {
  const code = armCode(err);
  const message = armMessage(err, code, action);
  const disk = code === 'OperationNotAllowed' ? DISK_TOO_SMALL.exec(message) : null;
  if (disk) {
    // Not a quota: the hdd-size input is below the image's disk. No other size or place helps.
    return new CloudError(
      'Azure',
      code,
      `${action}: ${message}`,
      `Input 'hdd-size' (${disk[1]} GB) is below the image's OS disk (${disk[2]} GB): ` +
        `give hdd-size of at least ${disk[2]}, or leave it empty to keep the image's size.`,
      'permanent',
    );
  }
  const kind = azureErrorKind(err);
  // The quota advice is for a quota; ARM refuses other operations with OperationNotAllowed too.
  const advice = code === 'OperationNotAllowed' && kind !== 'quota' ? '' : (KNOWN[code]?.advice ?? '');
  return new CloudError('Azure', code, `${action}: ${message}`, advice, kind);
}

export const azureRetryAfterMs = (err: unknown): number | undefined =>
  retryAfterHeader((err as ArmError).response?.headers?.get('retry-after'));

/** A refusal made here, in the same shape as the service's. */
export const azureRefusal = (code: string, detail: string, kind: ErrorKind): CloudError =>
  new CloudError('Azure', code, detail, KNOWN[code]?.advice ?? '', kind);
