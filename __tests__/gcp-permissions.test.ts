import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import { InstancesClient } from '@google-cloud/compute/build/src/v1/instances_client.js';
import { ZoneOperationsClient } from '@google-cloud/compute/build/src/v1/zone_operations_client.js';
import { type AuthClient, IdentityPoolClient, OAuth2Client } from 'google-auth-library';
import { parse } from 'yaml';
import type { Sandbox } from '../sandbox/index.js';
import { GCE_PROJECT, GCE_SERVICE_ACCOUNTS } from '../sandbox/gce.js';
import { POLICY_DIR, compileCondition, loadPolicies } from '../sandbox/gce/policy.js';
import { useSandbox } from './support/sandbox.js';
import { MemoryLog, attemptLaunch, cleanupRunOf, settle, sweepOf } from './helpers.js';

/**
 * The launcher's and the VM's roles and conditions of docs/permissions/gcp/ are what the fake
 * Compute Engine grants: every other Google suite runs under them. Here, each permission is shown
 * to be needed (a launcher without it fails, naming it, and leaves nothing), and the condition
 * to hold (VMs not named cml-… are out of the launcher's reach).
 */

const sandbox = useSandbox({ gceSecondMs: 100 });
let sb: Sandbox;
beforeAll(() => {
  sb = sandbox();
});

let restore: Parameters<Sandbox['gce']['configure']>[0] | undefined;
const configure = (settings: Parameters<Sandbox['gce']['configure']>[0]): void => {
  const before = sb.gce.configure(settings);
  restore ??= before;
};
afterEach(() => {
  if (restore) sb.gce.configure(restore);
  restore = undefined;
});

const ZONE = 'us-central1-a';
const base = { cloud: 'gcp', region: 'us-central1', type: 's', 'gcp-service-account': GCE_SERVICE_ACCOUNTS.runner };
const role = (file: string): string[] =>
  (parse(fs.readFileSync(`${POLICY_DIR}/${file}`, 'utf8')) as { includedPermissions: string[] }).includedPermissions;

/**
 * What each permission is needed for: the inputs of a launch that needs it, and where its
 * refusal shows: `insert` fails the launch before anything exists, `launch` fails it after the
 * insert (the VM is then ended by cleanup), `warning` is logged by a launch that goes on (or
 * fails for another reason), `cleanup` fails the cleanup of a launch that worked.
 */
type Need = { inputs?: Record<string, string>; failBoot?: boolean; when: 'insert' | 'launch' | 'warning' | 'cleanup' };
const image = (path: string): Need => ({
  inputs: { image: `projects/${GCE_PROJECT}/global/images/${path}` },
  when: 'insert',
});
const NEEDED_BY: Record<string, Need> = {
  'compute.instances.create': { when: 'insert' },
  'compute.instances.setLabels': { when: 'insert' },
  'compute.instances.setMetadata': { when: 'insert' },
  'compute.instances.setTags': { when: 'insert' },
  'compute.instances.setServiceAccount': { when: 'insert' },
  'compute.disks.create': { when: 'insert' },
  'compute.disks.setLabels': { when: 'insert' },
  'compute.instances.get': { inputs: { single: 'false', 'idle-timeout': '600' }, when: 'warning' },
  'compute.instances.getSerialPortOutput': { inputs: { 'startup-timeout': '5' }, failBoot: true, when: 'warning' },
  'compute.instances.delete': { when: 'cleanup' },
  'compute.instances.list': { when: 'launch' },
  'compute.zoneOperations.get': { when: 'launch' },
  'compute.machineTypes.list': { when: 'insert' },
  'compute.acceleratorTypes.list': { inputs: { gpu: 't4' }, when: 'insert' },
  'compute.subnetworks.use': { when: 'insert' },
  'compute.subnetworks.useExternalIp': { when: 'insert' },
  'compute.images.get': image('custom-runner'),
  'compute.images.getFromFamily': image('family/custom-runner'),
  'compute.images.useReadOnly': image('custom-runner'),
};

const textOf = (err: unknown): string => (err instanceof Error ? err.message : JSON.stringify(err));

describe('the documented roles', () => {
  test('the table covers exactly the launcher roles, and the VM only deletes', () => {
    const launcher = [...role('launcher-role.yaml'), ...role('launcher-list-role.yaml')];
    expect([...launcher].sort()).toEqual(Object.keys(NEEDED_BY).sort());
    expect(new Set(launcher).size).toBe(launcher.length);
    expect(role('vm-role.yaml')).toEqual(['compute.instances.delete']);
  });

  test.each(Object.keys(NEEDED_BY))('a launcher without %s fails naming it, and leaves nothing', async (permission) => {
    const { inputs = {}, when, failBoot } = NEEDED_BY[permission]!;
    configure({ deployerLacks: [permission] });
    if (failBoot) sb.machines.failBoot(1);
    const needed = `Required '${permission}' permission for 'projects/${GCE_PROJECT}`;
    const log = new MemoryLog();
    const made = sb.gce.instances().length;
    const launched = await attemptLaunch(sb, { ...base, ...inputs }, undefined, '4242', log);
    if (when === 'insert' || when === 'launch') {
      expect(textOf(launched.error)).toContain(needed);
      if (when === 'insert') expect(sb.gce.instances()).toHaveLength(made);
    } else if (when === 'warning') {
      expect([...log.lines, textOf(launched.error)].join('\n')).toContain(needed);
    } else {
      expect(launched.error).toBeUndefined();
      const refused = await cleanupRunOf(sb, 'gcp').then(
        (report) => JSON.stringify(report),
        (err: unknown) => textOf(err),
      );
      expect(refused).toContain(needed);
      expect(sb.gce.instances().filter((i) => !i.deleted)).toHaveLength(1);
    }
    sb.gce.configure({ deployerLacks: [] });
    await cleanupRunOf(sb, 'gcp');
    expect(await settle(sb)).toEqual([]);
  });
});

describe("the launcher's binding on the VM's service account", () => {
  test('service-account-user.yaml binds roles/iam.serviceAccountUser on the VM account alone, as step 5 grants it', () => {
    const doc = parse(fs.readFileSync(`${POLICY_DIR}/service-account-user.yaml`, 'utf8')) as Record<string, unknown>;
    expect(doc).toEqual({
      resource: 'serviceAccounts/RUNNER_VM',
      role: 'roles/iam.serviceAccountUser',
      members: ['serviceAccount:LAUNCHER'],
    });
    expect(loadPolicies().actAs).toEqual([{ account: 'RUNNER_VM', members: ['serviceAccount:LAUNCHER'] }]);
    const readme = fs.readFileSync('README.md', 'utf8');
    expect(readme).toContain(
      'gcloud iam service-accounts add-iam-policy-binding "$RUNNER_VM" --project "$PROJECT_ID" \\\n' +
        '  --role roles/iam.serviceAccountUser --member "serviceAccount:$LAUNCHER"',
    );
  });

  test.each([
    ['without the binding', GCE_SERVICE_ACCOUNTS.runner, true],
    ['with the binding, as another account', GCE_SERVICE_ACCOUNTS.runnerNoDelete, false],
  ])(
    '%s: Compute Engine refuses the insert naming the account and the role, and nothing is left',
    async (_t, account, lacks) => {
      if (lacks) configure({ deployerLacks: ['iam.serviceAccounts.actAs'] });
      const made = sb.gce.instances().length;
      const { error } = await attemptLaunch(sb, { ...base, 'gcp-service-account': account });
      expect(textOf(error)).toContain(
        `The user does not have access to service account '${account}'. User: '${GCE_SERVICE_ACCOUNTS.deployer}'. ` +
          'Ask a project owner to grant you the iam.serviceAccountUser role on the service account',
      );
      expect(textOf(error)).toContain(`needs iam.serviceAccounts.actAs on ${account}`);
      const refused = sb.gce.calls.filter((c) => c.action.startsWith('instances.insert ') && c.status === 400);
      expect(refused.map((c) => c.reason)).toContain('badRequest');
      expect(sb.gce.instances()).toHaveLength(made);
      await cleanupRunOf(sb, 'gcp');
      expect(await settle(sb)).toEqual([]);
    },
  );
});

/** Compute Engine clients acting as `auth`, on the sandbox. */
function compute(auth: AuthClient): { instances: InstancesClient; ops: ZoneOperationsClient } {
  const options = {
    apiEndpoint: '127.0.0.1',
    port: Number(new URL(sb.gce.url).port),
    protocol: 'http',
    fallback: true,
    authClient: auth,
  };
  return { instances: new InstancesClient(options), ops: new ZoneOperationsClient(options) };
}

function owner(): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({
    access_token: sb.gce.accessToken(GCE_SERVICE_ACCOUNTS.admin),
    expiry_date: Date.now() + 3_600_000,
  });
  return client;
}

const launcher = (): IdentityPoolClient =>
  new IdentityPoolClient(JSON.parse(fs.readFileSync(sb.env.GOOGLE_APPLICATION_CREDENTIALS, 'utf8')));

async function done(c: { ops: ZoneOperationsClient }, lro: { latestResponse: unknown }): Promise<void> {
  const name = (lro.latestResponse as { name: string }).name;
  let [op] = await c.ops.wait({ project: GCE_PROJECT, zone: ZONE, operation: name });
  while (op.status !== 'DONE') [op] = await c.ops.wait({ project: GCE_PROJECT, zone: ZONE, operation: name });
}

describe('the condition', () => {
  test("a VM not named cml-… is out of the launcher's reach, even labelled as the action's: sweep leaves it", async () => {
    const admin = compute(owner());
    const past = new Date(Date.now() - 3600_000).toISOString();
    const [insert] = await admin.instances.insert({
      project: GCE_PROJECT,
      zone: ZONE,
      instanceResource: {
        name: 'prod-db',
        machineType: `zones/${ZONE}/machineTypes/e2-standard-2`,
        disks: [
          {
            boot: true,
            autoDelete: true,
            initializeParams: { sourceImage: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64' },
          },
        ],
        networkInterfaces: [{ network: 'global/networks/default' }],
        labels: { 'cml-runner-managed': 'true', 'cml-runner-repo': 'octo-org_ml' },
        metadata: {
          items: [
            { key: 'cml-runner-expires-at', value: past },
            { key: 'cml-runner-repo', value: 'octo-org/ml' },
          ],
        },
      },
    });
    await done(admin, insert);
    const where = { project: GCE_PROJECT, zone: ZONE, instance: 'prod-db' };
    const resource = `projects/${GCE_PROJECT}/zones/${ZONE}/instances/prod-db`;
    const as = compute(launcher());
    // Listing is not conditioned: the launcher sees it, and can do nothing to it.
    const denied = async (call: Promise<unknown>): Promise<string> => call.then(() => 'allowed', textOf);
    expect(await denied(as.instances.get(where))).toContain(
      `Required 'compute.instances.get' permission for '${resource}'`,
    );
    expect(
      await denied(as.instances.setMetadata({ ...where, metadataResource: { fingerprint: 'x', items: [] } })),
    ).toContain(`Required 'compute.instances.setMetadata' permission for '${resource}'`);
    expect(await denied(as.instances.delete(where))).toContain(
      `Required 'compute.instances.delete' permission for '${resource}'`,
    );
    const swept = await sweepOf(sb, 'gcp', 0).then(JSON.stringify, textOf);
    expect(swept).toContain(`Required 'compute.instances.delete' permission for '${resource}'`);
    expect(sb.gce.instance(ZONE, 'prod-db')).toMatchObject({ deleted: false, status: 'RUNNING' });
    // The launcher may not create such a VM either.
    const made = await denied(
      as.instances.insert({
        project: GCE_PROJECT,
        zone: ZONE,
        instanceResource: { name: 'not-cml', machineType: `zones/${ZONE}/machineTypes/e2-standard-2` },
      }),
    );
    expect(made).toContain(
      `Required 'compute.instances.create' permission for 'projects/${GCE_PROJECT}/zones/${ZONE}/instances/not-cml'`,
    );
    await done(admin, (await admin.instances.delete(where))[0]);
    for (const c of [admin, as]) await Promise.all([c.instances.close(), c.ops.close()]);
    expect(await settle(sb)).toEqual([]);
  });

  test("a provider whose attribute condition names another repository refuses the workflow's token", async () => {
    configure({ wifRepository: 'octo-org/other' });
    const made = sb.gce.instances().length;
    const { error } = await attemptLaunch(sb, base);
    expect(textOf(error)).toContain('The given credential is rejected by the attribute condition.');
    expect(sb.gce.calls.filter((c) => c.action === 'sts.token global').map((c) => c.reason)).toContain(
      'unauthorized_client',
    );
    expect(sb.gce.instances()).toHaveLength(made);
    expect(await settle(sb)).toEqual([]);
  });

  test('the conditions of the documents hold for cml- instances and disks only', () => {
    const policies = loadPolicies();
    const [conditioned] = policies.launcher;
    const at = (kind: string, type: string, name: string) => ({
      resource: { name: `projects/p/zones/z/${kind}/${name}`, type: `compute.googleapis.com/${type}` },
    });
    expect(conditioned!.condition!(at('instances', 'Instance', 'cml-0a1b2c'))).toBe(true);
    expect(conditioned!.condition!(at('disks', 'Disk', 'cml-0a1b2c'))).toBe(true);
    expect(conditioned!.condition!(at('instances', 'Instance', 'prod-cml-1'))).toBe(false);
    expect(conditioned!.condition!(at('disks', 'Instance', 'cml-0a1b2c'))).toBe(false);
    expect(
      conditioned!.condition!({
        resource: { name: 'projects/p', type: 'cloudresourcemanager.googleapis.com/Project' },
      }),
    ).toBe(false);
    const vm = policies.vm[0]!.condition!;
    expect(vm(at('instances', 'Instance', 'cml-x'))).toBe(true);
    expect(vm(at('instances', 'Instance', 'web-1'))).toBe(false);
    const wif = policies.workloadIdentity('octo-org/ml');
    expect(wif({ assertion: { repository: 'octo-org/ml', ref: 'refs/heads/main' } })).toBe(true);
    expect(wif({ assertion: { repository: 'octo-org/ml', ref: 'refs/heads/feature' } })).toBe(false);
    expect(wif({ assertion: { repository: 'octo-org/ml-fork', ref: 'refs/heads/main' } })).toBe(false);
  });

  test('a condition beyond what the evaluator reads refuses to load', () => {
    const roots = ['resource.name', 'resource.type'];
    for (const text of [
      'resource.name.endsWith("x")',
      'request.time < timestamp("2030-01-01T00:00:00Z")',
      'resource.name.startsWith("a", "b")',
      'resource.name.extract("zones/{zone}/instances/{name}") == "x"',
      'resource.name == "a" && "b"',
      'resource.service == "compute.googleapis.com"',
      'resource.name != "x"',
    ]) {
      expect(() => compileCondition(text, 'test.txt', roots)).toThrow(/test\.txt: the sandbox's condition evaluator/);
    }
    expect(compileCondition('!(resource.name == "a") || resource.type == "b"', 't', roots)({})).toBe(true);
  });
});
