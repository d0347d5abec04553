import { InputError } from '../errors.js';
import { oneOf } from './inputs.js';
import type { ForgeScope, ForgeSpec, InputReader, RunContext } from './spec.js';

/** The forge inputs: driver, token, and the repository or organisation runners register with. */
export function parseForge(read: InputReader, ctx: Pick<RunContext, 'repository' | 'serverUrl' | 'apiUrl'>): ForgeSpec {
  const input = (name: string): string => read(name).trim();
  const driver = oneOf('driver', input('driver') || 'github', ['github', 'gitlab']);
  if (driver === 'gitlab') {
    throw new InputError('driver', driver, "GitLab runners are not supported by this version; use 'github'");
  }
  const token = read('token').trim();
  if (!token) {
    throw new InputError(
      'token',
      '',
      'a personal access token or GitHub App token that can manage self-hosted runners is required (GITHUB_TOKEN ' +
        'cannot register runners)',
    );
  }
  const { scope, url } = parseRepo(input('repo') || ctx.repository, ctx.serverUrl);
  return { driver: 'github', scope, url, apiUrl: ctx.apiUrl, token };
}

/** A repository or organisation URL on this server, or `owner/repo`. */
function parseRepo(value: string, serverUrl: string): { scope: ForgeScope; url: string } {
  const server = serverUrl.replace(/\/+$/, '');
  const urls = `${server}/owner/repo or ${server}/org`;
  const accepted = `use a repository or organisation URL on ${server} (${urls}), or owner/repo`;
  let path = value;
  if (/^https?:\/\//.test(value)) {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new InputError('repo', value, accepted);
    }
    if (parsed.origin !== new URL(server).origin) throw new InputError('repo', value, accepted);
    path = parsed.pathname;
  }
  const parts = path
    .replace(/^\/+|\/+$/g, '')
    .replace(/\.git$/, '')
    .split('/');
  const seg = /^[A-Za-z0-9_.-]{1,100}$/;
  if (parts.length === 2 && seg.test(parts[0]!) && seg.test(parts[1]!)) {
    return { scope: { kind: 'repo', owner: parts[0]!, repo: parts[1]! }, url: `${server}/${parts[0]}/${parts[1]}` };
  }
  if (parts.length === 1 && /^https?:\/\//.test(value) && seg.test(parts[0]!)) {
    return { scope: { kind: 'org', org: parts[0]! }, url: `${server}/${parts[0]}` };
  }
  throw new InputError('repo', value, accepted);
}
