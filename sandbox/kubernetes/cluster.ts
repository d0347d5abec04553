/**
 * The cluster behind the fake API server: the object store (what etcd holds), the registry's
 * create/update/delete semantics, and the control plane that makes a Job live:
 *
 * - job controller: one pod per Job, status counters and conditions, activeDeadlineSeconds,
 *   backoffLimit (https://kubernetes.io/docs/concepts/workloads/controllers/job/);
 * - TTL-after-finished controller (https://kubernetes.io/docs/concepts/workloads/controllers/ttlafterfinished/);
 * - garbage collector: Background, Foreground and Orphan propagation through ownerReferences
 *   (https://kubernetes.io/docs/concepts/architecture/garbage-collection/);
 * - scheduler: node selectors, taints, requests against allocatable, and FailedScheduling in
 *   the scheduler's own format (https://kubernetes.io/docs/concepts/scheduling-eviction/kube-scheduler/).
 *
 * The kubelet (kubelet.ts) runs the pods' containers as sandbox machines.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Timers } from '../core/index.js';
import type { MachineFleet } from '../machine.js';
import { Kubelet } from './kubelet.js';
import { podSecurityViolation } from './podsecurity.js';
import { canonicalQuantity, parseQuantity, quantityValue } from './quantity.js';
import { type Json, type ResourceRef, alreadyExists, forbidden, notFound } from './status.js';

export type Resource = 'jobs' | 'pods' | 'secrets' | 'events';
export const REFS: Record<
  Resource | 'namespaces' | 'nodes',
  ResourceRef & { kind: string; apiVersion: string; listKind: string }
> = {
  jobs: { group: 'batch', resource: 'jobs', kind: 'Job', apiVersion: 'batch/v1', listKind: 'JobList' },
  pods: { group: '', resource: 'pods', kind: 'Pod', apiVersion: 'v1', listKind: 'PodList' },
  secrets: { group: '', resource: 'secrets', kind: 'Secret', apiVersion: 'v1', listKind: 'SecretList' },
  events: { group: '', resource: 'events', kind: 'Event', apiVersion: 'v1', listKind: 'EventList' },
  namespaces: { group: '', resource: 'namespaces', kind: 'Namespace', apiVersion: 'v1', listKind: 'NamespaceList' },
  nodes: { group: '', resource: 'nodes', kind: 'Node', apiVersion: 'v1', listKind: 'NodeList' },
};

export type WatchType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type Propagation = 'Orphan' | 'Background' | 'Foreground';

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface NodeSpec {
  name: string;
  labels?: Record<string, string>;
  /** Allocatable resources as quantities; `pods` defaults to 110. */
  allocatable: Record<string, string>;
  taints?: Taint[];
  /** The GPU model as `nvidia-smi` names it (`Tesla T4`); nodes with `nvidia.com/gpu` need one. */
  gpuModel?: string;
  /** Memory per GPU in MiB, for `nvidia-smi`. */
  gpuMemoryMiB?: number;
}

export const DEFAULT_NODES: readonly NodeSpec[] = [
  {
    name: 'sandbox-cpu-1',
    labels: { 'kubernetes.io/hostname': 'sandbox-cpu-1', 'kubernetes.io/arch': 'amd64', 'kubernetes.io/os': 'linux' },
    allocatable: { cpu: '8', memory: '32Gi', 'ephemeral-storage': '100Gi', pods: '110' },
  },
  {
    name: 'sandbox-gpu-1',
    labels: {
      'kubernetes.io/hostname': 'sandbox-gpu-1',
      'kubernetes.io/arch': 'amd64',
      'kubernetes.io/os': 'linux',
      'nvidia.com/gpu.product': 'Tesla-T4',
      'nvidia.com/gpu.count': '1',
    },
    allocatable: { cpu: '8', memory: '32Gi', 'ephemeral-storage': '100Gi', 'nvidia.com/gpu': '1', pods: '110' },
    taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }],
    gpuModel: 'Tesla T4',
    gpuMemoryMiB: 15360,
  },
];

export interface ClusterOptions {
  machines: MachineFleet;
  /** Length of a Kubernetes second (deadlines, TTLs, grace periods, back-offs) in ms. */
  secondMs: number;
  nodes: readonly NodeSpec[];
  runtimeClasses: readonly string[];
  namespaces: readonly string[];
  /** Labels of namespaces beyond `kubernetes.io/metadata.name` (Pod Security Admission's, say). */
  namespaceLabels?: Record<string, Record<string, string>>;
  unpullable: (image: string) => boolean;
  /** The stand-in runner tarball, for the `ghcr.io/actions/actions-runner` image. */
  runnerTarball?: () => Promise<Buffer>;
  /** The fake's timers (sandbox/core), closed when the fake closes. */
  timers: Timers;
}

const JOB_TRACKING = 'batch.kubernetes.io/job-tracking';
/** The alphabet of generated name suffixes (k8s.io/apimachinery/pkg/util/rand): no vowels, no look-alikes. */
const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** metav1.Time: RFC 3339, second precision. */
export const timestamp = (ms = Date.now()): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
/** metav1.MicroTime, as events.k8s.io events carry it. */
const microTimestamp = (ms = Date.now()): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export const isTerminal = (pod: Json): boolean => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
const condition = (obj: Json, type: string): Json | undefined =>
  (obj.status?.conditions as Json[] | undefined)?.find((c) => c.type === type && c.status === 'True');

export class Cluster {
  readonly secondMs: number;
  readonly kubelet: Kubelet;
  private readonly store: Record<Resource, Map<string, Json>> = {
    jobs: new Map(),
    pods: new Map(),
    secrets: new Map(),
    events: new Map(),
  };
  readonly namespaceObjects = new Map<string, Json>();
  readonly nodeObjects: Json[];
  readonly nodeSpecs: readonly NodeSpec[];
  private rv = 1000;
  /** The controllers' delayed work (deadlines, TTLs, back-offs, garbage collection); closed with the fake. */
  readonly timers: Timers;
  private readonly listeners = new Set<(resource: Resource, type: WatchType, obj: Json) => void>();
  private readonly jobRuntime = new Map<string, JobRuntime>();
  private readonly pendingSync = new Set<string>();
  private scheduling = false;
  /** Pods the scheduler found no node for, to retry when capacity frees. */
  private readonly unschedulable = new Set<string>();
  private podIps = 10;

  constructor(readonly opts: ClusterOptions) {
    this.secondMs = opts.secondMs;
    this.timers = opts.timers;
    this.nodeSpecs = opts.nodes;
    for (const ns of new Set([...opts.namespaces, 'kube-system', 'kube-public', 'kube-node-lease'])) {
      this.namespaceObjects.set(ns, {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: ns,
          uid: randomUUID(),
          resourceVersion: this.nextRv(),
          creationTimestamp: timestamp(),
          labels: { ...(opts.namespaceLabels?.[ns] ?? {}), 'kubernetes.io/metadata.name': ns },
        },
        spec: { finalizers: ['kubernetes'] },
        status: { phase: 'Active' },
      });
    }
    this.nodeObjects = opts.nodes.map((n, i) => this.nodeObject(n, i));
    this.kubelet = new Kubelet(this, opts);
  }

  // ------------------------------------------------------------------------------------------
  // Store

  private nextRv(): string {
    this.rv += 1;
    return String(this.rv);
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  onChange(listener: (resource: Resource, type: WatchType, obj: Json) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(resource: Resource, namespace: string, name: string): Json | undefined {
    return this.store[resource].get(`${namespace}/${name}`);
  }

  /** Objects of a resource, in one namespace or all, in the store's (etcd key) order. */
  list(resource: Resource, namespace?: string): Json[] {
    return [...this.store[resource].values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .sort((a, b) =>
        `${a.metadata.namespace}/${a.metadata.name}` < `${b.metadata.namespace}/${b.metadata.name}` ? -1 : 1,
      );
  }

  byUid(resource: Resource, uid: string): Json | undefined {
    for (const o of this.store[resource].values()) if (o.metadata.uid === uid) return o;
    return undefined;
  }

  /** Writes an object (new resourceVersion) and tells watchers. */
  put(resource: Resource, obj: Json): Json {
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const type: WatchType = this.store[resource].has(key) ? 'MODIFIED' : 'ADDED';
    obj.metadata.resourceVersion = this.nextRv();
    this.store[resource].set(key, obj);
    this.emit(resource, type, obj);
    return obj;
  }

  private drop(resource: Resource, obj: Json): void {
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    if (this.store[resource].get(key) !== obj) return;
    this.store[resource].delete(key);
    obj.metadata.resourceVersion = this.nextRv();
    this.emit(resource, 'DELETED', obj);
    this.afterRemoval(resource, obj);
  }

  private emit(resource: Resource, type: WatchType, obj: Json): void {
    for (const l of this.listeners) l(resource, type, obj);
  }

  namespaceExists(ns: string): boolean {
    return this.namespaceObjects.has(ns);
  }

  /** New object metadata as the registry fills it in on create. */
  stamp(obj: Json, resource: Resource, namespace: string): Json {
    const ref = REFS[resource];
    obj.apiVersion = ref.apiVersion;
    obj.kind = ref.kind;
    obj.metadata ??= {};
    const meta = obj.metadata as Json;
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${suffix()}`;
    meta.namespace = namespace;
    meta.uid = randomUUID();
    meta.creationTimestamp = timestamp();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.selfLink;
    delete meta.managedFields;
    if (resource === 'jobs' || resource === 'pods') meta.generation = 1;
    else delete meta.generation;
    return obj;
  }

  /** Stores a new object: 404 for an unknown namespace, 409 for a taken name. */
  create(resource: Resource, obj: Json): Json {
    const ns = obj.metadata.namespace as string;
    if (!this.namespaceExists(ns)) throw notFound(REFS.namespaces, ns);
    if (this.get(resource, ns, obj.metadata.name)) throw alreadyExists(REFS[resource], obj.metadata.name);
    this.put(resource, obj);
    this.afterWrite(resource, obj);
    return obj;
  }

  /** Stores a changed object (update or patch), bumping generation when a Job's spec changed. */
  replace(resource: Resource, obj: Json, specChanged: boolean): Json {
    if (specChanged && obj.metadata.generation !== undefined) obj.metadata.generation += 1;
    this.put(resource, obj);
    this.afterWrite(resource, obj);
    // An object that was waiting on finalizers goes once they are all gone.
    if (obj.metadata.deletionTimestamp && (obj.metadata.finalizers ?? []).length === 0) this.finalize(resource, obj);
    return obj;
  }

  private afterWrite(resource: Resource, obj: Json): void {
    if (resource === 'jobs') this.syncJobSoon(obj);
    if (resource === 'pods') this.scheduleSoon();
    // An owner reference to an owner that does not exist is a dependent the collector removes.
    if ((obj.metadata.ownerReferences ?? []).length > 0) this.timers.later(0, () => this.collectDangling());
    if (resource === 'secrets') this.kubelet.secretChanged();
  }

  /** The kubelet published a pod's status: the Job, the scheduler and a pending deletion hear of it. */
  podStatusChanged(pod: Json): void {
    if (this.get('pods', pod.metadata.namespace, pod.metadata.name) !== pod) return;
    this.put('pods', pod);
    this.syncOwnerOf(pod);
    if (isTerminal(pod)) this.capacityFreed();
    if (pod.metadata.deletionTimestamp) this.finalize('pods', pod);
  }

  // ------------------------------------------------------------------------------------------
  // Deletion and the garbage collector

  /**
   * A DELETE as the registry handles it. Returns the object's last state and whether it is gone
   * already (the server then answers 200) or still finalizing (202).
   */
  delete(resource: Resource, obj: Json, propagation: Propagation, graceSeconds?: number): { gone: boolean; obj: Json } {
    const meta = obj.metadata;
    if (meta.deletionTimestamp) {
      // Already being deleted: a second DELETE changes nothing but may shorten a pod's grace period.
      if (resource === 'pods' && graceSeconds !== undefined) this.kubelet.shortenGrace(obj, graceSeconds);
      return { gone: false, obj };
    }
    meta.finalizers ??= [];
    const finalizers = meta.finalizers as string[];
    if (propagation === 'Orphan' && this.dependentsOf(meta.uid).length > 0) finalizers.push('orphan');
    if (propagation === 'Foreground') finalizers.push('foregroundDeletion');
    if (finalizers.length === 0) delete meta.finalizers;

    if (resource === 'pods') {
      // A pod on a node is deleted gracefully: the kubelet stops its containers, then confirms.
      const grace =
        isTerminal(obj) || !obj.spec.nodeName ? 0 : (graceSeconds ?? obj.spec.terminationGracePeriodSeconds ?? 30);
      meta.deletionTimestamp = timestamp(Date.now() + grace * 1000);
      meta.deletionGracePeriodSeconds = grace;
      // A pod deleted before any node took it never runs: it ends Failed at once (the pod GC and
      // the Job controller count a deleted, unfinished pod as failed), so its Job can account for it.
      if (!obj.spec.nodeName && !isTerminal(obj)) obj.status = { ...obj.status, phase: 'Failed' };
      this.put('pods', obj);
      if (propagation === 'Background') this.timers.later(0, () => this.deleteDependents(meta.uid));
      this.kubelet.stopPod(obj, grace);
      this.syncOwnerOf(obj);
      if (grace === 0 && !meta.finalizers) {
        this.finalize('pods', obj);
        return { gone: true, obj };
      }
      return { gone: false, obj };
    }

    meta.deletionTimestamp = timestamp();
    meta.deletionGracePeriodSeconds = 0;
    if (!meta.finalizers) {
      this.drop(resource, obj);
      if (propagation === 'Background') this.timers.later(0, () => this.deleteDependents(meta.uid));
      return { gone: true, obj };
    }
    this.put(resource, obj);
    this.timers.later(0, () => this.collect(resource, obj));
    return { gone: false, obj };
  }

  /** Removes an object being deleted once nothing holds it (finalizers, a running pod). */
  finalize(resource: Resource, obj: Json): void {
    const current = this.get(resource, obj.metadata.namespace, obj.metadata.name);
    if (current !== obj || !obj.metadata.deletionTimestamp) return;
    if ((obj.metadata.finalizers ?? []).length > 0) return;
    if (resource === 'pods' && !this.kubelet.stopped(obj)) return;
    this.drop(resource, obj);
  }

  /** The collector's part of a deletion with the `orphan` or `foregroundDeletion` finalizer. */
  private collect(resource: Resource, obj: Json): void {
    const fins = (obj.metadata.finalizers ?? []) as string[];
    if (fins.includes('orphan')) {
      for (const { resource: r, obj: dep } of this.dependentsOf(obj.metadata.uid)) {
        dep.metadata.ownerReferences = (dep.metadata.ownerReferences as Json[]).filter(
          (o) => o.uid !== obj.metadata.uid,
        );
        if (dep.metadata.ownerReferences.length === 0) delete dep.metadata.ownerReferences;
        this.put(r, dep);
        if (r === 'pods') this.syncOrphanPod(dep);
      }
      this.removeFinalizer(resource, obj, 'orphan');
    }
    if (fins.includes('foregroundDeletion')) {
      this.deleteDependents(obj.metadata.uid);
      this.checkForeground(resource, obj);
    }
  }

  /** A foreground-deleted owner goes once no dependent with blockOwnerDeletion is left. */
  private checkForeground(resource: Resource, obj: Json): void {
    const blocking = this.dependentsOf(obj.metadata.uid).filter(({ obj: d }) =>
      (d.metadata.ownerReferences as Json[]).some((o) => o.uid === obj.metadata.uid && o.blockOwnerDeletion),
    );
    if (blocking.length === 0) this.removeFinalizer(resource, obj, 'foregroundDeletion');
  }

  removeFinalizer(resource: Resource, obj: Json, finalizer: string): void {
    if (this.get(resource, obj.metadata.namespace, obj.metadata.name) !== obj) return;
    const fins = ((obj.metadata.finalizers ?? []) as string[]).filter((f) => f !== finalizer);
    if (fins.length === (obj.metadata.finalizers ?? []).length) return;
    if (fins.length > 0) obj.metadata.finalizers = fins;
    else delete obj.metadata.finalizers;
    this.put(resource, obj);
    this.finalize(resource, obj);
  }

  dependentsOf(uid: string): Array<{ resource: Resource; obj: Json }> {
    const out: Array<{ resource: Resource; obj: Json }> = [];
    for (const resource of ['jobs', 'pods', 'secrets'] as const) {
      for (const obj of this.store[resource].values()) {
        if ((obj.metadata.ownerReferences as Json[] | undefined)?.some((o) => o.uid === uid))
          out.push({ resource, obj });
      }
    }
    return out;
  }

  /** Background deletion of dependents whose owners are all gone. */
  private deleteDependents(uid: string): void {
    for (const { resource, obj } of this.dependentsOf(uid)) {
      const owners = (obj.metadata.ownerReferences as Json[]).filter((o) => o.uid !== uid);
      if (owners.some((o) => this.ownerExists(obj.metadata.namespace, o))) {
        obj.metadata.ownerReferences = (obj.metadata.ownerReferences as Json[]).filter((o) => o.uid !== uid);
        this.put(resource, obj);
        continue;
      }
      this.delete(resource, obj, 'Background');
    }
  }

  private ownerExists(namespace: string, ref: Json): boolean {
    const resource = ownerResource(ref);
    if (!resource) return true; // A kind the collector cannot resolve is never treated as absent.
    const owner = this.get(resource, namespace, ref.name);
    return owner !== undefined && owner.metadata.uid === ref.uid;
  }

  /** The collector deletes objects whose owners (by uid) are all absent. */
  private collectDangling(): void {
    for (const resource of ['jobs', 'pods', 'secrets'] as const) {
      for (const obj of [...this.store[resource].values()]) {
        const refs = (obj.metadata.ownerReferences ?? []) as Json[];
        if (refs.length === 0 || obj.metadata.deletionTimestamp) continue;
        if (refs.every((r) => !this.ownerExists(obj.metadata.namespace, r))) this.delete(resource, obj, 'Background');
      }
    }
  }

  private afterRemoval(resource: Resource, obj: Json): void {
    // An owner waiting in the foreground for this dependent may now go.
    for (const ref of (obj.metadata.ownerReferences ?? []) as Json[]) {
      const r = ownerResource(ref);
      const owner = r && this.get(r, obj.metadata.namespace, ref.name);
      if (owner && owner.metadata.uid === ref.uid && (owner.metadata.finalizers ?? []).includes('foregroundDeletion'))
        this.checkForeground(r, owner);
    }
    if (resource === 'pods') {
      this.syncOwnerOf(obj);
      this.capacityFreed();
      this.kubelet.forget(obj);
    }
    if (resource === 'jobs') {
      const rt = this.jobRuntime.get(obj.metadata.uid);
      if (rt) for (const t of rt.timers) this.timers.cancel(t);
      this.jobRuntime.delete(obj.metadata.uid);
      // Pods the Job tracked keep its finalizer until the controller sees them orphaned.
      for (const pod of this.list('pods', obj.metadata.namespace)) this.syncOrphanPod(pod);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Events

  /**
   * Records an event on `involved`. Repeats of the same event are aggregated (core/v1 `count`,
   * or events.k8s.io `series` for the scheduler's), as the event recorders do.
   */
  recordEvent(
    involved: Json,
    e: {
      type: 'Normal' | 'Warning';
      reason: string;
      message: string;
      component: string;
      host?: string;
      fieldPath?: string;
      action?: string;
    },
  ): void {
    const ns = involved.metadata.namespace as string;
    const newStyle = e.action !== undefined;
    const existing = [...this.store.events.values()].find(
      (ev) =>
        ev.involvedObject.uid === involved.metadata.uid &&
        ev.reason === e.reason &&
        ev.message === e.message &&
        ev.reportingComponent === e.component &&
        ev.involvedObject.fieldPath === e.fieldPath,
    );
    if (existing) {
      if (newStyle) existing.series = { count: (existing.series?.count ?? 1) + 1, lastObservedTime: microTimestamp() };
      else {
        existing.count += 1;
        existing.lastTimestamp = timestamp();
      }
      this.put('events', existing);
      return;
    }
    const event: Json = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${involved.metadata.name}.${(BigInt(Date.now()) * 1_000_000n + BigInt(randomBytes(2).readUInt16BE())).toString(16)}`,
        namespace: ns,
        uid: randomUUID(),
        creationTimestamp: timestamp(),
      },
      involvedObject: {
        kind: involved.kind,
        namespace: ns,
        name: involved.metadata.name,
        uid: involved.metadata.uid,
        apiVersion: involved.apiVersion,
        resourceVersion: involved.metadata.resourceVersion,
        ...(e.fieldPath ? { fieldPath: e.fieldPath } : {}),
      },
      reason: e.reason,
      message: e.message,
      type: e.type,
      reportingComponent: e.component,
      reportingInstance: e.host ?? (newStyle ? `${e.component}-sandbox-control-plane` : ''),
    };
    if (newStyle) {
      Object.assign(event, {
        source: {},
        firstTimestamp: null,
        lastTimestamp: null,
        eventTime: microTimestamp(),
        action: e.action,
      });
    } else {
      Object.assign(event, {
        source: { component: e.component, ...(e.host ? { host: e.host } : {}) },
        firstTimestamp: timestamp(),
        lastTimestamp: timestamp(),
        count: 1,
        eventTime: null,
      });
    }
    this.put('events', event);
  }

  // ------------------------------------------------------------------------------------------
  // Job controller

  /** Runs the Job's sync soon, once, however many changes asked for it. */
  syncJobSoon(job: Json): void {
    const key = `${job.metadata.namespace}/${job.metadata.name}`;
    if (this.pendingSync.has(key)) return;
    this.pendingSync.add(key);
    this.timers.later(0, () => {
      this.pendingSync.delete(key);
      const current = this.get('jobs', job.metadata.namespace, job.metadata.name);
      if (current) this.syncJob(current);
    });
  }

  private syncOwnerOf(pod: Json): void {
    const ref = (pod.metadata.ownerReferences as Json[] | undefined)?.find((o) => o.controller && o.kind === 'Job');
    const job = ref && this.get('jobs', pod.metadata.namespace, ref.name);
    if (job && job.metadata.uid === ref.uid) this.syncJobSoon(job);
    else if (this.get('pods', pod.metadata.namespace, pod.metadata.name) === pod) this.syncOrphanPod(pod);
  }

  /** A tracked pod whose Job is gone loses the tracking finalizer (the controller's orphan cleanup). */
  private syncOrphanPod(pod: Json): void {
    if (!(pod.metadata.finalizers ?? []).includes(JOB_TRACKING)) return;
    const ref = (pod.metadata.ownerReferences as Json[] | undefined)?.find((o) => o.controller && o.kind === 'Job');
    const job = ref && this.get('jobs', pod.metadata.namespace, ref.name);
    if (job && job.metadata.uid === ref.uid && !job.metadata.deletionTimestamp) return;
    this.timers.later(0, () => this.removeFinalizer('pods', pod, JOB_TRACKING));
  }

  private runtimeOf(job: Json): JobRuntime {
    let rt = this.jobRuntime.get(job.metadata.uid);
    if (!rt) {
      rt = { counted: new Set(), succeeded: 0, failed: 0, createFailures: 0, timers: [] };
      this.jobRuntime.set(job.metadata.uid, rt);
    }
    return rt;
  }

  private podsOf(job: Json): Json[] {
    return this.list('pods', job.metadata.namespace).filter((p) =>
      (p.metadata.ownerReferences as Json[] | undefined)?.some((o) => o.controller && o.uid === job.metadata.uid),
    );
  }

  private syncJob(job: Json): void {
    if (this.timers.isClosed) return;
    const rt = this.runtimeOf(job);
    const spec = job.spec as Json;
    job.status ??= {};
    const status = job.status as Json;
    const before = JSON.stringify(status);
    const pods = this.podsOf(job);

    // Terminal pods are counted once; then the tracking finalizer can go.
    for (const pod of pods) {
      if (!isTerminal(pod)) continue;
      if (!rt.counted.has(pod.metadata.uid)) {
        rt.counted.add(pod.metadata.uid);
        if (pod.status.phase === 'Succeeded') rt.succeeded += 1;
        else rt.failed += 1;
      }
      if ((pod.metadata.finalizers ?? []).includes(JOB_TRACKING))
        this.timers.later(0, () => this.removeFinalizer('pods', pod, JOB_TRACKING));
    }
    const running = pods.filter((p) => !isTerminal(p));
    const active = running.filter((p) => !p.metadata.deletionTimestamp);
    const terminating = running.filter((p) => p.metadata.deletionTimestamp);
    const finished = condition(job, 'Complete') ?? condition(job, 'Failed');

    if (!finished && !job.metadata.deletionTimestamp) {
      if (spec.suspend) {
        if (!condition(job, 'Suspended')) {
          addCondition(job, 'Suspended', 'JobSuspended', 'Job suspended');
          this.recordEvent(job, {
            type: 'Normal',
            reason: 'Suspended',
            message: 'Job suspended',
            component: 'job-controller',
          });
        }
        for (const pod of active) this.deleteJobPod(job, pod);
      } else {
        if (condition(job, 'Suspended')) {
          job.status.conditions = (job.status.conditions as Json[]).filter((c) => c.type !== 'Suspended');
          this.recordEvent(job, {
            type: 'Normal',
            reason: 'Resumed',
            message: 'Job resumed',
            component: 'job-controller',
          });
        }
        if (!status.startTime) {
          status.startTime = timestamp();
          rt.startedAt = Date.now();
        }
        rt.startedAt ??= Date.parse(status.startTime);
        this.armDeadline(job, rt);
        const target = condition(job, 'FailureTarget') ?? condition(job, 'SuccessCriteriaMet');
        if (!target) {
          const restarts = active.reduce(
            (n, p) =>
              n + ((p.status?.containerStatuses ?? []) as Json[]).reduce((m, c) => m + (c.restartCount ?? 0), 0),
            0,
          );
          const deadline = spec.activeDeadlineSeconds;
          if (deadline !== undefined && Date.now() - rt.startedAt! >= deadline * this.secondMs) {
            this.failJob(job, active, 'DeadlineExceeded', 'Job was active longer than specified deadline');
          } else if (rt.failed + restarts > (spec.backoffLimit ?? 6)) {
            this.failJob(job, active, 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
          } else if (rt.succeeded >= (spec.completions ?? 1)) {
            addCondition(job, 'SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods');
            for (const pod of active) this.deleteJobPod(job, pod);
          } else if (
            active.length + terminating.length <
            Math.min(spec.parallelism ?? 1, (spec.completions ?? 1) - rt.succeeded)
          ) {
            this.createJobPod(job, rt);
          }
        }
      }
    }

    const nowActive = this.podsOf(job).filter((p) => !isTerminal(p));
    const failureTarget = condition(job, 'FailureTarget');
    const successTarget = condition(job, 'SuccessCriteriaMet');
    // Since v1.31 the terminal condition waits until every pod of the Job has terminated.
    if (!finished && nowActive.length === 0) {
      if (failureTarget) {
        addCondition(job, 'Failed', failureTarget.reason, failureTarget.message);
        rt.finishedAt = Date.now();
      } else if (successTarget) {
        addCondition(job, 'Complete', successTarget.reason, successTarget.message);
        status.completionTime = timestamp();
        rt.finishedAt = Date.now();
        this.recordEvent(job, {
          type: 'Normal',
          reason: 'Completed',
          message: 'Job completed',
          component: 'job-controller',
        });
      }
    }

    const podsNow = this.podsOf(job);
    const live = podsNow.filter((p) => !isTerminal(p) && !p.metadata.deletionTimestamp);
    setCounter(status, 'active', live.length);
    status.ready = live.filter((p) =>
      (p.status?.conditions as Json[] | undefined)?.some((c) => c.type === 'Ready' && c.status === 'True'),
    ).length;
    status.terminating = podsNow.filter((p) => !isTerminal(p) && p.metadata.deletionTimestamp).length;
    setCounter(status, 'succeeded', rt.succeeded);
    setCounter(status, 'failed', rt.failed);
    status.uncountedTerminatedPods = {};
    if (JSON.stringify(status) !== before) this.put('jobs', job);

    const done = condition(job, 'Complete') ?? condition(job, 'Failed');
    if (done) this.armTtl(job, rt, Date.parse(done.lastTransitionTime));
  }

  private failJob(job: Json, active: Json[], reason: string, message: string): void {
    addCondition(job, 'FailureTarget', reason, message);
    for (const pod of active) this.deleteJobPod(job, pod);
    this.recordEvent(job, { type: 'Warning', reason, message, component: 'job-controller' });
  }

  private deleteJobPod(job: Json, pod: Json): void {
    this.delete('pods', pod, 'Background');
    this.recordEvent(job, {
      type: 'Normal',
      reason: 'SuccessfulDelete',
      message: `Deleted pod: ${pod.metadata.name}`,
      component: 'job-controller',
    });
  }

  private armDeadline(job: Json, rt: JobRuntime): void {
    const deadline = job.spec.activeDeadlineSeconds;
    if (deadline === undefined || rt.deadlineArmed) return;
    rt.deadlineArmed = true;
    const at = rt.startedAt! + deadline * this.secondMs;
    rt.timers.push(this.timers.later(Math.max(0, at - Date.now()) + 1, () => this.syncJobSoon(job)));
  }

  private armTtl(job: Json, rt: JobRuntime, finishedAt: number): void {
    const ttl = job.spec.ttlSecondsAfterFinished;
    if (ttl === undefined || rt.ttlArmed) return;
    rt.ttlArmed = true;
    const at = (rt.finishedAt ?? finishedAt) + ttl * this.secondMs;
    rt.timers.push(
      this.timers.later(Math.max(0, at - Date.now()), () => {
        const current = this.get('jobs', job.metadata.namespace, job.metadata.name);
        // The TTL controller deletes the Job with Background propagation: its pods and owned objects go too.
        if (current && current.metadata.uid === job.metadata.uid && !current.metadata.deletionTimestamp)
          this.delete('jobs', current, 'Background');
      }),
    );
  }

  private createJobPod(job: Json, rt: JobRuntime): void {
    if (rt.creating) return;
    // After failures, the controller waits (10 s, doubling, at most 6 min) before the next pod.
    const failures = rt.failed + rt.createFailures;
    const wait = failures === 0 ? 0 : Math.min(10 * 2 ** (failures - 1), 360) * this.secondMs;
    const since = Date.now() - (rt.lastFailureAt ?? 0);
    if (wait > since) {
      rt.creating = true;
      rt.timers.push(
        this.timers.later(wait - since, () => {
          rt.creating = false;
          this.syncJobSoon(job);
        }),
      );
      return;
    }
    const template = job.spec.template as Json;
    const spec = structuredClone(template.spec) as Json;
    const name = `${job.metadata.name}-${suffix()}`;
    const runtimeClass = spec.runtimeClassName as string | undefined;
    // The RuntimeClass admission plugin, then Pod Security Admission, may reject the pod; the Job
    // controller reports it in an event and tries again later.
    const refusal =
      runtimeClass !== undefined && !this.opts.runtimeClasses.includes(runtimeClass)
        ? `pod rejected: RuntimeClass "${runtimeClass}" not found`
        : podSecurityViolation(this.namespaceObjects.get(job.metadata.namespace)?.metadata.labels ?? {}, { spec });
    if (refusal !== undefined) {
      const err = forbidden(REFS.pods, `${job.metadata.name}-`, refusal);
      this.recordEvent(job, {
        type: 'Warning',
        reason: 'FailedCreate',
        message: `Error creating: ${err.message}`,
        component: 'job-controller',
      });
      rt.createFailures += 1;
      rt.lastFailureAt = Date.now();
      this.syncJobSoon(job);
      return;
    }
    // What admission adds to every pod: the service account and the default NoExecute tolerations.
    spec.serviceAccountName ||= 'default';
    spec.serviceAccount ||= spec.serviceAccountName;
    spec.priority ??= 0;
    spec.preemptionPolicy ||= 'PreemptLowerPriority';
    spec.tolerations ??= [];
    const tolerations = spec.tolerations as Json[];
    for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
      if (!tolerations.some((t) => t.key === key && t.effect === 'NoExecute'))
        tolerations.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
    }
    const pod: Json = {
      metadata: {
        name,
        generateName: `${job.metadata.name}-`,
        labels: { ...template.metadata?.labels },
        ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: job.metadata.name,
            uid: job.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
        finalizers: [JOB_TRACKING],
      },
      spec,
      status: { phase: 'Pending', qosClass: qosClass(spec) },
    };
    this.stamp(pod, 'pods', job.metadata.namespace);
    this.create('pods', pod);
    this.recordEvent(job, {
      type: 'Normal',
      reason: 'SuccessfulCreate',
      message: `Created pod: ${name}`,
      component: 'job-controller',
    });
  }

  // ------------------------------------------------------------------------------------------
  // Scheduler

  scheduleSoon(): void {
    if (this.scheduling) return;
    this.scheduling = true;
    this.timers.later(0, () => {
      this.scheduling = false;
      this.schedulePending();
    });
  }

  /** Something left a node: pods that did not fit get another try, as the scheduler's queue does. */
  private capacityFreed(): void {
    if (this.unschedulable.size === 0) return;
    this.unschedulable.clear();
    this.scheduleSoon();
  }

  private schedulePending(): void {
    if (this.timers.isClosed) return;
    const pending = this.list('pods')
      .filter(
        (p) =>
          !p.spec.nodeName &&
          !p.metadata.deletionTimestamp &&
          !isTerminal(p) &&
          !this.unschedulable.has(p.metadata.uid),
      )
      .sort((a, b) => (a.metadata.creationTimestamp < b.metadata.creationTimestamp ? -1 : 1));
    for (const pod of pending) this.schedule(pod);
  }

  private schedule(pod: Json): void {
    const requests = podRequests(pod.spec);
    const reasons = new Map<string, { reasons: string[]; resolvable: boolean }>();
    let chosen: Json | undefined;
    let best = -1;
    for (const node of this.nodeObjects) {
      const verdict = this.filter(pod, node, requests);
      if (verdict) {
        reasons.set(node.metadata.name, verdict);
        continue;
      }
      // Spread by free CPU, as the default scoring roughly does.
      const free = this.free(node).cpu ?? 0;
      if (free > best) {
        best = free;
        chosen = node;
      }
    }
    if (!chosen) {
      const message = fitErrorMessage(this.nodeObjects.length, [...reasons.values()]);
      this.unschedulable.add(pod.metadata.uid);
      setPodCondition(pod, 'PodScheduled', 'False', 'Unschedulable', message);
      this.put('pods', pod);
      this.recordEvent(pod, {
        type: 'Warning',
        reason: 'FailedScheduling',
        message,
        component: 'default-scheduler',
        action: 'Scheduling',
      });
      return;
    }
    pod.spec.nodeName = chosen.metadata.name;
    setPodCondition(pod, 'PodScheduled', 'True');
    this.put('pods', pod);
    this.recordEvent(pod, {
      type: 'Normal',
      reason: 'Scheduled',
      message: `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${chosen.metadata.name}`,
      component: 'default-scheduler',
      action: 'Binding',
    });
    this.kubelet.podBound(pod, this.nodeSpecs.find((n) => n.name === chosen!.metadata.name)!);
  }

  /**
   * Why a pod does not fit a node, as the first failing filter plugin says it (TaintToleration,
   * then NodeAffinity, then NodeResourcesFit), or undefined when it fits.
   */
  private filter(
    pod: Json,
    node: Json,
    requests: Record<string, number>,
  ): { reasons: string[]; resolvable: boolean } | undefined {
    const taint = ((node.spec.taints ?? []) as Taint[]).find(
      (t) =>
        (t.effect === 'NoSchedule' || t.effect === 'NoExecute') &&
        !((pod.spec.tolerations ?? []) as Json[]).some((tol) => tolerates(tol, t)),
    );
    if (taint)
      return { reasons: [`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`], resolvable: false };
    if (!matchesNodeSelector(pod.spec, node.metadata.labels ?? {}))
      return { reasons: ["node(s) didn't match Pod's node affinity/selector"], resolvable: false };
    const free = this.free(node);
    const reasons: string[] = [];
    if ((free.pods ?? 0) < 1) reasons.push('Too many pods');
    for (const [name, amount] of Object.entries(requests)) {
      if (amount > 0 && amount > (free[name] ?? 0) + 1e-9) reasons.push(`Insufficient ${name}`);
    }
    return reasons.length > 0 ? { reasons, resolvable: true } : undefined;
  }

  /** Allocatable minus the requests of the pods bound to the node that have not terminated. */
  private free(node: Json): Record<string, number> {
    const free: Record<string, number> = {};
    for (const [k, v] of Object.entries(node.status.allocatable as Record<string, string>))
      free[k] = quantityValue(parseQuantity(v)!);
    for (const pod of this.list('pods')) {
      if (pod.spec.nodeName !== node.metadata.name || isTerminal(pod)) continue;
      for (const [k, v] of Object.entries(podRequests(pod.spec))) free[k] = (free[k] ?? 0) - v;
      free.pods = (free.pods ?? 0) - 1;
    }
    return free;
  }

  podIp(): string {
    this.podIps += 1;
    return `10.244.${Math.floor(this.podIps / 250)}.${this.podIps % 250}`;
  }

  private nodeObject(n: NodeSpec, i: number): Json {
    const allocatable = { pods: '110', ...n.allocatable };
    const canonical = Object.fromEntries(
      Object.entries(allocatable).map(([k, v]) => [k, canonicalQuantity(parseQuantity(v)!)]),
    );
    const arch = n.labels?.['kubernetes.io/arch'] ?? 'amd64';
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: n.name,
        uid: randomUUID(),
        resourceVersion: this.nextRv(),
        creationTimestamp: timestamp(),
        labels: {
          'kubernetes.io/hostname': n.name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': arch,
          ...n.labels,
        },
      },
      spec: {
        ...(n.taints?.length
          ? {
              taints: n.taints.map((t) => ({
                key: t.key,
                ...(t.value !== undefined ? { value: t.value } : {}),
                effect: t.effect,
              })),
            }
          : {}),
      },
      status: {
        capacity: canonical,
        allocatable: canonical,
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'kubelet is posting ready status',
            lastHeartbeatTime: timestamp(),
            lastTransitionTime: timestamp(),
          },
        ],
        addresses: [
          { type: 'InternalIP', address: `10.0.0.${11 + i}` },
          { type: 'Hostname', address: n.name },
        ],
        nodeInfo: {
          architecture: arch,
          operatingSystem: 'linux',
          osImage: 'Ubuntu 24.04.2 LTS',
          kernelVersion: '6.8.0-1016-aws',
          containerRuntimeVersion: 'containerd://2.0.5',
          kubeletVersion: 'v1.34.1',
          kubeProxyVersion: '',
          machineID: randomBytes(16).toString('hex'),
          systemUUID: randomUUID(),
          bootID: randomUUID(),
        },
      },
    };
  }

  hostIp(nodeName: string): string {
    const node = this.nodeObjects.find((n) => n.metadata.name === nodeName);
    return (node?.status.addresses as Json[] | undefined)?.find((a) => a.type === 'InternalIP')?.address ?? '10.0.0.10';
  }

  // ------------------------------------------------------------------------------------------
  // Timers and shutdown

  get isClosed(): boolean {
    return this.timers.isClosed;
  }

  async close(): Promise<void> {
    this.timers.close();
    await this.kubelet.close();
  }
}

interface JobRuntime {
  counted: Set<string>;
  succeeded: number;
  failed: number;
  createFailures: number;
  lastFailureAt?: number;
  creating?: boolean;
  startedAt?: number;
  finishedAt?: number;
  deadlineArmed?: boolean;
  ttlArmed?: boolean;
  timers: NodeJS.Timeout[];
}

function suffix(): string {
  const bytes = randomBytes(5);
  return [...bytes].map((b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join('');
}

function ownerResource(ref: Json): Resource | undefined {
  if (ref.apiVersion === 'batch/v1' && ref.kind === 'Job') return 'jobs';
  if (ref.apiVersion === 'v1' && ref.kind === 'Pod') return 'pods';
  if (ref.apiVersion === 'v1' && ref.kind === 'Secret') return 'secrets';
  return undefined;
}

function setCounter(status: Json, key: string, n: number): void {
  if (n > 0) status[key] = n;
  else delete status[key];
}

function addCondition(job: Json, type: string, reason: string, message: string): void {
  job.status.conditions ??= [];
  const conditions = job.status.conditions as Json[];
  if (conditions.some((c) => c.type === type)) return;
  conditions.push({
    type,
    status: 'True',
    lastProbeTime: timestamp(),
    lastTransitionTime: timestamp(),
    reason,
    message,
  });
}

export function setPodCondition(
  pod: Json,
  type: string,
  status: 'True' | 'False',
  reason?: string,
  message?: string,
): void {
  pod.status.conditions ??= [];
  const conditions = pod.status.conditions as Json[];
  const existing = conditions.find((c) => c.type === type);
  const next: Json = {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime: existing && existing.status === status ? existing.lastTransitionTime : timestamp(),
  };
  if (reason) next.reason = reason;
  if (message) next.message = message;
  if (existing) {
    for (const k of Object.keys(existing)) delete existing[k];
    Object.assign(existing, next);
  } else conditions.push(next);
}

/** A pod's requests per resource (requests default to limits), plus its overhead. */
export function podRequests(spec: Json): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of (spec.containers ?? []) as Json[]) {
    const req = { ...c.resources?.limits, ...c.resources?.requests } as Record<string, string>;
    for (const [k, v] of Object.entries(req)) out[k] = (out[k] ?? 0) + quantityValue(parseQuantity(v)!);
  }
  for (const [k, v] of Object.entries((spec.overhead ?? {}) as Record<string, string>))
    out[k] = (out[k] ?? 0) + quantityValue(parseQuantity(v)!);
  return out;
}

function qosClass(spec: Json): string {
  const containers = (spec.containers ?? []) as Json[];
  const guaranteed = containers.every((c) => {
    const limits = c.resources?.limits ?? {};
    const requests = { ...limits, ...c.resources?.requests };
    return ['cpu', 'memory'].every((r) => limits[r] !== undefined && requests[r] === limits[r]);
  });
  if (guaranteed) return 'Guaranteed';
  const any = containers.some(
    (c) => Object.keys(c.resources?.limits ?? {}).length > 0 || Object.keys(c.resources?.requests ?? {}).length > 0,
  );
  return any ? 'Burstable' : 'BestEffort';
}

function tolerates(tol: Json, taint: Taint): boolean {
  if (tol.effect && tol.effect !== taint.effect) return false;
  if (!tol.key) return tol.operator === 'Exists';
  if (tol.key !== taint.key) return false;
  return tol.operator === 'Exists' || (tol.value ?? '') === (taint.value ?? '');
}

/** nodeSelector, and the required node affinity's matchExpressions (In, NotIn, Exists, DoesNotExist, Gt, Lt). */
function matchesNodeSelector(spec: Json, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries((spec.nodeSelector ?? {}) as Record<string, string>))
    if (labels[k] !== v) return false;
  const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms as
    | Json[]
    | undefined;
  if (!terms || terms.length === 0) return true;
  return terms.some((term) =>
    ((term.matchExpressions ?? []) as Json[]).every((e) => {
      const v = labels[e.key];
      const values = (e.values ?? []) as string[];
      switch (e.operator) {
        case 'In':
          return v !== undefined && values.includes(v);
        case 'NotIn':
          return v === undefined || !values.includes(v);
        case 'Exists':
          return v !== undefined;
        case 'DoesNotExist':
          return v === undefined;
        case 'Gt':
          return v !== undefined && Number(v) > Number(values[0]);
        case 'Lt':
          return v !== undefined && Number(v) < Number(values[0]);
        default:
          return false;
      }
    }),
  );
}

/**
 * The scheduler's FitError message (pkg/scheduler/framework/types.go, v1.34): a histogram of
 * reasons, `"%v %v"` (count, reason), sorted as strings and joined with ", ", then the
 * DefaultPreemption post-filter's message, built the same way and prefixed `preemption: `.
 * Each part is appended with the separator format `" %v."`; the preemption message already
 * ends in a period, hence the `..` at the end, as real clusters print it.
 */
export function fitErrorMessage(nodeCount: number, perNode: Array<{ reasons: string[]; resolvable: boolean }>): string {
  if (nodeCount === 0) return 'no nodes available to schedule pods';
  const histogram = (reasons: string[]): string => {
    const counts = new Map<string, number>();
    for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
    return [...counts.entries()]
      .map(([r, n]) => `${n} ${r}`)
      .sort()
      .join(', ');
  };
  const filter = histogram(perNode.flatMap((n) => n.reasons));
  // Removing lower-priority pods cannot help where the node is ruled out by taints or selectors;
  // elsewhere there is nothing to preempt (the sandbox's pods all have priority 0).
  const preemption = histogram(
    perNode.map((n) =>
      n.resolvable ? 'No preemption victims found for incoming pod' : 'Preemption is not helpful for scheduling',
    ),
  );
  return `0/${nodeCount} nodes are available: ${filter}. preemption: 0/${nodeCount} nodes are available: ${preemption}..`;
}
