/**
 * DescribeImages, DescribeInstanceTypes and DescribeInstanceTypeOfferings: the catalogue
 * (catalog.ts, offerings.ts) as EC2 lists it, with its filters ("DescribeImages",
 * "DescribeInstanceTypes", "DescribeInstanceTypeOfferings", EC2 API reference).
 */
import { IMAGES, INSTANCE_TYPES, type ImageSpec, SUBNETS } from '../catalog.js';
import { Ec2Error } from '../errors.js';
import { offered } from '../offerings.js';
import type { Ec2Context } from '../routes.js';
import { AMI_ID, type Params, anyMatch, dryRun, int, strList, str, structList } from '../validation.js';
import { imageXml, instanceTypeXml } from '../views.js';
import type { Ec2Store } from '../store.js';
import { items, t } from '../xml.js';

const IMAGE_FILTERS: Record<string, (i: ImageSpec, v: string[]) => boolean> = {
  name: (i, v) => anyMatch(v, i.name),
  'image-id': (i, v) => anyMatch(v, i.id),
  architecture: (i, v) => anyMatch(v, i.arch),
  state: (_i, v) => anyMatch(v, 'available'),
  'owner-id': (i, v) => anyMatch(v, i.ownerId),
  'owner-alias': (i, v) => anyMatch(v, i.ownerAlias),
  'root-device-type': (_i, v) => anyMatch(v, 'ebs'),
  'root-device-name': (i, v) => anyMatch(v, i.rootDeviceName),
  'virtualization-type': (_i, v) => anyMatch(v, 'hvm'),
  'image-type': (_i, v) => anyMatch(v, 'machine'),
  'is-public': (_i, v) => anyMatch(v, 'true'),
};

export function describeImages(_store: Ec2Store, p: Params): string {
  const ids = strList(p, 'ImageId');
  const owners = strList(p, 'Owner');
  for (const id of ids) {
    if (!AMI_ID.test(id)) throw new Ec2Error('InvalidAMIID.Malformed', `Invalid id: "${id}" (expecting "ami-...")`);
  }
  const missing = ids.filter((id) => !IMAGES.some((i) => i.id === id));
  if (missing.length > 0)
    throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${missing.join(', ')}]' does not exist`);
  let found = ids.length > 0 ? IMAGES.filter((i) => ids.includes(i.id)) : [...IMAGES];
  if (owners.length > 0) {
    found = found.filter((i) => owners.some((o) => o === i.ownerId || (o === 'amazon' && i.ownerAlias === 'amazon')));
  }
  for (const f of structList(p, 'Filter')) {
    const name = str(f, 'Name') ?? '';
    const test = IMAGE_FILTERS[name];
    if (!test) throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
    const values = strList(f, 'Value');
    found = found.filter((i) => test(i, values));
  }
  return items('imagesSet', found, imageXml);
}

export function describeInstanceTypes(_store: Ec2Store, p: Params): string {
  const names = strList(p, 'InstanceType');
  const unknown = names.filter((x) => !INSTANCE_TYPES[x]);
  if (unknown.length > 0) {
    throw new Ec2Error(
      'InvalidInstanceType',
      `The following supplied instance types do not exist: [${unknown.join(', ')}]`,
    );
  }
  let found = names.length > 0 ? names.map((x) => INSTANCE_TYPES[x]!) : Object.values(INSTANCE_TYPES);
  for (const f of structList(p, 'Filter')) {
    const name = str(f, 'Name') ?? '';
    const values = strList(f, 'Value');
    if (name === 'processor-info.supported-architecture') found = found.filter((x) => anyMatch(values, x.arch));
    else if (name === 'instance-type') found = found.filter((x) => anyMatch(values, x.name));
    else throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
  }
  return items('instanceTypeSet', found, instanceTypeXml);
}

const LOCATION_TYPES = ['region', 'availability-zone', 'availability-zone-id', 'outpost'] as const;

/**
 * The types offered in the caller's region (LocationType `region`, the default) or in each of its
 * zones (`availability-zone`; the fake's zones are its subnets' and offer what the region offers).
 * Filters `instance-type` and `location`, with wildcards; a type nobody offers simply matches
 * nothing. Paginated: MaxResults 5 to 1000, NextToken.
 */
export function describeInstanceTypeOfferings(_store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const locationType = str(p, 'LocationType') ?? 'region';
  if (!(LOCATION_TYPES as readonly string[]).includes(locationType)) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value (${locationType}) for parameter locationType is invalid. Valid values: ${LOCATION_TYPES.join(', ')}`,
    );
  }
  const maxResults = int(str(p, 'MaxResults'), 'MaxResults');
  if (maxResults !== undefined && (maxResults < 5 || maxResults > 1000)) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
    );
  }
  dryRun(p);
  const locations =
    locationType === 'region'
      ? [ctx.region]
      : locationType === 'availability-zone'
        ? [...new Set(Object.values(SUBNETS).map((s) => `${ctx.region}${s.azSuffix}`))]
        : [];
  let found = locations.flatMap((location) =>
    Object.keys(INSTANCE_TYPES)
      .filter((type) => offered(ctx.region, type))
      .map((instanceType) => ({ instanceType, location })),
  );
  for (const f of structList(p, 'Filter')) {
    const name = str(f, 'Name') ?? '';
    const values = strList(f, 'Value');
    if (name === 'instance-type') found = found.filter((o) => anyMatch(values, o.instanceType));
    else if (name === 'location') found = found.filter((o) => anyMatch(values, o.location));
    else throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
  }
  const start = Number(str(p, 'NextToken') ?? '0');
  if (!Number.isInteger(start) || start < 0 || start > found.length)
    throw new Ec2Error('InvalidNextToken', 'The specified token is invalid');
  const size = maxResults ?? 1000;
  const next = start + size < found.length ? String(start + size) : undefined;
  return (
    items(
      'instanceTypeOfferingSet',
      found.slice(start, start + size),
      (o) => t('instanceType', o.instanceType) + t('locationType', locationType) + t('location', o.location),
    ) + t('nextToken', next)
  );
}
