import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { type PolicyRule, readLauncherPolicy } from '../sandbox/kubernetes/rbac.js';
import type { Sandbox } from '../sandbox/index.js';
import { useSandbox } from './support/sandbox.js';
import { attemptLaunch, cleanupLedger, cleanupRunOf, settle, sweepOf } from './helpers.js';

/**
 * The launcher's Role (docs/permissions/kubernetes/launcher-role.yaml) is what the fake API
 * server enforces for the kubeconfig the tests use. Each rule, and each verb of each rule, is
 * taken away in turn: a launch, its cleanup and a sweep then either work or fail with the
 * permission named, and nothing is left once the Role is whole again.
 */

let sb: Sandbox;
const sandbox = useSandbox({ kubernetesSecondMs: 20 });
let documented: PolicyRule[];

beforeAll(() => {
  sb = sandbox();
  documented = structuredClone(sb.kubernetes.launcher.rules);
});

afterEach(() => {
  sb.kubernetes.launcher.rules = structuredClone(documented);
});

interface Missing {
  group: string;
  resource: string;
  /** Undefined: the whole rule. */
  verb?: string;
}

/** The Role without one verb of one rule, or without the rule. */
function without(m: Missing): PolicyRule[] {
  return structuredClone(documented)
    .map((r) => {
      if (!r.apiGroups.includes(m.group) || !r.resources.includes(m.resource)) return r;
      return m.verb === undefined ? undefined : { ...r, verbs: r.verbs.filter((v) => v !== m.verb) };
    })
    .filter((r): r is PolicyRule => r !== undefined && r.verbs.length > 0);
}

// The documented rules, read the same way the fake reads them.
const cases: Missing[] = [];
for (const rule of readLauncherPolicy().rules) {
  for (const group of rule.apiGroups)
    for (const resource of rule.resources) {
      cases.push({ group, resource });
      for (const verb of rule.verbs) cases.push({ group, resource, verb });
    }
}

const title = (m: Missing): string => `${m.verb ?? 'every verb'} on ${m.resource}${m.group ? `.${m.group}` : ''}`;

describe('the launcher Role, one permission taken away at a time', () => {
  test('the documented Role has the rules this table walks through', () => {
    expect(cases.map(title)).toEqual(
      expect.arrayContaining(['list on pods', 'get on pods/log', 'delete on secrets', 'patch on jobs.batch']),
    );
    // Secrets are never read or listed: the launcher only creates and deletes them by name.
    const secrets = documented.find((r) => r.resources.includes('secrets'))!;
    expect([...secrets.verbs].sort()).toEqual(['create', 'delete']);
  });

  test.each(cases.map((m) => [title(m), m] as const))(
    'without %s: launch, cleanup and sweep say what is missing, and nothing is left',
    async (_title, m) => {
      sb.kubernetes.launcher.rules = without(m);
      // Events and pod logs are read only when a runner fails: its startup script fails here.
      const failing = m.resource === 'events' || m.resource === 'pods/log';
      // A Job's create whose answer is lost is checked with a get (the only read of a Job by name).
      if (m.resource === 'jobs' && m.verb === 'get')
        sb.faults.add({
          service: 'kubernetes',
          action: 'create jobs',
          reset: 'after',
          where: { name: /^(?!cml-runner-dry-run)/ },
        });
      const { error, ledger } = await attemptLaunch(sb, {
        cloud: 'kubernetes',
        kubeconfig: sb.kubernetes.kubeconfig(),
        labels: `cml-rbac-${m.resource.replace('/', '-')}-${m.verb ?? 'all'}`,
        'startup-timeout': '60',
        ...(failing ? { 'startup-script': 'echo no luck; exit 3' } : {}),
      });
      const said: string[] = [error?.message ?? ''];
      // Post after a failed launch, then mode: cleanup for the run, then mode: sweep.
      if (error && ledger) await cleanupLedger(sb, ledger).catch((err: Error) => said.push(err.message));
      await cleanupRunOf(sb, 'kubernetes').catch((err: Error) => said.push(err.message));
      await sweepOf(sb, 'kubernetes', 0).catch((err: Error) => said.push(err.message));

      const words = (verb: string): string =>
        `User "${sb.kubernetes.launcher.user}" cannot ${verb} resource "${m.resource}" in API group "${m.group}" ` +
        `in the namespace "${sb.kubernetes.launcher.namespace}"`;
      const verbs = m.verb ? [m.verb] : documented.find((r) => r.resources.includes(m.resource))!.verbs;
      // At least one refusal, in the API server's words, reached the user.
      expect(verbs.some((v) => said.join('\n').includes(words(v)))).toBe(true);
      // Only a Job that could not be deleted may outlive the cleanup.
      const left = await settle(sb, 10_000);
      if (!(m.resource === 'jobs' && m.verb === 'delete')) expect(left).toEqual([]);

      sb.kubernetes.launcher.rules = structuredClone(documented);
      await cleanupRunOf(sb, 'kubernetes');
      expect(await settle(sb)).toEqual([]);
    },
  );
});
