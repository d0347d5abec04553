import { loadCloud } from '../src/clouds/types.js';
import { parseSpec, type LaunchSpec, type RunContext } from '../src/config.js';
import { GitHubForge } from '../src/forge/github.js';
import type { LedgerData } from '../src/ledger.js';
import type { Log } from '../src/log.js';
import { cleanup, cleanupRun, launch, sweep, type LaunchResult } from '../src/lifecycle.js';
import type { Sandbox } from '../sandbox/index.js';

/** A log that keeps what it was told, so tests can check warnings and masking. */
export class MemoryLog implements Log {
  lines: string[] = [];
  secrets: string[] = [];
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

export function context(sb: Sandbox, runId = '4242'): RunContext {
  return { repository: 'octo-org/ml', runId, serverUrl: sb.env.GITHUB_SERVER_URL!, apiUrl: sb.env.GITHUB_API_URL!, gcp: { GOOGLE_CLOUD_PROJECT: sb.env.GOOGLE_CLOUD_PROJECT }, azureSubscriptionId: sb.env.AZURE_SUBSCRIPTION_ID };
}

export function specFor(sb: Sandbox, inputs: Record<string, string>): LaunchSpec {
  const all: Record<string, string> = { cloud: 'aws', region: 'us-east', token: sb.tokens.admin, 'startup-timeout': '60', ...inputs };
  return parseSpec((n) => all[n] ?? '', context(sb));
}

export interface Attempt {
  result?: LaunchResult;
  error?: Error;
  /** The ledger as last persisted, as post would read it. */
  ledger?: LedgerData;
  log: MemoryLog;
}

/** Launches through the real SDK clients against the sandbox, keeping the persisted ledger. */
export async function attemptLaunch(sb: Sandbox, inputs: Record<string, string>, signal?: AbortSignal, runId = '4242', log = new MemoryLog()): Promise<Attempt> {
  const spec = specFor(sb, inputs);
  const attempt: Attempt = { log };
  const cloud = await loadCloud(spec.machine.cloud, spec.machine.region, { kubernetes: spec.machine.kubernetes?.access, gcp: spec.machine.gcp, azure: spec.machine.azure });
  const forge = new GitHubForge(spec.forge, log);
  try {
    attempt.result = await launch(spec, context(sb, runId), {
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
export async function cleanupLedger(sb: Sandbox, ledger: LedgerData): ReturnType<typeof cleanup> {
  const access = ledger.cloud === 'kubernetes' ? ({ source: 'the kubeconfig input', text: sb.kubernetes.kubeconfig() } as const) : undefined;
  const cloud = await loadCloud(ledger.cloud, ledger.region, { kubernetes: access, gcp: { project: sb.env.GOOGLE_CLOUD_PROJECT! }, azure: { subscriptionId: sb.env.AZURE_SUBSCRIPTION_ID! } });
  const forge = new GitHubForge({ scope: ledger.forge.scope, apiUrl: ledger.forge.apiUrl, token: sb.tokens.admin }, new MemoryLog());
  return cleanup(ledger, { cloud, forge, log: new MemoryLog() });
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
  const access = cloudName === 'kubernetes' ? ({ source: 'the kubeconfig input', text: sb.kubernetes.kubeconfig() } as const) : undefined;
  const cloud = await loadCloud(cloudName, REGIONS[cloudName], { kubernetes: access, gcp: { project: sb.env.GOOGLE_CLOUD_PROJECT! }, azure: { subscriptionId: sb.env.AZURE_SUBSCRIPTION_ID! } });
  const forge = new GitHubForge({ scope: { kind: 'repo', owner: 'octo-org', repo: 'ml' }, apiUrl: sb.env.GITHUB_API_URL!, token: sb.tokens.admin }, log);
  return { cloud, forge, log };
}

/** `mode: cleanup` for the tests' workflow run (4242, or `runId`). */
export async function cleanupRunOf(sb: Sandbox, cloudName: SandboxCloud = 'aws', runId = '4242', log = new MemoryLog()): ReturnType<typeof cleanupRun> {
  return cleanupRun({ ...context(sb), runId }, await endDeps(sb, cloudName, log));
}

/** `mode: sweep` with a grace period, at `now` (a clock that only tells the time). */
export async function sweepOf(sb: Sandbox, cloudName: SandboxCloud, graceSeconds: number, now = Date.now(), log = new MemoryLog()): ReturnType<typeof sweep> {
  const clock = { now: () => now, sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
  return sweep(context(sb), graceSeconds, { ...(await endDeps(sb, cloudName, log)), clock });
}

/** Waits until the sandbox holds nothing, or returns what is left after `ms`. */
export async function settle(sb: Sandbox, ms = 20_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = await sb.leftovers();
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Polls until `done()` holds, or fails naming what it waited for. */
export async function until(what: string, done: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
