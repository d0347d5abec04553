import { randomBytes } from 'node:crypto';
import type { RunContext } from '../config.js';

/** How many runners are minted, machines requested or things ended at once (GitHub writes are paced by the forge). */
export const CONCURRENCY = 25;

/** The label that ties a registration to its workflow run (`mode: cleanup` finds them by it). */
export const runLabel = (ctx: Pick<RunContext, 'runId'>): string => `cml-run-${ctx.runId}`;

/**
 * The label only one launch's runners carry: `cml-` and 16 random hex digits. Unlike the run
 * label, which anyone who can see the run id can predict (and queue a job for before the
 * runners exist), nobody knows it before the launch hands it to its own workflow's jobs.
 */
export const newLaunchLabel = (): string => `cml-${randomBytes(8).toString('hex')}`;

/** What a launch label looks like, to find the one a reused runner carries. */
export const LAUNCH_LABEL = /^cml-[0-9a-f]{16}$/;

/** What a cancelled launch says: it stops, and the post step ends what it recorded. */
export const CANCELLED = 'The launch was cancelled; post will end everything recorded so far.';

/** Thrown where a launch notices its cancel signal. */
export function stopIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Error(CANCELLED);
}
