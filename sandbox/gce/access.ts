/**
 * Who calls, and what they may do, before any fault or method runs:
 * - Compute: a bearer token the fake issued (401 `required` without one, `authError` for an
 *   unknown or expired one); a Compute scope (read-only methods accept compute.readonly); the
 *   project and zone exist (404); the identity holds every permission the call needs, each on its
 *   own resource, under the roles and conditions of docs/permissions/gcp/ (403 `forbidden`); an
 *   insert with a service account, actAs on that account (service-account-user.yaml; 400 `badRequest`).
 *   Public images may be read by any authenticated caller.
 * - STS: the exchange itself is the credential (the GitHub OIDC token in the form).
 * - IAM Credentials: a bearer token, an IAM scope, and the right to impersonate the account.
 */
import {
  type JsonAnswer,
  type TokenInfo,
  checkExchange,
  hasPermission,
  iamCaller,
  iamRefusal,
  mayActAs,
} from './auth.js';
import {
  GCE_PROJECT,
  GCE_SERVICE_ACCOUNTS,
  IMAGE_PROJECTS,
  NETWORKS,
  PUBLIC_IMAGE_PROJECTS,
  SCOPE_CLOUD_PLATFORM,
  SCOPE_COMPUTE,
  SCOPE_COMPUTE_READONLY,
  ZONES,
} from './catalog.js';
import {
  actAsDenied,
  forbidden,
  insufficientScopes,
  invalidCredentials,
  missingCredentials,
  notFound,
} from './errors.js';
import { type GceRequest, Refusal, serviceMethod } from './routes.js';
import type { GceStore } from './store.js';

/** The caller: a token's holder, or (STS) the scopes the exchange asks for. */
export interface Caller {
  token?: TokenInfo;
  exchange?: { scopes: string[] };
}

const JSON_TYPE = 'application/json; charset=UTF-8';

export const jsonRefusal = (a: JsonAnswer): Refusal =>
  new Refusal(a.status, JSON.stringify(a.body), JSON_TYPE, a.reason);

export function authenticate(store: GceStore, request: GceRequest): Caller {
  if (request.early !== undefined) throw request.early;
  if (request.api === 'sts') {
    const accepts = store.policies.workloadIdentity(store.settings.wifRepository);
    const grant = checkExchange(request.contentType, request.body, store.subjectToken, accepts);
    if ('status' in grant) throw jsonRefusal(grant);
    return { exchange: grant };
  }
  if (request.api === 'iam') {
    const caller = iamCaller(request.authorization, store.tokens);
    if ('status' in caller) throw jsonRefusal(caller);
    return { token: caller };
  }
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.authorization ?? '');
  if (!bearer) throw missingCredentials('compute.googleapis.com');
  const token = store.tokens.lookup(bearer[1]!);
  if (!token) throw invalidCredentials();
  return { token };
}

const TYPE_OF: Array<[RegExp, string]> = [
  [/\/instances\/[^/]+$/, 'compute.googleapis.com/Instance'],
  [/\/disks\/[^/]+$/, 'compute.googleapis.com/Disk'],
  [/\/subnetworks\/[^/]+$/, 'compute.googleapis.com/Subnetwork'],
  [/\/images\//, 'compute.googleapis.com/Image'],
  [/\/operations\/[^/]+$/, 'compute.googleapis.com/ZoneOperation'],
  [/^projects\/[^/]+\/zones\/[^/]+$/, 'compute.googleapis.com/Zone'],
];
const typeOf = (name: string): string =>
  TYPE_OF.find(([re]) => re.test(name))?.[1] ?? 'cloudresourcemanager.googleapis.com/Project';

/** A permission a call needs, and the resource it is checked on. */
interface Check {
  permission: string;
  name: string;
}

type Loose = Record<string, unknown>;
const obj = (v: unknown): Loose | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Loose) : undefined;
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const local = (ref: string): string => ref.replace(/^https?:\/\/[^/]+\/compute\/(?:v1|beta)\//, '');

/** The subnetwork an interface lands in: the one it names, else its network's in the zone's region. */
function subnetworkOf(nic: Loose, zone: string): string {
  const region = zone.replace(/-[a-z]$/, '');
  const sub = str(nic.subnetwork);
  if (sub) return sub.startsWith('projects/') ? local(sub) : `projects/${GCE_PROJECT}/${local(sub)}`;
  const net = local(str(nic.network) ?? 'global/networks/default');
  const project = /^projects\/([^/]+)\//.exec(net)?.[1] ?? GCE_PROJECT;
  const netName = net.split('/').pop()!;
  const spec = NETWORKS.find((n) => n.name === netName);
  const subName = spec?.subnetworks.find((s) => s.region === region)?.name ?? netName;
  return `projects/${project}/regions/${region}/subnetworks/${subName}`;
}

/**
 * What instances.insert needs beyond compute.instances.create, each on its own resource: the
 * metadata, labels, network tags and service account on the instance, each new disk (and its
 * labels) on the disk, the subnetwork (and an external IP) on the subnetwork, and a private image
 * on the image. These are the permissions the method's reference lists for those fields
 * (https://cloud.google.com/compute/docs/reference/rest/v1/instances/insert, "IAM Permissions",
 * read 2026-12); each one a field needs is required, the stricter reading. Public images are
 * readable by all authenticated users.
 */
function insertChecks(body: Loose, zone: string, instance: string): Check[] {
  const checks: Check[] = [];
  const items = arr(obj(body.metadata)?.items);
  if (items.length > 0) checks.push({ permission: 'compute.instances.setMetadata', name: instance });
  if (Object.keys(obj(body.labels) ?? {}).length > 0)
    checks.push({ permission: 'compute.instances.setLabels', name: instance });
  if (arr(obj(body.tags)?.items).length > 0) checks.push({ permission: 'compute.instances.setTags', name: instance });
  if (arr(body.serviceAccounts).length > 0)
    checks.push({ permission: 'compute.instances.setServiceAccount', name: instance });
  const name = str(body.name) ?? '';
  arr(body.disks).forEach((d, i) => {
    const disk = obj(d);
    const init = obj(disk?.initializeParams);
    if (!disk || !init) return;
    const diskName = str(init.diskName) ?? (disk.boot === true ? name : `${name}-${i}`);
    const diskPath = `projects/${GCE_PROJECT}/zones/${zone}/disks/${diskName}`;
    checks.push({ permission: 'compute.disks.create', name: diskPath });
    if (Object.keys(obj(init.labels) ?? {}).length > 0)
      checks.push({ permission: 'compute.disks.setLabels', name: diskPath });
    const image = str(init.sourceImage) && local(str(init.sourceImage)!);
    const imageProject = image && /^projects\/([^/]+)\//.exec(image)?.[1];
    if (image && !(imageProject && PUBLIC_IMAGE_PROJECTS.has(imageProject))) {
      checks.push({
        permission: 'compute.images.useReadOnly',
        name: imageProject ? image : `projects/${GCE_PROJECT}/${image}`,
      });
    }
  });
  for (const n of arr(body.networkInterfaces)) {
    const nic = obj(n);
    if (!nic) continue;
    const subnetwork = subnetworkOf(nic, zone);
    checks.push({ permission: 'compute.subnetworks.use', name: subnetwork });
    if (arr(nic.accessConfigs).length > 0)
      checks.push({ permission: 'compute.subnetworks.useExternalIp', name: subnetwork });
  }
  return checks;
}

/** Scopes, project and zone, then every permission the call needs (less the deployer's `deployerLacks`). */
export function authorize(who: Caller, request: GceRequest, store: GceStore): void {
  if (request.api === 'iam') {
    const refusal = iamRefusal(who.token!, request.email!);
    if (refusal) throw jsonRefusal(refusal);
    return;
  }
  if (request.api !== 'compute') return;
  const r = request.route!;
  const { scopes, identity } = who.token!;
  const scoped =
    scopes.includes(SCOPE_CLOUD_PLATFORM) ||
    scopes.includes(SCOPE_COMPUTE) ||
    (!r.write && scopes.includes(SCOPE_COMPUTE_READONLY));
  if (!scoped) throw insufficientScopes('compute.googleapis.com', serviceMethod(r.method));
  const imageRead = r.publicRead === true;
  if (imageRead ? !IMAGE_PROJECTS.has(r.project) : r.project !== GCE_PROJECT) {
    throw notFound(imageRead ? r.resource : `projects/${r.project}`);
  }
  if (r.scope !== 'global' && !ZONES.includes(r.scope)) throw notFound(`projects/${GCE_PROJECT}/zones/${r.scope}`);
  if (imageRead && PUBLIC_IMAGE_PROJECTS.has(r.project)) return;
  const lacks = store.settings.deployerLacks;
  const holds = (c: Check): boolean =>
    hasPermission(store.policies, identity, c.permission, { name: c.name, type: typeOf(c.name) }) &&
    !(identity === GCE_SERVICE_ACCOUNTS.deployer && lacks.includes(c.permission));
  let checks: Check[] = [{ permission: r.permission, name: r.resource }];
  if (r.method === 'instances.insert') {
    const body = obj(request.resource) ?? {};
    const instance = `${r.resource}/${str(body.name) ?? ''}`;
    checks = [{ permission: r.permission, name: instance }, ...insertChecks(body, r.scope, instance)];
  }
  const missing = checks.find((c) => !holds(c));
  if (missing) throw forbidden(missing.permission, missing.name);
  if (r.method === 'instances.insert') {
    // Running as a service account needs iam.serviceAccounts.actAs on that account, checked on the account.
    // An account that does not exist is refused by the method's validation, naming it.
    for (const sa of arr(obj(request.resource)?.serviceAccounts)) {
      const given = str(obj(sa)?.email);
      const email = given === 'default' ? GCE_SERVICE_ACCOUNTS.defaultCompute : given;
      if (!email || !(Object.values(GCE_SERVICE_ACCOUNTS) as string[]).includes(email)) continue;
      const deployer = identity === GCE_SERVICE_ACCOUNTS.deployer;
      const bound =
        mayActAs(store.policies, identity, email) || (deployer && store.settings.deployerActsAs.includes(email));
      if (!bound || (deployer && lacks.includes('iam.serviceAccounts.actAs'))) throw actAsDenied(email, identity);
    }
  }
}
