/**
 * CreateSecurityGroup, DescribeSecurityGroups, DeleteSecurityGroup, and what a launch reads to
 * place a group: DescribeSubnets and DescribeVpcs (EC2 API reference, read 2026-12-08:
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html and the
 * pages next to it).
 *
 * - A new group has no inbound rule and one outbound rule allowing all traffic ("Security groups
 *   for your VPC", https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html).
 *   Names are unique per VPC, case-insensitively: a second is `InvalidGroup.Duplicate`, "The
 *   security group '<name>' already exists for VPC '<vpc>'" (as users report it:
 *   https://github.com/hashicorp/terraform/issues/15428).
 * - DeleteSecurityGroup of a group that an instance still uses, even one shutting down, is
 *   `DependencyViolation`, "resource <sg> has a dependent object"
 *   (https://github.com/cloud-barista/cb-spider/issues/460: right after a termination).
 * - IAM (Service Authorization Reference, Amazon EC2): ec2:CreateSecurityGroup on the new
 *   security-group (with its request tags) and on the VPC; ec2:CreateTags on the group with
 *   `ec2:CreateAction` = CreateSecurityGroup when it is tagged at creation; ec2:DeleteSecurityGroup
 *   on the group with its tags as `ec2:ResourceTag/*`. The Describe actions are authorised on `*`.
 */
import { ACCOUNT_ID, SECURITY_GROUPS, SUBNETS, VPCS, VPC_ID } from '../catalog.js';
import { Ec2Error } from '../errors.js';
import { type AccessRequest, requestTagContext, resourceTagContext } from '../iam.js';
import type { Ec2Context } from '../routes.js';
import { type Ec2SecurityGroup, type Ec2Store, hex } from '../store.js';
import { type Params, anyMatch, dryRun, str, strList, structList, tagSet } from '../validation.js';
import { items, n, t } from '../xml.js';

const GROUP_ID = /^sg-[0-9a-z]+$/;
const arn = (region: string, type: string, id: string) => `arn:aws:ec2:${region}:${ACCOUNT_ID}:${type}/${id}`;

/** The tags of the one TagSpecification CreateSecurityGroup takes (resource type security-group). */
function groupTags(p: Params): Record<string, string> {
  let tags: Record<string, string> = {};
  for (const spec of structList(p, 'TagSpecification')) {
    const type = str(spec, 'ResourceType');
    if (type !== 'security-group') {
      throw new Ec2Error(
        'InvalidParameterValue',
        `'${type ?? ''}' is not a valid taggable resource type for this operation.`,
      );
    }
    tags = tagSet(spec);
  }
  return tags;
}

export function createSecurityGroup(store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const name = str(p, 'GroupName');
  if (!name) throw new Ec2Error('MissingParameter', 'The request must contain the parameter groupName');
  const description = str(p, 'GroupDescription');
  if (!description) throw new Ec2Error('MissingParameter', 'The request must contain the parameter groupDescription');
  if (name.length > 255 || name.toLowerCase().startsWith('sg-')) {
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${name}' for groupName. It cannot start with sg-.`);
  }
  const vpcId = str(p, 'VpcId') ?? VPC_ID;
  if (!VPCS[vpcId]) throw new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${vpcId}' does not exist`);
  const tags = groupTags(p);
  const requests: AccessRequest[] = [
    {
      action: 'ec2:CreateSecurityGroup',
      resource: arn(ctx.region, 'security-group', '*'),
      context: requestTagContext(tags),
    },
    { action: 'ec2:CreateSecurityGroup', resource: arn(ctx.region, 'vpc', vpcId) },
  ];
  if (Object.keys(tags).length > 0) {
    requests.push({
      action: 'ec2:CreateTags',
      resource: arn(ctx.region, 'security-group', '*'),
      context: { ...requestTagContext(tags), 'ec2:CreateAction': 'CreateSecurityGroup' },
    });
  }
  ctx.authorize(requests);
  dryRun(p);
  const taken = (g: { name: string; vpcId: string; region?: string }) =>
    g.vpcId === vpcId && g.name.toLowerCase() === name.toLowerCase() && (g.region ?? ctx.region) === ctx.region;
  if ((vpcId === VPC_ID && name.toLowerCase() === 'default') || [...store.securityGroups.values()].some(taken)) {
    throw new Ec2Error('InvalidGroup.Duplicate', `The security group '${name}' already exists for VPC '${vpcId}'`);
  }
  const group: Ec2SecurityGroup = {
    id: `sg-0${hex(16)}`,
    name,
    description,
    vpcId,
    region: ctx.region,
    tags,
    ingress: [],
    egress: [{ protocol: '-1', cidr: '0.0.0.0/0' }],
  };
  store.securityGroups.set(group.id, group);
  return (
    t('return', true) +
    t('groupId', group.id) +
    t('securityGroupArn', arn(ctx.region, 'security-group', group.id)) +
    items('tagSet', Object.entries(tags), ([k, v]) => t('key', k) + t('value', v))
  );
}

/** Every group the region shows: the default VPC's default group, and those made there. */
function groupsIn(store: Ec2Store, region: string): Ec2SecurityGroup[] {
  const defaults = Object.entries(SECURITY_GROUPS).map(([id, name]) => ({
    id,
    name,
    description: 'default VPC security group',
    vpcId: VPC_ID,
    region,
    tags: {},
    ingress: [{ protocol: '-1', cidr: id }],
    egress: [{ protocol: '-1', cidr: '0.0.0.0/0' }],
  }));
  return [...defaults, ...[...store.securityGroups.values()].filter((g) => g.region === region)];
}

const GROUP_FILTERS: Record<string, (g: Ec2SecurityGroup, values: string[]) => boolean> = {
  'group-id': (g, v) => anyMatch(v, g.id),
  'group-name': (g, v) => anyMatch(v, g.name),
  'vpc-id': (g, v) => anyMatch(v, g.vpcId),
  description: (g, v) => anyMatch(v, g.description),
  'tag-key': (g, v) => Object.keys(g.tags).some((k) => anyMatch(v, k)),
};

export function describeSecurityGroups(store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const all = groupsIn(store, ctx.region);
  const ids = strList(p, 'GroupId');
  for (const id of ids) {
    if (!GROUP_ID.test(id)) throw new Ec2Error('InvalidGroupId.Malformed', `Invalid id: "${id}" (expecting "sg-...")`);
    if (!all.some((g) => g.id === id))
      throw new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
  }
  const names = strList(p, 'GroupName');
  for (const name of names) {
    if (!all.some((g) => g.vpcId === VPC_ID && g.name === name)) {
      throw new Ec2Error(
        'InvalidGroup.NotFound',
        `The security group '${name}' does not exist in default VPC '${VPC_ID}'`,
      );
    }
  }
  let found = all.filter(
    (g) => (ids.length === 0 || ids.includes(g.id)) && (names.length === 0 || names.includes(g.name)),
  );
  for (const f of structList(p, 'Filter')) {
    const name = str(f, 'Name') ?? '';
    const values = strList(f, 'Value');
    let test = GROUP_FILTERS[name];
    if (name.startsWith('tag:')) {
      const key = name.slice(4);
      test = (g, v) => anyMatch(v, g.tags[key]);
    }
    if (!test) throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
    found = found.filter((g) => test(g, values));
  }
  const rule = (r: { protocol: string; cidr: string }) =>
    t('ipProtocol', r.protocol) +
    (r.cidr.startsWith('sg-')
      ? items('groups', [r.cidr], (id) => t('groupId', id) + t('userId', ACCOUNT_ID)) + items('ipRanges', [], () => '')
      : items('groups', [], () => '') + items('ipRanges', [r.cidr], (c) => t('cidrIp', c))) +
    items('ipv6Ranges', [], () => '') +
    items('prefixListIds', [], () => '');
  return items(
    'securityGroupInfo',
    found,
    (g) =>
      t('ownerId', ACCOUNT_ID) +
      t('groupId', g.id) +
      t('groupName', g.name) +
      t('groupDescription', g.description) +
      t('vpcId', g.vpcId) +
      t('securityGroupArn', arn(ctx.region, 'security-group', g.id)) +
      items('ipPermissions', g.ingress, rule) +
      items('ipPermissionsEgress', g.egress, rule) +
      items('tagSet', Object.entries(g.tags), ([k, v]) => t('key', k) + t('value', v)),
  );
}

export function deleteSecurityGroup(store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const id = str(p, 'GroupId');
  const name = str(p, 'GroupName');
  if (!id && !name)
    throw new Ec2Error('MissingParameter', 'The request must contain the parameter groupName or groupId');
  const mine = [...store.securityGroups.values()].filter((g) => g.region === ctx.region);
  const group = id ? mine.find((g) => g.id === id) : mine.find((g) => g.vpcId === VPC_ID && g.name === name);
  if (id && !GROUP_ID.test(id))
    throw new Ec2Error('InvalidGroupId.Malformed', `Invalid id: "${id}" (expecting "sg-...")`);
  if (id && SECURITY_GROUPS[id]) {
    ctx.authorize([{ action: 'ec2:DeleteSecurityGroup', resource: arn(ctx.region, 'security-group', id) }]);
    throw new Ec2Error('CannotDelete', `the specified group: "${id}" name: "default" cannot be deleted by a user`);
  }
  if (!group) {
    throw new Ec2Error(
      'InvalidGroup.NotFound',
      id
        ? `The security group '${id}' does not exist`
        : `The security group '${name}' does not exist in default VPC '${VPC_ID}'`,
    );
  }
  ctx.authorize([
    {
      action: 'ec2:DeleteSecurityGroup',
      resource: arn(ctx.region, 'security-group', group.id),
      context: resourceTagContext(group.tags),
    },
  ]);
  dryRun(p);
  if (store.all.some((i) => i.state !== 'terminated' && i.securityGroups.includes(group.id))) {
    throw new Ec2Error('DependencyViolation', `resource ${group.id} has a dependent object`);
  }
  store.securityGroups.delete(group.id);
  return t('return', true) + t('groupId', group.id);
}

/** DescribeSubnets: the sandbox's subnets, all in the default VPC, each in its own zone of the region. */
export function describeSubnets(_store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const ids = strList(p, 'SubnetId');
  for (const id of ids) {
    if (!SUBNETS[id]) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${id}' does not exist`);
  }
  const wanted = ids.length > 0 ? ids : Object.keys(SUBNETS);
  return items('subnetSet', wanted, (id) => {
    const s = SUBNETS[id]!;
    return (
      t('subnetId', id) +
      t('subnetArn', arn(ctx.region, 'subnet', id)) +
      t('state', 'available') +
      t('ownerId', ACCOUNT_ID) +
      t('vpcId', VPC_ID) +
      t('cidrBlock', `${s.cidrPrefix}.0/24`) +
      t('availableIpAddressCount', 251) +
      t('availabilityZone', `${ctx.region}${s.azSuffix}`) +
      t('defaultForAz', false) +
      t('mapPublicIpOnLaunch', false)
    );
  });
}

const VPC_FILTERS: Record<string, (id: string, values: string[]) => boolean> = {
  'vpc-id': (id, v) => anyMatch(v, id),
  'is-default': (id, v) => anyMatch(v, String(VPCS[id]!.isDefault)),
  state: (_id, v) => anyMatch(v, 'available'),
};

/** DescribeVpcs: the default VPC and the one without subnets. */
export function describeVpcs(_store: Ec2Store, p: Params, _ctx: Ec2Context): string {
  const ids = strList(p, 'VpcId');
  for (const id of ids) if (!VPCS[id]) throw new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${id}' does not exist`);
  let found = ids.length > 0 ? ids : Object.keys(VPCS);
  for (const f of structList(p, 'Filter')) {
    const name = str(f, 'Name') ?? '';
    const test = VPC_FILTERS[name];
    if (!test) throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
    found = found.filter((id) => test(id, strList(f, 'Value')));
  }
  return items(
    'vpcSet',
    found,
    (id) =>
      t('vpcId', id) +
      t('ownerId', ACCOUNT_ID) +
      t('state', 'available') +
      t('cidrBlock', VPCS[id]!.cidr) +
      t('instanceTenancy', 'default') +
      t('isDefault', VPCS[id]!.isDefault) +
      n('cidrBlockAssociationSet', ''),
  );
}
