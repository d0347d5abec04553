import { beforeAll, describe, expect, test } from '@jest/globals';
import type { Sandbox } from '../sandbox/index.js';
import { AZURE_APPS } from '../sandbox/azure.js';
import { useSandbox } from './support/sandbox.js';
import { MemoryLog, attemptLaunch, cleanupRunOf, settle, sweepOf, until } from './helpers.js';

/**
 * How an Azure runner's machine ends when it cannot simply delete its own resource group: it
 * deallocates itself instead of stopping (a stopped VM still bills), it deletes its group on a
 * Spot eviction notice (the eviction takes the VM and its disk, not the group), and what it still
 * leaves is found by `mode: sweep`. The real SDK clients against the sandbox's Azure; the VMs run
 * the rendered startup script and the stand-in runner.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

const base = { cloud: 'azure', region: 'eastus', type: 's' };
const SHUTDOWN_MESSAGE =
  '##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped, or a manually started runner is canceled.';
const groupOf = (id: string) => sb.azure.groups().findLast((g) => g.name === id)!;
const vmOf = (id: string) => sb.azure.vms().findLast((v) => v.group === id)!;
const callsOn = (group: string, op: string) =>
  sb.azure.calls.filter((c) => c.op === op && c.path.toLowerCase().includes(`/resourcegroups/${group.toLowerCase()}`));
/** The launcher without roleAssignments/write: its VMs' identities get no role at all. */
const noRoleEnv = () => ({
  ...sb.env,
  AZURE_CLIENT_ID: AZURE_APPS.noRoleAssignments.clientId,
  AZURE_CLIENT_SECRET: AZURE_APPS.noRoleAssignments.secret,
});

describe('a VM that may not delete its group', () => {
  test('deallocates itself through Resource Manager instead of stopping; cleanup then removes the group', async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, labels: 'cml-dealloc' });
    expect(error).toBeUndefined();
    const group = result!.runners[0]!.machine.id;
    const vm = vmOf(group);
    // Something other than the role refuses the group's deletion to this identity (a deny
    // assignment, a policy): ARM's AuthorizationFailed, once. Cleanup's delete below succeeds.
    sb.faults.add({
      service: 'azure',
      action: 'resourceGroups.delete global',
      where: { resourceGroup: group },
      code: 'AuthorizationFailed',
      status: 403,
      message: `The client '${vm.principalId}' with object id '${vm.principalId}' does not have authorization to perform action 'Microsoft.Resources/subscriptions/resourceGroups/delete' over scope '/subscriptions/${sb.azure.subscriptionId}/resourcegroups/${group}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    });
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-dealloc'],
      script: 'echo done',
    });
    expect((await sb.github.waitJob(job.id, 30_000)).conclusion).toBe('success');
    await until('the VM is deallocated', () => vm.powerState === 'deallocated', 30_000);
    const console = vm.console();
    expect(console).toContain("Azure refused to delete this machine's resource group (HTTP 403, try 1)");
    expect(console).toContain("this machine's identity may read its resource group but not delete it");
    expect(console).toContain('Azure accepted the deallocation');
    expect(vm.deallocatedBy).toBe(`vm:${group}`);
    expect(callsOn(group, 'virtualMachines.deallocate').map((c) => [c.status, c.identity])).toEqual([
      [202, `vm:${group}`],
    ]);
    // Deallocated, it no longer bills for compute; its group (disk, address) is left to cleanup.
    expect(groupOf(group).deleted).toBe(false);
    const report = await cleanupRunOf(sb, 'azure');
    expect(report.machines.map((m) => [m.id, m.result])).toEqual([[group, 'terminated']]);
    expect(await settle(sb)).toEqual([]);
  });

  test("the fake's deallocate: the VM's identity without a role gets ARM's AuthorizationFailed; an Owner's works", async () => {
    const { result, error } = await attemptLaunch(
      sb,
      { ...base, labels: 'cml-dealloc-api' },
      undefined,
      '4242',
      new MemoryLog(),
      noRoleEnv(),
    );
    expect(error).toBeUndefined();
    const group = result!.runners[0]!.machine.id;
    const vm = vmOf(group);
    const imds = sb.azure.imdsBase(vm);
    const tokenUrl = `${imds}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent(`${sb.azure.url}/`)}`;
    const { access_token: token } = (await (await fetch(tokenUrl, { headers: { Metadata: 'true' } })).json()) as {
      access_token: string;
    };
    const deallocate = `${sb.azure.url}${vm.id}/deallocate?api-version=2026-04-01`;
    const refused = await fetch(deallocate, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({
      error: {
        code: 'AuthorizationFailed',
        message: `The client '${vm.principalId}' with object id '${vm.principalId}' does not have authorization to perform action 'Microsoft.Compute/virtualMachines/deallocate/action' over scope '${vm.id}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      },
    });
    expect(vm.powerState).toBe('running');
    // A subscription administrator (Owner) may: 202, deallocating, then deallocated, its machine off.
    const { ComputeManagementClient } = await import('@azure/arm-compute');
    const { ClientSecretCredential } = await import('@azure/identity');
    const credential = new ClientSecretCredential(
      sb.azure.tenantId,
      AZURE_APPS.admin.clientId,
      AZURE_APPS.admin.secret,
      {
        authorityHost: sb.azure.url,
        disableInstanceDiscovery: true,
      },
    );
    const compute = new ComputeManagementClient(credential, sb.azure.subscriptionId, {
      endpoint: sb.azure.url,
      credentials: { scopes: [`${sb.azure.url}/.default`] },
    });
    await compute.virtualMachines.beginDeallocateAndWait(group, vm.name, { updateIntervalInMs: 20 });
    expect(vm.powerState).toBe('deallocated');
    const view = await compute.virtualMachines.instanceView(group, vm.name);
    expect(view.statuses?.map((s) => s.code)).toContain('PowerState/deallocated');
    await vm.machine?.exited;
    expect(vm.machine?.running).toBe(false);
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });
});

describe('a Spot eviction', () => {
  test('the Preempt notice stops the runner, its job fails visibly, and the machine deletes its group', async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, spot: 'true', labels: 'cml-preempt' });
    expect(error).toBeUndefined();
    const group = result!.runners[0]!.machine.id;
    const vm = vmOf(group);
    expect(vm).toMatchObject({ priority: 'Spot', evictionPolicy: 'Delete' });
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-preempt'],
      script: 'echo training; sleep 60',
    });
    await until('the job started', () => sb.github.job(job.id).status === 'in_progress');
    // Azure gives at least 30 s; the watch polls every 5 s.
    const eviction = sb.azure.evict(group, { noticeMs: 20_000 });
    const events = `${sb.azure.imdsBase(vm)}/metadata/scheduledevents?api-version=2020-07-01`;
    expect(await (await fetch(events, { headers: { Metadata: 'true' } })).json()).toEqual({
      DocumentIncarnation: 1,
      Events: [
        {
          EventId: expect.stringMatching(/^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/),
          EventType: 'Preempt',
          ResourceType: 'VirtualMachine',
          Resources: [vm.name],
          EventStatus: 'Scheduled',
          NotBefore: vm.evictionNotBefore!.toUTCString(),
          Description: '',
          EventSource: 'Platform',
          DurationInSeconds: -1,
        },
      ],
    });
    await eviction;
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done.conclusion).toBe('failure');
    expect(done.log).toContain(SHUTDOWN_MESSAGE);
    expect(vm.console()).toMatch(/spot eviction notice: Azure will evict this VM at \w{3}, \d\d \w{3} \d{4} /);
    // The machine deleted its group within the notice: the eviction found nothing left to do.
    expect(vm.endedReason).toBe('deleted by its own identity');
    expect(groupOf(group).deletedBy).toBe(`vm:${group}`);
    const polls = sb.azure.calls.filter((c) => c.op === 'imds.scheduledevents' && c.identity === `vm:${group}`);
    expect(polls.every((c) => c.status === 200 && c.apiVersion === '2020-07-01')).toBe(true);
    expect(await settle(sb)).toEqual([]);
  });

  test('an on-demand VM does not poll scheduled events; the first request starts the service and waits for it', async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, labels: 'cml-regular' });
    expect(error).toBeUndefined();
    const group = result!.runners[0]!.machine.id;
    const events = `${sb.azure.imdsBase(vmOf(group))}/metadata/scheduledevents?api-version=2020-07-01`;
    expect((await fetch(events)).status).toBe(400);
    const timed = async () => {
      const started = Date.now();
      const res = await fetch(events, { headers: { Metadata: 'true' } });
      return { ms: Date.now() - started, status: res.status, body: await res.json() };
    };
    const first = await timed();
    expect(first).toMatchObject({ status: 200, body: { DocumentIncarnation: 0, Events: [] } });
    expect(first.ms).toBeGreaterThanOrEqual(900);
    expect((await timed()).ms).toBeLessThan(500);
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-regular'],
      script: 'sleep 7',
    });
    await sb.github.waitJob(job.id, 30_000);
    expect(await settle(sb)).toEqual([]);
    // Only the test's own two (the one without the header is refused before it is read as one).
    expect(sb.azure.calls.filter((c) => c.op === 'imds.scheduledevents' && c.identity === `vm:${group}`)).toHaveLength(
      2,
    );
  });

  test('a machine that cannot delete its group leaves it to the eviction; mode: sweep deletes it, not a group still being created', async () => {
    const env = noRoleEnv();
    const first = await attemptLaunch(
      sb,
      { ...base, spot: 'true', labels: 'cml-left' },
      undefined,
      '4242',
      new MemoryLog(),
      env,
    );
    expect(first.error).toBeUndefined();
    const left = first.result!.runners[0]!.machine.id;
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-left'],
      script: 'echo training; sleep 60',
    });
    await until('the job started', () => sb.github.job(job.id).status === 'in_progress');
    await sb.azure.evict(left, { noticeMs: 8_000 });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done.log).toContain(SHUTDOWN_MESSAGE);
    expect(vmOf(left)).toMatchObject({ deleted: true, endedReason: 'evicted' });
    expect(vmOf(left).console()).toContain("Azure refused to delete this machine's resource group (HTTP 403");
    // The eviction took the VM and its disk; the group and its network (and billed address) stay.
    const leftovers = await sb.leftovers();
    expect(leftovers).toHaveLength(1);
    expect(leftovers[0]).toMatch(new RegExp(`^Azure resource group ${left} \\(eastus, Succeeded\\) still exists with`));
    for (const r of ['publicIPAddresses/runner-ip', 'networkInterfaces/runner-nic', 'virtualNetworks/runner-vnet'])
      expect(leftovers[0]).toContain(r);
    expect(leftovers[0]).not.toContain('virtualMachines/');

    // Another launch, whose VM is slow to create: its group exists without a VM for a while.
    sb.faults.add({ service: 'azure', action: 'virtualMachines.createOrUpdate .*', delayMs: 4000 });
    const second = attemptLaunch(sb, { ...base, labels: 'cml-young' });
    await until(
      'a group without its VM yet',
      () =>
        sb.azure.groups().some((g) => g.name !== left && !g.deleted && !sb.azure.vms().some((v) => v.group === g.name)),
      20_000,
    );
    const young = sb.azure.groups().find((g) => g.name !== left && !g.deleted)!;
    // The grace period lies between the two groups' ages.
    const now = Date.now();
    const grace = Math.ceil((now - young.createdAt.getTime()) / 1000) + 2;
    expect(now - groupOf(left).createdAt.getTime()).toBeGreaterThan((grace + 1) * 1000);
    const report = await sweepOf(sb, 'azure', grace, now);
    expect(report.machines.map((m) => m.id)).toEqual([left]);
    expect(report.machines[0]!.reason).toMatch(/its runner .* (no longer registered|offline past the grace period)/);
    await until('the leftover group is gone', () => groupOf(left).deleted, 10_000);
    expect(groupOf(left).deletedBy).toBe('launcher');

    // The young group was spared: its launch comes online, and cleanup ends it.
    const launched = await second;
    expect(launched.error).toBeUndefined();
    expect(launched.result!.runners[0]!.machine.id).toBe(young.name);
    expect(groupOf(young.name).deleted).toBe(false);
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });
});
