import type { RunContext } from '../config.js';

/** How many runners are minted, machines requested or things ended at once (GitHub writes are paced by the forge). */
export const CONCURRENCY = 25;

/** The label that ties a registration to its workflow run (`mode: cleanup` finds them by it). */
export const runLabel = (ctx: Pick<RunContext, 'runId'>): string => `cml-run-${ctx.runId}`;

/** What a cancelled launch says: it stops, and the post step ends what it recorded. */
export const CANCELLED = 'The launch was cancelled; post will end everything recorded so far.';

/** Thrown where a launch notices its cancel signal. */
export function stopIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new Error(CANCELLED);
}
