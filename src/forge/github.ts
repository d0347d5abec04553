import { Octokit } from '@octokit/core';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck/light.js';
import type { ForgeScope, ForgeSpec } from '../config.js';
import type { RunnerDownload } from '../bootstrap/render.js';
import { ForgeError, errorMessage } from '../errors.js';
import type { Log } from '../log.js';
import type { Forge, ForgeRunner, RunnerDownloads } from './types.js';
import { realClock, retry, type Clock } from '../retry.js';

/**
 * GitHub's self-hosted runner API: mint runner credentials, watch runners come online,
 * delete registrations. Works for repository and organisation runners, on github.com and GHES
 * (the API URL comes from GITHUB_API_URL).
 */

const ThrottledOctokit = Octokit.plugin(throttling);

/**
 * Writes (a just-in-time config per runner) are paced at 10 at a time, at most 10 a second,
 * instead of the throttling plugin's one a second, which made 50 runners wait 50 s. GitHub's
 * secondary limits allow 100 concurrent requests and 900 points a minute per endpoint, a write
 * costing 5 (docs: "Rate limits for the REST API"); one launch of at most 100 runners stays
 * under both, and a secondary-limit answer is still retried after its Retry-After.
 */
const WRITE_PACING = { maxConcurrent: 10, minTime: 100 };
/** Each attempt has its own timeout; a transient failure (5xx, a reset or timed-out connection) is retried with jittered backoff. */
const REQUEST_TIMEOUT_MS = 30_000;
const ATTEMPTS = 5;
const BACKOFF_BASE_MS = 1000;
const API_VERSION = '2022-11-28';

export class GitHubForge implements Forge {
  readonly title = 'GitHub';
  private readonly octokit: InstanceType<typeof ThrottledOctokit>;
  private readonly base: string;

  constructor(
    private readonly spec: Pick<ForgeSpec, 'scope' | 'apiUrl' | 'token'>,
    private readonly log: Log,
    private readonly clock: Clock = realClock,
  ) {
    this.base = scopePath(spec.scope);
    this.octokit = new ThrottledOctokit({
      auth: spec.token,
      baseUrl: spec.apiUrl,
      userAgent: 'cml-runner-action',
      throttle: {
        write: new Bottleneck.Group({ id: 'cml-runner-write', timeout: 120_000, ...WRITE_PACING }),
        // GitHub's primary and secondary limits: wait as told, a few times, then give up.
        onRateLimit: (retryAfter, options, _o, retryCount) => {
          this.log.warning(`GitHub rate limit on ${options.method} ${options.url}; retrying in ${retryAfter}s`);
          return retryCount < 3;
        },
        onSecondaryRateLimit: (retryAfter, options, _o, retryCount) => {
          this.log.warning(
            `GitHub secondary rate limit on ${options.method} ${options.url}; retrying in ${retryAfter}s`,
          );
          return retryCount < 3;
        },
      },
    });
  }

  /**
   * One API call: rate limits are waited out by the throttling plugin (Retry-After); transient
   * failures are retried here; anything else (401, 403, 404, 409, 422) fails at once.
   * `tries.count` tells the caller how many attempts were sent.
   */
  private async call<T>(
    route: string,
    params: Record<string, unknown> = {},
    tries: { count: number } = { count: 0 },
  ): Promise<{ status: number; data: T }> {
    return retry(
      async () => {
        tries.count += 1;
        try {
          const res = await this.octokit.request(route, {
            ...params,
            headers: { 'x-github-api-version': API_VERSION },
            request: { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) },
          });
          return { status: res.status, data: res.data as T };
        } catch (err) {
          const explained = this.explain(err, route);
          if (isTransient(explained) && tries.count < ATTEMPTS) this.log.info(`GitHub: ${explained.message}; retrying`);
          throw explained;
        }
      },
      {
        attempts: ATTEMPTS,
        baseMs: BACKOFF_BASE_MS,
        classify: (err) => (isTransient(err) ? 'transient' : 'permanent'),
        clock: this.clock,
      },
    );
  }

  /** Turns GitHub's refusals into errors that say which permission is missing. */
  private explain(err: unknown, route: string): Error {
    const status = (err as { status?: number }).status;
    const message =
      (err as { response?: { data?: { message?: string } } }).response?.data?.message ?? errorMessage(err);
    const where =
      this.spec.scope.kind === 'repo'
        ? `${this.spec.scope.owner}/${this.spec.scope.repo}`
        : `organisation ${this.spec.scope.org}`;
    const permission =
      this.spec.scope.kind === 'repo'
        ? 'repository permission "Administration: write" (fine-grained token or GitHub App) or the "repo" scope (classic token)'
        : 'organisation permission "Self-hosted runners: write" (fine-grained token or GitHub App) or the "admin:org" scope (classic token)';
    if (status === 401) {
      return new ForgeError(
        `GitHub refused the token input (401 ${message}). Check that the secret passed as 'token' exists and has not expired.`,
        401,
      );
    }
    if (status === 403 || status === 404) {
      return new ForgeError(
        `GitHub answered ${status} (${message}) to ${route} for ${where}. The token input needs the ${permission}. ` +
          `The workflow's GITHUB_TOKEN can never manage self-hosted runners: pass a personal access token or a GitHub App token in 'token'.`,
        status,
      );
    }
    return new ForgeError(`GitHub answered ${status ?? 'with an error'} to ${route}: ${message}`, status);
  }

  private readonly downloadsByVersion = new Map<string, Promise<RunnerDownloads>>();

  /**
   * Runner tarballs GitHub currently accepts, with their checksums. Asked once per version: main
   * starts this request before it loads the cloud's SDK, and the launch gets the same answer.
   */
  downloads(version: string): Promise<RunnerDownloads> {
    let pending = this.downloadsByVersion.get(version);
    if (!pending) {
      pending = this.fetchDownloads(version);
      this.downloadsByVersion.set(version, pending);
    }
    return pending;
  }

  private async fetchDownloads(version: string): Promise<RunnerDownloads> {
    const { data } = await this.call<
      Array<{ os: string; architecture: string; download_url: string; filename: string; sha256_checksum?: string }>
    >(`GET ${this.base}/actions/runners/downloads`);
    const pick = (arch: string): RunnerDownload | undefined => {
      const d = data.find((x) => x.os === 'linux' && x.architecture === arch);
      if (!d) return undefined;
      if (!d.sha256_checksum)
        throw new ForgeError(
          `GitHub listed the ${arch} runner without a sha256 checksum; refusing to run an unverified download.`,
        );
      return { url: d.download_url, sha256: d.sha256_checksum };
    };
    const X64 = pick('x64');
    const ARM64 = pick('arm64');
    const offered = /(\d+\.\d+\.\d+)/.exec(data.find((x) => x.os === 'linux')?.filename ?? '')?.[1] ?? 'unknown';
    if (!X64 && !ARM64) throw new ForgeError('GitHub listed no Linux runner download.');
    if (version !== 'latest' && version !== offered) {
      throw new ForgeError(
        `Input 'runner-version' asks for ${version}, but GitHub now offers ${offered} and refuses runners older than 30 days. Use 'latest' or ${offered}.`,
      );
    }
    return { X64, ARM64, version: offered };
  }

  /** The runner group id for a name or id. Repository runners only have the default group. */
  async groupId(group: number | string | undefined): Promise<{ id: number; name: string }> {
    if (group === undefined) return { id: 1, name: 'Default' };
    if (this.spec.scope.kind === 'repo') {
      if (group === 1 || group === 'Default' || group === 'default') return { id: 1, name: 'Default' };
      throw new ForgeError(
        `Input 'runner-group' is ${JSON.stringify(String(group))}, but runner groups belong to organisations; a repository runner is always in the default group. Set 'repo' to the organisation URL to use a group.`,
      );
    }
    const { data } = await this.call<{ runner_groups: Array<{ id: number; name: string }> }>(
      `GET ${this.base}/actions/runner-groups`,
      { per_page: 100 },
    );
    const found = data.runner_groups.find((g) => g.id === group || g.name === group);
    if (!found) {
      const names = data.runner_groups.map((g) => `${g.name} (${g.id})`).join(', ');
      throw new ForgeError(
        `Input 'runner-group' is ${JSON.stringify(String(group))}, which is not a runner group of ${this.spec.scope.org}. Groups: ${names}.`,
      );
    }
    return { id: found.id, name: found.name };
  }

  /** A single-use, just-in-time configuration for one ephemeral runner. */
  async jitConfig(name: string, labels: string[], groupId: number): Promise<{ runnerId: number; jitConfig: string }> {
    const mint = async (tries: { count: number }) => {
      const { data } = await this.call<{ runner: { id: number }; encoded_jit_config: string }>(
        `POST ${this.base}/actions/runners/generate-jitconfig`,
        { name, labels, runner_group_id: groupId, work_folder: '_work' },
        tries,
      );
      return { runnerId: data.runner.id, jitConfig: data.encoded_jit_config };
    };
    const tries = { count: 0 };
    try {
      return await mint(tries);
    } catch (err) {
      // A retry that finds the name taken: the attempt whose answer was lost registered it. That
      // registration is ours and its config never reached us, so it is replaced.
      if (!(err instanceof ForgeError && err.status === 409 && tries.count > 1)) throw err;
      const stale = (await this.runners()).find((r) => r.name === name && r.status !== 'online' && !r.busy);
      if (!stale) throw err;
      await this.deleteRunner(stale.id);
      return mint({ count: 0 });
    }
  }

  /** A registration token: valid for one hour, it can only register runners. */
  async registrationToken(): Promise<string> {
    const { data } = await this.call<{ token: string }>(`POST ${this.base}/actions/runners/registration-token`);
    return data.token;
  }

  async runners(): Promise<ForgeRunner[]> {
    const all: ForgeRunner[] = [];
    for (let page = 1; ; page++) {
      const { data } = await this.call<{
        total_count: number;
        runners: Array<{ id: number; name: string; status: string; busy: boolean; labels: Array<{ name: string }> }>;
      }>(`GET ${this.base}/actions/runners`, { per_page: 100, page });
      all.push(
        ...data.runners.map((r) => ({
          id: r.id,
          name: r.name,
          status: r.status,
          busy: r.busy,
          labels: r.labels.map((l) => l.name),
        })),
      );
      if (data.runners.length < 100 || all.length >= data.total_count) return all;
    }
  }

  /** Deletes a registration; one that is already gone counts as deleted. */
  async deleteRunner(id: number): Promise<'deleted' | 'gone'> {
    try {
      await this.call(`DELETE ${this.base}/actions/runners/{runner_id}`, { runner_id: id });
      return 'deleted';
    } catch (err) {
      if (err instanceof ForgeError && err.status === 404) return 'gone';
      throw err;
    }
  }
}

/** No answer, a timeout, a reset connection, 408 or a 5xx: worth another try. */
function isTransient(err: unknown): boolean {
  if (!(err instanceof ForgeError)) return false;
  return err.status === undefined || err.status === 408 || err.status >= 500;
}

function scopePath(scope: ForgeScope): string {
  return scope.kind === 'repo' ? `/repos/${scope.owner}/${scope.repo}` : `/orgs/${scope.org}`;
}

export type { ForgeRunner, RunnerDownloads } from './types.js';
