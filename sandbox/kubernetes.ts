/**
 * Fake Kubernetes API server: REST/JSON over plain http on 127.0.0.1, driven by the real
 * `@kubernetes/client-node` from a kubeconfig (bearer token, `insecure-skip-tls-verify`), with a
 * fake control plane and nodes behind it (kubernetes/cluster.ts, kubernetes/kubelet.ts).
 *
 * Resources: batch/v1 jobs; v1 secrets, pods (and pods/log), events; read-only namespaces and
 * nodes. Verbs are those of RBAC (get, list, watch, create, update, patch, delete,
 * deletecollection); what a resource does not implement here answers 405, unknown paths 404,
 * as the real server answers them. Errors are `Status` objects with the real reasons and
 * messages (kubernetes/status.ts); decoding, validation and defaulting follow the real server
 * (kubernetes/validation.ts).
 * https://kubernetes.io/docs/reference/using-api/api-concepts/
 *
 * Every request goes through the sandbox pipeline (core/pipeline.ts): the route is named
 * (kubernetes/routes.ts), the bearer token authenticated, RBAC and the router's 405 checked, then
 * a fault, then the handlers (kubernetes/controllers.ts) on the cluster (kubernetes/cluster.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type http from 'node:http';
import { type Answer, type FaultPlan, Timers, pipeline } from './core/index.js';
import type { FakeGitHub } from './github.js';
import { serve } from './http.js';
import { Cluster, DEFAULT_NODES, type NodeSpec, type Resource } from './kubernetes/cluster.js';
import { KubeApi } from './kubernetes/controllers.js';
import { type LauncherPolicy, readLauncherPolicy } from './kubernetes/rbac.js';
import { DENIED_USER, type KubeRequest, type User, authenticate, authorize, identify } from './kubernetes/routes.js';
import { ApiError, type Json, faultError } from './kubernetes/status.js';
import { type Machine, MachineFleet } from './machine.js';

export type { NodeSpec, Taint } from './kubernetes/cluster.js';
export { DEFAULT_NODES, fitErrorMessage } from './kubernetes/cluster.js';

/** A Kubernetes object as the fake stores it: apiVersion, kind, metadata, and the rest. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    generation?: number;
    generateName?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller?: boolean;
      blockOwnerDeletion?: boolean;
    }>;
    finalizers?: string[];
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
  };
  [field: string]: unknown;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastProbeTime?: string | null;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: {
    exitCode: number;
    reason?: string;
    message?: string;
    startedAt?: string | null;
    finishedAt?: string | null;
    containerID?: string;
  };
}

export interface JobObject extends KubeObject {
  spec: Json;
  status?: {
    active?: number;
    ready?: number;
    terminating?: number;
    succeeded?: number;
    failed?: number;
    startTime?: string;
    completionTime?: string;
    conditions?: Condition[];
  };
}

export interface PodObject extends KubeObject {
  spec: Json & { nodeName?: string };
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    conditions?: Condition[];
    containerStatuses?: Array<{
      name: string;
      state?: ContainerState;
      lastState?: ContainerState;
      ready: boolean;
      restartCount: number;
      image: string;
      imageID: string;
      containerID?: string;
      started?: boolean;
    }>;
    hostIP?: string;
    podIP?: string;
    startTime?: string;
    qosClass?: string;
  };
}

export interface SecretObject extends KubeObject {
  type?: string;
  /** Values in base64, as the API returns them. */
  data?: Record<string, string>;
  immutable?: boolean;
}

export interface EventObject extends KubeObject {
  involvedObject: {
    kind: string;
    namespace?: string;
    name: string;
    uid: string;
    apiVersion?: string;
    fieldPath?: string;
  };
  reason: string;
  message: string;
  type: 'Normal' | 'Warning';
  reportingComponent: string;
  count?: number;
  series?: { count: number; lastObservedTime: string };
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  eventTime?: string | null;
}

export interface KubernetesCall {
  /** RBAC verb: get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  /** API group: '' for the core group, 'batch' for Jobs. */
  group: string;
  version: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  status: number;
  /** Status reason of a failed call (NotFound, Invalid, Forbidden, ...). */
  reason?: string;
  /** Warning headers sent (unknown fields, the Job deletion default). */
  warnings?: string[];
  /** What faults match on: `namespace`, and `name` (from the path, or a created object's). */
  params?: Record<string, string>;
  at: number;
  ms: number;
}

export interface FakeKubernetesOptions {
  faults: FaultPlan;
  /** Boots the pods' containers; shared with the sandbox so leftovers and `failBoot` see them. */
  machines?: MachineFleet;
  /** Added to every call. */
  latencyMs?: number;
  /** How long a Kubernetes second lasts (deadlines, TTLs, grace periods, back-offs). Default 1000. */
  secondMs?: number;
  /** The cluster's nodes. Default: `sandbox-cpu-1` and `sandbox-gpu-1` (one Tesla T4, tainted). */
  nodes?: readonly NodeSpec[];
  /** RuntimeClasses that exist. Default `['nvidia']`. */
  runtimeClasses?: readonly string[];
  /** Namespaces that exist (the kube-* ones and the launcher's always do). Default `['default', 'ci']`. */
  namespaces?: readonly string[];
  /**
   * The launcher's Namespace, Role and RoleBinding (YAML). Default: the documented
   * docs/permissions/kubernetes/launcher-role.yaml, so tests run under exactly that Role.
   */
  launcherRole?: string;
  /** Images that cannot be pulled. Default: any reference containing `does-not-exist`. */
  unpullableImages?: readonly string[] | ((image: string) => boolean);
  /** Where the `ghcr.io/actions/actions-runner` image gets its runner (the fake GitHub's tarball). */
  github?: Pick<FakeGitHub, 'runnerPackage'>;
}

export interface FakeKubernetes {
  url: string;
  /**
   * `admin` may do everything; `launcher` is the Role's service account, which may do what the
   * Role allows in its namespace; `denied` is authenticated and may do nothing (403).
   */
  tokens: { admin: string; launcher: string; denied: string };
  /** The launcher's namespace, user and rules: a test may change `rules` (and put them back). */
  launcher: LauncherPolicy;
  /**
   * A kubeconfig (YAML) for this server: the token (default the launcher's) and the context's
   * namespace (default the launcher's namespace, `ci-runners`).
   */
  kubeconfig(opts?: { token?: string; namespace?: string }): string;
  /**
   * Sets (a string) or removes (null) labels of a namespace, as `kubectl label namespace` does:
   * `pod-security.kubernetes.io/enforce` chooses what Pod Security Admission enforces there.
   */
  labelNamespace(name: string, labels: Record<string, string | null>): void;
  /** Every API call, oldest first. */
  calls: KubernetesCall[];
  jobs(): JobObject[];
  pods(): PodObject[];
  secrets(): SecretObject[];
  events(): EventObject[];
  nodes(): KubeObject[];
  /** The console of a pod's container (its first one unless named), as `kubectl logs` shows it. */
  podLog(name: string, opts?: { namespace?: string; container?: string }): string;
  /** One line per Job, pod and Secret still present, and per container process still running. */
  leftovers(): string[];
  /** Whether a machine is one of this cluster's containers. */
  ownsMachine(m: Machine): boolean;
  close(): Promise<void>;
}

export async function startFakeKubernetes(opts: FakeKubernetesOptions): Promise<FakeKubernetes> {
  const launcher = readLauncherPolicy(opts.launcherRole);
  const machines = opts.machines ?? new MachineFleet();
  const ownsMachines = opts.machines === undefined;
  const unpullable = opts.unpullableImages;
  const cluster = new Cluster({
    machines,
    secondMs: opts.secondMs ?? 1000,
    nodes: opts.nodes ?? DEFAULT_NODES,
    runtimeClasses: opts.runtimeClasses ?? ['nvidia'],
    namespaces: [...(opts.namespaces ?? ['default', 'ci']), launcher.namespace],
    namespaceLabels: { [launcher.namespace]: launcher.namespaceLabels },
    unpullable:
      typeof unpullable === 'function'
        ? unpullable
        : unpullable
          ? (image) => unpullable.includes(image)
          : (image) => image.includes('does-not-exist'),
    ...(opts.github ? { runnerTarball: async () => (await opts.github!.runnerPackage()).body } : {}),
    timers: new Timers(),
  });
  const token = (): string => `sandbox-${randomBytes(24).toString('base64url')}`;
  const tokens = { admin: token(), launcher: token(), denied: token() };
  const calls: KubernetesCall[] = [];
  const watches = new Set<http.ServerResponse>();
  const api = new KubeApi(cluster, watches);

  const server = await serve(
    'kubernetes',
    pipeline<KubeRequest, User>({
      service: 'kubernetes',
      faults: opts.faults,
      ...(opts.latencyMs ? { latencyMs: opts.latencyMs } : {}),
      identify,
      authenticate: (_req, _body, request) => authenticate(request, tokens),
      authorize: (user, request) => authorize(user, request, launcher),
      identityOf: (user) => (user === 'denied' ? DENIED_USER : user === 'launcher' ? launcher.user : 'admin'),
      // A fault without a code (a delay, a reset) shapes the answer but is not an error.
      faultError: (fault, request) =>
        fault.code
          ? faultError(fault, request.route ?? { group: '', resource: request.pathname }, request.route?.name)
          : undefined,
      handle: (request) => answer(api, request),
      errorAnswer: (err, request) => {
        if (!(err instanceof ApiError)) throw err;
        return {
          status: err.code,
          body: JSON.stringify(err.status()),
          headers: { 'content-type': 'application/json', ...headersOf(request), ...err.headers },
          code: err.reason,
        };
      },
      record: (call, request) => {
        const route = request?.route;
        // Only resource requests are logged, as before: discovery and unknown paths are not calls.
        if (!route) return;
        calls.push({
          verb: route.verb,
          group: route.group,
          version: route.version,
          resource: route.resource,
          ...(route.subresource ? { subresource: route.subresource } : {}),
          ...(route.namespace !== undefined ? { namespace: route.namespace } : {}),
          ...(route.name !== undefined ? { name: route.name } : {}),
          status: call.status,
          ...(call.code ? { reason: call.code } : {}),
          ...(request.warnings.length > 0 ? { warnings: [...request.warnings] } : {}),
          ...(call.params ? { params: call.params } : {}),
          at: call.at,
          ms: call.ms,
        });
      },
    }),
  );

  const snapshot = <T extends KubeObject>(resource: Resource): T[] => structuredClone(cluster.list(resource)) as T[];

  return {
    url: server.url,
    tokens,
    launcher,
    labelNamespace(name, changes) {
      const ns = cluster.namespaceObjects.get(name);
      if (!ns) throw new Error(`no namespace ${name}`);
      const labels = ns.metadata.labels as Record<string, string>;
      for (const [key, value] of Object.entries(changes)) {
        if (value === null) delete labels[key];
        else labels[key] = value;
      }
    },
    kubeconfig: (o) => kubeconfig(server.url, o?.token ?? tokens.launcher, o?.namespace ?? launcher.namespace),
    calls,
    jobs: () => snapshot<JobObject>('jobs'),
    pods: () => snapshot<PodObject>('pods'),
    secrets: () => snapshot<SecretObject>('secrets'),
    events: () => snapshot<EventObject>('events'),
    nodes: () => structuredClone(cluster.nodeObjects) as KubeObject[],
    podLog(name, o = {}) {
      const pod = cluster.list('pods', o.namespace).find((p) => p.metadata.name === name);
      if (!pod) return '';
      const m = cluster.kubelet
        .machines()
        .find(
          (x) =>
            x.namespace === pod.metadata.namespace &&
            x.pod === name &&
            (o.container === undefined || x.container === o.container),
        );
      return m?.machine.console() ?? '';
    },
    leftovers: () => leftovers(cluster),
    ownsMachine: (m) => cluster.kubelet.owns(m),
    async close() {
      for (const res of watches) res.end();
      await server.close();
      await cluster.close(); // closes the timers: nothing fires into a closed fake
      if (ownsMachines) await machines.killAll();
    },
  };
}

/** Headers on every answer but a watch: an audit id, no caching, and the request's warnings. */
function headersOf(request: KubeRequest | undefined): Record<string, string> {
  const warnings = request?.warnings ?? [];
  return {
    'audit-id': randomUUID(),
    'cache-control': 'no-cache, private',
    ...(warnings.length > 0 ? { warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(', ') } : {}),
  };
}

/** The answer to a request that passed authentication, authorisation and faults. */
function answer(api: KubeApi, request: KubeRequest): Answer {
  const { parsed } = request;
  if (parsed.kind === 'discovery') {
    return {
      status: 200,
      body: parsed.text ?? JSON.stringify(parsed.body),
      headers: {
        'content-type': parsed.text ? 'text/plain; charset=utf-8' : 'application/json',
        ...headersOf(request),
      },
    };
  }
  if (parsed.kind === 'notFound') {
    if (parsed.status) throw parsed.status;
    return {
      status: 404,
      body: '404 page not found\n',
      headers: { 'content-type': 'text/plain; charset=utf-8', ...headersOf(request) },
    };
  }
  const result = api.handle(parsed.route, request.contentType, request.body, request.q, request.warnings);
  if (result.stream) return { status: result.status, write: result.stream };
  if (result.text !== undefined)
    return {
      status: result.status,
      body: result.text,
      headers: { 'content-type': 'text/plain', ...headersOf(request) },
    };
  return {
    status: result.status,
    body: JSON.stringify(result.body),
    headers: { 'content-type': 'application/json', ...headersOf(request) },
  };
}

function kubeconfig(server: string, token: string, namespace: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: sandbox',
    '  cluster:',
    `    server: ${server}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: sandbox-user',
    '  user:',
    `    token: ${JSON.stringify(token)}`,
    'contexts:',
    '- name: sandbox',
    '  context:',
    '    cluster: sandbox',
    '    user: sandbox-user',
    `    namespace: ${JSON.stringify(namespace)}`,
    'current-context: sandbox',
    '',
  ].join('\n');
}

function leftovers(cluster: Cluster): string[] {
  const lines: string[] = [];
  const labels = (o: Json): string => {
    const l = Object.entries((o.metadata.labels ?? {}) as Record<string, string>).filter(
      ([k]) => !/(^|\/)(controller-uid|job-name)$/.test(k),
    );
    return l.length > 0 ? `; labels ${l.map(([k, v]) => `${k}=${v}`).join(', ')}` : '';
  };
  for (const job of cluster.list('jobs')) {
    const done = (job.status?.conditions as Json[] | undefined)?.find(
      (c) => c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed'),
    );
    const state = job.metadata.deletionTimestamp
      ? 'being deleted'
      : done
        ? `${done.type}${done.reason ? ` (${done.reason})` : ''}`
        : `active ${job.status?.active ?? 0}`;
    lines.push(
      `Kubernetes Job ${job.metadata.namespace}/${job.metadata.name} is still present (${state})${labels(job)}`,
    );
  }
  const podsWithMachines = new Set<string>();
  for (const pod of cluster.list('pods')) {
    const running = cluster.kubelet
      .machines()
      .filter(
        (m) =>
          m.namespace === pod.metadata.namespace &&
          m.pod === pod.metadata.name &&
          (m.machine.running || m.machine.processes().length > 0),
      );
    if (running.length > 0) podsWithMachines.add(`${pod.metadata.namespace}/${pod.metadata.name}`);
    const owner = (pod.metadata.ownerReferences as Json[] | undefined)?.find((o) => o.controller);
    lines.push(
      `Kubernetes pod ${pod.metadata.namespace}/${pod.metadata.name} is still present (${pod.status?.phase ?? 'Pending'}${pod.spec.nodeName ? ` on ${pod.spec.nodeName}` : ''}${pod.metadata.deletionTimestamp ? ', being deleted' : ''}${owner ? `, owned by ${owner.kind} ${owner.name}` : ', no owner'}${running.length > 0 ? ', its container is running' : ''})`,
    );
  }
  for (const secret of cluster.list('secrets')) {
    const owner = (secret.metadata.ownerReferences as Json[] | undefined)?.[0];
    lines.push(
      `Kubernetes Secret ${secret.metadata.namespace}/${secret.metadata.name} is still present${owner ? ` (owned by ${owner.kind} ${owner.name})` : ''}`,
    );
  }
  for (const m of cluster.kubelet.machines()) {
    if (podsWithMachines.has(`${m.namespace}/${m.pod}`)) continue;
    const pids = m.machine.processes();
    if (pids.length > 0)
      lines.push(
        `Kubernetes container ${m.container} of pod ${m.namespace}/${m.pod} (gone) still has ${pids.length} process(es) running (pids ${pids.join(', ')})`,
      );
    else if (m.machine.running)
      lines.push(`Kubernetes container ${m.container} of pod ${m.namespace}/${m.pod} (gone) is still running`);
  }
  return lines;
}
