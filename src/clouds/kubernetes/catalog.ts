import type { CloudCatalog, RunnerArchitecture } from '../descriptor.js';
import type { GenericGpu, GenericType } from '../generic.js';
import type { KubernetesOptions } from './options.js';

/**
 * Kubernetes names for the generic vocabulary. A pod has no instance type: a size becomes the
 * container's `resources.limits` (requests default to limits, so the pod is Guaranteed QoS and
 * is never the first to be evicted). Sizes are modest so that they fit common GPU nodes
 * (a g4dn.xlarge or n1-standard-4 with a T4 has 4 vCPU and 15-16 GiB, less system reserve).
 *
 * Resource names: https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
 * GPUs: https://kubernetes.io/docs/tasks/manage-gpus/scheduling-gpus/ (nvidia.com/gpu, set in
 * limits only; the NVIDIA device plugin advertises it).
 */
export const KUBERNETES_TYPES: Readonly<Record<GenericType, { cpu: string; memory: string }>> = {
  s: { cpu: '1', memory: '2Gi' },
  m: { cpu: '2', memory: '8Gi' },
  l: { cpu: '8', memory: '32Gi' },
  xl: { cpu: '16', memory: '64Gi' },
};

/**
 * The extended resource a generic GPU asks for. Every generic GPU yields one GPU: CML once let
 * `type: m` with `gpu: t4` produce a pod without any, which is the bug this table rules out.
 * The model is chosen by node labels (kubernetes-node-selector), because clusters name models
 * differently (GPU feature discovery's nvidia.com/gpu.product, GKE's
 * cloud.google.com/gke-accelerator).
 */
export const KUBERNETES_GPU_RESOURCE = 'nvidia.com/gpu';
export const KUBERNETES_GPUS: Readonly<Record<Exclude<GenericGpu, 'nogpu'>, number>> = {
  t4: 1,
  a10g: 1,
  l4: 1,
  l40s: 1,
  a100: 1,
  h100: 1,
  v100: 1,
};

/** The official runner image (actions/runner's images/Dockerfile): the runner in /home/runner, user `runner`. */
export const KUBERNETES_DEFAULT_IMAGE = 'ghcr.io/actions/actions-runner';

/**
 * A pod runs on whatever node it is scheduled to: its architecture is known beforehand only when
 * kubernetes-node-selector names the kubelet's node label kubernetes.io/arch (GOARCH values).
 * https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-arch
 */
export const KUBERNETES_ARCH_LABEL = 'kubernetes.io/arch';
const KUBERNETES_ARCHITECTURES: ReadonlyMap<string, RunnerArchitecture> = new Map([
  ['amd64', 'X64'],
  ['arm64', 'ARM64'],
]);

/** A resource.Quantity, as the API server parses it. */
export const QUANTITY = /^[+]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

/**
 * A native size is `CPU/MEMORY` or `CPU/MEMORY/GPUS` in Kubernetes quantities: `4/16Gi`,
 * `500m/2Gi`, `16/64Gi/2`.
 */
export const KUBERNETES_NATIVE_TYPE = /^([^/\s]+)\/([^/\s]+)(?:\/(\d{1,2}))?$/;

export interface PodSize {
  cpu: string;
  memory: string;
  gpus: number;
}

/** The size a `type` names (generic or native) with the GPU asked for, or undefined when it names none. */
export function kubernetesSize(type: string, gpu: GenericGpu): PodSize | undefined {
  const generic = KUBERNETES_TYPES[type as GenericType];
  const fromGpu = gpu === 'nogpu' ? 0 : KUBERNETES_GPUS[gpu];
  if (generic) return { ...generic, gpus: fromGpu };
  const m = KUBERNETES_NATIVE_TYPE.exec(type);
  if (!m || !QUANTITY.test(m[1]!) || !QUANTITY.test(m[2]!)) return undefined;
  const gpus = m[3] !== undefined ? Number(m[3]) : fromGpu;
  // A generic GPU with an explicit count of zero would silently drop the GPU.
  if (gpu !== 'nogpu' && gpus === 0) return undefined;
  return { cpu: m[1]!, memory: m[2]!, gpus };
}

export function formatPodSize(size: PodSize): string {
  return `${size.cpu}/${size.memory}${size.gpus > 0 ? `/${size.gpus}` : ''}`;
}

export function parsePodSize(native: string): PodSize {
  const m = KUBERNETES_NATIVE_TYPE.exec(native);
  if (!m) throw new Error(`not a pod size: ${native}`);
  return { cpu: m[1]!, memory: m[2]!, gpus: m[3] !== undefined ? Number(m[3]) : 0 };
}

/**
 * A cluster has no regions: the namespace (kubernetes-namespace) is where runners go, so any
 * region is accepted and none is kept.
 */
export const KUBERNETES_CATALOG: CloudCatalog = {
  nativeRegionHint: 'any value (region does not apply to Kubernetes)',
  nativeTypeHint: 'a pod size CPU/MEMORY or CPU/MEMORY/GPUS in Kubernetes quantities, such as 4/16Gi or 16/64Gi/2',
  region: () => '',
  machineType: (t, gpu) => {
    const size = kubernetesSize(t, gpu);
    return size && formatPodSize(size);
  },
  typeHasGpu: (t) => (kubernetesSize(t, 'nogpu')?.gpus ?? 0) > 0,
  image: () => false,
  imageHint: 'on Kubernetes the container image is the kubernetes-image input; leave image empty',
  architecture: (_size, options) => {
    const selected = (options as Partial<KubernetesOptions> | undefined)?.nodeSelector?.[KUBERNETES_ARCH_LABEL];
    return selected === undefined ? undefined : KUBERNETES_ARCHITECTURES.get(selected);
  },
};
