/**
 * Virtual machines: the PUT (201 + an async operation that ends after `vmLroMs`, when the VM's
 * machine boots its customData), the PATCH of its userData, GET (userData only with
 * `$expand=userData`), instanceView, boot diagnostics (the serial log as a SAS
 * blob URL), the end of a VM (its group deleted, or a Spot eviction).
 * https://learn.microsoft.com/rest/api/compute/virtual-machines
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Fault, sleep } from '../../core/index.js';
import type { AzureVm } from '../../azure.js';
import type { GpuSpec } from '../../machine.js';
import { AZURE_CA_FILE, a10Fraction, gpuOfSize } from '../catalog.js';
import { type AzureStore, type Group, type Issued, type J, type Reply, type Vm, lower, uuid } from '../store.js';
import {
  ALLOCATION_MESSAGE,
  ASYNC_VM_FAULTS,
  ArmError,
  type VmSpec,
  checkUserData,
  checkVmPut,
  invalid,
  ref,
  vmFaultError,
} from '../validation.js';
import { startOp } from './operations.js';

const TYPE = 'Microsoft.Compute/virtualMachines';

/**
 * Creates the VM after its checks. A capacity or quota fault refuses it synchronously (409); an
 * allocation fault lets it be created and fails its async operation, leaving a Failed VM.
 */
export function putVm(store: AzureStore, g: Group, name: string, body: J, fault: Fault | undefined): Reply {
  const spec = checkVmPut(store, g, name, body);
  const refused = vmFaultError(fault, spec);
  if (refused) throw refused;
  const vm = newVm(store, g, name, body, spec);
  g.resources.set(lower(`${TYPE}/${name}`), vm);
  store.allVms.push(vm);
  if (vm.principalId) store.vmIdentities.set(vm.principalId, vm);
  const asyncCode = fault?.code && ASYNC_VM_FAULTS.has(fault.code) ? fault.code : undefined;
  const asyncUrl = startOp(store, 'Microsoft.Compute', spec.location, store.config.vmLroMs, () => {
    if (vm.deleted)
      return {
        status: 'Failed',
        error: { code: 'Canceled', message: 'The operation was canceled: the VM was deleted.' },
      };
    if (asyncCode) {
      vm.provisioningState = 'Failed';
      vm.failureCode = asyncCode;
      vm.powerState = 'deallocated';
      (vm.body.properties as J).provisioningState = 'Failed';
      return { status: 'Failed', error: { code: asyncCode, message: fault?.message ?? ALLOCATION_MESSAGE } };
    }
    vm.provisioningState = 'Succeeded';
    (vm.body.properties as J).provisioningState = 'Succeeded';
    boot(store, vm);
    return { status: 'Succeeded' };
  });
  return {
    status: 201,
    json: structuredClone(vm.body),
    headers: { 'azure-asyncoperation': asyncUrl, 'retry-after': store.config.retryAfter },
  };
}

function newVm(store: AzureStore, g: Group, name: string, body: J, spec: VmSpec): Vm {
  const { location, props: p, os, size, priority, customData, userData, image, osDisk, nics, security } = spec;
  const id = `/subscriptions/${store.sub}/resourceGroups/${g.name}/providers/${TYPE}/${name}`;
  const vmId = uuid();
  const principalId = (body.identity as J | undefined)?.type === 'SystemAssigned' ? uuid() : undefined;
  const identity = principalId ? { type: 'SystemAssigned' as const, principalId, tenantId: store.tenant } : undefined;
  const out: J = {
    name,
    id,
    type: TYPE,
    location,
    ...(body.tags ? { tags: body.tags } : {}),
    ...(identity ? { identity } : {}),
    properties: {
      ...p,
      securityProfile: securityProfileOf(security),
      osProfile: { ...os, customData: undefined, adminPassword: undefined },
      // Kept apart: ARM's GET shows it only when asked ($expand=userData).
      userData: undefined,
      vmId,
      provisioningState: 'Creating',
      timeCreated: new Date().toISOString(),
    },
  };
  const nicRef = nics.find((n) => (n.properties as J | undefined)?.primary === true) ?? nics[0]!;
  const nicDelete = (nicRef.properties as J | undefined)?.deleteOption;
  const driver = nvidiaDriver(spec);
  return {
    id,
    type: TYPE,
    body: out,
    vmId,
    group: g.name,
    name,
    location,
    vmSize: size,
    priority,
    ...(priority === 'Spot' ? { evictionPolicy: String(p.evictionPolicy ?? 'Deallocate') } : {}),
    ...(p.billingProfile ? { billingProfile: p.billingProfile as { maxPrice?: number } } : {}),
    ...(principalId && identity ? { principalId, identity } : {}),
    imageReference: image,
    ...(osDisk.deleteOption !== undefined ? { osDiskDeleteOption: String(osDisk.deleteOption) } : {}),
    ...(nicDelete !== undefined ? { nicDeleteOption: String(nicDelete) } : {}),
    ...(customData !== undefined ? { customData } : {}),
    ...(userData ? { userData } : {}),
    userDataUpdates: 0,
    tags: { ...((body.tags as Record<string, string> | undefined) ?? {}) },
    provisioningState: 'Creating',
    powerState: 'starting',
    ...driver,
    deleted: false,
    evictionNotice: false,
    createdAt: new Date(),
    serialBanner: [
      '[    0.000000] Linux version 6.8.0-1021-azure (buildd@sandbox) #25-Ubuntu SMP',
      `[    0.000000] DMI: Microsoft Corporation Virtual Machine/Virtual Machine, ${size}`,
      `Ubuntu 24.04 LTS ${String(os.computerName)} ttyS0`,
      ...(driver.driverFailure?.kernel ? [driver.driverFailure.kernel] : []),
      customData !== undefined
        ? `cloud-init[1021]: running customData (${customData.length} bytes)`
        : 'cloud-init[1021]: no customData',
    ],
    console() {
      return this.machine ? this.machine.console() : this.serialBanner.map((l) => `${l}\n`).join('');
    },
    nicId: lower(ref(nicRef) ?? ''),
  };
}

/** The securityProfile ARM answers for the VM (a Trusted Launch VM's UEFI settings included). */
function securityProfileOf(security: VmSpec['security']): J {
  if (security.securityType === 'Standard') return { securityType: 'Standard' };
  return {
    securityType: 'TrustedLaunch',
    uefiSettings: { secureBootEnabled: security.secureBoot, vTpmEnabled: security.vTpm },
  };
}

/**
 * The GPUs `nvidia-smi` shows, or why it fails. The driver is the image's: none, the datacenter
 * (CUDA) one, or GRID. Under Secure Boot the NVIDIA module is not signed by a key the kernel
 * trusts, so it does not load (whether the image or the startup script brought it); an A10
 * partition (NV6ads, NV12ads, NV18ads) is seen only by the GRID driver.
 */
function nvidiaDriver(spec: VmSpec): { gpu?: GpuSpec; driverFailure?: Vm['driverFailure'] } {
  const gpu = gpuOfSize(spec.size);
  if (!gpu || spec.resolved.driver === 'none') return {};
  if (spec.security.secureBoot) {
    return {
      driverFailure: {
        message:
          "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
        exit: 9,
        kernel: '[    4.210331] Lockdown: modprobe: unsigned module loading is restricted; see man kernel_lockdown.7',
      },
    };
  }
  const fraction = a10Fraction(spec.size);
  if (fraction === undefined) return { gpu };
  if (spec.resolved.driver !== 'grid') return { driverFailure: { message: 'No devices were found', exit: 6 } };
  const gb = Math.round(24 * fraction);
  return { gpu: { model: `NVIDIA A10-${gb}Q`, count: 1, memoryMiB: gb * 1024 } };
}

/** A failing `nvidia-smi`, first on the machine's PATH, as a machine whose driver does not work has. */
function failingNvidiaSmi(failure: NonNullable<Vm['driverFailure']>): (root: string) => undefined {
  return (root) => {
    const file = path.join(root, '.sandbox', 'bin', 'nvidia-smi');
    fs.writeFileSync(file, `#!/bin/bash\necho ${JSON.stringify(failure.message)}\nexit ${failure.exit}\n`, {
      mode: 0o755,
    });
    return undefined;
  };
}

function boot(store: AzureStore, vm: Vm): void {
  vm.powerState = 'running';
  const m = store.config.machines.boot({
    id: vm.vmId,
    script: vm.customData ?? '',
    arch: /^Standard_[A-Z]+\d+[a-z]*p[a-z]*_v\d+$/.test(vm.vmSize) ? 'arm64' : 'x86_64',
    env: {
      SANDBOX_CLOUD: 'azure',
      SANDBOX_INSTANCE_ID: vm.vmId,
      AZURE_POD_IDENTITY_AUTHORITY_HOST: `${store.imdsUrl}/_imds/${vm.vmId}`,
      CURL_CA_BUNDLE: AZURE_CA_FILE,
    },
    ...(vm.gpu ? { gpu: vm.gpu } : {}),
    ...(vm.driverFailure ? { prepare: failingNvidiaSmi(vm.driverFailure) } : {}),
    banner: vm.serialBanner,
    onShutdown: () => {
      // A guest shutdown stops the VM; it is not deallocated, so it still bills.
      if (!vm.deleted && vm.powerState === 'running') vm.powerState = 'stopped';
    },
  });
  vm.machine = m;
  store.owned.add(m);
}

/** Removes a VM (group deletion or eviction): its machine is powered off, its identity's roles go. */
export function endVm(store: AzureStore, vm: Vm, reason: NonNullable<AzureVm['endedReason']>): void {
  if (vm.deleted) return;
  vm.deleted = true;
  vm.endedReason ??= reason;
  vm.endedAt = new Date();
  vm.powerState = 'deleted';
  if (vm.principalId) store.assignments = store.assignments.filter((a) => a.principalId !== vm.principalId);
  void vm.machine?.kill();
}

/**
 * `GET .../virtualMachines/{vm}`: the model view; `userData` only with `$expand=userData`, the one
 * way to read it from outside the VM.
 * https://learn.microsoft.com/azure/virtual-machines/user-data#retrieving-user-data
 */
export function getVm(vm: Vm, q: URLSearchParams): Reply {
  const body = structuredClone(vm.body);
  if (lower(q.get('$expand') ?? '') === 'userdata') (body.properties as J).userData = vm.userData ?? '';
  return { status: 200, json: body };
}

/**
 * `PATCH .../virtualMachines/{vm}` with `properties.userData`: changes the user data of a running
 * VM without stopping or rebooting it; an empty string deletes it. 200 with the VM and an async
 * operation, as ARM answers an update. The fake updates nothing else.
 * https://learn.microsoft.com/azure/virtual-machines/user-data#updating-user-data
 */
export function patchVm(store: AzureStore, vm: Vm, body: J): Reply {
  const props = (body.properties ?? {}) as J;
  const other = [...Object.keys(body).filter((k) => k !== 'properties'), ...Object.keys(props)].filter(
    (k) => k !== 'userData',
  );
  if (other.length > 0)
    throw new ArmError(409, 'Conflict', `The fake updates a VM's userData only, not ${other.join(', ')}.`);
  const userData = checkUserData(props.userData);
  if (userData !== undefined) {
    vm.userData = userData;
    vm.userDataUpdates++;
  }
  const asyncUrl = startOp(store, 'Microsoft.Compute', vm.location, store.config.lroMs, () => ({
    status: 'Succeeded',
  }));
  return {
    status: 200,
    json: structuredClone(vm.body),
    headers: { 'azure-asyncoperation': asyncUrl, 'retry-after': store.config.retryAfter },
  };
}

export function vmIn(g: Group, name: string): Vm | undefined {
  return g.resources.get(lower(`${TYPE}/${name}`)) as Vm | undefined;
}

/** SAS URLs of the serial log and screenshot blobs, valid `sasUriExpirationTimeInMinutes` (1..1440, default 120). */
export function bootDiagnostics(store: AzureStore, vm: Vm, q: URLSearchParams): Reply {
  const diag = ((vm.body.properties as J).diagnosticsProfile as J | undefined)?.bootDiagnostics as J | undefined;
  if (diag?.enabled !== true)
    throw new ArmError(409, 'OperationNotAllowed', 'Boot diagnostics are not enabled for this virtual machine.');
  const minutes = Number(q.get('sasUriExpirationTimeInMinutes') ?? 120);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440)
    throw invalid('sasUriExpirationTimeInMinutes must be 1 to 1440.', 'sasUriExpirationTimeInMinutes');
  const sig = crypto.randomBytes(16).toString('base64url');
  const expires = Date.now() + minutes * 60000;
  store.blobSigs.set(sig, { vm, expires });
  const se = new Date(expires).toISOString().replace(/\.\d+Z$/, 'Z');
  const sas = `sv=2018-03-28&sr=b&sp=r&se=${encodeURIComponent(se)}&sig=${sig}`;
  const base = `${store.url}/_blob/bootdiagnostics-${vm.vmId}/${vm.name}.${vm.vmId}`;
  return {
    status: 200,
    json: {
      consoleScreenshotBlobUri: `${base}.screenshot.bmp?${sas}`,
      serialConsoleLogBlobUri: `${base}.serialconsole.log?${sas}`,
    },
  };
}

/** Real instance views name a failed create's error in the code: `ProvisioningState/failed/<code>`. */
export function instanceView(vm: Vm): J {
  const now = new Date().toISOString();
  const statuses: J[] = [];
  if (vm.provisioningState === 'Failed') {
    statuses.push({
      code: `ProvisioningState/failed/${vm.failureCode ?? 'InternalError'}`,
      level: 'Error',
      displayStatus: 'Provisioning failed',
      message: ALLOCATION_MESSAGE,
      time: now,
    });
  } else {
    const succeeded = vm.provisioningState === 'Succeeded';
    statuses.push({
      code: `ProvisioningState/${lower(vm.provisioningState)}`,
      level: 'Info',
      displayStatus: succeeded ? 'Provisioning succeeded' : 'Creating',
      ...(succeeded ? { time: now } : {}),
    });
    const power = vm.powerState === 'deleted' ? 'deallocated' : vm.powerState;
    statuses.push({ code: `PowerState/${power}`, level: 'Info', displayStatus: `VM ${power}` });
  }
  return {
    computerName: ((vm.body.properties as J).osProfile as J).computerName,
    osName: 'ubuntu',
    osVersion: '24.04',
    hyperVGeneration: 'V2',
    vmAgent: {
      vmAgentVersion: '2.12.0.2',
      statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Ready', time: now }],
    },
    disks: [
      {
        name: `${vm.name}_OsDisk_1_${vm.vmId.replace(/-/g, '')}`,
        statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded' }],
      },
    ],
    bootDiagnostics: {},
    statuses,
  };
}

/**
 * `POST .../virtualMachines/{vm}/deallocate`: 202 with an async operation; the VM is deallocating,
 * then deallocated (its machine powered off), which ends its compute billing (its disk and
 * address still bill). A VM already deallocated answers 200.
 * https://learn.microsoft.com/rest/api/compute/virtual-machines/deallocate
 */
export function deallocateVm(store: AzureStore, vm: Vm, by: Issued): Reply {
  if (vm.powerState === 'deallocated') return { status: 200 };
  vm.deallocatedBy ??= by.identity;
  vm.powerState = 'deallocating';
  const asyncUrl = startOp(store, 'Microsoft.Compute', vm.location, store.config.lroMs, () => {
    if (!vm.deleted) vm.powerState = 'deallocated';
    void vm.machine?.kill();
    return { status: 'Succeeded' };
  });
  return {
    status: 202,
    headers: { 'azure-asyncoperation': asyncUrl, location: asyncUrl, 'retry-after': store.config.retryAfter },
  };
}

/**
 * Evicts the Spot VM of a group: a Preempt scheduled event whose NotBefore is `noticeMs` away
 * (Azure's minimum notice is 30 s), then its evictionPolicy (Delete: the VM and its OS disk go,
 * the group and its network stay; Deallocate). A VM that goes during the notice (its machine
 * deleted its own group) ends the wait.
 * https://learn.microsoft.com/azure/virtual-machines/spot-vms#eviction-policy
 * https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events#event-scheduling
 */
export async function evict(store: AzureStore, groupName: string, noticeMs = 30_000): Promise<void> {
  const g = store.group(groupName);
  const vm = store.liveVm(groupName);
  if (!g || !vm) throw new Error(`no live VM in resource group ${groupName}`);
  if (vm.priority === 'Regular') throw new Error(`${groupName}/${vm.name} is not a Spot VM`);
  if (vm.powerState === 'deallocated') return;
  vm.evictionNotice = true;
  const until = Date.now() + Math.max(0, noticeMs);
  vm.evictionNotBefore = new Date(until);
  while (Date.now() < until && !vm.deleted && !store.timers.isClosed) await sleep(Math.min(100, until - Date.now()));
  if (store.timers.isClosed || vm.deleted) {
    await vm.machine?.exited;
    return;
  }
  if (vm.evictionPolicy === 'Delete') {
    g.resources.delete(lower(`${vm.type}/${vm.name}`));
    endVm(store, vm, 'evicted');
  } else {
    vm.endedReason ??= 'evicted';
    vm.powerState = 'deallocated';
    void vm.machine?.kill();
  }
  await vm.machine?.exited;
}
