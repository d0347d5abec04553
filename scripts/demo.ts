/**
 * `npm run demo`: the whole life of a runner against the loopback sandbox, with no cloud
 * account and no credentials. It runs the bundled dist/ entry exactly as the Actions runner
 * would (main, then post), queues a job for the runner, watches the machine end itself, and runs
 * the workflow's final cleanup job.
 * It exits non-zero if anything is left behind.
 */
import { existsSync } from 'node:fs';
import { ActionRun } from '../sandbox/actions.js';
import { GCE_SERVICE_ACCOUNTS } from '../sandbox/gce.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';

const CLOUDS = ['aws', 'azure', 'gcp', 'kubernetes'];
/** Kubernetes seconds (the Job TTL) pass faster in the demo: one lasts this many milliseconds. */
const KUBERNETES_SECOND_MS = 10;

function parseArgs(argv: string[]): { cloud: string } {
  let cloud = 'aws';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--cloud') cloud = argv[++i] ?? '';
    else if (argv[i]?.startsWith('--cloud=')) cloud = argv[i]!.slice('--cloud='.length);
  }
  if (!CLOUDS.includes(cloud)) {
    console.error(`demo: --cloud must be one of ${CLOUDS.join(', ')}; got ${JSON.stringify(cloud)}`);
    process.exit(2);
  }
  return { cloud };
}

const t0 = Date.now();
const say = (line: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}`);

/** Prints each change in the sandbox's inventory: registrations, machines, jobs. */
function watch(sb: Sandbox): () => void {
  const seen = new Map<string, string>();
  const note = (key: string, value: string, line: string): void => {
    if (seen.get(key) !== value) {
      seen.set(key, value);
      say(line);
    }
  };
  const tick = (): void => {
    const runners = sb.github.runners();
    const listed = new Set(runners.map((r) => r.name));
    for (const key of seen.keys()) {
      const name = key.startsWith('runner:') ? key.slice('runner:'.length) : undefined;
      if (name && !listed.has(name) && seen.get(key) !== 'gone')
        note(key, 'gone', `github: runner ${name} is no longer registered`);
    }
    for (const r of runners) {
      note(
        `runner:${r.name}`,
        `${r.status}/${r.busy}`,
        `github: runner ${r.name} is ${r.status}${r.busy ? ', busy with a job' : ''} (labels ${r.labels.join(', ')})`,
      );
    }
    for (const i of sb.ec2.instances()) {
      note(`instance:${i.id}`, i.state, `ec2: instance ${i.id} (${i.type}${i.spot ? ', spot' : ''}) is ${i.state}`);
    }
    for (const i of sb.gce.instances()) {
      const state = i.deleted
        ? `deleted${i.endedReason && i.endedReason !== 'deleted' ? ` (${i.endedReason})` : ''}`
        : i.status;
      note(
        `gce:${i.zone}/${i.name}`,
        state,
        `gce: instance ${i.zone}/${i.name} (${i.machineType}${i.guestAccelerators.map((g) => ` + ${g.count}x ${g.type}`).join('')}${i.scheduling?.provisioningModel === 'SPOT' ? ', spot' : ''}) is ${state}`,
      );
    }
    for (const g of sb.azure.groups()) {
      const state = g.deleted ? 'deleted' : (g.provisioningState ?? 'Succeeded');
      note(`azure-group:${g.name}`, state, `azure: resource group ${g.name} is ${state}`);
    }
    for (const v of sb.azure.vms()) {
      const state = v.deleted ? 'deleted' : (v.powerState ?? 'creating');
      note(
        `azure-vm:${v.group}/${v.name}`,
        state,
        `azure: VM ${v.name} in ${v.group} (${v.vmSize}${v.priority === 'Spot' ? ', spot' : ''}) is ${state}`,
      );
    }
    watchKubernetes(sb, seen, note);
  };
  const timer = setInterval(tick, 100);
  // One last look, so that what went in the final moments is reported too.
  return () => {
    clearInterval(timer);
    tick();
  };
}

type Note = (key: string, value: string, line: string) => void;

/** Jobs, pods and Secrets as they appear, change and go. */
function watchKubernetes(sb: Sandbox, seen: Map<string, string>, note: Note): void {
  const live = new Set<string>();
  for (const job of sb.kubernetes.jobs()) {
    const done = job.status?.conditions?.find(
      (c) => c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed'),
    );
    const state = done
      ? `${done.type.toLowerCase()}${done.reason ? ` (${done.reason})` : ''}`
      : job.status?.active
        ? 'active'
        : 'created';
    live.add(`job:${job.metadata.name}`);
    note(`job:${job.metadata.name}`, state, `kubernetes: Job ${job.metadata.name} is ${state}`);
  }
  for (const pod of sb.kubernetes.pods()) {
    const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting?.reason;
    const state = `${pod.status?.phase ?? 'Pending'}${waiting ? ` (${waiting})` : ''}${pod.spec?.nodeName ? ` on ${pod.spec.nodeName}` : ''}`;
    live.add(`pod:${pod.metadata.name}`);
    note(`pod:${pod.metadata.name}`, state, `kubernetes: pod ${pod.metadata.name} is ${state}`);
  }
  for (const secret of sb.kubernetes.secrets()) {
    const owner = secret.metadata.ownerReferences?.[0];
    const state = owner ? `owned by ${owner.kind} ${owner.name}` : 'created';
    live.add(`secret:${secret.metadata.name}`);
    note(`secret:${secret.metadata.name}`, state, `kubernetes: Secret ${secret.metadata.name} is ${state}`);
  }
  for (const key of seen.keys()) {
    const kind = /^(job|pod|secret):/.exec(key)?.[1];
    if (kind && !live.has(key) && seen.get(key) !== 'gone')
      note(
        key,
        'gone',
        `kubernetes: ${kind === 'job' ? 'Job' : kind === 'pod' ? 'pod' : 'Secret'} ${key.slice(kind.length + 1)} is gone`,
      );
  }
}

async function main(): Promise<void> {
  const { cloud } = parseArgs(process.argv.slice(2));
  if (!existsSync('dist/index.js')) {
    console.error('demo: dist/index.js is missing; run npm run build first');
    process.exit(2);
  }
  const sb = await startSandbox({ kubernetesSecondMs: KUBERNETES_SECOND_MS });
  const stopWatching = watch(sb);
  let leftovers: string[] = [];
  const ended: string[] = [];
  try {
    const kubernetes = cloud === 'kubernetes';
    const where = {
      aws: `fake EC2 at ${sb.env.AWS_ENDPOINT_URL_EC2}`,
      azure: `fake Azure Resource Manager and Entra sign-in at ${sb.azure.url} (https, sandbox CA)`,
      gcp: `fake Compute Engine at ${sb.gce.url} (credentials: Workload Identity Federation, as google-github-actions/auth sets up)`,
      kubernetes: `fake Kubernetes API server at ${sb.kubernetes.url} with a CPU node and a T4 GPU node (one Kubernetes second lasts ${KUBERNETES_SECOND_MS} ms here)`,
    }[cloud as 'aws' | 'azure' | 'gcp' | 'kubernetes'];
    say(`sandbox up: fake GitHub at ${sb.env.GITHUB_API_URL}, ${where}`);
    // As in a workflow that sets KUBERNETES_CONFIGURATION from a secret holding the kubeconfig.
    const env = kubernetes
      ? { ...sb.env, KUBECONFIG: '', KUBERNETES_CONFIGURATION: sb.kubernetes.kubeconfig() }
      : sb.env;
    const inputs = {
      cloud,
      region: 'us-east',
      // Azure's Ubuntu image has no NVIDIA driver; this one has.
      ...(cloud === 'azure' ? { image: 'microsoft-dsvm:ubuntu-hpc:2204:latest' } : {}),
      gpu: 't4',
      type: 's',
      labels: 'cml-gpu',
      token: sb.tokens.admin,
      'startup-timeout': '120',
      // The VM's own identity, which may delete its instance when the runner is done.
      ...(cloud === 'gcp' ? { 'gcp-service-account': GCE_SERVICE_ACCOUNTS.runner } : {}),
    };
    const onLog = (chunk: string): void => {
      for (const line of chunk.split('\n')) {
        if (line.trim() && !line.startsWith('::')) say(`  action | ${line}`);
        else if (line.startsWith('::error')) say(`  action | ERROR ${line}`);
      }
    };
    const run = new ActionRun({ env, inputs, onLog });
    say(
      `main: launching a ${cloud} t4 runner with label cml-gpu (the bundled dist/ entries action.yml names, as the Actions runner runs them)`,
    );
    const main = await run.main().done;
    say(`main exited ${main.code}; outputs: ${JSON.stringify(main.outputs)}`);
    const post = await run.post();
    say(`post exited ${post.code}`);
    run.dispose();
    if (main.code !== 0) throw new Error('the launch failed');

    say('a workflow job with runs-on: [self-hosted, cml-gpu] is queued');
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      name: 'train',
      labels: ['self-hosted', 'cml-gpu'],
      script: 'nvidia-smi -L || true; echo "training on $(hostname)"; sleep 1; echo "model saved"',
    });
    const done = await sb.github.waitJob(job.id, 60_000);
    say(`job ${done.id} ${done.status}: ${done.conclusion} on ${done.runnerName}`);
    for (const line of done.log.trim().split('\n')) say(`  job | ${line}`);

    // The machine ends itself after its job. The workflow's final job (mode: cleanup, if: always())
    // then ends what the launch made besides machines: on AWS, the launch's own security group.
    const machineGone = Date.now() + 30_000;
    while (Date.now() < machineGone && (await sb.leftovers()).some((l) => !l.includes('security group'))) {
      await new Promise((r) => setTimeout(r, 200));
    }
    say("the workflow's final job runs the action with mode: cleanup, as its if: always() job does");
    const cleanup = new ActionRun({ env, inputs: { ...inputs, mode: 'cleanup' }, onLog });
    const cleaned = await cleanup.main().done;
    say(`cleanup exited ${cleaned.code}`);
    await cleanup.post();
    cleanup.dispose();

    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      leftovers = await sb.leftovers();
      if (leftovers.length === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    stopWatching();
    leftovers = await sb.leftovers();
    // Who deleted each VM: its own service account (from inside the machine) or the action.
    for (const c of sb.gce.calls.filter((c) => c.action.startsWith('instances.delete') && c.status === 200))
      ended.push(`deleted by ${c.identity ?? 'unknown'}`);
    for (const c of sb.azure.calls.filter((c) => c.action.startsWith('resourceGroups.delete') && c.status < 300))
      ended.push(`deleted by ${c.identity ?? 'unknown'}`);
    await sb.close();
  }
  if (leftovers.length > 0) {
    say(`LEFT BEHIND:\n  ${leftovers.join('\n  ')}`);
    process.exit(1);
  }
  say(
    cloud === 'kubernetes'
      ? 'nothing left: no Job, no pod, no Secret, no runner registration'
      : 'nothing left: no machine, no disk, no runner registration',
  );
  if (cloud === 'azure')
    say(
      `each resource group was ${ended.join('; ') || 'not deleted'}: the VM's own managed identity, with the token the instance metadata service gave it`,
    );
  if (cloud === 'gcp') {
    say(
      `each VM was ${ended.join('; ') || 'not deleted'}: the VM's own service account, with the token its metadata server gave it`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
