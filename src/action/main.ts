import * as core from '@actions/core';
import { descriptorOf, loadCloud } from '../clouds/index.js';
import { parseSpec, type LaunchSpec, type RunContext } from '../config.js';
import { errorMessage } from '../errors.js';
import { realClock } from '../retry.js';
import { GitHubForge } from '../forge/github.js';
import { endRun, launch, sweep, type EndReport, type LaunchResult } from '../lifecycle/index.js';
import { actionsLog } from './core-log.js';
import { runContext } from './context.js';
import { saveLedger } from './state.js';

/** Main: validate every input, then launch (and wait until online), clean up a run, or sweep. */
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
    const read = Object.assign((name: string) => core.getInput(name), {
      isSet: (name: string) => ctx.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] !== undefined,
    });
    const spec = parseSpec(read, ctx);
    core.setSecret(spec.forge.token);
    for (const secret of descriptorOf(spec.cloud.name).secrets?.(spec.cloud.options) ?? []) core.setSecret(secret);
    const forge = new GitHubForge(spec.forge, actionsLog, { clock: realClock, signal: cancel.signal });
    if (spec.mode === 'launch') {
      // The first request goes out now; loading the cloud's SDK overlaps its round trip.
      forge.downloads(spec.runner.version).catch(() => undefined);
    }
    const cloudContext = { env: ctx.env, log: actionsLog, clock: realClock, signal: cancel.signal };
    const cloud = await loadCloud(spec.cloud, spec.machine.region, cloudContext);
    if (spec.mode === 'launch') {
      const result = await launch(spec, ctx, {
        cloud,
        forge,
        log: actionsLog,
        persist: saveLedger,
        signal: cancel.signal,
      });
      writeOutputs(result);
      await writeSummary(spec, result);
      return;
    }
    const report =
      spec.mode === 'cleanup'
        ? await core.group(`Ending everything run ${ctx.runId} launched`, () =>
            endRun(ctx, { cloud, forge, log: actionsLog }),
          )
        : await core.group(`Sweeping what ${ctx.repository} left behind`, () =>
            sweep(ctx, spec.runner.startupTimeoutSeconds, { cloud, forge, log: actionsLog }),
          );
    core.setOutput('runner-names', report.registrations.map((r) => r.name).join(','));
    core.setOutput('instance-ids', report.machines.map((m) => m.id).join(','));
    await writeEndSummary(spec, ctx, report);
  } catch (err) {
    core.setFailed(errorMessage(err));
  } finally {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  }
}

function writeOutputs(result: LaunchResult): void {
  if (result.reused.length > 0) {
    core.setOutput('runner-names', result.reused.map((r) => r.name).join(','));
    core.setOutput('runner-ids', result.reused.map((r) => r.id).join(','));
    core.setOutput('reused', 'true');
  } else {
    core.setOutput('runner-names', result.runners.map((r) => r.name).join(','));
    core.setOutput('runner-ids', result.runners.map((r) => r.id).join(','));
    core.setOutput('reused', 'false');
  }
  core.setOutput('labels', result.labels.join(','));
  core.setOutput('run-label', result.runLabel);
  core.setOutput('launch-label', result.launchLabel);
  core.setOutput('instance-ids', result.runners.map((r) => r.machine.id).join(','));
  core.setOutput('instance-types', result.runners.map((r) => r.machine.type).join(','));
  core.setOutput('spot', String(result.runners.length > 0 && result.runners.every((r) => r.machine.spot)));
}

/**
 * Text from inputs and answers (labels, names, reasons), made plain for the job summary, which
 * GitHub renders as Markdown with HTML: every character either could read as markup becomes an
 * HTML character reference, which both show as the character itself.
 */
export function plain(text: string): string {
  return text.replace(/[&<>"'`*_[\]|~\\#]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A list of labels or names for the summary, each made plain. */
const plainList = (items: readonly string[]): string => items.map(plain).join(', ');

async function writeSummary(spec: LaunchSpec, result: LaunchResult): Promise<void> {
  if (result.reused.length > 0) {
    const which = result.reused.map((r) => `${plain(r.name)} (${r.busy ? 'busy' : 'idle'})`).join(', ');
    await core.summary
      .addHeading('Runners reused', 3)
      .addRaw(
        `Nothing was launched: ${which} ` +
          `${result.reused.length === 1 ? 'is' : 'are'} online with labels ${plainList(result.labels)}.`,
      )
      .write();
    return;
  }
  const tried = (r: LaunchResult['runners'][number]): string =>
    plain(
      r.tried
        .map((t) => `${t.type}${t.where ? ` in ${t.where}` : ''} ${t.spot ? 'spot' : 'on-demand'}: ${t.outcome}`)
        .join('; '),
    );
  const summary = core.summary.addHeading('Runners launched', 3).addTable([
    [
      { data: 'Runner', header: true },
      { data: 'Cloud', header: true },
      { data: 'Instance', header: true },
      { data: 'Type', header: true },
      { data: 'Market', header: true },
      { data: 'Region', header: true },
      { data: 'Seconds to online', header: true },
      { data: 'Tried, in order', header: true },
    ],
    ...result.runners.map((r) => [
      plain(r.name),
      spec.cloud.name,
      plain(r.machine.id),
      plain(r.machine.type),
      r.machine.spot ? 'spot' : 'on-demand',
      plain(result.region),
      String(r.secondsToOnline),
      tried(r),
    ]),
  ]);
  const ending = spec.runner.single
    ? 'Each runner takes one job and then its machine ends.'
    : `Each machine ends after ${spec.runner.idleTimeoutSeconds}s without a job.`;
  summary.addRaw(
    `Labels: ${plainList(result.labels)} (and ${plain(result.runLabel)}, which only this workflow run's runners ` +
      `carry, and ${plain(result.launchLabel)}, which only this launch's runners carry). ${ending}`,
    true,
  );
  if (result.failed.length > 0) {
    summary.addRaw(
      `${result.failed.length} runner(s) did not come up and were ended; allow-partial kept the others: ` +
        `${plainList(result.failed.map((f) => f.name))}.`,
      true,
    );
  }
  await summary.write();
}

async function writeEndSummary(spec: LaunchSpec, ctx: RunContext, report: EndReport): Promise<void> {
  const heading = spec.mode === 'cleanup' ? `Cleanup of run ${ctx.runId}` : `Sweep of ${plain(ctx.repository)}`;
  const rows = [
    ...report.machines.map((m) => [`machine ${plain(m.id)}`, plain(m.runnerName), m.result, plain(m.reason)]),
    ...report.registrations.map((r) => [`registration ${r.id}`, plain(r.name), r.result, plain(r.reason)]),
    // A resource belongs to no one runner: every machine of its launch used it.
    ...report.resources.map((r) => [`${plain(r.kind)} ${plain(r.id ?? r.name)}`, 'all', r.result, plain(r.reason)]),
  ];
  const summary = core.summary.addHeading(heading, 3);
  if (rows.length === 0) summary.addRaw('Nothing to end.');
  else
    summary.addTable([
      [
        { data: 'What', header: true },
        { data: 'Runner', header: true },
        { data: 'Result', header: true },
        { data: 'Why', header: true },
      ],
      ...rows,
    ]);
  core.info(`Ended ${report.machines.length} machine(s) and ${report.registrations.length} registration(s).`);
  await summary.write();
}
