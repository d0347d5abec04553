import type { Env } from '../descriptor.js';
import type { InputReader, MachineSpec } from '../../config/spec.js';
import { list } from '../../config/inputs.js';
import { InputError } from '../../errors.js';

/** Where the cluster's credentials come from, in the order they are looked for. */
export type ClusterAccess =
  | { source: 'the kubeconfig input' | 'KUBERNETES_CONFIGURATION'; text: string }
  | { source: 'KUBECONFIG'; path: string }
  | { source: 'in-cluster' };

export interface Toleration {
  key?: string;
  operator: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface KubernetesOptions {
  access: ClusterAccess;
  /** Undefined: the kubeconfig context's namespace, the pod's own in-cluster, or `default`. */
  namespace?: string;
  /** The runner container image; undefined means the official runner image of the runner version. */
  image?: string;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  runtimeClass?: string;
  /** How far the runner container is confined (kubernetes-security-context). */
  securityContext: SecurityContextMode;
}

/**
 * `restricted`: the Pod Security Standards' restricted profile (a non-root user, no privilege
 * escalation, no capabilities, the runtime's seccomp profile); `image`: what the image and the
 * runtime give (root if the image says so); `privileged`: a privileged container, as root.
 * https://kubernetes.io/docs/concepts/security/pod-security-standards/
 */
export const SECURITY_CONTEXT_MODES = ['restricted', 'image', 'privileged'] as const;
export type SecurityContextMode = (typeof SECURITY_CONTEXT_MODES)[number];

/** The default of the region input: the Actions runner passes it when a workflow gives none. */
const DEFAULT_REGION = 'us-east';

/** The kubernetes-* inputs and the cluster access; Kubernetes refuses spot (pods use the nodes there are). */
export function kubernetesOptions(read: InputReader, env: Env, machine?: MachineSpec): KubernetesOptions {
  if (machine?.spot) {
    throw new InputError(
      'spot',
      read('spot').trim(),
      'use false on Kubernetes: pods run on the nodes the cluster has; to use spot nodes, select them with ' +
        'kubernetes-node-selector and kubernetes-tolerations',
    );
  }
  // A cluster has no regions; only a value the workflow gave can be told from the default.
  const region = read('region').trim();
  if (region && region !== DEFAULT_REGION) {
    throw new InputError(
      'region',
      region,
      'leave region unset on Kubernetes: runner pods run on the cluster of the kubeconfig; ' +
        'to choose where in it, use kubernetes-namespace',
    );
  }
  const sudo = read('sudo').trim();
  if (sudo && sudo !== 'false') {
    throw new InputError(
      'sudo',
      sudo,
      "leave sudo unset on Kubernetes: the runner runs as the pod's user; " +
        "to run it as the image's own user, use kubernetes-security-context: image",
    );
  }
  return parseKubernetes(read, env, machine?.wantsGpu ?? false);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
/** An image reference: [registry[:port]/]path[:tag][@digest], lowercase path, as the OCI distribution spec allows. */
const IMAGE_REFERENCE = new RegExp(
  String.raw`^([a-zA-Z0-9.-]+(:\d+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*` +
    '(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$',
);
const EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;

/** A Kubernetes label key: an optional DNS subdomain prefix, then a name of at most 63 characters. */
export function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  return (prefix === undefined || DNS_SUBDOMAIN.test(prefix)) && LABEL_NAME.test(name);
}

export const isLabelValue = (value: string): boolean => LABEL_VALUE.test(value);

/**
 * Cluster access, looked for in this order: the kubeconfig input (the file's contents), the
 * KUBERNETES_CONFIGURATION variable (contents, plain or base64), KUBECONFIG (a path), then the
 * in-cluster service account. Main and post both call this, so post reaches the same cluster.
 */
export function clusterAccess(read: InputReader, env: Env = {}): ClusterAccess {
  const text = read('kubeconfig').trim();
  if (text) return { source: 'the kubeconfig input', text: decodeKubeconfig(text) };
  const variable = env.KUBERNETES_CONFIGURATION?.trim();
  if (variable) return { source: 'KUBERNETES_CONFIGURATION', text: decodeKubeconfig(variable) };
  const path = env.KUBECONFIG?.trim();
  if (path) return { source: 'KUBECONFIG', path };
  if (env.KUBERNETES_SERVICE_HOST) return { source: 'in-cluster' };
  throw new InputError(
    'kubeconfig',
    '',
    'give the contents of a kubeconfig file in the kubeconfig input or the KUBERNETES_CONFIGURATION variable, set ' +
      'KUBECONFIG to its path, or run the launch job in a pod with a service account',
  );
}

/** A kubeconfig stored base64-encoded in a secret is accepted as it is. */
function decodeKubeconfig(text: string): string {
  if (/^[A-Za-z0-9+/=\s]+$/.test(text) && !text.includes(':')) {
    const decoded = Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (decoded.includes('apiVersion') || decoded.includes('clusters')) return decoded;
  }
  return text;
}

/** The values in a kubeconfig that must never reach a log: tokens, keys, passwords. */
export function kubeconfigSecrets(text: string): string[] {
  const secrets: string[] = [];
  const keys =
    'token|client-key-data|client-certificate-data|password|id-token|refresh-token|access-token|client-secret';
  const field = new RegExp(String.raw`^\s*-?\s*(${keys})\s*:\s*["']?([^"'\s]+)`);
  for (const line of text.split('\n')) {
    const m = field.exec(line);
    if (m && m[2]!.length >= 4) secrets.push(m[2]!);
  }
  return secrets;
}

function parseKubernetes(read: InputReader, env: Env, wantsGpu: boolean): KubernetesOptions {
  const input = (name: string): string => read(name).trim();
  const access = clusterAccess(read, env);

  const namespace = input('kubernetes-namespace') || undefined;
  if (namespace !== undefined && !DNS_LABEL.test(namespace)) {
    throw new InputError(
      'kubernetes-namespace',
      namespace,
      'use a namespace name: lowercase letters, digits and dashes, at most 63 characters',
    );
  }

  const image = input('kubernetes-image') || undefined;
  if (image !== undefined && (image.length > 512 || !IMAGE_REFERENCE.test(image))) {
    throw new InputError(
      'kubernetes-image',
      image,
      'use an image reference such as ghcr.io/actions/actions-runner:2.331.0 or ' +
        'registry.example.com/ml/runner-cuda:12.8',
    );
  }

  const nodeSelector: Record<string, string> = {};
  for (const pair of list(input('kubernetes-node-selector'))) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    const value = eq > 0 ? pair.slice(eq + 1).trim() : '';
    if (!isLabelKey(key) || !isLabelValue(value)) {
      throw new InputError(
        'kubernetes-node-selector',
        pair,
        'use key=value node labels, comma-separated, such as nvidia.com/gpu.product=Tesla-T4',
      );
    }
    nodeSelector[key] = value;
  }

  const runtimeClass = input('kubernetes-runtime-class') || undefined;
  if (runtimeClass !== undefined && !DNS_SUBDOMAIN.test(runtimeClass)) {
    throw new InputError(
      'kubernetes-runtime-class',
      runtimeClass,
      'use the name of a RuntimeClass in the cluster, such as nvidia',
    );
  }

  const securityContext = (input('kubernetes-security-context') || 'restricted') as SecurityContextMode;
  if (!SECURITY_CONTEXT_MODES.includes(securityContext)) {
    throw new InputError(
      'kubernetes-security-context',
      securityContext,
      `use one of ${SECURITY_CONTEXT_MODES.join(', ')}: restricted (the default) runs the runner as a non-root user ` +
        "without privilege escalation or capabilities; image keeps the image's user (root for jobs that need it); " +
        'privileged runs a privileged container as root',
    );
  }

  return {
    access,
    namespace,
    image,
    nodeSelector,
    tolerations: parseTolerations(input('kubernetes-tolerations'), wantsGpu),
    runtimeClass,
    securityContext,
  };
}

/**
 * Tolerations as `key[=value][:Effect]`, comma-separated (a key alone tolerates any value), or
 * `none`. Empty: a GPU pod tolerates the nvidia.com/gpu NoSchedule taint that GPU node pools
 * carry (GKE and AKS set it; many EKS setups do), and a CPU pod tolerates nothing.
 */
function parseTolerations(value: string, wantsGpu: boolean): Toleration[] {
  if (!value) return wantsGpu ? [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] : [];
  if (value === 'none') return [];
  return list(value).map((item) => {
    const m = /^([^=:\s]+)(?:=([^:\s]*))?(?::(\w+))?$/.exec(item);
    const effect = m?.[3];
    if (
      !m ||
      !isLabelKey(m[1]!) ||
      (m[2] !== undefined && !isLabelValue(m[2])) ||
      (effect !== undefined && !(EFFECTS as readonly string[]).includes(effect))
    ) {
      throw new InputError(
        'kubernetes-tolerations',
        item,
        `use key[=value][:effect] items, comma-separated, with effect one of ${EFFECTS.join(', ')} ` +
          '(nvidia.com/gpu:NoSchedule), or none',
      );
    }
    const toleration: Toleration =
      m[2] !== undefined ? { key: m[1]!, operator: 'Equal', value: m[2] } : { key: m[1]!, operator: 'Exists' };
    if (effect) toleration.effect = effect as Toleration['effect'];
    return toleration;
  });
}
