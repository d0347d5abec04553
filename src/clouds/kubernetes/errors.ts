import { ApiException } from '@kubernetes/client-node';
import { CloudError, type ErrorKind, errorMessage } from '../../errors.js';
import { retryAfterHeader } from '../call.js';

/**
 * What an API server's answer means: the Status reason is the code, the HTTP status the kind.
 * https://kubernetes.io/docs/reference/using-api/api-concepts/#response-status-kind
 */
const ADVICE: Record<number, string> = {
  401:
    'The cluster refused the credentials in the kubeconfig. Check that its token or certificate is current; tokens ' +
    'from `kubectl create token` expire.',
  403:
    'The identity in the kubeconfig lacks a permission. Bind it to the Role in the README ' +
    '(docs/permissions/kubernetes/launcher-role.yaml), in the runners namespace.',
  404: 'Check kubernetes-namespace: the namespace must exist.',
  409: 'An object with this name already exists in the namespace; give another runner name.',
  422:
    'The cluster rejected the pod spec; check kubernetes-image, kubernetes-node-selector, kubernetes-tolerations, ' +
    'kubernetes-runtime-class, type and hdd-size.',
  429: 'The API server is throttling requests; launch fewer runners at once or retry later.',
};

const QUOTA_ADVICE =
  'A ResourceQuota of the namespace refuses this pod (the message names it). Ask for a larger quota, or give a ' +
  'smaller type.';

/** An answer from the API server: its Status reason as the code, and the HTTP status. */
export class KubernetesApiError extends CloudError {
  constructor(
    readonly status: number,
    reason: string,
    detail: string,
    advice: string,
    kind: ErrorKind,
  ) {
    super('Kubernetes', reason, detail, advice, kind);
  }
}

/**
 * The kind of an answer: 429 and 5xx are worth another try; 404 is gone; a ResourceQuota refusal
 * (403 "exceeded quota") is a quota; any other 4xx is final.
 */
export function kubernetesErrorKind(status: number, message: string): ErrorKind {
  if (status === 429 || status >= 500) return 'transient';
  if (status === 404) return 'gone';
  if (status === 403 && /exceeded quota/i.test(message)) return 'quota';
  return 'permanent';
}

interface Status {
  reason?: string;
  message?: string;
  details?: { kind?: string };
}

function parseStatus(body: unknown): Status | undefined {
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as Status;
    } catch {
      return body ? { message: body } : undefined;
    }
  }
  return body && typeof body === 'object' ? (body as Status) : undefined;
}

/** Where a call went, for the message: the credentials' source, the server, an exec plugin. */
export interface ClusterCall {
  where: string;
  source: string;
  server: string;
  usesPlugin: boolean;
}

export function kubernetesError(err: unknown, call: ClusterCall): CloudError {
  if (err instanceof CloudError) return err;
  const { where } = call;
  if (err instanceof ApiException) {
    const status = parseStatus(err.body);
    const reason = status?.reason ?? (err.code === 401 ? 'Unauthorized' : `HTTP${err.code}`);
    const message = status?.message ?? (err.code === 401 ? 'Unauthorized' : 'no message');
    const kind = kubernetesErrorKind(err.code, message);
    const advice =
      kind === 'quota'
        ? QUOTA_ADVICE
        : err.code === 404
          ? status?.details?.kind === 'namespaces'
            ? ADVICE[404]!
            : ''
          : (ADVICE[err.code] ?? '');
    const detail = `${where}: ${message} (HTTP ${err.code}, credentials from ${call.source})`;
    return new KubernetesApiError(err.code, reason, detail, advice, kind);
  }
  const text = errorMessage(err);
  const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  if (call.usesPlugin && !/fetch failed|ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET/.test(text + cause)) {
    return new CloudError(
      'Kubernetes',
      'CredentialPlugin',
      `${where}: the kubeconfig's exec credential plugin failed: ${text.trim()}${cause}`,
      'Install the plugin the kubeconfig names on the launch runner (for example gke-gcloud-auth-plugin, aws or ' +
        'kubelogin), or use a kubeconfig with a service-account token.',
      'permanent',
    );
  }
  return new CloudError(
    'Kubernetes',
    'Unreachable',
    `${where}: cannot reach the API server at ${call.server}: ${text}${cause}`,
    'Check the server address in the kubeconfig, and that the launch job can reach it (a self-hosted launcher ' +
      'inside the network, or an authorised-networks rule).',
    'transient',
  );
}

export function kubernetesRetryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof ApiException)) return undefined;
  const headers = err.headers as Record<string, string | undefined> | undefined;
  return retryAfterHeader(headers?.['retry-after'] ?? headers?.['Retry-After']);
}
