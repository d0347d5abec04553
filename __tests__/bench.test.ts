import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `npm run bench` runs and writes every figure bench/README.md describes. The figures are not
 * asserted: they depend on the machine. `--quick` uses small counts and a short boot.
 */

/** A figure as the bench writes it, unchecked: isFigure says whether it is one. */
type Figure = Partial<Record<'median' | 'min' | 'max', unknown>>;
type Figures = Record<string, Figure | undefined>;

/** The parts of the bench's JSON this test reads. */
interface BenchJson {
  params: { counts: number[] };
  cold_start_ms: Figures;
  bundle_bytes: { entries: Record<string, number>; chunks: Record<string, { bytes: number; holds: string }> };
  critical_path_round_trips: Figures;
  api_calls_per_runner: Record<string, Record<string, number>>;
  launch_ms_by_count: Figures;
  launch_overhead_ms_by_count: Figures;
  poll_detect_lag_ms: Figure | undefined;
  script_overhead_ms: Figures;
}

const isFigure = (f: Figure | undefined): boolean => {
  const [min, median, max] = [f?.min, f?.median, f?.max];
  return (
    typeof min === 'number' &&
    typeof median === 'number' &&
    typeof max === 'number' &&
    [min, median, max].every((n) => Number.isFinite(n)) &&
    min <= median &&
    median <= max
  );
};

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
      const b = JSON.parse(readFileSync(file, 'utf8')) as BenchJson;

      for (const variant of ['aws', 'gcp', 'kubernetes', 'aws_all_sdks_bundle'])
        expect(isFigure(b.cold_start_ms[variant])).toBe(true);
      expect(b.bundle_bytes.entries['index.js']).toBeGreaterThan(0);
      expect(b.bundle_bytes.entries['post.js']).toBeGreaterThan(0);
      const holds = Object.values(b.bundle_bytes.chunks).map((c) => c.holds);
      expect(holds).toEqual(expect.arrayContaining(['aws', 'gcp', 'kubernetes']));
      for (const part of ['total', 'before_machine', 'after_online'])
        expect(isFigure(b.critical_path_round_trips[part])).toBe(true);
      expect(Object.keys(b.api_calls_per_runner.aws).sort()).toEqual(['ec2', 'github', 'ssm']);
      expect(Object.keys(b.api_calls_per_runner.kubernetes).sort()).toEqual(['github', 'kubernetes']);
      for (const count of b.params.counts) {
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
