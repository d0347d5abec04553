import { loadCloud } from '../src/clouds/types.js';
import { parseSpec, type LaunchSpec, type RunContext } from '../src/config.js';
import { GitHubForge } from '../src/forge/github.js';
import type { LedgerData } from '../src/ledger.js';
import type { Log } from '../src/log.js';
import { cleanup, launch, type LaunchResult } from '../src/lifecycle.js';
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

export function context(sb: Sandbox): RunContext {
  return { repository: 'octo-org/ml', runId: '4242', serverUrl: sb.env.GITHUB_SERVER_URL!, apiUrl: sb.env.GITHUB_API_URL! };
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
export async function attemptLaunch(sb: Sandbox, inputs: Record<string, string>, signal?: AbortSignal): Promise<Attempt> {
  const spec = specFor(sb, inputs);
  const log = new MemoryLog();
  const attempt: Attempt = { log };
  const cloud = await loadCloud(spec.machine.cloud, spec.machine.region, { kubernetes: spec.machine.kubernetes?.access });
  const forge = new GitHubForge(spec.forge, log);
  try {
    attempt.result = await launch(spec, context(sb), {
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
  const cloud = await loadCloud(ledger.cloud, ledger.region, { kubernetes: access });
  const forge = new GitHubForge({ scope: ledger.forge.scope, apiUrl: ledger.forge.apiUrl, token: sb.tokens.admin }, new MemoryLog());
  return cleanup(ledger, { cloud, forge, log: new MemoryLog() });
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
