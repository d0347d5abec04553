/**
 * The fake GitHub's state: runner registrations and their sessions, queued jobs, issued
 * registration and remove tokens, label ids and rate-limit counters, and what follows from them
 * (online or offline, which job a runner may take, an ephemeral runner's removal).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { components } from '@octokit/openapi-types';
import type { Timers } from '../core/index.js';

type Runner = components['schemas']['runner'];
type RunnerLabel = components['schemas']['runner-label'];
type AuthenticationToken = components['schemas']['authentication-token'];

export type JobStatus = 'queued' | 'in_progress' | 'completed';
export type JobConclusion = 'success' | 'failure' | 'cancelled';

export interface JobView {
  id: number;
  status: JobStatus;
  conclusion?: JobConclusion;
  runnerName?: string;
  log: string;
}

export interface RunnerView {
  id: number;
  name: string;
  labels: string[];
  status: 'online' | 'offline';
  busy: boolean;
  ephemeral: boolean;
  /** `octo-org` for an organisation runner, `octo-org/ml` for a repository runner. */
  scope: string;
  /** When the runner's current session began: the moment the API starts listing it online (epoch ms). */
  onlineSince?: number;
}

// ---------------------------------------------------------------- the known world

export const ORG = 'octo-org';
export const REPO = 'octo-org/ml';
export const GROUPS = [
  { id: 1, name: 'Default', default: true },
  { id: 2, name: 'gpu', default: false },
];
const READ_ONLY_LABEL_IDS: Record<string, number> = { 'self-hosted': 1, X64: 2, ARM64: 3, Linux: 4, ARM: 5 };

export interface Registration {
  id: number;
  name: string;
  scope: string;
  groupId: number;
  custom: string[];
  noDefaultLabels: boolean;
  /** Known once the runner registered through config.sh or first connected. */
  arch?: string;
  version?: string;
  ephemeral: boolean;
  jit: boolean;
  jitUsed: boolean;
  credential: string;
  clientId: string;
  session?: Session;
  busyJob?: number;
}

export interface Session {
  id: string;
  started: number;
  lastSeen: number;
  pendingPolls: number;
  closed: boolean;
}

export interface Job {
  id: number;
  owner: string;
  repo?: string;
  labels: string[];
  script?: string;
  durationMs?: number;
  name: string;
  runId: number;
  status: JobStatus;
  conclusion?: JobConclusion;
  runnerId?: number;
  runnerName?: string;
  log: string;
  lastRenew?: number;
  waiters: Array<() => void>;
}

export interface IssuedToken {
  kind: 'registration' | 'remove';
  scope: string;
  expiresAt: number;
}

export interface NewRegistration {
  scope: string;
  name: string;
  groupId: number;
  labels: string[];
  ephemeral: boolean;
  jit: boolean;
  noDefaultLabels: boolean;
  arch?: string;
}

export class GitHubStore {
  readonly registrations = new Map<number, Registration>();
  readonly jobs = new Map<number, Job>();
  private readonly issued = new Map<string, IssuedToken>();
  private readonly customLabelIds = new Map<string, number>();
  private readonly pollWakers = new Set<() => void>();
  /** Requests counted per token, for the rate-limit headers. */
  readonly rate = new Map<string, number>();
  private nextRunnerId = 23;
  private nextJobId = 1001;
  /** A runner is offline once it missed three heartbeats without a poll pending. */
  readonly staleMs: number;

  constructor(
    readonly heartbeatMs: number,
    private readonly timers: Timers,
  ) {
    this.staleMs = 3 * heartbeatMs;
  }

  get closed(): boolean {
    return this.timers.isClosed;
  }

  // -------------------------------------------------------------- runners

  isOnline(r: Registration): boolean {
    return (
      !!r.session &&
      !r.session.closed &&
      (r.session.pendingPolls > 0 || Date.now() - r.session.lastSeen <= this.staleMs)
    );
  }

  /**
   * The runner's defaults (config.sh registrations only, unless --no-default-labels), then the
   * labels it was given. Names are case-insensitive: a given label that repeats a default is
   * listed once; a default's name sent as a label (a JIT runner's `self-hosted`) is that label.
   */
  labelsOf(r: Registration): RunnerLabel[] {
    const out: RunnerLabel[] = [];
    const add = (name: string): void => {
      if (out.some((l) => l.name.toLowerCase() === name.toLowerCase())) return;
      const readOnly = Object.keys(READ_ONLY_LABEL_IDS).find((k) => k.toLowerCase() === name.toLowerCase());
      if (readOnly) {
        out.push({ id: READ_ONLY_LABEL_IDS[readOnly], name: readOnly, type: 'read-only' });
        return;
      }
      const key = name.toLowerCase();
      if (!this.customLabelIds.has(key)) this.customLabelIds.set(key, 100 + this.customLabelIds.size);
      out.push({ id: this.customLabelIds.get(key), name, type: 'custom' });
    };
    if (!r.noDefaultLabels) {
      add('self-hosted');
      if (r.arch) {
        add(archName(r.arch));
        add('Linux');
      }
    }
    for (const name of r.custom) add(name);
    return out;
  }

  runnerJson(r: Registration): Runner {
    return {
      id: r.id,
      name: r.name,
      os: r.arch ? 'Linux' : 'unknown',
      status: this.isOnline(r) ? 'online' : 'offline',
      busy: r.busyJob !== undefined,
      ephemeral: r.ephemeral,
      labels: this.labelsOf(r),
      runner_group_id: r.groupId,
      version: r.version ?? null,
    };
  }

  runnerViews(): RunnerView[] {
    return [...this.registrations.values()]
      .sort((a, b) => a.id - b.id)
      .map((r) => ({
        id: r.id,
        name: r.name,
        labels: this.labelsOf(r).map((l) => l.name),
        status: this.isOnline(r) ? ('online' as const) : ('offline' as const),
        busy: r.busyJob !== undefined,
        ephemeral: r.ephemeral,
        scope: r.scope,
        ...(this.isOnline(r) ? { onlineSince: r.session!.started } : {}),
      }));
  }

  /** The runner with this name in this scope (names are case-insensitive, as on GitHub). */
  byName(scope: string, name: string): Registration | undefined {
    return [...this.registrations.values()].find(
      (r) => r.scope === scope && r.name.toLowerCase() === name.toLowerCase(),
    );
  }

  byCredential(credential: string): Registration | undefined {
    return [...this.registrations.values()].find((r) => r.credential === credential);
  }

  createRegistration(o: NewRegistration): Registration {
    const custom: string[] = [];
    for (const l of o.labels) {
      const name = l.trim();
      if (name && !custom.some((c) => c.toLowerCase() === name.toLowerCase())) custom.push(name);
    }
    const r: Registration = {
      id: this.nextRunnerId++,
      name: o.name,
      scope: o.scope,
      groupId: o.groupId,
      custom,
      noDefaultLabels: o.noDefaultLabels,
      arch: o.arch,
      ephemeral: o.ephemeral,
      jit: o.jit,
      jitUsed: false,
      credential: randomBytes(32).toString('hex'),
      clientId: randomUUID(),
    };
    this.registrations.set(r.id, r);
    return r;
  }

  removeRegistration(r: Registration): void {
    this.registrations.delete(r.id);
    if (r.session) r.session.closed = true;
    this.wakePolls();
  }

  /** One line per registration, for a job that waited too long. */
  describeRunners(): string {
    return [...this.registrations.values()]
      .map((r) => `${r.name}(${r.scope},${this.isOnline(r) ? 'online' : 'offline'}${r.busyJob ? ',busy' : ''})`)
      .join(' ');
  }

  // -------------------------------------------------------------- long polls

  /** Resolves after `ms`, or sooner when a job is queued or a registration goes away. */
  waitForWork(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.timers.cancel(timer);
        this.pollWakers.delete(done);
        resolve();
      };
      const timer = this.timers.later(ms, done);
      this.pollWakers.add(done);
    });
  }

  wakePolls(): void {
    for (const wake of [...this.pollWakers]) wake();
  }

  // -------------------------------------------------------------- jobs

  queueJob(j: {
    owner: string;
    repo?: string;
    labels: string[];
    script?: string;
    durationMs?: number;
    name?: string;
  }): { id: number } {
    const id = this.nextJobId++;
    this.jobs.set(id, {
      id,
      owner: j.owner,
      repo: j.repo,
      labels: [...j.labels],
      script: j.script,
      durationMs: j.durationMs,
      name: j.name ?? `job-${id}`,
      runId: 7_000_000 + id,
      status: 'queued',
      log: '',
      waiters: [],
    });
    this.wakePolls();
    return { id };
  }

  mustJob(id: number): Job {
    const j = this.jobs.get(id);
    if (!j) throw new Error(`fake GitHub: no job ${id}`);
    return j;
  }

  jobView(j: Job): JobView {
    return {
      id: j.id,
      status: j.status,
      ...(j.conclusion ? { conclusion: j.conclusion } : {}),
      ...(j.runnerName ? { runnerName: j.runnerName } : {}),
      log: j.log,
    };
  }

  claimJob(r: Registration): Job | undefined {
    if (r.busyJob !== undefined) return undefined;
    const names = new Set(this.labelsOf(r).map((l) => l.name.toLowerCase()));
    for (const job of this.jobs.values()) {
      if (job.status !== 'queued') continue;
      const inScope = r.scope === job.owner || (job.repo !== undefined && r.scope === `${job.owner}/${job.repo}`);
      if (!inScope) continue;
      if (!job.labels.every((l) => names.has(l.toLowerCase()))) continue;
      job.status = 'in_progress';
      job.runnerId = r.id;
      job.runnerName = r.name;
      job.lastRenew = Date.now();
      r.busyJob = job.id;
      return job;
    }
    return undefined;
  }

  finishJob(job: Job, conclusion: JobConclusion, log: string, runnerLost = false): void {
    job.status = 'completed';
    job.conclusion = conclusion;
    job.log += log;
    const r = job.runnerId !== undefined ? this.registrations.get(job.runnerId) : undefined;
    if (r && r.busyJob === job.id) {
      r.busyJob = undefined;
      // Ephemeral runners take exactly one job; GitHub removes their registration afterwards.
      // A runner that vanished mid-job stays listed offline, as on GitHub, until someone deletes it.
      if (r.ephemeral && !runnerLost) this.removeRegistration(r);
    }
    for (const w of job.waiters.splice(0)) w();
  }

  /** Jobs whose runner stopped renewing fail, as GitHub fails them after losing the runner. */
  failLostJobs(): void {
    const now = Date.now();
    for (const job of this.jobs.values()) {
      if (job.status !== 'in_progress') continue;
      if (now - (job.lastRenew ?? now) > this.staleMs * 2) {
        this.finishJob(
          job,
          'failure',
          `##[error]The self-hosted runner: ${job.runnerName} lost communication with the server.\n`,
          true,
        );
      }
    }
  }

  // -------------------------------------------------------------- registration and remove tokens

  issueToken(kind: IssuedToken['kind'], scope: string): AuthenticationToken {
    // Real tokens look like `AABF3JGZDX3P5PMEXLND6TS6FCWO6`: 29 upper-case base32 characters.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const bytes = randomBytes(29);
    let t = '';
    for (const b of bytes) t += alphabet[b % 32];
    const expiresAt = Date.now() + 3600_000;
    this.issued.set(t, { kind, scope, expiresAt });
    return { token: t, expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z') };
  }

  /** The token, if it was issued for this use and has not expired. */
  takeIssued(t: unknown, kind: IssuedToken['kind']): IssuedToken | undefined {
    const it = typeof t === 'string' ? this.issued.get(t) : undefined;
    if (!it || it.kind !== kind || it.expiresAt <= Date.now()) return undefined;
    return it;
  }

  expireTokens(): void {
    for (const t of this.issued.values()) t.expiresAt = Date.now() - 1;
  }
}

function archName(arch: string): string {
  return arch === 'arm64' ? 'ARM64' : arch === 'arm' ? 'ARM' : 'X64';
}
