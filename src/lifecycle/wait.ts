import type { Cloud, Machine, MachineStatus } from '../clouds/types.js';
import type { LaunchSpec } from '../config.js';
import { errorMessage } from '../errors.js';
import type { Forge, ForgeRunner } from '../forge/types.js';
import type { Ledger } from '../ledger.js';
import { type Log, maskSecrets } from '../log.js';
import type { Clock } from '../retry.js';
import { CANCELLED, stopIfCancelled } from './common.js';

/** Polling for online runners: fast at first, backing off; one forge and one cloud call per round. */
const POLL_FIRST_MS = 500;
const POLL_MAX_MS = 3000;
const CONSOLE_TAIL_LINES = 40;

export interface WaitContext {
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
export async function waitOnline(
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
  const seenBusy = new Set<string>();
  for (;;) {
    stopIfCancelled(w.signal);
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
      if (runner?.busy) seenBusy.add(name);
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
      const taken = new Map(
        ended.flatMap(([n, s]) => {
          const why = s.state === 'failed' ? undefined : takenBy(n, runners, seenBusy, spec, w);
          return why ? [[n, why] as const] : [];
        }),
      );
      const what = ended.every(([n, s]) => taken.has(n) || s.state === 'failed')
        ? 'could not start'
        : 'ended before its runner came online';
      const reason = (name: string, console: string) => taken.get(name)?.(console) ?? what;
      for (const [name, message] of await describeFailures(ended, reason, w)) failures.set(name, message);
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
            `${n}: machine ${s.state}${s.detail ? ` (${s.detail})` : ''}, ` +
            `runner ${runners.find((r) => r.name === n)?.status ?? 'not registered yet'}`,
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

/**
 * Why a runner whose machine ended before it was seen online was taken by a job, when GitHub
 * shows it was: the runner was listed busy, or, for an ephemeral runner whose registration this
 * launch created, the registration is gone, as GitHub removes it once the runner ran its one job.
 * A runner GitHub never listed busy and still lists is not assumed taken.
 */
function takenBy(
  name: string,
  runners: readonly ForgeRunner[],
  seenBusy: ReadonlySet<string>,
  spec: LaunchSpec,
  w: WaitContext,
): ((console: string) => string) | undefined {
  const runner = runners.find((r) => r.name === name);
  const minted = w.ledger.data.registrations.find((r) => r.name === name)?.id !== undefined;
  let evidence: string;
  if (seenBusy.has(name) || runner?.busy) evidence = 'GitHub listed it busy with a job';
  else if (spec.runner.single && minted && !runner) {
    evidence = 'GitHub removed its registration, as it does once an ephemeral runner has run its one job';
  } else return undefined;
  return (console) => {
    const job = /Running job: (.+)$/m.exec(console)?.[1]?.trim();
    const which = job ? `job ${JSON.stringify(job)} (as its console says)` : 'a job';
    return (
      `was taken by ${which} before this launch saw it online (${evidence}). A job of another workflow ` +
      'or run asked only for labels this runner carries; give your own jobs ' +
      "runs-on: [self-hosted, <the launch's launch-label output>], and keep other workflows' " +
      'jobs off these labels'
    );
  };
}

/** Why each runner failed, with the tail of its machine's console, secrets masked. */
async function describeFailures(
  failed: ReadonlyArray<readonly [string, MachineStatus]>,
  what: string | ((name: string, console: string) => string),
  w: WaitContext,
): Promise<Map<string, string>> {
  const parts = await Promise.all(
    failed.map(async ([name, status]) => {
      const machine = w.machines.get(name)!;
      let tail: string;
      let text = '';
      try {
        text = await w.cloud.consoleLog(machine.id);
        tail = text.trim()
          ? text.trimEnd().split('\n').slice(-CONSOLE_TAIL_LINES).join('\n')
          : '(the console is empty: the machine may not have booted yet)';
      } catch (err) {
        tail = `(the console could not be read: ${errorMessage(err)})`;
      }
      const detail = status.detail ? `: ${status.detail}` : '';
      const why = typeof what === 'string' ? what : what(name, text);
      return [
        name,
        maskSecrets(
          `Runner ${name} ${why}; machine ${machine.id} is ${status.state}${detail}. ` +
            `Last lines of its console:\n${tail}`,
          w.secrets,
        ),
      ] as const;
    }),
  );
  return new Map(parts);
}
