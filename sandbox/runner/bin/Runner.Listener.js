'use strict';
/*
 * Stand-in for the actions/runner listener, for the cml-runner-action sandbox only.
 *
 * It keeps the real runner's outside contract (commands, flags, ACTIONS_RUNNER_INPUT_* variables,
 * console lines, job hooks, exit codes) and talks to the sandbox's fake GitHub over a small private
 * protocol under `<server>/_runner/`. It runs on the node bundled in the tarball
 * (externals/node24/bin/node) and uses nothing but node's standard library and bash.
 *
 * Exit codes follow Runner.Listener: 0 success, 1 terminated error, 2 retryable error,
 * 5 session conflict, 7 deprecated version.
 */
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const META = JSON.parse(fs.readFileSync(path.join(__dirname, 'stand-in.json'), 'utf8'));
const VERSION = META.version;
const ARCH = META.arch === 'arm64' ? 'ARM64' : META.arch === 'arm' ? 'ARM' : 'X64';

const EXIT = { success: 0, terminated: 1, retryable: 2, sessionConflict: 5, deprecated: 7 };

// ---------------------------------------------------------------- arguments and ACTIONS_RUNNER_INPUT_*

const VALUE_ARGS = ['url', 'token', 'name', 'labels', 'runnergroup', 'work', 'jitconfig', 'pat', 'auth'];
const FLAG_ARGS = ['unattended', 'ephemeral', 'disableupdate', 'replace', 'no-default-labels', 'once', 'check'];

function envName(name) {
  return `ACTIONS_RUNNER_INPUT_${name.toUpperCase().replace(/-/g, '_')}`;
}

/** Reads every ACTIONS_RUNNER_INPUT_* variable, then removes them so jobs never see a secret. */
function takeEnvInputs() {
  const inputs = {};
  for (const key of Object.keys(process.env)) {
    if (key.startsWith('ACTIONS_RUNNER_INPUT_')) {
      inputs[key] = process.env[key];
      delete process.env[key];
    }
  }
  return inputs;
}

function parseArgs(argv, envInputs) {
  const values = {};
  const flags = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      fail(
        `Unrecognized command-line input arguments: '${a}'. For usage refer to: .\\config.cmd --help or ./config.sh --help`,
      );
    }
    const name = a.slice(2).toLowerCase();
    if (FLAG_ARGS.includes(name)) {
      flags[name] = true;
    } else if (VALUE_ARGS.includes(name)) {
      if (i + 1 >= argv.length)
        fail(`Invalid configuration provided for ${name}. Terminating unattended configuration.`);
      values[name] = argv[++i];
    } else {
      fail(
        `Unrecognized command-line input arguments: '${name}'. For usage refer to: .\\config.cmd --help or ./config.sh --help`,
      );
    }
  }
  for (const name of VALUE_ARGS) {
    const v = envInputs[envName(name)];
    if (values[name] === undefined && v !== undefined && v !== '') values[name] = v;
  }
  for (const name of FLAG_ARGS) {
    const v = envInputs[envName(name)];
    if (!flags[name] && v !== undefined && /^(true|1|\$true)$/i.test(v.trim())) flags[name] = true;
  }
  return { values, flags };
}

// ---------------------------------------------------------------- output

function ts() {
  return new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}
function out(line) {
  process.stdout.write(`${line}\n`);
}
function fail(message, code = EXIT.terminated) {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

// ---------------------------------------------------------------- HTTP

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function call(server, method, route, { body, credential, signal } = {}) {
  const headers = {
    'content-type': 'application/json',
    'user-agent': `GitHubActionsRunner-linux-${ARCH.toLowerCase()}/${VERSION}`,
  };
  if (credential) headers.authorization = `Bearer ${credential}`;
  const res = await fetch(server + route, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

const REASONS = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  422: 'Unprocessable Entity',
};
function httpFailure(method, url, res) {
  const phrase = REASONS[res.status] || 'Error';
  fail(
    `Http response code: ${phrase.replace(/ /g, '')} from '${method} ${url}'\n${res.text}\n` +
      `Response status code does not indicate success: ${res.status} (${phrase}).`,
  );
}

/** The scope (`org` or `owner/repo`) and the server behind a `--url`. */
function parseUrl(raw) {
  let u;
  try {
    u = new URL(raw);
  } catch {
    fail(`Invalid configuration provided for url. Terminating unattended configuration.`);
  }
  const parts = u.pathname.split('/').filter(Boolean);
  if (parts.length < 1 || parts.length > 2)
    fail(`'${raw}' is not a valid GitHub repository, organization or enterprise URL.`);
  return { server: u.origin, scope: parts.join('/') };
}

// ---------------------------------------------------------------- configure / remove

const RUNNER_FILE = path.join(ROOT, '.runner');
const CREDENTIALS_FILE = path.join(ROOT, '.credentials');

function writeJson(file, data, mode) {
  fs.writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`, { mode });
}

function banner() {
  out('');
  out('--------------------------------------------------------------------------------');
  out('|        GitHub Actions runner (sandbox stand-in for cml-runner-action)        |');
  out('--------------------------------------------------------------------------------');
  out('');
}

async function configure({ values, flags }) {
  if (fs.existsSync(RUNNER_FILE)) {
    fail(
      "Cannot configure the runner because it is already configured. To reconfigure the runner, run 'config.cmd remove' or './config.sh remove' first.",
    );
  }
  banner();
  if (!values.url) fail('Invalid configuration provided for url. Terminating unattended configuration.');
  if (!values.token) fail('Invalid configuration provided for token. Terminating unattended configuration.');
  const { server, scope } = parseUrl(values.url);
  const name = values.name || os.hostname();
  const labels = (values.labels || '')
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean);
  const work = values.work || '_work';

  out('# Authentication');
  out('');
  const url = `${server}/_runner/register`;
  let res;
  try {
    res = await call(server, 'POST', '/_runner/register', {
      body: {
        token: values.token,
        scope,
        name,
        labels,
        noDefaultLabels: !!flags['no-default-labels'],
        runnerGroup: values.runnergroup,
        ephemeral: !!flags.ephemeral,
        replace: !!flags.replace,
        disableUpdate: !!flags.disableupdate,
        arch: META.arch,
        version: VERSION,
      },
    });
  } catch (err) {
    fail(`An error occurred: ${err.cause?.message || err.message}`);
  }
  if (res.status === 404 || res.status === 401 || res.status === 403) httpFailure('POST', url, res);
  out('');
  out('√ Connected to GitHub');
  out('');
  out('# Runner Registration');
  out('');
  if (res.status === 409) {
    out('A runner exists with the same name');
    fail(res.json?.message || `A runner exists with the same name ${name}.`);
  }
  if (res.status !== 201) fail(res.json?.message || `Registration failed with HTTP ${res.status}: ${res.text}`);
  if (res.json.replaced) {
    out('A runner exists with the same name');
    out('√ Successfully replaced the runner');
  } else {
    out('√ Runner successfully added');
  }
  out('√ Runner connection is good');
  out('');
  out('# Runner settings');
  out('');
  writeJson(
    RUNNER_FILE,
    {
      agentId: res.json.runnerId,
      agentName: name,
      poolId: res.json.runnerGroupId,
      poolName: res.json.runnerGroupName,
      serverUrl: server,
      gitHubUrl: values.url,
      workFolder: work,
      ephemeral: !!flags.ephemeral,
      disableUpdate: !!flags.disableupdate,
    },
    0o644,
  );
  writeJson(
    CREDENTIALS_FILE,
    { scheme: 'OAuth', data: { clientId: res.json.clientId, credential: res.json.credential } },
    0o600,
  );
  out('');
  out('√ Settings Saved.');
  out('');
  process.exit(EXIT.success);
}

async function remove({ values }) {
  if (!fs.existsSync(RUNNER_FILE)) fail('Not configured. Run config.(sh/cmd) to configure the runner.');
  const settings = JSON.parse(fs.readFileSync(RUNNER_FILE, 'utf8'));
  out('');
  out('# Runner removal');
  out('');
  if (!values.token) fail('Invalid configuration provided for token. Terminating unattended configuration.');
  const url = `${settings.serverUrl}/_runner/remove`;
  let res;
  try {
    res = await call(settings.serverUrl, 'POST', '/_runner/remove', {
      body: { token: values.token, runnerId: settings.agentId },
    });
  } catch (err) {
    fail(`An error occurred: ${err.cause?.message || err.message}`);
  }
  if (res.status !== 204) httpFailure('POST', url, res);
  out('√ Runner removed successfully');
  fs.rmSync(CREDENTIALS_FILE, { force: true });
  out('√ Removed .credentials');
  fs.rmSync(RUNNER_FILE, { force: true });
  out('√ Removed .runner');
  out('');
  process.exit(EXIT.success);
}

// ---------------------------------------------------------------- run

function loadSettings(values) {
  if (values.jitconfig) {
    try {
      const files = JSON.parse(Buffer.from(values.jitconfig, 'base64').toString('utf8'));
      const settings = JSON.parse(Buffer.from(files['.runner'], 'base64').toString('utf8'));
      const credentials = JSON.parse(Buffer.from(files['.credentials'], 'base64').toString('utf8'));
      return { settings, credential: credentials.data.credential, jit: true };
    } catch {
      fail('Failed to decode the JIT runner configuration: it is not valid base64 encoded JSON.');
    }
  }
  if (!fs.existsSync(RUNNER_FILE) || !fs.existsSync(CREDENTIALS_FILE)) {
    fail('Not configured. Run config.(sh/cmd) to configure the runner.');
  }
  const settings = JSON.parse(fs.readFileSync(RUNNER_FILE, 'utf8'));
  const credentials = JSON.parse(fs.readFileSync(CREDENTIALS_FILE, 'utf8'));
  return { settings, credential: credentials.data.credential, jit: false };
}

async function run({ values }) {
  const { settings, credential, jit } = loadSettings(values);
  const server = settings.serverUrl;
  const hooks = {
    started: process.env.ACTIONS_RUNNER_HOOK_JOB_STARTED,
    completed: process.env.ACTIONS_RUNNER_HOOK_JOB_COMPLETED,
  };

  let session;
  let stopping = false;
  let current; // { child, cancelled, shutdown }
  const aborter = new AbortController();

  let closing;
  const closeSession = () => {
    if (!closing) {
      const s = session;
      session = undefined;
      closing = s
        ? call(server, 'DELETE', `/_runner/sessions/${s.id}`, { credential }).then(
            () => undefined,
            () => undefined, // the server may be gone already; the session then simply goes stale
          )
        : Promise.resolve();
    }
    return closing;
  };

  const onSignal = (sig) => {
    if (stopping) return;
    stopping = true;
    out(`${ts()}: Received ${sig}, exiting...`);
    aborter.abort();
    if (current) {
      current.cancelled = true;
      current.shutdown = true;
      killTree(current.child);
      return; // the job loop reports the cancellation, closes the session and exits
    }
    closeSession().finally(() => {
      out('Exiting...');
      process.exit(EXIT.success);
    });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  // Create the session, retrying through network failures for a while as the real runner does.
  let firstError = 0;
  for (;;) {
    let res;
    try {
      res = await call(server, 'POST', '/_runner/sessions', {
        credential,
        body: { runnerId: settings.agentId, version: VERSION, arch: META.arch, os: 'Linux', jit },
      });
    } catch (err) {
      if (!firstError) firstError = Date.now();
      if (Date.now() - firstError > 30000)
        fail(`${ts()}: Runner connect error: ${err.cause?.message || err.message}. Giving up.`);
      await sleep(1000);
      continue;
    }
    if (res.status === 201) {
      session = { id: res.json.sessionId, heartbeatMs: res.json.heartbeatMs };
      break;
    }
    out('');
    out('√ Connected to GitHub');
    out('');
    const msg = res.json?.message || res.text;
    if (res.status === 404)
      fail(
        'Failed to create a session. The runner registration has been deleted from the server, please re-configure.',
      );
    if (res.status === 409) {
      out('A session for this runner already exists.');
      if (!firstError) firstError = Date.now();
      if (Date.now() - firstError > 30000) fail(`${ts()}: Runner connect error: ${msg}`, EXIT.sessionConflict);
      await sleep(1000);
      continue;
    }
    if (res.status === 403 && res.json?.deprecated) fail(`An error occurred: ${msg}`, EXIT.deprecated);
    fail(`Failed to create a session. ${msg}`);
  }

  out('');
  out('√ Connected to GitHub');
  out('');
  out(`Current runner version: '${VERSION}'`);
  out(`${ts()}: Listening for Jobs`);

  let failingSince = 0;
  while (!stopping) {
    let res;
    try {
      res = await call(server, 'GET', `/_runner/sessions/${session.id}/message`, {
        credential,
        signal: aborter.signal,
      });
    } catch (err) {
      if (stopping) break;
      if (!failingSince) {
        failingSince = Date.now();
        out(`${ts()}: Runner connect error: ${err.cause?.message || err.message}. Retrying until reconnected.`);
      }
      if (Date.now() - failingSince > 30000) {
        fail(`${ts()}: Could not reach GitHub for 30 seconds. Exiting.`);
      }
      await sleep(500);
      continue;
    }
    if (failingSince) {
      failingSince = 0;
      out(`${ts()}: Runner reconnected.`);
    }
    if (res.status === 204) continue;
    if (res.status === 404) {
      session = undefined;
      fail(
        `${ts()}: Runner registration has been deleted from the server, please re-configure. ` +
          'Runner registrations are automatically deleted for runners that have not connected to the service recently.',
      );
    }
    if (res.status !== 200) {
      await sleep(500);
      continue;
    }
    const job = res.json.job;
    out(`${ts()}: Running job: ${job.name}`);
    const result = await runJob(
      job,
      settings,
      hooks,
      (child) => (current = { child, cancelled: current?.cancelled === true || stopping, shutdown: stopping }),
      () => current,
    );
    current = undefined;
    try {
      await call(server, 'POST', `/_runner/sessions/${session.id}/jobs/${job.id}/complete`, {
        credential,
        body: { conclusion: result.conclusion, log: result.log },
      });
    } catch {
      // Nothing to do: the server will fail the job when the runner stops renewing it.
    }
    const word = { success: 'Succeeded', failure: 'Failed', cancelled: 'Canceled' }[result.conclusion];
    out(`${ts()}: Job ${job.name} completed with result: ${word}`);
    if (stopping) break;
    if (settings.ephemeral) {
      // The server removed the registration when the job completed.
      session = undefined;
      process.exit(EXIT.success);
    }
  }
  await closeSession();
  out('Exiting...');
  process.exit(EXIT.success);

  // Renews the job lock while the job runs, so the server keeps the runner online and busy.
  async function runJob(job, settings, hooks, setChild, getCurrent) {
    const renew = setInterval(
      () => {
        if (session) call(server, 'POST', `/_runner/sessions/${session.id}/renew`, { credential }).catch(() => {});
      },
      Math.max(50, Math.floor((session.heartbeatMs || 500) / 2)),
    );
    try {
      return await executeJob(job, settings, hooks, setChild, getCurrent);
    } finally {
      clearInterval(renew);
    }
  }
}

// ---------------------------------------------------------------- jobs

function killTree(child) {
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    try {
      child.kill('SIGTERM');
    } catch {
      // already gone
    }
  }
}

function runBash(file, cwd, env, log, setChild) {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-e', file], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    setChild(child);
    child.stdout.on('data', (d) => log.push(d.toString()));
    child.stderr.on('data', (d) => log.push(d.toString()));
    child.on('error', (err) => {
      log.push(`##[error]${err.message}\n`);
      resolve(127);
    });
    child.on('close', (code, signal) => resolve(code === null ? 128 + (signal === 'SIGKILL' ? 9 : 15) : code));
  });
}

async function executeJob(job, settings, hooks, setChild, getCurrent) {
  const started = Date.now();
  const log = [];
  const repoName = job.repository ? job.repository.split('/')[1] : job.owner;
  const workRoot = path.resolve(ROOT, settings.workFolder || '_work');
  const workspace = path.join(workRoot, repoName, repoName);
  const temp = path.join(workRoot, '_temp');
  // As actions/runner does, the workspace gets the runner's umask and every step the runner's own
  // environment: started without HOME, a step that needs it fails (git: "fatal: $HOME not set").
  fs.mkdirSync(workspace, { recursive: true });
  fs.mkdirSync(temp, { recursive: true });
  const env = {
    ...process.env,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_JOB: job.name,
    GITHUB_RUN_ID: String(job.runId),
    GITHUB_RUN_NUMBER: '1',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_REPOSITORY: job.repository || '',
    GITHUB_REPOSITORY_OWNER: job.owner,
    GITHUB_WORKSPACE: workspace,
    GITHUB_SERVER_URL: settings.serverUrl,
    RUNNER_NAME: settings.agentName,
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: ARCH,
    RUNNER_TEMP: temp,
    RUNNER_WORKSPACE: path.dirname(workspace),
  };
  const cancelled = () => getCurrent()?.cancelled === true;
  const shutdown = () => getCurrent()?.shutdown === true;
  let ok = true;

  // A failing job-started hook fails the job and its steps do not run; a failing job-completed
  // hook fails the job too (docs: "Running scripts before or after a job", exit codes).
  const hook = async (kind, file) => {
    log.push(`A job ${kind} hook has been configured by the self-hosted runner administrator\n`);
    log.push(`##[group]Run '${file}'\n`);
    if (!file.endsWith('.sh')) {
      log.push(`##[endgroup]\n##[error]Unsupported script extension for '${file}': bash hooks must end in .sh\n`);
      return false;
    }
    const code = await runBash(file, workspace, env, log, setChild);
    log.push('##[endgroup]\n');
    if (code !== 0) log.push(`##[error]Process completed with exit code ${code}.\n`);
    return code === 0;
  };

  if (hooks.started) ok = await hook('started', hooks.started);
  if (ok && !cancelled()) {
    const scriptFile = path.join(temp, `job-${job.id}.sh`);
    fs.writeFileSync(scriptFile, job.script ?? 'echo "Hello from $RUNNER_NAME"\n');
    log.push(`##[group]Run ${job.name}\n##[endgroup]\n`);
    const code = await runBash(scriptFile, workspace, env, log, setChild);
    if (code !== 0 && !cancelled()) log.push(`##[error]Process completed with exit code ${code}.\n`);
    ok = code === 0;
    while (ok && !cancelled() && Date.now() - started < (job.durationMs || 0)) {
      await sleep(Math.min(100, job.durationMs - (Date.now() - started)));
    }
  }
  if (cancelled()) {
    // A shutdown signal (SIGTERM, SIGINT) fails the job with this error before the cancellation
    // (actions/runner: Runner.Worker/JobRunner.cs; a failure, not a cancellation, since #1792).
    if (shutdown()) {
      log.push(
        '##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped, or a manually started runner is canceled.\n',
      );
    }
    log.push('##[error]The operation was canceled.\n');
  }
  if (hooks.completed) {
    const hookOk = await hook('completed', hooks.completed);
    ok = ok && hookOk;
  }
  const conclusion = cancelled() && !shutdown() ? 'cancelled' : ok && !cancelled() ? 'success' : 'failure';
  return { conclusion, log: log.join('') };
}

// ---------------------------------------------------------------- main

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  // Like the real listener: `--version` prints the version and exits.
  if (command === '--version') {
    out(VERSION);
    return;
  }
  const envInputs = takeEnvInputs();
  const args = parseArgs(rest, envInputs);
  if (command === 'configure') return configure(args);
  if (command === 'remove') return remove(args);
  if (command === 'run') return run(args);
  fail(`Unknown command '${command}'. Use config.sh or run.sh.`);
}

main().catch((err) => fail(`An error occurred: ${err?.stack ? err.stack : String(err)}`));
