import { beforeAll, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { ResourceManagementClient } from '@azure/arm-resources';
import { ClientSecretCredential } from '@azure/identity';
import type { Sandbox } from '../sandbox/index.js';
import { AZURE_APPS, type AzureAppName } from '../sandbox/azure.js';
import { useSandbox } from './support/sandbox.js';
import { MemoryLog, attemptLaunch, cleanupRunOf, cloudFor, settle, sweepOf, until } from './helpers.js';

/**
 * Least privilege on Azure, proven: the fake Azure authorises every call against the documents
 * the README shows (docs/permissions/azure/): the launcher has exactly launcher-role.json with the
 * condition of launcher-condition.txt, and each VM's identity exactly vm-role.json on its own
 * group. A job on the VM cannot rewrite its group's tags, and cleanup and sweep find groups by
 * their name as well as by their tags. Every action of the launcher role is needed: without any
 * one of them, the launch (or its cleanup) says which is missing, and nothing is left.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

const root = path.join(import.meta.dirname, '..');
const doc = (file: string) =>
  JSON.parse(fs.readFileSync(path.join(root, 'docs', 'permissions', 'azure', file), 'utf8')) as { Actions: string[] };
const LAUNCHER_ROLE = 'cml-runner-action launcher';
const VM_ROLE = 'cml-runner-action VM';
const base = { cloud: 'azure', region: 'eastus', type: 's' };
const groupOf = (id: string) => sb.azure.groups().findLast((g) => g.name === id)!;
const vmOf = (id: string) => sb.azure.vms().findLast((v) => v.group === id)!;

function resources(app: AzureAppName): ResourceManagementClient {
  const credential = new ClientSecretCredential(sb.azure.tenantId, AZURE_APPS[app].clientId, AZURE_APPS[app].secret, {
    authorityHost: sb.azure.url,
    disableInstanceDiscovery: true,
  });
  return new ResourceManagementClient(credential, sb.azure.subscriptionId, {
    endpoint: sb.azure.url,
    credentials: { scopes: [`${sb.azure.url}/.default`] },
  });
}

/**
 * A job's script on the VM: it takes the VM's identity from the instance metadata service, tries
 * to rewrite its group's tags both ways Resource Manager offers (the group's PATCH and the Tags
 * API), then tries to kill the startup script and its timers. The runner's user may not.
 */
function hostileJob(): string {
  return `set -u
imds="\${AZURE_POD_IDENTITY_AUTHORITY_HOST:-http://169.254.169.254}"
arm="${sb.azure.url}"
token_json="$(curl -sf -H 'Metadata: true' --get --data-urlencode 'api-version=2018-02-01' --data-urlencode "resource=$arm/" "$imds/metadata/identity/oauth2/token")"
[[ "$token_json" =~ \\"access_token\\":\\ *\\"([^\\"]+)\\" ]] && token="\${BASH_REMATCH[1]}"
compute="$(curl -sf -H 'Metadata: true' "$imds/metadata/instance/compute?api-version=2021-02-01")"
[[ "$compute" =~ \\"resourceGroupName\\":\\ *\\"([^\\"]+)\\" ]] && group="\${BASH_REMATCH[1]}"
[[ "$compute" =~ \\"subscriptionId\\":\\ *\\"([^\\"]+)\\" ]] && sub="\${BASH_REMATCH[1]}"
g="$arm/subscriptions/$sub/resourcegroups/$group"
echo "patch tags: $(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H "Authorization: Bearer $token" -H 'content-type: application/json' -d '{"tags":{}}' "$g?api-version=2025-04-01")"
echo "tags api: $(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $token" -H 'content-type: application/json' -d '{"properties":{"tags":{}}}' "$g/providers/Microsoft.Resources/tags/default?api-version=2025-04-01")"
# The startup script is an ancestor of this job; its other children are its timers.
mine=" $$ "; p=$$
while [[ "$p" -gt 1 ]]; do
  p="$(awk '{print $4}' "/proc/$p/stat")"; mine+="$p "
  grep -q user-data.sh "/proc/$p/cmdline" 2>/dev/null && break
done
grep -q user-data.sh "/proc/$p/cmdline" || { echo "no startup script found"; exit 1; }
for c in $(cat "/proc/$p/task/$p/children"); do [[ "$mine" == *" $c "* ]] || kill -9 "$c" 2>/dev/null || true; done
if kill -9 "$p" 2>/dev/null; then echo "killed the startup script $p"; else echo "could not kill the startup script $p"; fi
`;
}

/**
 * Launches one reusable runner that never idles out, whose job is `hostileJob`, and waits for the
 * job: whether or not the job could kill the startup script, nothing on the VM ends it then.
 */
async function launchHostile(label: string, spot = false): Promise<{ group: string; log: MemoryLog; jobLog: string }> {
  const log = new MemoryLog();
  const { result, error } = await attemptLaunch(
    sb,
    { ...base, labels: label, single: 'false', 'idle-timeout': '0', ...(spot ? { spot: 'true' } : {}) },
    undefined,
    '4242',
    log,
  );
  expect(error).toBeUndefined();
  const group = result!.runners[0]!.machine.id;
  const job = sb.github.queueJob({
    owner: 'octo-org',
    repo: 'ml',
    labels: ['self-hosted', label],
    script: hostileJob(),
  });
  const done = await sb.github.waitJob(job.id, 30_000);
  return { group, log, jobLog: done.log };
}

describe('the VM role', () => {
  test('the launcher assigns the VM role, which may end its group but not rewrite its tags; cleanup ends it', async () => {
    const { group, log, jobLog } = await launchHostile('cml-perm-tags');
    expect(log.lines.filter((l) => l.startsWith('warning:'))).toEqual([]);
    const grants = sb.azure.roleAssignments().filter((r) => r.principalId === vmOf(group).principalId);
    expect(grants.map((r) => r.roleDefinitionId.split('/').pop())).toEqual([sb.azure.roleDefinition(VM_ROLE).id]);
    expect(jobLog).toContain('patch tags: 403');
    expect(jobLog).toContain('tags api: 403');
    // The job runs as cml-runner: the startup script and its timers are root's.
    expect(jobLog).toMatch(/could not kill the startup script \d+/);
    expect(groupOf(group).tags).toMatchObject({ 'cml-runner:run-id': '4242', 'cml-runner:managed': 'true' });
    // Nothing on the VM ends it now: it runs on, billed, until cleanup deletes its group.
    await new Promise((r) => setTimeout(r, 1000));
    expect(groupOf(group).deleted).toBe(false);
    const report = await cleanupRunOf(sb, 'azure');
    expect(report.machines.map((m) => [m.id, m.result])).toEqual([[group, 'terminated']]);
    expect(await settle(sb)).toEqual([]);
  });

  test('the launcher may assign the VM role only: Contributor is refused by its condition', async () => {
    const { AuthorizationManagementClient } = await import('@azure/arm-authorization');
    const credential = new ClientSecretCredential(
      sb.azure.tenantId,
      AZURE_APPS.launcher.clientId,
      AZURE_APPS.launcher.secret,
      { authorityHost: sb.azure.url, disableInstanceDiscovery: true },
    );
    const auth = new AuthorizationManagementClient(credential, sb.azure.subscriptionId, {
      endpoint: sb.azure.url,
      credentialScopes: [`${sb.azure.url}/.default`],
    });
    await resources('launcher').resourceGroups.createOrUpdate('cml-runner-perm-cond', { location: 'eastus' });
    const scope = `/subscriptions/${sb.azure.subscriptionId}/resourceGroups/cml-runner-perm-cond`;
    const definition = (id: string) =>
      `/subscriptions/${sb.azure.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${id}`;
    const contributor = sb.azure.roleDefinition('Contributor').id;
    const refused = await auth.roleAssignments
      .create(scope, crypto.randomUUID(), {
        roleDefinitionId: definition(contributor),
        principalId: AZURE_APPS.noRoleAssignments.objectId,
        principalType: 'ServicePrincipal',
      })
      .then(
        () => undefined,
        (e: Error & { statusCode?: number; code?: string }) => e,
      );
    expect(refused).toMatchObject({ statusCode: 403, code: 'AuthorizationFailed' });
    expect(refused?.message).toContain(
      `does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '${scope}/providers/Microsoft.Authorization/roleAssignments/`,
    );
    await auth.roleAssignments.create(scope, crypto.randomUUID(), {
      roleDefinitionId: definition(sb.azure.roleDefinition(VM_ROLE).id),
      principalId: AZURE_APPS.noRoleAssignments.objectId,
      principalType: 'ServicePrincipal',
    });
    await resources('launcher').resourceGroups.beginDeleteAndWait('cml-runner-perm-cond', { updateIntervalInMs: 20 });
    expect(sb.azure.roleAssignments()).toEqual([]);
  });
});

describe('groups found by name as well as by tags', () => {
  test("cleanup ends a group whose tags an administrator removed, by its name and its VM's tags", async () => {
    const { group, jobLog } = await launchHostile('cml-perm-untagged');
    expect(jobLog).toMatch(/(killed|could not kill) the startup script \d+/);
    await resources('admin').resourceGroups.update(group, { tags: {} });
    expect(groupOf(group).tags).toEqual({});
    // Post reads its machines' states by their group names, tags or not.
    const cloud = await cloudFor(sb, 'azure', 'eastus');
    expect((await cloud.states([group])).get(group)).toEqual({ state: 'running' });
    const report = await cleanupRunOf(sb, 'azure');
    expect(report.machines.map((m) => [m.id, m.result])).toEqual([[group, 'terminated']]);
    expect(await settle(sb)).toEqual([]);
  });

  test('sweep ends a group with no tags at all and no VM (evicted), by its name alone', async () => {
    const { group, jobLog } = await launchHostile('cml-perm-bare', true);
    expect(jobLog).toMatch(/(killed|could not kill) the startup script \d+/);
    await resources('admin').resourceGroups.update(group, { tags: {} });
    await sb.azure.evict(group, { noticeMs: 0 });
    expect(vmOf(group).deleted).toBe(true);
    expect(groupOf(group)).toMatchObject({ deleted: false, tags: {} });
    // Cleanup cannot tell which run launched it; sweep takes it.
    expect((await cleanupRunOf(sb, 'azure')).machines).toEqual([]);
    const report = await sweepOf(sb, 'azure', 0, Date.now() + 1000);
    expect(report.machines.map((m) => [m.id, m.result])).toEqual([[group, 'terminated']]);
    expect(await settle(sb)).toEqual([]);
  });
});

/**
 * How each action of the launcher role is exercised: a launch, its cleanup (the deletes), or a
 * launch that fails (the serial log of a VM that never boots).
 */
const LAUNCHER_ACTIONS = doc('launcher-role.json').Actions;

describe('every action of the launcher role is needed', () => {
  test.each(LAUNCHER_ACTIONS)('without %s, the launch or its cleanup names it, and nothing is left', async (action) => {
    const role = sb.azure.roleDefinition(LAUNCHER_ROLE);
    const saved = [...role.actions];
    role.actions = saved.filter((a) => a !== action);
    const said: string[] = [];
    const log = new MemoryLog();
    const failing = action.endsWith('/retrieveBootDiagnosticsData/action');
    try {
      if (failing) sb.machines.failBoot(1);
      const label = `cml-perm-${LAUNCHER_ACTIONS.indexOf(action)}`;
      const { error } = await attemptLaunch(
        sb,
        { ...base, labels: label, ...(failing ? { 'startup-timeout': '5' } : {}) },
        undefined,
        '4242',
        log,
      );
      said.push(error?.message ?? '', ...log.lines, ...log.debugLines);
      if (!error) {
        const vm = sb.azure.vms().at(-1)!;
        // The VM's own identity would delete its group: the runner is stopped first, so the
        // launcher's cleanup is what deletes it.
        await until('the VM is up', () => vm.machine !== undefined);
        await cleanupRunOf(sb, 'azure').then(
          (r) => said.push(JSON.stringify(r)),
          (e: Error) => said.push(e.message),
        );
      }
    } finally {
      role.actions = saved;
    }
    // With the action back, whatever the refused cleanup (or the failed launch) left is ended.
    await cleanupRunOf(sb, 'azure');
    expect(said.join('\n')).toContain(action);
    expect(await settle(sb)).toEqual([]);
  });
});
