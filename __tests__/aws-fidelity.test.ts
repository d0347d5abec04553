import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { InputError } from '../src/errors.js';
import type { Sandbox } from '../sandbox/index.js';
import { attemptLaunch, cleanupKept, cleanupLedger, settle, specFor } from './helpers.js';
import { useSandbox } from './support/sandbox.js';

/**
 * What real EC2 does that a lenient fake would hide: types offered in some regions only, the
 * V100 that the default image's driver cannot drive, the spot service-linked role a new account
 * lacks, and Xen instances that give no latest console output. The real SDK clients against the
 * sandbox; after each test nothing is left and every fault fired.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

/** A kept runner ends after one job: run a trivial one so its machine terminates itself. */
async function runOneJob(label: string): Promise<void> {
  const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: [label], script: 'true' });
  await sb.github.waitJob(job.id, 30_000);
}

const calls = (action: string, since = 0) => sb.ec2.calls.slice(since).filter((c) => c.action === action);

function inputError(inputs: Record<string, string>): InputError {
  try {
    specFor(sb, inputs);
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(inputs)}`);
}

describe('the V100', () => {
  test.each(['v100', 'tesla'])('gpu: %s is refused on AWS, with what to use instead', (gpu) => {
    for (const type of ['s', 'xl']) {
      const err = inputError({ gpu, type });
      expect(err.input).toBe('gpu');
      expect(err.value).toBe('v100');
      expect(err.message).toMatch(/use t4, a10g or l4/);
      expect(err.message).toContain('p3.2xlarge');
      expect(err.message).toMatch(/open kernel modules/);
    }
  });

  test('a native p3 type with the default image is refused before anything is created; so is the OSS image', () => {
    const before = sb.ec2.calls.length;
    const noImage = inputError({ type: 'p3.2xlarge' });
    expect(noImage).toMatchObject({ input: 'type', value: 'p3.2xlarge' });
    expect(noImage.message).toContain("NVIDIA's proprietary driver");
    expect(noImage.message).toContain('does not support');
    expect(inputError({ type: 'g4dn.xlarge,p3dn.24xlarge' })).toMatchObject({ input: 'type', value: 'p3dn.24xlarge' });
    const oss = '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id';
    expect(inputError({ type: 'p3.2xlarge', image: oss })).toMatchObject({ input: 'image', value: oss });
    expect(sb.ec2.calls.length).toBe(before);
  });

  test('a native p3 type with an image that has the proprietary driver launches, and its job sees the V100', async () => {
    const { result, error } = await attemptLaunch(sb, {
      type: 'p3.2xlarge',
      image: sb.ec2.images.gpuProprietaryX64,
      labels: 'cml-v100',
    });
    expect(error).toBeUndefined();
    const instance = sb.ec2.instance(result!.runners[0]!.machine.id)!;
    expect(instance).toMatchObject({ type: 'p3.2xlarge', imageId: sb.ec2.images.gpuProprietaryX64 });
    const job = sb.github.queueJob({ owner: 'octo-org', repo: 'ml', labels: ['cml-v100'], script: 'nvidia-smi -L' });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done).toMatchObject({ conclusion: 'success' });
    expect(done.log).toContain('Tesla V100-SXM2-16GB');
    await cleanupKept(sb, result!.ledger);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('types a region does not offer', () => {
  test('a10g in us-west (us-west-1 has no g5) fails before anything is created, naming the regions that offer it', async () => {
    const before = sb.ec2.calls.length;
    const { error, ledger } = await attemptLaunch(sb, { gpu: 'a10g', type: 's', region: 'us-west' });
    expect(error?.message).toContain('InstanceTypeNotOffered');
    expect(error?.message).toContain('us-west-1 offers none of the types g5.xlarge');
    expect(error?.message).toMatch(
      /g5\.xlarge in us-east-1, us-east-2, us-west-2, eu-west-1, eu-central-1, eu-north-1/,
    );
    expect(error?.message).toContain('Nothing was created');
    expect(calls('RunInstances', before)).toEqual([]);
    expect(ledger?.machines ?? []).toEqual([]);
    // The other regions were asked on the failure path only.
    expect(calls('DescribeInstanceTypeOfferings', before).length).toBeGreaterThan(1);
    expect(await sb.leftovers()).toEqual([]);
  });

  test('a fallback list keeps only the types the region offers: g4dn in us-west-1, g5 never tried', async () => {
    const before = sb.ec2.calls.length;
    const { result, error, ledger } = await attemptLaunch(sb, {
      type: 'g5.xlarge,g4dn.xlarge',
      region: 'us-west',
      labels: 'cml-west',
    });
    expect(error).toBeUndefined();
    expect(sb.ec2.instance(result!.runners[0]!.machine.id)).toMatchObject({ type: 'g4dn.xlarge', region: 'us-west-1' });
    expect(calls('RunInstances', before).map((c) => c.params?.InstanceType)).toEqual(['g4dn.xlarge']);
    // The region offers some of them: one question, to the launch region only.
    expect(calls('DescribeInstanceTypeOfferings', before)).toHaveLength(1);
    await runOneJob('cml-west');
    await cleanupLedger(sb, ledger!);
    await cleanupKept(sb, ledger);
    expect(await settle(sb)).toEqual([]);
  });

  test('the offerings are asked at the same time as the image, adding no round trip', async () => {
    sb.faults.add({ service: 'ec2', action: 'DescribeInstanceTypeOfferings', delayMs: 600 });
    const before = sb.ec2.calls.length;
    const { error, ledger } = await attemptLaunch(sb, { labels: 'cml-concurrent' });
    expect(error).toBeUndefined();
    const [offerings] = calls('DescribeInstanceTypeOfferings', before);
    const [images] = calls('DescribeImages', before);
    // DescribeImages (after the SSM parameter) started while the offerings answer was still held.
    expect(images!.at).toBeLessThan(offerings!.at + offerings!.ms);
    await runOneJob('cml-concurrent');
    await cleanupLedger(sb, ledger!);
    await cleanupKept(sb, ledger);
    expect(await settle(sb)).toEqual([]);
  });

  test('credentials that may not ask for offerings launch all the same, with a warning naming the permission', async () => {
    sb.faults.add({
      service: 'ec2',
      action: 'DescribeInstanceTypeOfferings',
      code: 'UnauthorizedOperation',
      status: 403,
      message: 'You are not authorized to perform this operation.',
    });
    const { error, log, ledger } = await attemptLaunch(sb, { labels: 'cml-unchecked' });
    expect(error).toBeUndefined();
    expect(log.lines).toContainEqual(expect.stringMatching(/^warning: .*ec2:DescribeInstanceTypeOfferings/));
    await runOneJob('cml-unchecked');
    await cleanupLedger(sb, ledger!);
    await cleanupKept(sb, ledger);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('the EC2 Spot service-linked role', () => {
  afterEach(() => sb.ec2.setSpotRole({ creation: true }));

  test('a new account whose credentials may not create it falls back to on-demand, saying how to get spot', async () => {
    sb.ec2.setSpotRole({ exists: false, creation: false });
    const { result, error, log, ledger } = await attemptLaunch(sb, { spot: 'true', labels: 'cml-no-spot-role' });
    expect(error).toBeUndefined();
    const instance = sb.ec2.instance(result!.runners[0]!.machine.id)!;
    expect(instance.spot).toBe(false);
    expect(log.lines).toContainEqual(
      expect.stringMatching(/spot is not available .*AuthFailure\.ServiceLinkedRoleCreationNotPermitted/),
    );
    expect(log.lines).toContainEqual(
      expect.stringContaining('aws iam create-service-linked-role --aws-service-name spot.amazonaws.com'),
    );
    expect(sb.ec2.spotServiceLinkedRole()).toBe(false);
    await runOneJob('cml-no-spot-role');
    await cleanupLedger(sb, ledger!);
    await cleanupKept(sb, ledger);
    expect(await settle(sb)).toEqual([]);
  });

  test('without on-demand-fallback the launch fails with the permission and the one-time command', async () => {
    sb.ec2.setSpotRole({ exists: false, creation: false });
    const { error, ledger } = await attemptLaunch(sb, { spot: 'true', 'on-demand-fallback': 'false' });
    expect(error?.message).toContain('AuthFailure.ServiceLinkedRoleCreationNotPermitted');
    expect(error?.message).toContain('iam:CreateServiceLinkedRole');
    expect(error?.message).toContain('aws iam create-service-linked-role --aws-service-name spot.amazonaws.com');
    expect(sb.ec2.instances().filter((i) => i.tags['cml-runner:run-id'] && i.state !== 'terminated')).toEqual([]);
    await cleanupLedger(sb, ledger!);
    await cleanupKept(sb, ledger);
    expect(await settle(sb)).toEqual([]);
  });

  test('credentials that may create it get spot on the first launch, and the role stays', async () => {
    sb.ec2.setSpotRole({ exists: false, creation: true });
    const { result, error, ledger } = await attemptLaunch(sb, { spot: 'true', labels: 'cml-spot-role' });
    expect(error).toBeUndefined();
    expect(sb.ec2.instance(result!.runners[0]!.machine.id)!.spot).toBe(true);
    expect(sb.ec2.spotServiceLinkedRole()).toBe(true);
    await runOneJob('cml-spot-role');
    await cleanupLedger(sb, ledger!);
    await cleanupKept(sb, ledger);
    expect(await settle(sb)).toEqual([]);
  });
});

test('a failed launch on a Xen instance (p3) still shows its console, read without Latest', async () => {
  const before = sb.ec2.calls.length;
  const { error, ledger } = await attemptLaunch(sb, {
    type: 'p3.2xlarge',
    image: sb.ec2.images.gpuProprietaryX64,
    'startup-script': 'echo "fetching weights"; echo "E: no space left on device" >&2; exit 3',
  });
  expect(error?.message).toContain('ended before its runner came online');
  expect(error?.message).toContain('E: no space left on device');
  expect(calls('GetConsoleOutput', before).map((c) => [c.status, c.params?.Latest])).toEqual([
    [400, 'true'],
    [200, 'false'],
  ]);
  await cleanupLedger(sb, ledger!);
  expect(await settle(sb)).toEqual([]);
});
