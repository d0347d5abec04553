import * as core from '@actions/core';
import { type CloudSpec, descriptorOf, loadCloud } from '../clouds/index.js';
import { errorMessage } from '../errors.js';
import { realClock } from '../retry.js';
import { GitHubForge } from '../forge/github.js';
import { nothingPending, pending } from '../ledger.js';
import { endLedger } from '../lifecycle/index.js';
import { runContext } from './context.js';
import { actionsLog } from './core-log.js';
import { loadLedger } from './state.js';

/**
 * Post runs with `post-if: always()`. A launch that finished with every runner online needs
 * nothing: its runners end themselves. Anything else is ended here, from the ledger.
 */
export async function runPost(): Promise<void> {
  try {
    const ledger = loadLedger();
    const { machines, registrations, resources } = ledger ?? { machines: [], registrations: [] };
    if (!ledger || machines.length + registrations.length + (resources ?? []).length === 0) {
      core.info('Nothing was created; nothing to clean up.');
      return;
    }
    const todo = pending(ledger);
    if (nothingPending(todo)) {
      core.info(
        ledger.keep.length > 0
          ? `Every runner that came online (${ledger.keep.join(', ')}) ends itself after its job or idle-timeout; ` +
              'main already ended the rest, if any.'
          : 'Main already ended everything the launch created.',
      );
      return;
    }
    const token = core.getInput('token');
    core.setSecret(token);
    await core.group('Cleaning up the failed launch', async () => {
      // Post reaches the cloud the same way main did: the cloud's own options, from the same
      // inputs and environment, read by its descriptor.
      const { env } = runContext();
      const descriptor = descriptorOf(ledger.cloud);
      const options = descriptor.options((name) => core.getInput(name), env);
      for (const secret of descriptor.secrets?.(options) ?? []) core.setSecret(secret);
      const spec = { name: ledger.cloud, options } as CloudSpec;
      const cloud = await loadCloud(spec, ledger.region, { env, log: actionsLog, clock: realClock });
      const forge = new GitHubForge({ scope: ledger.forge.scope, apiUrl: ledger.forge.apiUrl, token }, actionsLog);
      const report = await endLedger(ledger, { cloud, forge, log: actionsLog });
      core.info(`Ended ${report.machines.length} machine(s) and ${report.registrations.length} registration(s).`);
      for (const r of report.resources) core.info(`${r.kind} ${r.id ?? r.name}: ${r.result}`);
    });
  } catch (err) {
    core.setFailed(errorMessage(err));
  }
}
