import { describe, expect, test, afterAll } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderStartupScript, type StartupSettings } from '../src/bootstrap/render.js';

const dir = mkdtempSync(join(tmpdir(), 'cml-script-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const marker = join(dir, 'pwned');
const hostile = [
  `$(touch ${marker})`,
  `\`touch ${marker}\``,
  `'; touch ${marker}; '`,
  `"; touch ${marker}; "`,
  `x\ntouch ${marker}\n`,
  `CML_RUNNER_SETTINGS\ntouch ${marker}\nCML_RUNNER_SETTINGS`,
  '@@SETTINGS@@',
  'ünïcødé ✓ 🚀',
];

function settings(overrides: Partial<StartupSettings> = {}): StartupSettings {
  return {
    runnerName: 'cml-test',
    labels: ['cml', 'gpu'],
    url: 'https://github.com/octo-org/ml',
    credential: { jitConfig: 'eyJqaXQiOiJzZWNyZXQifQ==' },
    idleTimeoutSeconds: 300,
    maxLifetimeSeconds: 86400,
    downloads: { X64: { url: 'https://example.invalid/runner-x64.tar.gz', sha256: 'a'.repeat(64) } },
    ...overrides,
  };
}

/** Runs only the part of the rendered script that decodes its settings, then prints them. */
function decodeSettings(script: string): Record<string, string> {
  const head = script.slice(0, script.indexOf('runner_home='));
  const probe = `${head}\nfor k in "\${!setting[@]}"; do printf '%s\\0%s\\0' "$k" "\${setting[$k]}"; done\n`;
  const file = join(dir, 'probe.sh');
  writeFileSync(file, probe);
  const out = execFileSync('bash', [file], { encoding: 'utf8' });
  const parts = out.split('\0');
  const result: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) result[parts[i]!] = parts[i + 1]!;
  return result;
}

/**
 * Runs the rendered script up to where it makes its directories, in an environment of only
 * `env`, then prints the login variables it exports. `bin` commands come first on PATH.
 */
function loginEnvironment(
  overrides: Partial<StartupSettings>,
  env: Record<string, string>,
  bin: Record<string, string> = {},
): Record<string, string> {
  const script = renderStartupScript(settings(overrides));
  const head = script.slice(0, script.indexOf('# The runner home is readable'));
  const file = join(dir, 'login-probe.sh');
  const probe = `${head}\nfor v in HOME USER LOGNAME LANG; do printf '%s=%s\\n' "$v" "$(printenv "$v" || echo unset)"; done\n`;
  writeFileSync(file, probe);
  const binDir = mkdtempSync(join(dir, 'bin-'));
  // Should the probe fail, its ERR trap ends the machine: here that is a shutdown that only says so.
  const stubs = { shutdown: 'echo "shutdown $* (stub)"', ...bin };
  for (const [name, body] of Object.entries(stubs))
    writeFileSync(join(binDir, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
  const home = mkdtempSync(join(dir, 'runner-home-'));
  const out = execFileSync('bash', [file], {
    encoding: 'utf8',
    env: { PATH: `${binDir}:${process.env.PATH}`, CML_RUNNER_HOME: home, ...env },
  });
  return Object.fromEntries([...out.matchAll(/^(HOME|USER|LOGNAME|LANG)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
}

describe('the startup script', () => {
  test('is shellcheck-clean as rendered, for both credential kinds and for a container', () => {
    const variants: Array<Partial<StartupSettings>> = [
      { credential: { jitConfig: 'abc' } },
      { credential: { registrationToken: 'AABBCC' } },
      // A spot machine on AWS, which watches for the interruption notice.
      { credential: { jitConfig: 'abc' }, spotNotice: 'aws' },
      // A Spot VM on Azure, which watches its scheduled events and deletes (or deallocates) itself.
      {
        credential: { jitConfig: 'abc' },
        spotNotice: 'azure',
        selfDelete: { cloud: 'azure', apiUrl: 'https://management.azure.com' },
      },
      // A container's script: the credential comes from the pod's Secret, not the script.
      { credential: undefined, container: true },
    ];
    for (const variant of variants) {
      const file = join(dir, 'rendered.sh');
      writeFileSync(file, renderStartupScript(settings({ ...variant, userScript: 'echo hi', group: 'gpu' })));
      const res = spawnSync('shellcheck', ['--severity=style', file], { encoding: 'utf8' });
      expect(res.stdout + res.stderr).toBe('');
      expect(res.status).toBe(0);
    }
  });

  test('writes job hooks that are shellcheck-clean scripts of their own (they run without the startup script functions)', () => {
    const script = renderStartupScript(settings());
    const hooks = [...script.matchAll(/<<'HOOK'\n([\s\S]*?)\nHOOK\n/g)].map((m) => m[1]!);
    expect(hooks).toHaveLength(2);
    for (const [i, hook] of hooks.entries()) {
      const file = join(dir, `hook-${i}.sh`);
      writeFileSync(file, `${hook}\n`);
      const res = spawnSync('shellcheck', ['--severity=style', file], { encoding: 'utf8' });
      expect(res.stdout + res.stderr).toBe('');
      // Run it as the runner would, in a runner home with an activity folder beside its hooks folder.
      const home = mkdtempSync(join(dir, 'home-'));
      for (const sub of ['hooks', 'activity']) mkdirSync(join(home, sub));
      writeFileSync(join(home, 'hooks', 'hook.sh'), hook);
      const run = spawnSync('bash', [join(home, 'hooks', 'hook.sh')], { encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      expect(Number(readFileSync(join(home, 'activity', 'last-activity'), 'utf8'))).toBeGreaterThan(
        Date.now() / 1000 - 60,
      );
    }
  });

  test('carries hostile values only as base64 data, and decodes them back verbatim without running them', () => {
    for (const value of hostile) {
      const script = renderStartupScript(
        settings({
          runnerName: value,
          labels: [value, 'cml'],
          url: value,
          group: value,
          userScript: value,
          credential: { registrationToken: value },
        }),
      );
      // Nothing a user gave appears in the script text.
      expect(script).not.toContain(marker);
      expect(script.split('\n').filter((l) => l === 'CML_RUNNER_SETTINGS')).toHaveLength(1);
      const decoded = decodeSettings(script);
      // Byte for byte, trailing newlines included.
      expect(decoded.RUNNER_NAME).toBe(value);
      expect(decoded.RUNNER_LABELS).toBe(`${value},cml`);
      expect(decoded.USER_SCRIPT).toBe(value);
      expect(decoded.RUNNER_TOKEN).toBe(value);
      expect(existsSync(marker)).toBe(false);
    }
  });

  test('holds a just-in-time config or a registration token, never both', () => {
    const jit = decodeSettings(renderStartupScript(settings({ credential: { jitConfig: 'JIT' } })));
    expect(jit.RUNNER_JITCONFIG).toBe('JIT');
    expect(jit.RUNNER_TOKEN).toBeUndefined();
    const reg = decodeSettings(renderStartupScript(settings({ credential: { registrationToken: 'TOKEN' } })));
    expect(reg.RUNNER_TOKEN).toBe('TOKEN');
    expect(reg.RUNNER_JITCONFIG).toBeUndefined();
  });

  test('watches for spot interruption notices only when asked (AWS spot machines)', () => {
    expect(decodeSettings(renderStartupScript(settings({ spotNotice: 'aws' }))).SPOT_NOTICE).toBe('aws');
    expect(decodeSettings(renderStartupScript(settings())).SPOT_NOTICE).toBeUndefined();
    expect(decodeSettings(renderStartupScript(settings({ spotNotice: undefined }))).SPOT_NOTICE).toBeUndefined();
    // The script asks the metadata service the machine names, as the AWS SDKs do, or the real one.
    const script = renderStartupScript(settings({ spotNotice: 'aws' }));
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell parameter expansion the script holds
    expect(script).toContain('${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}');
  });

  test('closes the metadata service to the runner user with a firewall rule, on the endpoint the machine names', () => {
    const script = renderStartupScript(settings({ metadataRootOnly: true }));
    expect(decodeSettings(script).METADATA_ROOT_ONLY).toBe('1');
    expect(decodeSettings(renderStartupScript(settings())).METADATA_ROOT_ONLY).toBeUndefined();
    // Only the block itself runs, with `iptables` as given in `bin` (or none), as root would run it.
    const block = script.slice(
      script.indexOf('# METADATA_ROOT_ONLY=1'),
      script.indexOf("# The runner's own job hooks"),
    );
    const run = (endpoint: string | undefined, iptables: string | undefined): string => {
      const bin = mkdtempSync(join(dir, 'fw-'));
      if (iptables !== undefined) writeFileSync(join(bin, 'iptables'), `#!/bin/bash\n${iptables}`, { mode: 0o755 });
      const file = join(dir, 'fw-probe.sh');
      const head = 'set -euo pipefail\nlog() { echo "log: $*"; }\ndeclare -A setting=([METADATA_ROOT_ONLY]=1)\n';
      writeFileSync(file, `${head}runner_user=cml-runner\n${block}`);
      const env: Record<string, string> = {
        PATH: bin,
        ...(endpoint ? { AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoint } : {}),
      };
      const r = spawnSync('/bin/bash', [file], { env, encoding: 'utf8' });
      expect(r.status).toBe(0);
      return r.stdout;
    };
    const record = 'echo "iptables $*"';
    const ok = 'log: the metadata service answers root only: a firewall rule refuses the runner user cml-runner';
    expect(run(undefined, record)).toBe(
      'iptables --append OUTPUT --proto tcp --destination 169.254.169.254 --dport 80 --match owner ' +
        `--uid-owner cml-runner --jump REJECT\n${ok}\n`,
    );
    expect(run('http://127.0.0.1:4567/_imds/i-1', record)).toContain('--destination 127.0.0.1 --dport 4567 ');
    expect(run('https://10.0.0.9/x', record)).toContain('--destination 10.0.0.9 --dport 443 ');
    const open = 'log: job code can read the metadata service, hence the user data';
    expect(run(undefined, undefined)).toBe(`${open}: iptables is not installed\n`);
    expect(run(undefined, 'exit 4')).toBe(`${open}: iptables refused the firewall rule\n`);
    expect(run('http://[fd00:ec2::254]', record)).toBe(
      `${open}: no firewall rule for an endpoint that is not IPv4 (http://[fd00:ec2::254])\n`,
    );
  });

  test('gives a VM boot service the login environment from the password database, keeping what is set', () => {
    // A boot service has only PATH: HOME, USER and LOGNAME come from the password database.
    const passwd = { getent: `echo "ci:x:0:0:CI:${join(dir, 'ci-root')}:/bin/bash"` };
    expect(loginEnvironment({}, {}, passwd)).toEqual({
      HOME: join(dir, 'ci-root'),
      USER: 'ci',
      LOGNAME: 'ci',
      LANG: 'C.UTF-8',
    });
    // A home the image lacks is made, private.
    expect(statSync(join(dir, 'ci-root')).mode & 0o777).toBe(0o700);
    // What the boot gave is kept.
    const given = mkdtempSync(join(dir, 'home-'));
    expect(loginEnvironment({}, { HOME: given, USER: 'me', LANG: 'de_DE.UTF-8' }, passwd)).toEqual({
      HOME: given,
      USER: 'me',
      LOGNAME: 'ci',
      LANG: 'de_DE.UTF-8',
    });
    // No password database: root's home is /root.
    const none = { getent: 'exit 2', id: 'echo root' };
    expect(loginEnvironment({}, {}, none)).toMatchObject({ HOME: '/root', USER: 'root', LOGNAME: 'root' });
  });

  test("leaves a container its image's environment", () => {
    const passwd = { getent: `echo "ci:x:0:0:CI:${join(dir, 'ci-root')}:/bin/bash"` };
    expect(loginEnvironment({ container: true, credential: undefined }, { HOME: '/home/runner' }, passwd)).toEqual({
      HOME: '/home/runner',
      USER: 'unset',
      LOGNAME: 'unset',
      LANG: 'unset',
    });
  });

  test('never shows a credential in plain text', () => {
    const script = renderStartupScript(settings({ credential: { jitConfig: 'SUPER-SECRET-JIT-CONFIG' } }));
    expect(script).not.toContain('SUPER-SECRET-JIT-CONFIG');
  });
});
