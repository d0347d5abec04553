#!/usr/bin/env node
// The README shows the permission documents of docs/permissions/ as they are: each sits between
// `<!-- include: PATH -->` and `<!-- /include -->` as a fenced block with the file's text.
// `node scripts/include-docs.mjs` rewrites those blocks from the files; `--check` changes nothing
// and exits 1 when a block differs from its file, a marker names no file, or a file of
// docs/permissions/ is shown nowhere.
import fs from 'node:fs';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..');
const documents = ['README.md'];
const included = path.join('docs', 'permissions');
const FENCE = { '.json': 'json', '.yaml': 'yaml', '.yml': 'yaml', '.txt': '' };
const BLOCK = /<!-- include: (\S+) -->\n[\s\S]*?<!-- \/include -->/g;

function render(text, problems, shown) {
  return text.replace(BLOCK, (_all, file) => {
    const full = path.join(root, file);
    if (!fs.existsSync(full)) {
      problems.push(`${file} is included but does not exist`);
      return _all;
    }
    shown.add(path.normalize(file));
    const body = fs.readFileSync(full, 'utf8').replace(/\n*$/, '\n');
    const lang = FENCE[path.extname(file)] ?? '';
    return `<!-- include: ${file} -->\n\`\`\`${lang}\n${body}\`\`\`\n<!-- /include -->`;
  });
}

function walk(dir) {
  return fs
    .readdirSync(path.join(root, dir), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

const check = process.argv.includes('--check');
const problems = [];
const shown = new Set();
for (const doc of documents) {
  const file = path.join(root, doc);
  const before = fs.readFileSync(file, 'utf8');
  const after = render(before, problems, shown);
  if (after === before) continue;
  if (check) problems.push(`${doc} does not show its included files as they are: run npm run docs`);
  else fs.writeFileSync(file, after);
}
for (const file of walk(included)) if (!shown.has(file)) problems.push(`${file} is shown in no document`);
if (problems.length > 0) {
  for (const p of problems) console.error(`include-docs: ${p}`);
  process.exit(1);
}
