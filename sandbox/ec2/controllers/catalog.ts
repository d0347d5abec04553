/**
 * DescribeImages and DescribeInstanceTypes: the catalogue (catalog.ts) as EC2 lists it, with its
 * filters ("DescribeImages", "DescribeInstanceTypes", EC2 API reference).
 */
import { IMAGES, INSTANCE_TYPES, type ImageSpec } from '../catalog.js';
import { Ec2Error } from '../errors.js';
import { AMI_ID, type Params, anyMatch, strList, str, structList } from '../validation.js';
import { imageXml, instanceTypeXml } from '../views.js';
import type { Ec2Store } from '../store.js';
import { items } from '../xml.js';

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
