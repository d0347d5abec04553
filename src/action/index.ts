import { runMain } from './main.js';
import { runPost } from './post.js';
import { isPost } from './state.js';

/** One bundle for both steps: the state flag written by main tells post apart (as actions/checkout does). */
void (isPost() ? runPost() : runMain());
