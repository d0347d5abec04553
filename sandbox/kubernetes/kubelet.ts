/**
 * The fake kubelet: runs a bound pod's containers as sandbox machines (machine.ts, `container:
 * true`), with the steps and events of a real node: volumes (FailedMount), image pulls
 * (Pulling/Pulled, ErrImagePull → ImagePullBackOff), container config (secretKeyRef →
 * CreateContainerConfigError), Created/Started, exit codes, and graceful stops (Killing, SIGTERM
 * to the main process, SIGKILL after terminationGracePeriodSeconds).
 * https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/
 *
 * A container cannot be chrooted here, so paths are mapped: in `command`, `args` and literal
 * env values, an absolute path under a volume's mountPath or under a path the image provides
 * becomes `<machine root>` + path. Volumes are written under `<root><mountPath>`.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Machine } from '../machine.js';
import { type Cluster, type ClusterOptions, type NodeSpec, isTerminal, setPodCondition, timestamp } from './cluster.js';
import { parseQuantity, quantityValue } from './quantity.js';
import { ApiError, type Json, badRequest } from './status.js';

/** The official runner image keeps the runner in /home/runner (actions/runner images/Dockerfile). */
const RUNNER_IMAGE = 'ghcr.io/actions/actions-runner';
const RUNNER_HOME = '/home/runner';

interface ContainerRun {
  name: string;
  machine?: Machine;
  startedAt?: string;
  restarts: number;
  /** Console of the previous run (for `previous=true` logs). */
  previousLog?: string;
  finished: boolean;
  exitCode?: number;
}

interface PodRun {
  uid: string;
  namespace: string;
  name: string;
  node: NodeSpec;
  containers: ContainerRun[];
  stopping: boolean;
  /** No container is running or will start: the pod object may go once deleted. */
  done: boolean;
  wake?: () => void;
}

export class Kubelet {
  private readonly runs = new Map<string, PodRun>();
  private readonly pulled = new Map<string, Set<string>>();
  private readonly rootfs = new Map<string, Promise<string | undefined>>();
  private readonly booted = new Map<Machine, { namespace: string; pod: string; container: string }>();
  private cacheDir: string | undefined;
  /** Where the runner image's filesystem was unpacked, once it was first pulled. */
  private runnerRootfs: string | undefined;
  private readonly secondMs: number;

  constructor(
    private readonly cluster: Cluster,
    private readonly opts: ClusterOptions,
  ) {
    this.secondMs = opts.secondMs;
  }

  // ------------------------------------------------------------------------------------------
  // What the cluster tells the kubelet

  podBound(pod: Json, node: NodeSpec): void {
    const run: PodRun = {
      uid: pod.metadata.uid,
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      node,
      containers: ((pod.spec.containers ?? []) as Json[]).map((c) => ({ name: c.name, restarts: 0, finished: false })),
      stopping: false,
      done: false,
    };
    this.runs.set(run.uid, run);
    void this.run(run).catch((err: unknown) => {
      // A kubelet bug must not take the test process down; it shows in the pod's events.
      this.event(run, 'Warning', 'SandboxKubeletError', String(err));
    });
  }

  /** Any Secret changed: pods waiting for one look again now. */
  secretChanged(): void {
    for (const run of this.runs.values()) run.wake?.();
  }

  /** The pod is being deleted: stop its containers (SIGTERM, SIGKILL after the grace period). */
  stopPod(pod: Json, graceSeconds: number): void {
    const run = this.runs.get(pod.metadata.uid);
    if (!run || run.stopping) return;
    run.stopping = true;
    run.wake?.();
    const running = run.containers.filter((c) => c.machine?.running);
    if (running.length === 0) {
      this.finishStopped(run);
      return;
    }
    const graceMs = graceSeconds * this.secondMs;
    for (const c of running) {
      this.event(run, 'Normal', 'Killing', `Stopping container ${c.name}`, c.name);
      void c.machine!.kill({ graceMs });
    }
  }

  /** A second DELETE with a shorter grace period: the sandbox keeps the first one. */
  shortenGrace(_pod: Json, _graceSeconds: number): void {}

  /** Whether the kubelet is done with a pod (nothing runs, nothing will), so it may be removed. */
  stopped(pod: Json): boolean {
    const run = this.runs.get(pod.metadata.uid);
    return !run || run.done;
  }

  forget(pod: Json): void {
    this.runs.delete(pod.metadata.uid);
  }

  /** Machines this kubelet booted, with the pod they belong to. */
  machines(): Array<{ machine: Machine; pod: string; namespace: string; container: string }> {
    return [...this.booted].map(([machine, where]) => ({ machine, ...where }));
  }

  owns(m: Machine): boolean {
    return this.booted.has(m);
  }

  async close(): Promise<void> {
    for (const run of this.runs.values()) {
      run.stopping = true;
      run.wake?.();
    }
    await Promise.all([...this.booted.keys()].map((m) => m.kill({ graceMs: 0 })));
    if (this.cacheDir) fs.rmSync(this.cacheDir, { recursive: true, force: true });
  }

  // ------------------------------------------------------------------------------------------
  // The pod's life on the node

  private current(run: PodRun): Json | undefined {
    const pod = this.cluster.get('pods', run.namespace, run.name);
    return pod && pod.metadata.uid === run.uid ? pod : undefined;
  }

  private alive(run: PodRun): boolean {
    return !run.stopping && !this.cluster.isClosed && this.current(run) !== undefined;
  }

  /** Changes the pod's status and publishes it (the kubelet's status manager). */
  private update(run: PodRun, mutate: (pod: Json) => void): void {
    const pod = this.current(run);
    if (!pod) return;
    pod.status ??= {};
    mutate(pod);
    this.cluster.podStatusChanged(pod);
  }

  /** An event on the pod (on one of its containers when `container` is given), from this node's kubelet. */
  private event(run: PodRun, type: 'Normal' | 'Warning', reason: string, message: string, container?: string): void {
    const pod = this.current(run);
    if (!pod) return;
    this.cluster.recordEvent(pod, {
      type,
      reason,
      message,
      component: 'kubelet',
      host: run.node.name,
      ...(container ? { fieldPath: `spec.containers{${container}}` } : {}),
    });
  }

  /** Waits `ms`, or less when the pod is stopped or a Secret changes. */
  private pause(run: PodRun, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.cluster.timers.later(ms, () => done());
      const done = (): void => {
        this.cluster.timers.cancel(timer);
        if (run.wake === done) run.wake = undefined;
        resolve();
      };
      run.wake = done;
    });
  }

  private setWaiting(run: PodRun, container: string, reason: string, message?: string): void {
    this.update(run, (p) => {
      const cs = ((p.status.containerStatuses ?? []) as Json[]).find((c) => c.name === container);
      if (cs) cs.state = { waiting: { reason, ...(message ? { message } : {}) } };
    });
  }

  private async run(run: PodRun): Promise<void> {
    const pod = this.current(run);
    if (!pod) return;
    const containers = pod.spec.containers as Json[];
    const names = containers.map((c) => c.name).join(' ');
    this.update(run, (p) => {
      p.status.phase = 'Pending';
      p.status.hostIP = this.cluster.hostIp(run.node.name);
      p.status.hostIPs = [{ ip: p.status.hostIP }];
      p.status.startTime = timestamp();
      setPodCondition(p, 'PodReadyToStartContainers', 'False');
      setPodCondition(p, 'Initialized', 'True');
      setPodCondition(p, 'Ready', 'False', 'ContainersNotReady', `containers with unready status: [${names}]`);
      setPodCondition(
        p,
        'ContainersReady',
        'False',
        'ContainersNotReady',
        `containers with unready status: [${names}]`,
      );
      sortConditions(p);
      p.status.containerStatuses = containers.map((c) => ({
        name: c.name,
        state: { waiting: { reason: 'ContainerCreating' } },
        lastState: {},
        ready: false,
        restartCount: 0,
        image: c.image,
        imageID: '',
        started: false,
      }));
    });

    // Volumes first: a container never starts without them.
    for (;;) {
      const problem = this.mountProblem(this.current(run) ?? pod);
      if (!problem) break;
      this.event(
        run,
        'Warning',
        'FailedMount',
        `MountVolume.SetUp failed for volume "${problem.volume}" : ${problem.message}`,
      );
      await this.pause(run, 2 * this.secondMs);
      if (!this.alive(run)) return this.finishStopped(run);
    }
    const ip = this.cluster.podIp();
    this.update(run, (p) => {
      p.status.podIP = ip;
      p.status.podIPs = [{ ip }];
      setPodCondition(p, 'PodReadyToStartContainers', 'True');
    });

    for (const container of containers) {
      if (!(await this.pull(run, container))) return this.finishStopped(run);
      if (!(await this.startConfigured(run, container))) return this.finishStopped(run);
    }
  }

  /**
   * Starts a container once its config resolves; false when the pod stopped first. The config
   * (secretKeyRef values) is read at every start, a restart too: a running container keeps the
   * environment it started with after its Secret is deleted
   * (https://kubernetes.io/docs/concepts/configuration/secret/: a container sees a Secret's change
   * in its environment only when restarted; https://github.com/kubernetes/kubernetes/issues/86642,
   * a pod still Running after its Secret was deleted), but a restart then waits in
   * CreateContainerConfigError `secret "NAME" not found` (https://github.com/Shopify/krane/pull/886).
   */
  private async startConfigured(run: PodRun, container: Json): Promise<boolean> {
    for (;;) {
      const problem = this.configProblem(run, container);
      if (!problem) break;
      this.setWaiting(run, container.name, 'CreateContainerConfigError', problem);
      this.event(run, 'Warning', 'Failed', `Error: ${problem}`, container.name);
      await this.pause(run, this.secondMs);
      if (!this.alive(run)) return false;
    }
    this.start(run, container);
    return true;
  }

  /** Nothing will run any more: the pod ends (if it had not) and may be removed. */
  private finishStopped(run: PodRun): void {
    if (run.done) return;
    if (run.containers.some((c) => c.machine?.running)) return;
    run.done = true;
    this.update(run, (p) => {
      if (!isTerminal(p)) {
        p.status.phase = 'Failed';
        for (const cs of (p.status.containerStatuses ?? []) as Json[]) {
          if (cs.state?.waiting || cs.state?.running) {
            cs.state = {
              terminated: {
                exitCode: 137,
                reason: 'ContainerStatusUnknown',
                message: 'The container could not be located when the pod was terminated',
                startedAt: null,
                finishedAt: null,
              },
            };
            cs.ready = false;
            cs.started = false;
          }
        }
        setPodCondition(p, 'Ready', 'False', 'PodFailed');
        setPodCondition(p, 'ContainersReady', 'False', 'PodFailed');
      }
    });
  }

  // ------------------------------------------------------------------------------------------
  // Volumes and container config

  private mountProblem(pod: Json): { volume: string; message: string } | undefined {
    for (const v of (pod.spec.volumes ?? []) as Json[]) {
      if (v.secret) {
        const secret = this.cluster.get('secrets', pod.metadata.namespace, v.secret.secretName);
        if (!secret) {
          if (v.secret.optional) continue;
          return { volume: v.name, message: `secret "${v.secret.secretName}" not found` };
        }
        for (const item of (v.secret.items ?? []) as Json[]) {
          if (!(item.key in (secret.data ?? {})) && !v.secret.optional)
            return { volume: v.name, message: `references non-existent secret key: ${item.key}` };
        }
      } else if (v.configMap) {
        // The fake has no ConfigMaps, so a configMap volume only mounts when it is optional.
        if (!v.configMap.optional) return { volume: v.name, message: `configmap "${v.configMap.name}" not found` };
      } else if (!v.emptyDir && !v.hostPath && !v.downwardAPI) {
        return { volume: v.name, message: 'this volume type is not supported by the sandbox kubelet' };
      }
    }
    return undefined;
  }

  private configProblem(run: PodRun, container: Json): string | undefined {
    const nonRoot = this.nonRootProblem(run, container);
    if (nonRoot) return nonRoot;
    for (const e of (container.env ?? []) as Json[]) {
      const ref = e.valueFrom?.secretKeyRef as Json | undefined;
      if (!ref) continue;
      const secret = this.cluster.get('secrets', run.namespace, ref.name);
      if (!secret) {
        if (ref.optional) continue;
        return `secret "${ref.name}" not found`;
      }
      if (!(ref.key in (secret.data ?? {})) && !ref.optional)
        return `couldn't find key ${ref.key} in Secret ${run.namespace}/${ref.name}`;
    }
    return undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Images

  /** Pulls the container's image as the pull policy says; false when the pod stopped first. */
  private async pull(run: PodRun, container: Json): Promise<boolean> {
    const image = container.image as string;
    const ref = normalizeImage(image);
    const name = container.name as string;
    const stuck = async (reason: string, message: string, eventReason: string): Promise<boolean> => {
      this.setWaiting(run, name, reason, message);
      this.event(run, 'Warning', eventReason, message, name);
      this.event(run, 'Warning', 'Failed', `Error: ${reason}`, name);
      while (this.alive(run)) await this.pause(run, 10 * this.secondMs);
      return false;
    };
    if (!ref)
      return stuck(
        'InvalidImageName',
        `Failed to apply default image tag "${image}": couldn't parse image name "${image}": invalid reference format`,
        'InspectFailed',
      );
    const onNode = this.pulled.get(run.node.name) ?? new Set<string>();
    this.pulled.set(run.node.name, onNode);
    const policy = container.imagePullPolicy ?? 'IfNotPresent';
    if (policy === 'Never' && !onNode.has(ref))
      return stuck(
        'ErrImageNeverPull',
        `Container image "${image}" is not present with pull policy of Never`,
        'ErrImageNeverPull',
      );
    if (policy !== 'Always' && onNode.has(ref)) {
      this.event(run, 'Normal', 'Pulled', `Container image "${image}" already present on machine`, name);
      return true;
    }
    for (let attempt = 0; ; attempt++) {
      this.event(run, 'Normal', 'Pulling', `Pulling image "${image}"`, name);
      const started = Date.now();
      await this.pause(run, Math.min(200, this.secondMs / 2));
      if (!this.alive(run)) return false;
      if (this.opts.unpullable(image)) {
        const why = `rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`;
        this.setWaiting(run, name, 'ErrImagePull', why);
        this.event(run, 'Warning', 'Failed', `Failed to pull image "${image}": ${why}`, name);
        this.event(run, 'Warning', 'Failed', 'Error: ErrImagePull', name);
        await this.pause(run, this.secondMs);
        if (!this.alive(run)) return false;
        // The image back-off starts at 10 s and doubles up to 5 minutes.
        this.setWaiting(run, name, 'ImagePullBackOff', `Back-off pulling image "${image}"`);
        this.event(run, 'Normal', 'BackOff', `Back-off pulling image "${image}"`, name);
        this.event(run, 'Warning', 'Failed', 'Error: ImagePullBackOff', name);
        await this.pause(run, Math.min(10 * 2 ** attempt, 300) * this.secondMs);
        if (!this.alive(run)) return false;
        continue;
      }
      const dir = await this.imageRootfs(ref);
      if (!this.alive(run)) return false;
      onNode.add(ref);
      const ms = Date.now() - started;
      const size = dir ? 198_000_000 : 1_200_000_000;
      this.event(
        run,
        'Normal',
        'Pulled',
        `Successfully pulled image "${image}" in ${ms}ms (${ms}ms including waiting). Image size: ${size} bytes.`,
        name,
      );
      return true;
    }
  }

  /** What an image puts in the container's filesystem: the runner image has the runner in /home/runner. */
  private imageRootfs(ref: string): Promise<string | undefined> {
    if (repository(ref) !== RUNNER_IMAGE || !this.opts.runnerTarball) return Promise.resolve(undefined);
    let p = this.rootfs.get(RUNNER_IMAGE);
    if (!p) {
      p = (async () => {
        this.cacheDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-k8s-images-'));
        const dir = path.join(this.cacheDir, 'actions-runner');
        const home = path.join(dir, RUNNER_HOME);
        fs.mkdirSync(home, { recursive: true });
        const tarball = await this.opts.runnerTarball!();
        await new Promise<void>((resolve, reject) => {
          const tar = spawn('tar', ['-xzf', '-', '-C', home], { stdio: ['pipe', 'ignore', 'pipe'] });
          let err = '';
          tar.stderr.on('data', (d: Buffer) => (err += d.toString()));
          tar.on('error', reject);
          tar.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar failed (${code}): ${err}`))));
          tar.stdin.end(tarball);
        });
        this.runnerRootfs = dir;
        return dir;
      })();
      p.catch(() => this.rootfs.delete(RUNNER_IMAGE));
      this.rootfs.set(RUNNER_IMAGE, p);
    }
    return p;
  }

  // ------------------------------------------------------------------------------------------
  // Containers

  private start(run: PodRun, container: Json): void {
    const pod = this.current(run);
    const crun = run.containers.find((c) => c.name === container.name)!;
    if (!pod || run.stopping) return;
    this.event(run, 'Normal', 'Created', `Created container: ${container.name}`, container.name);
    const ref = normalizeImage(container.image)!;
    const runnerImage = repository(ref) === RUNNER_IMAGE;
    const gpus = Number(container.resources?.limits?.['nvidia.com/gpu'] ?? 0);
    const arch = (run.node.labels?.['kubernetes.io/arch'] ?? 'amd64') === 'arm64' ? 'arm64' : 'x86_64';
    const machine = this.opts.machines.boot({
      id: `${pod.metadata.name}${run.containers.length > 1 ? `-${container.name}` : ''}`,
      container: true,
      arch,
      env: { SANDBOX_CLOUD: 'kubernetes', SANDBOX_POD: `${run.namespace}/${run.name}`, SANDBOX_NODE: run.node.name },
      ...(gpus > 0 && run.node.gpuModel
        ? {
            gpu: {
              model: run.node.gpuModel,
              count: gpus,
              ...(run.node.gpuMemoryMiB ? { memoryMiB: run.node.gpuMemoryMiB } : {}),
            },
          }
        : {}),
      prepare: (root) => this.prepare(root, run, pod, container, runnerImage),
      onShutdown: () => {},
    });
    this.booted.set(machine, { namespace: run.namespace, pod: run.name, container: container.name });
    crun.machine = machine;
    crun.startedAt = timestamp();
    this.event(run, 'Normal', 'Started', `Started container ${container.name}`, container.name);
    const containerID = `containerd://${createHash('sha256').update(`${run.uid}/${container.name}/${crun.restarts}`).digest('hex')}`;
    this.update(run, (p) => {
      const cs = ((p.status.containerStatuses ?? []) as Json[]).find((c) => c.name === container.name);
      if (cs) {
        cs.state = { running: { startedAt: crun.startedAt } };
        cs.ready = true;
        cs.started = true;
        cs.containerID = containerID;
        cs.imageID = `${ref.replace(/:[^:/@]+$/, '')}@sha256:${createHash('sha256').update(ref).digest('hex')}`;
      }
      const all = (p.status.containerStatuses ?? []) as Json[];
      if (all.every((c) => c.state?.running)) {
        p.status.phase = 'Running';
        setPodCondition(p, 'Ready', 'True');
        setPodCondition(p, 'ContainersReady', 'True');
      }
    });
    void machine.exited
      .then(() => machine.mainExit)
      .then((how) => this.exited(run, crun, machine, container, how, containerID));
  }

  private exited(
    run: PodRun,
    crun: ContainerRun,
    machine: Machine,
    container: Json,
    how: { code: number | null; signal: NodeJS.Signals | null },
    containerID: string,
  ): void {
    if (crun.machine !== machine) return;
    const signal = how.signal ? (os.constants.signals[how.signal] ?? 9) : 9;
    const exitCode = how.code ?? 128 + signal;
    const finishedAt = timestamp();
    const terminated = {
      exitCode,
      reason: exitCode === 0 ? 'Completed' : 'Error',
      startedAt: crun.startedAt,
      finishedAt,
      containerID,
    };
    const pod = this.current(run);
    const policy = pod?.spec.restartPolicy ?? 'Never';
    const restart =
      !run.stopping &&
      !this.cluster.isClosed &&
      pod !== undefined &&
      (policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0));
    if (restart) {
      // OnFailure restarts the container in place, after the crash-loop back-off (10 s, doubling, at most 5 min).
      crun.previousLog = machine.console();
      crun.restarts += 1;
      const backoff = Math.min(10 * 2 ** (crun.restarts - 1), 300);
      const message = `back-off ${backoff}s restarting failed container=${crun.name} pod=${run.name}_${run.namespace}(${run.uid})`;
      this.update(run, (p) => {
        const cs = ((p.status.containerStatuses ?? []) as Json[]).find((c) => c.name === crun.name);
        if (cs) {
          cs.lastState = { terminated };
          cs.state = { waiting: { reason: 'CrashLoopBackOff', message } };
          cs.ready = false;
          cs.started = false;
          cs.restartCount = crun.restarts;
        }
        setPodCondition(p, 'Ready', 'False', 'ContainersNotReady', `containers with unready status: [${crun.name}]`);
        setPodCondition(
          p,
          'ContainersReady',
          'False',
          'ContainersNotReady',
          `containers with unready status: [${crun.name}]`,
        );
      });
      this.event(
        run,
        'Warning',
        'BackOff',
        `Back-off restarting failed container ${crun.name} in pod ${run.name}_${run.namespace}(${run.uid})`,
        crun.name,
      );
      void this.pause(run, backoff * this.secondMs).then(async () => {
        if (!this.alive(run) || !(await this.startConfigured(run, container))) this.finishStopped(run);
      });
      return;
    }
    crun.finished = true;
    crun.exitCode = exitCode;
    this.update(run, (p) => {
      const cs = ((p.status.containerStatuses ?? []) as Json[]).find((c) => c.name === crun.name);
      if (cs) {
        cs.state = { terminated };
        cs.ready = false;
        cs.started = false;
      }
      if (run.containers.every((c) => c.finished)) {
        const ok = run.containers.every((c) => c.exitCode === 0);
        p.status.phase = ok ? 'Succeeded' : 'Failed';
        setPodCondition(p, 'Ready', 'False', ok ? 'PodCompleted' : 'PodFailed');
        setPodCondition(p, 'ContainersReady', 'False', ok ? 'PodCompleted' : 'PodFailed');
        setPodCondition(p, 'PodReadyToStartContainers', 'False');
      } else {
        setPodCondition(p, 'Ready', 'False', 'ContainersNotReady', `containers with unready status: [${crun.name}]`);
      }
    });
    if (run.containers.every((c) => c.finished || !c.machine)) {
      run.done = run.containers.every((c) => c.finished) || run.stopping;
      if (run.done) {
        const p = this.current(run);
        if (p) this.cluster.podStatusChanged(p);
      }
    }
  }

  /**
   * Lays out the container's root (image contents, volumes) and gives its command, environment
   * and working directory, with container paths mapped under the root.
   */
  private prepare(
    root: string,
    run: PodRun,
    pod: Json,
    container: Json,
    runnerImage: boolean,
  ): { argv: string[]; env: Record<string, string>; cwd: string } {
    const provides: string[] = [];
    if (runnerImage) {
      provides.push(RUNNER_HOME);
      // The image was pulled (and unpacked) before its container starts.
      if (this.runnerRootfs) fs.cpSync(this.runnerRootfs, root, { recursive: true, verbatimSymlinks: true });
      else fs.mkdirSync(path.join(root, RUNNER_HOME), { recursive: true });
    }
    const mounts = (container.volumeMounts ?? []) as Json[];
    for (const m of mounts) {
      const volume = ((pod.spec.volumes ?? []) as Json[]).find((v) => v.name === m.name);
      const dest = path.join(root, m.mountPath);
      fs.mkdirSync(dest, { recursive: true });
      if (!volume?.secret) continue;
      const secret = this.cluster.get('secrets', run.namespace, volume.secret.secretName);
      const data = (secret?.data ?? {}) as Record<string, string>;
      const items: Json[] =
        (volume.secret.items as Json[] | undefined) ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) {
        if (data[item.key] === undefined) continue;
        const file = path.join(dest, item.path);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, Buffer.from(data[item.key]!, 'base64'));
        fs.chmodSync(file, item.mode ?? volume.secret.defaultMode ?? 0o644);
      }
    }
    const rewrite = pathRewriter(root, [...mounts.map((m) => m.mountPath as string), ...provides]);

    // The environment: the service variables every pod gets, the image's, then the container's.
    const env: Record<string, string> = {
      HOSTNAME: run.name,
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      KUBERNETES_SERVICE_PORT_HTTPS: '443',
      KUBERNETES_PORT: 'tcp://10.96.0.1:443',
      KUBERNETES_PORT_443_TCP: 'tcp://10.96.0.1:443',
      KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
      KUBERNETES_PORT_443_TCP_PORT: '443',
      KUBERNETES_PORT_443_TCP_ADDR: '10.96.0.1',
    };
    if (runnerImage) {
      // ENV lines of actions/runner's images/Dockerfile.
      Object.assign(env, {
        HOME: rewrite(RUNNER_HOME),
        RUNNER_MANUALLY_TRAP_SIG: '1',
        ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT: '1',
        ImageOS: 'ubuntu22',
      });
    }
    for (const e of (container.env ?? []) as Json[]) {
      const ref = e.valueFrom?.secretKeyRef as Json | undefined;
      if (ref) {
        const value = this.cluster.get('secrets', run.namespace, ref.name)?.data?.[ref.key] as string | undefined;
        if (value !== undefined) env[e.name] = Buffer.from(value, 'base64').toString('utf8');
      } else if (e.valueFrom?.fieldRef) {
        env[e.name] = fieldRef(pod, e.valueFrom.fieldRef.fieldPath);
      } else if (e.valueFrom?.resourceFieldRef) {
        const q = parseQuantity(container.resources?.limits?.[e.valueFrom.resourceFieldRef.resource] ?? '0');
        env[e.name] = String(Math.ceil(q ? quantityValue(q) : 0));
      } else {
        env[e.name] = rewrite(expand(e.value ?? '', env));
      }
    }
    const command = (container.command as string[] | undefined) ?? ['/bin/bash'];
    const args = (container.args as string[] | undefined) ?? [];
    const argv = [...command, ...args].map((a) => rewrite(expand(a, env)));
    const workdir = (container.workingDir as string | undefined) ?? (runnerImage ? RUNNER_HOME : '/');
    const cwd = path.join(root, workdir);
    fs.mkdirSync(cwd, { recursive: true });
    return { argv, env, cwd };
  }

  /**
   * runAsNonRoot, as the kubelet checks it before starting a container: the uid from the
   * container's or the pod's runAsUser, else the image's USER. The official runner image says
   * `USER runner` (a name: its uid cannot be checked); any other image here runs as root.
   * https://github.com/actions/runner/blob/main/images/Dockerfile
   * https://kubernetes.io/docs/tasks/configure-pod-container/security-context/
   */
  private nonRootProblem(run: PodRun, container: Json): string | undefined {
    const pod = this.current(run);
    const podSc = (pod?.spec?.securityContext ?? {}) as Json;
    const sc = (container.securityContext ?? {}) as Json;
    if (!(sc.runAsNonRoot ?? podSc.runAsNonRoot)) return undefined;
    const where = `(pod: "${run.name}_${run.namespace}(${run.uid})", container: ${container.name})`;
    const uid = (sc.runAsUser ?? podSc.runAsUser) as number | undefined;
    if (uid !== undefined) return uid === 0 ? `container's runAsUser breaks non-root policy ${where}` : undefined;
    if (repository(container.image as string) === RUNNER_IMAGE)
      return `container has runAsNonRoot and image has non-numeric user (runner), cannot verify user is non-root ${where}`;
    return `container has runAsNonRoot and image will run as root ${where}`;
  }

  // ------------------------------------------------------------------------------------------
  // Logs

  /** GET pods/NAME/log, as the kubelet answers it through the API server. */
  log(pod: Json, q: URLSearchParams): string {
    const containers = (pod.spec.containers ?? []) as Json[];
    let name = q.get('container') ?? undefined;
    if (!name) {
      if (containers.length !== 1) {
        throw badRequest(
          `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${containers.map((c) => c.name).join(' ')}]`,
        );
      }
      name = containers[0]!.name as string;
    } else if (!containers.some((c) => c.name === name)) {
      throw badRequest(`container ${name} is not valid for pod ${pod.metadata.name}`);
    }
    // A pod not yet on a node has no log yet: the answer is empty.
    if (!pod.spec.nodeName) return '';
    const run = this.runs.get(pod.metadata.uid);
    const crun = run?.containers.find((c) => c.name === name);
    const status = ((pod.status?.containerStatuses ?? []) as Json[]).find((c) => c.name === name);
    let text: string;
    if (q.get('previous') === 'true') {
      if (!crun?.previousLog)
        throw badRequest(`previous terminated container "${name}" in pod "${pod.metadata.name}" not found`);
      text = crun.previousLog;
    } else if (status?.state?.waiting && !crun?.machine) {
      const reason = status.state.waiting.reason as string;
      const why =
        reason === 'ErrImagePull'
          ? "image can't be pulled"
          : reason === 'ImagePullBackOff'
            ? 'trying and failing to pull image'
            : reason;
      throw badRequest(`container "${name}" in pod "${pod.metadata.name}" is waiting to start: ${why}`);
    } else {
      text = crun?.machine?.console() ?? '';
    }
    const tail = q.get('tailLines');
    if (tail !== null) {
      const n = Number(tail);
      if (!Number.isInteger(n) || n < 0)
        throw badRequest(`tailLines: Invalid value: ${tail}: must be greater than or equal to 0`);
      const lines = text.split('\n');
      const trailing = text.endsWith('\n') ? lines.pop() : undefined;
      text = lines.slice(Math.max(0, lines.length - n)).join('\n') + (trailing !== undefined && n > 0 ? '\n' : '');
      if (n === 0) text = '';
    }
    const limit = q.get('limitBytes');
    if (limit !== null) {
      const n = Number(limit);
      if (!Number.isInteger(n) || n < 1)
        throw new ApiError(
          422,
          'Invalid',
          `PodLogOptions "${pod.metadata.name}" is invalid: limitBytes: Invalid value: ${limit}: must be greater than 0`,
        );
      text = Buffer.from(text).subarray(0, n).toString('utf8');
    }
    return text;
  }
}

/** `docker.io/library/ubuntu:latest` from `ubuntu`, as containerd names references; undefined when it does not parse. */
export function normalizeImage(image: string): string | undefined {
  const re =
    /^(?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
  if (!re.test(image)) return undefined;
  const slash = image.indexOf('/');
  const first = slash >= 0 ? image.slice(0, slash) : '';
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let ref = hasRegistry ? image : slash >= 0 ? `docker.io/${image}` : `docker.io/library/${image}`;
  if (!ref.includes('@') && !/:[^/]+$/.test(ref)) ref += ':latest';
  return ref;
}

/** The repository of a normalized reference (no tag, no digest). */
function repository(ref: string): string {
  return ref.replace(/@.*$/, '').replace(/:[^:/]+$/, '');
}

/** `$(VAR)` references to earlier variables, as the kubelet expands them; `$$` is a literal `$`. */
function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)/g, (m, name: string | undefined) =>
    m === '$$' ? '$' : name !== undefined && env[name] !== undefined ? env[name]! : m,
  );
}

/** Maps absolute container paths under `prefixes` to the same paths under `root`. */
export function pathRewriter(root: string, prefixes: string[]): (s: string) => string {
  const list = [...new Set(prefixes.map((p) => p.replace(/\/+$/, '')))]
    .filter((p) => p.startsWith('/') && p.length > 1)
    .sort((a, b) => b.length - a.length);
  if (list.length === 0) return (s) => s;
  const alternatives = list.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  // A path starts a word (start, blank, quote, `=`, `:`, `;`, `(`, `,`) and ends at a boundary.
  const re = new RegExp(`(?<=^|[\\s'"=:;(,])(${alternatives})(?=$|[/\\s'"=:;),])`, 'g');
  return (s) => s.replace(re, (p: string) => root + p);
}

function fieldRef(pod: Json, fieldPath: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) return pod.metadata[m[1]!]?.[m[2]!] ?? '';
  const paths: Record<string, unknown> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
    'metadata.uid': pod.metadata.uid,
    'spec.nodeName': pod.spec.nodeName,
    'spec.serviceAccountName': pod.spec.serviceAccountName,
    'status.hostIP': pod.status?.hostIP,
    'status.podIP': pod.status?.podIP,
  };
  return String(paths[fieldPath] ?? '');
}

const CONDITION_ORDER = ['PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];
function sortConditions(pod: Json): void {
  (pod.status.conditions as Json[]).sort((a, b) => CONDITION_ORDER.indexOf(a.type) - CONDITION_ORDER.indexOf(b.type));
}
