/** What every fake is built from: one request pipeline, one fault plan, one timers helper. */
export { applyReset, type Fault, FaultPlan, type FiredFault, type Service } from './faults.js';
export { type Answer, type CallRecord, type Identified, type Pipeline, pipeline } from './pipeline.js';
export { sleep, Timers } from './timers.js';
