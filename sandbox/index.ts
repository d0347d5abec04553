/**
 * The loopback cloud: starts every fake, returns the environment a product process needs, the
 * inventory, and `close()`. See README.md in this folder for the contract tests rely on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AZURE_APPS,
  AZURE_CA_FILE,
  AZURE_SUBSCRIPTION_ID,
  AZURE_TENANT_ID,
  type FakeAzure,
  startFakeAzure,
} from './azure.js';
import { AwsIam, type FakeEc2, type PolicyDocument, SANDBOX_CREDENTIALS, startFakeEc2 } from './ec2.js';
import { FaultPlan } from './core/index.js';
import { type FakeGce, GCE_PROJECT, type GceProjectSettings, startFakeGce } from './gce.js';
import { type FakeGitHub, startFakeGitHub } from './github.js';
import { type FakeKubernetes, startFakeKubernetes } from './kubernetes.js';
import { MachineFleet } from './machine.js';
import { type FakeSsm, startFakeSsm } from './ssm.js';

export { FaultPlan } from './core/index.js';
export type { Fault, Service } from './core/index.js';
export type { FakeEc2, Ec2Instance, Ec2Volume, SpotRequest, InstanceStateName } from './ec2.js';
export type { FakeSsm } from './ssm.js';
export type { FakeGce, GceInstance, GceDisk, GceStatus, GceCall, GceProjectSettings } from './gce.js';
export type { FakeAzure, AzureGroup, AzureVm, AzureCall, AzureRoleAssignment, AzurePowerState } from './azure.js';
export type { FakeGitHub } from './github.js';
export type {
  FakeKubernetes,
  KubeObject,
  JobObject,
  PodObject,
  SecretObject,
  EventObject,
  KubernetesCall,
  NodeSpec,
} from './kubernetes.js';
export type { Machine } from './machine.js';

export interface SandboxOptions {
  /** Added to every call of every fake. */
  latencyMs?: number;
  /** The stand-in runner's heartbeat to the fake GitHub. */
  heartbeatMs?: number;
  /** EC2 `pending` → `running`, GCE PROVISIONING → RUNNING and an Azure VM's create (and the machine boot). Default 100 ms. */
  bootDelayMs?: number;
  /** Length of a `shutdown +N` minute inside machines. Default 60000 ms. */
  minuteMs?: number;
  /** Length of a Kubernetes second (Job deadlines and TTLs, grace periods, back-offs). Default 1000 ms. */
  kubernetesSecondMs?: number;
  /** Length of a Compute Engine second (`scheduling.maxRunDuration`). Default 1000 ms. */
  gceSecondMs?: number;
  /** What the fake Google Cloud project is like (its networks, organisation policy, the deployer's role). */
  gceProject?: Partial<GceProjectSettings>;
  /**
   * Whether the AWS caller may create the EC2 Spot service-linked role, which the account (it
   * starts without one) needs for its first spot launch. Default true; `sb.ec2.setSpotRole` changes it.
   */
  awsSpotRoleCreation?: boolean;
  /**
   * The AWS launching identity's policies. Default: docs/permissions/aws/launcher-policy.json as
   * the README gives it; `sb.ec2.iam.setLauncherPolicies` changes them during a test.
   */
  awsLauncherPolicies?: PolicyDocument[];
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
  /** A kubeconfig file for the fake cluster (the launcher of the documented Role, namespace `ci-runners`). */
  KUBECONFIG: string;
  /** An `external_account` credential configuration (workload identity federation from GitHub OIDC). */
  GOOGLE_APPLICATION_CREDENTIALS: string;
  GOOGLE_CLOUD_PROJECT: string;
  /** `<gce url>/compute/v1/`. */
  CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE: string;
  /** The fake's https origin: Entra sign-in (the credential needs `disableInstanceDiscovery`). */
  AZURE_AUTHORITY_HOST: string;
  AZURE_TENANT_ID: string;
  /** The `launcher` app (Owner: may create role assignments). */
  AZURE_CLIENT_ID: string;
  AZURE_CLIENT_SECRET: string;
  AZURE_SUBSCRIPTION_ID: string;
  /** The fake's https origin, no trailing slash. */
  AZURE_RESOURCE_MANAGER_ENDPOINT: string;
  /** The sandbox CA (sandbox/tls/ca.pem), for the https of the fake Azure; read by Node at start. */
  NODE_EXTRA_CA_CERTS: string;
  [name: string]: string;
}

export interface Sandbox {
  env: SandboxEnv;
  tokens: FakeGitHub['tokens'];
  github: FakeGitHub;
  ec2: FakeEc2;
  ssm: FakeSsm;
  kubernetes: FakeKubernetes;
  gce: FakeGce;
  azure: FakeAzure;
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
    const github = await startFakeGitHub({
      faults,
      ...latency,
      ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
    });
    started.push(github);
    const awsIam = opts.awsLauncherPolicies ? new AwsIam(opts.awsLauncherPolicies) : new AwsIam();
    const ec2 = await startFakeEc2({
      faults,
      iam: awsIam,
      machines: fleet,
      ...latency,
      ...(opts.bootDelayMs !== undefined ? { bootDelayMs: opts.bootDelayMs } : {}),
      ...(opts.awsSpotRoleCreation !== undefined ? { spotRoleCreation: opts.awsSpotRoleCreation } : {}),
    });
    started.push(ec2);
    const ssm = await startFakeSsm({ faults, iam: awsIam, ...latency });
    started.push(ssm);
    const kubernetes = await startFakeKubernetes({
      faults,
      machines: fleet,
      github,
      ...latency,
      ...(opts.kubernetesSecondMs !== undefined ? { secondMs: opts.kubernetesSecondMs } : {}),
    });
    started.push(kubernetes);
    const gce = await startFakeGce({
      faults,
      machines: fleet,
      ...latency,
      ...(opts.bootDelayMs !== undefined ? { bootDelayMs: opts.bootDelayMs } : {}),
      ...(opts.gceSecondMs !== undefined ? { secondMs: opts.gceSecondMs } : {}),
      ...(opts.gceProject ? { project: opts.gceProject } : {}),
    });
    started.push(gce);
    const azure = await startFakeAzure({
      faults,
      machines: fleet,
      ...latency,
      ...(opts.bootDelayMs !== undefined ? { bootDelayMs: opts.bootDelayMs } : {}),
    });
    started.push(azure);
    const gcpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-gcp-credentials-'));
    started.push({ close: async () => fs.rmSync(gcpDir, { recursive: true, force: true }) });
    const gcpCredentials = gce.credentialsFile(gcpDir);
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
      GOOGLE_APPLICATION_CREDENTIALS: gcpCredentials,
      GOOGLE_CLOUD_PROJECT: GCE_PROJECT,
      CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE: `${gce.url}/compute/v1/`,
      AZURE_AUTHORITY_HOST: azure.url,
      AZURE_TENANT_ID,
      AZURE_CLIENT_ID: AZURE_APPS.launcher.clientId,
      AZURE_CLIENT_SECRET: AZURE_APPS.launcher.secret,
      AZURE_SUBSCRIPTION_ID,
      AZURE_RESOURCE_MANAGER_ENDPOINT: azure.url.replace(/\/+$/, ''),
      NODE_EXTRA_CA_CERTS: AZURE_CA_FILE,
    };

    let closing: Promise<void> | undefined;
    return {
      env,
      tokens: github.tokens,
      github,
      ec2,
      ssm,
      kubernetes,
      gce,
      azure,
      faults,
      machines: {
        failBoot: (n = 1) => fleet.failBoot(n),
        delayBoot: (n, ms) => fleet.delayBoot(n, ms),
        crashRunner: (machineId) => fleet.crashRunner(machineId),
        all: () => fleet.all(),
      },
      leftovers: async () => describeLeftovers(github, ec2, fleet, kubernetes, gce, azure),
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
 * Everything left: live or stopped instances (EC2 and GCE), Azure resource groups and running or
 * stopped VMs, orphaned volumes and disks, open spot requests, Jobs, pods and Secrets,
 * registrations, machine processes.
 */
export function describeLeftovers(
  github: Pick<FakeGitHub, 'runners'>,
  ec2: Pick<FakeEc2, 'leftovers' | 'instance'>,
  fleet: MachineFleet,
  kubernetes?: Pick<FakeKubernetes, 'leftovers' | 'ownsMachine'>,
  gce?: Pick<FakeGce, 'leftovers' | 'ownsMachine' | 'instances'>,
  azure?: Pick<FakeAzure, 'leftovers' | 'ownsMachine'>,
): string[] {
  const lines = [
    ...ec2.leftovers(),
    ...(kubernetes?.leftovers() ?? []),
    ...(gce?.leftovers() ?? []),
    ...(azure?.leftovers() ?? []),
  ];
  for (const r of github.runners()) {
    lines.push(
      `GitHub runner ${r.name} (id ${r.id}, ${r.scope}, ${r.status}${r.busy ? ', busy' : ''}${r.ephemeral ? ', ephemeral' : ''}) is still registered; labels ${r.labels.join(', ')}`,
    );
  }
  for (const m of fleet.all()) {
    // A pod's containers are reported by the cluster, with their pod.
    if (kubernetes?.ownsMachine(m)) continue;
    // An Azure VM's machine is reported by the fake Azure, with its VM (or as left behind by it).
    if (azure?.ownsMachine(m)) continue;
    const pids = m.processes();
    if (gce?.ownsMachine(m)) {
      // A VM that is not deleted is already reported with its instance (a TERMINATED one too);
      // report the processes of one that is gone, or has ended, but left processes behind.
      const vm = gce.instances().find((i) => i.machine === m);
      const reported = vm !== undefined && !vm.deleted && vm.status !== 'TERMINATED';
      if (pids.length > 0 && !reported) {
        lines.push(
          `machine ${m.id} (GCE instance ${vm?.zone}/${vm?.name}) still has ${pids.length} process(es) running (pids ${pids.join(', ')})`,
        );
      } else if (m.running && (vm === undefined || vm.deleted)) {
        lines.push(`machine ${m.id} (GCE instance ${vm?.zone}/${vm?.name}, deleted) is still powered on`);
      }
      continue;
    }
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
