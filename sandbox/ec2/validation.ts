/**
 * EC2's parameter checks: the Query protocol's parameters decoded into a tree, typed reads that
 * answer EC2's own errors, and the checks of each part of a RunInstances request, in the order
 * EC2 applies them (the first failing check is the error the caller sees).
 */
import zlib from 'node:zlib';
import type { Ec2Instance, Ec2Volume, SpotRequest } from '../ec2.js';
import {
  DEFAULT_SUBNET,
  IMAGES,
  INSTANCE_PROFILES,
  INSTANCE_TYPES,
  type ImageSpec,
  type InstanceTypeSpec,
  SECURITY_GROUPS,
  SUBNETS,
  TAGGABLE,
  USER_DATA_LIMIT,
  VOLUME_TYPES,
  VPC_ID,
} from './catalog.js';
import { Ec2Error } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Query parameters: `A.1.B.2.C=v` becomes { A: { 1: { B: { 2: { C: 'v' } } } } }

export type Params = { [key: string]: Params | string };

export function nest(form: URLSearchParams): Params {
  const root: Params = {};
  for (const [key, value] of form) {
    const parts = key.split('.');
    let node = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i]!;
      const next = node[p];
      if (typeof next === 'object') node = next;
      else {
        const created: Params = {};
        node[p] = created;
        node = created;
      }
    }
    const last = parts[parts.length - 1]!;
    if (typeof node[last] !== 'object') node[last] = value;
  }
  return root;
}

export const str = (p: Params | undefined, key: string): string | undefined => {
  const v = p?.[key];
  return typeof v === 'string' ? v : undefined;
};
export const sub = (p: Params | undefined, key: string): Params | undefined => {
  const v = p?.[key];
  return typeof v === 'object' ? v : undefined;
};
/** A query list (`Key.1`, `Key.2`, ...), in index order. */
export function list(p: Params | undefined, key: string): Array<Params | string> {
  const node = sub(p, key);
  if (!node) return [];
  return Object.keys(node)
    .map((k) => {
      if (!/^[1-9]\d*$/.test(k))
        throw new Ec2Error('InvalidParameterValue', `The parameter ${key}.${k} is not recognized`);
      return Number(k);
    })
    .sort((a, b) => a - b)
    .map((i) => node[String(i)]!);
}
export const strList = (p: Params | undefined, key: string): string[] =>
  list(p, key).map((v) => {
    if (typeof v !== 'string') throw new Ec2Error('InvalidParameterValue', `Invalid value for ${key}`);
    return v;
  });
export const structList = (p: Params | undefined, key: string): Params[] =>
  list(p, key).map((v) => {
    if (typeof v === 'string') throw new Ec2Error('InvalidParameterValue', `Invalid value '${v}' for ${key}`);
    return v;
  });

export function bool(v: string | undefined, name: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new Ec2Error('InvalidParameterValue', `Invalid value '${v}' for ${name}. Must be a boolean`);
}
export function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v))
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${v}' for ${name}. Must be an integer`);
  return Number(v);
}
export function required(p: Params, key: string): string {
  const v = str(p, key);
  if (v === undefined || v === '')
    throw new Ec2Error('MissingParameter', `The request must contain the parameter ${key}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Ids and filters

export const INSTANCE_ID = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/;
export const AMI_ID = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;

/** A filter value: `*` matches any run of characters, `?` one character (DescribeInstances, Filter). */
function wildcard(pattern: string): RegExp {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}
export const anyMatch = (values: string[], actual: string | undefined): boolean =>
  actual !== undefined && values.some((v) => wildcard(v).test(actual));

export function dryRun(p: Params): void {
  if (bool(str(p, 'DryRun'), 'DryRun')) {
    throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
  }
}

// ---------------------------------------------------------------------------------------------
// RunInstances, part by part

/** What a valid RunInstances request asks for, once every check passed. */
export interface LaunchSpec {
  image: ImageSpec;
  instanceType: string;
  type: InstanceTypeSpec;
  subnetId: string;
  subnet: { azSuffix: string; cidrPrefix: string };
  securityGroups: string[];
  iamInstanceProfile?: { arn: string; id: string };
  userData: string;
  userDataBytes: number;
  shutdownBehavior: 'stop' | 'terminate';
  metadataOptions: Ec2Instance['metadataOptions'];
  volumes: VolumePlan[];
  spot?: SpotPlan;
  /** Tags per resource type (`instance`, `volume`, `network-interface`, `spot-instances-request`). */
  tagsFor: Record<string, Record<string, string>>;
}

export type VolumePlan = Omit<Ec2Volume, 'id' | 'instanceId' | 'state' | 'tags' | 'attachTime'>;
export interface SpotPlan {
  request: Omit<SpotRequest, 'id' | 'instanceId' | 'state' | 'tags'>;
  options: NonNullable<Ec2Instance['spotOptions']>;
}

/** MinCount and MaxCount; the launch creates MaxCount instances (the fake never runs short). */
export function launchCounts(p: Params): { minCount: number; maxCount: number } {
  const minCount = int(required(p, 'MinCount'), 'MinCount')!;
  const maxCount = int(required(p, 'MaxCount'), 'MaxCount')!;
  if (minCount < 1)
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${minCount}' for minCount. Must be greater than 0`);
  if (maxCount < 1)
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${maxCount}' for maxCount. Must be greater than 0`);
  if (minCount > maxCount) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${maxCount}' for maxCount. Must be greater than or equal to minCount`,
    );
  }
  return { minCount, maxCount };
}

/**
 * The checks after idempotency and DryRun, in EC2's order. `spotPrice` is the type's current
 * spot price, for a MaxPrice below it.
 */
export function launchSpec(
  p: Params,
  imageId: string,
  spotPrice: (type: string) => number,
  groupVpc: (id: string) => string | undefined = (id) => (SECURITY_GROUPS[id] ? VPC_ID : undefined),
): LaunchSpec {
  const image = launchImage(imageId);
  const { instanceType, type } = launchType(p, image);
  const network = launchNetwork(p, groupVpc);
  const iamInstanceProfile = instanceProfile(p);
  const userData = decodeUserData(str(p, 'UserData'));
  const shutdownBehavior = str(p, 'InstanceInitiatedShutdownBehavior') ?? 'stop';
  if (shutdownBehavior !== 'stop' && shutdownBehavior !== 'terminate') {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${shutdownBehavior}' for InstanceInitiatedShutdownBehavior`,
    );
  }
  const metadataOptions = launchMetadataOptions(sub(p, 'MetadataOptions'), image);
  const volumes = planVolumes(p, image);
  const spot = planSpot(sub(p, 'InstanceMarketOptions'), () => spotPrice(instanceType));
  const tagsFor = tagSpecifications(p, spot !== undefined);
  return {
    image,
    instanceType,
    type,
    ...network,
    ...(iamInstanceProfile ? { iamInstanceProfile } : {}),
    ...userData,
    shutdownBehavior,
    metadataOptions,
    volumes,
    ...(spot ? { spot } : {}),
    tagsFor,
  };
}

function launchImage(imageId: string): ImageSpec {
  if (!AMI_ID.test(imageId))
    throw new Ec2Error('InvalidAMIID.Malformed', `Invalid id: "${imageId}" (expecting "ami-...")`);
  const image = IMAGES.find((i) => i.id === imageId);
  if (!image) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
  return image;
}

function launchType(p: Params, image: ImageSpec): { instanceType: string; type: InstanceTypeSpec } {
  // EC2's default when InstanceType is left out is m1.small, which the sandbox (like most regions) does not offer.
  const instanceType = str(p, 'InstanceType') ?? 'm1.small';
  const type = INSTANCE_TYPES[instanceType];
  if (!type) throw new Ec2Error('InvalidParameterValue', `Invalid value '${instanceType}' for InstanceType.`);
  if (type.arch !== image.arch) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `The architecture '${type.arch}' of the specified instance type does not match the architecture '${image.arch}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.`,
    );
  }
  return { instanceType, type };
}

/**
 * The subnet and groups. A group of another VPC than the subnet's is refused with EC2's
 * `InvalidParameter`, "Security group <sg> and subnet <subnet> belong to different networks." (as
 * users report it: https://github.com/QT-DevOps/DevOpsIssues/issues/256).
 */
function launchNetwork(
  p: Params,
  groupVpc: (id: string) => string | undefined,
): Pick<LaunchSpec, 'subnetId' | 'subnet' | 'securityGroups'> {
  const subnetId = str(p, 'SubnetId') ?? DEFAULT_SUBNET;
  const subnet = SUBNETS[subnetId];
  if (!subnet) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${subnetId}' does not exist`);

  const groupIds = strList(p, 'SecurityGroupId');
  const groupNames = strList(p, 'SecurityGroup');
  if (groupNames.length > 0 && str(p, 'SubnetId') !== undefined) {
    throw new Ec2Error(
      'InvalidParameterCombination',
      'The parameter groupName cannot be used with the parameter subnet',
    );
  }
  for (const g of groupIds) {
    const vpc = groupVpc(g);
    if (!vpc)
      throw new Ec2Error('InvalidGroup.NotFound', `The security group '${g}' does not exist in VPC '${VPC_ID}'`);
    if (vpc !== VPC_ID) {
      throw new Ec2Error(
        'InvalidParameter',
        `Security group ${g} and subnet ${subnetId} belong to different networks.`,
      );
    }
  }
  for (const g of groupNames) {
    if (!Object.values(SECURITY_GROUPS).includes(g)) {
      throw new Ec2Error(
        'InvalidGroup.NotFound',
        `The security group '${g}' does not exist in default VPC '${VPC_ID}'`,
      );
    }
  }
  const securityGroups = [
    ...groupIds,
    ...groupNames.map((name) => Object.keys(SECURITY_GROUPS).find((id) => SECURITY_GROUPS[id] === name)!),
  ];
  if (securityGroups.length === 0) securityGroups.push('sg-0default');
  return { subnetId, subnet, securityGroups };
}

function instanceProfile(p: Params): { arn: string; id: string } | undefined {
  const profileSpec = sub(p, 'IamInstanceProfile');
  let iamInstanceProfile: { arn: string; id: string } | undefined;
  if (profileSpec) {
    const name = str(profileSpec, 'Name');
    const arn = str(profileSpec, 'Arn');
    if (name !== undefined) {
      iamInstanceProfile = INSTANCE_PROFILES[name];
      if (!iamInstanceProfile) {
        throw new Ec2Error(
          'InvalidParameterValue',
          `Value (${name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name`,
        );
      }
    }
    if (arn !== undefined) {
      const byArn = Object.values(INSTANCE_PROFILES).find((x) => x.arn === arn);
      if (!byArn || (iamInstanceProfile && iamInstanceProfile !== byArn)) {
        throw new Ec2Error(
          'InvalidParameterValue',
          `Value (${arn}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN`,
        );
      }
      iamInstanceProfile = byArn;
    }
  }
  return iamInstanceProfile;
}

/** Base64 user data, at most 16 KB decoded; gzip is undone, as cloud-init does. */
function decodeUserData(rawUserData: string | undefined): { userData: string; userDataBytes: number } {
  let userDataBytes = 0;
  let userData = '';
  if (rawUserData !== undefined && rawUserData !== '') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(rawUserData) || rawUserData.length % 4 !== 0) {
      throw new Ec2Error('InvalidParameterValue', 'Invalid BASE64 encoding of user data.');
    }
    const decoded = Buffer.from(rawUserData, 'base64');
    userDataBytes = decoded.length;
    if (decoded.length > USER_DATA_LIMIT) {
      throw new Ec2Error('InvalidParameterValue', `User data is limited to ${USER_DATA_LIMIT} bytes`);
    }
    userData = (decoded[0] === 0x1f && decoded[1] === 0x8b ? zlib.gunzipSync(decoded) : decoded).toString('utf8');
  }
  return { userData, userDataBytes };
}

/** IMDS options; an image that declares `imdsSupport: v2.0` defaults to tokens required and two hops. */
function launchMetadataOptions(meta: Params | undefined, image: ImageSpec): Ec2Instance['metadataOptions'] {
  const httpTokens = str(meta, 'HttpTokens') ?? (image.imdsSupport === 'v2.0' ? 'required' : 'optional');
  if (httpTokens !== 'optional' && httpTokens !== 'required') {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${httpTokens}' for HttpTokens. Valid values are optional, required.`,
    );
  }
  const hopLimit =
    int(str(meta, 'HttpPutResponseHopLimit'), 'HttpPutResponseHopLimit') ?? (image.imdsSupport === 'v2.0' ? 2 : 1);
  if (hopLimit < 1 || hopLimit > 64) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `The HttpPutResponseHopLimit '${hopLimit}' is invalid. Specify a value from 1 to 64.`,
    );
  }
  const httpEndpoint = str(meta, 'HttpEndpoint') ?? 'enabled';
  if (httpEndpoint !== 'enabled' && httpEndpoint !== 'disabled') {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${httpEndpoint}' for HttpEndpoint. Valid values are enabled, disabled.`,
    );
  }
  return { httpTokens, httpPutResponseHopLimit: hopLimit, httpEndpoint };
}

/** Block devices: the image's root, possibly resized, plus any extra volume asked for. */
function planVolumes(p: Params, image: ImageSpec): VolumePlan[] {
  const plan: VolumePlan[] = [
    {
      deviceName: image.rootDeviceName,
      size: image.snapshotSizeGiB,
      volumeType: image.volumeType,
      deleteOnTermination: true,
      encrypted: false,
      snapshotId: image.snapshotId,
      root: true,
    },
  ];
  const seenDevices = new Set<string>();
  for (const m of structList(p, 'BlockDeviceMapping')) {
    const deviceName = str(m, 'DeviceName');
    if (!deviceName)
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter BlockDeviceMapping.DeviceName');
    if (!/^(\/dev\/)?(sd[a-z]\d*|xvd[a-z]{1,2}\d*|nvme\d+n\d+)$/.test(deviceName)) {
      throw new Ec2Error('InvalidBlockDeviceMapping', `Invalid device name ${deviceName}`);
    }
    if (seenDevices.has(deviceName)) {
      throw new Ec2Error(
        'InvalidBlockDeviceMapping',
        `The device '${deviceName}' is used in more than one block-device mapping`,
      );
    }
    seenDevices.add(deviceName);
    const isRoot = deviceName === image.rootDeviceName;
    if (str(m, 'NoDevice') !== undefined) {
      if (isRoot)
        throw new Ec2Error(
          'InvalidBlockDeviceMapping',
          `The device '${deviceName}' is the root device and cannot be suppressed`,
        );
      continue;
    }
    if (str(m, 'VirtualName') !== undefined) continue; // instance store: not a billed EBS volume
    const ebs = sub(m, 'Ebs');
    if (!ebs) continue;
    const entry = ebsVolume(ebs, deviceName, isRoot ? image : undefined);
    if (isRoot) plan[0] = entry;
    else plan.push(entry);
  }
  return plan;
}

/** One `Ebs` mapping; `rootImage` when it maps the image's root device (its snapshot, its minimum size). */
function ebsVolume(ebs: Params, deviceName: string, rootImage: ImageSpec | undefined): VolumePlan {
  const isRoot = rootImage !== undefined;
  const size = int(str(ebs, 'VolumeSize'), 'VolumeSize');
  const volumeType = str(ebs, 'VolumeType') ?? rootImage?.volumeType ?? 'gp2';
  const limits = VOLUME_TYPES[volumeType];
  if (!limits) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value (${volumeType}) for parameter volumeType is invalid. Valid values: standard, io1, io2, gp2, sc1, st1, gp3.`,
    );
  }
  const deleteOnTermination = bool(str(ebs, 'DeleteOnTermination'), 'DeleteOnTermination') ?? true;
  const encrypted = bool(str(ebs, 'Encrypted'), 'Encrypted') ?? false;
  const snapshotId = str(ebs, 'SnapshotId') ?? rootImage?.snapshotId;
  const snapshotSize = rootImage?.snapshotSizeGiB;
  if (snapshotId !== undefined && !isRoot) {
    throw new Ec2Error('InvalidSnapshot.NotFound', `The snapshot '${snapshotId}' does not exist.`);
  }
  if (size === undefined && snapshotId === undefined) {
    throw new Ec2Error(
      'InvalidBlockDeviceMapping',
      `Either snapshot ID or volume size must be provided for: ${deviceName}`,
    );
  }
  const finalSize = size ?? snapshotSize!;
  if (snapshotSize !== undefined && finalSize < snapshotSize) {
    throw new Ec2Error(
      'InvalidBlockDeviceMapping',
      `Volume of size ${finalSize}GB is smaller than snapshot '${snapshotId}', expect size >= ${snapshotSize}GB`,
    );
  }
  if (finalSize < limits[0] || finalSize > limits[1]) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Volume of ${finalSize}GiB is outside the range allowed for volume type ${volumeType}: ${limits[0]}-${limits[1]}GiB.`,
    );
  }
  return {
    deviceName,
    size: finalSize,
    volumeType,
    deleteOnTermination,
    encrypted,
    root: isRoot,
    ...(snapshotId ? { snapshotId } : {}),
  };
}

/** InstanceMarketOptions: a spot request, or undefined for on-demand. */
function planSpot(market: Params | undefined, currentPrice: () => number): SpotPlan | undefined {
  if (!market) return undefined;
  const marketType = str(market, 'MarketType');
  if (marketType !== 'spot') {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${marketType ?? ''}' for MarketType. Valid values: spot`,
    );
  }
  const so = sub(market, 'SpotOptions');
  const spotType = str(so, 'SpotInstanceType') ?? 'one-time';
  if (spotType !== 'one-time' && spotType !== 'persistent') {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${spotType}' for SpotInstanceType. Valid values: one-time, persistent`,
    );
  }
  const behavior = str(so, 'InstanceInterruptionBehavior') ?? 'terminate';
  if (behavior !== 'terminate' && behavior !== 'stop' && behavior !== 'hibernate') {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${behavior}' for InstanceInterruptionBehavior. Valid values: hibernate, stop, terminate`,
    );
  }
  if (spotType === 'one-time' && behavior !== 'terminate') {
    throw new Ec2Error(
      'InvalidParameterCombination',
      `The instance interruption behavior '${behavior}' is supported only for persistent Spot Instance requests.`,
    );
  }
  const maxPriceRaw = str(so, 'MaxPrice');
  const maxPrice = maxPriceRaw === undefined ? undefined : checkMaxPrice(maxPriceRaw, currentPrice());
  return {
    request: { type: spotType, interruptionBehavior: behavior, ...(maxPrice !== undefined ? { maxPrice } : {}) },
    options: {
      spotInstanceType: spotType,
      instanceInterruptionBehavior: behavior,
      ...(maxPriceRaw !== undefined ? { maxPrice: maxPriceRaw } : {}),
    },
  };
}

function checkMaxPrice(maxPriceRaw: string, current: number): number {
  const maxPrice = Number(maxPriceRaw);
  if (maxPriceRaw.trim() === '' || !Number.isFinite(maxPrice) || maxPrice <= 0) {
    throw new Ec2Error('InvalidParameterValue', `The value '${maxPriceRaw}' is invalid for parameter MaxPrice`);
  }
  if (maxPrice < current) {
    throw new Ec2Error(
      'SpotMaxPriceTooLow',
      `Your Spot request price of ${maxPriceRaw} is lower than the minimum required Spot request fulfillment price of ${current}.`,
    );
  }
  return maxPrice;
}

/** TagSpecification: tags per resource type, each type at most once (Tag restrictions, EC2 User Guide). */
function tagSpecifications(p: Params, spot: boolean): Record<string, Record<string, string>> {
  const tagsFor: Record<string, Record<string, string>> = {};
  for (const spec of structList(p, 'TagSpecification')) {
    const resourceType = str(spec, 'ResourceType');
    if (!resourceType) throw new Ec2Error('InvalidParameterValue', 'Tag specification resource type must have a value');
    if (!TAGGABLE.has(resourceType)) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `'${resourceType}' is not a valid taggable resource type for this operation.`,
      );
    }
    if (resourceType === 'spot-instances-request' && !spot) {
      throw new Ec2Error(
        'InvalidParameterValue',
        "'spot-instances-request' is not a valid taggable resource type for this operation.",
      );
    }
    if (tagsFor[resourceType]) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `The resource type '${resourceType}' is specified in more than one tag specification.`,
      );
    }
    tagsFor[resourceType] = tagSet(spec);
  }
  return tagsFor;
}

export function tagSet(spec: Params): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const tag of structList(spec, 'Tag')) {
    const key = str(tag, 'Key');
    const value = str(tag, 'Value') ?? '';
    if (key === undefined || key === '') throw new Ec2Error('InvalidParameterValue', 'Tag key must have a value');
    if (key.length > 128)
      throw new Ec2Error('InvalidParameterValue', `Tag key exceeds the maximum length of 128 characters`);
    if (value.length > 256)
      throw new Ec2Error('InvalidParameterValue', `Tag value exceeds the maximum length of 256 characters`);
    if (key.toLowerCase().startsWith('aws:')) {
      throw new Ec2Error('InvalidParameterValue', "Tag keys starting with 'aws:' are reserved for internal use");
    }
    if (key in tags) throw new Ec2Error('InvalidParameterValue', `Duplicate tag key '${key}' specified.`);
    tags[key] = value;
  }
  if (Object.keys(tags).length > 50)
    throw new Ec2Error('TagLimitExceeded', 'The maximum number of tags for a resource is 50.');
  return tags;
}

/** The request as compared for idempotency: every parameter but the protocol's and the token. */
export function launchFingerprint(p: Params): string {
  const out: Params = {};
  for (const k of Object.keys(p).sort()) if (!['Action', 'Version', 'ClientToken'].includes(k)) out[k] = p[k]!;
  return JSON.stringify(out);
}
