import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CLOUD_NAMES } from '../src/clouds/index.js';
import { TAG } from '../src/clouds/tags.js';

/**
 * `.github/workflows/real-clouds.yml` cannot run here: it needs real accounts. What can be checked
 * is that it is what it says, as written: for every cloud, on demand and on a schedule gated by
 * that cloud's configuration, the action from this checkout launches a small GPU runner, a job on
 * that runner needs the GPU and a home directory, `mode: cleanup` ends the run, and the cloud's
 * own CLI then looks for anything carrying this run's tag, failing when it finds some. Its shell
 * steps pass shellcheck, and it passes only inputs the action has.
 */

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  if?: string;
  needs?: string | string[];
  'runs-on': string | string[];
  outputs?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: { workflow_dispatch: { inputs: Record<string, { type: string }> }; schedule: Array<{ cron: string }> };
  permissions: Record<string, string>;
  jobs: Record<string, Job>;
}

const root = path.join(import.meta.dirname, '..');
const file = path.join(root, '.github', 'workflows', 'real-clouds.yml');
const workflow = parse(fs.readFileSync(file, 'utf8')) as Workflow;
const action = parse(fs.readFileSync(path.join(root, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { required?: boolean }>;
};

/** How each cloud's CLI names the run-id tag the action writes (labels cannot hold `:` on two of them). */
const RUN_TAG_FILTER: Record<string, { cli: string; filter: string }> = {
  aws: { cli: 'aws ec2 describe-instances', filter: `Name=tag:${TAG.runId},Values=$RUN_ID` },
  azure: { cli: 'az resource list', filter: `--tag "${TAG.runId}=$RUN_ID"` },
  gcp: { cli: 'gcloud compute instances list', filter: `labels.${TAG.runId.replace(':', '-')}=$RUN_ID` },
  kubernetes: { cli: 'kubectl get', filter: `"${TAG.runId.replace('cml-runner:', 'cml-runner/')}=$RUN_ID"` },
};

const ourStep = (job: Job): Step => {
  const steps = job.steps.filter((s) => s.uses === './');
  expect(steps).toHaveLength(1);
  return steps[0]!;
};

describe('the real-clouds workflow', () => {
  test('runs on demand with a choice per cloud, on a schedule, and signs in with OIDC only', () => {
    expect(Object.keys(workflow.on.workflow_dispatch.inputs).sort()).toEqual([...CLOUD_NAMES].sort());
    for (const input of Object.values(workflow.on.workflow_dispatch.inputs)) expect(input.type).toBe('boolean');
    expect(workflow.on.schedule.length).toBeGreaterThan(0);
    expect(workflow.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
  });

  test.each([...CLOUD_NAMES])(
    '%s: scheduled only where configured; launches a small GPU from this checkout',
    (cloud) => {
      const launch = workflow.jobs[`${cloud}-launch`]!;
      expect(launch).toBeDefined();
      // On demand when chosen; on the schedule only when one of the cloud's variables is set.
      expect(launch.if).toContain(`github.event_name == 'workflow_dispatch' && inputs.${cloud}`);
      expect(launch.if).toMatch(/github\.event_name == 'schedule' && vars\.CML_REAL_\w+ != ''/);
      const step = ourStep(launch);
      expect(step.with).toMatchObject({ cloud, gpu: 't4', type: 's' });
      expect(step.with!.mode ?? 'launch').toBe('launch');
      expect(launch.outputs?.['run-label']).toBe(`\${{ steps.${(step as { id?: string }).id}.outputs.run-label }}`);
      expect(launch.outputs?.['launch-label']).toBe(
        `\${{ steps.${(step as { id?: string }).id}.outputs.launch-label }}`,
      );
      // The configuration is checked first, so a dispatch without it fails saying what is missing.
      expect(launch.steps[0]!.run).toMatch(/::error::.*CML_REAL_/);
    },
  );

  test.each([...CLOUD_NAMES])('%s: the job runs on the run’s runner and needs the GPU and a HOME', (cloud) => {
    const job = workflow.jobs[`${cloud}-job`]!;
    expect(job.needs).toBe(`${cloud}-launch`);
    expect(job['runs-on']).toEqual(
      expect.arrayContaining(['self-hosted', `\${{ needs.${cloud}-launch.outputs.launch-label }}`]),
    );
    const scripts = job.steps.map((s) => s.run?.trim());
    expect(scripts).toEqual(expect.arrayContaining(['nvidia-smi', 'git config --global user.name x']));
  });

  test.each([...CLOUD_NAMES])(
    '%s: cleanup always runs, then the cloud’s CLI fails on anything tagged for the run',
    (cloud) => {
      const cleanup = workflow.jobs[`${cloud}-cleanup`]!;
      expect(cleanup.needs).toEqual([`${cloud}-launch`, `${cloud}-job`]);
      expect(cleanup.if).toContain('always()');
      const steps = cleanup.steps;
      const ours = ourStep(cleanup);
      expect(ours.with).toMatchObject({ mode: 'cleanup', cloud });
      const check = steps[steps.length - 1]!;
      expect(steps.indexOf(check)).toBeGreaterThan(steps.indexOf(ours));
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a workflow expression, not a template
      expect(check.env?.RUN_ID).toBe('${{ github.run_id }}');
      const { cli, filter } = RUN_TAG_FILTER[cloud]!;
      expect(check.run).toContain(cli);
      expect(check.run).toContain(filter);
      expect(check.run).toMatch(/exit 1\s*$/);
    },
  );

  test('passes only inputs the action has, and every required one', () => {
    const required = Object.entries(action.inputs)
      .filter(([, i]) => i.required)
      .map(([name]) => name);
    for (const [name, job] of Object.entries(workflow.jobs)) {
      for (const step of job.steps.filter((s) => s.uses === './')) {
        for (const key of Object.keys(step.with ?? {}))
          expect({ name, key, known: key in action.inputs }).toEqual({ name, key, known: true });
        for (const key of required)
          expect({ name, key, given: key in (step.with ?? {}) }).toEqual({ name, key, given: true });
      }
    }
  });

  test('its shell steps pass shellcheck', () => {
    const scripts = Object.entries(workflow.jobs).flatMap(([name, job]) =>
      job.steps.filter((s) => s.run).map((s, i) => ({ name: `${name}#${i}`, run: s.run! })),
    );
    expect(scripts.length).toBeGreaterThan(8);
    for (const { name, run } of scripts) {
      // Expressions are substituted before the shell sees the script; a word stands in for them.
      const script = `#!/bin/bash\nset -e\n${run.replace(/\$\{\{[^}]*\}\}/g, 'EXPR')}`;
      let out = '';
      try {
        execFileSync('shellcheck', ['-s', 'bash', '-'], { input: script, encoding: 'utf8' });
      } catch (err) {
        const e = err as { code?: string; stdout?: string };
        if (e.code === 'ENOENT') throw new Error('shellcheck is not installed: apt-get install shellcheck');
        out = e.stdout ?? String(err);
      }
      expect({ name, out }).toEqual({ name, out: '' });
    }
  });
});
