/**
 * A runner's life: `launch` brings runners online (launch.ts, with placements.ts and wait.ts);
 * `endLedger`, `endRun` and `sweep` end them (end.ts).
 */
export { CANCELLED, runLabel } from './common.js';
export { type EndDeps, type EndReport, endLedger, endRun, sweep } from './end.js';
export { type LaunchDeps, type LaunchedRunner, type LaunchResult, launch } from './launch.js';
export { type TriedPlacement, describePlacement, placementsFor } from './placements.js';
