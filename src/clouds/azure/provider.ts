import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ComputeManagementClient, type VirtualMachine } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import { ResourceManagementClient } from '@azure/arm-resources';
import { getIDToken } from '@actions/core';
import {
  ClientAssertionCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  type TokenCredential,
  WorkloadIdentityCredential,
} from '@azure/identity';
import { generateKeyPairSync } from 'node:crypto';
import type { MachineSpec } from '../../config/spec.js';
import { credentialUserData } from '../../bootstrap/render.js';
import { CloudError } from '../../errors.js';
import { mapLimited } from '../../retry.js';
import { type CallPolicy, cloudCall, endedOrGone } from '../call.js';
import type { Env } from '../descriptor.js';
import { TAG, managedFromTags } from '../tags.js';
import type {
  Cloud,
  CloudContext,
  Machine,
  MachineRequest,
  MachineState,
  MachineStatus,
  ManagedMachine,
  Placement,
  PreparedCloud,
} from '../types.js';
import { AZURE_DEFAULT_IMAGE, parseAzureImage } from './catalog.js';
import { azureError, azureRefusal, azureRetryAfterMs } from './errors.js';
import {
  type OfferedSize,
  type PreparedImage,
  notOffered,
  offeredSizes,
  prepareImage,
  securityProfileFor,
  unreadImage,
} from './offerings.js';
import type { AzureOptions } from './options.js';

/**
 * What every VM of a launch shares: its image, the OS disk size, the sizes as resource SKUs list
 * them, and the VM role's definition id (absent when it could not be found).
 */
interface LaunchImage {
  image: PreparedImage;
  diskSizeGb?: number;
  offered: ReadonlyMap<string, OfferedSize>;
  vmRoleId?: string;
}

/**
 * Azure. Each runner gets its own resource group holding everything of its machine (network
 * security group, virtual network, public address, network interface, VM and its disk), so one
 * deletion ends it all, and a machine's id is its resource group's name.
 *
 * Credentials, from the context's environment: AZURE_CLIENT_ID / AZURE_TENANT_ID with
 * AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, or the job's GitHub OIDC token; otherwise
 * @azure/identity's DefaultAzureCredential (the Azure CLI that azure/login signs in, a managed
 * identity). The ARM endpoint moves with AZURE_RESOURCE_MANAGER_ENDPOINT (sovereign clouds,
 * Azure Stack Hub).
 *
 * Retries: the SDK's are off (maxRetries 0); each call, a long-running one as a whole, is
 * retried by `cloudCall`. Creates are PUTs of a named resource, so a repeat is harmless.
 *
 * The VM has a system-assigned managed identity with the custom role "cml-runner-action VM"
 * (docs/permissions/azure/vm-role.json, found by name) on its own resource group, so that its
 * startup script can delete the group (or deallocate the VM) when the runner is done: a stopped
 * Azure VM still bills. That role writes nothing, tags included, so a job on the VM cannot hide
 * its group from cleanup and sweep, which find groups by their tags and by their name prefix.
 *
 * The runner's credential is not in the custom data (the startup script), which cannot be changed
 * after creation and which root on the VM can read back: it is the VM's user data, which the
 * script reads from the instance metadata service and `online()` empties once the runner is up.
 */

const DEFAULT_ARM = 'https://management.azure.com';
/** The custom role a VM's identity gets on its own resource group (docs/permissions/azure/vm-role.json). */
export const AZURE_VM_ROLE = 'cml-runner-action VM';
/** What a VM that cannot end itself costs, and what ends it instead. */
const STILL_BILLS =
  'A stopped Azure VM still bills: keep the cleanup job (mode: cleanup, if: always()) and a scheduled sweep, ' +
  'which delete them.';
const LRO_TIMEOUT_MS = 15 * 60_000;
/** Groups whose VM list() reads at once. */
const LIST_CONCURRENCY = 10;
/** Long-running operations are polled as often as ARM's Retry-After says, or every 0.5 s when it says nothing. */
const POLL = { updateIntervalInMs: 500 };

export function createCloud(options: AzureOptions, region: string, ctx: CloudContext): Cloud {
  return new AzureCloud(options, region, ctx);
}

export class AzureCloud implements Cloud {
  readonly name = 'azure';
  readonly title = 'Azure';
  readonly kind = 'vm' as const;
  private readonly resources: ResourceManagementClient;
  private readonly network: NetworkManagementClient;
  private readonly compute: ComputeManagementClient;
  private readonly authorization: AuthorizationManagementClient;
  private readonly arm: string;
  /** One throwaway key for every VM of the launch: making an RSA key blocks for tens of milliseconds. */
  private sshKey?: string;
  private readonly subscriptionId: string;
  private readonly policy: CallPolicy = {
    translate: (err, action) => azureError(err, action),
    retryAfterMs: azureRetryAfterMs,
  };

  constructor(
    private readonly options: AzureOptions,
    readonly region: string,
    private readonly ctx: CloudContext,
  ) {
    this.subscriptionId = options.subscriptionId;
    this.arm = (ctx.env.AZURE_RESOURCE_MANAGER_ENDPOINT || DEFAULT_ARM).replace(/\/+$/, '');
    const credential = azureCredential(ctx.env);
    const scopes = [`${this.arm}/.default`];
    // No retries in the SDK: cloudCall is the only retry layer.
    const retryOptions = { maxRetries: 0 };
    const clientOptions = { endpoint: this.arm, credentials: { scopes }, retryOptions };
    this.resources = new ResourceManagementClient(credential, this.subscriptionId, clientOptions);
    this.network = new NetworkManagementClient(credential, this.subscriptionId, clientOptions);
    this.compute = new ComputeManagementClient(credential, this.subscriptionId, clientOptions);
    this.authorization = new AuthorizationManagementClient(credential, this.subscriptionId, {
      endpoint: this.arm,
      credentialScopes: scopes,
      retryOptions,
    });
  }

  async prepare(spec: MachineSpec): Promise<PreparedCloud> {
    // Nothing is shared between runners: each has its own group. The sizes the subscription may
    // use here and the image are looked up side by side, before anything exists.
    const warnings: string[] = [];
    const call = <T>(action: string, fn: () => Promise<T>) => this.call(action, fn);
    const input = spec.image ?? AZURE_DEFAULT_IMAGE;
    const [offered, image, vmRoleId] = await Promise.all([
      this.readable(warnings, 'the resource SKUs', 'sizes are not checked before the launch', () =>
        offeredSizes(this.compute, call, this.region).then((r) => r.get(this.region.toLowerCase()) ?? new Map()),
      ),
      this.readable(warnings, 'the image', 'its disk size is not checked', () =>
        prepareImage(this.compute, call, this.region, parseAzureImage(input)!, input),
      ),
      this.vmRole(warnings),
    ]);
    const types = offered ? spec.types.filter((t) => offered.get(t.toLowerCase())?.usable) : undefined;
    if (types?.length === 0) throw await notOffered(this.compute, call, this.region, spec.types);
    const prepared: LaunchImage = {
      image: image ?? unreadImage(parseAzureImage(input)!),
      // hdd-size below the image's disk is raised to it; Azure refuses a smaller disk.
      ...(spec.hddSizeGb ? { diskSizeGb: Math.max(spec.hddSizeGb, image?.sizeGb ?? 0) } : {}),
      offered: offered ?? new Map(),
      ...(vmRoleId ? { vmRoleId } : {}),
    };
    return {
      ...(types ? { types } : {}),
      scriptSettings: {
        selfDelete: { cloud: 'azure', apiUrl: this.arm },
        ...(spec.spot ? { spotNotice: 'azure' } : {}),
        // The credential goes in the VM's user data, which online() empties; never in custom data.
        credentialFrom: 'azure-user-data',
      },
      places: [undefined],
      warnings,
      launch: (request, placement) => this.launch(spec, prepared, request, placement, warnings),
      online: (machine) => this.clearUserData(machine.id),
    };
  }

  /**
   * Empties the VM's user data, which holds the runner's credential: any process on the VM can
   * read it from the instance metadata service until then. A PATCH with an empty `userData`
   * deletes it, without stopping or rebooting the VM.
   * https://learn.microsoft.com/azure/virtual-machines/user-data#updating-user-data
   */
  private async clearUserData(group: string): Promise<void> {
    await this.lro('virtualMachines.update', () =>
      this.compute.virtualMachines.update(group, 'runner', { userData: '' }, POLL),
    );
  }

  /** A read before the launch; without the right to make it, a warning and the launch goes on. */
  private async readable<T>(
    warnings: string[],
    what: string,
    effect: string,
    fn: () => Promise<T>,
  ): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: string }).code !== 'AuthorizationFailed') throw err;
      // ARM's message names the action refused: the one to add to the role.
      const refused = /perform action '([^']+)'/.exec(err instanceof Error ? err.message : '')?.[1];
      const named = refused ? `: ${refused}` : '';
      warnings.push(`The launching identity may not read ${what} (AuthorizationFailed${named}), so ${effect}.`);
      return undefined;
    }
  }

  /**
   * The definition id of the VM role, found by its name among the subscription's role
   * definitions; without it (not created, or not readable) a warning, and the VMs get no role.
   */
  private async vmRole(warnings: string[]): Promise<string | undefined> {
    const scope = `/subscriptions/${this.subscriptionId}`;
    const found = await this.readable(
      warnings,
      'role definitions',
      `it cannot find the role "${AZURE_VM_ROLE}" and the VMs cannot delete their own resource groups. ${STILL_BILLS}`,
      () =>
        this.call('roleDefinitions.list', async () => {
          const ids: string[] = [];
          const filter = `roleName eq '${AZURE_VM_ROLE}'`;
          for await (const r of this.authorization.roleDefinitions.list(scope, { filter })) if (r.id) ids.push(r.id);
          return ids;
        }),
    );
    if (found === undefined) return undefined;
    if (found.length === 0) {
      warnings.push(
        `The role "${AZURE_VM_ROLE}" does not exist in subscription ${this.subscriptionId}, so the VMs cannot delete ` +
          `their own resource groups. ${STILL_BILLS} Create it once with ` +
          'az role definition create --role-definition @vm-role.json (see "Azure" in the README).',
      );
      return undefined;
    }
    return found[0];
  }

  private async launch(
    spec: MachineSpec,
    prepared: LaunchImage,
    request: MachineRequest,
    placement: Placement,
    warnings: string[],
  ): Promise<Machine> {
    const group = groupName(this.options.resourceGroupPrefix, request.runnerName, request.attempt);
    // Resource groups carry no creation time a list returns: the sweep's grace period needs one.
    const tags = {
      ...request.tags,
      [TAG.clientToken]: request.clientToken,
      [TAG.createdAt]: new Date(this.ctx.clock.now()).toISOString(),
    };
    const location = this.region;
    await this.call('resourceGroups.createOrUpdate', () =>
      this.resources.resourceGroups.createOrUpdate(group, { location, tags }),
    );
    try {
      return await this.createMachine(spec, prepared, request, placement, group, tags, warnings);
    } catch (err) {
      // Whatever was created goes with its group; the refusal itself is what the user sees.
      await this.deleteGroup(group).catch(() => undefined);
      throw err;
    }
  }

  private async createMachine(
    spec: MachineSpec,
    prepared: LaunchImage,
    request: MachineRequest,
    placement: Placement,
    group: string,
    tags: Record<string, string>,
    warnings: string[],
  ): Promise<Machine> {
    const location = this.region;
    const vmName = 'runner';
    // The network and the address do not depend on each other: they are created side by side.
    const network = (async () => {
      // No inbound rule at all: the NSG's default rules deny inbound from the internet.
      const nsg = await this.lro('networkSecurityGroups.createOrUpdate', () =>
        this.network.networkSecurityGroups.createOrUpdate(
          group,
          'runner-nsg',
          { location, tags, securityRules: [] },
          POLL,
        ),
      );
      return this.lro('virtualNetworks.createOrUpdate', () =>
        this.network.virtualNetworks.createOrUpdate(
          group,
          'runner-vnet',
          {
            location,
            tags,
            addressSpace: { addressPrefixes: ['10.0.0.0/24'] },
            subnets: [{ name: 'runner', addressPrefix: '10.0.0.0/24', networkSecurityGroup: { id: nsg.id } }],
          },
          POLL,
        ),
      );
    })();
    // A public address is the machine's way out to GitHub (new virtual networks have no default
    // outbound access); the NSG keeps everything from coming in.
    const address = this.lro('publicIPAddresses.createOrUpdate', () =>
      this.network.publicIPAddresses.createOrUpdate(
        group,
        'runner-ip',
        { location, tags, sku: { name: 'Standard' }, publicIPAllocationMethod: 'Static' },
        POLL,
      ),
    );
    const [vnet, ip] = await Promise.all([network, address]);
    const nic = await this.lro('networkInterfaces.createOrUpdate', () =>
      this.network.networkInterfaces.createOrUpdate(
        group,
        'runner-nic',
        {
          location,
          tags,
          ipConfigurations: [
            {
              name: 'primary',
              subnet: { id: vnet.subnets?.[0]?.id },
              publicIPAddress: { id: ip.id, deleteOption: 'Delete' },
            },
          ],
        },
        POLL,
      ),
    );
    this.sshKey ??= throwawaySshKey();
    const vm: VirtualMachine = {
      location,
      tags,
      identity: { type: 'SystemAssigned' },
      hardwareProfile: { vmSize: placement.type },
      securityProfile: securityProfileFor(
        placement.type,
        prepared.offered.get(placement.type.toLowerCase()),
        prepared.image,
      ),
      storageProfile: {
        imageReference: prepared.image.reference,
        osDisk: {
          createOption: 'FromImage',
          deleteOption: 'Delete',
          managedDisk: { storageAccountType: 'StandardSSD_LRS' },
          ...(prepared.diskSizeGb ? { diskSizeGB: prepared.diskSizeGb } : {}),
        },
      },
      osProfile: {
        computerName: vmName,
        adminUsername: 'runner',
        // The startup script, without the credential: cloud-init runs it as root at first boot.
        // Base64, 64 KB at most; it cannot be changed after creation, and root on the VM can read it.
        customData: Buffer.from(request.startupScript, 'utf8').toString('base64'),
        // No password, no key: nobody signs in. The serial log says what happened.
        linuxConfiguration: {
          disablePasswordAuthentication: true,
          ssh: {
            publicKeys: [{ path: '/home/runner/.ssh/authorized_keys', keyData: this.sshKey }],
          },
          provisionVMAgent: true,
        },
      },
      // The credential, which the script reads from the instance metadata service and online() empties.
      userData: credentialUserData(request.credential),
      networkProfile: { networkInterfaces: [{ id: nic.id, primary: true, deleteOption: 'Delete' }] },
      diagnosticsProfile: { bootDiagnostics: { enabled: true } },
      ...(placement.spot
        ? { priority: 'Spot', evictionPolicy: 'Delete', billingProfile: { maxPrice: spec.spotPrice ?? -1 } }
        : {}),
    };
    const created = await this.lro('virtualMachines.createOrUpdate', () =>
      this.compute.virtualMachines.createOrUpdate(group, vmName, vm, POLL),
    );
    await this.allowSelfDelete(group, created.identity?.principalId, prepared.vmRoleId, warnings);
    return { id: group, type: placement.type, spot: placement.spot, zone: location };
  }

  /** The VM role on its own group for the VM's identity, so the VM can delete the group. */
  private async allowSelfDelete(
    group: string,
    principalId: string | undefined,
    roleDefinitionId: string | undefined,
    warnings: string[],
  ): Promise<void> {
    if (!principalId || !roleDefinitionId) return;
    const scope = `/subscriptions/${this.subscriptionId}/resourceGroups/${group}`;
    // A new identity takes a moment to replicate: PrincipalNotFound is worth another try here.
    // The assignment's name is fixed before the first try, so a repeat cannot make a second one.
    const name = crypto.randomUUID();
    const policy: CallPolicy = {
      ...this.policy,
      translate: (err, action) => {
        const e = azureError(err, action);
        return e.code === 'PrincipalNotFound' ? azureRefusal(e.code, e.message, 'transient') : e;
      },
      baseMs: 2000,
    };
    try {
      await cloudCall(this.ctx, policy, 'roleAssignments.create', () =>
        this.authorization.roleAssignments.create(scope, name, {
          roleDefinitionId,
          principalId,
          principalType: 'ServicePrincipal',
        }),
      );
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'Error';
      if (code !== 'AuthorizationFailed') throw err;
      const warning =
        `The launching identity may not assign the role "${AZURE_VM_ROLE}" (${code}), so the VMs cannot delete their ` +
        `own resource groups. ${STILL_BILLS} ` +
        'To let VMs delete themselves, grant Microsoft.Authorization/roleAssignments/write with the condition that ' +
        'allows this role (see "Azure" in the README).';
      if (!warnings.includes(warning)) warnings.push(warning);
    }
  }

  async states(ids: readonly string[]): Promise<Map<string, MachineStatus>> {
    const states = new Map<string, MachineStatus>(ids.map((id) => [id, { state: 'gone' }]));
    if (ids.length === 0) return states;
    // By name, not by tag: a group whose tags were removed is still there, and still bills.
    const groups = await this.groups();
    const wanted = new Set(ids);
    await Promise.all(
      groups
        .filter((g) => wanted.has(g.name))
        .map(async (g) => {
          states.set(g.name, g.provisioningState === 'Deleting' ? { state: 'ending' } : await this.vmState(g.name));
        }),
    );
    return states;
  }

  private async vmState(group: string): Promise<MachineStatus> {
    try {
      const view = await this.call('virtualMachines.instanceView', () =>
        this.compute.virtualMachines.instanceView(group, 'runner'),
      );
      const codes = (view.statuses ?? []).map((s) => s.code ?? '');
      const power = codes.find((c) => c.startsWith('PowerState/'))?.slice('PowerState/'.length);
      const failed = view.statuses?.find((s) => s.code?.startsWith('ProvisioningState/failed'));
      if (failed) return { state: 'failed', detail: failed.message ?? failed.code ?? 'provisioning failed' };
      const state: MachineState =
        power === 'running'
          ? 'running'
          : power === 'stopped' || power === 'deallocated'
            ? 'stopped'
            : power === 'stopping' || power === 'deallocating'
              ? 'ending'
              : 'starting';
      return { state };
    } catch (err) {
      // A launch returns once its VM exists, so a group without one lost it: evicted or deleted.
      if (err instanceof CloudError && err.kind === 'gone') {
        return { state: 'gone', detail: 'the VM is gone from its resource group (a spot eviction, or deleted)' };
      }
      throw err;
    }
  }

  /**
   * This action's groups for a repository (and a run): those its tags say are, and those named
   * `<azure-resource-group-prefix>-...` whatever their tags. Resource Manager filters groups by
   * one tag only, not by name, so the list is the subscription's groups, filtered here. A group
   * without this action's tags (someone removed them) is read by its VM's tags; with none there
   * either, it is listed for sweep alone, with its runner named after the group, since which run
   * launched it is unknown.
   */
  async list(filter: { repo: string; runId?: string }): Promise<ManagedMachine[]> {
    const prefix = `${this.options.resourceGroupPrefix}-`.toLowerCase();
    const groups = (await this.groups()).filter(
      (g) => g.tags[TAG.managed] === 'true' || g.name.toLowerCase().startsWith(prefix),
    );
    const tagged = await mapLimited(groups, LIST_CONCURRENCY, (g) =>
      g.tags[TAG.managed] === 'true' ? Promise.resolve(g.tags) : this.vmTags(g.name),
    );
    const ours: Array<{ g: (typeof groups)[number]; tags: Record<string, string> }> = [];
    groups.forEach((g, i) => {
      const r = tagged[i]!;
      if (r.status === 'rejected') throw r.reason;
      const tags = r.value;
      if (tags[TAG.managed] === 'true') {
        if (tags[TAG.repo] === filter.repo && (!filter.runId || tags[TAG.runId] === filter.runId))
          ours.push({ g, tags });
      } else if (!filter.runId) {
        ours.push({ g, tags: { [TAG.runner]: g.name.slice(prefix.length) } });
      }
    });
    const states = await mapLimited(ours, LIST_CONCURRENCY, (o) => this.groupState({ ...o.g, tags: o.tags }));
    return ours.map((o, i) => {
      const s = states[i]!;
      // A state that could not be read leaves the group to the tags: cleanup and sweep still act on it.
      return managedFromTags(o.g.name, o.tags, { state: s.status === 'fulfilled' ? s.value : 'running' });
    });
  }

  /** The tags of a group's VM, or none when it has no VM. */
  private async vmTags(group: string): Promise<Record<string, string>> {
    try {
      const vm = await this.call('virtualMachines.get', () => this.compute.virtualMachines.get(group, 'runner'));
      return vm.tags ?? {};
    } catch (err) {
      if (err instanceof CloudError && err.kind === 'gone') return {};
      throw err;
    }
  }

  /**
   * A group as cleanup and sweep see it: `ending` while Azure deletes it, else its VM's state. A
   * group without its VM is never `gone`, since the group is what bills: a Spot eviction
   * (evictionPolicy Delete) takes the VM and its disk and leaves the group with its public
   * address. Such a group is `stopped`, for cleanup and sweep to delete, unless it is young
   * enough that its launch may still be creating the VM (`starting`); sweep spares a young group
   * either way, by its created-at tag and the grace period.
   * https://learn.microsoft.com/azure/virtual-machines/spot-vms#eviction-policy
   */
  private async groupState(g: { name: string; tags: Record<string, string>; provisioningState?: string }) {
    if (g.provisioningState === 'Deleting') return 'ending' as const;
    const vm = await this.vmState(g.name);
    if (vm.state !== 'gone') return vm.state;
    const created = Date.parse(g.tags[TAG.createdAt] ?? '');
    const creating = Number.isFinite(created) && this.ctx.clock.now() - created < LRO_TIMEOUT_MS;
    return creating ? ('starting' as const) : ('stopped' as const);
  }

  private async groups(
    filter?: string,
  ): Promise<Array<{ name: string; tags: Record<string, string>; provisioningState?: string }>> {
    return this.call('resourceGroups.list', async () => {
      const out: Array<{ name: string; tags: Record<string, string>; provisioningState?: string }> = [];
      for await (const g of this.resources.resourceGroups.list(filter ? { filter } : {})) {
        if (g.name) out.push({ name: g.name, tags: g.tags ?? {}, provisioningState: g.properties?.provisioningState });
      }
      return out;
    });
  }

  async consoleLog(id: string): Promise<string> {
    const data = await this.call('virtualMachines.retrieveBootDiagnosticsData', () =>
      this.compute.virtualMachines.retrieveBootDiagnosticsData(id, 'runner'),
    );
    if (!data.serialConsoleLogBlobUri) return '';
    const res = await fetch(data.serialConsoleLogBlobUri, { signal: AbortSignal.timeout(30_000) });
    return res.ok ? await res.text() : '';
  }

  async terminate(id: string): Promise<'terminated' | 'gone'> {
    return endedOrGone(() => this.deleteGroup(id));
  }

  /** Starts the group's deletion; ARM goes on with it. Everything in the group goes with it. */
  private async deleteGroup(group: string): Promise<void> {
    await this.call('resourceGroups.delete', async () => {
      const poller = this.resources.resourceGroups.delete(group, {
        forceDeletionTypes: 'Microsoft.Compute/virtualMachines',
      });
      await poller.submitted();
    });
  }

  async findByClientToken(clientToken: string): Promise<string[]> {
    const groups = await this.groups(`tagName eq '${TAG.clientToken}' and tagValue eq '${clientToken}'`);
    return groups.map((g) => g.name);
  }

  /** A long-running create, awaited through the SDK's poller, with a timeout. */
  private async lro<T>(action: string, start: () => PromiseLike<T>): Promise<T> {
    return this.call(action, async () => {
      const timeout = AbortSignal.timeout(LRO_TIMEOUT_MS);
      const poller = start();
      return await Promise.race([
        Promise.resolve(poller),
        new Promise<never>((_, reject) =>
          timeout.addEventListener('abort', () =>
            reject(
              azureRefusal(
                'OperationTimedOut',
                `${action} not done after ${LRO_TIMEOUT_MS / 60_000} minutes`,
                'permanent',
              ),
            ),
          ),
        ),
      ]);
    });
  }

  private call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    return cloudCall(this.ctx, this.policy, action, fn);
  }
}

/**
 * @azure/identity's chain, except in a workflow with GitHub OIDC and an app registration but no
 * secret: then the job's own OIDC token is the client assertion (federated credentials).
 * Instance discovery is for Microsoft's own clouds; another authority host (Azure Stack) skips it.
 */
export function azureCredential(env: Env): TokenCredential {
  const host = env.AZURE_AUTHORITY_HOST;
  const microsoft =
    !host ||
    /(^|\.)(microsoftonline\.(com|us|de)|chinacloudapi\.cn|microsoftonline\.microsoft\.scloud)$/.test(
      new URL(host).hostname,
    );
  // The credential is handed what it would otherwise read from the process environment.
  const options = {
    ...(host ? { authorityHost: host } : {}),
    ...(microsoft ? {} : { disableInstanceDiscovery: true }),
  };
  const { AZURE_TENANT_ID: tenant, AZURE_CLIENT_ID: client, AZURE_CLIENT_SECRET: secret } = env;
  const tokenFile = env.AZURE_FEDERATED_TOKEN_FILE;
  if (tenant && client && secret) return new ClientSecretCredential(tenant, client, secret, options);
  if (tenant && client && tokenFile) {
    return new WorkloadIdentityCredential({ ...options, tenantId: tenant, clientId: client, tokenFilePath: tokenFile });
  }
  if (env.ACTIONS_ID_TOKEN_REQUEST_URL && tenant && client) {
    return new ClientAssertionCredential(tenant, client, () => getIDToken('api://AzureADTokenExchange'), options);
  }
  return new DefaultAzureCredential(options);
}

/**
 * A Linux VM needs a password or a key. It gets a fresh public key whose private half is never
 * kept: nobody signs in, and the serial log says what happened.
 */
function throwawaySshKey(): string {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' }) as { e: string; n: string };
  const mpint = (b64url: string): Buffer => {
    const bytes = Buffer.from(b64url, 'base64url');
    return bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  };
  const field = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, (b.length >> 8) & 0xff, b.length & 0xff]), b]);
  const blob = Buffer.concat([field(Buffer.from('ssh-rsa')), field(mpint(jwk.e)), field(mpint(jwk.n))]);
  return `ssh-rsa ${blob.toString('base64')} cml-runner`;
}

/** Resource group names: the prefix, the runner name, and the attempt when it is not the first. */
export function groupName(prefix: string, runnerName: string, attempt: number): string {
  return `${prefix}-${runnerName}${attempt > 1 ? `-${attempt}` : ''}`.slice(0, 90);
}
