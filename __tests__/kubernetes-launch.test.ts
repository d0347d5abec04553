import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadCloud } from '../src/clouds/index.js';
import type { ClusterAccess, KubernetesOptions } from '../src/clouds/kubernetes/options.js';
import { realClock } from '../src/retry.js';
import { InputError } from '../src/errors.js';
import type { Sandbox } from '../sandbox/index.js';
import { useSandbox } from './support/sandbox.js';
import { until } from './support/wait.js';
import { MemoryLog, attemptLaunch, cleanupLedger, cleanupRunOf, settle, specFor } from './helpers.js';

/**
 * Runner pods end to end: the real @kubernetes/client-node and Octokit clients against the
 * sandbox's API server, whose kubelet runs the pod's command with the stand-in runner. One
 * Kubernetes second lasts 20 ms here, so deadlines and TTLs pass quickly.
 */

let sb: Sandbox;
const dir = mkdtempSync(join(tmpdir(), 'cml-k8s-test-'));
const SECOND_MS = 20;

// biome-ignore lint/suspicious/noExplicitAny: parsed pod specs and manifests of any shape
type Json = Record<string, any>;

// After each test: nothing left in the sandbox, and every fault the test added fired.
const sandbox = useSandbox({ kubernetesSecondMs: SECOND_MS });

beforeAll(() => {
  sb = sandbox();
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const k8sInputs = (inputs: Record<string, string> = {}): Record<string, string> => ({
  cloud: 'kubernetes',
  kubeconfig: sb.kubernetes.kubeconfig(),
  ...inputs,
});

const jobOf = (name: string): Json | undefined =>
  (sb.kubernetes.jobs() as Json[]).find((j) => j.metadata.name === name);
const secretOf = (name: string): Json | undefined =>
  (sb.kubernetes.secrets() as Json[]).find((s) => s.metadata.name === name);
const podsOf = (name: string): Json[] =>
  (sb.kubernetes.pods() as Json[]).filter((p) => p.metadata.labels?.['job-name'] === name);
/** Runs `fn` noting each Secret as it shows: the launcher deletes a runner's Secret once the runner is online. */
async function watchingSecrets<T>(fn: () => Promise<T>): Promise<{ value: T; seen: Map<string, Json> }> {
  const seen = new Map<string, Json>();
  const look = (): void => {
    for (const s of sb.kubernetes.secrets() as Json[]) seen.set(s.metadata.name, structuredClone(s));
  };
  const timer = setInterval(look, 5);
  try {
    return { value: await fn(), seen };
  } finally {
    clearInterval(timer);
    look();
  }
}

describe('a GPU runner pod', () => {
  test('the pod spec asks for the GPU, size and disk, carries tags and tolerations, and its runner takes a job on the GPU node', async () => {
    const { result, error, ledger } = await attemptLaunch(
      sb,
      k8sInputs({
        gpu: 't4',
        type: 'm',
        'hdd-size': '40',
        labels: 'cml-gpu',
        'max-lifetime': '2h',
        tags: 'team=vision,cost center=ml/research',
        'kubernetes-runtime-class': 'nvidia',
        'kubernetes-node-selector': 'nvidia.com/gpu.product=Tesla-T4',
      }),
    );
    expect(error).toBeUndefined();
    expect(ledger!.complete).toBe(true);
    const runner = result!.runners[0]!;
    expect(runner.machine).toMatchObject({ type: '2/8Gi/1', spot: false });
    expect(ledger!.region).toBe('ci-runners');

    const job = jobOf(runner.machine.id)!;
    expect(job.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 7200, ttlSecondsAfterFinished: 300 });
    const pod = job.spec.template.spec;
    expect(pod).toMatchObject({
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      runtimeClassName: 'nvidia',
      nodeSelector: { 'nvidia.com/gpu.product': 'Tesla-T4' },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    });
    const container = pod.containers[0];
    expect(container.image).toBe('ghcr.io/actions/actions-runner:2.331.0');
    expect(container.resources.limits).toEqual({
      cpu: '2',
      memory: '8Gi',
      'nvidia.com/gpu': '1',
      'ephemeral-storage': '40Gi',
    });
    // Tags: labels where Kubernetes allows them, annotations where it does not.
    expect(job.metadata.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'cml-runner-action',
      'cml-runner/run-id': '4242',
      'cml-runner/runner': runner.name,
      team: 'vision',
    });
    expect(job.metadata.annotations).toMatchObject({
      'cml-runner/repo': 'octo-org/ml',
      'cml-runner/runner-name': runner.name,
    });
    expect(Object.values(job.metadata.annotations)).toContain('ml/research');
    expect(Date.parse(job.metadata.annotations['cml-runner/expires-at'])).toBeGreaterThan(Date.now() + 3600_000);

    const [running] = podsOf(runner.machine.id);
    expect(running!.spec.nodeName).toBe('sandbox-gpu-1');
    expect(sb.github.runners().find((r) => r.name === runner.name)).toMatchObject({
      status: 'online',
      ephemeral: true,
    });

    const queued = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-gpu'],
      script: 'nvidia-smi -L',
    });
    const done = await sb.github.waitJob(queued.id, 30_000);
    expect(done).toMatchObject({ status: 'completed', conclusion: 'success', runnerName: runner.name });
    expect(done.log).toContain('Tesla T4');

    // The ephemeral runner exits, the Job completes, and its TTL removes the Job, the pod and the Secret.
    expect(await settle(sb)).toEqual([]);
  });

  test('the credential reaches the container only from the Secret the Job owns, never as a literal', async () => {
    for (const single of ['true', 'false']) {
      // The reusable runner must stay online long enough for the launch to see it, under load too.
      const { value, seen } = await watchingSecrets(() =>
        attemptLaunch(sb, k8sInputs({ single, 'idle-timeout': '6', labels: `cml-secret-${single}` })),
      );
      const { result, error, ledger } = value;
      if (error) await cleanupLedger(sb, ledger!);
      expect(error).toBeUndefined();
      const name = result!.runners[0]!.machine.id;
      const job = jobOf(name)!;
      // Deleted once the runner came online (kubernetes-credential.test.ts); seen while it existed.
      expect(secretOf(name)).toBeUndefined();
      const secret = seen.get(name)!;
      const key = single === 'true' ? 'jitconfig' : 'token';
      const credential = Buffer.from(secret.data[key], 'base64').toString('utf8');
      expect(credential.length).toBeGreaterThan(10);
      expect(secret.data).toHaveProperty(['startup.sh']);
      const script = Buffer.from(secret.data['startup.sh'], 'base64').toString('utf8');
      expect(script).not.toContain(credential);
      expect(script).not.toContain(Buffer.from(credential).toString('base64'));

      const spec = JSON.stringify(job.spec);
      for (const literal of [credential, Buffer.from(credential).toString('base64'), sb.tokens.admin])
        expect(spec).not.toContain(literal);
      expect(JSON.stringify(secret)).not.toContain(sb.tokens.admin);
      const env = job.spec.template.spec.containers[0].env as Json[];
      const variable = single === 'true' ? 'ACTIONS_RUNNER_INPUT_JITCONFIG' : 'ACTIONS_RUNNER_INPUT_TOKEN';
      expect(env.find((e) => e.name === variable)).toEqual({
        name: variable,
        valueFrom: { secretKeyRef: { name, key } },
      });
      expect(secret.metadata.ownerReferences).toEqual([
        expect.objectContaining({ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid }),
      ]);

      if (single === 'true') {
        const queued = sb.github.queueJob({
          owner: 'octo-org',
          repo: 'ml',
          labels: ['cml-secret-true'],
          script: 'true',
        });
        await sb.github.waitJob(queued.id, 30_000);
      }
      // The reusable runner ends after its idle-timeout; its registration is then offline, and post-style cleanup removes it.
      const left = await settleJobs(name);
      expect(left).toEqual([]);
      if (single === 'false') await cleanupRunOf(sb, 'kubernetes');
      expect(await settle(sb)).toEqual([]);
    }
  });
});

describe('a pod that cannot start fails the launch early with the cluster own words', () => {
  test('more GPUs than any node has: FailedScheduling, long before startup-timeout, and post leaves nothing', async () => {
    const started = Date.now();
    const { error, ledger } = await attemptLaunch(sb, k8sInputs({ type: '4/16Gi/2', 'startup-timeout': '5m' }));
    expect(error?.name).toBe('StartupTimeoutError');
    expect(error!.message).toContain('could not start');
    expect(error!.message).toContain('Insufficient nvidia.com/gpu');
    expect(error!.message).toContain('FailedScheduling');
    expect(Date.now() - started).toBeLessThan(30_000);
    await cleanupLedger(sb, ledger!);
    expect(await settle(sb)).toEqual([]);
  });

  test('an image that cannot be pulled: ImagePullBackOff with the pull error', async () => {
    const { error, ledger } = await attemptLaunch(
      sb,
      k8sInputs({ 'kubernetes-image': 'registry.example.com/ml/does-not-exist:1.0' }),
    );
    expect(error!.message).toContain('ImagePullBackOff');
    expect(error!.message).toContain('registry.example.com/ml/does-not-exist:1.0');
    await cleanupLedger(sb, ledger!);
    expect(await settle(sb)).toEqual([]);
  });

  test('a startup-script that fails: the pod log tail, with the credential masked', async () => {
    const { error, ledger } = await attemptLaunch(
      sb,
      k8sInputs({ 'startup-script': 'echo "preparing the image"; echo "$ACTIONS_RUNNER_INPUT_JITCONFIG"; exit 3' }),
    );
    expect(error!.message).toContain('ended before its runner came online');
    expect(error!.message).toContain('preparing the image');
    expect(error!.message).toContain('the startup-script input failed');
    const jit = ledger!.registrations[0]!;
    expect(jit.id).toBeDefined();
    await cleanupLedger(sb, ledger!);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('ending', () => {
  test('max-lifetime is the Job activeDeadlineSeconds: the cluster ends a runner that never gets a job', async () => {
    const { result, error, ledger } = await attemptLaunch(
      sb,
      k8sInputs({ single: 'false', 'idle-timeout': '0', 'max-lifetime': '300' }),
    );
    if (error) await cleanupLedger(sb, ledger!);
    expect(error).toBeUndefined();
    const name = result!.runners[0]!.machine.id;
    expect(jobOf(name)!.spec.activeDeadlineSeconds).toBe(300);
    // 300 Kubernetes seconds pass in about 6 s here.
    const deadline = Date.now() + 40_000;
    let failed: Json | undefined;
    while (!failed && Date.now() < deadline) {
      failed = (jobOf(name)?.status?.conditions as Json[] | undefined)?.find(
        (c) => c.type === 'Failed' && c.status === 'True',
      );
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(failed).toMatchObject({ reason: 'DeadlineExceeded' });
    expect(await settleJobs(name)).toEqual([]);
    // A killed reusable runner stays registered, offline; cleanup (or sweep) deletes it.
    expect(sb.github.runners().find((r) => r.name === result!.runners[0]!.name)?.status).toBe('offline');
    const report = await cleanupRunOf(sb, 'kubernetes');
    expect(report.registrations.map((r) => r.name)).toEqual([result!.runners[0]!.name]);
    expect(await settle(sb)).toEqual([]);
  });

  test('cancel mid-launch: the launch stops, and cleanup ends every Job, pod and Secret it recorded', async () => {
    const cancel = new AbortController();
    sb.faults.add({ service: 'kubernetes', action: 'patch jobs', delayMs: 500 });
    const fired = sb.faults.fired.length;
    const attempt = attemptLaunch(sb, k8sInputs({ count: '3' }), cancel.signal);
    // Cancel once the first Job and Secret of this launch exist, while the Job is still being
    // resumed (the fault holds that patch for 500 ms).
    const held = (): boolean => sb.faults.fired.slice(fired).some((f) => f.action === 'patch jobs');
    await until('the Job resume is held', held, 20_000, 10);
    cancel.abort(new Error('SIGTERM'));
    const { error, ledger } = await attempt;
    expect(error).toBeDefined();
    expect(ledger!.machines.length).toBeGreaterThan(0);
    await cleanupLedger(sb, ledger!);
    expect(await settle(sb)).toEqual([]);
  });

  test('mode cleanup finds the run by its labels, deletes with Background propagation (no pod orphaned), and is idempotent', async () => {
    const { result } = await attemptLaunch(
      sb,
      k8sInputs({ labels: 'cml-cleanup', single: 'false', 'idle-timeout': '0' }),
    );
    const name = result!.runners[0]!.machine.id;
    expect(podsOf(name)).toHaveLength(1);
    const first = await cleanupRunOf(sb, 'kubernetes');
    expect(first.machines.map((m) => [m.id, m.result])).toEqual([[name, 'terminated']]);
    expect(first.registrations.map((r) => r.name)).toEqual([result!.runners[0]!.name]);
    const deletes = sb.kubernetes.calls.filter((c) => c.verb === 'delete' && c.resource === 'jobs' && c.name === name);
    expect(deletes.length).toBeGreaterThan(0);
    expect(await settle(sb)).toEqual([]);
    const second = await cleanupRunOf(sb, 'kubernetes');
    expect(second.machines).toEqual([]);
    expect(second.registrations).toEqual([]);
  });

  test('a type list: a pod no node can fit is ended and the runner moves to the next type', async () => {
    const { result, error } = await attemptLaunch(
      sb,
      k8sInputs({ type: '4/16Gi/2,2/8Gi/1', labels: 'cml-k8s-fallback', 'startup-timeout': '5m' }),
    );
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(runner.tried.map((t) => [t.type, t.outcome])).toEqual([
      ['4/16Gi/2', 'Unschedulable'],
      ['2/8Gi/1', 'obtained'],
    ]);
    expect(runner.machine).toMatchObject({ type: '2/8Gi/1', id: `${runner.name}-2` });
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['cml-k8s-fallback'],
      script: 'nvidia-smi -L',
    });
    expect((await sb.github.waitJob(job.id, 30_000)).conclusion).toBe('success');
    expect(await settle(sb)).toEqual([]);
  });
});

describe('cluster access', () => {
  /** The kubernetes cloud as main loads it, with only its cluster access changed. */
  const load = (access: ClusterAccess) => {
    const spec = specFor(sb, k8sInputs());
    const options: KubernetesOptions = { ...(spec.cloud.options as KubernetesOptions), access };
    return loadCloud({ name: 'kubernetes', options }, '', { env: {}, log: new MemoryLog(), clock: realClock });
  };
  const prepare = async ({ kubernetes: access }: { kubernetes: ClusterAccess }): Promise<void> => {
    const cloud = await load(access);
    await cloud.prepare(specFor(sb, k8sInputs()).machine);
  };
  const good = (): string => sb.kubernetes.kubeconfig();
  const bad = (): string => sb.kubernetes.kubeconfig({ token: 'expired-token' });

  test('the first source found is the one used: input, KUBERNETES_CONFIGURATION, KUBECONFIG', async () => {
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, good());
    const { clusterAccess } = await import('../src/clouds/kubernetes/options.js');
    const read = (kubeconfig: string) => (name: string) => (name === 'kubeconfig' ? kubeconfig : '');
    // Each time, the sources below the one that should win point at a refused credential.
    await expect(
      prepare({
        kubernetes: clusterAccess(read(good()), { KUBERNETES_CONFIGURATION: bad(), KUBECONFIG: join(dir, 'missing') }),
      }),
    ).resolves.toBeUndefined();
    await expect(
      prepare({
        kubernetes: clusterAccess(read(''), {
          KUBERNETES_CONFIGURATION: Buffer.from(good()).toString('base64'),
          KUBECONFIG: join(dir, 'missing'),
        }),
      }),
    ).resolves.toBeUndefined();
    await expect(
      prepare({ kubernetes: clusterAccess(read(''), { KUBECONFIG: file, KUBERNETES_SERVICE_HOST: '10.0.0.1' }) }),
    ).resolves.toBeUndefined();
    // And a refused credential says so, naming where it came from.
    await expect(prepare({ kubernetes: clusterAccess(read(''), { KUBERNETES_CONFIGURATION: bad() }) })).rejects.toThrow(
      /Unauthorized[\s\S]*KUBERNETES_CONFIGURATION/,
    );
  });

  test('a kubeconfig with an exec credential plugin works when the plugin exists, and says what is missing when not', async () => {
    const plugin = join(dir, 'sandbox-auth-plugin');
    writeFileSync(
      plugin,
      `#!/bin/bash\nprintf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "${sb.kubernetes.tokens.admin}"\n`,
    );
    chmodSync(plugin, 0o755);
    const withExec = (command: string): string => {
      const doc = parseYaml(good()) as Json;
      doc.users[0].user = {
        exec: { apiVersion: 'client.authentication.k8s.io/v1', command, interactiveMode: 'Never' },
      };
      return JSON.stringify(doc);
    };
    await expect(
      prepare({ kubernetes: { source: 'the kubeconfig input', text: withExec(plugin) } }),
    ).resolves.toBeUndefined();
    await expect(
      prepare({ kubernetes: { source: 'the kubeconfig input', text: withExec(join(dir, 'no-such-plugin')) } }),
    ).rejects.toThrow(/CredentialPlugin[\s\S]*plugin/);
  });

  test('a broken or missing kubeconfig is one clear input error, before anything is created', async () => {
    const before = sb.kubernetes.calls.length;
    for (const access of [
      { source: 'the kubeconfig input' as const, text: 'clusters: [this is: not yaml' },
      { source: 'KUBERNETES_CONFIGURATION' as const, text: 'apiVersion: v1\nkind: Config\n' },
      { source: 'KUBECONFIG' as const, path: join(dir, 'missing') },
    ]) {
      const err = await load(access).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).input).toBe('kubeconfig');
      expect((err as InputError).message).toContain('kubeconfig');
    }
    expect(sb.kubernetes.calls.length).toBe(before);
  });

  test('a throttled or failing dry run is sent again, as it persists nothing', async () => {
    const fired = sb.faults.fired.length;
    sb.faults.add({ service: 'kubernetes', action: 'create jobs', code: 'TooManyRequests', retryAfter: 1, times: 1 });
    sb.faults.add({ service: 'kubernetes', action: 'create secrets', code: 'InternalError', times: 1 });
    const { result, error } = await attemptLaunch(sb, k8sInputs({ labels: 'cml-dry-retry' }));
    expect(error).toBeUndefined();
    expect(
      sb.faults.fired
        .slice(fired)
        .map((f) => f.code)
        .sort(),
    ).toEqual(['InternalError', 'TooManyRequests']);
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-dry-retry'], script: 'true' });
    await sb.github.waitJob(job.id, 30_000);
    expect(result!.runners).toHaveLength(1);
    expect(await settle(sb)).toEqual([]);
  });

  test('a namespace that does not exist, or a token without rights, is refused with what to do', async () => {
    // RBAC comes first: the launcher's Role does not reach another namespace, existing or not.
    const { error: elsewhere } = await attemptLaunch(sb, k8sInputs({ 'kubernetes-namespace': 'no-such-namespace' }));
    expect(elsewhere!.message).toContain(`User "${sb.kubernetes.launcher.user}" cannot create resource`);
    expect(elsewhere!.message).toContain('in the namespace "no-such-namespace"');
    const admin = sb.kubernetes.kubeconfig({ token: sb.kubernetes.tokens.admin });
    const { error: missing } = await attemptLaunch(
      sb,
      k8sInputs({ kubeconfig: admin, 'kubernetes-namespace': 'no-such-namespace' }),
    );
    expect(missing!.message).toContain('namespaces "no-such-namespace" not found');
    const { error: denied } = await attemptLaunch(
      sb,
      k8sInputs({ kubeconfig: sb.kubernetes.kubeconfig({ token: sb.kubernetes.tokens.denied }) }),
    );
    expect(denied!.message).toContain('Forbidden');
    expect(denied!.message).toContain('Role in the README');
    expect(await settle(sb)).toEqual([]);
  });
});

describe('a hardened runner pod', () => {
  const ENFORCE = 'pod-security.kubernetes.io/enforce';

  test('by default the pod meets the restricted Pod Security Standard, and the startup-script never sees the credential', async () => {
    expect(sb.kubernetes.launcher.namespaceLabels[ENFORCE]).toBe('restricted');
    const script =
      'for v in ACTIONS_RUNNER_INPUT_JITCONFIG ACTIONS_RUNNER_INPUT_TOKEN; do ' +
      'if printenv "$v" >/dev/null; then echo "startup-script sees $v"; else echo "startup-script has no $v"; fi; done';
    const { value, seen } = await watchingSecrets(() =>
      attemptLaunch(sb, k8sInputs({ labels: 'cml-hardened', 'startup-script': script })),
    );
    const { result, error } = value;
    try {
      expect(error).toBeUndefined();
      const name = result!.runners[0]!.machine.id;
      const pod = jobOf(name)!.spec.template.spec;
      expect(pod.securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: 1001,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.containers[0].securityContext).toEqual({
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      // The Job was created suspended and resumed once its Secret existed, owned by it from the start.
      const reasons = (sb.kubernetes.events() as Json[])
        .filter((e) => e.involvedObject.kind === 'Job' && e.involvedObject.name === name)
        .map((e) => e.reason);
      expect(reasons).toEqual(expect.arrayContaining(['Suspended', 'Resumed', 'SuccessfulCreate']));
      const secretCalls = sb.kubernetes.calls.filter(
        (c) => c.resource === 'secrets' && (c.name ?? c.params?.name) === name,
      );
      // Created owned by its Job; deleted by name once the runner came online.
      expect(secretCalls.map((c) => c.verb)).toEqual(['create', 'delete']);
      expect(seen.get(name)!.metadata.ownerReferences).toEqual([
        expect.objectContaining({ kind: 'Job', name, uid: jobOf(name)!.metadata.uid }),
      ]);
      // The runner came online all the same, and its pod log shows what the startup-script saw.
      expect(sb.github.runners().find((r) => r.name === result!.runners[0]!.name)?.status).toBe('online');
      const log = sb.kubernetes.podLog(podsOf(name)[0]!.metadata.name);
      expect(log).toContain('startup-script has no ACTIONS_RUNNER_INPUT_JITCONFIG');
      expect(log).toContain('startup-script has no ACTIONS_RUNNER_INPUT_TOKEN');
      expect(log).not.toContain('startup-script sees');
    } finally {
      await cleanupRunOf(sb, 'kubernetes');
    }
    expect(await settle(sb)).toEqual([]);
  });

  test('kubernetes-security-context image or privileged: refused by Pod Security Admission in its words, admitted where the namespace allows it', async () => {
    const { error, ledger } = await attemptLaunch(
      sb,
      k8sInputs({ 'kubernetes-security-context': 'privileged', 'startup-timeout': '60' }),
    );
    expect(error!.message).toContain(
      'is forbidden: violates PodSecurity "restricted:latest": ' +
        'privileged (container "runner" must not set securityContext.privileged=true), ' +
        'allowPrivilegeEscalation != false (container "runner" must set securityContext.allowPrivilegeEscalation=false), ' +
        'unrestricted capabilities (container "runner" must set securityContext.capabilities.drop=["ALL"]), ' +
        'runAsNonRoot != true (pod or container "runner" must set securityContext.runAsNonRoot=true), ' +
        'runAsUser=0 (container "runner" must not set runAsUser=0), ' +
        'seccompProfile (pod or container "runner" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    );
    expect(error!.message).toContain('kubernetes-security-context: restricted');
    await cleanupLedger(sb, ledger!);
    expect(await settle(sb)).toEqual([]);

    const { error: image, ledger: imageLedger } = await attemptLaunch(
      sb,
      k8sInputs({ 'kubernetes-security-context': 'image', 'startup-timeout': '60' }),
    );
    expect(image!.message).toContain('violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false');
    await cleanupLedger(sb, imageLedger!);
    expect(await settle(sb)).toEqual([]);

    // A namespace that enforces nothing admits the privileged pod, which runs as root.
    const ns = sb.kubernetes.launcher.namespace;
    sb.kubernetes.labelNamespace(ns, { [ENFORCE]: 'privileged' });
    try {
      const { result, error: none } = await attemptLaunch(
        sb,
        k8sInputs({ 'kubernetes-security-context': 'privileged', labels: 'cml-privileged' }),
      );
      expect(none).toBeUndefined();
      const container = jobOf(result!.runners[0]!.machine.id)!.spec.template.spec.containers[0];
      expect(container.securityContext).toEqual({ privileged: true, runAsUser: 0 });
      await cleanupRunOf(sb, 'kubernetes');
    } finally {
      sb.kubernetes.labelNamespace(ns, { [ENFORCE]: 'restricted' });
    }
    expect(await settle(sb)).toEqual([]);
  });

  test('a bad kubernetes-security-context, or a region, is one input error naming it, before any call', () => {
    const before = sb.kubernetes.calls.length;
    const bad = (inputs: Record<string, string>): InputError => {
      try {
        specFor(sb, k8sInputs(inputs));
      } catch (err) {
        if (err instanceof InputError) return err;
        throw err;
      }
      throw new Error('expected an input error');
    };
    const mode = bad({ 'kubernetes-security-context': 'root' });
    expect(mode.input).toBe('kubernetes-security-context');
    expect(mode.message).toContain('root');
    expect(mode.message).toContain('restricted, image, privileged');
    const region = bad({ region: 'eu-west' });
    expect(region.input).toBe('region');
    expect(region.message).toContain('eu-west');
    expect(region.message).toContain('kubernetes-namespace');
    // The action's default region is what the runner passes when a workflow gives none.
    expect(() => specFor(sb, k8sInputs({ region: 'us-east' }))).not.toThrow();
    expect(sb.kubernetes.calls.length).toBe(before);
  });
});

describe('RBAC', () => {
  test('every call the product made in this file is allowed by the Role in the README', () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    const block = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((y) => /kind: Role\b/.test(y));
    expect(block).toBeDefined();
    const role = parseYaml(block!.split('\n---\n').find((d) => /kind: Role\b/.test(d))!) as {
      rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
    };
    const allowed = new Set(
      role.rules.flatMap((r) =>
        r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`))),
      ),
    );
    const used = new Set(
      sb.kubernetes.calls
        .filter((c) => c.status !== 401)
        .map((c) => `${c.group}|${c.resource}${c.subresource ? `/${c.subresource}` : ''}|${c.verb}`),
    );
    expect(used.size).toBeGreaterThan(5);
    expect([...used].filter((u) => !allowed.has(u))).toEqual([]);
  });
});

/** Waits until the Job is gone from the cluster (TTL after it finished), returning what is left. */
async function settleJobs(name: string, ms = 20_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = [jobOf(name), secretOf(name), ...podsOf(name)]
      .filter(Boolean)
      .map((o) => `${o!.kind}/${o!.metadata.name}`);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}
