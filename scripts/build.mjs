// Bundles the action into dist/: one bundle for main and post, each cloud SDK in its own lazily
// loaded chunk. No source maps are written. The output must equal what is committed.
// It is built beside dist/ and swapped in at the end, so a failed build, or a test or chaos run
// reading dist/ meanwhile, never finds it half written or missing.
import { execFileSync } from 'node:child_process';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';

const next = 'dist.next';
const old = 'dist.old';
rmSync(next, { recursive: true, force: true });
execFileSync('ncc', ['build', 'src/action/index.ts', '-o', next, '--target', 'es2023', '--quiet'], {
  stdio: 'inherit',
});

// Post has its own small entry that marks itself and loads the same bundle. A state flag alone
// cannot tell post apart when main was killed before it could write one: post would then launch.
writeFileSync(
  `${next}/post.js`,
  "// The post step: the same bundle as main, told that it is post (see src/action/index.ts).\n'use strict';\nglobalThis.cmlRunnerActionStep = 'post';\nrequire('./index.js');\n",
);

rmSync(old, { recursive: true, force: true });
if (existsSync('dist')) renameSync('dist', old);
renameSync(next, 'dist');
rmSync(old, { recursive: true, force: true });
