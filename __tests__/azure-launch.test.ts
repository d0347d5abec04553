import { beforeAll, describe, expect, test } from '@jest/globals';
import type { Sandbox } from '../sandbox/index.js';
import { useSandbox } from './support/sandbox.js';
import { AZURE_APPS } from '../sandbox/azure.js';
import { MemoryLog, attemptLaunch, cleanupLedger, cleanupRunOf, settle, unended, until } from './helpers.js';

/**
 * The Azure slice end to end: the real @azure/arm-* clients and @azure/identity's credential
 * against the sandbox's Azure (https with the sandbox CA, Entra sign-in, ARM long-running
 * operations), with VMs that really run their customData and delete their own resource group
 * through their managed identity.
 */

// After each test: nothing left in the sandbox, and every fault the test added fired.
const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

const base = { cloud: 'azure', region: 'eastus' };
const groupOf = (id: string) => sb.azure.groups().findLast((g) => g.name === id)!;
const vmOf = (id: string) => sb.azure.vms().findLast((v) => v.group === id)!;
const deletes = (group: string) =>
  sb.azure.calls.filter(
    (c) =>
      c.action.startsWith('resourceGroups.delete') &&
      c.path?.toLowerCase().includes(`/resourcegroups/${group.toLowerCase()}`),
  );

describe('a healthy launch', () => {
  test('a runner comes online in its own resource group, takes one job, and the VM deletes its group', async () => {
    const { result, error, ledger } = await attemptLaunch(sb, { ...base, type: 's', labels: 'cml-azure' });
    expect(error).toBeUndefined();
    expect(ledger!.complete).toBe(true);
    const runner = result!.runners[0]!;
    expect(runner.machine).toMatchObject({ id: `cml-runner-${runner.name}`, type: 'Standard_D2s_v5', spot: false });

    const group = groupOf(runner.machine.id);
    expect(group.tags).toMatchObject({
      'cml-runner:managed': 'true',
      'cml-runner:repo': 'octo-org/ml',
      'cml-runner:run-id': '4242',
      'cml-runner:runner': runner.name,
    });
    const vm = vmOf(runner.machine.id);
    expect(vm).toMatchObject({ vmSize: 'Standard_D2s_v5' });
    expect(vm.identity?.principalId).toBeTruthy();
    // The VM's identity has the VM role (it may only end its group), on its own group and nothing else.
    const grants = sb.azure.roleAssignments().filter((r) => r.principalId === vm.identity!.principalId);
    expect(grants).toHaveLength(1);
    expect(grants[0]!.roleDefinitionId.split('/').pop()).toBe(sb.azure.roleDefinition('cml-runner-action VM').id);
    expect(grants[0]!.scope.toLowerCase()).toBe(
      `/subscriptions/${sb.env.AZURE_SUBSCRIPTION_ID}/resourcegroups/${runner.machine.id}`.toLowerCase(),
    );
    expect(vm.customData).toMatch(/^#!\/bin\/bash/);
    expect(vm.customData).not.toContain(sb.tokens.admin);

    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-azure'],
      script: 'echo trained',
    });
    const done = await sb.github.waitJob(job.id, 30_000);
    expect(done).toMatchObject({ status: 'completed', conclusion: 'success', runnerName: runner.name });

    expect(await settle(sb)).toEqual([]);
    // Deleted by the VM itself, with its managed identity's token.
    expect(deletes(runner.machine.id).map((c) => c.identity)).toEqual([`vm:${runner.machine.id}`]);
  });

  test('a spot T4 with a driver image: priority Spot, evicted by deletion, and the GPU in the job', async () => {
    const { result, error } = await attemptLaunch(sb, {
      ...base,
      gpu: 't4',
      type: 's',
      spot: 'true',
      image: 'microsoft-dsvm:ubuntu-hpc:2204:latest',
      labels: 'cml-t4',
    });
    expect(error).toBeUndefined();
    const { machine } = result!.runners[0]!;
    expect(machine).toMatchObject({ type: 'Standard_NC4as_T4_v3', spot: true });
    expect(vmOf(machine.id)).toMatchObject({
      priority: 'Spot',
      evictionPolicy: 'Delete',
      billingProfile: { maxPrice: -1 },
    });
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-t4'],
      script: 'nvidia-smi -L',
    });
    expect((await sb.github.waitJob(job.id, 30_000)).log).toContain('T4');
    expect(await settle(sb)).toEqual([]);
  });
});

describe('capacity and quota', () => {
  test('SkuNotAvailable moves to the next size, and the refused size leaves no group', async () => {
    sb.faults.add({ service: 'azure', action: 'virtualMachines.createOrUpdate .*', code: 'SkuNotAvailable', times: 1 });
    const { result, error } = await attemptLaunch(sb, {
      ...base,
      type: 'Standard_D2s_v5,Standard_D4s_v5',
      labels: 'cml-sku',
    });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(runner.tried.map((t) => [t.type, t.outcome])).toEqual([
      ['Standard_D2s_v5', 'SkuNotAvailable'],
      ['Standard_D4s_v5', 'obtained'],
    ]);
    expect(runner.machine.id).toBe(`cml-runner-${runner.name}-2`);
    expect(groupOf(`cml-runner-${runner.name}`).deleted).toBe(true);
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });

  test('AllocationFailed in the long-running operation moves on too; the failed VM goes with its group', async () => {
    sb.faults.add({
      service: 'azure',
      action: 'virtualMachines.createOrUpdate .*',
      code: 'AllocationFailed',
      times: 1,
    });
    const { result, error } = await attemptLaunch(sb, { ...base, gpu: 't4', type: 's,m', labels: 'cml-alloc' });
    expect(error).toBeUndefined();
    const runner = result!.runners[0]!;
    expect(runner.tried[0]).toMatchObject({ type: 'Standard_NC4as_T4_v3', outcome: 'AllocationFailed' });
    expect(runner.machine.type).toBe('Standard_NC8as_T4_v3');
    expect(
      sb.azure
        .vms()
        .filter((v) => v.group === `cml-runner-${runner.name}`)
        .every((v) => v.deleted),
    ).toBe(true);
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });

  test('a quota refusal fails at once, names the quota, and leaves nothing', async () => {
    sb.faults.add({
      service: 'azure',
      action: 'virtualMachines.createOrUpdate .*',
      code: 'OperationNotAllowed',
      times: Infinity,
    });
    const { error, ledger } = await attemptLaunch(sb, { ...base, gpu: 't4', type: 's,m' });
    expect(error?.message).toMatch(/Azure refused with OperationNotAllowed: .*quota/);
    expect(error?.message).toContain('Usage + quotas');
    // One try only: a quota holds for every size of the family.
    expect(ledger!.machines).toHaveLength(1);
    expect(await settle(sb)).toEqual([]);
    await cleanupLedger(sb, unended(ledger!));
    expect(await settle(sb)).toEqual([]);
  });
});

describe('ends that need help', () => {
  test('without the right to assign roles the launch warns; the VM cannot delete itself, and cleanup does', async () => {
    // The launching identity may not assign roles; cleanup below runs as the launcher again.
    const env = {
      ...sb.env,
      AZURE_CLIENT_ID: AZURE_APPS.noRoleAssignments.clientId,
      AZURE_CLIENT_SECRET: AZURE_APPS.noRoleAssignments.secret,
    };
    const log = new MemoryLog();
    const { result, error } = await attemptLaunch(
      sb,
      { ...base, type: 's', labels: 'cml-norole' },
      undefined,
      '4242',
      log,
      env,
    );
    expect(error).toBeUndefined();
    expect(
      log.lines.filter((l) =>
        l.startsWith('warning: The launching identity may not assign the role "cml-runner-action VM"'),
      ),
    ).toHaveLength(1);
    const { machine } = result!.runners[0]!;
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-norole'],
      script: 'echo done',
    });
    await sb.github.waitJob(job.id, 30_000);
    await until(
      'the VM gave up deleting its group',
      () => vmOf(machine.id).machine?.console().includes('Azure refused to delete') ?? false,
      30_000,
    );
    expect(groupOf(machine.id).deleted).toBe(false);
    const report = await cleanupRunOf(sb, 'azure');
    expect(report.machines.map((m) => m.id)).toEqual([machine.id]);
    expect(await settle(sb)).toEqual([]);
  });

  test('a spot eviction fails the job, and cleanup leaves nothing of it', async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, type: 's', spot: 'true', labels: 'cml-evict' });
    expect(error).toBeUndefined();
    const { machine } = result!.runners[0]!;
    const job = sb.github.queueJob({
      owner: 'octo-org',
      repo: 'ml',
      labels: ['self-hosted', 'cml-evict'],
      script: 'echo training; sleep 30',
    });
    await until('the job started', () => sb.github.job(job.id).status === 'in_progress');
    await sb.azure.evict(machine.id, { noticeMs: 20_000 });
    expect((await sb.github.waitJob(job.id, 30_000)).conclusion).toBe('failure');
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });

  test('a VM that never boots fails the launch with its serial log, and nothing is left', async () => {
    sb.machines.failBoot(1);
    const { error, ledger } = await attemptLaunch(sb, { ...base, type: 's', 'startup-timeout': '5' });
    expect(error?.message).toMatch(/did not come online/);
    expect(ledger!.machines).toHaveLength(1);
    expect(await settle(sb)).toEqual([]);
    await cleanupLedger(sb, unended(ledger!));
    expect(await settle(sb)).toEqual([]);
  });
});
