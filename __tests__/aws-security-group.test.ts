import { beforeAll, describe, expect, test } from '@jest/globals';
import {
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { loadCloud } from '../src/clouds/index.js';
import { endLedger } from '../src/lifecycle/index.js';
import { GitHubForge } from '../src/forge/github.js';
import type { LedgerData } from '../src/ledger.js';
import type { Clock } from '../src/retry.js';
import { SANDBOX_ADMIN_CREDENTIALS, VPC_ID } from '../sandbox/ec2.js';
import type { Sandbox } from '../sandbox/index.js';
import { MemoryLog, attemptLaunch, cleanupRunOf, settle, specFor, sweepOf } from './helpers.js';
import { useSandbox } from './support/sandbox.js';
import { until } from './support/wait.js';

/**
 * Without aws-security-group, a launch makes a security group of its own: no inbound rule, the
 * default all-outbound rule, the managed tags, one per launch and shared by its machines. It is
 * written to the ledger before it is created and deleted after the machines, by main after a
 * failed launch, by post, by `mode: cleanup` and by `mode: sweep`.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

const MANAGED = { 'cml-runner:managed': 'true', 'cml-runner:repo': 'octo-org/ml' };
const groups = () => sb.ec2.securityGroups();
const callsOf = (action: string) => sb.ec2.calls.filter((c) => c.action === action);

function admin(): EC2Client {
  return new EC2Client({
    region: 'us-east-1',
    endpoint: sb.ec2.url,
    credentials: SANDBOX_ADMIN_CREDENTIALS,
    maxAttempts: 1,
  });
}

/** A clock whose sleeps return at once and move time on: a bounded wait ends in no time. */
function fastClock(): Clock {
  let now = Date.now();
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms;
      await new Promise((r) => setTimeout(r, 5));
    },
  };
}

/** Post on a ledger, with the given clock. */
async function post(ledger: LedgerData, clock?: Clock) {
  const log = new MemoryLog();
  const spec = specFor(sb, {});
  const cloud = await loadCloud(spec.cloud, ledger.region, { env: sb.env, log, clock: clock ?? fastClock() });
  const forge = new GitHubForge({ ...spec.forge }, log);
  return { report: await endLedger(ledger, { cloud, forge, log }), log };
}

describe('a launch without aws-security-group', () => {
  test('makes one group with no inbound rule, used by every machine; cleanup deletes it after them', async () => {
    const { result, error, ledger } = await attemptLaunch(sb, { count: '2', labels: 'cml-own-group' });
    expect(error).toBeUndefined();
    expect(groups()).toHaveLength(1);
    const [group] = groups();
    expect(group).toMatchObject({ vpcId: VPC_ID, ingress: [], egress: [{ protocol: '-1', cidr: '0.0.0.0/0' }] });
    expect(group!.name).toMatch(/^cml-runner-4242-[0-9a-f]{8}$/);
    expect(group!.tags).toMatchObject({ ...MANAGED, 'cml-runner:run-id': '4242', Name: group!.name });
    expect(group!.tags['cml-runner:runner']).toBeUndefined();
    for (const r of result!.runners) expect(sb.ec2.instance(r.machine.id)!.securityGroups).toEqual([group!.id]);
    expect(callsOf('CreateSecurityGroup')).toHaveLength(1);
    expect(ledger!.resources).toEqual([{ kind: 'security-group', name: group!.name, id: group!.id }]);

    // The runners are kept: post leaves the group to them; cleanup ends machines, then the group.
    expect((await post(ledger!)).report.resources).toEqual([]);
    expect(groups()).toHaveLength(1);
    const report = await cleanupRunOf(sb);
    expect(report.resources).toEqual([
      expect.objectContaining({ kind: 'security-group', id: group!.id, result: 'deleted' }),
    ]);
    const deletes = callsOf('DeleteSecurityGroup');
    const lastTerminate = callsOf('TerminateInstances').at(-1)!;
    expect(deletes.at(-1)).toMatchObject({ status: 200 });
    expect(deletes[0]!.at).toBeGreaterThanOrEqual(lastTerminate.at);
    expect(groups()).toEqual([]);
    expect(await settle(sb)).toEqual([]);
  });

  test('aws-security-group given: no group is made, the machines use the one given', async () => {
    const ec2 = admin();
    const given = (await ec2.send(new CreateSecurityGroupCommand({ GroupName: 'mine', Description: 'mine' }))).GroupId!;
    const before = callsOf('CreateSecurityGroup').length;
    const { result, error, ledger } = await attemptLaunch(sb, { 'aws-security-group': given, labels: 'cml-given' });
    expect(error).toBeUndefined();
    expect(callsOf('CreateSecurityGroup')).toHaveLength(before);
    expect(ledger!.resources).toEqual([]);
    expect(sb.ec2.instance(result!.runners[0]!.machine.id)!.securityGroups).toEqual([given]);
    const report = await cleanupRunOf(sb);
    expect(report.resources).toEqual([]);
    await until(
      'the instance is terminated',
      () => sb.ec2.instance(result!.runners[0]!.machine.id)!.state === 'terminated',
    );
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: given }));
    ec2.destroy();
    expect(await settle(sb)).toEqual([]);
  });
});

describe('ending the group', () => {
  test('a failed launch: main deletes it after the instance, retrying DependencyViolation while it shuts down', async () => {
    sb.machines.failBoot(1);
    sb.faults.add({
      service: 'ec2',
      action: 'DeleteSecurityGroup',
      code: 'DependencyViolation',
      message: 'resource sg-0 has a dependent object',
      times: 2,
    });
    const before = callsOf('DeleteSecurityGroup').length;
    const { error, ledger, log } = await attemptLaunch(sb, { 'startup-timeout': '5', labels: 'cml-group-retry' });
    expect(error?.name).toBe('StartupTimeoutError');
    const deletes = callsOf('DeleteSecurityGroup').slice(before);
    expect(deletes.map((c) => c.code ?? c.status)).toEqual(['DependencyViolation', 'DependencyViolation', 200]);
    expect(ledger!.resources![0]).toMatchObject({ kind: 'security-group', ended: true });
    expect(log.lines).toContainEqual(expect.stringMatching(/security-group sg-\w+: deleted/));
    expect(groups()).toEqual([]);
    expect(await settle(sb)).toEqual([]);
  });

  test('a group still in use when the wait ends is reported as left; cleanup ends it later', async () => {
    const { error, ledger } = await attemptLaunch(sb, { labels: 'cml-group-left' });
    expect(error).toBeUndefined();
    // Post of a launch that kept nothing, while EC2 keeps saying the group is in use: after its
    // bounded wait (on a clock that makes it instant) the group is reported as left.
    const failed = { ...ledger!, keep: [], complete: false };
    sb.faults.add({ service: 'ec2', action: 'DeleteSecurityGroup', code: 'DependencyViolation', times: Infinity });
    const { report, log } = await post(failed);
    expect(report.machines.map((m) => m.result)).toEqual(['terminated']);
    expect(report.resources).toEqual([expect.objectContaining({ kind: 'security-group', result: 'left' })]);
    expect(log.lines).toContainEqual(expect.stringContaining('is still in use; mode: cleanup or sweep ends it later'));
    expect(callsOf('DeleteSecurityGroup').filter((c) => c.code === 'DependencyViolation').length).toBeGreaterThan(5);
    expect(groups()).toHaveLength(1);
    sb.faults.clear();
    const later = await cleanupRunOf(sb);
    expect(later.resources.map((r) => r.result)).toEqual(['deleted']);
    expect(await settle(sb)).toEqual([]);
  });

  test('a CreateSecurityGroup answer lost on the way back: the retry takes the group the first call made', async () => {
    sb.faults.add({ service: 'ec2', action: 'CreateSecurityGroup', reset: 'after', times: 1 });
    const { result, error, ledger } = await attemptLaunch(sb, { labels: 'cml-group-lost-once' });
    expect(error).toBeUndefined();
    expect(groups()).toHaveLength(1);
    expect(callsOf('CreateSecurityGroup').at(-1)).toMatchObject({ code: 'InvalidGroup.Duplicate' });
    expect(ledger!.resources![0]!.id).toBe(groups()[0]!.id);
    expect(sb.ec2.instance(result!.runners[0]!.machine.id)!.securityGroups).toEqual([groups()[0]!.id]);
    await cleanupRunOf(sb);
    expect(await settle(sb)).toEqual([]);
  });

  test('every CreateSecurityGroup answer lost: the launch fails and the group, known by name only, is deleted', async () => {
    sb.faults.add({ service: 'ec2', action: 'CreateSecurityGroup', reset: 'after', times: 5 });
    const { error, ledger } = await attemptLaunch(sb, { labels: 'cml-group-lost' });
    expect(error).toBeDefined();
    expect(sb.ec2.instances().filter((i) => i.tags['cml-runner:runner'] === ledger!.registrations[0]?.name)).toEqual(
      [],
    );
    const [entry] = ledger!.resources!;
    expect(entry!.id).toBeUndefined();
    expect(entry!.ended).toBe(true);
    expect(groups()).toEqual([]);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('mode: sweep', () => {
  test('deletes an orphaned group of the repository; leaves a stranger’s group and a group in use', async () => {
    const ec2 = admin();
    const make = async (name: string, tags: Record<string, string>) =>
      (
        await ec2.send(
          new CreateSecurityGroupCommand({
            GroupName: name,
            Description: name,
            TagSpecifications: [
              { ResourceType: 'security-group', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
            ],
          }),
        )
      ).GroupId!;
    const orphan = await make('cml-runner-1111-orphan', { ...MANAGED, 'cml-runner:run-id': '1111' });
    const stranger = await make('cml-runner-2222-stranger', { ...MANAGED, 'cml-runner:repo': 'someone/else' });
    const { error, result } = await attemptLaunch(sb, { labels: 'cml-sweep-live', 'idle-timeout': '0' });
    expect(error).toBeUndefined();
    const live = sb.ec2.instance(result!.runners[0]!.machine.id)!.securityGroups[0]!;

    const report = await sweepOf(sb, 'aws', 3600);
    expect(report.resources).toEqual([expect.objectContaining({ id: orphan, result: 'deleted', reason: 'unused' })]);
    expect(
      groups()
        .map((g) => g.id)
        .sort(),
    ).toEqual([stranger, live].sort());

    await cleanupRunOf(sb);
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: stranger }));
    ec2.destroy();
    expect(await settle(sb)).toEqual([]);
  });
});

describe('the fake EC2', () => {
  test('names are unique per VPC, a group of another VPC cannot be used, and one in use cannot be deleted', async () => {
    const ec2 = admin();
    const create = (VpcId?: string) =>
      ec2.send(new CreateSecurityGroupCommand({ GroupName: 'Twice', Description: 'x', ...(VpcId ? { VpcId } : {}) }));
    const first = (await create()).GroupId!;
    await expect(create()).rejects.toMatchObject({
      name: 'InvalidGroup.Duplicate',
      message: `The security group 'Twice' already exists for VPC '${VPC_ID}'`,
    });
    const other = (await create('vpc-0a1b2c3d4e5f60002')).GroupId!;
    await expect(
      ec2.send(
        new RunInstancesCommand({
          ImageId: sb.ec2.images.ubuntuX64,
          InstanceType: 't3.micro',
          MinCount: 1,
          MaxCount: 1,
          SubnetId: 'subnet-0a1',
          SecurityGroupIds: [other],
        }),
      ),
    ).rejects.toMatchObject({
      name: 'InvalidParameter',
      message: `Security group ${other} and subnet subnet-0a1 belong to different networks.`,
    });
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: sb.ec2.images.ubuntuX64,
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
        SecurityGroupIds: [first],
        UserData: Buffer.from('#!/bin/bash\nsleep 600\n').toString('base64'),
      }),
    );
    const id = run.Instances![0]!.InstanceId!;
    await expect(ec2.send(new DeleteSecurityGroupCommand({ GroupId: first }))).rejects.toMatchObject({
      name: 'DependencyViolation',
      message: `resource ${first} has a dependent object`,
    });
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    // Shutting down still holds the group.
    await expect(ec2.send(new DeleteSecurityGroupCommand({ GroupId: first }))).rejects.toMatchObject({
      name: 'DependencyViolation',
    });
    await until('the instance is terminated', () => sb.ec2.instance(id)!.state === 'terminated', 5_000);
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: first }));
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: other }));
    await expect(ec2.send(new DeleteSecurityGroupCommand({ GroupId: other }))).rejects.toMatchObject({
      name: 'InvalidGroup.NotFound',
    });
    ec2.destroy();
    expect(await settle(sb)).toEqual([]);
  });
});
