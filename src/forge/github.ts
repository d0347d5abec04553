import { getOctokit } from '@actions/github';
import { throttling } from '@octokit/plugin-throttling';
import type { EndpointDefaults, Endpoints, OctokitResponse } from '@octokit/types';
import Bottleneck from 'bottleneck/light.js';
import type { RunnerDownload } from '../bootstrap/render.js';
import type { ForgeScope, ForgeSpec } from '../config.js';
import { errorMessage, ForgeError, type ErrorKind } from '../errors.js';
import type { Log } from '../log.js';
import { realClock, type RetryContext, retry } from '../retry.js';
import type { Forge, ForgeRunner, RunnerDownloads } from './types.js';

/**
 * GitHub's self-hosted runner API: mint runner credentials, watch runners come online, delete
 * registrations. Works for repository and organisation runners, on github.com and GHES. The
 * client is `@actions/github`'s (proxy settings, the runner's user agent), with the throttling
 * plugin; the API URL comes from the forge spec (GITHUB_API_URL in a workflow).
 */

/** The routes this forge calls, per scope: real GitHub routes, checked against GitHub's REST description. */
const ROUTES = {
  repo: {
    downloads: 'GET /repos/{owner}/{repo}/actions/runners/downloads',
    runners: 'GET /repos/{owner}/{repo}/actions/runners',
    jitConfig: 'POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig',
    registrationToken: 'POST /repos/{owner}/{repo}/actions/runners/registration-token',
    deleteRunner: 'DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}',
  },
  org: {
    downloads: 'GET /orgs/{org}/actions/runners/downloads',
    runners: 'GET /orgs/{org}/actions/runners',
    jitConfig: 'POST /orgs/{org}/actions/runners/generate-jitconfig',
    registrationToken: 'POST /orgs/{org}/actions/runners/registration-token',
    deleteRunner: 'DELETE /orgs/{org}/actions/runners/{runner_id}',
    groups: 'GET /orgs/{org}/actions/runner-groups',
  },
} as const satisfies Record<ForgeScope['kind'], Record<string, keyof Endpoints>>;

/** What a route answers; the repository and organisation routes answer alike. */
type Answer<R extends keyof Endpoints> = Endpoints[R]['response']['data'];
type Route = keyof typeof ROUTES.repo;
/** A request as the client's hooks see it: the route template, its parameters, headers. */
type Request = Required<EndpointDefaults>;
type Answered = OctokitResponse<unknown>;

/**
 * Writes (a just-in-time config per runner) are paced at 10 at a time, at most 10 a second,
 * instead of the throttling plugin's one a second, which made 50 runners wait 50 s. GitHub's
 * secondary limits allow 100 concurrent requests and 900 points a minute per endpoint, a write
 * costing 5 (docs: "Rate limits for the REST API"); one launch of at most 100 runners stays
 * under both, and a secondary-limit answer is still retried after its Retry-After.
 */
const WRITE_PACING = { maxConcurrent: 10, minTime: 100 };
/** Each attempt has its own timeout; a transient failure is retried with jittered backoff. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Five attempts with waits of about 1, 2, 4 and 8 s: a call gives up within about 15 s of waiting. */
const ATTEMPTS = 5;
const BACKOFF_BASE_MS = 1000;
const API_VERSION = '2022-11-28';
const PER_PAGE = 100;

export class GitHubForge implements Forge {
  readonly title = 'GitHub';
  private readonly octokit: ReturnType<typeof getOctokit>;
  private readonly routes: Partial<Record<keyof typeof ROUTES.org, string>>;
  private readonly scopeParams: Record<string, string>;

  /** `retrying` carries the clock and the launch's cancel signal: a cancel ends a retry wait at once. */
  constructor(
    private readonly spec: Pick<ForgeSpec, 'scope' | 'apiUrl' | 'token'>,
    private readonly log: Log,
    private readonly retrying: RetryContext = { clock: realClock },
  ) {
    const { scope } = spec;
    this.routes = ROUTES[scope.kind];
    this.scopeParams = scope.kind === 'repo' ? { owner: scope.owner, repo: scope.repo } : { org: scope.org };
    this.octokit = getOctokit(
      spec.token,
      {
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
      },
      throttling,
    );
    // The one retry layer wraps every request, pages of a list included. It is the outermost
    // hook, so each attempt is paced and has its rate limits waited out by the throttling plugin.
    this.octokit.hook.wrap('request', (request, options) => this.attempts(request, options));
  }

  /**
   * One API call: transient failures (no answer, a timeout, 408, a 5xx) are retried here, and on
   * a delete a runner still counted as busy (422); rate limits (403 or 429 with GitHub's rate
   * limit signals) are the throttling plugin's; anything else fails at once.
   */
  private attempts(request: (options: Request) => Answered | Promise<Answered>, options: Request): Promise<Answered> {
    const route = describeRoute(options);
    return retry(
      async (attempt) => {
        try {
          return await request({
            ...options,
            headers: { ...options.headers, 'x-github-api-version': API_VERSION },
            request: { ...options.request, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) },
          });
        } catch (err) {
          throw this.explain(err, route, attempt);
        }
      },
      {
        attempts: ATTEMPTS,
        baseMs: BACKOFF_BASE_MS,
        classify: (err) => retryKind(err, options.method),
        onRetry: (err, attempt, waitMs) =>
          this.log.debug(
            `GitHub: ${errorMessage(err)}; retrying in ${(waitMs / 1000).toFixed(1)} s ` +
              `(attempt ${attempt + 1} of ${ATTEMPTS})`,
          ),
        ...this.retrying,
      },
    );
  }

  get scope(): ForgeScope {
    return this.spec.scope;
  }

  /** A route of this forge's scope, with the scope's own parameters filled in. */
  private async request<R extends Route>(
    name: R,
    params: Record<string, unknown> = {},
  ): Promise<Answer<(typeof ROUTES.repo)[R]>> {
    const route = this.routes[name] as string;
    const { data } = await this.octokit.request(route, { ...this.scopeParams, ...params });
    return data as Answer<(typeof ROUTES.repo)[R]>;
  }

  /** Turns GitHub's refusals into errors that say which permission is missing. */
  private explain(err: unknown, route: string, attempts: number): ForgeError {
    const status = (err as { status?: number }).status;
    const message =
      (err as { response?: { data?: { message?: string } } }).response?.data?.message ?? errorMessage(err);
    const { scope } = this.spec;
    const where = scope.kind === 'repo' ? `${scope.owner}/${scope.repo}` : `organisation ${scope.org}`;
    const permission =
      scope.kind === 'repo'
        ? 'repository permission "Administration: write" (fine-grained token or GitHub App) ' +
          'or the "repo" scope (classic token)'
        : 'organisation permission "Self-hosted runners: write" (fine-grained token or GitHub App) ' +
          'or the "admin:org" scope (classic token)';
    if (status === 401) {
      return new ForgeError(
        `GitHub refused the token input (401 ${message}). ` +
          `Check that the secret passed as 'token' exists and has not expired.`,
        401,
        attempts,
      );
    }
    if (status === 403 || status === 404) {
      return new ForgeError(
        `GitHub answered ${status} (${message}) to ${route} for ${where}. The token input needs the ${permission}. ` +
          `The workflow's GITHUB_TOKEN can never manage self-hosted runners: ` +
          `pass a personal access token or a GitHub App token in 'token'.`,
        status,
        attempts,
      );
    }
    return new ForgeError(`GitHub answered ${status ?? 'with an error'} to ${route}: ${message}`, status, attempts);
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
    const data = await this.request('downloads');
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
        `Input 'runner-version' asks for ${version}, but GitHub now offers ${offered} and refuses runners ` +
          `older than 30 days. Use 'latest' or ${offered}.`,
      );
    }
    return { X64, ARM64, version: offered };
  }

  /** The runner group id for a name or id. Repository runners only have the default group. */
  async groupId(group: number | string | undefined): Promise<{ id: number; name: string }> {
    if (group === undefined) return { id: 1, name: 'Default' };
    const { scope } = this.spec;
    if (scope.kind === 'repo') {
      if (group === 1 || group === 'Default' || group === 'default') return { id: 1, name: 'Default' };
      throw new ForgeError(
        `Input 'runner-group' is ${JSON.stringify(String(group))}, but runner groups belong to organisations; ` +
          `a repository runner is always in the default group. Set 'repo' to the organisation URL to use a group.`,
      );
    }
    const groups = await this.octokit.paginate(ROUTES.org.groups, { org: scope.org, per_page: PER_PAGE });
    const found = groups.find((g) => g.id === group || g.name === group);
    if (!found) {
      const names = groups.map((g) => `${g.name} (${g.id})`).join(', ');
      throw new ForgeError(
        `Input 'runner-group' is ${JSON.stringify(String(group))}, which is not a runner group of ${scope.org}. ` +
          `Groups: ${names}.`,
      );
    }
    return { id: found.id, name: found.name };
  }

  /**
   * A single-use, just-in-time configuration for one ephemeral runner, with exactly `labels`:
   * GitHub adds none of its default ones to a just-in-time runner. Labels are case-insensitive
   * on GitHub, so one given twice (`linux` beside `Linux`) is sent once, as first written.
   */
  async jitConfig(name: string, given: string[], groupId: number): Promise<{ runnerId: number; jitConfig: string }> {
    const labels = given.filter((l, i) => given.findIndex((o) => o.toLowerCase() === l.toLowerCase()) === i);
    const mint = async () => {
      const data = await this.request('jitConfig', { name, labels, runner_group_id: groupId, work_folder: '_work' });
      return { runnerId: data.runner.id, jitConfig: data.encoded_jit_config };
    };
    try {
      return await mint();
    } catch (err) {
      // A retry that finds the name taken: the attempt whose answer was lost registered it. That
      // registration is ours and its config never reached us, so it is replaced.
      if (!(err instanceof ForgeError && err.status === 409 && err.attempts > 1)) throw err;
      const stale = (await this.runners()).find((r) => r.name === name && r.status !== 'online' && !r.busy);
      if (!stale) throw err;
      await this.deleteRunner(stale.id);
      return mint();
    }
  }

  /** A registration token: valid for one hour, it can only register runners. */
  async registrationToken(): Promise<string> {
    return (await this.request('registrationToken')).token;
  }

  /** Every runner of the scope, page by page as GitHub's `Link` header leads. */
  async runners(): Promise<ForgeRunner[]> {
    const { scope } = this.spec;
    const all =
      scope.kind === 'repo'
        ? await this.octokit.paginate(ROUTES.repo.runners, { owner: scope.owner, repo: scope.repo, per_page: PER_PAGE })
        : await this.octokit.paginate(ROUTES.org.runners, { org: scope.org, per_page: PER_PAGE });
    return all.map((r) => ({
      id: r.id,
      name: r.name,
      status: r.status,
      busy: r.busy,
      labels: r.labels.map((l) => l.name),
    }));
  }

  /**
   * Deletes a registration; one that is already gone counts as deleted. A runner whose job has
   * just ended can be refused as busy (422) for a few seconds: the retry layer tries it again.
   */
  async deleteRunner(id: number): Promise<'deleted' | 'gone'> {
    try {
      await this.request('deleteRunner', { runner_id: id });
      return 'deleted';
    } catch (err) {
      if (err instanceof ForgeError && err.status === 404) return 'gone';
      throw err;
    }
  }
}

/** Whether the retry layer tries a failed request again. */
function retryKind(err: unknown, method: string): ErrorKind {
  if (!(err instanceof ForgeError)) return 'permanent';
  if (method === 'DELETE' && err.status === 422) return 'transient';
  return err.kind;
}

/** `GET /repos/octo-org/ml/actions/runners`: the route with its parameters filled in, for messages. */
function describeRoute(options: Request): string {
  const path = options.url.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const value = options[key];
    return typeof value === 'string' || typeof value === 'number' ? String(value) : whole;
  });
  return `${options.method} ${path.replace(/^https?:\/\/[^/]+(\/api\/v3)?/, '').replace(/\?.*$/, '')}`;
}

export type { ForgeRunner, RunnerDownloads } from './types.js';
