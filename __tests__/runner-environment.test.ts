import { beforeAll, describe, expect, test } from '@jest/globals';
import { sharedArchitecture } from '../src/clouds/descriptor.js';
import { descriptorOf } from '../src/clouds/index.js';
import { bootMachine } from '../sandbox/machine.js';
import type { Sandbox } from '../sandbox/index.js';
import { attemptLaunch, cleanupKept, cleanupRunOf, settle } from './helpers.js';
import { useSandbox } from './support/sandbox.js';
import { until } from './support/wait.js';

/**
 * The environment a runner and its jobs get on a VM, which boots its startup script the way a
 * real one does (a boot service: only PATH, umask 022), and the labels a just-in-time runner is
 * minted with, since GitHub adds none of its defaults to one. After each test the sandbox must
 * hold nothing, and every fault the test added must have fired.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

/** What a job prints about its environment and the files around it, one `key=value` line each. */
const PROBE = [
  'echo "root=$SANDBOX_MACHINE_ROOT"',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion the job runs
  'echo "home=${HOME-unset} user=${USER-unset} logname=${LOGNAME-unset} lang=${LANG-unset}"',
  'git config --global user.name cml-test',
  'echo "git-name=$(git config --global user.name)"',
  'touch "$GITHUB_WORKSPACE/made-by-job"',
  'for f in "$GITHUB_WORKSPACE" "$GITHUB_WORKSPACE/made-by-job" "$CML_RUNNER_HOME" "$CML_RUNNER_HOME/runner" \\',
  '  "$CML_RUNNER_HOME/state" "$CML_RUNNER_HOME/user-startup.sh" "$CML_RUNNER_HOME/fetch.log" \\',
  '  "$CML_RUNNER_HOME/made-by-startup-script" "$CML_RUNNER_HOME/runner/.runner" \\',
  '  "$CML_RUNNER_HOME/runner/.credentials" "$SANDBOX_MACHINE_ROOT/root"; do',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion the job runs
  '  [[ -e "$f" ]] && echo "mode ${f#"$CML_RUNNER_HOME"/}=$(stat -c %a "$f")"',
  'done',
  'true',
].join('\n');

/** The `mode NAME=OCTAL` lines of a probe's log, by name relative to the runner home. */
function modes(log: string): Record<string, string> {
  return Object.fromEntries([...log.matchAll(/^mode (\S+)=(\d+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

describe('a VM boots its startup script as a boot service does', () => {
  test('with only PATH and the sandbox’s own variables, and umask 022 whatever the host’s is', async () => {
    const before = process.umask(0o077);
    let m: ReturnType<typeof bootMachine>;
    try {
      m = bootMachine({
        id: 'vm-env',
        script:
          'echo "umask=$(umask)"; env | sort | sed "s/=.*//" | tr "\\n" " "; echo; echo "passwd=$(getent passwd 0)"',
        onShutdown: () => undefined,
      });
    } finally {
      process.umask(before);
    }
    expect(await m.scriptExit).toBe(0);
    await until('the console', () => m.console().includes('passwd='));
    const out = m.console();
    expect(out).toContain('umask=0022');
    const names = /^([A-Z_ ]+[A-Z_])\s*$/m.exec(out)![1]!.split(' ');
    // bash adds PWD, SHLVL and _ itself; HOME, USER, LOGNAME, SHELL and LANG are not given.
    expect(names.sort()).toEqual(
      [
        'CML_RUNNER_HOME',
        'CML_RUNNER_SUDOERS',
        'PATH',
        'PWD',
        ...(process.getuid?.() === 0 ? ['SANDBOX_HOST_ROOT'] : []),
        'SANDBOX_MACHINE_CONTROL',
        'SANDBOX_MACHINE_ID',
        'SANDBOX_MACHINE_ROOT',
        'SHLVL',
        'TMPDIR',
        '_',
      ].sort(),
    );
    // Its password database gives root a home inside the machine, not the host's.
    expect(out).toContain(`passwd=root:x:0:0:root:${m.root}/root:/bin/bash`);
    await m.kill();
  });

  test('a container keeps the environment its image and pod give it', async () => {
    const m = bootMachine({
      id: 'pod-env',
      container: true,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion the container runs
      argv: ['bash', '-c', 'echo "home=$HOME lang=${LANG-unset}"'],
      prepare: () => ({ env: { HOME: '/home/runner' } }),
      onShutdown: () => undefined,
    });
    await m.exited;
    expect(m.console()).toContain('home=/home/runner lang=C.UTF-8');
  });
});

describe('a VM runner’s jobs', () => {
  test('run as the user cml-runner with its HOME, USER and LANG, so git config --global works, and readable workspaces; the script’s files stay private', async () => {
    const { result, error } = await attemptLaunch(sb, {
      type: 'm5.large',
      labels: 'cml-env',
      'startup-script': 'mkdir "$CML_RUNNER_HOME/made-by-startup-script"',
    });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-env'], script: PROBE });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done.log).not.toContain('fatal: $HOME not set');
    expect(done).toMatchObject({ status: 'completed', conclusion: 'success', runnerName: runner.name });
    const root = /^root=(\S+)$/m.exec(done.log)![1]!;
    expect(done.log).toContain(`home=${root}/home/cml-runner user=cml-runner logname=cml-runner lang=C.UTF-8`);
    expect(done.log).toContain('git-name=cml-test');
    expect(modes(done.log)).toEqual({
      // What the runner, its jobs and the user's startup-script make is readable by others.
      'runner/_work/ml/ml': '755',
      'runner/_work/ml/ml/made-by-job': '644',
      [`${root}/opt/cml-runner`]: '755',
      runner: '755',
      'made-by-startup-script': '755',
      // What the startup script keeps is not, and root's home is root's.
      [`${root}/root`]: '700',
      state: '700',
      'user-startup.sh': '600',
      'fetch.log': '600',
    });
    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
  });

  test('of a reusable runner: the registration files config.sh writes stay private', async () => {
    const { result, error } = await attemptLaunch(sb, {
      type: 'm5.large',
      labels: 'cml-env-reusable',
      single: 'false',
      'idle-timeout': '3',
    });
    expect(error).toBeUndefined();
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-env-reusable'], script: PROBE });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done.conclusion).toBe('success');
    expect(modes(done.log)).toMatchObject({ 'runner/.runner': '600', 'runner/.credentials': '600', state: '700' });
    // config.sh registered it: the runner added its own default labels.
    const registered = sb.github.runners().find((r) => r.name === result!.runners[0]!.name)!;
    expect(registered.labels).toEqual([
      'self-hosted',
      'X64',
      'Linux',
      'cml-env-reusable',
      'cml-run-4242',
      result!.launchLabel,
    ]);
    const id = result!.runners[0]!.machine.id;
    await until('idle end', () => sb.ec2.instances().find((i) => i.id === id)!.state === 'terminated', 20_000);
    await cleanupRunOf(sb);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('a just-in-time runner’s labels', () => {
  test('are self-hosted, Linux and the type’s architecture, sent by the action: nothing else is added', async () => {
    const { result, error } = await attemptLaunch(sb, { type: 'm5.large', labels: 'cml-x64' });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    const registered = sb.github.runners().find((r) => r.name === runner.name)!;
    expect(registered.labels).toEqual(['self-hosted', 'Linux', 'X64', 'cml-x64', 'cml-run-4242', result!.launchLabel]);
    // GitHub matches labels case-insensitively, as a workflow usually writes them.
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'linux', 'x64', 'cml-x64'],
      script: 'uname -m',
    });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done).toMatchObject({ conclusion: 'success', runnerName: runner.name });
    expect(done.log).toContain('x86_64');
    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
  });

  test('on a Graviton type say ARM64, and the runner takes an arm64 job', async () => {
    const { result, error } = await attemptLaunch(sb, { type: 'm7g.large', labels: 'cml-arm' });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(sb.github.runners().find((r) => r.name === runner.name)!.labels).toEqual([
      'self-hosted',
      'Linux',
      'ARM64',
      'cml-arm',
      'cml-run-4242',
      result!.launchLabel,
    ]);
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'linux', 'arm64', 'cml-arm'],
      script: 'uname -m',
    });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done).toMatchObject({ conclusion: 'success', runnerName: runner.name });
    expect(done.log).toContain('aarch64');
    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
  });

  test('name no architecture when the fallback types mix x86 and Arm, and say why at debug level', async () => {
    const { result, error, log } = await attemptLaunch(sb, { type: 'm5.large,m7g.large', labels: 'cml-mixed' });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(sb.github.runners().find((r) => r.name === runner.name)!.labels).toEqual([
      'self-hosted',
      'Linux',
      'cml-mixed',
      'cml-run-4242',
      result!.launchLabel,
    ]);
    expect(log.debugLines).toContain(
      `runner ${runner.name} gets no architecture label: the types mix architectures (m5.large X64, m7g.large ARM64)`,
    );
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-mixed'],
      script: 'true',
    });
    expect((await sb.github.waitJob(job.id, 30_000)).conclusion).toBe('success');
    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('the architecture of a spec’s types', () => {
  const of = (cloud: Parameters<typeof descriptorOf>[0], types: string[], options: unknown = {}) =>
    sharedArchitecture(descriptorOf(cloud).catalog, types, options);

  test('comes from each cloud’s catalog: Graviton, Azure p sizes, Google Arm series, a Kubernetes node selector', () => {
    expect(of('aws', ['g5.xlarge', 'm5.large'])).toEqual({ architecture: 'X64' });
    expect(of('aws', ['m7g.large', 'c7gn.xlarge', 'g5g.xlarge'])).toEqual({ architecture: 'ARM64' });
    expect(of('azure', ['Standard_D2ps_v5', 'Standard_E4pds_v6', 'Standard_B2pts_v2'])).toEqual({
      architecture: 'ARM64',
    });
    expect(of('azure', ['Standard_D8s_v5', 'Standard_NC4as_T4_v3', 'Standard_NC80adis_H100_v5'])).toEqual({
      architecture: 'X64',
    });
    expect(of('gcp', ['t2a-standard-4', 'c4a-standard-8', 'n4a-standard-2', 'a4x-highgpu-4g'])).toEqual({
      architecture: 'ARM64',
    });
    expect(of('gcp', ['n2-standard-8', 'n1-standard-8+nvidia-tesla-t4', 'c4d-standard-8'])).toEqual({
      architecture: 'X64',
    });
    const selector = (arch: string) => ({ nodeSelector: { 'kubernetes.io/arch': arch } });
    expect(of('kubernetes', ['2/8Gi'], selector('arm64'))).toEqual({ architecture: 'ARM64' });
    expect(of('kubernetes', ['2/8Gi'], selector('amd64'))).toEqual({ architecture: 'X64' });
  });

  test('is none when the types mix, or when it is not known before the machine starts (a pod without a selector)', () => {
    expect(of('aws', ['m5.large', 'm7g.large'])).toEqual({
      unknown: 'the types mix architectures (m5.large X64, m7g.large ARM64)',
    });
    expect(of('azure', ['Standard_D2s_v5', 'Standard_D2ps_v5'])).toHaveProperty('unknown');
    expect(of('kubernetes', ['2/8Gi'], { nodeSelector: {} })).toEqual({
      unknown: 'the architecture of 2/8Gi is not known before the machine starts',
    });
    expect(of('kubernetes', ['2/8Gi'], { nodeSelector: { 'kubernetes.io/arch': 's390x' } })).toHaveProperty('unknown');
  });
});
