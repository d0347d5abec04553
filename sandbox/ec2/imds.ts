/**
 * Each instance's metadata service (IMDS), served by the fake EC2's server under
 * `/_imds/<instance-id>`; its machine finds it in `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
 *
 * As the EC2 User Guide describes it ("Use the Instance Metadata Service to access instance
 * metadata", "Responses and error messages"): `PUT /latest/api/token` with a TTL header gives a
 * session token valid on that instance only; GET and HEAD read metadata as text/plain, with the
 * token when HttpTokens is required (401 otherwise, or with a bad or expired token); 400 for a
 * PUT that is not valid, 403 when the request is not allowed or the endpoint is disabled,
 * 404 for what does not exist (such as spot/instance-action before a notice).
 *
 * It is the instance's endpoint, not the EC2 API: it stays outside the request pipeline and
 * takes no faults. The machine's firewall rules (its `iptables` stand-in records them in
 * `.sandbox/iptables`) apply: a connection from a user a rule rejects is cut (see `rejected`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import type { Ec2Instance } from '../ec2.js';
import { header } from './sigv4.js';
import type { Ec2Store } from './store.js';

/** Where each instance's metadata service lives on this server: `<url>/_imds/<instance-id>`. */
export const IMDS_PREFIX = '/_imds';
export const IMDS_PATH = /^\/_imds\/([^/?]+)([^?]*)/;
/** IMDSv2 session tokens last from one second to six hours. */
const IMDS_MAX_TTL_SECONDS = 21600;
const IMDS_REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
};

export function answerImds(
  store: Ec2Store,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  instanceId: string,
  path: string,
): void {
  const inst = store.byId.get(instanceId);
  if (inst?.machine && rejected(inst.machine.root, req)) {
    req.socket.destroy();
    return;
  }
  // Only a running instance can reach its metadata service; for anything else nothing answers.
  if (inst?.state !== 'running') {
    res.destroy();
    return;
  }
  const method = req.method ?? 'GET';
  const fail = (status: number, headers: Record<string, string> = {}): void => {
    const title = `${status} - ${IMDS_REASONS[status] ?? 'Error'}`;
    res.writeHead(status, { 'content-type': 'text/html', ...headers });
    res.end(
      `<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n` +
        `<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  <title>${title}</title>\n </head>\n <body>\n  <h1>${title}</h1>\n </body>\n</html>\n`,
    );
  };
  if (inst.metadataOptions.httpEndpoint === 'disabled') {
    fail(403);
    return;
  }

  if (method === 'PUT') {
    // Tokens come only from /latest/api/token; a version path (/2021-03-23/api/token) is 403.
    if (path !== '/latest/api/token' || header(req, 'x-forwarded-for') !== undefined) {
      fail(403);
      return;
    }
    const raw = header(req, 'x-aws-ec2-metadata-token-ttl-seconds') ?? '';
    const ttl = /^\d{1,6}$/.test(raw) ? Number(raw) : 0;
    if (ttl < 1 || ttl > IMDS_MAX_TTL_SECONDS) {
      fail(400);
      return;
    }
    const token = crypto.randomBytes(42).toString('base64');
    store.imdsTokens.set(token, { instanceId: inst.id, expiresAt: Date.now() + ttl * 1000 });
    res.writeHead(200, { 'content-type': 'text/plain', 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
    res.end(token);
    return;
  }
  if (path === '/latest/api/token') {
    fail(405, { allow: 'PUT' });
    return;
  }
  if (method !== 'GET' && method !== 'HEAD') {
    fail(405, { allow: 'GET, HEAD' });
    return;
  }

  // A token header makes it an IMDSv2 request, checked even when tokens are optional.
  const token = header(req, 'x-aws-ec2-metadata-token');
  if (token !== undefined || inst.metadataOptions.httpTokens === 'required') {
    const session = token === undefined ? undefined : store.imdsTokens.get(token);
    if (!session || session.instanceId !== inst.id || session.expiresAt <= Date.now()) {
      fail(401);
      return;
    }
  }

  const found = metadataAt(inst, path, (id) => store.groupName(id));
  if (found === undefined) {
    fail(404);
    return;
  }
  res.writeHead(200, { 'content-type': found.type });
  res.end(method === 'HEAD' ? undefined : found.body);
}

/**
 * Whether one of the machine's recorded `REJECT` rules (`ADDR PORT|- UID` lines) covers this
 * connection: its destination is this server's address and port, and the socket's owner, found in
 * /proc/net/tcp and tcp6 as the line whose local port is the client's and remote port the server's,
 * has the rule's uid (the machine's processes share the host's network).
 */
function rejected(root: string, req: http.IncomingMessage): boolean {
  let rules: string[];
  try {
    rules = fs
      .readFileSync(path.join(root, '.sandbox', 'iptables'), 'utf8')
      .split('\n')
      .filter(Boolean);
  } catch {
    return false;
  }
  const { localAddress, localPort, remotePort } = req.socket;
  const address = (localAddress ?? '').replace(/^::ffff:/, '');
  const hex = (n: number | undefined): string => (n ?? -1).toString(16).toUpperCase().padStart(4, '0');
  let uid: string | undefined;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(`:${hex(remotePort)}`) && cols[2]?.endsWith(`:${hex(localPort)}`)) uid = cols[7];
    }
  }
  if (uid === undefined) return false;
  return rules.some((rule) => {
    const [dest, port, owner] = rule.split(' ');
    return dest === address && (port === '-' || port === String(localPort)) && owner === uid;
  });
}

/** The metadata item or listing at a path (a listing names folders with a trailing slash). */
function metadataAt(
  inst: Ec2Instance,
  path: string,
  groupName: (id: string) => string,
): { body: string; type: string } | undefined {
  if (path === '/latest/user-data') {
    return inst.userData ? { body: inst.userData, type: 'application/octet-stream' } : undefined;
  }
  type Tree = { [name: string]: string | Tree };
  const hostname = `ip-${inst.privateIp.replace(/\./g, '-')}.ec2.internal`;
  const notice = inst.spotNotice;
  const time = notice ? `${notice.time.toISOString().slice(0, 19)}Z` : '';
  const metadata: Tree = {
    'ami-id': inst.imageId,
    'ami-launch-index': String(inst.amiLaunchIndex),
    hostname,
    'instance-id': inst.id,
    'instance-life-cycle': inst.spotRequest ? 'spot' : 'on-demand',
    'instance-type': inst.instanceType,
    'local-hostname': hostname,
    'local-ipv4': inst.privateIp,
    mac: inst.networkInterface.macAddress,
    placement: { 'availability-zone': inst.availabilityZone, region: inst.region },
    'reservation-id': inst.reservationId,
    'security-groups': inst.securityGroups.map(groupName).join('\n'),
    // Present only once the instance is marked for interruption; termination-time only for terminate.
    ...(notice
      ? {
          spot: {
            'instance-action': `{"action": "${notice.action}", "time": "${time}"}`,
            ...(notice.action === 'terminate' ? { 'termination-time': time } : {}),
          },
        }
      : {}),
  };
  const root: Tree = { latest: { 'meta-data': metadata, ...(inst.userData ? { 'user-data': inst.userData } : {}) } };
  let node: string | Tree = root;
  for (const part of path.split('/').filter(Boolean)) {
    if (typeof node === 'string') return undefined;
    const next: string | Tree | undefined = node[part];
    if (next === undefined) return undefined;
    node = next;
  }
  if (typeof node === 'string') return path.endsWith('/') ? undefined : { body: node, type: 'text/plain' };
  return {
    body: Object.entries(node)
      .map(([k, v]) => (typeof v === 'string' ? k : `${k}/`))
      .join('\n'),
    type: 'text/plain',
  };
}
