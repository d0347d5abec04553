import { describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CLOUD_NAMES as CLOUDS } from '../src/clouds/index.js';

/**
 * The documentation a user copies from must name what the action has: every input in the README
 * table and in the example workflows exists in action.yml, and every input and cloud there is
 * documented.
 */

const root = path.join(import.meta.dirname, '..');
const action = parse(fs.readFileSync(path.join(root, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { description: string }>;
};
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const inputs = Object.keys(action.inputs);

describe('docs match action.yml', () => {
  test('the README Inputs table lists every input, and nothing else', () => {
    const table = readme.slice(readme.indexOf('## Inputs'), readme.indexOf('## Outputs'));
    const documented = [...table.matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...inputs].sort());
  });

  test('every example workflow passes only inputs the action has', () => {
    const dir = path.join(root, '.github', 'workflows');
    const examples = fs.readdirSync(dir).filter((f) => f.startsWith('example-'));
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const file of examples) {
      const workflow = parse(fs.readFileSync(path.join(dir, file), 'utf8')) as {
        jobs: Record<string, { steps?: Array<{ uses?: string; with?: Record<string, unknown> }> }>;
      };
      const ours = Object.values(workflow.jobs)
        .flatMap((j) => j.steps ?? [])
        .filter((s) => s.uses?.startsWith('cml-runner-action/'));
      expect(ours.length).toBeGreaterThan(0);
      for (const step of ours)
        for (const key of Object.keys(step.with ?? {}))
          expect({ file, input: key, known: inputs.includes(key) }).toEqual({ file, input: key, known: true });
    }
  });

  test('every cloud is named in the cloud input and has a README section', () => {
    for (const cloud of CLOUDS) expect(action.inputs.cloud!.description).toContain(cloud);
    expect(readme).toContain('## Use it in a workflow (AWS)');
    expect(readme).toContain('## Use it in a workflow (Azure)');
    expect(readme).toContain('## Use it in a workflow (Google Cloud)');
    expect(readme).toContain('## Use it in a workflow (Kubernetes)');
  });
});
