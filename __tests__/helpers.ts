import { type CloudName, type CloudSpec, descriptorOf, loadCloud } from '../src/clouds/index.js';
import type { Cloud } from '../src/clouds/types.js';
import { parseSpec, type LaunchSpec, type RunContext } from '../src/config.js';
import { GitHubForge } from '../src/forge/github.js';
import type { LedgerData } from '../src/ledger.js';
import type { Log } from '../src/log.js';
import { realClock } from '../src/retry.js';
import { endLedger, endRun, launch, sweep, type LaunchResult } from '../src/lifecycle/index.js';
import type { Sandbox } from '../sandbox/index.js';

/** A log that keeps what it was told, so tests can check warnings and masking. */
export class MemoryLog implements Log {
  lines: string[] = [];
  secrets: string[] = [];
  /** Debug lines are kept apart, so tests that read `lines` see what a user sees. */
  debugLines: string[] = [];
  debug(m: string): void {
    this.debugLines.push(m);
  }
  info(m: string): void {
    this.lines.push(m);
  }
  warning(m: string): void {
    this.lines.push(`warning: ${m}`);
  }
  secret(v: string): void {
    this.secrets.push(v);
  }
  group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.lines.push(`## ${name}`);
    return fn();
  }
}

/** The workflow run, with the sandbox's environment as the one the entry would read (never process.env). */
export function context(sb: Sandbox, runId = '4242', env: Record<string, string> = sb.env): RunContext {
  return {
    repository: 'octo-org/ml',
    runId,
    serverUrl: sb.env.GITHUB_SERVER_URL!,
    apiUrl: sb.env.GITHUB_API_URL!,
    env,
  };
}

export function specFor(sb: Sandbox, inputs: Record<string, string>, env: Record<string, string> = sb.env): LaunchSpec {
  const all: Record<string, string> = {
    cloud: 'aws',
    region: 'us-east',
    token: sb.tokens.admin,
    'startup-timeout': '60',
    ...inputs,
  };
  return parseSpec((n) => all[n] ?? '', context(sb, '4242', env));
}

/** A cloud as post loads it: its options re-read by its descriptor (on Kubernetes, the sandbox kubeconfig as input). */
export async function cloudFor(
  sb: Sandbox,
  name: CloudName,
  region: string,
  log: Log = new MemoryLog(),
  env: Record<string, string> = sb.env,
): Promise<Cloud> {
  const inputs: Record<string, string> = name === 'kubernetes' ? { kubeconfig: sb.kubernetes.kubeconfig() } : {};
  const options = descriptorOf(name).options((n) => inputs[n] ?? '', env);
  return loadCloud({ name, options } as CloudSpec, region, { env, log, clock: realClock });
}

export interface Attempt {
  result?: LaunchResult;
  error?: Error;
  /** The ledger as last persisted, as post would read it. */
  ledger?: LedgerData;
  log: MemoryLog;
}

/** Launches through the real SDK clients against the sandbox, keeping the persisted ledger. */
export async function attemptLaunch(
  sb: Sandbox,
  inputs: Record<string, string>,
  signal?: AbortSignal,
  runId = '4242',
  log = new MemoryLog(),
  env: Record<string, string> = sb.env,
): Promise<Attempt> {
  const spec = specFor(sb, inputs, env);
  const attempt: Attempt = { log };
  const cloud = await loadCloud(spec.cloud, spec.machine.region, { env, log, clock: realClock, signal });
  const forge = new GitHubForge(spec.forge, log);
  try {
    attempt.result = await launch(spec, context(sb, runId, env), {
      cloud,
      forge,
      log,
      signal,
      persist: (d) => {
        attempt.ledger = JSON.parse(JSON.stringify(d)) as LedgerData;
      },
    });
  } catch (err) {
    attempt.error = err as Error;
  }
  return attempt;
}

/** What post does with a ledger (on Kubernetes, with the sandbox cluster's kubeconfig as input). */
export async function cleanupLedger(sb: Sandbox, ledger: LedgerData): ReturnType<typeof endLedger> {
  const cloud = await cloudFor(sb, ledger.cloud, ledger.region);
  const forge = new GitHubForge(
    { scope: ledger.forge.scope, apiUrl: ledger.forge.apiUrl, token: sb.tokens.admin },
    new MemoryLog(),
  );
  return endLedger(ledger, { cloud, forge, log: new MemoryLog() });
}

/** A ledger as post would see it had main not ended anything itself. */
export function unended(ledger: LedgerData): LedgerData {
  const copy = JSON.parse(JSON.stringify(ledger)) as LedgerData;
  for (const e of [...copy.registrations, ...copy.machines]) delete e.ended;
  return copy;
}

export type SandboxCloud = 'aws' | 'kubernetes' | 'gcp' | 'azure';
const REGIONS: Record<SandboxCloud, string> = { aws: 'us-east-1', kubernetes: '', gcp: 'us-central1', azure: 'eastus' };

async function endDeps(sb: Sandbox, cloudName: SandboxCloud, log: MemoryLog) {
  const cloud = await cloudFor(sb, cloudName, REGIONS[cloudName], log);
  const forge = new GitHubForge(
    { scope: { kind: 'repo', owner: 'octo-org', repo: 'ml' }, apiUrl: sb.env.GITHUB_API_URL!, token: sb.tokens.admin },
    log,
  );
  return { cloud, forge, log };
}

/** `mode: cleanup` for the tests' workflow run (4242, or `runId`). */
export async function cleanupRunOf(
  sb: Sandbox,
  cloudName: SandboxCloud = 'aws',
  runId = '4242',
  log = new MemoryLog(),
): ReturnType<typeof endRun> {
  return endRun({ ...context(sb), runId }, await endDeps(sb, cloudName, log));
}

/**
 * What a kept runner leaves once its machine ended itself: on AWS, the launch's own security
 * group, which `mode: cleanup` (or sweep) ends, as the README says. Does nothing for a launch
 * that kept no runner: main or post ended all of it.
 */
export async function cleanupKept(sb: Sandbox, ledger: LedgerData | undefined, runId = '4242'): Promise<void> {
  if (ledger?.cloud !== 'aws' || ledger.keep.length === 0) return;
  const log = new MemoryLog();
  const deps = { ...(await endDeps(sb, 'aws', log)), cloud: await cloudFor(sb, 'aws', ledger.region, log) };
  await endRun({ ...context(sb), runId }, deps);
}

/** `mode: sweep` with a grace period, at `now` (a clock that only tells the time). */
export async function sweepOf(
  sb: Sandbox,
  cloudName: SandboxCloud,
  graceSeconds: number,
  now = Date.now(),
  log = new MemoryLog(),
): ReturnType<typeof sweep> {
  const clock = { now: () => now, sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
  return sweep(context(sb), graceSeconds, { ...(await endDeps(sb, cloudName, log)), clock });
}

// The waiting helpers have one copy each, in support/; suites that import them from here get those.
export { settle } from './support/sandbox.js';
export { until } from './support/wait.js';
