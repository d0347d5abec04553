// Bundles the action into dist/: one entry for main and post, each cloud SDK in its own lazily
// loaded chunk. No source maps are written. The output must equal what is committed.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
execFileSync('ncc', ['build', 'src/action/index.ts', '-o', 'dist', '--target', 'es2023', '--quiet'], { stdio: 'inherit' });
