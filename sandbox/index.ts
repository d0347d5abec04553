/**
 * The loopback cloud: starts every fake, returns the environment a product process needs, the
 * inventory, and `close()`. See README.md in this folder for the contract tests rely on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type FakeEc2, SANDBOX_CREDENTIALS, startFakeEc2 } from './ec2.js';
import { FaultPlan } from './faults.js';
import { type FakeGitHub, startFakeGitHub } from './github.js';
import { type FakeKubernetes, startFakeKubernetes } from './kubernetes.js';
import { MachineFleet } from './machine.js';
import { type FakeSsm, startFakeSsm } from './ssm.js';

export { FaultPlan } from './faults.js';
export type { Fault, Service } from './faults.js';
export type { FakeEc2, Ec2Instance, Ec2Volume, SpotRequest, InstanceStateName } from './ec2.js';
export type { FakeSsm } from './ssm.js';
export type { FakeGitHub } from './github.js';
export type { FakeKubernetes, KubeObject, JobObject, PodObject, SecretObject, EventObject, KubernetesCall, NodeSpec } from './kubernetes.js';
export type { Machine } from './machine.js';

export interface SandboxOptions {
  /** Added to every call of every fake. */
  latencyMs?: number;
  /** The stand-in runner's heartbeat to the fake GitHub. */
  heartbeatMs?: number;
  /** EC2 `pending` → `running` (and the machine boot). Default 100 ms. */
  bootDelayMs?: number;
  /** Length of a `shutdown +N` minute inside machines. Default 60000 ms. */
  minuteMs?: number;
  /** Length of a Kubernetes second (Job deadlines and TTLs, grace periods, back-offs). Default 1000 ms. */
  kubernetesSecondMs?: number;
}

export interface SandboxEnv {
  GITHUB_API_URL: string;
  GITHUB_SERVER_URL: string;
  AWS_ENDPOINT_URL_EC2: string;
  AWS_ENDPOINT_URL_SSM: string;
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
  AWS_REGION: string;
  GITHUB_REPOSITORY: string;
  /** A kubeconfig file for the fake cluster (admin token, namespace `default`). */
  KUBECONFIG: string;
  [name: string]: string;
}

export interface Sandbox {
  env: SandboxEnv;
  tokens: FakeGitHub['tokens'];
  github: FakeGitHub;
  ec2: FakeEc2;
  ssm: FakeSsm;
  kubernetes: FakeKubernetes;
  /** One plan shared by every fake. */
  faults: FaultPlan;
  machines: {
    /** The next `n` machines never run their startup script (they stay up, silent). */
    failBoot(n?: number): void;
    /** The next `n` machines run their startup script `ms` after they boot (a slow boot). */
    delayBoot(n: number, ms: number): void;
    /**
     * SIGKILLs the runner's listener and its jobs on a machine, as if the runner crashed; the
     * machine stays up. False when the machine runs no runner.
     */
    crashRunner(machineId: string): boolean;
    /** Every machine booted so far. */
    all: MachineFleet['all'];
  };
  /** One line per thing still alive or billed; empty when the sandbox is clean. */
  leftovers(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  const faults = new FaultPlan();
  const fleet = new MachineFleet(opts.minuteMs !== undefined ? { minuteMs: opts.minuteMs } : {});
  const latency = opts.latencyMs !== undefined ? { latencyMs: opts.latencyMs } : {};
  const started: Array<{ close(): Promise<void> }> = [];
  try {
    const github = await startFakeGitHub({ faults, ...latency, ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}) });
    started.push(github);
    const ec2 = await startFakeEc2({
      faults,
      machines: fleet,
      ...latency,
      ...(opts.bootDelayMs !== undefined ? { bootDelayMs: opts.bootDelayMs } : {}),
    });
    started.push(ec2);
    const ssm = await startFakeSsm({ faults, ...latency });
    started.push(ssm);
    const kubernetes = await startFakeKubernetes({
      faults,
      machines: fleet,
      github,
      ...latency,
      ...(opts.kubernetesSecondMs !== undefined ? { secondMs: opts.kubernetesSecondMs } : {}),
    });
    started.push(kubernetes);
    const kubeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-kubeconfig-'));
    started.push({ close: async () => fs.rmSync(kubeDir, { recursive: true, force: true }) });
    const kubeconfigFile = path.join(kubeDir, 'config');
    fs.writeFileSync(kubeconfigFile, kubernetes.kubeconfig(), { mode: 0o600 });

    const env: SandboxEnv = {
      GITHUB_API_URL: github.apiUrl,
      GITHUB_SERVER_URL: github.serverUrl,
      AWS_ENDPOINT_URL_EC2: ec2.url,
      AWS_ENDPOINT_URL_SSM: ssm.url,
      AWS_ACCESS_KEY_ID: SANDBOX_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: SANDBOX_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      GITHUB_REPOSITORY: 'octo-org/ml',
      KUBECONFIG: kubeconfigFile,
    };

    let closing: Promise<void> | undefined;
    return {
      env,
      tokens: github.tokens,
      github,
      ec2,
      ssm,
      kubernetes,
      faults,
      machines: {
        failBoot: (n = 1) => fleet.failBoot(n),
        delayBoot: (n, ms) => fleet.delayBoot(n, ms),
        crashRunner: (machineId) => fleet.crashRunner(machineId),
        all: () => fleet.all(),
      },
      leftovers: async () => describeLeftovers(github, ec2, fleet, kubernetes),
      close: () => {
        closing ??= (async () => {
          await fleet.killAll();
          await Promise.allSettled(started.map((s) => s.close()));
        })();
        return closing;
      },
    };
  } catch (err) {
    await fleet.killAll();
    await Promise.allSettled(started.map((s) => s.close()));
    throw err;
  }
}

/**
 * Everything left: live or stopped instances, orphaned volumes, open spot requests, Jobs, pods
 * and Secrets, registrations, machine processes.
 */
export function describeLeftovers(
  github: Pick<FakeGitHub, 'runners'>,
  ec2: Pick<FakeEc2, 'leftovers' | 'instance'>,
  fleet: MachineFleet,
  kubernetes?: Pick<FakeKubernetes, 'leftovers' | 'ownsMachine'>,
): string[] {
  const lines = [...ec2.leftovers(), ...(kubernetes?.leftovers() ?? [])];
  for (const r of github.runners()) {
    lines.push(
      `GitHub runner ${r.name} (id ${r.id}, ${r.scope}, ${r.status}${r.busy ? ', busy' : ''}${r.ephemeral ? ', ephemeral' : ''}) is still registered; labels ${r.labels.join(', ')}`,
    );
  }
  for (const m of fleet.all()) {
    // A pod's containers are reported by the cluster, with their pod.
    if (kubernetes?.ownsMachine(m)) continue;
    const pids = m.processes();
    const instance = ec2.instance(m.id);
    // A machine of a live instance is already reported with it; report the ones whose instance is gone.
    const reported = instance !== undefined && instance.state !== 'terminated' && instance.state !== 'stopped';
    if (pids.length > 0 && !reported) {
      lines.push(`machine ${m.id} still has ${pids.length} process(es) running (pids ${pids.join(', ')})`);
    } else if (m.running && instance === undefined) {
      lines.push(`machine ${m.id} is still powered on`);
    }
  }
  return lines;
}
