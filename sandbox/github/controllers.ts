/**
 * What each REST action of the fake GitHub does, on the store: runner groups, runner downloads,
 * registration and remove tokens, JIT configs, runners (list, get, labels, delete).
 * https://docs.github.com/rest/actions/self-hosted-runners
 * https://docs.github.com/rest/actions/self-hosted-runner-groups
 */
import type { components } from '@octokit/openapi-types';
import { DOCS, HttpError, notFound } from './errors.js';
import { GROUPS, type GitHubStore, ORG, REPO } from './store.js';
import type { RunnerPacks } from './tarball.js';
import { pageParams, parseJson, validateJitBody } from './validation.js';

type RunnerGroup = components['schemas']['runner-groups-org'];

/** What the controllers share: the state, the runner release, and where the fake listens. */
export interface GitHubContext {
  store: GitHubStore;
  packs: RunnerPacks;
  serverUrl: string;
  apiUrl: string;
  /** `admin` may administer runners, `readOnly` is like a workflow's GITHUB_TOKEN, `bad` is unknown. */
  tokens: { admin: string; readOnly: string; bad: string };
}

/** A REST answer before headers are added; `body` is JSON. */
export interface Result {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** The `Link` header GitHub pages lists with (prev, next, last, first). */
function linkHeader(
  ctx: GitHubContext,
  url: URL,
  page: number,
  perPage: number,
  total: number,
): Record<string, string> {
  const last = Math.max(1, Math.ceil(total / perPage));
  const link = (n: number, rel: string): string => {
    const u = new URL(url.toString());
    u.searchParams.set('per_page', String(perPage));
    u.searchParams.set('page', String(n));
    return `<${ctx.serverUrl}${u.pathname}${u.search}>; rel="${rel}"`;
  };
  const parts: string[] = [];
  if (page > 1) parts.push(link(page - 1, 'prev'));
  if (page < last) parts.push(link(page + 1, 'next'), link(last, 'last'));
  if (page > 1) parts.push(link(1, 'first'));
  return parts.length ? { link: parts.join(', ') } : {};
}

export function listRunners(ctx: GitHubContext, scope: string, url: URL): Result {
  const { perPage, page } = pageParams(url);
  const name = url.searchParams.get('name');
  const all = [...ctx.store.registrations.values()]
    .filter((r) => r.scope === scope && (name === null || r.name === name))
    .sort((a, b) => a.id - b.id);
  const slice = all.slice((page - 1) * perPage, page * perPage);
  return {
    status: 200,
    body: { total_count: all.length, runners: slice.map((r) => ctx.store.runnerJson(r)) },
    headers: linkHeader(ctx, url, page, perPage, all.length),
  };
}

export function listRunnerGroups(ctx: GitHubContext, url: URL): Result {
  const { perPage, page } = pageParams(url);
  const groups: RunnerGroup[] = GROUPS.map((g) => ({
    id: g.id,
    name: g.name,
    visibility: 'all',
    default: g.default,
    runners_url: `${ctx.apiUrl}/orgs/${ORG}/actions/runner-groups/${g.id}/runners`,
    hosted_runners_url: `${ctx.apiUrl}/orgs/${ORG}/actions/runner-groups/${g.id}/hosted-runners`,
    inherited: false,
    allows_public_repositories: false,
    restricted_to_workflows: false,
    selected_workflows: [],
    workflow_restrictions_read_only: false,
  }));
  const slice = groups.slice((page - 1) * perPage, page * perPage);
  return {
    status: 200,
    body: { total_count: groups.length, runner_groups: slice },
    headers: linkHeader(ctx, url, page, perPage, groups.length),
  };
}

export async function listDownloads(ctx: GitHubContext): Promise<Result> {
  return { status: 200, body: await ctx.packs.applications(ctx.serverUrl) };
}

export function createToken(ctx: GitHubContext, kind: 'registration' | 'remove', scope: string): Result {
  return { status: 201, body: ctx.store.issueToken(kind, scope) };
}

/**
 * A JIT runner: registered at once (offline, ephemeral), with the runner's `.runner` and
 * `.credentials` files base64-encoded in `encoded_jit_config`, as `run.sh --jitconfig` reads them.
 * It carries the labels it was sent and nothing else: no `self-hosted`, OS or architecture label.
 * The REST docs do not say; runner tools report JIT runners without the defaults and send them
 * themselves (https://github.com/canonical/github-runner-operator/pull/466, 2025-02;
 * https://github.com/cloudbase/garm/pull/163, 2023-08), though one reports them added
 * (https://github.com/github-aws-runners/terraform-aws-github-runner/pull/3491, 2023-10). The fake
 * takes the less convenient reading; config.sh registrations still get the runner's defaults.
 */
export function generateJitConfig(ctx: GitHubContext, scope: string, raw: Buffer): Result {
  const isOrg = scope === ORG;
  const docs = `${DOCS}#create-configuration-for-a-just-in-time-runner-for-${isOrg ? 'an-organization' : 'a-repository'}`;
  const b = validateJitBody(parseJson(raw), docs);
  // Repositories have no runner groups of their own: only the default group (1) exists there.
  const group = GROUPS.find((g) => g.id === b.runner_group_id && (isOrg || g.default));
  if (!group) throw new HttpError(404, 'Not Found', { documentation_url: docs });
  if (ctx.store.byName(scope, b.name)) {
    throw new HttpError(409, `Already exists - A runner with the name ${b.name} already exists.`, {
      documentation_url: docs,
    });
  }
  const r = ctx.store.createRegistration({
    scope,
    name: b.name,
    groupId: group.id,
    labels: b.labels,
    ephemeral: true,
    jit: true,
    noDefaultLabels: true,
  });
  const runnerFile = {
    agentId: r.id,
    agentName: r.name,
    poolId: group.id,
    poolName: group.name,
    serverUrl: ctx.serverUrl,
    gitHubUrl: `${ctx.serverUrl}/${scope}`,
    workFolder: b.work_folder ?? '_work',
    ephemeral: true,
  };
  const credentialsFile = { scheme: 'OAuth', data: { clientId: r.clientId, credential: r.credential } };
  const files = {
    '.runner': Buffer.from(JSON.stringify(runnerFile)).toString('base64'),
    '.credentials': Buffer.from(JSON.stringify(credentialsFile)).toString('base64'),
  };
  return {
    status: 201,
    body: {
      runner: ctx.store.runnerJson(r),
      encoded_jit_config: Buffer.from(JSON.stringify(files)).toString('base64'),
    },
  };
}

/** `GET runners/{id}`, `GET runners/{id}/labels` and `DELETE runners/{id}`. */
export function runnerById(ctx: GitHubContext, method: string, scope: string, id: number, labels: boolean): Result {
  const r = ctx.store.registrations.get(id);
  if (!r || r.scope !== scope) throw notFound();
  if (labels) {
    const all = ctx.store.labelsOf(r);
    return { status: 200, body: { total_count: all.length, labels: all } };
  }
  if (method === 'GET') return { status: 200, body: ctx.store.runnerJson(r) };
  if (r.busyJob !== undefined) {
    const anchor = `${DOCS}#delete-a-self-hosted-runner-from-${scope === REPO ? 'a-repository' : 'an-organization'}`;
    throw new HttpError(422, `Bad request - Runner "${r.name}" is still running a job"`, { documentation_url: anchor });
  }
  ctx.store.removeRegistration(r);
  return { status: 204 };
}
