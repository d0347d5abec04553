/**
 * DescribeInstances, TerminateInstances and GetConsoleOutput ("DescribeInstances",
 * "TerminateInstances", "GetConsoleOutput", EC2 API reference).
 */
import type { Ec2Instance } from '../../ec2.js';
import { ACCOUNT_ID, INSTANCE_TYPES, STATE_CODES, VPC_ID } from '../catalog.js';
import { Ec2Error } from '../errors.js';
import { type AccessRequest, resourceTagContext } from '../iam.js';
import { terminate } from '../lifecycle.js';
import type { Ec2Context } from '../routes.js';
import type { Ec2Store } from '../store.js';
import {
  INSTANCE_ID,
  type Params,
  anyMatch,
  bool,
  dryRun,
  int,
  required,
  str,
  strList,
  structList,
} from '../validation.js';
import { reservationXml } from '../views.js';
import { items, n, t } from '../xml.js';

/** The instances named, each visible in the region; EC2 names every one it cannot find. */
export function findInstances(store: Ec2Store, ids: string[], region: string): Ec2Instance[] {
  for (const id of ids) {
    if (!INSTANCE_ID.test(id))
      throw new Ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${id}" (expecting "i-...")`);
  }
  const missing = ids.filter((id) => {
    const inst = store.byId.get(id);
    return !inst || !store.visible(inst, region);
  });
  if (missing.length === 1)
    throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${missing[0]}' does not exist`);
  if (missing.length > 1)
    throw new Ec2Error('InvalidInstanceID.NotFound', `The instance IDs '${missing.join(', ')}' do not exist`);
  return [...new Set(ids)].map((id) => store.byId.get(id)!);
}

/** What IAM is asked for an action on existing instances: each one's ARN, with its tags as `ec2:ResourceTag/*`. */
function onInstances(action: string, insts: Ec2Instance[], region: string): AccessRequest[] {
  return insts.map((inst) => ({
    action: `ec2:${action}`,
    resource: `arn:aws:ec2:${region}:${ACCOUNT_ID}:instance/${inst.id}`,
    context: resourceTagContext(inst.tags),
  }));
}

const INSTANCE_FILTERS: Record<string, (i: Ec2Instance, values: string[]) => boolean> = {
  'instance-id': (i, v) => anyMatch(v, i.id),
  'instance-state-name': (i, v) => anyMatch(v, i.state),
  'instance-state-code': (i, v) => anyMatch(v, String(STATE_CODES[i.state])),
  'instance-type': (i, v) => anyMatch(v, i.instanceType),
  'image-id': (i, v) => anyMatch(v, i.imageId),
  'client-token': (i, v) => anyMatch(v, i.clientToken),
  'reservation-id': (i, v) => anyMatch(v, i.reservationId),
  'subnet-id': (i, v) => anyMatch(v, i.subnetId),
  'vpc-id': (_i, v) => anyMatch(v, VPC_ID),
  'instance.group-id': (i, v) => i.securityGroups.some((g) => anyMatch(v, g)),
  'availability-zone': (i, v) => anyMatch(v, i.availabilityZone),
  'instance-lifecycle': (i, v) => anyMatch(v, i.market === 'spot' ? 'spot' : undefined),
  'tag-key': (i, v) => Object.keys(i.tags).some((k) => anyMatch(v, k)),
  'tag-value': (i, v) => Object.values(i.tags).some((x) => anyMatch(v, x)),
};

export function describeInstances(store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const ids = strList(p, 'InstanceId');
  const maxResults = int(str(p, 'MaxResults'), 'MaxResults');
  if (maxResults !== undefined && ids.length > 0) {
    throw new Ec2Error(
      'InvalidParameterCombination',
      'The parameter instancesSet cannot be used with the parameter maxResults',
    );
  }
  if (maxResults !== undefined && (maxResults < 5 || maxResults > 1000)) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
    );
  }
  let found =
    ids.length > 0 ? findInstances(store, ids, ctx.region) : store.all.filter((i) => store.visible(i, ctx.region));
  for (const f of structList(p, 'Filter')) {
    const name = str(f, 'Name') ?? '';
    const values = strList(f, 'Value');
    let test = INSTANCE_FILTERS[name];
    if (name.startsWith('tag:')) {
      const key = name.slice(4);
      test = (i, v) => anyMatch(v, i.tags[key]);
    }
    if (!test) throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
    found = found.filter((i) => test(i, values));
  }
  const start = Number(str(p, 'NextToken') ?? '0');
  if (!Number.isInteger(start) || start < 0) throw new Ec2Error('InvalidParameterValue', 'The token is invalid');
  const page = maxResults === undefined ? found.slice(start) : found.slice(start, start + maxResults);
  const next = maxResults !== undefined && start + maxResults < found.length ? String(start + maxResults) : undefined;
  const reservations: Array<{ id: string; insts: Ec2Instance[] }> = [];
  for (const i of page) {
    const r = reservations.find((x) => x.id === i.reservationId);
    if (r) r.insts.push(i);
    else reservations.push({ id: i.reservationId, insts: [i] });
  }
  return (
    items('reservationSet', reservations, (r) => reservationXml(r.id, r.insts, (id) => store.groupName(id))) +
    t('nextToken', next)
  );
}

export function terminateInstances(store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const ids = strList(p, 'InstanceId');
  if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceId');
  const insts = findInstances(store, ids, ctx.region);
  ctx.authorize(onInstances('TerminateInstances', insts, ctx.region));
  dryRun(p);
  const changes = insts.map((inst) => {
    const previous = inst.state;
    void terminate(store, inst, {
      code: 'Client.UserInitiatedShutdown',
      message: 'Client.UserInitiatedShutdown: User initiated shutdown',
    });
    return { inst, previous };
  });
  return items(
    'instancesSet',
    changes,
    ({ inst, previous }) =>
      t('instanceId', inst.id) +
      n('currentState', t('code', STATE_CODES[inst.state]) + t('name', inst.state)) +
      n('previousState', t('code', STATE_CODES[previous]) + t('name', previous)),
  );
}

/** How long a metadata options change takes to apply on a running instance. */
const METADATA_APPLY_MS = 50;

/**
 * ModifyInstanceMetadataOptions (EC2 API reference, read 2026-12-08:
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceMetadataOptions.html):
 * on a running instance the answer's state is `pending`, and the change applies later (then
 * DescribeInstances shows `applied`); until then the metadata service answers as before. A
 * parameter left out keeps its value. IAM: ec2:ModifyInstanceMetadataOptions on the instance,
 * with its tags as `ec2:ResourceTag/*`.
 */
export function modifyInstanceMetadataOptions(store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const id = str(p, 'InstanceId');
  if (!id) throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceId');
  const [inst] = findInstances(store, [id], ctx.region);
  ctx.authorize(onInstances('ModifyInstanceMetadataOptions', [inst!], ctx.region));
  dryRun(p);
  const now = inst!.metadataChange ?? inst!.metadataOptions;
  const httpEndpoint = str(p, 'HttpEndpoint') ?? now.httpEndpoint;
  if (httpEndpoint !== 'enabled' && httpEndpoint !== 'disabled') {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${httpEndpoint}' for HttpEndpoint. Valid values are enabled, disabled.`,
    );
  }
  const httpTokens = str(p, 'HttpTokens') ?? now.httpTokens;
  if (httpTokens !== 'optional' && httpTokens !== 'required') {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${httpTokens}' for HttpTokens. Valid values are optional, required.`,
    );
  }
  const hops = int(str(p, 'HttpPutResponseHopLimit'), 'HttpPutResponseHopLimit') ?? now.httpPutResponseHopLimit;
  const change = { httpTokens, httpPutResponseHopLimit: hops, httpEndpoint } as Ec2Instance['metadataOptions'];
  inst!.metadataChange = change;
  store.timers.later(METADATA_APPLY_MS, () => {
    if (inst!.metadataChange !== change) return;
    inst!.metadataOptions = change;
    delete inst!.metadataChange;
  });
  return (
    t('instanceId', inst!.id) +
    n(
      'instanceMetadataOptions',
      t('state', 'pending') +
        t('httpTokens', change.httpTokens) +
        t('httpPutResponseHopLimit', change.httpPutResponseHopLimit) +
        t('httpEndpoint', change.httpEndpoint) +
        t('httpProtocolIpv6', 'disabled') +
        t('instanceMetadataTags', 'disabled'),
    )
  );
}

/**
 * The console's last 64 KB. `Latest` (the console as it is now rather than as last posted) is
 * for Nitro instances only; a Xen instance (t2, m4, c4, p3) is refused with `UnsupportedOperation`
 * (the EC2 code for "an unsupported operation"; the message is the fake's own, as the API
 * reference quotes none).
 */
export function getConsoleOutput(store: Ec2Store, p: Params, ctx: Ec2Context): string {
  const id = required(p, 'InstanceId');
  const latest = bool(str(p, 'Latest'), 'Latest') ?? false;
  const [inst] = findInstances(store, [id], ctx.region);
  ctx.authorize(onInstances('GetConsoleOutput', [inst!], ctx.region));
  dryRun(p);
  if (latest && INSTANCE_TYPES[inst!.instanceType]?.hypervisor === 'xen') {
    throw new Ec2Error(
      'UnsupportedOperation',
      `The instance type ${inst!.instanceType} does not support retrieving the latest console output. ` +
        'Latest is supported only on instances built on the Nitro System.',
    );
  }
  const bytes = inst!.machine?.consoleBytes() ?? Buffer.alloc(0);
  const tail = bytes.subarray(Math.max(0, bytes.length - 64 * 1024));
  return (
    t('instanceId', inst!.id) +
    t('timestamp', new Date().toISOString()) +
    (tail.length > 0 ? t('output', tail.toString('base64')) : '')
  );
}
