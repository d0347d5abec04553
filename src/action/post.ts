import * as core from '@actions/core';
import { loadCloud } from '../clouds/types.js';
import { azureSubscription, clusterAccess, gcpProject, kubeconfigSecrets } from '../config.js';
import { errorMessage } from '../errors.js';
import { GitHubForge } from '../forge/github.js';
import { pending } from '../ledger.js';
import { cleanup } from '../lifecycle.js';
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
    if (!ledger || (ledger.machines.length === 0 && ledger.registrations.length === 0)) {
      core.info('Nothing was created; nothing to clean up.');
      return;
    }
    const todo = pending(ledger);
    if (todo.machines.length === 0 && todo.registrations.length === 0) {
      core.info(
        ledger.keep.length > 0
          ? `Every runner that came online (${ledger.keep.join(', ')}) ends itself after its job or idle-timeout; main already ended the rest, if any.`
          : 'Main already ended everything the launch created.',
      );
      return;
    }
    const token = core.getInput('token');
    core.setSecret(token);
    await core.group('Cleaning up the failed launch', async () => {
      // Post reaches the cluster the same way main did: same inputs, same environment.
      const access = ledger.cloud === 'kubernetes' ? clusterAccess((name) => core.getInput(name), runContext().kubernetes) : undefined;
      if (access && 'text' in access) for (const secret of kubeconfigSecrets(access.text)) core.setSecret(secret);
      const gcp = ledger.cloud === 'gcp' ? { project: gcpProject((name) => core.getInput(name), runContext().gcp) } : undefined;
      const azure = ledger.cloud === 'azure' ? { subscriptionId: azureSubscription((name) => core.getInput(name), runContext().azureSubscriptionId) } : undefined;
      const cloud = await loadCloud(ledger.cloud, ledger.region, { kubernetes: access, gcp, azure });
      const forge = new GitHubForge({ scope: ledger.forge.scope, apiUrl: ledger.forge.apiUrl, token }, actionsLog);
      const report = await cleanup(ledger, { cloud, forge, log: actionsLog });
      core.info(`Ended ${report.machines.length} machine(s) and ${report.registrations.length} registration(s).`);
    });
  } catch (err) {
    core.setFailed(errorMessage(err));
  }
}
