import * as core from '@actions/core';
import type { LedgerData } from '../ledger.js';

/**
 * The only place that knows state names. Main writes the ledger after every change
 * (`core.saveState` appends to GITHUB_STATE synchronously, so a SIGTERM cannot lose a write);
 * post reads it back.
 */
const LEDGER = 'ledger';

export const saveLedger = (data: LedgerData): void => core.saveState(LEDGER, JSON.stringify(data));

export function loadLedger(): LedgerData | undefined {
  const raw = core.getState(LEDGER);
  return raw ? (JSON.parse(raw) as LedgerData) : undefined;
}
