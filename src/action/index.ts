import { runMain } from './main.js';
import { runPost } from './post.js';

/**
 * One bundle for both steps. action.yml runs dist/index.js for main and dist/post.js for post;
 * post.js sets this flag and loads the same bundle, so nothing is bundled twice and a post whose
 * main was killed at once (before it wrote any state) can never launch.
 */
const step = (globalThis as { cmlRunnerActionStep?: string }).cmlRunnerActionStep;
void (step === 'post' ? runPost() : runMain());
