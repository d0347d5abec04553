/**
 * Each VM's metadata server, as the Compute Engine docs describe it ("About VM metadata",
 * "Access VM metadata"): `GET /computeMetadata/v1/...` with the header `Metadata-Flavor: Google`
 * (403 without it, or with `X-Forwarded-For`); answers carry `Metadata-Flavor: Google`. A
 * directory ends with `/` and lists its entries (a directory asked for without the slash is a
 * 301 to it); `?recursive=true` gives a directory as JSON; `?alt=json` a value as JSON. The
 * default service account's `token` is `{"access_token", "expires_in", "token_type"}`.
 *
 * Not modelled: `wait_for_change` (answered at once), guest attributes, `identity` tokens.
 */
import type http from 'node:http';
import { GCE_PROJECT, GCE_PROJECT_NUMBER } from './catalog.js';

export interface MetadataView {
  id: string;
  name: string;
  zone: string;
  machineType: string;
  hostname: string;
  image: string;
  attributes: Record<string, string>;
  serviceAccount?: { email: string; scopes: string[] };
  scheduling: { automaticRestart: boolean; onHostMaintenance: string; preemptible: boolean; provisioningModel: string };
  preempted: boolean;
  networkIP: string;
  natIP?: string;
  /** The network's name. */
  network: string;
  mac: string;
}

type Leaf = string | (() => { type: string; body: string } | undefined);
type Tree = { [name: string]: Leaf | Tree };

const HTML = (status: number, text: string): string =>
  `<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error ${status}</title>\n  <p><b>${status}.</b> <ins>That’s an error.</ins>\n  <p>${text}  <ins>That’s all we know.</ins>\n`;

/**
 * Answers one metadata request for a VM. `issueToken` makes a token for the VM's service account
 * (undefined when it has none).
 */
export function answerMetadata(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  view: MetadataView | undefined,
  path: string,
  query: URLSearchParams,
  issueToken: () => { token: string; expiresIn: number } | undefined,
): void {
  // A VM that is not running has no metadata server to answer.
  if (!view) {
    res.destroy();
    return;
  }
  const send = (status: number, type: string, body: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, {
      'metadata-flavor': 'Google',
      'content-type': type,
      server: 'Metadata Server for VM',
      'x-xss-protection': '0',
      'x-frame-options': 'SAMEORIGIN',
      ...headers,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const full = `/computeMetadata/v1${path}`;
  if (req.headers['x-forwarded-for'] !== undefined) {
    send(
      403,
      'text/html; charset=UTF-8',
      HTML(
        403,
        `Your client does not have permission to get URL <code>${full}</code> from this server. Request had an X-Forwarded-For header.`,
      ),
    );
    return;
  }
  if (req.headers['metadata-flavor'] !== 'Google') {
    send(
      403,
      'text/html; charset=UTF-8',
      HTML(
        403,
        `Your client does not have permission to get URL <code>${full}</code> from this server. Missing Metadata-Flavor:Google header.`,
      ),
    );
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(
      405,
      'text/html; charset=UTF-8',
      HTML(405, `The request method <code>${req.method}</code> is inappropriate for the URL <code>${full}</code>.`),
      { allow: 'GET, HEAD' },
    );
    return;
  }

  const sa = view.serviceAccount;
  const saTree = (email: string, scopes: string[]): Tree => ({
    aliases: 'default',
    email,
    scopes: `${scopes.join('\n')}\n`,
    token: () => {
      const t = issueToken();
      return t
        ? {
            type: 'application/json',
            body: JSON.stringify({ access_token: t.token, expires_in: t.expiresIn, token_type: 'Bearer' }),
          }
        : undefined;
    },
  });
  const tree: Tree = {
    instance: {
      attributes: { ...view.attributes },
      'cpu-platform': 'Intel Cascade Lake',
      description: '',
      hostname: view.hostname,
      id: view.id,
      image: view.image,
      'machine-type': `projects/${GCE_PROJECT_NUMBER}/machineTypes/${view.machineType}`,
      'maintenance-event': 'NONE',
      name: view.name,
      'network-interfaces': {
        '0': {
          'access-configs': view.natIP ? { '0': { 'external-ip': view.natIP, type: 'ONE_TO_ONE_NAT' } } : {},
          gateway: view.networkIP.replace(/\.\d+$/, '.1'),
          ip: view.networkIP,
          mac: view.mac,
          network: `projects/${GCE_PROJECT_NUMBER}/networks/${view.network}`,
          subnetmask: '255.255.240.0',
        },
      },
      preempted: view.preempted ? 'TRUE' : 'FALSE',
      scheduling: {
        'automatic-restart': view.scheduling.automaticRestart ? 'TRUE' : 'FALSE',
        'on-host-maintenance': view.scheduling.onHostMaintenance,
        preemptible: view.scheduling.preemptible ? 'TRUE' : 'FALSE',
        'provisioning-model': view.scheduling.provisioningModel,
      },
      'service-accounts': sa ? { default: saTree(sa.email, sa.scopes), [sa.email]: saTree(sa.email, sa.scopes) } : {},
      tags: '[]',
      zone: `projects/${GCE_PROJECT_NUMBER}/zones/${view.zone}`,
    },
    project: {
      attributes: {},
      'numeric-project-id': GCE_PROJECT_NUMBER,
      'project-id': GCE_PROJECT,
    },
  };

  // Walk the path; the attributes directory's keys are the user's, everything else is ours.
  const parts = path.split('/').filter(Boolean);
  let node: Leaf | Tree = tree;
  for (const p of parts) {
    if (typeof node !== 'object') {
      node = undefined as unknown as Tree;
      break;
    }
    node = (node as Tree)[decodeURIComponent(p)] as Leaf | Tree;
    if (node === undefined) break;
  }
  const notFound = (): void =>
    send(
      404,
      'text/html; charset=UTF-8',
      HTML(404, `The requested URL <code>${full}</code> was not found on this server.`),
    );
  if (node === undefined) {
    notFound();
    return;
  }

  const isDir = typeof node === 'object';
  if (isDir && !path.endsWith('/') && path !== '') {
    send(301, 'text/html; charset=UTF-8', '', { location: `${full}/` });
    return;
  }
  if (!isDir && path.endsWith('/')) {
    notFound();
    return;
  }

  const etag = Math.abs(hash(JSON.stringify(tree)))
    .toString(16)
    .padStart(16, '0');
  if (typeof node === 'function') {
    const out = node();
    if (!out) {
      notFound();
      return;
    }
    send(200, out.type, out.body, { etag });
    return;
  }
  if (typeof node === 'string') {
    if (query.get('alt') === 'json') send(200, 'application/json', JSON.stringify(node), { etag });
    else send(200, 'application/text', node, { etag });
    return;
  }
  if (query.get('recursive') === 'true') {
    const insideAttributes = parts[parts.length - 1] === 'attributes';
    send(200, 'application/json', JSON.stringify(toJson(node, insideAttributes)), { etag });
    return;
  }
  const listing = Object.entries(node)
    .map(([k, v]) => (typeof v === 'object' ? `${k}/` : k))
    .join('\n');
  send(200, 'application/text', listing ? `${listing}\n` : '', { etag });
}

const camel = (k: string): string => k.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** A directory as `?recursive=true` gives it: keys in camelCase (but attribute keys as written), no tokens. */
function toJson(tree: Tree, keepKeys: boolean): unknown {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(tree)) {
    if (typeof v === 'function') continue;
    const key = keepKeys ? k : camel(k);
    if (typeof v === 'string') out[key] = v;
    else if (/^\d+$/.test(Object.keys(v)[0] ?? '')) out[key] = Object.values(v).map((x) => toJson(x as Tree, false));
    else out[key] = toJson(v, k === 'attributes');
  }
  return out;
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(31, h) + s.charCodeAt(i)) | 0;
  return h;
}
