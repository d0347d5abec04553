/**
 * RunInstances: idempotency by client token, DryRun, the checks (validation.ts), then one
 * reservation of `pending` instances that boot after the boot delay ("RunInstances" and
 * "Ensure idempotency in Amazon EC2 API requests", EC2 API reference).
 */
import type { Ec2Instance, Ec2Volume } from '../../ec2.js';
import { ACCOUNT_ID, INSTANCE_PROFILE_ROLES } from '../catalog.js';
import { Ec2Error } from '../errors.js';
import { type AccessRequest, requestTagContext } from '../iam.js';
import { boot } from '../lifecycle.js';
import { UNSUPPORTED_CONFIGURATION, offered } from '../offerings.js';
import type { Ec2Context } from '../routes.js';
import { type Ec2Store, hex, newId } from '../store.js';
import {
  type LaunchSpec,
  type Params,
  dryRun,
  launchCounts,
  launchFingerprint,
  launchSpec,
  required,
  str,
} from '../validation.js';
import { reservationXml } from '../views.js';

export function runInstances(store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const imageId = required(p, 'ImageId');
  const { maxCount } = launchCounts(p);
  const clientToken = str(p, 'ClientToken');
  const fingerprint = launchFingerprint(p);
  if (clientToken !== undefined) {
    if (clientToken.length > 64)
      throw new Ec2Error('InvalidParameterValue', 'The client token must be 64 characters or fewer');
    const prior = store.byToken.get(`${ctx.region}/${clientToken}`);
    if (prior) {
      if (prior.fingerprint !== fingerprint) {
        throw new Ec2Error(
          'IdempotentParameterMismatch',
          'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).',
        );
      }
      return reservationXml(
        prior.reservationId,
        prior.instanceIds.map((id) => store.byId.get(id)!),
        (id) => store.groupName(id),
      );
    }
  }
  const spec = launchSpec(
    p,
    imageId,
    (type) => store.spotPrice(type),
    (id) => store.groupVpc(id, ctx.region),
  );
  ctx.authorize(launchRequests(spec, ctx.region));
  dryRun(p);
  if (!offered(ctx.region, spec.instanceType)) throw new Ec2Error('Unsupported', UNSUPPORTED_CONFIGURATION);
  if (spec.spot) spotServiceLinkedRole(store, ctx);

  const reservationId = newId('r');
  const created: Ec2Instance[] = [];
  for (let i = 0; i < maxCount; i++) {
    const inst = newInstance(spec, {
      reservationId,
      launchIndex: i,
      region: ctx.region,
      clientToken,
      ordinal: store.all.length + i,
    });
    store.add(inst);
    created.push(inst);
    store.timers.later(store.settings.bootDelayMs, () => boot(store, inst));
  }
  if (clientToken !== undefined) {
    store.byToken.set(`${ctx.region}/${clientToken}`, {
      fingerprint,
      reservationId,
      instanceIds: created.map((i) => i.id),
    });
  }
  return reservationXml(reservationId, created, (id) => store.groupName(id));
}

/**
 * What IAM authorises for one RunInstances ("Actions, resources, and condition keys for Amazon
 * EC2", https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2.html, and
 * "Example policies to control access the Amazon EC2 API: Launch instances",
 * https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ExamplePolicies_EC2.html, read 2026-12-08):
 * ec2:RunInstances on each resource it creates (the instance, its volumes, its network interface,
 * a spot request), each with the tags the request gives that resource type as `aws:RequestTag/*`
 * and `aws:TagKeys` (the stricter reading: a resource sees only its own TagSpecification), and on
 * each it uses (the image, which has no account in its ARN, the subnet, every security group, the
 * VPC default group when none is named); ec2:CreateTags on each resource tagged at launch, with
 * `ec2:CreateAction` = RunInstances ("Grant permission to tag Amazon EC2 resources during
 * creation", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html);
 * iam:PassRole on an instance profile's role, with `iam:PassedToService` = ec2.amazonaws.com.
 */
function launchRequests(spec: LaunchSpec, region: string): AccessRequest[] {
  const arn = (type: string, id: string) => `arn:aws:ec2:${region}:${ACCOUNT_ID}:${type}/${id}`;
  const created = ['instance', 'volume', 'network-interface', ...(spec.spot ? ['spot-instances-request'] : [])];
  const requests: AccessRequest[] = created.map((type) => ({
    action: 'ec2:RunInstances',
    resource: arn(type, '*'),
    context: requestTagContext(spec.tagsFor[type] ?? {}),
  }));
  requests.push({ action: 'ec2:RunInstances', resource: `arn:aws:ec2:${region}::image/${spec.image.id}` });
  requests.push({ action: 'ec2:RunInstances', resource: arn('subnet', spec.subnetId) });
  for (const group of spec.securityGroups)
    requests.push({ action: 'ec2:RunInstances', resource: arn('security-group', group) });
  for (const type of created) {
    const tags = spec.tagsFor[type] ?? {};
    if (Object.keys(tags).length === 0) continue;
    requests.push({
      action: 'ec2:CreateTags',
      resource: arn(type, '*'),
      context: { ...requestTagContext(tags), 'ec2:CreateAction': 'RunInstances' },
    });
  }
  if (spec.iamInstanceProfile) {
    const role = INSTANCE_PROFILE_ROLES[spec.iamInstanceProfile.arn] ?? 'unknown';
    requests.push({
      action: 'iam:PassRole',
      resource: `arn:aws:iam::${ACCOUNT_ID}:role/${role}`,
      context: { 'iam:PassedToService': 'ec2.amazonaws.com' },
    });
  }
  return requests;
}

/**
 * A spot launch needs the account's AWSServiceRoleForEC2Spot role; EC2 creates it on the first
 * one when the caller may, and otherwise refuses with 403
 * `AuthFailure.ServiceLinkedRoleCreationNotPermitted` (the message as users report it:
 * https://github.com/determined-ai/determined/issues/1830, 2021-01-21).
 */
function spotServiceLinkedRole(store: Ec2Store, ctx: Ec2Context): void {
  if (store.spotServiceLinkedRole) return;
  let permitted = store.settings.spotRoleCreation;
  try {
    ctx.authorize([
      {
        action: 'iam:CreateServiceLinkedRole',
        resource: `arn:aws:iam::${ACCOUNT_ID}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot`,
        context: { 'iam:AWSServiceName': 'spot.amazonaws.com' },
      },
    ]);
  } catch {
    permitted = false;
  }
  if (!permitted) {
    throw new Ec2Error(
      'AuthFailure.ServiceLinkedRoleCreationNotPermitted',
      'The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances.',
      403,
    );
  }
  store.spotServiceLinkedRole = true;
}

/** One `pending` instance with its volumes, network interface and spot request. */
function newInstance(
  spec: LaunchSpec,
  at: { reservationId: string; launchIndex: number; region: string; clientToken: string | undefined; ordinal: number },
): Ec2Instance {
  const { tagsFor, spot } = spec;
  const id = newId('i');
  const now = new Date();
  const volumes: Ec2Volume[] = spec.volumes.map((v) => ({
    ...v,
    id: newId('vol'),
    instanceId: id,
    state: 'in-use' as const,
    tags: { ...(tagsFor.volume ?? {}) },
    attachTime: now,
  }));
  const networkInterface = {
    id: newId('eni'),
    macAddress: `0a:${hex(2)}:${hex(2)}:${hex(2)}:${hex(2)}:${hex(2)}`,
    tags: { ...(tagsFor['network-interface'] ?? {}) },
  };
  return {
    id,
    reservationId: at.reservationId,
    amiLaunchIndex: at.launchIndex,
    region: at.region,
    imageId: spec.image.id,
    instanceType: spec.instanceType,
    type: spec.instanceType,
    architecture: spec.type.arch,
    state: 'pending',
    stateTransitionReason: '',
    launchTime: now,
    subnetId: spec.subnetId,
    availabilityZone: `${at.region}${spec.subnet.azSuffix}`,
    privateIp: `${spec.subnet.cidrPrefix}.${10 + (at.ordinal % 240)}`,
    securityGroups: spec.securityGroups,
    tags: { ...(tagsFor.instance ?? {}) },
    market: spot ? 'spot' : 'on-demand',
    spot: spot !== undefined,
    ...(spot
      ? {
          spotRequest: {
            ...spot.request,
            id: `sir-${hex(8)}`,
            instanceId: id,
            state: 'active' as const,
            tags: { ...(tagsFor['spot-instances-request'] ?? {}) },
          },
          spotOptions: spot.options,
        }
      : {}),
    userData: spec.userData,
    userDataBytes: spec.userDataBytes,
    shutdownBehavior: spec.shutdownBehavior,
    metadataOptions: spec.metadataOptions,
    ...(spec.iamInstanceProfile ? { iamInstanceProfile: spec.iamInstanceProfile } : {}),
    volumes,
    blockDevices: volumes,
    networkInterface,
    networkInterfaceTags: networkInterface.tags,
    ...(at.clientToken !== undefined ? { clientToken: at.clientToken } : {}),
    rootDeviceName: spec.image.rootDeviceName,
    get name(): string | undefined {
      return this.tags.Name;
    },
    console(): string {
      return this.machine ? this.machine.console() : '';
    },
  };
}
