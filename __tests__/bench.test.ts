import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `npm run bench` runs and writes every figure bench/README.md describes. The figures are not
 * asserted: they depend on the machine. `--quick` uses small counts and a short boot.
 */

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const isFigure = (f: Json | undefined): boolean =>
  !!f &&
  ['median', 'min', 'max'].every((k) => typeof f[k] === 'number' && Number.isFinite(f[k])) &&
  f.min <= f.median &&
  f.median <= f.max;

describe('npm run bench', () => {
  test('writes every figure as JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cml-bench-test-'));
    try {
      const file = join(dir, 'bench.json');
      const run = spawnSync('npm', ['run', 'bench', '--', '--quick', '--json', file], {
        encoding: 'utf8',
        timeout: 280_000,
      });
      expect(run.stderr.split('\n').filter((l) => l.startsWith('bench failed'))).toEqual([]);
      expect(run.status).toBe(0);
      const b = JSON.parse(readFileSync(file, 'utf8')) as Json;

      for (const variant of ['aws', 'gcp', 'kubernetes', 'aws_all_sdks_bundle'])
        expect(isFigure(b.cold_start_ms[variant])).toBe(true);
      expect(b.bundle_bytes.entries['index.js']).toBeGreaterThan(0);
      expect(b.bundle_bytes.entries['post.js']).toBeGreaterThan(0);
      const holds = Object.values(b.bundle_bytes.chunks as Record<string, { bytes: number; holds: string }>).map(
        (c) => c.holds,
      );
      expect(holds).toEqual(expect.arrayContaining(['aws', 'gcp', 'kubernetes']));
      for (const part of ['total', 'before_machine', 'after_online'])
        expect(isFigure(b.critical_path_round_trips[part])).toBe(true);
      expect(Object.keys(b.api_calls_per_runner.aws).sort()).toEqual(['ec2', 'github', 'ssm']);
      expect(Object.keys(b.api_calls_per_runner.kubernetes).sort()).toEqual(['github', 'kubernetes']);
      for (const count of b.params.counts as number[]) {
        expect(isFigure(b.launch_ms_by_count[String(count)])).toBe(true);
        expect(isFigure(b.launch_overhead_ms_by_count[String(count)])).toBe(true);
      }
      expect(isFigure(b.poll_detect_lag_ms)).toBe(true);
      for (const variant of ['download', 'cached']) expect(isFigure(b.script_overhead_ms[variant])).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
