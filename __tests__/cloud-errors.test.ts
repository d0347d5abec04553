import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { loadCloud } from '../src/clouds/index.js';
import type { Cloud, MachineRequest, PreparedCloud } from '../src/clouds/types.js';
import { CloudError, type ErrorKind } from '../src/errors.js';
import { realClock } from '../src/retry.js';
import { startSandbox, type Fault, type Sandbox } from '../sandbox/index.js';
import { GCE_SERVICE_ACCOUNTS } from '../sandbox/gce.js';
import { MemoryLog, settle, specFor } from './helpers.js';

/**
 * Each cloud classifies its own SDK's errors into the kinds the lifecycle acts on. The real SDK
 * clients talk to the fakes, which refuse with the service's own codes; a transient refusal is
 * retried by the provider (the fake counts it answered twice, then the call succeeds), and a
 * permanent, quota or fallback one is not (answered once).
 */

let sb: Sandbox;

beforeAll(async () => {
  sb = await startSandbox();
});

afterEach(() => {
  sb.faults.clear();
});

afterAll(async () => {
  await sb.close();
});

async function cloudOf(
  inputs: Record<string, string>,
): Promise<{ cloud: Cloud; prepared: () => Promise<PreparedCloud> }> {
  const spec = specFor(sb, inputs);
  const cloud = await loadCloud(spec.cloud, spec.machine.region, {
    env: sb.env,
    log: new MemoryLog(),
    clock: realClock,
  });
  return { cloud, prepared: () => cloud.prepare(spec.machine) };
}

function request(name: string): MachineRequest {
  return {
    runnerName: name,
    attempt: 1,
    startupScript: '#!/bin/bash\ntrue\n',
    tags: {
      Name: name,
      'cml-runner:managed': 'true',
      'cml-runner:repo': 'octo-org/ml',
      'cml-runner:run-id': '77',
      'cml-runner:runner': name,
    },
    clientToken: randomUUID(),
    credential: { jitConfig: 'not-a-real-config' },
    runnerVersion: '2.330.0',
    maxLifetimeSeconds: 3600,
  };
}

/** Runs `call` with `fault` armed for every matching request; what it threw and how often the fault answered. */
async function refused(fault: Fault, call: () => Promise<unknown>): Promise<{ error: CloudError; answered: number }> {
  const before = sb.faults.fired.length;
  sb.faults.add({ times: Number.POSITIVE_INFINITY, ...fault });
  const error = await call().then(
    () => undefined,
    (err: unknown) => err,
  );
  // Counted before the plan is cleared: clearing forgets what fired too.
  const answered = sb.faults.fired.slice(before).filter((f) => f.code === fault.code).length;
  sb.faults.clear();
  expect(error).toBeInstanceOf(CloudError);
  return { error: error as CloudError, answered };
}

/** A transient fault twice, then the real answer: the call succeeds after two retries. */
async function retried(fault: Fault, call: () => Promise<unknown>): Promise<void> {
  const before = sb.faults.fired.length;
  sb.faults.add({ ...fault, times: 2 });
  await expect(call()).resolves.toBeDefined();
  expect(sb.faults.fired.slice(before).filter((f) => f.code === fault.code)).toHaveLength(2);
}

function expectKind(r: { error: CloudError; answered: number }, code: string, kind: ErrorKind): void {
  expect({ code: r.error.code, kind: r.error.kind, answered: r.answered }).toEqual({ code, kind, answered: 1 });
}

describe('AWS', () => {
  const inputs = { cloud: 'aws', region: 'us-east-1', type: 'm5.large' };

  test('a throttle and a 5xx are retried; the call goes on', async () => {
    const { cloud } = await cloudOf(inputs);
    await retried({ service: 'ec2', action: 'DescribeInstances', code: 'RequestLimitExceeded' }, () =>
      cloud.states(['i-0123456789abcdef0']),
    );
    await retried({ service: 'ec2', action: 'DescribeInstances', code: 'InternalError' }, () =>
      cloud.list({ repo: 'octo-org/ml' }),
    );
  });

  test('a permission refusal is permanent, an unknown instance is gone, and neither is retried', async () => {
    const { cloud } = await cloudOf(inputs);
    expectKind(
      await refused({ service: 'ec2', action: 'DescribeInstances', code: 'UnauthorizedOperation', status: 403 }, () =>
        cloud.states(['i-0123456789abcdef0']),
      ),
      'UnauthorizedOperation',
      'permanent',
    );
    expectKind(
      await refused({ service: 'ec2', action: 'DescribeInstances', code: 'AuthFailure', status: 401 }, () =>
        cloud.list({ repo: 'octo-org/ml' }),
      ),
      'AuthFailure',
      'permanent',
    );
    expectKind(
      await refused({ service: 'ec2', action: 'GetConsoleOutput', code: 'InvalidInstanceID.NotFound' }, () =>
        cloud.consoleLog('i-0123456789abcdef0'),
      ),
      'InvalidInstanceID.NotFound',
      'gone',
    );
    await expect(cloud.terminate('i-0123456789abcdef0')).resolves.toBe('gone');
  });

  test('no capacity, spot refused at a price and a vCPU quota are each their own kind, sent once', async () => {
    const { cloud, prepared } = await cloudOf(inputs);
    const ready = await prepared();
    const launch = () => ready.launch(request('cml-errors-aws'), { type: 'm5.large', spot: false });
    expectKind(
      await refused({ service: 'ec2', action: 'RunInstances', code: 'InsufficientInstanceCapacity' }, launch),
      'InsufficientInstanceCapacity',
      'capacity',
    );
    expectKind(
      await refused({ service: 'ec2', action: 'RunInstances', code: 'SpotMaxPriceTooLow' }, launch),
      'SpotMaxPriceTooLow',
      'market',
    );
    const quota = await refused({ service: 'ec2', action: 'RunInstances', code: 'VcpuLimitExceeded' }, launch);
    expectKind(quota, 'VcpuLimitExceeded', 'quota');
    expect(quota.error.message).toContain('Service Quotas');
    // The launch's own security group, made with its first machine: the lifecycle would end it.
    for (const { inUse: _, held: __, ...group } of (await cloud.listResources?.({ repo: 'octo-org/ml' })) ?? [])
      expect(await cloud.deleteResource?.(group)).toBe('deleted');
    expect(await settle(sb)).toEqual([]);
  });
});

describe('Google Cloud', () => {
  const inputs = {
    cloud: 'gcp',
    region: 'us-central1',
    type: 'n2-standard-2',
    'gcp-service-account': GCE_SERVICE_ACCOUNTS.runner,
  };

  test('a rate limit and a backend error are retried; the call goes on', async () => {
    const { cloud } = await cloudOf(inputs);
    await retried({ service: 'gce', action: 'instances.aggregatedList .*', code: 'rateLimitExceeded' }, () =>
      cloud.list({ repo: 'octo-org/ml' }),
    );
    await retried({ service: 'gce', action: 'instances.aggregatedList .*', code: 'backendError' }, () =>
      cloud.states(['us-central1-a/x']),
    );
  });

  test('forbidden is permanent, an unknown instance is gone, and neither is retried', async () => {
    const { cloud } = await cloudOf(inputs);
    expectKind(
      await refused({ service: 'gce', action: 'instances.aggregatedList .*', code: 'forbidden' }, () =>
        cloud.list({ repo: 'octo-org/ml' }),
      ),
      'forbidden',
      'permanent',
    );
    expectKind(
      await refused({ service: 'gce', action: 'instances.getSerialPortOutput .*', code: 'notFound' }, () =>
        cloud.consoleLog('us-central1-a/cml-nope'),
      ),
      'notFound',
      'gone',
    );
    await expect(cloud.terminate('us-central1-a/cml-no-such-instance')).resolves.toBe('gone');
  });

  test('no capacity in a zone is capacity; a quota is quota and fails at once', async () => {
    const { prepared } = await cloudOf(inputs);
    const ready = await prepared();
    const launch = () =>
      ready.launch(request('cml-errors-gcp'), { type: 'n2-standard-2', spot: false, where: ready.places[0]! });
    expectKind(
      await refused({ service: 'gce', action: 'instances.insert .*', code: 'ZONE_RESOURCE_POOL_EXHAUSTED' }, launch),
      'ZONE_RESOURCE_POOL_EXHAUSTED',
      'capacity',
    );
    const quota = await refused({ service: 'gce', action: 'instances.insert .*', code: 'QUOTA_EXCEEDED' }, launch);
    expectKind(quota, 'QUOTA_EXCEEDED', 'quota');
    expect(quota.error.message).toContain('IAM & Admin > Quotas');
    expect(await settle(sb)).toEqual([]);
  });
});

describe('Azure', () => {
  const inputs = { cloud: 'azure', region: 'eastus', type: 's' };

  test('throttling and an unavailable service are retried; the call goes on', async () => {
    const { cloud } = await cloudOf(inputs);
    await retried({ service: 'azure', action: 'resourceGroups.list .*', code: 'TooManyRequests', retryAfter: 1 }, () =>
      cloud.list({ repo: 'octo-org/ml' }),
    );
    await retried({ service: 'azure', action: 'resourceGroups.list .*', code: 'ServiceUnavailable' }, () =>
      cloud.states(['cml-runner-x']),
    );
  });

  test('AuthorizationFailed is permanent, an unknown group is gone, and neither is retried', async () => {
    const { cloud } = await cloudOf(inputs);
    expectKind(
      await refused(
        { service: 'azure', action: 'resourceGroups.list .*', code: 'AuthorizationFailed', status: 403 },
        () => cloud.list({ repo: 'octo-org/ml' }),
      ),
      'AuthorizationFailed',
      'permanent',
    );
    await expect(cloud.terminate('cml-runner-no-such-group')).resolves.toBe('gone');
  });

  test('no capacity for a size is capacity; a quota is quota and fails at once; nothing is left', async () => {
    const { prepared } = await cloudOf(inputs);
    const ready = await prepared();
    const launch = () =>
      ready.launch(request(`cml-errors-az-${randomUUID().slice(0, 6)}`), { type: 'Standard_D2s_v5', spot: false });
    expectKind(
      await refused(
        { service: 'azure', action: 'virtualMachines.createOrUpdate .*', code: 'AllocationFailed' },
        launch,
      ),
      'AllocationFailed',
      'capacity',
    );
    const quota = await refused(
      { service: 'azure', action: 'virtualMachines.createOrUpdate .*', code: 'OperationNotAllowed' },
      launch,
    );
    expectKind(quota, 'OperationNotAllowed', 'quota');
    expect(quota.error.message).toContain('Usage + quotas');
    expect(await settle(sb)).toEqual([]);
  });
});

describe('Kubernetes', () => {
  const inputs = () => ({ cloud: 'kubernetes', type: '1/1Gi', kubeconfig: sb.kubernetes.kubeconfig() });

  test('throttling and a 5xx are retried; the call goes on', async () => {
    const { cloud } = await cloudOf(inputs());
    await retried({ service: 'kubernetes', action: 'list jobs', code: 'TooManyRequests', retryAfter: 1 }, () =>
      cloud.list({ repo: 'octo-org/ml' }),
    );
    await retried({ service: 'kubernetes', action: 'list jobs', code: 'InternalError' }, () => cloud.states(['cml-x']));
  });

  test('Forbidden is permanent, a ResourceQuota refusal is quota, an unknown Job is gone; none is retried', async () => {
    const { cloud, prepared } = await cloudOf(inputs());
    expectKind(
      await refused({ service: 'kubernetes', action: 'list jobs', code: 'Forbidden' }, () =>
        cloud.list({ repo: 'octo-org/ml' }),
      ),
      'Forbidden',
      'permanent',
    );
    const message =
      'jobs "cml-x" is forbidden: exceeded quota: compute, requested: limits.cpu=1, used: limits.cpu=8, limited: limits.cpu=8';
    expectKind(
      await refused({ service: 'kubernetes', action: 'create jobs', code: 'Forbidden', message }, prepared),
      'Forbidden',
      'quota',
    );
    await expect(cloud.terminate('cml-no-such-job')).resolves.toBe('gone');
    expect(await settle(sb)).toEqual([]);
  });
});
