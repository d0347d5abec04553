import { randomBytes } from 'node:crypto';
import {
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  type EC2Client,
  type Filter,
} from '@aws-sdk/client-ec2';
import { CloudError } from '../../errors.js';
import { TAG } from '../tags.js';
import type { CloudContext, CloudResource, ResourceRecorder } from '../types.js';
import { awsRefusal } from './errors.js';

/**
 * The security group a launch makes when `aws-security-group` is not given: one per launch, in the
 * VPC of its subnets (the default VPC without them), named after the launch's run and a random
 * part (names are unique per VPC), tagged like the machines. A new group has no inbound rule and
 * keeps the default outbound rule that allows all traffic ("Security groups for your VPC",
 * https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html): the runner reaches
 * GitHub, nothing reaches the runner.
 *
 * It is written to the ledger before CreateSecurityGroup, so a create whose answer never arrived
 * is found by name; a retry after a lost answer gets `InvalidGroup.Duplicate` and takes the group
 * the first call made. It is deleted after the machines: EC2 refuses with `DependencyViolation`
 * while an instance still uses it, one shutting down too
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html), so the
 * delete is tried again for up to three minutes, then reported as still in use.
 */
export const GROUP_KIND = 'security-group';
/** How long a delete waits for instances that still hold the group. */
export const DELETE_PATIENCE_MS = 180_000;
const FIRST_WAIT_MS = 500;
const LONGEST_WAIT_MS = 15_000;
/** Instance states that still hold a group and are not ending. */
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];
const ENDING_STATE = 'shutting-down';

type Call = <T>(action: string, fn: () => Promise<T>) => Promise<T>;

export class LaunchGroups {
  constructor(
    private readonly ec2: EC2Client,
    private readonly call: Call,
    private readonly ctx: CloudContext,
    private readonly region: string,
  ) {}

  /** The VPC the launch's machines go to: that of the subnets (which must share one), or the default VPC. */
  async vpcFor(subnets: readonly string[]): Promise<string> {
    if (subnets.length > 0) {
      const out = await this.call('ec2:DescribeSubnets', () =>
        this.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [...subnets] })),
      );
      const vpcs = [...new Set((out.Subnets ?? []).map((s) => s.VpcId).filter((v): v is string => Boolean(v)))];
      if (vpcs.length !== 1) {
        throw awsRefusal(
          'InvalidParameterCombination',
          `the subnets ${subnets.join(', ')} are in ${vpcs.length} VPCs (${vpcs.join(', ')}), and a security group ` +
            'belongs to one',
          'Give subnets of one VPC in aws-subnet, or a security group of your own in aws-security-group.',
        );
      }
      return vpcs[0]!;
    }
    const out = await this.call('ec2:DescribeVpcs', () =>
      this.ec2.send(new DescribeVpcsCommand({ Filters: [{ Name: 'is-default', Values: ['true'] }] })),
    );
    const vpc = out.Vpcs?.[0]?.VpcId;
    if (!vpc) {
      throw awsRefusal(
        'VPCIdNotSpecified',
        `${this.region} has no default VPC`,
        'Give the subnets to launch in (aws-subnet), or a security group of your own (aws-security-group).',
      );
    }
    return vpc;
  }

  /** Makes the launch's group in `vpcId`, recorded before the call; its tags are the first machine's, less its own. */
  async create(vpcId: string, machineTags: Readonly<Record<string, string>>, resources?: ResourceRecorder) {
    const runId = machineTags[TAG.runId] ?? 'run';
    const name = `cml-runner-${runId}-${randomBytes(4).toString('hex')}`;
    const { [TAG.runner]: _runner, Name: _name, ...shared } = machineTags;
    const tags = Object.entries({ ...shared, Name: name }).map(([Key, Value]) => ({ Key, Value }));
    const entry = resources?.add(GROUP_KIND, name);
    let id: string | undefined;
    try {
      const out = await this.call('ec2:CreateSecurityGroup', () =>
        this.ec2.send(
          new CreateSecurityGroupCommand({
            GroupName: name,
            Description: `cml-runner-action runners of ${machineTags[TAG.repo] ?? 'a repository'}, run ${runId}`,
            VpcId: vpcId,
            TagSpecifications: [{ ResourceType: 'security-group', Tags: tags }],
          }),
        ),
      );
      id = out.GroupId;
    } catch (err) {
      // A retry after a lost answer: the group the first call made is ours by its name.
      if (!(err instanceof CloudError && err.code === 'InvalidGroup.Duplicate')) throw err;
      id = (await this.findByName(name))[0];
      if (!id) throw err;
    }
    if (!id) throw awsRefusal('NoGroup', 'CreateSecurityGroup returned no group id');
    entry?.created(id);
    this.ctx.log.info(`security group ${id} (${name}) in ${vpcId}: no inbound rule`);
    return id;
  }

  private async findByName(name: string): Promise<string[]> {
    const out = await this.call('ec2:DescribeSecurityGroups', () =>
      this.ec2.send(
        new DescribeSecurityGroupsCommand({
          Filters: [
            { Name: 'group-name', Values: [name] },
            { Name: `tag:${TAG.managed}`, Values: ['true'] },
          ],
        }),
      ),
    );
    return (out.SecurityGroups ?? []).map((g) => g.GroupId).filter((g): g is string => Boolean(g));
  }

  /** The groups this action made for a repository (and run), each marked in use when a live instance holds it. */
  async list(filter: {
    repo: string;
    runId?: string;
  }): Promise<Array<CloudResource & { inUse: boolean; held: boolean }>> {
    const filters: Filter[] = [
      { Name: `tag:${TAG.managed}`, Values: ['true'] },
      { Name: `tag:${TAG.repo}`, Values: [filter.repo] },
      ...(filter.runId ? [{ Name: `tag:${TAG.runId}`, Values: [filter.runId] }] : []),
    ];
    const groups: Array<{ id: string; name: string }> = [];
    let NextToken: string | undefined;
    do {
      const out = await this.call('ec2:DescribeSecurityGroups', () =>
        this.ec2.send(new DescribeSecurityGroupsCommand({ Filters: filters, NextToken })),
      );
      for (const g of out.SecurityGroups ?? []) if (g.GroupId) groups.push({ id: g.GroupId, name: g.GroupName ?? '' });
      NextToken = out.NextToken;
    } while (NextToken);
    if (groups.length === 0) return [];
    const used = new Set<string>();
    const held = new Set<string>();
    NextToken = undefined;
    do {
      const out = await this.call('ec2:DescribeInstances', () =>
        this.ec2.send(
          new DescribeInstancesCommand({
            Filters: [
              { Name: 'instance.group-id', Values: groups.map((g) => g.id) },
              { Name: 'instance-state-name', Values: [...LIVE_STATES, ENDING_STATE] },
            ],
            NextToken,
          }),
        ),
      );
      for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        const into = inst.State?.Name === ENDING_STATE ? held : used;
        for (const g of inst.SecurityGroups ?? []) if (g.GroupId) into.add(g.GroupId);
      }
      NextToken = out.NextToken;
    } while (NextToken);
    return groups.map((g) => ({
      kind: GROUP_KIND,
      name: g.name,
      id: g.id,
      inUse: used.has(g.id),
      held: held.has(g.id),
    }));
  }

  /** Deletes a group by id, or by name when its create never answered. */
  async delete(resource: CloudResource): Promise<'deleted' | 'gone' | 'in use'> {
    if (resource.kind !== GROUP_KIND) throw new Error(`AWS makes no ${resource.kind}`);
    const ids = resource.id ? [resource.id] : await this.findByName(resource.name);
    let result: 'deleted' | 'gone' = 'gone';
    for (const id of ids) {
      const one = await this.deleteOne(id);
      if (one === 'in use') return one;
      if (one === 'deleted') result = one;
    }
    return result;
  }

  private async deleteOne(id: string): Promise<'deleted' | 'gone' | 'in use'> {
    const { clock, signal } = this.ctx;
    const started = clock.now();
    for (let wait = FIRST_WAIT_MS; ; wait = Math.min(wait * 2, LONGEST_WAIT_MS)) {
      try {
        await this.call('ec2:DeleteSecurityGroup', () =>
          this.ec2.send(new DeleteSecurityGroupCommand({ GroupId: id })),
        );
        return 'deleted';
      } catch (err) {
        if (err instanceof CloudError && err.code === 'InvalidGroup.NotFound') return 'gone';
        if (!(err instanceof CloudError && err.code === 'DependencyViolation')) throw err;
        if (clock.now() - started >= DELETE_PATIENCE_MS) return 'in use';
        this.ctx.log.debug(`security group ${id} is still in use; trying again in ${wait} ms`);
        await clock.sleep(wait, signal);
      }
    }
  }
}
