/**
 * `npm run demo`: the whole life of a runner against the loopback sandbox, with no cloud
 * account and no credentials. It runs the bundled dist/ entry exactly as the Actions runner
 * would (main, then post), queues a job for the runner, and watches the machine end itself.
 * It exits non-zero if anything is left behind.
 */
import { existsSync } from 'node:fs';
import { ActionRun } from '../sandbox/actions.js';
import { startSandbox, type Sandbox } from '../sandbox/index.js';

const CLOUDS = ['aws'];

function parseArgs(argv: string[]): { cloud: string } {
  let cloud = 'aws';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--cloud') cloud = argv[++i] ?? '';
    else if (argv[i]?.startsWith('--cloud=')) cloud = argv[i]!.slice('--cloud='.length);
  }
  if (!CLOUDS.includes(cloud)) {
    console.error(`demo: --cloud must be one of ${CLOUDS.join(', ')}; got ${JSON.stringify(cloud)}`);
    process.exit(2);
  }
  return { cloud };
}

const t0 = Date.now();
const say = (line: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${line}`);

/** Prints each change in the sandbox's inventory: registrations, machines, jobs. */
function watch(sb: Sandbox): () => void {
  const seen = new Map<string, string>();
  const note = (key: string, value: string, line: string): void => {
    if (seen.get(key) !== value) {
      seen.set(key, value);
      say(line);
    }
  };
  const timer = setInterval(() => {
    const runners = sb.github.runners();
    const listed = new Set(runners.map((r) => r.name));
    for (const key of seen.keys()) {
      const name = key.startsWith('runner:') ? key.slice('runner:'.length) : undefined;
      if (name && !listed.has(name) && seen.get(key) !== 'gone') note(key, 'gone', `github: runner ${name} is no longer registered`);
    }
    for (const r of runners) {
      note(`runner:${r.name}`, `${r.status}/${r.busy}`, `github: runner ${r.name} is ${r.status}${r.busy ? ', busy with a job' : ''} (labels ${r.labels.join(', ')})`);
    }
    for (const i of sb.ec2.instances()) {
      note(`instance:${i.id}`, i.state, `ec2: instance ${i.id} (${i.type}${i.spot ? ', spot' : ''}) is ${i.state}`);
    }
  }, 100);
  return () => clearInterval(timer);
}

async function main(): Promise<void> {
  const { cloud } = parseArgs(process.argv.slice(2));
  if (!existsSync('dist/index.js')) {
    console.error('demo: dist/index.js is missing; run npm run build first');
    process.exit(2);
  }
  const sb = await startSandbox();
  const stopWatching = watch(sb);
  let leftovers: string[] = [];
  try {
    say(`sandbox up: fake GitHub at ${sb.env.GITHUB_API_URL}, fake EC2 at ${sb.env.AWS_ENDPOINT_URL_EC2}`);
    const run = new ActionRun({
      command: [process.execPath, 'dist/index.js'],
      env: sb.env,
      inputs: { cloud, region: 'us-east', gpu: 't4', type: 's', labels: 'cml-gpu', token: sb.tokens.admin, 'startup-timeout': '120' },
      onLog: (chunk) => {
        for (const line of chunk.split('\n')) {
          if (line.trim() && !line.startsWith('::')) say(`  action | ${line}`);
          else if (line.startsWith('::error')) say(`  action | ERROR ${line}`);
        }
      },
    });
    say(`main: launching a ${cloud} t4 runner with label cml-gpu (the bundled dist/index.js, as the Actions runner runs it)`);
    const main = await run.main().done;
    say(`main exited ${main.code}; outputs: ${JSON.stringify(main.outputs)}`);
    const post = await run.post();
    say(`post exited ${post.code}`);
    run.dispose();
    if (main.code !== 0) throw new Error('the launch failed');

    say('a workflow job with runs-on: [self-hosted, cml-gpu] is queued');
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      name: 'train',
      labels: ['self-hosted', 'cml-gpu'],
      script: 'nvidia-smi -L || true; echo "training on $(hostname)"; sleep 1; echo "model saved"',
    });
    const done = await sb.github.waitJob(job.id, 60_000);
    say(`job ${done.id} ${done.status}: ${done.conclusion} on ${done.runnerName}`);
    for (const line of done.log.trim().split('\n')) say(`  job | ${line}`);

    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      leftovers = await sb.leftovers();
      if (leftovers.length === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    stopWatching();
    leftovers = await sb.leftovers();
    await sb.close();
  }
  if (leftovers.length > 0) {
    say(`LEFT BEHIND:\n  ${leftovers.join('\n  ')}`);
    process.exit(1);
  }
  say('nothing left: no machine, no disk, no runner registration');
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
