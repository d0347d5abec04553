import { randomUUID } from 'node:crypto';
import { renderStartupScript, type RunnerCredential } from './bootstrap/render.js';
import type { Cloud, Machine, MachineStatus, ManagedMachine, Placement, PreparedCloud } from './clouds/types.js';
import type { LaunchSpec, RunContext } from './config.js';
import { CloudError, ForgeError, StartupTimeoutError, errorMessage, isFallback } from './errors.js';
import type { Forge, ForgeRunner } from './forge/types.js';
import { Ledger, pending, type LedgerData } from './ledger.js';
import { maskSecrets, type Log } from './log.js';
import { mapLimited, realClock, retry, type Clock } from './retry.js';

/**
 * Launch and cleanup over a ledger. Launch records every registration and machine before the
 * call that creates it, waits until GitHub lists every runner online, and otherwise fails with
 * the machine's own log. Cleanup ends whatever a ledger names; "already gone" is success.
 */

export interface LaunchDeps {
  cloud: Cloud;
  forge: Forge;
  log: Log;
  /** Called with the whole ledger after every change, before the next call. */
  persist: (data: LedgerData) => void;
  signal?: AbortSignal;
  clock?: Clock;
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

export interface LaunchedRunner {
  name: string;
  id: number;
  machine: Machine;
  secondsToOnline: number;
  /** Every placement tried for this runner, in order, ending with the one obtained. */
  tried: TriedPlacement[];
}

export interface TriedPlacement extends Placement {
  /** `obtained`, or the cloud's code for why not (InsufficientInstanceCapacity ...). */
  outcome: string;
}

export interface LaunchResult {
  runners: LaunchedRunner[];
  /** Online runners that matched `reuse`/`reuse-idle`, when nothing was launched. */
  reused: ForgeRunner[];
  /** Runners that did not come up, when `allow-partial` kept the others. */
  failed: Array<{ name: string; reason: string }>;
  labels: string[];
  /** The label every runner of this workflow run carries: `cml-run-<run id>`. */
  runLabel: string;
  region: string;
  ledger: LedgerData;
}

/** The label that ties a registration to its workflow run (cleanup finds them by it). */
export const runLabel = (ctx: Pick<RunContext, 'runId'>): string => `cml-run-${ctx.runId}`;

const CANCELLED = 'The launch was cancelled; post will end everything recorded so far.';

export async function launch(spec: LaunchSpec, ctx: RunContext, deps: LaunchDeps): Promise<LaunchResult> {
  const { cloud, forge, log, signal } = deps;
  const clock = deps.clock ?? realClock;
  const started = clock.now();
  const ledger = new Ledger(
    Ledger.empty(spec.cloud.name, cloud.region, { scope: spec.forge.scope, apiUrl: spec.forge.apiUrl }),
    deps.persist,
  );
  const secrets = new Set<string>([spec.forge.token]);
  const label = runLabel(ctx);
  const base = {
    labels: spec.runner.labels,
    runLabel: label,
    region: cloud.region,
    failed: [] as LaunchResult['failed'],
  };
  const stopIfCancelled = (): void => {
    if (signal?.aborted) throw new Error(CANCELLED);
  };

  if (spec.runner.reuse) {
    const reused = await findReusable(spec, forge);
    if (reused.length > 0) {
      log.info(
        `reusing ${reused.map((r) => `${r.name} (${r.busy ? 'busy' : 'idle'})`).join(', ')}: online with labels ${spec.runner.labels.join(', ')}; nothing is launched`,
      );
      ledger.finish([]);
      return { ...base, runners: [], reused, ledger: ledger.data };
    }
    log.info(
      `no ${spec.runner.reuse === 'idle' ? 'idle ' : ''}online runner has labels ${spec.runner.labels.join(', ')}; launching`,
    );
  }

  // Everything independent starts at once: the runner download and the cloud's own preparation
  // (image, dry run) run while each runner's credential is minted, so the first machine is
  // requested one round trip after the slowest of them.
  // Where machines may go is known once the cloud is prepared (Compute Engine zones offering the type).
  let placements: Placement[] = [];
  let ready: PreparedCloud | undefined;
  const prepared = Promise.all([forge.downloads(spec.runner.version), cloud.prepare(spec.machine)]).then((done) => {
    ready = done[1];
    placements = placementsFor(spec, ready);
    return done;
  });
  prepared.catch(() => undefined); // awaited below; this only keeps an early failure from going unobserved

  const refusedHere = new Set<string>(); // placements without capacity, shared by all runners
  const market = { spotRefused: false, warned: false };
  const machines = new Map<string, Machine>();
  const tried = new Map<string, TriedPlacement[]>();
  const failures = new Map<string, string>();
  const requests = new Map<string, { script: string; credential: RunnerCredential; version: string }>();
  /** Placements still worth trying for a runner: not tried by it, not found full by any runner. */
  const untried = (attempts: readonly Placement[]): Placement[] =>
    placements.filter((p) => {
      const key = describePlacement(p);
      return (
        !refusedHere.has(key) && !(p.spot && market.spotRefused) && !attempts.some((a) => describePlacement(a) === key)
      );
    });

  /**
   * Creates the runner's machine at the first placement that neither this runner nor another
   * found without capacity. Each try is recorded before it is sent.
   */
  const place = async (name: string): Promise<Machine> => {
    const { script, credential, version } = requests.get(name)!;
    const attempts = tried.get(name)!;
    let lastRefusal: CloudError | undefined;
    for (const placement of untried(attempts)) {
      // A refusal by another runner meanwhile skips this one too.
      const key = describePlacement(placement);
      if (refusedHere.has(key) || (placement.spot && market.spotRefused)) continue;
      if (!placement.spot && spec.machine.spot && !market.warned) {
        market.warned = true;
        log.warning(
          `spot is not available (${attempts.map((a) => `${describePlacement(a)}: ${a.outcome}`).join('; ') || 'refused earlier'}); falling back to on-demand, as on-demand-fallback allows`,
        );
      }
      stopIfCancelled();
      const clientToken = randomUUID();
      const entry = ledger.machine(name, clientToken);
      try {
        const machine = await ready!.launch(
          {
            runnerName: name,
            attempt: attempts.length + 1,
            startupScript: script,
            clientToken,
            credential,
            runnerVersion: version,
            maxLifetimeSeconds: spec.runner.maxLifetimeSeconds,
            tags: machineTags(spec, ctx, name, clock),
          },
          placement,
        );
        ledger.update(entry, { id: machine.id, type: machine.type, spot: machine.spot });
        machines.set(name, machine);
        attempts.push({ ...placement, outcome: 'obtained' });
        log.info(
          `${name}: machine ${machine.id} (${machine.type}, ${machine.spot ? 'spot' : 'on-demand'}${machine.zone ? `, ${machine.zone}` : ''}) is starting`,
        );
        return machine;
      } catch (err) {
        if (!(err instanceof CloudError) || !isFallback(err.kind)) throw err;
        lastRefusal = err;
        // The cloud refused outright: nothing was created, and this placement is skipped from now on.
        ledger.update(entry, { refused: err.code });
        attempts.push({ ...placement, outcome: err.code });
        if (err.kind === 'market') market.spotRefused = true;
        else refusedHere.add(key);
        log.warning(`${name}: ${key}: ${err.code}; trying the next placement`);
      }
    }
    // One place tried: its own error says it best. Several: the order tried, then what to do.
    if (attempts.length === 1 && lastRefusal) throw lastRefusal;
    throw new CloudError(
      cloud.title,
      'NoCapacity',
      `no placement had capacity for ${name}; tried ${attempts.map((a) => `${describePlacement(a)} (${a.outcome})`).join(', ') || 'nothing'}${lastRefusal ? `. The last answer: ${lastRefusal.message.split('\n')[0]}` : ''}`,
      `${lastRefusal?.advice ?? ''}${spec.machine.spot && !spec.machine.onDemandFallback ? ' on-demand-fallback: true would try on-demand too.' : ''}`,
      'capacity',
    );
  };

  /**
   * A machine the cloud accepted but cannot start for lack of room (a pod no node can fit): it
   * is ended, its placement marked, and the runner tried at the next one. Undefined when no
   * placement is left.
   */
  const replace = async (name: string, status: MachineStatus): Promise<Machine | undefined> => {
    const old = machines.get(name)!;
    const attempts = tried.get(name)!;
    const last = attempts[attempts.length - 1]!;
    // Nowhere else to go: the machine stays, so the failure can show its events and log.
    if (untried(attempts).length === 0) return undefined;
    last.outcome = status.detail?.split(':')[0] ?? 'no capacity';
    refusedHere.add(describePlacement(last));
    await terminate(cloud, old.id, clock);
    const entry = ledger.data.machines.find((m) => m.id === old.id);
    if (entry) ledger.update(entry, { ended: true });
    log.warning(`${name}: ${describePlacement(last)}: ${status.detail ?? 'no capacity'}; trying the next placement`);
    try {
      return await place(name);
    } catch {
      return undefined;
    }
  };

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
      const labels = [...spec.runner.labels, label];
      const results = await mapLimited(spec.runner.names, CONCURRENCY, async (name) => {
        stopIfCancelled();
        const registration = ledger.registration(name);
        let credential: RunnerCredential;
        if (spec.runner.single) {
          const jit = await forge.jitConfig(name, labels, group.id);
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
          const order = placements.map(describePlacement).join(' → ');
          log.info(`runner ${downloads.version} in ${cloud.region}; placements in order: ${order}`);
        }
        const script = renderStartupScript({
          runnerName: name,
          labels,
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
          ...ready!.scriptSettings,
        });
        requests.set(name, { script, credential, version: downloads.version });
        tried.set(name, []);
        await place(name);
      });
      stopIfCancelled();
      results.forEach((r, i) => {
        if (r.status === 'rejected')
          failures.set(
            spec.runner.names[i]!,
            `Runner ${spec.runner.names[i]} could not be created: ${errorMessage(r.reason)}`,
          );
      });
      for (const warning of ready?.warnings ?? []) log.warning(warning);
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      // Without allow-partial one failure fails the launch; so does a failure before any machine.
      if (failed && (!spec.runner.allowPartial || machines.size === 0)) throw failed.reason;
    });
  } catch (err) {
    if (signal?.aborted) throw new Error(CANCELLED);
    await endFailedLaunch(ledger, [], { cloud, forge, log, clock });
    throw err;
  }

  const created = spec.runner.names.filter((n) => machines.has(n));
  const waited = await log.group('Waiting for runners to come online', () =>
    waitOnline(created, spec, { cloud, forge, log, clock, signal, machines, ledger, secrets, started, replace }),
  );
  // A cancel that came while the last runners came online still cancels: post ends them all.
  stopIfCancelled();
  for (const [name, reason] of waited.failures) failures.set(name, reason);
  const kept = created.filter((n) => waited.online.has(n));

  if (failures.size > 0) {
    const why = [...failures.values()].join('\n\n');
    if (!spec.runner.allowPartial || kept.length === 0) {
      await endFailedLaunch(ledger, [], { cloud, forge, log, clock });
      const what = `${failures.size} of ${spec.runner.names.length} runners did not come up, so every runner of this launch was ended (${spec.runner.allowPartial ? 'none came up' : 'all or nothing; allow-partial: true keeps the others'})`;
      throw new StartupTimeoutError(spec.runner.names.length === 1 ? why : `${what}.\n\n${why}`);
    }
    log.warning(
      `${failures.size} of ${spec.runner.names.length} runners did not come up; allow-partial keeps the ${kept.length} that did.\n${why}`,
    );
    await endFailedLaunch(ledger, kept, { cloud, forge, log, clock });
  } else {
    ledger.finish(kept);
  }
  const ids = new Map(ledger.data.registrations.map((r) => [r.name, r.id!]));
  return {
    ...base,
    runners: kept.map((name) => ({
      name,
      id: ids.get(name)!,
      machine: machines.get(name)!,
      secondsToOnline: waited.online.get(name)!,
      tried: tried.get(name) ?? [],
    })),
    reused: [],
    failed: [...failures].map(([name, reason]) => ({ name, reason })),
    ledger: ledger.data,
  };
}

/**
 * Ends everything of a launch except the runners in `keep`, right away rather than in post:
 * a GPU that will not be used stops billing now. `keep` is written first, so if this is cut
 * short, post ends the same set; a cleanup that fails is left to post.
 */
async function endFailedLaunch(ledger: Ledger, keep: readonly string[], deps: CleanupDeps): Promise<void> {
  ledger.finish(keep);
  const todo = pending(ledger.data);
  if (todo.machines.length === 0 && todo.registrations.length === 0) return;
  try {
    await cleanup(ledger.data, deps);
    ledger.markEnded();
  } catch (err) {
    deps.log.warning(`Post will retry the cleanup: ${errorMessage(err)}`);
  }
}

/** Online runners with every requested label (and idle, for reuse-idle). Offline or busy ones never count as idle. */
async function findReusable(spec: LaunchSpec, forge: Forge): Promise<ForgeRunner[]> {
  const wanted = spec.runner.labels.map((l) => l.toLowerCase());
  const runners = await forge.runners();
  return runners.filter((r) => {
    if (r.status !== 'online') return false;
    if (spec.runner.reuse === 'idle' && r.busy) return false;
    const has = new Set(r.labels.map((l) => l.toLowerCase()));
    return wanted.every((l) => has.has(l));
  });
}

/**
 * Where to try, in order: spot first when asked (every type, in every place), then on-demand
 * when on-demand-fallback allows; within a market, types in the order given, and for each type
 * the places (subnets) in the order given.
 */
export function placementsFor(spec: LaunchSpec, cloud: Pick<PreparedCloud, 'places'>): Placement[] {
  const markets = spec.machine.spot ? (spec.machine.onDemandFallback ? [true, false] : [true]) : [false];
  const places = cloud.places;
  return markets.flatMap((spot) =>
    spec.machine.types.flatMap((type) => places.map((where) => ({ type, spot, ...(where ? { where } : {}) }))),
  );
}

const describePlacement = (p: Placement): string =>
  `${p.type}${p.where ? ` in ${p.where}` : ''} ${p.spot ? 'spot' : 'on-demand'}`;

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
  forge: Forge;
  log: Log;
  clock: Clock;
  signal?: AbortSignal;
  machines: Map<string, Machine>;
  ledger: Ledger;
  secrets: Set<string>;
  started: number;
  /** Moves a runner whose machine has no room to its next placement. */
  replace: (name: string, status: MachineStatus) => Promise<Machine | undefined>;
}

/**
 * Polls GitHub once per round for all runners (one list call, not one per runner), from 0.5 s
 * backing off to 3 s, and back to 0.5 s whenever a machine changes state or a runner comes
 * online. Machines are checked in the same round, so a machine that ended early fails at once
 * instead of at the timeout. Without allow-partial the first failure ends the wait; with it,
 * the others are still waited for. GitHub's Retry-After is honoured by the forge's throttling.
 */
async function waitOnline(
  names: readonly string[],
  spec: LaunchSpec,
  w: WaitContext,
): Promise<{ online: Map<string, number>; failures: Map<string, string> }> {
  const deadline = w.started + spec.runner.startupTimeoutSeconds * 1000;
  const online = new Map<string, number>();
  const failures = new Map<string, string>();
  let interval = POLL_FIRST_MS;
  let lastReport = 0;
  let previous = new Map<string, string>();
  for (;;) {
    if (w.signal?.aborted) throw new Error(CANCELLED);
    const pending = names.filter((n) => !online.has(n) && !failures.has(n));
    if (pending.length === 0) return { online, failures };
    const [runners, machineStates] = await Promise.all([
      w.forge.runners(),
      w.cloud.states(pending.map((n) => w.machines.get(n)!.id)),
    ]);
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

    let ended = states.filter(([n, s]) => !online.has(n) && s.state !== 'starting' && s.state !== 'running');
    for (const [name, status] of ended.filter(([, st]) => st.fallback === 'capacity')) {
      if (await w.replace(name, status)) {
        ended = ended.filter(([n]) => n !== name);
        interval = POLL_FIRST_MS;
      }
    }
    if (ended.length > 0) {
      const what = ended.every(([, s]) => s.state === 'failed')
        ? 'could not start'
        : 'ended before its runner came online';
      for (const [name, message] of await describeFailures(ended, what, w)) failures.set(name, message);
      if (!spec.runner.allowPartial) return { online, failures };
    }
    const left = states.filter(([n]) => !online.has(n) && !failures.has(n));
    if (left.length === 0) return { online, failures };
    // A machine that changed state (booted, started its container), or a runner that just came
    // online, means others may follow soon: polling speeds up again, then backs off.
    const current = new Map(states.map(([n, st]) => [n, st.state]));
    const cameOnline = pending.some((n) => online.has(n));
    if (cameOnline || [...current].some(([n, st]) => previous.has(n) && previous.get(n) !== st))
      interval = POLL_FIRST_MS;
    previous = current;
    const now = w.clock.now();
    if (now >= deadline) {
      const late = await describeFailures(
        left,
        `did not come online within startup-timeout (${spec.runner.startupTimeoutSeconds}s)`,
        w,
      );
      for (const [name, message] of late) failures.set(name, message);
      return { online, failures };
    }
    if (now - lastReport >= 10_000 || lastReport === 0) {
      lastReport = now;
      const detail = left
        .map(
          ([n, s]) =>
            `${n}: machine ${s.state}${s.detail ? ` (${s.detail})` : ''}, runner ${runners.find((r) => r.name === n)?.status ?? 'not registered yet'}`,
        )
        .join('; ');
      w.log.info(`waiting ${Math.round((now - w.started) / 1000)}s: ${detail}`);
    }
    await w.clock.sleep(Math.min(interval, Math.max(0, deadline - now)), w.signal).catch(() => {
      throw new Error(CANCELLED);
    });
    interval = Math.min(interval * 1.5, POLL_MAX_MS);
  }
}

/** Why each runner failed, with the tail of its machine's console, secrets masked. */
async function describeFailures(
  failed: ReadonlyArray<readonly [string, MachineStatus]>,
  what: string,
  w: WaitContext,
): Promise<Map<string, string>> {
  const parts = await Promise.all(
    failed.map(async ([name, status]) => {
      const machine = w.machines.get(name)!;
      let tail: string;
      try {
        const text = await w.cloud.consoleLog(machine.id);
        tail = text.trim()
          ? text.trimEnd().split('\n').slice(-CONSOLE_TAIL_LINES).join('\n')
          : '(the console is empty: the machine may not have booted yet)';
      } catch (err) {
        tail = `(the console could not be read: ${errorMessage(err)})`;
      }
      const detail = status.detail ? `: ${status.detail}` : '';
      return [
        name,
        maskSecrets(
          `Runner ${name} ${what}; machine ${machine.id} is ${status.state}${detail}. Last lines of its console:\n${tail}`,
          w.secrets,
        ),
      ] as const;
    }),
  );
  return new Map(parts);
}

export interface CleanupDeps {
  cloud: Cloud;
  forge: Forge;
  log: Log;
  clock?: Clock;
}

export interface CleanupReport {
  machines: Array<{ id: string; result: 'terminated' | 'gone' }>;
  registrations: Array<{ name: string; result: 'deleted' | 'gone' }>;
}

/**
 * Ends everything a ledger names, except the runners it keeps and what was ended already:
 * machines first (so runners stop taking jobs), then registrations. Entries whose create answer
 * never arrived are found by client token or name. Every step is tried; failures are reported
 * together at the end.
 */
export async function cleanup(data: LedgerData, deps: CleanupDeps): Promise<CleanupReport> {
  const { cloud, forge, log } = deps;
  const clock = deps.clock ?? realClock;
  const report: CleanupReport = { machines: [], registrations: [] };
  const errors: string[] = [];
  const todo = pending(data);

  await Promise.all(
    todo.machines.map(async (entry) => {
      try {
        const ids = entry.id ? [entry.id] : await cloud.findByClientToken(entry.clientToken);
        for (const id of ids) {
          const result = await terminate(cloud, id, clock);
          report.machines.push({ id, result });
          log.info(`machine ${id} (${entry.runnerName}): ${result}`);
        }
      } catch (err) {
        errors.push(
          `machine of ${entry.runnerName} (${entry.id ?? `client token ${entry.clientToken}`}): ${errorMessage(err)}`,
        );
      }
    }),
  );

  // Registrations whose id never arrived are found by name, from one listing shared by all.
  let listing: ReturnType<Forge['runners']> | undefined;
  await Promise.all(
    todo.registrations.map(async (entry) => {
      try {
        const id = entry.id ?? (await (listing ??= forge.runners())).find((r) => r.name === entry.name)?.id;
        if (id === undefined) {
          report.registrations.push({ name: entry.name, result: 'gone' });
          return;
        }
        const result = await deleteRegistration(forge, id, clock);
        report.registrations.push({ name: entry.name, result });
        log.info(`registration ${entry.name} (${id}): ${result}`);
      } catch (err) {
        errors.push(`registration ${entry.name}: ${errorMessage(err)}`);
      }
    }),
  );

  if (errors.length > 0) {
    throw new Error(
      `Cleanup could not end everything; run mode: cleanup again or end these by hand:\n- ${errors.join('\n- ')}`,
    );
  }
  return report;
}

/** The provider retries its own calls; the clock is kept for the signature the callers use. */
const terminate = (cloud: Cloud, id: string, _clock: Clock): Promise<'terminated' | 'gone'> => cloud.terminate(id);

/** A runner whose machine just ended can still count as busy for a moment (422): that is retried. */
const deleteRegistration = (forge: Forge, id: number, clock: Clock): Promise<'deleted' | 'gone'> =>
  retry(() => forge.deleteRunner(id), {
    attempts: 6,
    baseMs: 1000,
    classify: (err) =>
      !(err instanceof ForgeError) || err.status === undefined || err.status === 422 || err.status >= 500
        ? 'transient'
        : 'permanent',
    clock,
  });

export interface EndReport {
  machines: Array<{ id: string; runnerName: string; reason: string; result: 'terminated' | 'gone' }>;
  registrations: Array<{ name: string; id: number; reason: string; result: 'deleted' | 'gone' }>;
}

/**
 * `mode: cleanup`: ends everything this workflow run launched, whatever became of its launch
 * jobs: every machine tagged with this repository and run, then every registration that carries
 * the run's label or is named by one of those machines.
 */
export async function cleanupRun(ctx: RunContext, deps: CleanupDeps): Promise<EndReport> {
  const clock = deps.clock ?? realClock;
  const label = runLabel(ctx).toLowerCase();
  const machines = await deps.cloud.list({ repo: ctx.repository, runId: ctx.runId });
  const names = new Set(machines.map((m) => m.runnerName));
  const targets = machines
    .filter((m) => m.state !== 'gone')
    .map((m) => ({ machine: m, reason: `launched by run ${ctx.runId}` }));
  const ended = await endMachines(targets, deps, clock);
  const runners = await deps.forge.runners();
  const registrations = runners
    .filter((r) => r.labels.some((l) => l.toLowerCase() === label) || names.has(r.name))
    .map((r) => ({ runner: r, reason: `launched by run ${ctx.runId}` }));
  return { machines: ended.report, registrations: await endRegistrations(registrations, deps, clock, ended.errors) };
}

/**
 * `mode: sweep`: for a scheduled workflow. Ends every machine this action made for the
 * repository that is past its expires-at tag, or older than `graceSeconds` with a runner that is
 * offline or no longer registered; then deletes offline registrations that are ours (the run
 * label, the default `cml-` name prefix, or named by one of our machines) unless a live machine
 * still belongs to them.
 */
export async function sweep(ctx: RunContext, graceSeconds: number, deps: CleanupDeps): Promise<EndReport> {
  const clock = deps.clock ?? realClock;
  const now = clock.now();
  const [machines, runners] = await Promise.all([deps.cloud.list({ repo: ctx.repository }), deps.forge.runners()]);
  const byName = new Map(runners.map((r) => [r.name, r]));
  const targets: Array<{ machine: ManagedMachine; reason: string }> = [];
  const protectedNames = new Set<string>();
  for (const m of machines) {
    if (m.state === 'gone') continue;
    const runner = byName.get(m.runnerName);
    const old = m.createdAt === undefined || now - m.createdAt > graceSeconds * 1000;
    let reason: string | undefined;
    if (m.expiresAt !== undefined && now > m.expiresAt)
      reason = `past its expires-at (${new Date(m.expiresAt).toISOString()})`;
    else if (old && !runner) reason = `its runner ${m.runnerName} is no longer registered`;
    else if (old && runner!.status !== 'online')
      reason = `its runner ${m.runnerName} has been offline past the grace period (${graceSeconds}s)`;
    if (reason) targets.push({ machine: m, reason });
    else protectedNames.add(m.runnerName);
  }
  const ended = await endMachines(targets, deps, clock);
  const ours = new Set(machines.map((m) => m.runnerName));
  const registrations = runners
    .filter((r) => r.status !== 'online' && !protectedNames.has(r.name))
    .filter((r) => r.name.startsWith('cml-') || ours.has(r.name) || r.labels.some((l) => /^cml-run-/i.test(l)))
    .map((r) => ({ runner: r, reason: 'offline' }));
  return { machines: ended.report, registrations: await endRegistrations(registrations, deps, clock, ended.errors) };
}

async function endMachines(
  targets: Array<{ machine: ManagedMachine; reason: string }>,
  deps: CleanupDeps,
  clock: Clock,
): Promise<{ report: EndReport['machines']; errors: string[] }> {
  const report: EndReport['machines'] = [];
  const errors: string[] = [];
  await mapLimited(targets, CONCURRENCY, async ({ machine, reason }) => {
    try {
      const result = await terminate(deps.cloud, machine.id, clock);
      report.push({ id: machine.id, runnerName: machine.runnerName, reason, result });
      deps.log.info(`machine ${machine.id} (${machine.runnerName}): ${result}; ${reason}`);
    } catch (err) {
      errors.push(`machine ${machine.id} (${machine.runnerName}): ${errorMessage(err)}`);
    }
  });
  return { report, errors };
}

async function endRegistrations(
  targets: Array<{ runner: ForgeRunner; reason: string }>,
  deps: CleanupDeps,
  clock: Clock,
  earlier: string[],
): Promise<EndReport['registrations']> {
  const report: EndReport['registrations'] = [];
  const errors = [...earlier];
  await mapLimited(targets, CONCURRENCY, async ({ runner, reason }) => {
    try {
      const result = await deleteRegistration(deps.forge, runner.id, clock);
      report.push({ name: runner.name, id: runner.id, reason, result });
      deps.log.info(`registration ${runner.name} (${runner.id}): ${result}; ${reason}`);
    } catch (err) {
      errors.push(`registration ${runner.name} (${runner.id}): ${errorMessage(err)}`);
    }
  });
  if (errors.length > 0)
    throw new Error(`Could not end everything; run again or end these by hand:\n- ${errors.join('\n- ')}`);
  return report;
}
