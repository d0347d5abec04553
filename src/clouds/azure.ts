import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { ComputeManagementClient, type VirtualMachine } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import { ResourceManagementClient } from '@azure/arm-resources';
import { getIDToken } from '@actions/core';
import { ClientAssertionCredential, DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { generateKeyPairSync } from 'node:crypto';
import type { CloudScriptSettings } from '../bootstrap/render.js';
import { AZURE_DEFAULT_IMAGE, parseAzureImage } from '../catalog/azure.js';
import type { MachineSpec } from '../config.js';
import { CloudError, errorMessage, type Fallback } from '../errors.js';
import { realClock, withRetry, type Clock } from '../retry.js';
import type { Cloud, Machine, MachineRequest, MachineState, MachineStatus, ManagedMachine, Placement } from './types.js';

/**
 * Azure. Each runner gets its own resource group holding everything of its machine (network
 * security group, virtual network, public address, network interface, VM and its disk), so one
 * deletion ends it all, and a machine's id is its resource group's name.
 *
 * Credentials: @azure/identity's DefaultAzureCredential (AZURE_CLIENT_ID / AZURE_TENANT_ID with
 * AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, the Azure CLI that azure/login signs in,
 * a managed identity). The ARM endpoint moves with AZURE_RESOURCE_MANAGER_ENDPOINT (sovereign
 * clouds, Azure Stack Hub).
 *
 * The VM has a system-assigned managed identity with Contributor on its own resource group, so
 * that its startup script can delete the group when the runner is done: a stopped Azure VM still
 * bills.
 */

const DEFAULT_ARM = 'https://management.azure.com';
/** Contributor, a built-in role: on the VM's own resource group only. */
const CONTRIBUTOR = 'b24988ac-6180-42a0-ab88-20f7382dd24c';
const LRO_TIMEOUT_MS = 15 * 60_000;
/** Long-running operations are polled as often as ARM's Retry-After says, or every 0.5 s when it says nothing. */
const POLL = { updateIntervalInMs: 500 };

const ADVICE: Record<string, { advice: string; fallback?: Fallback }> = {
  SkuNotAvailable: {
    advice: 'This VM size is not available in this region for the subscription right now. Give more types (type takes a comma list) or another region.',
    fallback: 'capacity',
  },
  AllocationFailed: { advice: 'Azure has no capacity for this VM size in this region right now. Give more types, another region, or spot: false.', fallback: 'capacity' },
  ZonalAllocationFailed: { advice: 'Azure has no capacity for this VM size in this zone right now.', fallback: 'capacity' },
  OverconstrainedAllocationRequest: { advice: 'Azure cannot place this VM size with these constraints right now.', fallback: 'capacity' },
  OperationNotAllowed: {
    advice: 'A quota of the subscription is too low for this VM (the message names it). Request an increase under Subscriptions > Usage + quotas (GPU families have their own vCPU quotas; spot VMs use the Spot quota).',
  },
  AuthorizationFailed: { advice: 'The Azure credentials may not do this. Grant the custom role in the README (Azure section) to the identity the workflow signs in as.' },
  InvalidTemplateDeployment: { advice: 'Check the type, image and tags inputs.' },
  InvalidParameter: { advice: 'Check the type, image and tags inputs.' },
};

export class AzureCloud implements Cloud {
  readonly name = 'azure' as const;
  readonly kind = 'vm' as const;
  private readonly resources: ResourceManagementClient;
  private readonly network: NetworkManagementClient;
  private readonly compute: ComputeManagementClient;
  private readonly authorization: AuthorizationManagementClient;
  private readonly arm: string;
  /** One throwaway key for every VM of the launch: making an RSA key blocks for tens of milliseconds. */
  private sshKey?: string;
  /** Launch warnings the lifecycle reports once (a role assignment refused). */
  readonly warnings: string[] = [];

  constructor(
    readonly subscriptionId: string,
    readonly region: string,
    private readonly groupPrefix = 'cml-runner',
    private readonly clock: Clock = realClock,
  ) {
    this.arm = (process.env.AZURE_RESOURCE_MANAGER_ENDPOINT || DEFAULT_ARM).replace(/\/+$/, '');
    const credential = azureCredential(process.env);
    const scopes = [`${this.arm}/.default`];
    const options = { endpoint: this.arm, credentials: { scopes }, retryOptions: { maxRetries: 4 } };
    this.resources = new ResourceManagementClient(credential, subscriptionId, options);
    this.network = new NetworkManagementClient(credential, subscriptionId, options);
    this.compute = new ComputeManagementClient(credential, subscriptionId, options);
    this.authorization = new AuthorizationManagementClient(credential, subscriptionId, { endpoint: this.arm, credentialScopes: scopes });
  }

  scriptSettings(): CloudScriptSettings {
    return { selfDelete: { cloud: 'azure', apiUrl: this.arm } };
  }

  async prepare(): Promise<void> {
    // Nothing is shared between runners: each has its own group. Sizes the region does not offer
    // are refused by the create itself (SkuNotAvailable), which moves on to the next type.
  }

  places(): Array<string | undefined> {
    return [undefined];
  }

  async launch(spec: MachineSpec, request: MachineRequest, placement: Placement): Promise<Machine> {
    const group = groupName(this.groupPrefix, request.runnerName, request.attempt);
    // Resource groups carry no creation time a list returns: the sweep's grace period needs one.
    const tags = { ...request.tags, 'cml-runner:client-token': request.clientToken, 'cml-runner:created-at': new Date(this.clock.now()).toISOString() };
    const location = this.region;
    await this.call('resourceGroups.createOrUpdate', () => this.resources.resourceGroups.createOrUpdate(group, { location, tags }));
    try {
      return await this.createMachine(spec, request, placement, group, tags);
    } catch (err) {
      // Whatever was created goes with its group; the refusal itself is what the user sees.
      await this.deleteGroup(group).catch(() => undefined);
      throw err;
    }
  }

  private async createMachine(spec: MachineSpec, request: MachineRequest, placement: Placement, group: string, tags: Record<string, string>): Promise<Machine> {
    const location = this.region;
    const vmName = 'runner';
    // The network and the address do not depend on each other: they are created side by side.
    const network = (async () => {
      // No inbound rule at all: the NSG's default rules deny inbound from the internet.
      const nsg = await this.lro('networkSecurityGroups.createOrUpdate', () => this.network.networkSecurityGroups.createOrUpdate(group, 'runner-nsg', { location, tags, securityRules: [] }, POLL));
      return this.lro('virtualNetworks.createOrUpdate', () =>
        this.network.virtualNetworks.createOrUpdate(
          group,
          'runner-vnet',
          { location, tags, addressSpace: { addressPrefixes: ['10.0.0.0/24'] }, subnets: [{ name: 'runner', addressPrefix: '10.0.0.0/24', networkSecurityGroup: { id: nsg.id } }] },
          POLL,
        ),
      );
    })();
    // A public address is the machine's way out to GitHub (new virtual networks have no default
    // outbound access); the NSG keeps everything from coming in.
    const address = this.lro('publicIPAddresses.createOrUpdate', () =>
      this.network.publicIPAddresses.createOrUpdate(group, 'runner-ip', { location, tags, sku: { name: 'Standard' }, publicIPAllocationMethod: 'Static' }, POLL),
    );
    const [vnet, ip] = await Promise.all([network, address]);
    const nic = await this.lro('networkInterfaces.createOrUpdate', () =>
      this.network.networkInterfaces.createOrUpdate(group, 'runner-nic', {
        location,
        tags,
        ipConfigurations: [{ name: 'primary', subnet: { id: vnet.subnets?.[0]?.id }, publicIPAddress: { id: ip.id, deleteOption: 'Delete' } }],
      }, POLL),
    );
    const image = parseAzureImage(spec.image ?? AZURE_DEFAULT_IMAGE)!;
    const vm: VirtualMachine = {
      location,
      tags,
      identity: { type: 'SystemAssigned' },
      hardwareProfile: { vmSize: placement.type },
      storageProfile: {
        imageReference: image,
        osDisk: { createOption: 'FromImage', deleteOption: 'Delete', managedDisk: { storageAccountType: 'StandardSSD_LRS' }, ...(spec.hddSizeGb ? { diskSizeGB: spec.hddSizeGb } : {}) },
      },
      osProfile: {
        computerName: vmName,
        adminUsername: 'runner',
        // The startup script: cloud-init runs it as root at first boot. Base64, 64 KB at most.
        customData: Buffer.from(request.startupScript, 'utf8').toString('base64'),
        // No password, no key: nobody signs in. The serial log says what happened.
        linuxConfiguration: {
          disablePasswordAuthentication: true,
          ssh: { publicKeys: [{ path: '/home/runner/.ssh/authorized_keys', keyData: (this.sshKey ??= throwawaySshKey()) }] },
          provisionVMAgent: true,
        },
      },
      networkProfile: { networkInterfaces: [{ id: nic.id, primary: true, deleteOption: 'Delete' }] },
      diagnosticsProfile: { bootDiagnostics: { enabled: true } },
      ...(placement.spot ? { priority: 'Spot', evictionPolicy: 'Delete', billingProfile: { maxPrice: spec.spotPrice ?? -1 } } : {}),
    };
    const created = await this.lro('virtualMachines.createOrUpdate', () => this.compute.virtualMachines.createOrUpdate(group, vmName, vm, POLL));
    await this.allowSelfDelete(group, created.identity?.principalId);
    return { id: group, type: placement.type, spot: placement.spot, zone: location };
  }

  /** Contributor on its own group for the VM's identity, so the VM can delete the group. */
  private async allowSelfDelete(group: string, principalId: string | undefined): Promise<void> {
    if (!principalId) return;
    const scope = `/subscriptions/${this.subscriptionId}/resourceGroups/${group}`;
    try {
      await withRetry(
        () =>
          this.authorization.roleAssignments.create(scope, crypto.randomUUID(), {
            roleDefinitionId: `/subscriptions/${this.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${CONTRIBUTOR}`,
            principalId,
            principalType: 'ServicePrincipal',
          }),
        // A new identity takes a moment to replicate: PrincipalNotFound is retried.
        { attempts: 5, baseMs: 2000, retryable: (err) => (err as { code?: string }).code === 'PrincipalNotFound', clock: this.clock },
      );
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'Error';
      if (code !== 'AuthorizationFailed') throw armError('roleAssignments.create', err);
      const warning =
        `The launching identity may not create role assignments (${code}), so the VMs cannot delete their own resource groups. ` +
        'A stopped Azure VM still bills: keep the cleanup job (mode: cleanup, if: always()) and a scheduled sweep, which delete them. ' +
        'To let VMs delete themselves, grant Microsoft.Authorization/roleAssignments/write (see "Azure" in the README).';
      if (!this.warnings.includes(warning)) this.warnings.push(warning);
    }
  }

  async states(ids: readonly string[]): Promise<Map<string, MachineStatus>> {
    const states = new Map<string, MachineStatus>(ids.map((id) => [id, { state: 'gone' }]));
    if (ids.length === 0) return states;
    const groups = await this.groups(`tagName eq 'cml-runner:managed' and tagValue eq 'true'`);
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
      const view = await this.call('virtualMachines.instanceView', () => this.compute.virtualMachines.instanceView(group, 'runner'));
      const codes = (view.statuses ?? []).map((s) => s.code ?? '');
      const power = codes.find((c) => c.startsWith('PowerState/'))?.slice('PowerState/'.length);
      const failed = view.statuses?.find((s) => s.code?.startsWith('ProvisioningState/failed'));
      if (failed) return { state: 'failed', detail: failed.message ?? failed.code ?? 'provisioning failed' };
      const state: MachineState = power === 'running' ? 'running' : power === 'stopped' || power === 'deallocated' ? 'stopped' : power === 'stopping' || power === 'deallocating' ? 'ending' : 'starting';
      return { state };
    } catch (err) {
      // A launch returns once its VM exists, so a group without one lost it: evicted or deleted.
      if (err instanceof CloudError && (err.code === 'ResourceNotFound' || err.code === 'NotFound')) return { state: 'gone', detail: 'the VM is gone from its resource group (a spot eviction, or deleted)' };
      throw err;
    }
  }

  async list(filter: { repo: string; runId?: string }): Promise<ManagedMachine[]> {
    const groups = await this.groups(`tagName eq 'cml-runner:repo' and tagValue eq '${filter.repo.replace(/'/g, "''")}'`);
    return groups
      .filter((g) => g.tags['cml-runner:managed'] === 'true' && (!filter.runId || g.tags['cml-runner:run-id'] === filter.runId))
      .map((g) => {
        const expires = Date.parse(g.tags['cml-runner:expires-at'] ?? '');
        const created = Date.parse(g.tags['cml-runner:created-at'] ?? '');
        return {
          id: g.name,
          runnerName: g.tags['cml-runner:runner'] ?? '',
          runId: g.tags['cml-runner:run-id'],
          repo: g.tags['cml-runner:repo'],
          ...(Number.isFinite(expires) ? { expiresAt: expires } : {}),
          ...(Number.isFinite(created) ? { createdAt: created } : {}),
          state: g.provisioningState === 'Deleting' ? 'ending' : 'running',
        };
      });
  }

  private async groups(filter: string): Promise<Array<{ name: string; tags: Record<string, string>; provisioningState?: string }>> {
    return this.call('resourceGroups.list', async () => {
      const out: Array<{ name: string; tags: Record<string, string>; provisioningState?: string }> = [];
      for await (const g of this.resources.resourceGroups.list({ filter })) {
        if (g.name) out.push({ name: g.name, tags: g.tags ?? {}, provisioningState: g.properties?.provisioningState });
      }
      return out;
    });
  }

  async consoleLog(id: string): Promise<string> {
    const data = await this.call('virtualMachines.retrieveBootDiagnosticsData', () => this.compute.virtualMachines.retrieveBootDiagnosticsData(id, 'runner'));
    if (!data.serialConsoleLogBlobUri) return '';
    const res = await fetch(data.serialConsoleLogBlobUri, { signal: AbortSignal.timeout(30_000) });
    return res.ok ? await res.text() : '';
  }

  async terminate(id: string): Promise<'terminated' | 'gone'> {
    try {
      await this.deleteGroup(id);
      return 'terminated';
    } catch (err) {
      if (err instanceof CloudError && (err.code === 'ResourceGroupNotFound' || err.code === 'NotFound')) return 'gone';
      throw err;
    }
  }

  /** Starts the group's deletion; ARM goes on with it. Everything in the group goes with it. */
  private async deleteGroup(group: string): Promise<void> {
    await this.call('resourceGroups.delete', async () => {
      const poller = this.resources.resourceGroups.delete(group, { forceDeletionTypes: 'Microsoft.Compute/virtualMachines' });
      await poller.submitted();
    });
  }

  async findByClientToken(clientToken: string): Promise<string[]> {
    const groups = await this.groups(`tagName eq 'cml-runner:client-token' and tagValue eq '${clientToken}'`);
    return groups.map((g) => g.name);
  }

  /** A long-running create, awaited through the SDK's poller, with a timeout. */
  private async lro<T>(action: string, start: () => PromiseLike<T>): Promise<T> {
    return this.call(action, async () => {
      const timeout = AbortSignal.timeout(LRO_TIMEOUT_MS);
      const poller = start();
      return await Promise.race([
        Promise.resolve(poller),
        new Promise<never>((_, reject) => timeout.addEventListener('abort', () => reject(new CloudError('Azure', 'OperationTimedOut', `${action} not done after ${LRO_TIMEOUT_MS / 60_000} minutes`, '')))),
      ]);
    });
  }

  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof CloudError) throw err;
      throw armError(action, err);
    }
  }
}

/**
 * @azure/identity's chain, except in a workflow with GitHub OIDC and an app registration but no
 * secret: then the job's own OIDC token is the client assertion (federated credentials).
 * Instance discovery is for Microsoft's own clouds; another authority host (Azure Stack) skips it.
 */
export function azureCredential(env: NodeJS.ProcessEnv): TokenCredential {
  const host = env.AZURE_AUTHORITY_HOST;
  const microsoft = !host || /(^|\.)(microsoftonline\.(com|us|de)|chinacloudapi\.cn|microsoftonline\.microsoft\.scloud)$/.test(new URL(host).hostname);
  const options = microsoft ? {} : { disableInstanceDiscovery: true };
  const { AZURE_TENANT_ID: tenant, AZURE_CLIENT_ID: client } = env;
  if (env.ACTIONS_ID_TOKEN_REQUEST_URL && tenant && client && !env.AZURE_CLIENT_SECRET && !env.AZURE_FEDERATED_TOKEN_FILE) {
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

/** The poller's message for a failed operation: `The long-running operation has failed. AllocationFailed. ...`. */
const FAILED_OPERATION = /^The long-running operation has failed\. (\w+)\./;

function armError(action: string, err: unknown): CloudError {
  const e = err as { code?: string; statusCode?: number; details?: { error?: { code?: string } }; message?: string };
  const code = e.code ?? e.details?.error?.code ?? FAILED_OPERATION.exec(e.message ?? '')?.[1] ?? String(e.statusCode ?? 'Error');
  const known = ADVICE[code];
  return new CloudError('Azure', code, `${action}: ${errorMessage(err)}`, known?.advice ?? '', known?.fallback);
}

/** Resource group names: the prefix, the runner name, and the attempt when it is not the first. */
export function groupName(prefix: string, runnerName: string, attempt: number): string {
  return `${prefix}-${runnerName}${attempt > 1 ? `-${attempt}` : ''}`.slice(0, 90);
}
