import { randomUUID } from 'node:crypto';
import { type RunnerCredential, renderStartupScript } from '../bootstrap/render.js';
import { sharedArchitecture } from '../clouds/descriptor.js';
import { descriptorOf } from '../clouds/index.js';
import { TAG } from '../clouds/tags.js';
import type { Cloud, Machine, MachineStatus, PreparedCloud } from '../clouds/types.js';
import type { LaunchSpec, RunContext } from '../config.js';
import { CloudError, ForgeError, StartupTimeoutError, errorMessage, isFallback } from '../errors.js';
import type { Forge, ForgeRunner, RunnerDownloads } from '../forge/types.js';
import { Ledger, type LedgerData, nothingPending, pending } from '../ledger.js';
import type { Log } from '../log.js';
import { type Clock, mapLimited, realClock } from '../retry.js';
import { CANCELLED, CONCURRENCY, LAUNCH_LABEL, newLaunchLabel, runLabel, stopIfCancelled } from './common.js';
import { endLedger } from './end.js';
import { Placements, type TriedPlacement, describePlacement, placementsFor } from './placements.js';
import { waitOnline } from './wait.js';

/**
 * A runner's life up to online, as the README tells it: reuse a runner that is already there,
 * or prepare (the runner download and the cloud's image and dry run, at once), mint each runner's
 * credential and create its machine at the first placement with room, wait until the forge lists
 * every runner online, and keep them, or end everything of the launch at once. Every
 * registration and machine is written to the ledger before the call that creates it.
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

export interface LaunchedRunner {
  name: string;
  id: number;
  machine: Machine;
  secondsToOnline: number;
  /** Every placement tried for this runner, in order, ending with the one obtained. */
  tried: TriedPlacement[];
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
  /**
   * The random label only this launch's runners carry, for its own jobs' `runs-on`. When runners
   * were reused, the launch label of the first of them (or its first label, for a runner that
   * has none).
   */
  launchLabel: string;
  region: string;
  ledger: LedgerData;
}

export async function launch(spec: LaunchSpec, ctx: RunContext, deps: LaunchDeps): Promise<LaunchResult> {
  const run = new Launch(spec, ctx, deps);
  const reused = await run.reuse();
  if (reused) return reused;
  // Everything independent starts at once: the runner download and the cloud's preparation run
  // while each runner's credential is minted, so the first machine is requested one round trip
  // after the slowest of them.
  const ready = await run.create(run.prepare());
  const waited = await run.waitOnline(ready);
  return run.keep(waited, ready);
}

/** What a prepared launch shares: the runner download, the cloud that can launch, where to try. */
interface Prepared {
  downloads: RunnerDownloads;
  cloud: PreparedCloud;
  placements: Placements;
}

/** One runner of the launch: its rendered request, the placements it tried, its machine. */
interface RunnerAttempt {
  script: string;
  credential: RunnerCredential;
  version: string;
  tried: TriedPlacement[];
  machine?: Machine;
}

class Launch {
  private readonly clock: Clock;
  private readonly started: number;
  private readonly ledger: Ledger;
  private readonly secrets: Set<string>;
  private readonly label: string;
  private readonly launchLabel: string;
  /** The architecture every machine of the launch will have, for a JIT runner's labels. */
  private readonly architecture: ReturnType<typeof sharedArchitecture>;
  private readonly runners = new Map<string, RunnerAttempt>();
  private readonly failures = new Map<string, string>();
  private announced = false;

  constructor(
    private readonly spec: LaunchSpec,
    private readonly ctx: RunContext,
    private readonly deps: LaunchDeps,
  ) {
    this.clock = deps.clock ?? realClock;
    this.started = this.clock.now();
    const forge = { scope: spec.forge.scope, apiUrl: spec.forge.apiUrl };
    this.ledger = new Ledger(Ledger.empty(spec.cloud.name, deps.cloud.region, forge), deps.persist);
    this.secrets = new Set([spec.forge.token]);
    this.label = runLabel(ctx);
    this.launchLabel = newLaunchLabel();
    this.architecture = sharedArchitecture(
      descriptorOf(spec.cloud.name).catalog,
      spec.machine.types,
      spec.cloud.options,
    );
  }

  private result(fields: Pick<LaunchResult, 'runners' | 'reused' | 'failed'>): LaunchResult {
    const { labels } = this.spec.runner;
    const first = fields.reused[0];
    const launchLabel = first ? (first.labels.find((l) => LAUNCH_LABEL.test(l)) ?? labels[0]!) : this.launchLabel;
    const region = this.deps.cloud.region;
    return { ...fields, labels, runLabel: this.label, launchLabel, region, ledger: this.ledger.data };
  }

  /** `reuse`/`reuse-idle`: online runners with every label, when there are any; nothing is launched. */
  async reuse(): Promise<LaunchResult | undefined> {
    const { runner } = this.spec;
    if (!runner.reuse) return undefined;
    const wanted = runner.labels.map((l) => l.toLowerCase());
    const found = (await this.deps.forge.runners()).filter((r) => {
      if (r.status !== 'online' || (runner.reuse === 'idle' && r.busy)) return false;
      const has = new Set(r.labels.map((l) => l.toLowerCase()));
      return wanted.every((l) => has.has(l));
    });
    const labels = runner.labels.join(', ');
    if (found.length === 0) {
      this.deps.log.info(`no ${runner.reuse === 'idle' ? 'idle ' : ''}online runner has labels ${labels}; launching`);
      return undefined;
    }
    const which = found.map((r) => `${r.name} (${r.busy ? 'busy' : 'idle'})`).join(', ');
    this.deps.log.info(`reusing ${which}: online with labels ${labels}; nothing is launched`);
    this.ledger.finish([]);
    return this.result({ runners: [], reused: found, failed: [] });
  }

  /** Starts the runner download and the cloud's preparation; where machines may go is known after. */
  prepare(): Promise<Prepared> {
    const preparing = Promise.all([
      this.deps.forge.downloads(this.spec.runner.version),
      this.deps.cloud.prepare(this.spec.machine, this.ledger.recorder),
    ]).then(([downloads, cloud]) => ({
      downloads,
      cloud,
      placements: new Placements(placementsFor(this.spec, cloud)),
    }));
    preparing.catch(() => undefined); // awaited by create; this only keeps an early failure observed
    return preparing;
  }

  /**
   * Mints every runner's credential and creates its machine. Without allow-partial one failure
   * fails the launch, and so does a failure before any machine; what was created is ended at once.
   */
  async create(preparing: Promise<Prepared>): Promise<Prepared> {
    const { spec } = this;
    try {
      return await this.deps.log.group(`Launching ${spec.runner.names.length} runner(s)`, async () => {
        const [group, registrationToken] = await Promise.all([
          this.deps.forge.groupId(spec.runner.group),
          spec.runner.single ? undefined : this.deps.forge.registrationToken(),
        ]);
        if (registrationToken) this.addSecret(registrationToken);
        this.stopIfCancelled();
        const results = await mapLimited(spec.runner.names, CONCURRENCY, async (name) => {
          this.stopIfCancelled();
          const credential = await this.credential(name, group.id, registrationToken);
          const ready = await preparing;
          this.runners.set(name, { ...this.render(name, credential, group, ready), tried: [] });
          await this.place(name, ready);
        });
        this.stopIfCancelled();
        results.forEach((r, i) => {
          if (r.status === 'rejected') {
            const name = spec.runner.names[i]!;
            this.failures.set(name, `Runner ${name} could not be created: ${errorMessage(r.reason)}`);
          }
        });
        const ready = await preparing;
        for (const warning of ready.cloud.warnings ?? []) this.deps.log.warning(warning);
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed && (!spec.runner.allowPartial || this.created().length === 0)) throw failed.reason;
        return ready;
      });
    } catch (err) {
      if (this.deps.signal?.aborted) throw new Error(CANCELLED);
      await this.endAllBut([]);
      throw err;
    }
  }

  /** A just-in-time config (`single`), or the launch's one registration token. Recorded before it is asked. */
  private async credential(name: string, groupId: number, registrationToken?: string): Promise<RunnerCredential> {
    const registration = this.ledger.registration(name);
    if (!this.spec.runner.single) return { registrationToken: registrationToken! };
    // GitHub gives a just-in-time runner the labels it is sent and no others: not the defaults
    // config.sh adds (self-hosted, the OS, the architecture), which are sent here instead.
    const arch = this.architecture;
    if ('unknown' in arch) this.deps.log.debug(`runner ${name} gets no architecture label: ${arch.unknown}`);
    const defaults = ['self-hosted', 'Linux', ...('architecture' in arch ? [arch.architecture] : [])];
    const labels = [...defaults, ...this.spec.runner.labels, this.label, this.launchLabel];
    let jit: Awaited<ReturnType<Forge['jitConfig']>>;
    try {
      jit = await this.deps.forge.jitConfig(name, labels, groupId);
    } catch (err) {
      // GitHub refused the token itself or its permission: no registration was made, so none is
      // left for post to look for (with the same token, it could not even list them).
      if (err instanceof ForgeError && (err.status === 401 || err.status === 403)) this.ledger.forget(registration);
      throw err;
    }
    this.addSecret(jit.jitConfig);
    this.ledger.update(registration, { id: jit.runnerId });
    return { jitConfig: jit.jitConfig };
  }

  private render(
    name: string,
    credential: RunnerCredential,
    group: { id: number; name: string },
    ready: Prepared,
  ): Omit<RunnerAttempt, 'tried'> {
    const { spec, deps } = this;
    if (!this.announced) {
      this.announced = true;
      deps.log.info(
        `runner ${ready.downloads.version} in ${deps.cloud.region}; placements in order: ${ready.placements}`,
      );
    }
    const script = renderStartupScript({
      runnerName: name,
      labels: [...spec.runner.labels, this.label, this.launchLabel],
      url: spec.forge.url,
      // A container cloud hands the credential over apart from the script (a Kubernetes Secret).
      credential: deps.cloud.kind === 'vm' ? credential : undefined,
      container: deps.cloud.kind === 'container',
      group: group.id === 1 ? undefined : group.name,
      idleTimeoutSeconds: spec.runner.idleTimeoutSeconds,
      maxLifetimeSeconds: spec.runner.maxLifetimeSeconds,
      downloads: ready.downloads,
      userScript: spec.machine.startupScript,
      runnerCache: spec.runner.cache,
      sudo: spec.runner.sudo,
      ...ready.cloud.scriptSettings,
    });
    return { script, credential, version: ready.downloads.version };
  }

  /**
   * Creates the runner's machine at the first placement that neither this runner nor another
   * was refused. Each try is recorded before it is sent.
   */
  private async place(name: string, ready: Prepared): Promise<Machine> {
    const runner = this.runners.get(name)!;
    let lastRefusal: CloudError | undefined;
    for (const placement of ready.placements.untried(runner.tried)) {
      // A refusal to another runner meanwhile skips this placement too.
      if (!ready.placements.worthTrying(placement)) continue;
      if (!placement.spot && this.spec.machine.spot && ready.placements.firstFallback()) {
        const why = runner.tried.map((a) => `${describePlacement(a)}: ${a.outcome}`).join('; ') || 'refused earlier';
        this.deps.log.warning(
          `spot is not available (${why}); falling back to on-demand, as on-demand-fallback allows`,
        );
      }
      this.stopIfCancelled();
      const clientToken = randomUUID();
      const entry = this.ledger.machine(name, clientToken);
      try {
        const machine = await ready.cloud.launch(
          {
            runnerName: name,
            attempt: runner.tried.length + 1,
            startupScript: runner.script,
            clientToken,
            credential: runner.credential,
            runnerVersion: runner.version,
            maxLifetimeSeconds: this.spec.runner.maxLifetimeSeconds,
            tags: this.tags(name),
          },
          placement,
        );
        this.ledger.update(entry, { id: machine.id, type: machine.type, spot: machine.spot });
        runner.machine = machine;
        runner.tried.push({ ...placement, outcome: 'obtained' });
        const market = machine.spot ? 'spot' : 'on-demand';
        this.deps.log.info(
          `${name}: machine ${machine.id} (${machine.type}, ${market}${machine.zone ? `, ${machine.zone}` : ''}) ` +
            'is starting',
        );
        return machine;
      } catch (err) {
        if (!(err instanceof CloudError) || !isFallback(err.kind)) throw err;
        lastRefusal = err;
        // The cloud refused outright: nothing was created, and this placement is skipped from now on.
        this.ledger.update(entry, { refused: err.code });
        runner.tried.push({ ...placement, outcome: err.code });
        ready.placements.refuse(placement, err.kind);
        this.deps.log.warning(`${name}: ${describePlacement(placement)}: ${err.code}; trying the next placement`);
      }
    }
    throw this.noPlacement(name, runner.tried, lastRefusal);
  }

  /** One place tried: its own error says it best. Several: the order tried, then what to do. */
  private noPlacement(name: string, tried: readonly TriedPlacement[], last: CloudError | undefined): CloudError {
    if (tried.length === 1 && last) return last;
    const order = tried.map((a) => `${describePlacement(a)} (${a.outcome})`).join(', ') || 'nothing';
    const answer = last ? `. The last answer: ${last.message.split('\n')[0]}` : '';
    const { spot, onDemandFallback } = this.spec.machine;
    const fallback = spot && !onDemandFallback ? ' on-demand-fallback: true would try on-demand too.' : '';
    const title = this.deps.cloud.title;
    const message = `no placement had capacity for ${name}; tried ${order}${answer}`;
    return new CloudError(title, 'NoCapacity', message, `${last?.advice ?? ''}${fallback}`, 'capacity');
  }

  /**
   * A machine the cloud accepted but cannot start for lack of room (a pod no node can fit): it
   * is ended, its placement marked, and the runner tried at the next one. Undefined when no
   * placement is left; the machine then stays, so the failure can show its events and log.
   */
  private async replace(name: string, status: MachineStatus, ready: Prepared): Promise<Machine | undefined> {
    const runner = this.runners.get(name)!;
    const old = runner.machine!;
    const last = runner.tried[runner.tried.length - 1]!;
    if (ready.placements.untried(runner.tried).length === 0) return undefined;
    last.outcome = status.detail?.split(':')[0] ?? 'no capacity';
    ready.placements.refuse(last, 'capacity');
    await this.deps.cloud.terminate(old.id);
    const entry = this.ledger.data.machines.find((m) => m.id === old.id);
    if (entry) this.ledger.update(entry, { ended: true });
    const detail = status.detail ?? 'no capacity';
    this.deps.log.warning(`${name}: ${describePlacement(last)}: ${detail}; trying the next placement`);
    return this.place(name, ready).catch(() => undefined);
  }

  waitOnline(ready: Prepared): ReturnType<typeof waitOnline> {
    const machines = new Map(this.created().map((n) => [n, this.runners.get(n)!.machine!]));
    return this.deps.log.group('Waiting for runners to come online', () =>
      waitOnline(this.created(), this.spec, {
        ...this.deps,
        clock: this.clock,
        machines,
        ledger: this.ledger,
        secrets: this.secrets,
        started: this.started,
        replace: async (name, status) => {
          const machine = await this.replace(name, status, ready);
          if (machine) machines.set(name, machine);
          return machine;
        },
      }),
    );
  }

  /**
   * The runners that came online stay; the launch fails, and ends everything, unless every
   * runner did, or allow-partial keeps those that did (the others are ended now).
   */
  async keep(waited: Awaited<ReturnType<typeof waitOnline>>, ready: Prepared): Promise<LaunchResult> {
    // A cancel that came while the last runners came online still cancels: post ends them all.
    this.stopIfCancelled();
    const { runner } = this.spec;
    for (const [name, reason] of waited.failures) this.failures.set(name, reason);
    const kept = this.created().filter((n) => waited.online.has(n));
    const count = runner.names.length;
    if (this.failures.size > 0) {
      const why = [...this.failures.values()].join('\n\n');
      if (!runner.allowPartial || kept.length === 0) {
        await this.endAllBut([]);
        const because = runner.allowPartial ? 'none came up' : 'all or nothing; allow-partial: true keeps the others';
        const what =
          `${this.failures.size} of ${count} runners did not come up, ` +
          `so every runner of this launch was ended (${because})`;
        throw new StartupTimeoutError(count === 1 ? why : `${what}.\n\n${why}`);
      }
      const left =
        `${this.failures.size} of ${count} runners did not come up; ` +
        `allow-partial keeps the ${kept.length} that did.`;
      this.deps.log.warning(`${left}\n${why}`);
      await this.endAllBut(kept);
    } else {
      this.ledger.finish(kept);
    }
    await this.afterOnline(kept, ready);
    const ids = new Map(this.ledger.data.registrations.map((r) => [r.name, r.id!]));
    const runners = kept.map((name) => {
      const { machine, tried } = this.runners.get(name)!;
      return { name, id: ids.get(name)!, machine: machine!, secondsToOnline: waited.online.get(name)!, tried };
    });
    const failed = [...this.failures].map(([name, reason]) => ({ name, reason }));
    return this.result({ runners, reused: [], failed });
  }

  /**
   * Ends everything of the launch except the runners in `keep`, right away rather than in post:
   * a GPU that will not be used stops billing now. `keep` is written first, so if this is cut
   * short, post ends the same set; an ending that fails is left to post.
   */
  private async endAllBut(keep: readonly string[]): Promise<void> {
    this.ledger.finish(keep);
    if (nothingPending(pending(this.ledger.data))) return;
    try {
      const report = await endLedger(this.ledger.data, this.deps);
      this.ledger.markEnded(new Set(report.resources.filter((r) => r.result === 'left').map((r) => r.name)));
    } catch (err) {
      this.deps.log.warning(`Post will retry the cleanup: ${errorMessage(err)}`);
    }
  }

  /** Lets the cloud remove what each kept machine needed only to start; a refusal is a warning. */
  private async afterOnline(kept: readonly string[], ready: Prepared): Promise<void> {
    const online = ready.cloud.online?.bind(ready.cloud);
    if (!online) return;
    await Promise.all(
      kept.map(async (name) => {
        const machine = this.runners.get(name)!.machine!;
        await online(machine).catch((err: unknown) =>
          this.deps.log.warning(`${name}: after it came online: ${errorMessage(err)}`),
        );
      }),
    );
  }

  /** Runners with a machine, in the order asked. */
  private created(): string[] {
    return this.spec.runner.names.filter((n) => this.runners.get(n)?.machine !== undefined);
  }

  private tags(name: string): Record<string, string> {
    const expiresAt = this.clock.now() + this.spec.runner.maxLifetimeSeconds * 1000;
    return {
      ...this.spec.machine.tags,
      Name: name,
      [TAG.managed]: 'true',
      [TAG.repo]: this.ctx.repository,
      [TAG.runId]: this.ctx.runId,
      [TAG.runner]: name,
      [TAG.expiresAt]: new Date(expiresAt).toISOString(),
    };
  }

  private addSecret(value: string): void {
    this.secrets.add(value);
    this.deps.log.secret(value);
  }

  private stopIfCancelled(): void {
    stopIfCancelled(this.deps.signal);
  }
}
