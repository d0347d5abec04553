import { describe, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';

/**
 * `npm run chaos` in small: a few random lifecycles of the bundled action, with faults, against
 * the loopback sandbox, and nothing may be left. The seed is fixed, so the choices and faults
 * are the same each time (see scripts/CHAOS.md); a failure prints the run to replay.
 */

function chaos(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'chaos', '--', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run chaos', () => {
  test('a few faulty lifecycles on both clouds leave no machine and no registration', async () => {
    // Seed 124's four runs (`npm run chaos -- --seed 124 --runs 4 --plan`): both clouds, a type
    // list refused for capacity, slow boots, GitHub 5xx while minting runners, a runner that
    // crashes mid-job, a failing runner deletion, and a launch that fails; about 30 s.
    const run = await chaos(['--runs', '4', '--seed', '124', '--concurrency', '2']);
    const summary = run.stdout.split('\n').filter((l) => l.startsWith('chaos: runs='));
    // On failure the report below the summary names each leftover and the run to replay.
    expect({ summary, report: run.stdout, stderr: run.stderr }).toEqual({
      summary: [expect.stringMatching(/ orphans=0 leaked-registrations=0$/)],
      report: expect.any(String),
      stderr: expect.any(String),
    });
    const [, runs, faults] = /^chaos: runs=(\d+) faults=(\d+) /.exec(summary[0]!)!;
    expect(Number(runs)).toBe(4);
    expect(Number(faults)).toBeGreaterThan(0);
    expect(run.code).toBe(0);
  }, 150_000);

  test('a bad option is refused with the usage', async () => {
    const run = await chaos(['--clouds', 'azure']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--clouds takes a comma list of aws, kubernetes');
  });
});
