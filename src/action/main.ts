import * as core from '@actions/core';
import { loadCloud } from '../clouds/types.js';
import { kubeconfigSecrets, parseSpec, type LaunchSpec } from '../config.js';
import { errorMessage } from '../errors.js';
import { GitHubForge } from '../forge/github.js';
import { launch, type LaunchResult } from '../lifecycle.js';
import { actionsLog } from './core-log.js';
import { runContext } from './context.js';
import { saveLedger } from './state.js';

/** Main: validate every input, launch, wait until online, write outputs and a summary. */
export async function runMain(): Promise<void> {
  const cancel = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    core.warning(`Received ${sig}: no new machine or registration will be created; post ends what was recorded.`);
    cancel.abort(new Error(`cancelled by ${sig}`));
    setTimeout(() => process.exit(1), 3000).unref();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const ctx = runContext();
    const spec = parseSpec((name) => core.getInput(name), ctx);
    core.setSecret(spec.forge.token);
    const access = spec.machine.kubernetes?.access;
    if (access && 'text' in access) for (const secret of kubeconfigSecrets(access.text)) core.setSecret(secret);
    const forge = new GitHubForge(spec.forge, actionsLog);
    // The first request goes out now; loading the cloud's SDK overlaps its round trip.
    forge.downloads(spec.runner.version).catch(() => undefined);
    const cloud = await loadCloud(spec.machine.cloud, spec.machine.region, { kubernetes: access });
    const result = await launch(spec, ctx, { cloud, forge, log: actionsLog, persist: saveLedger, signal: cancel.signal });
    writeOutputs(result);
    await writeSummary(spec, result);
  } catch (err) {
    core.setFailed(errorMessage(err));
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  }
}

function writeOutputs(result: LaunchResult): void {
  core.setOutput('runner-names', result.runners.map((r) => r.name).join(','));
  core.setOutput('runner-ids', result.runners.map((r) => r.id).join(','));
  core.setOutput('labels', result.labels.join(','));
  core.setOutput('instance-ids', result.runners.map((r) => r.machine.id).join(','));
  core.setOutput('instance-types', result.runners.map((r) => r.machine.type).join(','));
  core.setOutput('spot', String(result.runners.every((r) => r.machine.spot)));
}

async function writeSummary(spec: LaunchSpec, result: LaunchResult): Promise<void> {
  await core.summary
    .addHeading('Runners launched', 3)
    .addTable([
      [
        { data: 'Runner', header: true },
        { data: 'Cloud', header: true },
        { data: 'Instance', header: true },
        { data: 'Type', header: true },
        { data: 'Market', header: true },
        { data: 'Region', header: true },
        { data: 'Seconds to online', header: true },
      ],
      ...result.runners.map((r) => [
        r.name,
        spec.machine.cloud,
        r.machine.id,
        r.machine.type,
        r.machine.spot ? 'spot' : 'on-demand',
        result.region,
        String(r.secondsToOnline),
      ]),
    ])
    .addRaw(`Labels: ${result.labels.join(', ')}. ${spec.runner.single ? 'Each runner takes one job and then its machine ends.' : `Each machine ends after ${spec.runner.idleTimeoutSeconds}s without a job.`}`)
    .write();
}
