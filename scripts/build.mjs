// Bundles the action into dist/: one bundle for main and post, each cloud SDK in its own lazily
// loaded chunk. No source maps are written. The output must equal what is committed.
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
execFileSync('ncc', ['build', 'src/action/index.ts', '-o', 'dist', '--target', 'es2023', '--quiet'], { stdio: 'inherit' });

// Post has its own small entry that marks itself and loads the same bundle. A state flag alone
// cannot tell post apart when main was killed before it could write one: post would then launch.
writeFileSync(
  'dist/post.js',
  "// The post step: the same bundle as main, told that it is post (see src/action/index.ts).\n'use strict';\nglobalThis.cmlRunnerActionStep = 'post';\nrequire('./index.js');\n",
);
