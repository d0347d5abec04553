/**
 * The stand-in `actions-runner` release: packed on the fly from sandbox/runner/, listed by
 * `GET …/actions/runners/downloads`, and served the way github.com serves release assets (a
 * redirect to object storage). The downloads are not the REST API: they take no faults.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { components } from '@octokit/openapi-types';

type RunnerApplication = components['schemas']['runner-application'];

/** The newest stand-in runner release; the previous one is still accepted, older ones are refused. */
export const RUNNER_VERSION = '2.331.0';
export const ACCEPTED_VERSIONS = new Set([RUNNER_VERSION, '2.330.0']);

/** The platforms `runners/downloads` lists, as GitHub lists them. */
const PLATFORMS: Array<[string, string]> = [
  ['osx', 'x64'],
  ['osx', 'arm64'],
  ['linux', 'x64'],
  ['linux', 'arm'],
  ['linux', 'arm64'],
  ['win', 'x64'],
  ['win', 'arm64'],
];

export interface Packed {
  body: Buffer;
  sha256: string;
  filename: string;
}

function runnerSourceDir(): string {
  // Works under ts-jest (ESM) and under tsx (which provides import.meta.url in CJS output too).
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(here, '..', 'runner');
}

async function packRunner(version: string, osName: string, arch: string): Promise<Packed> {
  const ext = osName === 'win' ? 'zip' : 'tar.gz';
  const filename = `actions-runner-${osName}-${arch}-${version}.${ext}`;
  if (osName !== 'linux') {
    // Only the Linux stand-in runs here; other platforms are listed and served as placeholders.
    const body = Buffer.from(`sandbox placeholder for ${filename}: only Linux runners run in the sandbox\n`);
    return { body, sha256: sha256(body), filename };
  }
  const stage = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'fake-runner-pack-'));
  try {
    await fs.promises.chmod(stage, 0o755);
    await fs.promises.cp(runnerSourceDir(), stage, { recursive: true });
    await fs.promises.writeFile(
      path.join(stage, 'bin', 'stand-in.json'),
      `${JSON.stringify({ version, os: osName, arch })}\n`,
    );
    await fs.promises.mkdir(path.join(stage, 'externals', 'node24', 'bin'), { recursive: true });
    // The real tarball ships its own node under externals/; the stand-in borrows this one.
    await fs.promises.symlink(process.execPath, path.join(stage, 'externals', 'node24', 'bin', 'node'));
    const out = path.join(stage, '..', `${path.basename(stage)}.tar.gz`);
    await new Promise<void>((resolve, reject) => {
      const tar = spawn('tar', ['-czf', out, '--owner=0', '--group=0', '--numeric-owner', '-C', stage, '.'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      tar.stderr.on('data', (d: Buffer) => (err += d.toString()));
      tar.on('error', reject);
      tar.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar failed (${code}): ${err}`))));
    });
    const body = await fs.promises.readFile(out);
    await fs.promises.rm(out, { force: true });
    return { body, sha256: sha256(body), filename };
  } finally {
    await fs.promises.rm(stage, { recursive: true, force: true });
  }
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Packs each release once per platform; a failed pack is retried on the next request. */
export class RunnerPacks {
  private readonly packs = new Map<string, Promise<Packed>>();

  get(version: string, osName: string, arch: string): Promise<Packed> {
    const key = `${version}/${osName}/${arch}`;
    let p = this.packs.get(key);
    if (!p) {
      p = packRunner(version, osName, arch);
      this.packs.set(key, p);
      p.catch(() => this.packs.delete(key));
    }
    return p;
  }

  /** The body of `GET …/actions/runners/downloads`. */
  async applications(serverUrl: string): Promise<RunnerApplication[]> {
    return Promise.all(
      PLATFORMS.map(async ([osName, arch]) => {
        const packed = await this.get(RUNNER_VERSION, osName, arch);
        return {
          os: osName,
          architecture: arch,
          download_url: `${serverUrl}/actions/runner/releases/download/v${RUNNER_VERSION}/${packed.filename}`,
          filename: packed.filename,
          sha256_checksum: packed.sha256,
        };
      }),
    );
  }

  /** A release download (`GET` or `HEAD`): the redirect, then the object it points to. */
  async serve(res: http.ServerResponse, url: URL, serverUrl: string): Promise<void> {
    const m =
      /^\/actions\/runner\/releases\/download\/v(\d+\.\d+\.\d+)\/actions-runner-(linux|osx|win)-(x64|arm64|arm)-(\d+\.\d+\.\d+)\.(tar\.gz|zip)$/.exec(
        url.pathname,
      );
    if (m && m[1] === m[4] && (m[5] === 'zip') === (m[2] === 'win')) {
      // github.com answers release downloads with a redirect to its object storage; follow it (curl -L).
      res.writeHead(302, { 'content-length': '0', location: `${serverUrl}/_objects/${m[1]}/${m[2]}/${m[3]}` });
      res.end('');
      return;
    }
    const o = /^\/_objects\/(\d+\.\d+\.\d+)\/(linux|osx|win)\/(x64|arm64|arm)$/.exec(url.pathname);
    if (!o) {
      const text = JSON.stringify({ message: 'Not Found' });
      res.writeHead(404, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': String(Buffer.byteLength(text)),
      });
      res.end(text);
      return;
    }
    const packed = await this.get(o[1], o[2], o[3]);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(packed.body.length),
      'content-disposition': `attachment; filename=${packed.filename}`,
    });
    res.end(packed.body);
  }
}
