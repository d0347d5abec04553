/**
 * `npm run bench`: where a launch's time goes, measured against the loopback sandbox.
 * `npm run bench -- --json FILE` also writes the figures as JSON; `--repeat N` sets the runs per
 * figure (default 3); `--quick` uses small counts and a short boot (for the test that checks the
 * bench runs). Each figure is a median with min and max. bench/README.md says what each means.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { renderStartupScript } from '../src/bootstrap/render.js';
import { type CloudSpec, descriptorOf, loadCloud } from '../src/clouds/index.js';
import { realClock } from '../src/retry.js';
import { parseSpec, type RunContext } from '../src/config.js';
import { GitHubForge } from '../src/forge/github.js';
import { endLedger, launch } from '../src/lifecycle/index.js';
import type { LedgerData } from '../src/ledger.js';
import type { Log } from '../src/log.js';
import { bootMachine } from '../sandbox/machine.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';

interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const repeat = Number(flag('--repeat') ?? (quick ? 1 : 3));
const jsonFile = flag('--json');
/** `--cold-start-only`: just the cold starts, for comparing two bundles. */
const coldOnly = args.includes('--cold-start-only');
/** `--dist <dir>`: the bundle whose cold start is measured (default dist/), such as an older build. */
const distDir = flag('--dist');
const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** Fixed sandbox settings, so figures compare across runs. */
const PARAMS = {
  latency_ms: 100,
  boot_ms: quick ? 1000 : 2000,
  count_latency_ms: 50,
  // About what a GPU instance takes from RunInstances to running its user data.
  count_boot_ms: quick ? 1000 : 60_000,
  counts: quick ? [1, 2, 3] : [1, 10, 50],
  api_calls_count: quick ? 2 : 10,
  repeat,
};

const progress = (line: string): void => console.error(`bench: ${line}`);

function figure(runs: number[]): Figure {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  const round = (n: number): number => Math.round(n * 100) / 100;
  return {
    median: round(median),
    min: round(sorted[0]!),
    max: round(sorted[sorted.length - 1]!),
    runs: runs.map(round),
  };
}

async function times(n: number, fn: () => Promise<number>): Promise<Figure> {
  const runs: number[] = [];
  for (let i = 0; i < n; i++) runs.push(await fn());
  return figure(runs);
}

// ---------------------------------------------------------------------------------------------
// bundle_bytes

/** Which SDK a chunk carries, from strings only that SDK's code holds. */
function chunkHolds(text: string): string {
  if (text.includes('BatchV1Api')) return 'kubernetes';
  if (text.includes('RunInstancesCommand')) return 'aws';
  if (text.includes('google.cloud.compute.v1.Instances')) return 'gcp';
  return 'shared';
}

function bundleBytes(): {
  entries: Record<string, number>;
  chunks: Record<string, { bytes: number; holds: string }>;
  loaded_for: Record<string, number>;
} {
  const dist = join(root, 'dist');
  const entries: Record<string, number> = {};
  const chunks: Record<string, { bytes: number; holds: string }> = {};
  for (const file of readdirSync(dist).filter((f) => f.endsWith('.js'))) {
    const bytes = statSync(join(dist, file)).size;
    if (file === 'index.js' || file === 'post.js') entries[file] = bytes;
    else chunks[file] = { bytes, holds: chunkHolds(readFileSync(join(dist, file), 'utf8')) };
  }
  // What one launch loads: the entry, shared chunks, and its own cloud's chunks.
  const loadedFor = (cloud: string): number =>
    entries['index.js']! +
    Object.values(chunks)
      .filter((c) => c.holds === cloud || c.holds === 'shared')
      .reduce((n, c) => n + c.bytes, 0);
  return {
    entries,
    chunks,
    loaded_for: { aws: loadedFor('aws'), gcp: loadedFor('gcp'), kubernetes: loadedFor('kubernetes') },
  };
}

// ---------------------------------------------------------------------------------------------
// cold_start_ms

/**
 * A bundle that loads every cloud's SDK at start, as one without lazy chunks would: the
 * comparison for cold_start_ms. Built with esbuild into bench/.cache (about a second).
 */
async function allSdksBundle(): Promise<string> {
  const dir = join(root, 'bench', '.cache', 'all-sdks');
  const out = join(dir, 'index.cjs');
  mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: [join(root, 'bench', 'all-sdks-entry.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    outfile: out,
    logLevel: 'error',
    // The startup template is read next to the bundle, as in dist/.
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(out).href) },
  });
  copyFileSync(join(root, 'src', 'bootstrap', 'startup.sh'), join(dir, 'startup.sh'));
  return out;
}

/**
 * Spawns an entry as the Actions runner would, with every endpoint pointing at a recorder that
 * answers 503, and returns the time from spawn to its first request, and to its first cloud
 * request. The process is killed once both arrived.
 */
async function coldStart(
  entry: string,
  cloud: 'aws' | 'gcp' | 'kubernetes',
): Promise<{ first: number; cloud: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'cml-bench-cold-'));
  let first: number | undefined;
  let firstCloud: number | undefined;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const server = http.createServer((req, res) => {
    const now = performance.now();
    first ??= now;
    if (!req.url?.startsWith('/api/v3')) firstCloud ??= now;
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '60' }).end('{"message":"bench"}');
    if (first !== undefined && firstCloud !== undefined) done();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const kubeconfig = `apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster: {server: '${url}', insecure-skip-tls-verify: true}\nusers:\n- name: bench\n  user: {token: bench-token}\ncontexts:\n- name: bench\n  context: {cluster: bench, user: bench, namespace: default}\ncurrent-context: bench\n`;
  for (const f of ['state', 'output', 'summary']) writeFileSync(join(dir, f), '');
  // Workload Identity Federation as google-github-actions/auth writes it: the first GCP request is the token exchange.
  writeFileSync(join(dir, 'oidc-token'), 'bench-subject-token');
  const gcpCredentials = {
    type: 'external_account',
    audience: '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/bench/providers/bench',
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: `${url}/sts/v1/token`,
    credential_source: { file: join(dir, 'oidc-token') },
  };
  writeFileSync(join(dir, 'gcp.json'), JSON.stringify(gcpCredentials));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    GITHUB_ACTIONS: 'true',
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_STEP_SUMMARY: join(dir, 'summary'),
    GITHUB_REPOSITORY: 'octo-org/ml',
    GITHUB_RUN_ID: '1',
    GITHUB_API_URL: `${url}/api/v3`,
    GITHUB_SERVER_URL: url,
    AWS_ENDPOINT_URL_EC2: url,
    AWS_ENDPOINT_URL_SSM: url,
    AWS_ACCESS_KEY_ID: 'AKIABENCH',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_REGION: 'us-east-1',
    INPUT_CLOUD: cloud,
    INPUT_TOKEN: 'ghp_bench',
    INPUT_GPU: 't4',
    ...(cloud === 'kubernetes' ? { INPUT_KUBECONFIG: kubeconfig } : {}),
    ...(cloud === 'gcp'
      ? {
          GOOGLE_APPLICATION_CREDENTIALS: join(dir, 'gcp.json'),
          GOOGLE_CLOUD_PROJECT: 'bench-project',
          CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE: `${url}/compute/v1/`,
        }
      : {}),
  };
  const started = performance.now();
  const child = spawn(process.execPath, [entry], { env, stdio: 'ignore' });
  const timeout = setTimeout(done, 15_000);
  await finished;
  clearTimeout(timeout);
  child.kill('SIGKILL');
  await new Promise<void>((r) => server.close(() => r()));
  server.closeAllConnections();
  rmSync(dir, { recursive: true, force: true });
  if (first === undefined || firstCloud === undefined)
    throw new Error(`${entry} (${cloud}) made no request within 15 s`);
  return { first: first - started, cloud: firstCloud - started };
}

async function coldStarts(): Promise<Record<string, Figure>> {
  const dist = distDir ? join(resolve(distDir), 'index.js') : join(root, 'dist', 'index.js');
  const allSdks = await allSdksBundle();
  const variants: Array<[string, string, 'aws' | 'gcp' | 'kubernetes']> = [
    ['aws', dist, 'aws'],
    ['gcp', dist, 'gcp'],
    ['kubernetes', dist, 'kubernetes'],
    ['aws_all_sdks_bundle', allSdks, 'aws'],
  ];
  const out: Record<string, Figure> = {};
  const n = Math.max(repeat, 5);
  for (const [name, entry, cloud] of variants) {
    const firsts: number[] = [];
    const clouds: number[] = [];
    await coldStart(entry, cloud); // warms the file cache, like any later run on a runner
    for (let i = 0; i < n; i++) {
      const r = await coldStart(entry, cloud);
      firsts.push(r.first);
      clouds.push(r.cloud);
    }
    out[name] = figure(firsts);
    out[`${name}_first_cloud_request`] = figure(clouds);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Launches in this process, with the real clients against the sandbox

class TimedLog implements Log {
  readonly onlineAt = new Map<string, number>();
  debug(): void {}
  info(m: string): void {
    const online = /^(\S+): online after/.exec(m);
    if (online) this.onlineAt.set(online[1]!, Date.now());
  }
  warning(m: string): void {
    progress(`warning: ${m}`);
  }
  secret(): void {}
  group<T>(_name: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }
}

/** A sandbox whose endpoints this process's SDK clients are handed, as the action's would be. */
async function sandbox(opts: Parameters<typeof startSandbox>[0]): Promise<Sandbox> {
  return startSandbox(opts);
}

function context(sb: Sandbox): RunContext {
  return {
    repository: 'octo-org/ml',
    runId: 'bench',
    serverUrl: sb.env.GITHUB_SERVER_URL,
    apiUrl: sb.env.GITHUB_API_URL,
    env: sb.env,
  };
}

interface Launched {
  wallMs: number;
  ledger: LedgerData;
  log: TimedLog;
  startedAt: number;
}

async function launchIn(sb: Sandbox, inputs: Record<string, string>): Promise<Launched> {
  const all: Record<string, string> = { cloud: 'aws', token: sb.tokens.admin, 'startup-timeout': '10m', ...inputs };
  const spec = parseSpec((n) => all[n] ?? '', context(sb));
  const log = new TimedLog();
  const forge = new GitHubForge(spec.forge, log);
  const cloud = await loadCloud(spec.cloud, spec.machine.region, { env: sb.env, log, clock: realClock });
  // Loading code is cold_start_ms's business; the launch is timed from its first call.
  const startedAt = Date.now();
  let ledger: LedgerData | undefined;
  const result = await launch(spec, context(sb), {
    cloud,
    forge,
    log,
    persist: (d) => (ledger = JSON.parse(JSON.stringify(d)) as LedgerData),
  }).catch(async (err: unknown) => {
    if (ledger) await end(sb, ledger);
    throw err;
  });
  return { wallMs: Date.now() - startedAt, ledger: result.ledger, log, startedAt };
}

/** Ends what a launch made and waits until the sandbox is empty. */
async function end(sb: Sandbox, ledger: LedgerData): Promise<void> {
  const inputs: Record<string, string> =
    ledger.cloud === 'kubernetes' ? { kubeconfig: sb.kubernetes.kubeconfig() } : {};
  const options = descriptorOf(ledger.cloud).options((n) => inputs[n] ?? '', sb.env);
  const cloud = await loadCloud({ name: ledger.cloud, options } as CloudSpec, ledger.region, {
    env: sb.env,
    log: new TimedLog(),
    clock: realClock,
  });
  const forge = new GitHubForge(
    { scope: ledger.forge.scope, apiUrl: ledger.forge.apiUrl, token: sb.tokens.admin },
    new TimedLog(),
  );
  // The bench ends the runners it launched, healthy ones too: nothing is kept.
  await endLedger({ ...ledger, keep: [] }, { cloud, forge, log: new TimedLog() });
  const deadline = Date.now() + 60_000;
  while ((await sb.leftovers()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

/** Milliseconds from the fake GitHub listing each runner online to the launch noticing it. */
function detectLags(l: Launched, onlineSince: Map<string, number>): number[] {
  return [...l.log.onlineAt]
    .map(([name, noticed]) => noticed - onlineSince.get(name)!)
    .filter((n) => Number.isFinite(n));
}

/** Records when each runner went online, as the fake GitHub lists it, while a launch runs. */
function watchOnline(sb: Sandbox): { since: Map<string, number>; stop(): void } {
  const since = new Map<string, number>();
  const look = (): void => {
    for (const r of sb.github.runners())
      if (r.onlineSince !== undefined && !since.has(r.name)) since.set(r.name, r.onlineSince);
  };
  const timer = setInterval(look, 5);
  return {
    since,
    stop: () => {
      clearInterval(timer);
      look();
    },
  };
}

async function criticalPath(): Promise<{ round_trips: Record<string, Figure>; detect_lag: number[] }> {
  const sb = await sandbox({ latencyMs: PARAMS.latency_ms, bootDelayMs: PARAMS.boot_ms });
  const total: number[] = [];
  const before: number[] = [];
  const after: number[] = [];
  const lags: number[] = [];
  try {
    // One unmeasured launch first: module loading and connection set-up are not round trips.
    await end(sb, (await launchIn(sb, { gpu: 't4', type: 's' })).ledger);
    for (let i = 0; i < repeat; i++) {
      const callsBefore = sb.ec2.calls.length;
      const watch = watchOnline(sb);
      const l = await launchIn(sb, { gpu: 't4', type: 's' });
      watch.stop();
      const run = sb.ec2.calls.slice(callsBefore).find((c) => c.action === 'RunInstances')!;
      const machineAt = run.at + run.ms;
      const name = [...l.log.onlineAt.keys()][0]!;
      const onlineAt = watch.since.get(name)!;
      const bootSpan = onlineAt - machineAt;
      total.push((l.wallMs - bootSpan) / PARAMS.latency_ms);
      before.push((machineAt - l.startedAt) / PARAMS.latency_ms);
      after.push((l.log.onlineAt.get(name)! - onlineAt) / PARAMS.latency_ms);
      lags.push(...detectLags(l, watch.since));
      await end(sb, l.ledger);
    }
  } finally {
    await sb.close();
  }
  return {
    round_trips: { total: figure(total), before_machine: figure(before), after_online: figure(after) },
    detect_lag: lags,
  };
}

async function apiCalls(): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  for (const cloud of ['aws', 'kubernetes'] as const) {
    const sb = await sandbox({ bootDelayMs: PARAMS.boot_ms, kubernetesSecondMs: 10 });
    try {
      const n = PARAMS.api_calls_count;
      const l = await launchIn(
        sb,
        cloud === 'aws'
          ? { count: String(n) }
          : { cloud, count: String(n), type: '500m/1Gi', kubeconfig: sb.kubernetes.kubeconfig() },
      );
      // The fake records the REST API calls only: the action's, not the runners' own protocol.
      const github = sb.github.calls.length;
      const counts: Record<string, number> =
        cloud === 'aws'
          ? { github, ec2: sb.ec2.calls.length, ssm: sb.ssm.calls.length }
          : { github, kubernetes: sb.kubernetes.calls.length };
      out[cloud] = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Math.round((v / n) * 100) / 100]));
      await end(sb, l.ledger);
    } finally {
      await sb.close();
    }
  }
  return out;
}

/**
 * Wall time to all-online by count, and the action's own part of it: up to the last machine
 * requested, plus from the last runner online to the launch noticing it. The rest is the
 * machines booting, which in the sandbox all share this one host.
 */
async function launchByCount(
  lags: number[],
): Promise<{ wall: Record<string, Figure>; overhead: Record<string, Figure> }> {
  const sb = await sandbox({
    latencyMs: PARAMS.count_latency_ms,
    bootDelayMs: PARAMS.count_boot_ms,
    heartbeatMs: 2000,
  });
  const wall: Record<string, Figure> = {};
  const overhead: Record<string, Figure> = {};
  try {
    for (const count of PARAMS.counts) {
      const walls: number[] = [];
      const own: number[] = [];
      for (let i = 0; i < repeat; i++) {
        const callsBefore = sb.ec2.calls.length;
        const watch = watchOnline(sb);
        const l = await launchIn(sb, { count: String(count), type: 's' });
        watch.stop();
        lags.push(...detectLags(l, watch.since));
        const lastMachine = Math.max(
          ...sb.ec2.calls
            .slice(callsBefore)
            .filter((c) => c.action === 'RunInstances')
            .map((c) => c.at + c.ms),
        );
        const lastOnline = Math.max(...[...l.log.onlineAt.keys()].map((n) => watch.since.get(n)!));
        walls.push(l.wallMs);
        own.push(lastMachine - l.startedAt + (l.startedAt + l.wallMs - lastOnline));
        await end(sb, l.ledger);
        progress(`count ${count}: ${l.wallMs} ms, of which the action's own ${Math.round(own[own.length - 1]!)} ms`);
      }
      wall[String(count)] = figure(walls);
      overhead[String(count)] = figure(own);
    }
  } finally {
    await sb.close();
  }
  return { wall, overhead };
}

// ---------------------------------------------------------------------------------------------
// script_overhead_ms

/**
 * From the startup script starting to the runner listening for jobs, with the runner download
 * served locally: what the script itself costs. `cached` uses a runner already in the image.
 */
async function scriptOverhead(): Promise<Record<string, Figure>> {
  const sb = await sandbox({});
  const forge = new GitHubForge(
    { scope: { kind: 'repo', owner: 'octo-org', repo: 'ml' }, apiUrl: sb.env.GITHUB_API_URL, token: sb.tokens.admin },
    new TimedLog(),
  );
  const downloads = await forge.downloads('latest');
  const cacheDir = mkdtempSync(join(tmpdir(), 'cml-bench-cache-'));
  const tarball = await sb.github.runnerPackage('x64');
  writeFileSync(join(cacheDir, 'runner.tar.gz'), tarball.body);
  await new Promise<void>((r, j) =>
    spawn('tar', ['-xzf', 'runner.tar.gz'], { cwd: cacheDir }).on('close', (c) =>
      c === 0 ? r() : j(new Error(`tar ${c}`)),
    ),
  );
  const once = async (cache: boolean, i: number): Promise<number> => {
    const name = `bench-script-${cache ? 'cached' : 'download'}-${i}`;
    const jit = await forge.jitConfig(name, ['bench'], 1);
    const script = renderStartupScript({
      runnerName: name,
      labels: ['bench'],
      url: `${sb.env.GITHUB_SERVER_URL}/octo-org/ml`,
      credential: { jitConfig: jit.jitConfig },
      idleTimeoutSeconds: 0,
      maxLifetimeSeconds: 3600,
      downloads,
      ...(cache ? { runnerCache: cacheDir } : {}),
    });
    const started = performance.now();
    const machine = bootMachine({ id: name, script, onShutdown: () => undefined });
    while (!machine.console().includes('Listening for Jobs') && performance.now() - started < 30_000)
      await new Promise((r) => setTimeout(r, 5));
    const ms = performance.now() - started;
    await machine.kill();
    await forge.deleteRunner(jit.runnerId).catch(() => undefined);
    return ms;
  };
  try {
    let i = 0;
    return {
      download: await times(Math.max(repeat, 3), () => once(false, i++)),
      cached: await times(Math.max(repeat, 3), () => once(true, i++)),
    };
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
    await sb.close();
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!existsSync(join(root, 'dist', 'index.js'))) throw new Error('dist/index.js is missing; run npm run build first');
  progress('bundle sizes');
  const bundle = bundleBytes();
  progress('cold starts');
  const cold = await coldStarts();
  if (coldOnly) {
    for (const [k, f] of Object.entries(cold))
      console.log(`cold_start_ms.${k}`.padEnd(56), f.median, `(min ${f.min}, max ${f.max})`);
    return;
  }
  progress('critical path');
  const critical = await criticalPath();
  progress('API calls per runner');
  const calls = await apiCalls();
  progress(`launches of ${PARAMS.counts.join(', ')} runners`);
  const lags = [...critical.detect_lag];
  const byCount = await launchByCount(lags);
  progress('startup script');
  const script = await scriptOverhead();

  const results = {
    generated_at: new Date().toISOString(),
    node: process.version,
    params: PARAMS,
    source: createHash('sha256')
      .update(readFileSync(join(root, 'dist', 'index.js')))
      .digest('hex')
      .slice(0, 12),
    cold_start_ms: cold,
    bundle_bytes: bundle,
    critical_path_round_trips: critical.round_trips,
    api_calls_per_runner: calls,
    launch_ms_by_count: byCount.wall,
    launch_overhead_ms_by_count: byCount.overhead,
    poll_detect_lag_ms: figure(lags),
    script_overhead_ms: script,
  };
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);

  const row = (name: string, f: Figure, unit = 'ms'): string =>
    `${name.padEnd(44)} ${String(f.median).padStart(9)} ${unit}  (min ${f.min}, max ${f.max})`;
  const lines = [
    ...Object.entries(cold).map(([k, f]) => row(`cold_start_ms.${k}`, f)),
    ...Object.entries(bundle.entries).map(
      ([k, v]) => `${`bundle_bytes.entries.${k}`.padEnd(44)} ${String(v).padStart(9)} B`,
    ),
    ...Object.entries(bundle.chunks).map(
      ([k, v]) => `${`bundle_bytes.chunks.${k} (${v.holds})`.padEnd(44)} ${String(v.bytes).padStart(9)} B`,
    ),
    ...Object.entries(critical.round_trips).map(([k, f]) => row(`critical_path_round_trips.${k}`, f, 'RT')),
    ...Object.entries(calls).flatMap(([cloud, c]) =>
      Object.entries(c).map(
        ([svc, v]) => `${`api_calls_per_runner.${cloud}.${svc}`.padEnd(44)} ${String(v).padStart(9)}`,
      ),
    ),
    ...Object.entries(byCount.wall).map(([k, f]) => row(`launch_ms_by_count.${k}`, f)),
    ...Object.entries(byCount.overhead).map(([k, f]) => row(`launch_overhead_ms_by_count.${k}`, f)),
    row('poll_detect_lag_ms', results.poll_detect_lag_ms),
    ...Object.entries(script).map(([k, f]) => row(`script_overhead_ms.${k}`, f)),
  ];
  console.log(lines.join('\n'));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  },
);
