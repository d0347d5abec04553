import * as core from '@actions/core';
import type { Log } from '../log.js';

/** The core's log, written to the Actions log with masking and groups. */
export const actionsLog: Log = {
  debug: (m) => core.debug(m),
  info: (m) => core.info(m),
  warning: (m) => core.warning(m),
  secret: (v) => core.setSecret(v),
  group: (name, fn) => core.group(name, fn),
};
