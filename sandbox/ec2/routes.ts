/**
 * The fake EC2's routes: a Query API request (form-encoded `POST /`, or the query string) named
 * by its `Action`, with the parameters faults match on, and the controller that answers it.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import type { Answer, Identified } from '../core/index.js';
import { DEFAULT_SUBNET } from './catalog.js';
import { describeImages, describeInstanceTypeOfferings, describeInstanceTypes } from './controllers/catalog.js';
import {
  describeInstances,
  getConsoleOutput,
  modifyInstanceMetadataOptions,
  terminateInstances,
} from './controllers/instances.js';
import { runInstances } from './controllers/run-instances.js';
import {
  createSecurityGroup,
  deleteSecurityGroup,
  describeSecurityGroups,
  describeSubnets,
  describeVpcs,
} from './controllers/security-groups.js';
import { Ec2Error } from './errors.js';
import type { AccessRequest } from './iam.js';
import type { Ec2Store } from './store.js';
import { type Params, nest, str, sub } from './validation.js';
import { errorXml, responseXml } from './xml.js';

/** The API version every request must name (the SDK sends it). */
export const API_VERSION = '2016-11-15';

/**
 * What a controller knows of the caller: the region its signature is scoped to, and IAM for the
 * actions with resource-level permissions (it throws `UnauthorizedOperation` when one request is denied).
 */
export interface Ec2Context {
  region: string;
  authorize(requests: readonly AccessRequest[]): void;
}

/** The actions IAM authorises per resource (in their controllers); the others on `*` before them. */
export const RESOURCE_LEVEL_ACTIONS: ReadonlySet<string> = new Set([
  'RunInstances',
  'TerminateInstances',
  'GetConsoleOutput',
  'ModifyInstanceMetadataOptions',
  'CreateSecurityGroup',
  'DeleteSecurityGroup',
]);

export type Controller = (store: Ec2Store, p: Params, ctx: Ec2Context) => string;

const CONTROLLERS: Readonly<Record<string, Controller>> = {
  RunInstances: runInstances,
  DescribeInstances: describeInstances,
  TerminateInstances: terminateInstances,
  DescribeImages: describeImages,
  DescribeInstanceTypes: describeInstanceTypes,
  DescribeInstanceTypeOfferings: describeInstanceTypeOfferings,
  GetConsoleOutput: getConsoleOutput,
  ModifyInstanceMetadataOptions: modifyInstanceMetadataOptions,
  CreateSecurityGroup: createSecurityGroup,
  DescribeSecurityGroups: describeSecurityGroups,
  DeleteSecurityGroup: deleteSecurityGroup,
  DescribeSubnets: describeSubnets,
  DescribeVpcs: describeVpcs,
};

export interface Ec2Request extends Identified {
  requestId: string;
  /** The Query parameters as a tree (`A.1.B=v` is `{A: {1: {B: 'v'}}}`). */
  query: Params;
  version: string | undefined;
}

/** Names a request by its Action; the parameters are the form body and the query string together. */
export function identify(req: http.IncomingMessage, body: Buffer): Ec2Request {
  const form = new URLSearchParams(body.toString('utf8'));
  const q = (req.url ?? '').indexOf('?');
  if (q >= 0) for (const [k, v] of new URLSearchParams((req.url ?? '').slice(q + 1))) form.append(k, v);
  const action = form.get('Action') ?? '';
  const query = nest(form);
  const params = CONTROLLERS[action] ? faultParams(action, query) : undefined;
  return {
    action,
    requestId: crypto.randomUUID(),
    query,
    version: form.get('Version') ?? undefined,
    ...(params && Object.keys(params).length > 0 ? { params } : {}),
  };
}

/**
 * The parameters faults match on and the call log records (see core/faults.ts). RunInstances:
 * `ImageId`, `InstanceType` and `SubnetId` (EC2's defaults when left out: `m1.small`, the default
 * subnet), `Spot` (`'true'` when InstanceMarketOptions asks for spot, else `'false'`). The
 * instance actions: `InstanceId` (ids joined by commas); GetConsoleOutput also `Latest`.
 * DescribeImages: `ImageId`; DescribeInstanceTypes: `InstanceType` (joined likewise).
 * ModifyInstanceMetadataOptions: `InstanceId`; DeleteSecurityGroup: `GroupId`; CreateSecurityGroup:
 * `GroupName`.
 */
function faultParams(action: string, p: Params): Record<string, string> {
  const joined = (key: string): Record<string, string> => {
    const values = listValues(p, key);
    return values.length > 0 ? { [key]: values.join(',') } : {};
  };
  switch (action) {
    case 'RunInstances': {
      const imageId = str(p, 'ImageId');
      return {
        ...(imageId ? { ImageId: imageId } : {}),
        InstanceType: str(p, 'InstanceType') ?? 'm1.small',
        SubnetId: str(p, 'SubnetId') ?? DEFAULT_SUBNET,
        Spot: str(sub(p, 'InstanceMarketOptions'), 'MarketType') === 'spot' ? 'true' : 'false',
      };
    }
    case 'GetConsoleOutput': {
      const id = str(p, 'InstanceId');
      return { ...(id ? { InstanceId: id } : {}), Latest: str(p, 'Latest') ?? 'false' };
    }
    case 'ModifyInstanceMetadataOptions':
    case 'DeleteSecurityGroup':
    case 'CreateSecurityGroup': {
      const key =
        action === 'CreateSecurityGroup' ? 'GroupName' : action === 'DeleteSecurityGroup' ? 'GroupId' : 'InstanceId';
      const v = str(p, key);
      return v ? { [key]: v } : {};
    }
    case 'DescribeInstances':
    case 'TerminateInstances':
      return joined('InstanceId');
    case 'DescribeImages':
      return joined('ImageId');
    case 'DescribeInstanceTypes':
      return joined('InstanceType');
    default:
      return {};
  }
}

/** A Query list's string values in index order, without the checks a controller makes. */
function listValues(p: Params, key: string): string[] {
  const node = sub(p, key);
  if (!node) return [];
  return Object.keys(node)
    .filter((k) => /^[1-9]\d*$/.test(k))
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => node[k])
    .filter((v): v is string => typeof v === 'string');
}

/**
 * EC2 refuses a request that names no action it has, or another API version, once the
 * signature is checked and before anything else: no fault answers such a request.
 */
export function checkAction(request: Ec2Request): void {
  if (!request.action) throw new Ec2Error('MissingAction', 'The request must contain the parameter Action');
  if (!CONTROLLERS[request.action])
    throw new Ec2Error('InvalidAction', `The action ${request.action} is not valid for this web service.`);
  if (request.version !== API_VERSION)
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${request.version ?? ''}' for Version.`);
}

export function dispatch(store: Ec2Store, request: Ec2Request, ctx: Ec2Context): Answer {
  const controller = CONTROLLERS[request.action];
  if (!controller)
    throw new Ec2Error('InvalidAction', `The action ${request.action} is not valid for this web service.`);
  const inner = controller(store, request.query, ctx);
  return xmlAnswer(200, responseXml(request.action, request.requestId, inner), request.requestId);
}

/** EC2's answer for one of its own errors; anything else is the fake's own failure. */
export function errorAnswer(err: unknown, request: Ec2Request | undefined): Answer {
  if (!(err instanceof Ec2Error)) throw err;
  const requestId = request?.requestId ?? crypto.randomUUID();
  return {
    ...xmlAnswer(err.status, errorXml(err.code, err.message, requestId), requestId, err.headers),
    code: err.code,
  };
}

function xmlAnswer(
  status: number,
  body: string,
  requestId: string,
  headers: Readonly<Record<string, string>> = {},
): Answer {
  return {
    status,
    body,
    headers: { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId, ...headers },
  };
}
