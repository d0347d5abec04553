/**
 * `npm run chaos`: random launch → job → cleanup lifecycles of the bundled action against the
 * loopback sandbox, with faults injected at random points, then a count of what was left.
 *
 *   npm run chaos -- --runs 20 --seed 1 [--concurrency 4] [--clouds aws,kubernetes,gcp]
 *                    [--only 3,7] [--settle 60] [--verbose]
 *
 * The last line of a clean run, and the first line of the report otherwise, is
 * `chaos: runs=N faults=F orphans=O leaked-registrations=R`. It exits 1 when anything is left,
 * after saying what was left and which run left it. scripts/CHAOS.md says more.
 */
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActionRun, type StepResult } from '../sandbox/actions.js';
import { startSandbox, type Fault, type Sandbox } from '../sandbox/index.js';

const CLOUDS = ['aws', 'kubernetes', 'gcp'] as const;
type Cloud = (typeof CLOUDS)[number];
/** Without --clouds: the clouds whose figures the notes quote, so a seed replays as it did. */
const DEFAULT_CLOUDS: Cloud[] = ['aws', 'kubernetes'];

/** A Kubernetes second lasts this many milliseconds, so a finished Job's 300 s TTL passes in 3 s. */
const KUBERNETES_SECOND_MS = 10;
/** How long a queued job may wait for its runner and run. */
const JOB_TIMEOUT_MS = 25_000;
/** A step that runs longer than this (beyond main's startup-timeout) is reported and killed. */
const STEP_GRACE_MS = 90_000;
/** Settling ends early once the leftovers have not changed for this long. */
const SETTLE_QUIET_MS = 15_000;

interface Options {
  runs: number;
  seed: number;
  concurrency: number;
  clouds: Cloud[];
  /** Play only these run numbers (1-based), for a replay. */
  only?: number[];
  settleSeconds: number;
  verbose: boolean;
  /** Print each run's choices and faults, and run nothing. */
  planOnly: boolean;
  /** Leave the cleanup job out, to see what post alone leaves. */
  cleanupJob: boolean;
}

const USAGE = `usage: npm run chaos -- [--runs N] [--seed S] [--concurrency C] [--clouds aws,kubernetes,gcp] [--only K[,K...]] [--settle SECONDS] [--no-cleanup-job] [--verbose] [--plan]`;

function parseArgs(argv: string[]): Options {
  const opts: Options = {
    runs: 20,
    seed: 1,
    concurrency: 4,
    clouds: [...DEFAULT_CLOUDS],
    settleSeconds: 60,
    verbose: false,
    planOnly: false,
    cleanupJob: true,
  };
  const fail = (message: string): never => {
    console.error(`chaos: ${message}\n${USAGE}`);
    process.exit(2);
  };
  const whole = (flag: string, value: string | undefined, min: number): number => {
    if (value === undefined || !/^\d+$/.test(value) || Number(value) < min)
      fail(`${flag} takes a whole number of at least ${min}; got ${JSON.stringify(value)}`);
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (eq > 0 ? arg.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case '--runs':
        opts.runs = whole(flag, value(), 1);
        break;
      case '--seed':
        opts.seed = whole(flag, value(), 0) >>> 0;
        break;
      case '--concurrency':
        opts.concurrency = whole(flag, value(), 1);
        break;
      case '--settle':
        opts.settleSeconds = whole(flag, value(), 0);
        break;
      case '--clouds': {
        const clouds = (value() ?? '')
          .split(',')
          .map((c) => c.trim())
          .filter(Boolean);
        const unknown = clouds.filter((c) => !(CLOUDS as readonly string[]).includes(c));
        if (clouds.length === 0 || unknown.length > 0)
          fail(`--clouds takes a comma list of ${CLOUDS.join(', ')}; got ${JSON.stringify(clouds.join(','))}`);
        opts.clouds = clouds as Cloud[];
        break;
      }
      case '--only': {
        const raw = value() ?? '';
        if (!/^\d+(,\d+)*$/.test(raw) || raw.split(',').some((k) => Number(k) < 1))
          fail(`--only takes run numbers from 1, comma-separated; got ${JSON.stringify(raw)}`);
        opts.only = [...new Set(raw.split(',').map(Number))].sort((a, b) => a - b);
        break;
      }
      case '--verbose':
        opts.verbose = true;
        break;
      case '--plan':
        opts.planOnly = true;
        break;
      case '--no-cleanup-job':
        opts.cleanupJob = false;
        break;
      case '--help':
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        fail(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------
// Choices: every random choice comes from a seeded stream, one per run

/** mulberry32: 32 bits of state, plenty for picking faults, and one sequence per seed. */
class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A whole number from `lo` to `hi`, both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

/** Each run has its own stream, so run K makes the same choices alone (`--only K`) as among others. */
function runSeed(seed: number, run: number): number {
  let h = (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(run, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** What this build of the action can do; a choice it cannot take is dropped, not redrawn. */
interface Features {
  /** `mode: cleanup` is accepted (and wanted: see `--no-cleanup-job`). */
  cleanup: boolean;
  /** `aws-subnet` takes a comma list. */
  subnetList: boolean;
  /** `allow-partial` is an input the action reads. */
  allowPartial: boolean;
}

type Phase = 'launch' | 'job' | 'ending';

/** What a run has produced so far, for faults that act on it. */
interface RunState {
  sb: Sandbox;
  /** Main, while it runs. */
  child?: ChildProcess;
  /** EC2 instance ids or Kubernetes Job names, from main's outputs. */
  machines: string[];
  /** Main was sent SIGTERM: the workflow is cancelled, and later jobs do not run. */
  cancelled: boolean;
  problems: string[];
}

interface PlannedFault {
  phase: Phase;
  /** Milliseconds after its phase starts. */
  atMs: number;
  what: string;
  /** Injects the fault; returns why it could not be, or undefined when it was. */
  inject(run: RunState): string | undefined;
}

interface RunPlan {
  run: number;
  runId: string;
  /** The runners' label and name prefix. */
  label: string;
  cloud: Cloud;
  /** Inputs besides the token and the kubeconfig. */
  inputs: Record<string, string>;
  kubeconfigInput: boolean;
  startupTimeoutMs: number;
  /** The choices, as a reader wants them. */
  choices: string;
  /** Choices this build cannot take. */
  dropped: string[];
  faults: PlannedFault[];
}

const apiFault = (what: string, fault: Fault, phase: Phase, atMs: number): PlannedFault => ({
  phase,
  atMs,
  what,
  inject: ({ sb }) => {
    sb.faults.add(fault);
    return undefined;
  },
});

const times = (n: number): string => (n > 1 ? ` x${n}` : '');

/** A fault in a call the launch makes: throttling, 5xx, capacity, a slow answer. */
function launchApiFault(rnd: Random, cloud: Cloud, single: boolean, atMs: number): PlannedFault {
  // Every value is drawn whatever the kind, so later choices do not depend on this one's kind.
  const n = rnd.int(1, 3);
  const kind = rnd.next();
  const ec2Action = rnd.pick(['RunInstances', 'DescribeInstances', 'DescribeImages']);
  const ec2Error = rnd.pick(['InternalError', 'Unavailable']);
  const kubeAction = rnd.pick(['create jobs', 'create secrets', 'list pods', 'list jobs']);
  const kubeError = rnd.pick(['TooManyRequests', 'InternalError', 'ServiceUnavailable']);
  const gceAction = rnd.pick([
    'instances.insert .*',
    'instances.aggregatedList global',
    'zoneOperations.wait .*',
    'machineTypes.aggregatedList global',
  ]);
  const gceError = rnd.pick(['backendError', 'rateLimitExceeded']);
  const route = rnd.pick([
    single ? 'POST /repos/.+/actions/runners/generate-jitconfig' : 'POST /repos/.+/actions/runners/registration-token',
    'GET /repos/.+/actions/runners',
  ]);
  const status = rnd.pick([500, 502, 503]);
  const limit = rnd.pick([429, 403]);
  const delayMs = rnd.int(500, 3000);
  const capacityTimes = rnd.int(1, 2);

  // [weight, what, fault]: half GitHub, half the cloud.
  const kinds: Array<[number, string, Fault]> = [
    [0.2, `github ${route} ${status}${times(n)}`, { service: 'github', action: route, status, times: n }],
    [
      0.15,
      `github ${route} ${limit} rate limit, Retry-After 1${times(n)}`,
      { service: 'github', action: route, status: limit, retryAfter: 1, times: n },
    ],
    [0.15, `github ${route} slow ${delayMs} ms`, { service: 'github', action: route, delayMs }],
    ...(cloud === 'gcp'
      ? ([
          [
            0.2,
            `gce ${gceAction} ${gceError}${times(n)}`,
            { service: 'gce', action: gceAction, code: gceError, times: n },
          ],
          [
            0.2,
            `gce instances.insert ZONE_RESOURCE_POOL_EXHAUSTED${times(capacityTimes)}`,
            {
              service: 'gce',
              action: 'instances.insert .*',
              code: 'ZONE_RESOURCE_POOL_EXHAUSTED',
              times: capacityTimes,
            },
          ],
          [0.1, `gce ${gceAction} slow ${delayMs} ms`, { service: 'gce', action: gceAction, delayMs }],
        ] as Array<[number, string, Fault]>)
      : cloud === 'aws'
        ? ([
            [
              0.15,
              `ec2 ${ec2Action} RequestLimitExceeded${times(n)}`,
              { service: 'ec2', action: ec2Action, code: 'RequestLimitExceeded', times: n },
            ],
            [
              0.1,
              `ec2 ${ec2Action} ${ec2Error}${times(n)}`,
              { service: 'ec2', action: ec2Action, code: ec2Error, times: n },
            ],
            [
              0.15,
              `ec2 RunInstances InsufficientInstanceCapacity${times(capacityTimes)}`,
              { service: 'ec2', action: 'RunInstances', code: 'InsufficientInstanceCapacity', times: capacityTimes },
            ],
            [
              0.05,
              `ssm GetParameter ThrottlingException${times(n)}`,
              { service: 'ssm', action: 'GetParameter', code: 'ThrottlingException', times: n },
            ],
            [0.05, `ec2 ${ec2Action} slow ${delayMs} ms`, { service: 'ec2', action: ec2Action, delayMs }],
          ] as Array<[number, string, Fault]>)
        : ([
            [
              0.3,
              `kubernetes ${kubeAction} ${kubeError}${times(n)}`,
              { service: 'kubernetes', action: kubeAction, code: kubeError, times: n },
            ],
            [
              0.2,
              `kubernetes ${kubeAction} slow ${delayMs} ms`,
              { service: 'kubernetes', action: kubeAction, delayMs },
            ],
          ] as Array<[number, string, Fault]>)),
  ];
  let left = kind;
  const [, what, fault] =
    kinds.find(([weight]) => {
      left -= weight;
      return left < 0;
    }) ?? kinds[kinds.length - 1]!;
  return apiFault(what, fault, 'launch', atMs);
}

/** A fault in a call that ends things: post after a failed launch, or the cleanup job. */
function endingApiFault(rnd: Random, cloud: Cloud): PlannedFault {
  const n = rnd.int(1, 3);
  const kind = rnd.next();
  const status = rnd.pick([500, 503, 429]);
  const ec2Error = rnd.pick(['RequestLimitExceeded', 'InternalError']);
  const ec2Action = rnd.pick(['TerminateInstances', 'DescribeInstances']);
  const kubeAction = rnd.pick(['delete jobs', 'delete secrets', 'list jobs']);
  const kubeError = rnd.pick(['TooManyRequests', 'InternalError']);
  const route = 'DELETE /repos/.+/actions/runners/\\d+';
  if (kind < 0.4) {
    const fault: Fault = {
      service: 'github',
      action: route,
      status,
      times: n,
      ...(status === 429 ? { retryAfter: 1 } : {}),
    };
    return apiFault(`github DELETE runner ${status}${times(n)}`, fault, 'ending', 0);
  }
  if (cloud === 'kubernetes')
    return apiFault(
      `kubernetes ${kubeAction} ${kubeError}${times(n)}`,
      { service: 'kubernetes', action: kubeAction, code: kubeError, times: n },
      'ending',
      0,
    );
  if (cloud === 'gcp') {
    const gceAction = kind < 0.7 ? 'instances.delete .*' : 'instances.aggregatedList global';
    return apiFault(
      `gce ${gceAction} backendError${times(n)}`,
      { service: 'gce', action: gceAction, code: 'backendError', times: n },
      'ending',
      0,
    );
  }
  return apiFault(
    `ec2 ${ec2Action} ${ec2Error}${times(n)}`,
    { service: 'ec2', action: ec2Action, code: ec2Error, times: n },
    'ending',
    0,
  );
}

function planRun(seed: number, run: number, clouds: readonly Cloud[], features: Features): RunPlan {
  const rnd = new Random(runSeed(seed, run));
  // Draw every value in a fixed order, whether or not it is used, so that a choice this build
  // cannot take (or another cloud) leaves the rest of the run's choices as they were.
  const cloud = rnd.pick(clouds);
  const count = rnd.pick([1, 1, 1, 2, 2, 3]);
  const single = rnd.chance(0.75);
  // Long enough to outlast main noticing the runner online and post, so the job finds it.
  const idleTimeout = rnd.int(6, 12);
  const startupTimeout = rnd.int(20, 40);
  const typeList = rnd.chance(0.35);
  const gpu = rnd.chance(0.2);
  const spot = rnd.chance(0.35);
  const subnets = rnd.chance(0.3);
  const partial = rnd.chance(0.25);
  const kubeconfigInput = rnd.chance(0.5);

  const label = `chaos-s${seed}-r${run}`;
  const inputs: Record<string, string> = {
    cloud,
    labels: label,
    name: label,
    count: String(count),
    single: String(single),
    'startup-timeout': String(startupTimeout),
  };
  const choices = [
    cloud,
    `count=${count}`,
    single ? 'single' : `reusable idle-timeout=${idleTimeout}s`,
    `startup-timeout=${startupTimeout}s`,
  ];
  const dropped: string[] = [];
  if (!single) inputs['idle-timeout'] = String(idleTimeout);
  if (cloud === 'aws') {
    inputs.region = 'us-east';
    if (typeList) inputs.type = 'g4dn.xlarge,g5.xlarge';
    else Object.assign(inputs, { type: 's', gpu: gpu ? 't4' : 'nogpu' });
    choices.push(`type=${inputs.type}${inputs.gpu === 't4' ? ' gpu=t4' : ''}`);
    if (spot) {
      inputs.spot = 'true';
      choices.push('spot');
    }
    if (subnets && features.subnetList) {
      inputs['aws-subnet'] = 'subnet-0a1,subnet-0b2';
      choices.push(`aws-subnet=${inputs['aws-subnet']}`);
    } else if (subnets) dropped.push('aws-subnet=subnet-0a1,subnet-0b2 (this build takes one subnet)');
  } else if (cloud === 'gcp') {
    // The VM's own account may delete it, so it ends itself as in the README's setup.
    Object.assign(inputs, {
      region: 'us-central1',
      type: typeList ? 'n1-standard-4,n2-standard-2' : 's',
      gpu: gpu ? 't4' : 'nogpu',
      'gcp-service-account': 'runner@sandbox-project.iam.gserviceaccount.com',
    });
    choices.push(`type=${inputs.type}${gpu ? ' gpu=t4' : ''}`);
    if (spot) {
      inputs.spot = 'true';
      choices.push('spot');
    }
  } else {
    // Half a CPU, so that a few runs' pods fit the sandbox's 8-CPU node side by side.
    Object.assign(inputs, { type: '500m/1Gi', gpu: gpu ? 't4' : 'nogpu' });
    choices.push(`type=500m/1Gi${gpu ? ' gpu=t4' : ''}`, kubeconfigInput ? 'kubeconfig input' : 'KUBECONFIG file');
  }
  if (partial && count > 1 && features.allowPartial) {
    inputs['allow-partial'] = 'true';
    choices.push('allow-partial');
  } else if (partial && count > 1) dropped.push('allow-partial (not in this build)');

  const faults: PlannedFault[] = [];
  const apiFaults = rnd.pick([0, 1, 1, 2, 2, 3]);
  for (let i = 0; i < apiFaults; i++) {
    const atMs = rnd.chance(0.5) ? 0 : rnd.int(0, 2500);
    faults.push(launchApiFault(rnd, cloud, single, atMs));
  }
  if (rnd.chance(0.12)) {
    faults.push({
      phase: 'launch',
      atMs: 0,
      what: 'the next machine never boots',
      inject: ({ sb }) => {
        sb.machines.failBoot(1);
        return undefined;
      },
    });
  }
  const slowBoots = rnd.int(1, count);
  const slowBootMs = rnd.int(2000, 8000);
  if (rnd.chance(0.15)) {
    faults.push({
      phase: 'launch',
      atMs: 0,
      what: `the next ${slowBoots} machine(s) boot ${slowBootMs} ms late`,
      inject: ({ sb }) => {
        sb.machines.delayBoot(slowBoots, slowBootMs);
        return undefined;
      },
    });
  }
  const cancelAtMs = rnd.int(0, 3000);
  if (rnd.chance(0.12)) {
    faults.push({
      phase: 'launch',
      atMs: cancelAtMs,
      what: 'SIGTERM to main (the workflow is cancelled)',
      inject: (state) => {
        const { child } = state;
        if (!child || child.exitCode !== null || child.signalCode !== null) return 'main had already ended';
        child.kill('SIGTERM');
        state.cancelled = true;
        return undefined;
      },
    });
  }

  const victim = rnd.int(0, count - 1);
  // Jobs last about two seconds once a runner takes them; this lands most job faults mid-job.
  const jobFaultAtMs = rnd.int(300, 2500);
  const interrupt = rnd.chance(0.5);
  if (spot && cloud === 'gcp' && interrupt) {
    faults.push({
      phase: 'job',
      atMs: jobFaultAtMs,
      what: `spot preemption of machine ${victim + 1}`,
      inject: ({ sb, machines, problems }) => {
        const id = machines[victim % Math.max(1, machines.length)];
        if (!id) return 'no machine was launched';
        const [zone, name] = id.split('/') as [string, string];
        const vm = sb.gce.instance(zone, name);
        if (vm?.provisioningModel !== 'SPOT') return `${id} is on-demand (the launch fell back)`;
        if (vm.deleted) return `${id} had already deleted itself`;
        // The VM may still delete itself meanwhile; only a live VM's failed preemption is a problem.
        sb.gce.preempt(zone, name).catch((err: Error) => {
          if (!sb.gce.instance(zone, name)?.deleted) problems.push(`preempt(${id}) failed: ${err.message}`);
        });
        return undefined;
      },
    });
  }
  if (spot && cloud === 'aws' && interrupt) {
    faults.push({
      phase: 'job',
      atMs: jobFaultAtMs,
      what: `spot interruption of machine ${victim + 1} (2 s notice)`,
      inject: ({ sb, machines, problems }) => {
        const id = machines[victim % Math.max(1, machines.length)];
        if (!id) return 'no machine was launched';
        if (!sb.ec2.instance(id)?.spot) return `${id} is on-demand (the launch fell back)`;
        sb.ec2
          .interruptSpot(id, { noticeMs: 2000 })
          .catch((err: Error) => problems.push(`interruptSpot(${id}) failed: ${err.message}`));
        return undefined;
      },
    });
  }
  if (rnd.chance(0.15)) {
    faults.push({
      phase: 'job',
      atMs: jobFaultAtMs,
      what: `the runner of machine ${victim + 1} crashes`,
      inject: ({ sb, machines }) => {
        const id = machines[victim % Math.max(1, machines.length)];
        if (!id) return 'no machine was launched';
        // A pod's machine is its container, named after the pod (`<Job name>-xxxxx`); a GCE
        // machine is its instance's numeric id.
        const gce = id.includes('/') ? sb.gce.instance(...(id.split('/') as [string, string]))?.id : undefined;
        const machine = sb.machines
          .all()
          .find((m) => m.running && (m.id === id || m.id === gce || m.id.startsWith(`${id}-`)));
        if (!machine) return `the machine of ${id} is not running`;
        return sb.machines.crashRunner(machine.id) ? undefined : `no runner was running on ${machine.id}`;
      },
    });
  }
  if (rnd.chance(0.3)) faults.push(endingApiFault(rnd, cloud));

  return {
    run,
    runId: `${seed}${String(run).padStart(4, '0')}`,
    label,
    cloud,
    inputs,
    kubeconfigInput: cloud === 'kubernetes' && kubeconfigInput,
    startupTimeoutMs: startupTimeout * 1000,
    choices: choices.join(' '),
    dropped,
    faults,
  };
}

// ---------------------------------------------------------------------------------------------
// Playing a run as a workflow would: launch job (main, post), the jobs, a cleanup job

interface StepOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  error?: string;
}

interface Outcome {
  plan: RunPlan;
  /** Faults injected, with when (seconds after their phase began). */
  injected: string[];
  /** Planned faults that were not injected, and why. */
  skipped: string[];
  main?: StepOutcome & { runners: number };
  post?: StepOutcome;
  jobs?: { queued: number; completed: number; failed: number } | 'cancelled';
  cleanup?: StepOutcome | 'none';
  /** Leftover keys of this run right after post, and right after the cleanup job. */
  afterPost: Set<string>;
  afterCleanup: Set<string>;
  /** Steps that hung, calls into the sandbox that failed. */
  problems: string[];
}

/** The first `::error::` of a step's log, on one line; for a step that crashed, its last line. */
function firstError(log: string, failed: boolean): string | undefined {
  const lines = log.split('\n');
  const error = lines.find((l) => l.startsWith('::error'));
  const text = error
    ? error.replace(/^::error[^:]*::/, '').split('%0A')[0]!
    : failed
      ? lines.filter((l) => l.trim() && !l.startsWith('::')).pop()
      : undefined;
  return text && text.length > 220 ? `${text.slice(0, 217)}...` : text;
}

function stepOutcome(result: StepResult, startedAt: number): StepOutcome {
  const error = firstError(result.log, result.code !== 0);
  return {
    code: result.code,
    signal: result.signal,
    seconds: (Date.now() - startedAt) / 1000,
    ...(error ? { error } : {}),
  };
}

/** Waits for a step; one that outlives `limitMs` is reported, and killed when we hold its process. */
async function finish(
  done: Promise<StepResult>,
  limitMs: number,
  what: string,
  problems: string[],
  child?: ChildProcess,
): Promise<StepResult | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      problems.push(`${what} did not end within ${Math.round(limitMs / 1000)} s${child ? ' and was killed' : ''}`);
      if (child) child.kill('SIGKILL');
      else resolve(undefined);
    }, limitMs);
  });
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Injects a phase's faults at their times; the returned function stops the ones not yet due. */
function startPhase(phase: Phase, state: RunState, outcome: Outcome): () => void {
  const t0 = Date.now();
  const timers: NodeJS.Timeout[] = [];
  const pending = new Set<PlannedFault>();
  const inject = (f: PlannedFault): void => {
    pending.delete(f);
    const why = f.inject(state);
    if (why === undefined) outcome.injected.push(`${f.what} @${phase} +${((Date.now() - t0) / 1000).toFixed(1)}s`);
    else outcome.skipped.push(`${f.what}: ${why}`);
  };
  for (const f of outcome.plan.faults.filter((x) => x.phase === phase)) {
    pending.add(f);
    if (f.atMs === 0) inject(f);
    else timers.push(setTimeout(() => inject(f), f.atMs));
  }
  return () => {
    for (const t of timers) clearTimeout(t);
    for (const f of pending) outcome.skipped.push(`${f.what}: its ${phase} phase ended first`);
    pending.clear();
  };
}

/** What every run shares. */
interface Lab {
  sb: Sandbox;
  features: Features;
  /** A copy of action.yml and dist/, so a rebuild meanwhile does not pull the bundle from under a run. */
  actionDir: string;
  belongs: (line: string, plan: RunPlan) => boolean;
}

async function playRun({ sb, features, actionDir, belongs }: Lab, plan: RunPlan): Promise<Outcome> {
  const outcome: Outcome = {
    plan,
    injected: [],
    skipped: [],
    afterPost: new Set(),
    afterCleanup: new Set(),
    problems: [],
  };
  const state: RunState = { sb, machines: [], cancelled: false, problems: outcome.problems };
  const env = { ...sb.env, GITHUB_RUN_ID: plan.runId };
  const access: Record<string, string> = plan.kubeconfigInput ? { kubeconfig: sb.kubernetes.kubeconfig() } : {};
  const snapshot = async (into: Set<string>): Promise<void> => {
    for (const line of await sb.leftovers()) if (belongs(line, plan)) into.add(leftoverKey(line));
  };

  // The launch job: main, then post (post-if: always()).
  const launch = new ActionRun({ actionDir, env, inputs: { ...plan.inputs, token: sb.tokens.admin, ...access } });
  try {
    let t = Date.now();
    const started = launch.main();
    state.child = started.child;
    const stop = startPhase('launch', state, outcome);
    const main = await finish(
      started.done,
      plan.startupTimeoutMs + STEP_GRACE_MS,
      'main',
      outcome.problems,
      started.child,
    );
    stop();
    state.child = undefined;
    if (main) {
      state.machines = (main.outputs['instance-ids'] ?? '').split(',').filter(Boolean);
      outcome.main = {
        ...stepOutcome(main, t),
        runners: (main.outputs['runner-names'] ?? '').split(',').filter(Boolean).length,
      };
    }
    const launched = main?.code === 0;
    if (launched && state.cancelled) {
      outcome.problems.push(
        main.log.includes('Received SIGTERM')
          ? 'main logged the SIGTERM ("post ends what was recorded") and then finished with every runner online and exit 0, so post ends nothing while the cancelled workflow runs no job'
          : 'main finished with exit 0 although SIGTERM was sent before it exited (it did not log receiving it)',
      );
    }

    // Post only ends things after a failed launch; that is when its calls can fail.
    const stopEnding = launched ? () => undefined : startPhase('ending', state, outcome);
    t = Date.now();
    const post = await finish(launch.post(), STEP_GRACE_MS, 'post', outcome.problems);
    stopEnding();
    if (post) outcome.post = stepOutcome(post, t);
    await snapshot(outcome.afterPost);

    // The next jobs: one per runner, on this run's label; a cancelled workflow runs none.
    if (launched && state.cancelled) outcome.jobs = 'cancelled';
    else if (launched && outcome.main) {
      const ids = state.machines.map(
        () => sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: [plan.label], script: 'sleep 2' }).id,
      );
      const stopJob = startPhase('job', state, outcome);
      const results = await Promise.allSettled(ids.map((id) => sb.github.waitJob(id, JOB_TIMEOUT_MS)));
      stopJob();
      const done = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      outcome.jobs = {
        queued: ids.length,
        completed: done.length,
        failed: done.filter((j) => j.conclusion !== 'success').length,
      };
    }
  } finally {
    launch.dispose();
  }

  // The cleanup job: `if: always()`, the same cloud and token, the same run id.
  if (!features.cleanup) {
    outcome.cleanup = 'none';
    if (outcome.main?.code === 0) {
      for (const f of plan.faults.filter((x) => x.phase === 'ending'))
        outcome.skipped.push(`${f.what}: nothing to end (the launch succeeded, and no cleanup job runs)`);
    }
  } else {
    const inputs: Record<string, string> = { mode: 'cleanup', cloud: plan.cloud, token: sb.tokens.admin, ...access };
    if (plan.inputs.region) inputs.region = plan.inputs.region;
    const cleanup = new ActionRun({ actionDir, env, inputs });
    try {
      const stopEnding = outcome.main?.code === 0 ? startPhase('ending', state, outcome) : () => undefined;
      const t = Date.now();
      const started = cleanup.main();
      const main = await finish(started.done, STEP_GRACE_MS, 'cleanup main', outcome.problems, started.child);
      stopEnding();
      if (main) outcome.cleanup = stepOutcome(main, t);
      await finish(cleanup.post(), STEP_GRACE_MS, 'cleanup post', outcome.problems);
      await snapshot(outcome.afterCleanup);
    } finally {
      cleanup.dispose();
    }
  }
  return outcome;
}

function describeStep(name: string, s: StepOutcome | undefined): string {
  if (!s) return `${name} hung`;
  const how = s.code === 0 ? 'ok' : s.signal ? `killed by ${s.signal}` : `failed (exit ${s.code})`;
  return `${name} ${how} ${s.seconds.toFixed(1)}s${s.error ? `: ${s.error}` : ''}`;
}

function describeOutcome(o: Outcome): string[] {
  const p = o.plan;
  const lines = [
    `run ${p.run} (run id ${p.runId}): ${p.choices}${p.dropped.length ? `; dropped: ${p.dropped.join(', ')}` : ''}`,
  ];
  lines.push(`  faults: ${o.injected.length ? o.injected.join('; ') : 'none'}`);
  if (o.skipped.length) lines.push(`  not injected: ${o.skipped.join('; ')}`);
  const steps = [
    o.main
      ? `${describeStep('main', o.main)}${o.main.code === 0 ? ` (${o.main.runners} runner(s))` : ''}`
      : 'main hung',
    describeStep('post', o.post),
  ];
  if (o.jobs === 'cancelled') steps.push('no jobs (the workflow was cancelled)');
  else if (o.jobs)
    steps.push(
      `jobs ${o.jobs.completed}/${o.jobs.queued} completed${o.jobs.failed ? `, ${o.jobs.failed} failed` : ''}`,
    );
  steps.push(o.cleanup === 'none' ? 'no cleanup job' : describeStep('cleanup', o.cleanup));
  lines.push(`  ${steps.join(' | ')}`);
  for (const problem of o.problems) lines.push(`  problem: ${problem}`);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Accounting

/** The resource a leftover line is about, without its changing state. */
function leftoverKey(line: string): string {
  const m =
    /^(Kubernetes container \S+ of pod \S+|Kubernetes \w+ \S+|EC2 instance \S+|EBS volume \S+|Spot request \S+|GCE instance \S+|GCE disk \S+|GitHub runner \S+|machine \S+)/.exec(
      line,
    );
  return m ? m[1]! : line;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Which runs a leftover line belongs to: by the run id the product tags everything with
 * (`cml-runner:run-id`, `cml-runner/run-id`, the runner label `cml-run-<id>`), by the run's own
 * label and name prefix, and by the ids of the machines tagged with its run id.
 */
function attribution(sb: Sandbox, plans: RunPlan[]): (line: string, plan: RunPlan) => boolean {
  const patterns = new Map<RunPlan, RegExp>();
  for (const plan of plans) {
    const tokens = [`run-id=${plan.runId}`, `cml-run-${plan.runId}`, plan.label].map(escapeRegExp);
    patterns.set(plan, new RegExp(`(?<![\\w.-])(?:${tokens.join('|')})(?!\\w)`));
  }
  const byRunId = new Map(plans.map((p) => [p.runId, p]));
  return (line, plan) => {
    if (patterns.get(plan)!.test(line)) return true;
    // A machine whose line carries no tags: look its instance up.
    const id = /\b(i-[0-9a-f]+)\b/.exec(line)?.[1];
    if (id !== undefined) return byRunId.get(sb.ec2.instance(id)?.tags['cml-runner:run-id'] ?? '') === plan;
    // A GCE machine is named by its instance's numeric id.
    const gce = /^machine (\d+) /.exec(line)?.[1];
    return (
      gce !== undefined &&
      byRunId.get(sb.gce.instances().find((i) => i.id === gce)?.labels['cml-runner-run-id'] ?? '') === plan
    );
  };
}

/** Polls the leftovers until none are left, they stop changing for a while, or time is up. */
async function settle(sb: Sandbox, maxMs: number): Promise<{ left: string[]; seconds: number }> {
  const t0 = Date.now();
  let last = '';
  let changedAt = t0;
  for (;;) {
    const left = await sb.leftovers();
    const seconds = (Date.now() - t0) / 1000;
    if (left.length === 0) return { left, seconds };
    const now = left
      .map((l) => l.replace(/\(pids [^)]*\)/, ''))
      .sort()
      .join('\n');
    if (now !== last) {
      last = now;
      changedAt = Date.now();
    }
    if (Date.now() - changedAt >= SETTLE_QUIET_MS || Date.now() - t0 >= maxMs) return { left, seconds };
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Asks the bundled action itself whether it takes an input value: a refused one fails naming the input. */
async function detectFeatures(sb: Sandbox, actionDir: string): Promise<Features> {
  const accepts = async (input: string, value: string): Promise<boolean> => {
    // A bad token fails the launch (or the cleanup) before anything is created.
    const run = new ActionRun({
      actionDir,
      env: { ...sb.env, GITHUB_RUN_ID: '999999999' },
      inputs: { cloud: 'aws', token: sb.tokens.bad, 'startup-timeout': '20', [input]: value },
    });
    try {
      return !(await run.main().done).log.includes(`Input '${input}'`);
    } finally {
      run.dispose();
    }
  };
  const [cleanup, subnetList, readsAllowPartial] = await Promise.all([
    accepts('mode', 'cleanup'),
    accepts('aws-subnet', 'subnet-0a1,subnet-0b2'),
    // An input the action never reads is ignored; one it reads refuses a value that is not a boolean.
    accepts('allow-partial', 'maybe').then((ok) => !ok),
  ]);
  return { cleanup, subnetList, allowPartial: readsAllowPartial };
}

async function pool<T>(items: readonly T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  const worker = async (): Promise<void> => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: Math.min(width, queue.length) }, worker));
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync('dist/index.js')) {
    console.error('chaos: dist/index.js is missing; run npm run build first');
    process.exit(2);
  }
  const numbers = opts.only ?? Array.from({ length: opts.runs }, (_, i) => i + 1);
  if (opts.planOnly) {
    // Without a sandbox there is nothing to ask; every feature is assumed present.
    const all: Features = { cleanup: true, subnetList: true, allowPartial: true };
    for (const plan of numbers.map((k) => planRun(opts.seed, k, opts.clouds, all))) {
      console.log(`run ${plan.run} (run id ${plan.runId}): ${plan.choices}`);
      for (const f of plan.faults) console.log(`  ${f.phase} +${(f.atMs / 1000).toFixed(1)}s: ${f.what}`);
    }
    return;
  }
  const t0 = Date.now();
  const say = (line: string): void => {
    if (opts.verbose) console.log(line);
  };
  const actionDir = mkdtempSync(join(tmpdir(), 'cml-chaos-action-'));
  cpSync('action.yml', join(actionDir, 'action.yml'));
  cpSync('dist', join(actionDir, 'dist'), { recursive: true });
  const sb = await startSandbox({ kubernetesSecondMs: KUBERNETES_SECOND_MS });
  const close = async (): Promise<void> => {
    await sb.close();
    rmSync(actionDir, { recursive: true, force: true });
  };
  // Interrupted: end the sandbox's machines, or they outlive this process.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`chaos: ${signal}; closing the sandbox`);
      void close().finally(() => process.exit(130));
    });
  }
  let failed = false;
  try {
    const features = await detectFeatures(sb, actionDir);
    const cleanupInBuild = features.cleanup;
    features.cleanup &&= opts.cleanupJob;
    const missing = [
      !cleanupInBuild && 'mode: cleanup (no cleanup job is run)',
      !features.subnetList && 'a list in aws-subnet',
      !features.allowPartial && 'allow-partial',
    ].filter(Boolean);
    if (missing.length > 0) console.error(`chaos: not in this build, left out: ${missing.join('; ')}`);

    const plans = numbers.map((k) => planRun(opts.seed, k, opts.clouds, features));
    const belongs = attribution(sb, plans);
    const lab: Lab = { sb, features, actionDir, belongs };
    const outcomes: Outcome[] = [];
    await pool(plans, opts.concurrency, async (plan) => {
      const outcome = await playRun(lab, plan);
      outcomes.push(outcome);
      for (const line of describeOutcome(outcome)) say(line);
    });
    outcomes.sort((a, b) => a.plan.run - b.plan.run);
    if (!opts.verbose)
      for (const o of outcomes) for (const problem of o.problems) console.error(`chaos: run ${o.plan.run}: ${problem}`);

    // Faults still armed would only answer the runners' own calls now.
    sb.faults.clear();
    const { left, seconds } = await settle(sb, opts.settleSeconds * 1000);
    const registrations = left.filter((l) => l.startsWith('GitHub runner'));
    const orphans = left.filter((l) => !l.startsWith('GitHub runner'));
    const faults = outcomes.reduce((n, o) => n + o.injected.length, 0);
    say(
      `chaos: ${((Date.now() - t0) / 1000).toFixed(0)} s in all, ${seconds.toFixed(0)} s settling; launches ok ${outcomes.filter((o) => o.main?.code === 0).length}/${outcomes.length}; ` +
        `${sb.faults.fired.length} API fault answers given`,
    );
    console.log(
      `chaos: runs=${plans.length} faults=${faults} orphans=${orphans.length} leaked-registrations=${registrations.length}`,
    );
    if (left.length === 0) return;

    failed = true;
    console.log('left behind:');
    const guilty = new Set<Outcome>();
    for (const line of left) {
      const key = leftoverKey(line);
      const owners = outcomes.filter((o) => belongs(line, o.plan));
      for (const o of owners) guilty.add(o);
      const seen = owners.map((o) => {
        const phases = [
          o.afterPost.has(key) && 'after post',
          o.afterCleanup.has(key) && 'after the cleanup job',
        ].filter(Boolean);
        return `run ${o.plan.run}${phases.length ? `, present ${phases.join(' and ')}` : ''}`;
      });
      console.log(
        `  ${line}\n    ← ${seen.length ? seen.join('; ') : 'no run (not tagged with a run id this chaos run used)'}`,
      );
    }
    const clouds = opts.clouds.join(',');
    for (const o of guilty) {
      for (const line of describeOutcome(o)) console.log(line);
      console.log(
        `  replay: npm run chaos -- --seed ${opts.seed} --only ${o.plan.run} --clouds ${clouds}${opts.cleanupJob ? '' : ' --no-cleanup-job'} --verbose`,
      );
    }
    console.log(
      `Choices replay exactly with the same --seed and --clouds; timing does not, and with --concurrency above 1 a fault one run arms may be answered to another run's call.`,
    );
  } finally {
    await close();
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err: unknown) => {
  console.error(`chaos failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(2);
});
