import type { Cloud, CloudResource, ManagedMachine } from '../clouds/types.js';
import type { RunContext } from '../config.js';
import { errorMessage } from '../errors.js';
import type { Forge, ForgeRunner } from '../forge/types.js';
import { type LedgerData, pending } from '../ledger.js';
import type { Log } from '../log.js';
import { type Clock, mapLimited, realClock } from '../retry.js';
import { CONCURRENCY, runLabel } from './common.js';

/**
 * The three ways a runner's machines and registrations are ended, apart from launching:
 * - `endLedger`: everything one launch's ledger names (post, and main after a failed launch);
 * - `endRun`: `mode: cleanup`, everything one workflow run launched, found by its tags and label;
 * - `sweep`: `mode: sweep`, whatever the repository left behind past its time.
 * Each ends machines first (so runners stop taking jobs), then what the machines used besides
 * (a launch's AWS security group: `left` while a machine still holds it), then registrations; "already gone" is
 * success; every step is tried and failures are reported together. The cloud and the forge retry
 * their own calls: nothing here retries them again.
 */

export interface EndDeps {
  cloud: Cloud;
  forge: Forge;
  log: Log;
  clock?: Clock;
}

/** What an ending did, one line per machine and registration, with why it was ended. */
export interface EndReport {
  machines: Array<{ id: string; runnerName: string; reason: string; result: 'terminated' | 'gone' }>;
  registrations: Array<{ name: string; id?: number; reason: string; result: 'deleted' | 'gone' }>;
  /** `left`: a machine still used it when the cloud stopped waiting; cleanup or sweep ends it later. */
  resources: Array<CloudResource & { reason: string; result: 'deleted' | 'gone' | 'left' }>;
}

/** Deletes each resource after the machines ended; one still in use is reported as left, not as a failure. */
async function endResources(
  targets: ReadonlyArray<{ resource: CloudResource; reason: string }>,
  deps: EndDeps,
  errors: string[],
): Promise<EndReport['resources']> {
  const report: EndReport['resources'] = [];
  const remove = deps.cloud.deleteResource?.bind(deps.cloud);
  if (!remove) return report;
  await mapLimited(targets, CONCURRENCY, async ({ resource, reason }) => {
    const which = `${resource.kind} ${resource.id ?? resource.name}`;
    try {
      const answer = await remove(resource);
      const result = answer === 'in use' ? 'left' : answer;
      report.push({ ...resource, reason, result });
      if (result === 'left') deps.log.warning(`${which} is still in use; mode: cleanup or sweep ends it later`);
      else deps.log.info(`${which}: ${result}; ${reason}`);
    } catch (err) {
      errors.push(`${which}: ${errorMessage(err)}`);
    }
  });
  return report;
}

/**
 * Ends everything a ledger names, except the runners it keeps and what was ended already.
 * Entries whose create answer never arrived are found by client token (machines) or by name
 * (registrations, from one listing shared by all).
 */
export async function endLedger(data: LedgerData, deps: EndDeps): Promise<EndReport> {
  const { cloud, forge, log } = deps;
  const report: EndReport = { machines: [], registrations: [], resources: [] };
  const errors: string[] = [];
  const todo = pending(data);
  const reason = 'named by the launch';

  await Promise.all(
    todo.machines.map(async (entry) => {
      try {
        const ids = entry.id ? [entry.id] : await cloud.findByClientToken(entry.clientToken);
        for (const id of ids) {
          const result = await cloud.terminate(id);
          report.machines.push({ id, runnerName: entry.runnerName, reason, result });
          log.info(`machine ${id} (${entry.runnerName}): ${result}`);
        }
      } catch (err) {
        const which = entry.id ?? `client token ${entry.clientToken}`;
        errors.push(`machine of ${entry.runnerName} (${which}): ${errorMessage(err)}`);
      }
    }),
  );
  const resources = todo.resources.map(({ kind, name, id }) => ({
    resource: { kind, name, ...(id ? { id } : {}) },
    reason,
  }));
  // A machine that could not be ended still holds what it uses: those wait for the next cleanup.
  if (errors.length === 0) report.resources = await endResources(resources, deps, errors);

  let listing: Promise<ForgeRunner[]> | undefined;
  const idOf = async (name: string): Promise<number | undefined> => {
    listing ??= forge.runners();
    return (await listing).find((r) => r.name === name)?.id;
  };
  await Promise.all(
    todo.registrations.map(async (entry) => {
      try {
        const id = entry.id ?? (await idOf(entry.name));
        if (id === undefined) {
          report.registrations.push({ name: entry.name, reason, result: 'gone' });
          return;
        }
        const result = await forge.deleteRunner(id);
        report.registrations.push({ name: entry.name, id, reason, result });
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

/**
 * `mode: cleanup`: ends everything this workflow run launched, whatever became of its launch
 * jobs: every machine tagged with this repository and run, then every registration that carries
 * the run's label or is named by one of those machines.
 */
export async function endRun(ctx: RunContext, deps: EndDeps): Promise<EndReport> {
  const label = runLabel(ctx).toLowerCase();
  const reason = `launched by run ${ctx.runId}`;
  const machines = await deps.cloud.list({ repo: ctx.repository, runId: ctx.runId });
  const names = new Set(machines.map((m) => m.runnerName));
  const targets = machines.filter((m) => m.state !== 'gone').map((machine) => ({ machine, reason }));
  const ended = await endMachines(targets, deps);
  const made = (await deps.cloud.listResources?.({ repo: ctx.repository, runId: ctx.runId })) ?? [];
  // One that a live machine (not ending) still uses is left at once: waiting would not free it.
  const resources = await endResources(
    made.filter((r) => !r.inUse).map(({ inUse: _, held: __, ...resource }) => ({ resource, reason })),
    deps,
    ended.errors,
  );
  for (const { inUse: _, held: __, ...r } of made.filter((m) => m.inUse)) {
    resources.push({ ...r, reason, result: 'left' });
  }
  const runners = await deps.forge.runners();
  const registrations = runners
    .filter((r) => r.labels.some((l) => l.toLowerCase() === label) || names.has(r.name))
    .map((runner) => ({ runner, reason }));
  return {
    machines: ended.report,
    registrations: await endRegistrations(registrations, deps, ended.errors),
    resources,
  };
}

/**
 * `mode: sweep`: for a scheduled workflow. Ends every machine this action made for the
 * repository that is past its expires-at tag, or older than `graceSeconds` with a runner that is
 * offline or no longer registered; then deletes offline registrations that are ours (they carry
 * a run label, `cml-run-<run id>`, or are named by a machine this action tagged) unless a live
 * machine still belongs to them. Other tools' runners, even named `cml-...`, are left alone. At
 * organisation scope a run label does not say which repository launched the runner, so only
 * registrations named by this repository's machines are ended there. Resources the action made
 * for the repository (AWS security groups) are deleted once no machine, ending ones included, uses them.
 */
/** The label only this action's runners carry: `cml-run-` and a workflow run id. */
const RUN_LABEL = /^cml-run-\d+$/i;

export async function sweep(ctx: RunContext, graceSeconds: number, deps: EndDeps): Promise<EndReport> {
  const now = (deps.clock ?? realClock).now();
  const [machines, runners] = await Promise.all([deps.cloud.list({ repo: ctx.repository }), deps.forge.runners()]);
  const byName = new Map(runners.map((r) => [r.name, r]));
  const targets: Array<{ machine: ManagedMachine; reason: string }> = [];
  const protectedNames = new Set<string>();
  for (const m of machines) {
    if (m.state === 'gone') continue;
    const reason = staleBecause(m, byName.get(m.runnerName), now, graceSeconds);
    if (reason) targets.push({ machine: m, reason });
    else protectedNames.add(m.runnerName);
  }
  const ended = await endMachines(targets, deps);
  // Only what no machine holds, ending ones included: a group a machine ending now still holds
  // is the next sweep's, so a sweep never waits.
  const made = (await deps.cloud.listResources?.({ repo: ctx.repository })) ?? [];
  const unused = made
    .filter((r) => !r.inUse && !r.held)
    .map(({ inUse: _, held: __, ...resource }) => ({ resource, reason: 'unused' }));
  const resources = await endResources(unused, deps, ended.errors);
  const ours = new Set(machines.map((m) => m.runnerName));
  const repoWide = deps.forge.scope.kind === 'repo';
  const registrations = runners
    .filter((r) => r.status !== 'online' && !protectedNames.has(r.name))
    // A `cml-` name alone proves nothing: CML itself and other tools name their runners so.
    .filter((r) => ours.has(r.name) || (repoWide && r.labels.some((l) => RUN_LABEL.test(l))))
    .map((runner) => ({ runner, reason: 'offline' }));
  return {
    machines: ended.report,
    registrations: await endRegistrations(registrations, deps, ended.errors),
    resources,
  };
}

/** Why sweep ends a machine, or undefined when it is still in use or within its grace period. */
function staleBecause(
  m: ManagedMachine,
  runner: ForgeRunner | undefined,
  now: number,
  graceSeconds: number,
): string | undefined {
  const old = m.createdAt === undefined || now - m.createdAt > graceSeconds * 1000;
  if (m.expiresAt !== undefined && now > m.expiresAt)
    return `past its expires-at (${new Date(m.expiresAt).toISOString()})`;
  if (old && !runner) return `its runner ${m.runnerName} is no longer registered`;
  if (old && runner!.status !== 'online') {
    return `its runner ${m.runnerName} has been offline past the grace period (${graceSeconds}s)`;
  }
  return undefined;
}

async function endMachines(
  targets: Array<{ machine: ManagedMachine; reason: string }>,
  deps: EndDeps,
): Promise<{ report: EndReport['machines']; errors: string[] }> {
  const report: EndReport['machines'] = [];
  const errors: string[] = [];
  await mapLimited(targets, CONCURRENCY, async ({ machine, reason }) => {
    try {
      const result = await deps.cloud.terminate(machine.id);
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
  deps: EndDeps,
  earlier: string[],
): Promise<EndReport['registrations']> {
  const report: EndReport['registrations'] = [];
  const errors = [...earlier];
  await mapLimited(targets, CONCURRENCY, async ({ runner, reason }) => {
    try {
      const result = await deps.forge.deleteRunner(runner.id);
      report.push({ name: runner.name, id: runner.id, reason, result });
      deps.log.info(`registration ${runner.name} (${runner.id}): ${result}; ${reason}`);
    } catch (err) {
      errors.push(`registration ${runner.name} (${runner.id}): ${errorMessage(err)}`);
    }
  });
  if (errors.length > 0) {
    throw new Error(`Could not end everything; run again or end these by hand:\n- ${errors.join('\n- ')}`);
  }
  return report;
}
