import { CATALOGS, CLOUDS, type CloudName } from './catalog/index.js';
import { GENERIC_GPUS, GENERIC_REGIONS, GENERIC_TYPES, GPU_ALIASES, RETIRED_GPUS, isGenericGpu, type GenericGpu } from './catalog/generic.js';
import { InputError } from './errors.js';

/**
 * Inputs become one validated, cloud-agnostic launch spec. Nothing below this file reads an
 * input, and nothing is created before `parseSpec` has accepted every value.
 */

/**
 * `launch` starts runners; `cleanup` ends everything this workflow run launched; `sweep` ends
 * everything of this repository's that outlived its purpose.
 */
export const MODES = ['launch', 'cleanup', 'sweep'] as const;
export type Mode = (typeof MODES)[number];

/** Where runners register: a repository or a whole organisation, on github.com or GHES. */
export type ForgeScope = { kind: 'repo'; owner: string; repo: string } | { kind: 'org'; org: string };

export interface ForgeSpec {
  driver: 'github';
  scope: ForgeScope;
  /** `https://github.com/owner/repo` or `https://github.com/org`: what `config.sh --url` takes. */
  url: string;
  apiUrl: string;
  token: string;
}

export interface RunnerSpec {
  labels: string[];
  /** One unique name per runner. */
  names: string[];
  single: boolean;
  idleTimeoutSeconds: number;
  maxLifetimeSeconds: number;
  startupTimeoutSeconds: number;
  /** Runner group by id or name; undefined means the default group. */
  group?: number | string;
  /** `latest`, or a version that must be the one GitHub offers. */
  version: string;
  /** A runner already unpacked in the machine image, used when its version is the one GitHub accepts. */
  cache?: string;
  /** Keep the runners that came online when others failed (otherwise all or nothing). */
  allowPartial: boolean;
  /** Skip launching when a matching runner is online (`online`), or online and idle (`idle`). */
  reuse?: 'online' | 'idle';
}

export interface MachineSpec {
  cloud: CloudName;
  region: string;
  /** Native machine types, in the order to try. */
  types: string[];
  gpu: GenericGpu;
  /** Whether the machine needs a GPU image: a GPU was asked for, or the native type has one. */
  wantsGpu: boolean;
  /** Root disk in GB; undefined keeps the image's own size. */
  hddSizeGb?: number;
  image?: string;
  spot: boolean;
  /** When spot has no capacity (or is refused at this price), try on-demand. */
  onDemandFallback: boolean;
  /** Maximum hourly price; undefined means up to the on-demand price (`spot-price: -1`). */
  spotPrice?: number;
  /** The user's own script, run first on the machine. */
  startupScript?: string;
  tags: Record<string, string>;
  /** `subnets`: in the order to try, usually one per availability zone; empty lets EC2 choose. */
  aws: { subnets: string[]; securityGroup?: string; instanceProfile?: string };
  /** Set when cloud is kubernetes. */
  kubernetes?: KubernetesSpec;
  /** Set when cloud is gcp. */
  gcp?: GcpSpec;
  /** Set when cloud is azure. */
  azure?: AzureSpec;
}

export interface AzureSpec {
  subscriptionId: string;
  /** Each runner's resource group is `<prefix>-<runner name>`. */
  resourceGroupPrefix: string;
}

export interface GcpSpec {
  project: string;
  /**
   * The machine's own service account (cloud-platform scope; IAM decides what it may do). The
   * startup script uses it to delete its own instance. Undefined: the machine has none, so it
   * cannot delete itself and stops instead; cleanup or sweep must then delete it (maxRunDuration
   * no longer applies to a stopped VM).
   */
  serviceAccount?: string;
}

/** Where the Google Cloud project may come from besides the gcp-project input: what google-github-actions/auth and gcloud set. */
export interface GcpEnv {
  GOOGLE_CLOUD_PROJECT?: string;
  GCLOUD_PROJECT?: string;
  CLOUDSDK_CORE_PROJECT?: string;
  CLOUDSDK_PROJECT?: string;
}

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

export interface KubernetesSpec {
  access: ClusterAccess;
  /** Undefined: the kubeconfig context's namespace, the pod's own in-cluster, or `default`. */
  namespace?: string;
  /** The runner container image; undefined means the official runner image of the runner version. */
  image?: string;
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  runtimeClass?: string;
}

/** The variables the cluster access is looked up in, read by the entry from its environment. */
export interface KubernetesEnv {
  KUBERNETES_CONFIGURATION?: string;
  KUBECONFIG?: string;
  /** Set inside a pod: the in-cluster service account is available. */
  KUBERNETES_SERVICE_HOST?: string;
}

export interface LaunchSpec {
  mode: Mode;
  machine: MachineSpec;
  runner: RunnerSpec;
  forge: ForgeSpec;
}

/** The workflow run a launch belongs to, from the Actions environment; it goes into tags. */
export interface RunContext {
  repository: string;
  runId: string;
  serverUrl: string;
  apiUrl: string;
  /** Where cluster access may come from besides the kubeconfig input. */
  kubernetes?: KubernetesEnv;
  gcp?: GcpEnv;
  /** AZURE_SUBSCRIPTION_ID, which azure/login and the Azure CLI setups export. */
  azureSubscriptionId?: string;
}

export type InputReader = (name: string) => string;

/**
 * EC2 user data is at most 16384 bytes. The startup template takes about 5 KB and its settings
 * (JIT config, download URLs) about 3 KB as base64; the user's script is base64 too (4/3).
 */
const MAX_STARTUP_SCRIPT_BYTES = 6144;

const DURATION = /^(\d+)\s*(s|m|h|d)?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function parseSpec(read: InputReader, ctx: RunContext, random: () => string = randomSuffix): LaunchSpec {
  const input = (name: string): string => read(name).trim();

  const mode = oneOf('mode', input('mode') || 'launch', MODES) as Mode;
  const cloud = oneOf('cloud', input('cloud'), CLOUDS) as CloudName;
  const catalog = CATALOGS[cloud];

  const regionRaw = input('region') || 'us-east';
  const region = catalog.region(regionRaw);
  if (!region) {
    throw new InputError('region', regionRaw, `use one of ${GENERIC_REGIONS.join(', ')}, or ${catalog.nativeRegionHint}`);
  }

  const gpu = parseGpu(input('gpu') || 'nogpu');
  const typeList = list(input('type') || 'm');
  if (typeList.length === 0) throw new InputError('type', input('type'), 'give at least one type');
  const types = typeList.map((t) => {
    const native = catalog.machineType(t, gpu);
    if (!native) {
      throw new InputError('type', t, `use one of ${GENERIC_TYPES.join(', ')}, or ${catalog.nativeTypeHint}; a comma list is a fallback order`);
    }
    return native;
  });

  const hddRaw = input('hdd-size');
  const hddSizeGb = hddRaw ? integer('hdd-size', hddRaw, 8, 16384, 'a disk size in GB from 8 to 16384') : undefined;

  const image = input('image') || undefined;
  if (image !== undefined && !catalog.image(image)) throw new InputError('image', image, catalog.imageHint);

  const spot = bool('spot', input('spot') || 'false');
  if (spot && cloud === 'kubernetes') {
    throw new InputError('spot', input('spot'), 'use false on Kubernetes: pods run on the nodes the cluster has; to use spot nodes, select them with kubernetes-node-selector and kubernetes-tolerations');
  }
  const onDemandFallback = bool('on-demand-fallback', input('on-demand-fallback') || 'true');
  const spotPriceRaw = input('spot-price') || '-1';
  const spotPrice = Number(spotPriceRaw);
  if (!Number.isFinite(spotPrice) || (spotPrice <= 0 && spotPrice !== -1)) {
    throw new InputError('spot-price', spotPriceRaw, 'use a maximum hourly price in USD greater than 0, or -1 for up to the on-demand price');
  }
  if (cloud === 'gcp' && spotPrice !== -1) {
    throw new InputError('spot-price', spotPriceRaw, 'use -1 on Google Cloud: spot VMs there have no maximum price (they are preempted for capacity, not price)');
  }

  const startupScript = parseStartupScript(read('startup-script'));
  if (startupScript !== undefined && Buffer.byteLength(startupScript) > MAX_STARTUP_SCRIPT_BYTES) {
    throw new InputError(
      'startup-script',
      `${startupScript.slice(0, 40)}… (${Buffer.byteLength(startupScript)} bytes)`,
      `keep it at most ${MAX_STARTUP_SCRIPT_BYTES} bytes, since it travels in the machine's user data (16 KB on EC2) with the runner settings; download larger scripts from the machine instead`,
    );
  }
  const tags = parseTags(input('tags'));
  if (cloud === 'gcp') {
    for (const [key, value] of Object.entries(tags)) {
      if (!GCP_LABEL_KEY.test(key) || !GCP_LABEL_VALUE.test(value)) {
        throw new InputError('tags', `${key}=${value}`, 'on Google Cloud tags become labels: keys start with a lowercase letter, and keys and values have at most 63 lowercase letters, digits, dashes or underscores');
      }
    }
  }

  const labels = parseLabels(input('labels') || 'cml');
  const count = integer('count', input('count') || '1', 1, 100, 'a whole number of runners from 1 to 100');
  const names = parseNames(input('name'), count, random);
  const single = bool('single', input('single') || 'true');
  const idleTimeoutSeconds = duration('idle-timeout', input('idle-timeout') || '300', 0);
  const maxLifetimeSeconds = duration('max-lifetime', input('max-lifetime') || '24h', 60);
  const startupTimeoutSeconds = duration('startup-timeout', input('startup-timeout') || '15m', 5);
  const group = parseGroup(input('runner-group'));
  const allowPartial = bool('allow-partial', input('allow-partial') || 'false');
  const reuseOnline = bool('reuse', input('reuse') || 'false');
  const reuseIdle = bool('reuse-idle', input('reuse-idle') || 'false');
  const reuse = reuseIdle ? ('idle' as const) : reuseOnline ? ('online' as const) : undefined;
  const version = input('runner-version') || 'latest';
  const cache = input('runner-cache') || undefined;
  if (cache !== undefined && !/^\/[A-Za-z0-9._\/-]*$/.test(cache)) {
    throw new InputError('runner-cache', cache, 'use an absolute path on the machine image, such as /opt/actions-runner, of letters, digits, dots, dashes, underscores and slashes');
  }
  if (version !== 'latest' && !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new InputError('runner-version', version, "use 'latest' or a version such as 2.330.0");
  }

  const driver = oneOf('driver', input('driver') || 'github', ['github', 'gitlab']);
  if (driver === 'gitlab') {
    throw new InputError('driver', driver, "GitLab runners are not supported by this version; use 'github'");
  }
  const token = read('token').trim();
  if (!token) {
    throw new InputError('token', '', 'a personal access token or GitHub App token that can manage self-hosted runners is required (GITHUB_TOKEN cannot register runners)');
  }
  const { scope, url } = parseRepo(input('repo') || ctx.repository, ctx.serverUrl);

  const subnets = list(input('aws-subnet'));
  for (const subnet of subnets) {
    if (!/^subnet-[0-9a-f]+$/.test(subnet)) {
      throw new InputError('aws-subnet', subnet, 'use subnet ids such as subnet-0123456789abcdef0, comma-separated in the order to try (one per availability zone)');
    }
  }
  if (new Set(subnets).size !== subnets.length) throw new InputError('aws-subnet', input('aws-subnet'), 'name each subnet once');
  if (new Set(types).size !== types.length) throw new InputError('type', input('type'), 'name each type once; a comma list is a fallback order');
  const securityGroup = input('aws-security-group') || undefined;
  if (securityGroup !== undefined && !/^sg-[0-9a-f]+$/.test(securityGroup)) {
    throw new InputError('aws-security-group', securityGroup, 'use a security group id such as sg-0123456789abcdef0');
  }
  const instanceProfile = input('aws-instance-profile') || undefined;
  if (instanceProfile !== undefined && !/^([\w+=,.@-]{1,128}|arn:aws[\w-]*:iam::\d{12}:instance-profile\/[\w+=,.@\/-]+)$/.test(instanceProfile)) {
    throw new InputError('aws-instance-profile', instanceProfile, 'use an instance profile name or ARN');
  }

  const wantsGpu = gpu !== 'nogpu' || types.some((t) => catalog.typeHasGpu(t));
  const kubernetes = cloud === 'kubernetes' ? parseKubernetes(read, ctx, wantsGpu) : undefined;
  const gcp = cloud === 'gcp' ? parseGcp(read, ctx) : undefined;
  const azure = cloud === 'azure' ? parseAzure(read, ctx) : undefined;

  return {
    mode,
    machine: {
      cloud,
      region: kubernetes ? (kubernetes.namespace ?? '') : region,
      types,
      gpu,
      wantsGpu,
      hddSizeGb,
      image,
      spot,
      onDemandFallback,
      spotPrice: spotPrice === -1 ? undefined : spotPrice,
      startupScript,
      tags,
      aws: { subnets, securityGroup, instanceProfile },
      ...(kubernetes ? { kubernetes } : {}),
      ...(gcp ? { gcp } : {}),
      ...(azure ? { azure } : {}),
    },
    runner: {
      labels,
      names,
      single,
      idleTimeoutSeconds,
      maxLifetimeSeconds,
      startupTimeoutSeconds,
      group,
      version,
      allowPartial,
      ...(cache ? { cache } : {}),
      ...(reuse ? { reuse } : {}),
    },
    forge: { driver: 'github', scope, url, apiUrl: ctx.apiUrl, token },
  };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
/** An image reference: [registry[:port]/]path[:tag][@digest], lowercase path, as the OCI distribution spec allows. */
const IMAGE_REFERENCE = /^([a-zA-Z0-9.-]+(:\d+)?\/)?[a-z0-9]+([._-]+[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;
const GCP_LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const GCP_LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
/** A project id (`ml-training-123`), or a domain-scoped one (`example.com:ml`). */
const GCP_PROJECT = /^([a-z][-a-z0-9.]{0,62}:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$/;
/** A user-managed service account, or a project's default compute one. */
const GCP_SERVICE_ACCOUNT = /^([a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9.:]*\.iam\.gserviceaccount\.com|\d+-compute@developer\.gserviceaccount\.com)$/;
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
export function clusterAccess(read: InputReader, env: KubernetesEnv = {}): ClusterAccess {
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
    'give the contents of a kubeconfig file in the kubeconfig input or the KUBERNETES_CONFIGURATION variable, set KUBECONFIG to its path, or run the launch job in a pod with a service account',
  );
}

/**
 * The Google Cloud project: the gcp-project input, else what google-github-actions/auth or
 * gcloud set in the environment. Main and post both call this.
 */
export function gcpProject(read: InputReader, env: GcpEnv = {}): string {
  const given = read('gcp-project').trim();
  const project = given || env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || env.CLOUDSDK_CORE_PROJECT || env.CLOUDSDK_PROJECT || '';
  if (!GCP_PROJECT.test(project)) {
    throw new InputError(
      'gcp-project',
      project,
      given || project ? 'use a project id such as ml-training-123 (6 to 30 lowercase letters, digits and dashes)' : 'give the project id, or let google-github-actions/auth set GOOGLE_CLOUD_PROJECT',
    );
  }
  return project;
}

/** The Azure subscription: the azure-subscription-id input, else AZURE_SUBSCRIPTION_ID. Main and post both call this. */
export function azureSubscription(read: InputReader, env: string | undefined): string {
  const given = read('azure-subscription-id').trim();
  const id = given || env?.trim() || '';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
    throw new InputError('azure-subscription-id', id, id ? 'use a subscription id, a GUID such as 00000000-0000-0000-0000-000000000000' : 'give the subscription id, or set AZURE_SUBSCRIPTION_ID');
  }
  return id;
}

function parseAzure(read: InputReader, ctx: RunContext): AzureSpec {
  const subscriptionId = azureSubscription(read, ctx.azureSubscriptionId);
  const resourceGroupPrefix = read('azure-resource-group-prefix').trim() || 'cml-runner';
  // Group names take 90 characters of letters, digits, _ ( ) - .; the runner name follows the prefix.
  if (!/^[A-Za-z0-9_().-]{1,30}$/.test(resourceGroupPrefix) || resourceGroupPrefix.endsWith('.')) {
    throw new InputError('azure-resource-group-prefix', resourceGroupPrefix, 'use 1 to 30 letters, digits, dashes, underscores, dots or parentheses, not ending in a dot');
  }
  return { subscriptionId, resourceGroupPrefix };
}

function parseGcp(read: InputReader, ctx: RunContext): GcpSpec {
  const project = gcpProject(read, ctx.gcp);
  const serviceAccount = read('gcp-service-account').trim() || undefined;
  if (serviceAccount !== undefined && !GCP_SERVICE_ACCOUNT.test(serviceAccount)) {
    throw new InputError('gcp-service-account', serviceAccount, 'use a service account email such as ci-runner@my-project.iam.gserviceaccount.com');
  }
  return { project, ...(serviceAccount ? { serviceAccount } : {}) };
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
  const field = /^\s*-?\s*(token|client-key-data|client-certificate-data|password|id-token|refresh-token|access-token|client-secret)\s*:\s*["']?([^"'\s]+)/;
  for (const line of text.split('\n')) {
    const m = field.exec(line);
    if (m && m[2]!.length >= 4) secrets.push(m[2]!);
  }
  return secrets;
}

function parseKubernetes(read: InputReader, ctx: RunContext, wantsGpu: boolean): KubernetesSpec {
  const input = (name: string): string => read(name).trim();
  const access = clusterAccess(read, ctx.kubernetes);

  const namespace = input('kubernetes-namespace') || undefined;
  if (namespace !== undefined && !DNS_LABEL.test(namespace)) {
    throw new InputError('kubernetes-namespace', namespace, 'use a namespace name: lowercase letters, digits and dashes, at most 63 characters');
  }

  const image = input('kubernetes-image') || undefined;
  if (image !== undefined && (image.length > 512 || !IMAGE_REFERENCE.test(image))) {
    throw new InputError('kubernetes-image', image, 'use an image reference such as ghcr.io/actions/actions-runner:2.331.0 or registry.example.com/ml/runner-cuda:12.8');
  }

  const nodeSelector: Record<string, string> = {};
  for (const pair of list(input('kubernetes-node-selector'))) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    const value = eq > 0 ? pair.slice(eq + 1).trim() : '';
    if (!isLabelKey(key) || !isLabelValue(value)) {
      throw new InputError('kubernetes-node-selector', pair, 'use key=value node labels, comma-separated, such as nvidia.com/gpu.product=Tesla-T4');
    }
    nodeSelector[key] = value;
  }

  const runtimeClass = input('kubernetes-runtime-class') || undefined;
  if (runtimeClass !== undefined && !DNS_SUBDOMAIN.test(runtimeClass)) {
    throw new InputError('kubernetes-runtime-class', runtimeClass, 'use the name of a RuntimeClass in the cluster, such as nvidia');
  }

  return { access, namespace, image, nodeSelector, tolerations: parseTolerations(input('kubernetes-tolerations'), wantsGpu), runtimeClass };
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
    if (!m || !isLabelKey(m[1]!) || (m[2] !== undefined && !isLabelValue(m[2])) || (effect !== undefined && !(EFFECTS as readonly string[]).includes(effect))) {
      throw new InputError('kubernetes-tolerations', item, `use key[=value][:effect] items, comma-separated, with effect one of ${EFFECTS.join(', ')} (nvidia.com/gpu:NoSchedule), or none`);
    }
    const toleration: Toleration = m[2] !== undefined ? { key: m[1]!, operator: 'Equal', value: m[2] } : { key: m[1]!, operator: 'Exists' };
    if (effect) toleration.effect = effect as Toleration['effect'];
    return toleration;
  });
}

function oneOf(input: string, value: string, accepted: readonly string[]): string {
  if (!accepted.includes(value)) throw new InputError(input, value, `use one of ${accepted.join(', ')}`);
  return value;
}

function list(value: string): string[] {
  return value
    .split(/[,\n]/)
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

function bool(input: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InputError(input, value, 'use true or false');
}

function integer(input: string, value: string, min: number, max: number, accepted: string): number {
  if (!/^\d+$/.test(value)) throw new InputError(input, value, accepted);
  const n = Number(value);
  if (n < min || n > max) throw new InputError(input, value, accepted);
  return n;
}

/** Seconds, or a number with s, m, h or d. */
export function duration(input: string, value: string, minSeconds: number): number {
  const m = DURATION.exec(value);
  const accepted = `use seconds (300) or a number with s, m, h or d (90m, 24h), at least ${minSeconds} seconds`;
  if (!m) throw new InputError(input, value, accepted);
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2] ?? 's']!;
  if (seconds < minSeconds || seconds > 30 * 86400) throw new InputError(input, value, `${accepted} and at most 30d`);
  return seconds;
}

function parseGpu(value: string): GenericGpu {
  const v = value.toLowerCase();
  const retired = RETIRED_GPUS[v];
  if (retired) throw new InputError('gpu', value, retired);
  const gpu = GPU_ALIASES[v] ?? v;
  if (!isGenericGpu(gpu)) {
    throw new InputError('gpu', value, `use one of ${GENERIC_GPUS.join(', ')} (tesla means v100), or leave it out and give a native GPU type in 'type'`);
  }
  return gpu;
}

/** GitHub labels: no commas (config.sh splits on them), no control characters, at most 256 characters. */
function parseLabels(value: string): string[] {
  const labels = value.split(',').map((l) => l.trim());
  for (const label of labels) {
    if (!label || label.length > 256 || /\p{Cc}/u.test(label)) {
      throw new InputError('labels', value, 'use a comma-separated list of non-empty labels without control characters, each at most 256 characters');
    }
  }
  if (new Set(labels.map((l) => l.toLowerCase())).size !== labels.length) {
    throw new InputError('labels', value, 'each label only once (GitHub labels are case-insensitive)');
  }
  return labels;
}

/** Runner names become tag values, file names and `--name` values: keep them plain. */
function parseNames(value: string, count: number, random: () => string): string[] {
  if (!value) return Array.from({ length: count }, () => `cml-${random()}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,54}$/.test(value)) {
    throw new InputError('name', value, 'use 1 to 55 letters, digits, dots, dashes or underscores, starting with a letter or digit');
  }
  return count === 1 ? [value] : Array.from({ length: count }, (_, i) => `${value}-${i + 1}`);
}

function parseGroup(value: string): number | string | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  if (value.length > 128 || /\p{Cc}/u.test(value)) throw new InputError('runner-group', value, 'use a runner group name or numeric id');
  return value;
}

/** `key=value` pairs, one per line or comma-separated. Keys starting with `aws:` are reserved by AWS. */
export function parseTags(value: string): Record<string, string> {
  const tags: Record<string, string> = {};
  if (!value) return tags;
  const pairs = value.includes('\n') ? value.split('\n') : value.split(',');
  for (const raw of pairs) {
    const pair = raw.trim();
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    const val = eq > 0 ? pair.slice(eq + 1).trim() : '';
    if (!key || key.length > 128 || val.length > 256 || /\p{Cc}/u.test(pair) || /^(aws:|cml-runner:)/i.test(key)) {
      throw new InputError('tags', pair, 'use key=value pairs (key up to 128 characters, value up to 256, no control characters; keys starting with aws: or cml-runner: are reserved)');
    }
    tags[key] = val;
  }
  return tags;
}

/** A plain script, or one given as base64 (as CML accepted). */
function parseStartupScript(value: string): string | undefined {
  if (!value.trim()) return undefined;
  const compact = value.trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(compact) && compact.length % 4 === 0 && compact.length >= 8) {
    const decoded = Buffer.from(compact, 'base64').toString('utf8');
    if (!decoded.includes('\uFFFD')) return decoded;
  }
  return value;
}

/** A repository or organisation URL on this server, or `owner/repo`. */
function parseRepo(value: string, serverUrl: string): { scope: ForgeScope; url: string } {
  const server = serverUrl.replace(/\/+$/, '');
  const accepted = `use a repository or organisation URL on ${server} (${server}/owner/repo or ${server}/org), or owner/repo`;
  let path = value;
  if (/^https?:\/\//.test(value)) {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new InputError('repo', value, accepted);
    }
    if (parsed.origin !== new URL(server).origin) throw new InputError('repo', value, accepted);
    path = parsed.pathname;
  }
  const parts = path.replace(/^\/+|\/+$/g, '').replace(/\.git$/, '').split('/');
  const seg = /^[A-Za-z0-9_.-]{1,100}$/;
  if (parts.length === 2 && seg.test(parts[0]!) && seg.test(parts[1]!)) {
    return { scope: { kind: 'repo', owner: parts[0]!, repo: parts[1]! }, url: `${server}/${parts[0]}/${parts[1]}` };
  }
  if (parts.length === 1 && /^https?:\/\//.test(value) && seg.test(parts[0]!)) {
    return { scope: { kind: 'org', org: parts[0]! }, url: `${server}/${parts[0]}` };
  }
  throw new InputError('repo', value, accepted);
}

function randomSuffix(): string {
  return crypto.randomUUID().replace(/-/g, '').slice(0, 10);
}
