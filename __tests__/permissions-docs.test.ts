import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The permission documents a user copies are files in docs/permissions/; the README shows each
 * as it is (`npm run docs` writes the blocks). A README that drifted from a file, or a file the
 * README does not show, fails here.
 */

const root = path.join(import.meta.dirname, '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/<!-- include: (\S+) -->\n```[a-z]*\n([\s\S]*?)```\n<!-- \/include -->/g)];
const files = (dir: string): string[] =>
  fs
    .readdirSync(path.join(root, dir), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));

describe('permission documents', () => {
  test('the README shows every file of docs/permissions/ exactly as it is', () => {
    const shown = new Map(blocks.map((m) => [m[1]!, m[2]!]));
    const all = files(path.join('docs', 'permissions'));
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const file of all) {
      const text = fs.readFileSync(path.join(root, file), 'utf8').replace(/\n*$/, '\n');
      expect({ file, shown: shown.get(file) }).toEqual({ file, shown: text });
    }
  });

  test('npm run docs would change nothing', () => {
    expect(() =>
      execFileSync('node', ['scripts/include-docs.mjs', '--check'], { cwd: root, stdio: 'pipe' }),
    ).not.toThrow();
  });

  test('the JSON and YAML documents parse', async () => {
    const { parseAllDocuments } = await import('yaml');
    for (const file of files(path.join('docs', 'permissions'))) {
      const text = fs.readFileSync(path.join(root, file), 'utf8');
      if (file.endsWith('.json')) expect(() => JSON.parse(text)).not.toThrow();
      if (file.endsWith('.yaml')) for (const doc of parseAllDocuments(text)) expect(doc.errors).toEqual([]);
    }
  });
});
