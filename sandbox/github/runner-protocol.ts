/**
 * The private protocol the stand-in runner (sandbox/runner/) speaks under `/_runner/`: register
 * and remove with a registration or remove token (config.sh), then sessions, long polls for
 * jobs, renewals and completions with the runner's own credential (run.sh). It stands for the
 * real runner's protocol, which is not GitHub's REST API: it takes no faults.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { GitHubContext } from './controllers.js';
import { GROUPS, ORG, type Registration, type Session } from './store.js';
import { ACCEPTED_VERSIONS } from './tarball.js';

interface Reply {
  status: number;
  body?: unknown;
}

const GONE: Reply = {
  status: 404,
  body: { message: 'The runner registration has been deleted from the server, please re-configure.' },
};

function send(res: http.ServerResponse, reply: Reply): void {
  const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    ...(reply.body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

export async function handleRunner(
  ctx: GitHubContext,
  req: http.IncomingMessage,
  raw: Buffer,
  res: http.ServerResponse,
  url: URL,
): Promise<void> {
  let body: Record<string, unknown>;
  try {
    body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
  } catch {
    return send(res, { status: 400, body: { message: 'Problems parsing JSON' } });
  }
  send(
    res,
    await runnerAction(
      ctx,
      req.method ?? 'GET',
      url.pathname.split('/').filter(Boolean).slice(1),
      body,
      req.headers.authorization,
      res,
    ),
  );
}

async function runnerAction(
  ctx: GitHubContext,
  method: string,
  parts: string[],
  body: Record<string, unknown>,
  authorization: string | undefined,
  res: http.ServerResponse,
): Promise<Reply> {
  if (method === 'POST' && parts[0] === 'register') return register(ctx, body);
  if (method === 'POST' && parts[0] === 'remove') return remove(ctx, body);

  // Everything else is authenticated with the runner's own credential.
  const auth = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  const r = auth ? ctx.store.byCredential(auth[1]) : undefined;
  if (!r) return GONE;
  if (method === 'POST' && parts[0] === 'sessions' && parts.length === 1) return openSession(ctx, r, body);

  const s = r.session;
  if (parts[0] !== 'sessions' || !s || s.closed || s.id !== parts[1]) {
    return { status: 404, body: { message: 'The runner session has expired or does not exist.' } };
  }
  s.lastSeen = Date.now();
  if (method === 'DELETE' && parts.length === 2) {
    s.closed = true;
    r.session = undefined;
    return { status: 204 };
  }
  if (method === 'POST' && parts[2] === 'renew') {
    const job = r.busyJob !== undefined ? ctx.store.jobs.get(r.busyJob) : undefined;
    if (job) job.lastRenew = Date.now();
    return { status: 204 };
  }
  if (method === 'POST' && parts[2] === 'jobs' && parts[4] === 'complete') {
    const job = ctx.store.jobs.get(Number(parts[3]));
    if (!job || job.runnerId !== r.id || job.status !== 'in_progress')
      return { status: 404, body: { message: 'No such job for this runner.' } };
    const conclusion = (['success', 'failure', 'cancelled'] as const).find((c) => c === body.conclusion) ?? 'failure';
    ctx.store.finishJob(job, conclusion, typeof body.log === 'string' ? body.log : '');
    return { status: 204 };
  }
  if (method === 'GET' && parts[2] === 'message') return longPoll(ctx, r, s, res);
  return { status: 404, body: { message: 'Not Found' } };
}

function openSession(ctx: GitHubContext, r: Registration, body: Record<string, unknown>): Reply {
  const version = String(body.version ?? '');
  if (!ACCEPTED_VERSIONS.has(version)) {
    return {
      status: 403,
      body: { message: `Runner version v${version} is deprecated and cannot receive messages.`, deprecated: true },
    };
  }
  if (r.jit && r.jitUsed) {
    return {
      status: 403,
      body: { message: 'This just-in-time runner configuration has already been used; generate a new one.' },
    };
  }
  if (r.session && !r.session.closed && ctx.store.isOnline(r)) {
    return {
      status: 409,
      body: {
        message: `A session for this runner already exists. The actions runner ${r.name} already has an active session.`,
      },
    };
  }
  if (r.jit) r.jitUsed = true;
  r.arch ??= typeof body.arch === 'string' ? body.arch : 'x64';
  r.version = version;
  r.session = { id: randomUUID(), started: Date.now(), lastSeen: Date.now(), pendingPolls: 0, closed: false };
  return { status: 201, body: { sessionId: r.session.id, heartbeatMs: ctx.store.heartbeatMs } };
}

/** Answers at once with a job, or holds the poll for up to one heartbeat. */
async function longPoll(ctx: GitHubContext, r: Registration, s: Session, res: http.ServerResponse): Promise<Reply> {
  const { store } = ctx;
  s.pendingPolls++;
  try {
    const deadline = Date.now() + store.heartbeatMs;
    for (;;) {
      if (store.closed || s.closed || !store.registrations.has(r.id)) return GONE;
      const job = store.claimJob(r);
      if (job) {
        return {
          status: 200,
          body: {
            job: {
              id: job.id,
              name: job.name,
              runId: job.runId,
              owner: job.owner,
              repository: job.repo !== undefined ? `${job.owner}/${job.repo}` : undefined,
              labels: job.labels,
              script: job.script,
              durationMs: job.durationMs,
            },
          },
        };
      }
      const left = deadline - Date.now();
      if (left <= 0 || res.destroyed) return { status: 204 };
      await store.waitForWork(left);
    }
  } finally {
    s.pendingPolls--;
    s.lastSeen = Date.now();
  }
}

/** config.sh: a registration token may register several runners until it expires (one hour). */
function register(ctx: GitHubContext, body: Record<string, unknown>): Reply {
  const it = ctx.store.takeIssued(body.token, 'registration');
  const scope = typeof body.scope === 'string' ? body.scope : '';
  if (!it || it.scope.toLowerCase() !== scope.toLowerCase()) {
    return { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } };
  }
  const name = String(body.name ?? '');
  let group = GROUPS[0];
  if (typeof body.runnerGroup === 'string' && body.runnerGroup !== '' && it.scope === ORG) {
    const g = GROUPS.find((x) => x.name.toLowerCase() === String(body.runnerGroup).toLowerCase());
    if (!g)
      return {
        status: 422,
        body: { message: `Could not find any self-hosted runner group named "${body.runnerGroup}".` },
      };
    group = g;
  }
  const existing = ctx.store.byName(it.scope, name);
  if (existing && !body.replace)
    return { status: 409, body: { message: `A runner exists with the same name ${name}.` } };
  if (existing) ctx.store.removeRegistration(existing);
  const r = ctx.store.createRegistration({
    scope: it.scope,
    name,
    groupId: group.id,
    labels: Array.isArray(body.labels) ? body.labels.map(String) : [],
    ephemeral: body.ephemeral === true,
    jit: false,
    noDefaultLabels: body.noDefaultLabels === true,
    arch: typeof body.arch === 'string' ? body.arch : 'x64',
  });
  return {
    status: 201,
    body: {
      runnerId: r.id,
      runnerGroupId: group.id,
      runnerGroupName: group.name,
      credential: r.credential,
      clientId: r.clientId,
      replaced: !!existing,
    },
  };
}

/** config.sh remove: a remove token removes an idle runner of its scope. */
function remove(ctx: GitHubContext, body: Record<string, unknown>): Reply {
  const it = ctx.store.takeIssued(body.token, 'remove');
  if (!it) return { status: 404, body: { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' } };
  const r = ctx.store.registrations.get(Number(body.runnerId));
  if (r && r.scope === it.scope) {
    if (r.busyJob !== undefined)
      return { status: 422, body: { message: `Bad request - Runner "${r.name}" is still running a job"` } };
    ctx.store.removeRegistration(r);
  }
  return { status: 204 };
}
