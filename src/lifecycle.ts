import { randomUUID } from 'node:crypto';
import { renderStartupScript, type RunnerCredential } from './bootstrap/render.js';
import type { Cloud, Machine, MachineStatus } from './clouds/types.js';
import type { LaunchSpec, RunContext } from './config.js';
import { ForgeError, StartupTimeoutError, errorMessage } from './errors.js';
import type { GitHubForge } from './forge/github.js';
import { Ledger, type LedgerData } from './ledger.js';
import { maskSecrets, type Log } from './log.js';
import { mapLimited, realClock, withRetry, type Clock } from './retry.js';

/**
 * Launch and cleanup over a ledger. Launch records every registration and machine before the
 * call that creates it, waits until GitHub lists every runner online, and otherwise fails with
 * the machine's own log. Cleanup ends whatever a ledger names; "already gone" is success.
 */

export interface LaunchDeps {
  cloud: Cloud;
  forge: GitHubForge;
  log: Log;
  /** Called with the whole ledger after every change, before the next call. */
  persist: (data: LedgerData) => void;
  signal?: AbortSignal;
  clock?: Clock;
}

export interface LaunchedRunner {
  name: string;
  id: number;
  machine: Machine;
  secondsToOnline: number;
}

export interface LaunchResult {
  runners: LaunchedRunner[];
  labels: string[];
  region: string;
  ledger: LedgerData;
}

/** How many runners are minted and machines requested at once (GitHub writes are paced by the forge). */
const CONCURRENCY = 25;
/** Polling for online runners: fast at first, backing off; one GitHub and one cloud call per round. */
const POLL_FIRST_MS = 500;
const POLL_MAX_MS = 3000;
const CONSOLE_TAIL_LINES = 40;

export const TAG = {
  managed: 'cml-runner:managed',
  repo: 'cml-runner:repo',
  runId: 'cml-runner:run-id',
  runner: 'cml-runner:runner',
  expiresAt: 'cml-runner:expires-at',
} as const;

export async function launch(spec: LaunchSpec, ctx: RunContext, deps: LaunchDeps): Promise<LaunchResult> {
  const { cloud, forge, log, signal } = deps;
  const clock = deps.clock ?? realClock;
  const started = clock.now();
  const ledger = new Ledger(Ledger.empty(spec.machine.cloud, cloud.region, { scope: spec.forge.scope, apiUrl: spec.forge.apiUrl }), deps.persist);
  const secrets = new Set<string>([spec.forge.token]);
  const stopIfCancelled = (): void => {
    if (signal?.aborted) throw new Error('The launch was cancelled; post will end everything recorded so far.');
  };

  // Everything independent starts at once: the runner download and the cloud's own preparation
  // (image, dry run) run while each runner's credential is minted, so the first machine is
  // requested one round trip after the slowest of them.
  const prepared = Promise.all([forge.downloads(spec.runner.version), cloud.prepare(spec.machine)]);
  prepared.catch(() => undefined); // awaited below; this only keeps an early failure from going unobserved

  const machines = new Map<string, Machine>();
  try {
    await log.group(`Launching ${spec.runner.names.length} runner(s)`, async () => {
      const [group, registrationToken] = await Promise.all([
        forge.groupId(spec.runner.group),
        spec.runner.single ? undefined : forge.registrationToken(),
      ]);
      if (registrationToken) {
        secrets.add(registrationToken);
        log.secret(registrationToken);
      }
      stopIfCancelled();
      let announced = false;
      const results = await mapLimited(spec.runner.names, CONCURRENCY, async (name) => {
        stopIfCancelled();
        const registration = ledger.registration(name);
        let credential: RunnerCredential;
        if (spec.runner.single) {
          const jit = await forge.jitConfig(name, spec.runner.labels, group.id);
          secrets.add(jit.jitConfig);
          log.secret(jit.jitConfig);
          ledger.update(registration, { id: jit.runnerId });
          credential = { jitConfig: jit.jitConfig };
        } else {
          credential = { registrationToken: registrationToken! };
        }
        const [downloads] = await prepared;
        if (!announced) {
          announced = true;
          log.info(`runner ${downloads.version}, ${spec.machine.types[0]} in ${cloud.region}, ${spec.machine.spot ? 'spot' : 'on-demand'}`);
        }
        const script = renderStartupScript({
          runnerName: name,
          labels: spec.runner.labels,
          url: spec.forge.url,
          // A container cloud hands the credential over apart from the script (a Kubernetes Secret).
          credential: cloud.kind === 'vm' ? credential : undefined,
          container: cloud.kind === 'container',
          group: group.id === 1 ? undefined : group.name,
          idleTimeoutSeconds: spec.runner.idleTimeoutSeconds,
          maxLifetimeSeconds: spec.runner.maxLifetimeSeconds,
          downloads,
          userScript: spec.machine.startupScript,
          runnerCache: spec.runner.cache,
        });
        stopIfCancelled();
        const clientToken = randomUUID();
        const entry = ledger.machine(name, clientToken);
        const machine = await cloud.launch(spec.machine, {
          runnerName: name,
          startupScript: script,
          clientToken,
          credential,
          runnerVersion: downloads.version,
          maxLifetimeSeconds: spec.runner.maxLifetimeSeconds,
          tags: machineTags(spec, ctx, name, clock),
        });
        ledger.update(entry, { id: machine.id, type: machine.type, spot: machine.spot });
        machines.set(name, machine);
        log.info(`${name}: machine ${machine.id} (${machine.type}, ${machine.spot ? 'spot' : 'on-demand'}${machine.zone ? `, ${machine.zone}` : ''}) is starting`);
      });
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
  } catch (err) {
    // A preparation that failed (no such image, a dry run the cluster refused) means no machine
    // was requested; the registrations minted meanwhile are deleted now rather than left to post.
    const preparationFailed = await prepared.then(
      () => false,
      () => true,
    );
    if (preparationFailed && ledger.data.machines.length === 0 && ledger.data.registrations.length > 0) {
      await cleanup(ledger.data, { cloud, forge, log, clock }).catch((e: unknown) => log.warning(`Post will retry the cleanup: ${errorMessage(e)}`));
    }
    throw err;
  }

  const online = await log.group('Waiting for runners to come online', () =>
    waitOnline(spec, { cloud, forge, log, clock, signal, machines, ledger, secrets, started }),
  );
  ledger.markComplete();
  const ids = new Map(ledger.data.registrations.map((r) => [r.name, r.id!]));
  return {
    runners: spec.runner.names.map((name) => ({ name, id: ids.get(name)!, machine: machines.get(name)!, secondsToOnline: online.get(name)! })),
    labels: spec.runner.labels,
    region: cloud.region,
    ledger: ledger.data,
  };
}

function machineTags(spec: LaunchSpec, ctx: RunContext, name: string, clock: Clock): Record<string, string> {
  return {
    ...spec.machine.tags,
    Name: name,
    [TAG.managed]: 'true',
    [TAG.repo]: ctx.repository,
    [TAG.runId]: ctx.runId,
    [TAG.runner]: name,
    [TAG.expiresAt]: new Date(clock.now() + spec.runner.maxLifetimeSeconds * 1000).toISOString(),
  };
}

interface WaitContext {
  cloud: Cloud;
  forge: GitHubForge;
  log: Log;
  clock: Clock;
  signal?: AbortSignal;
  machines: Map<string, Machine>;
  ledger: Ledger;
  secrets: Set<string>;
  started: number;
}

/**
 * Polls GitHub once per round for all runners (one list call, not one per runner), from 0.5 s
 * backing off to 3 s, and back to 0.5 s whenever a machine changes state or a runner comes
 * online. Machines are checked in
 * the same round, so a machine that ended early fails the launch at once instead of at the
 * timeout. GitHub's Retry-After is honoured by the forge's throttling.
 */
async function waitOnline(spec: LaunchSpec, w: WaitContext): Promise<Map<string, number>> {
  const deadline = w.started + spec.runner.startupTimeoutSeconds * 1000;
  const online = new Map<string, number>();
  let interval = POLL_FIRST_MS;
  let lastReport = 0;
  let previous = new Map<string, string>();
  for (;;) {
    const pending = spec.runner.names.filter((n) => !online.has(n));
    const [runners, machineStates] = await Promise.all([w.forge.runners(), w.cloud.states(pending.map((n) => w.machines.get(n)!.id))]);
    const states = pending.map((n) => [n, machineStates.get(w.machines.get(n)!.id)!] as const);
    for (const name of pending) {
      const runner = runners.find((r) => r.name === name);
      // A token-registered runner's id is known only once it has registered.
      const entry = w.ledger.data.registrations.find((r) => r.name === name);
      if (runner && entry && entry.id === undefined) w.ledger.update(entry, { id: runner.id });
      if (runner?.status === 'online') {
        const seconds = Math.round((w.clock.now() - w.started) / 100) / 10;
        online.set(name, seconds);
        w.log.info(`${name}: online after ${seconds}s`);
      }
    }
    if (online.size === spec.runner.names.length) return online;

    const ended = states.filter(([n, s]) => !online.has(n) && s.state !== 'starting' && s.state !== 'running');
    if (ended.length > 0) {
      const what = ended.every(([, s]) => s.state === 'failed') ? 'could not start' : 'ended before its runner came online';
      throw new StartupTimeoutError(await describeFailures(ended, what, w));
    }
    // A machine that changed state (booted, started its container), or a runner that just came
    // online, means others may follow soon: polling speeds up again, then backs off.
    const current = new Map(states.map(([n, st]) => [n, st.state]));
    const cameOnline = pending.some((n) => online.has(n));
    if (cameOnline || [...current].some(([n, st]) => previous.has(n) && previous.get(n) !== st)) interval = POLL_FIRST_MS;
    previous = current;
    const now = w.clock.now();
    if (now >= deadline) {
      const left = states.filter(([n]) => !online.has(n));
      throw new StartupTimeoutError(await describeFailures(left, `did not come online within startup-timeout (${spec.runner.startupTimeoutSeconds}s)`, w));
    }
    if (now - lastReport >= 10_000 || lastReport === 0) {
      lastReport = now;
      const detail = states
        .filter(([n]) => !online.has(n))
        .map(([n, s]) => `${n}: machine ${s.state}${s.detail ? ` (${s.detail})` : ''}, runner ${runners.find((r) => r.name === n)?.status ?? 'not registered yet'}`)
        .join('; ');
      w.log.info(`waiting ${Math.round((now - w.started) / 1000)}s: ${detail}`);
    }
    await w.clock.sleep(Math.min(interval, Math.max(0, deadline - now)), w.signal).catch(() => {
      throw new Error('The launch was cancelled; post will end everything recorded so far.');
    });
    interval = Math.min(interval * 1.5, POLL_MAX_MS);
  }
}

/** Why each runner failed, with the tail of its machine's console, secrets masked. */
async function describeFailures(failed: ReadonlyArray<readonly [string, MachineStatus]>, what: string, w: WaitContext): Promise<string> {
  const parts = await Promise.all(
    failed.map(async ([name, status]) => {
      const machine = w.machines.get(name)!;
      let tail: string;
      try {
        const text = await w.cloud.consoleLog(machine.id);
        tail = text.trim() ? text.trimEnd().split('\n').slice(-CONSOLE_TAIL_LINES).join('\n') : '(the console is empty: the machine may not have booted yet)';
      } catch (err) {
        tail = `(the console could not be read: ${errorMessage(err)})`;
      }
      const detail = status.detail ? `: ${status.detail}` : '';
      return maskSecrets(`Runner ${name} ${what}; machine ${machine.id} is ${status.state}${detail}. Last lines of its console:\n${tail}`, w.secrets);
    }),
  );
  return parts.join('\n\n');
}

export interface CleanupDeps {
  cloud: Cloud;
  forge: GitHubForge;
  log: Log;
  clock?: Clock;
}

export interface CleanupReport {
  machines: Array<{ id: string; result: 'terminated' | 'gone' }>;
  registrations: Array<{ name: string; result: 'deleted' | 'gone' }>;
}

/**
 * Ends everything a ledger names: machines first (so runners stop taking jobs), then
 * registrations. Entries whose create answer never arrived are found by client token or name.
 * Every step is tried; failures are reported together at the end.
 */
export async function cleanup(data: LedgerData, deps: CleanupDeps): Promise<CleanupReport> {
  const { cloud, forge, log } = deps;
  const clock = deps.clock ?? realClock;
  const report: CleanupReport = { machines: [], registrations: [] };
  const errors: string[] = [];

  await Promise.all(
    data.machines.map(async (entry) => {
      try {
        const ids = entry.id ? [entry.id] : await cloud.findByClientToken(entry.clientToken);
        for (const id of ids) {
          const result = await withRetry(() => cloud.terminate(id), { attempts: 4, baseMs: 1000, retryable: () => true, clock });
          report.machines.push({ id, result });
          log.info(`machine ${id} (${entry.runnerName}): ${result}`);
        }
      } catch (err) {
        errors.push(`machine of ${entry.runnerName} (${entry.id ?? `client token ${entry.clientToken}`}): ${errorMessage(err)}`);
      }
    }),
  );

  // Registrations whose id never arrived are found by name, from one listing shared by all.
  let listing: ReturnType<GitHubForge['runners']> | undefined;
  await Promise.all(
    data.registrations.map(async (entry) => {
      try {
        const id = entry.id ?? (await (listing ??= forge.runners())).find((r) => r.name === entry.name)?.id;
        if (id === undefined) {
          report.registrations.push({ name: entry.name, result: 'gone' });
          return;
        }
        // A runner whose machine just ended can still count as busy for a moment (422).
        const result = await withRetry(() => forge.deleteRunner(id), {
          attempts: 6,
          baseMs: 1000,
          retryable: (err) => !(err instanceof ForgeError) || err.status === undefined || err.status === 422 || err.status >= 500,
          clock,
        });
        report.registrations.push({ name: entry.name, result });
        log.info(`registration ${entry.name} (${id}): ${result}`);
      } catch (err) {
        errors.push(`registration ${entry.name}: ${errorMessage(err)}`);
      }
    }),
  );

  if (errors.length > 0) {
    throw new Error(`Cleanup could not end everything; run mode: cleanup again or end these by hand:\n- ${errors.join('\n- ')}`);
  }
  return report;
}
