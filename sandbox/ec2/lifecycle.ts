/**
 * What happens to an instance over time: `pending` to `running` as its machine boots, a
 * `shutdown` inside the machine applied as `InstanceInitiatedShutdownBehavior` says, termination,
 * and spot interruptions with their notice ("Instance lifecycle" and "Spot Instance
 * interruptions", EC2 User Guide). Delayed steps run on the store's timers.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Ec2Instance, InstanceStateName } from '../ec2.js';
import { sleep } from '../core/index.js';
import { type GpuModel, IMAGES, INSTANCE_TYPES, type ImageSpec } from './catalog.js';
import type { Ec2Store } from './store.js';

/** Moves an instance to a state, with what the state means for its volumes and spot request. */
export function setState(inst: Ec2Instance, state: InstanceStateName): void {
  inst.state = state;
  if (state === 'terminated') {
    inst.terminatedAt = new Date();
    for (const v of inst.blockDevices) {
      if (v.state === 'in-use') v.state = v.deleteOnTermination ? 'deleted' : 'available';
    }
    if (inst.spotRequest) {
      if (inst.spotRequest.type === 'one-time') inst.spotRequest.state = 'closed';
      else if (inst.spotRequest.state === 'active') inst.spotRequest.state = 'open';
    }
  }
  if (state === 'stopped' && inst.spotRequest && inst.spotRequest.type === 'persistent')
    inst.spotRequest.state = 'disabled';
}

export function boot(store: Ec2Store, inst: Ec2Instance): void {
  if (inst.state !== 'pending') return;
  setState(inst, 'running');
  const type = INSTANCE_TYPES[inst.instanceType]!;
  const image = IMAGES.find((i) => i.id === inst.imageId)!;
  const { script, note } = userDataScript(inst.userData);
  const driven = type.gpu && image.nvidiaDriver ? drives(image, type.gpu) : false;
  const undriven = type.gpu && image.nvidiaDriver && !driven ? type.gpu : undefined;
  inst.machine = store.machines.boot({
    id: inst.id,
    script,
    arch: inst.architecture,
    env: {
      SANDBOX_INSTANCE_ID: inst.id,
      SANDBOX_CLOUD: 'aws',
      AWS_EC2_METADATA_SERVICE_ENDPOINT: `${store.imdsUrl}/${inst.id}`,
    },
    ...(type.gpu && driven
      ? { gpu: { model: type.gpu.smiName, count: type.gpu.count, memoryMiB: type.gpu.memoryMiB } }
      : {}),
    ...(undriven ? { prepare: (root: string) => failingNvidiaSmi(root) } : {}),
    banner: [
      `[    0.000000] Linux version 6.8.0-1016-aws (sandbox) #17-Ubuntu SMP`,
      `[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root=LABEL=cloudimg-rootfs`,
      ...(undriven ? unsupportedGpuLog(undriven) : []),
      `[    2.104411] cloud-init[612]: Cloud-init v. 24.4 running 'init' (instance ${inst.id}, ${inst.instanceType})`,
      ...(note ? [note] : []),
    ],
    onShutdown: () => instanceInitiatedShutdown(store, inst),
  });
}

/** Whether the image's NVIDIA driver drives this GPU: the open kernel modules need Turing or newer. */
function drives(image: ImageSpec, gpu: GpuModel): boolean {
  return image.driver?.kernelModules !== 'open' || gpu.architecture !== 'volta';
}

/** The kernel's words when the open nvidia.ko finds a GPU without a GSP (pre-Turing). */
function unsupportedGpuLog(gpu: GpuModel): string[] {
  return Array.from({ length: gpu.count }, (_, i) => [
    `[    5.21${String(i).padStart(4, '0')}] NVRM: The NVIDIA GPU 0000:00:${(0x1e + i).toString(16)}.0 (PCI ID: ${gpu.pciId})`,
    '               NVRM: installed in this system is not supported by open',
    '               NVRM: nvidia.ko because it does not include the required GPU',
    '               NVRM: System Processor (GSP).',
  ]).flat();
}

/**
 * `nvidia-smi` on a machine whose driver loaded but drives no GPU: it fails as the real one does
 * (exit 9, NVML's "driver not loaded"). Written over the machine's stand-ins, which come first on
 * its PATH.
 */
function failingNvidiaSmi(root: string): undefined {
  const bin = path.join(root, '.sandbox', 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(
    path.join(bin, 'nvidia-smi'),
    '#!/bin/bash\necho "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver. ' +
      'Make sure that the latest NVIDIA driver is installed and running."\nexit 9\n',
    { mode: 0o755 },
  );
  return undefined;
}

/** cloud-init runs user data that starts with `#!`; gzip is undone first, as cloud-init does. */
function userDataScript(userData: string): { script: string; note?: string } {
  if (userData.length === 0) return { script: '' };
  if (userData.startsWith('#!')) return { script: userData };
  const firstLine = userData.split('\n', 1)[0] ?? '';
  return {
    script: '',
    note: `[    3.000000] cloud-init[612]: Unhandled non-multipart (text/x-not-multipart) userdata: '${firstLine.slice(0, 40)}...'`,
  };
}

function instanceInitiatedShutdown(store: Ec2Store, inst: Ec2Instance): void {
  if (inst.state !== 'running' && inst.state !== 'pending') return;
  inst.stateReason = {
    code: 'Client.InstanceInitiatedShutdown',
    message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown',
  };
  inst.stateTransitionReason = `User initiated (${awsTime(new Date())})`;
  // One-time spot instances cannot be stopped; they end on shutdown whatever the behaviour says.
  const terminate =
    inst.shutdownBehavior === 'terminate' || (inst.spotRequest !== undefined && inst.spotRequest.type === 'one-time');
  if (terminate) {
    setState(inst, 'shutting-down');
    store.timers.later(store.settings.shutdownDelayMs, () => setState(inst, 'terminated'));
  } else {
    setState(inst, 'stopping');
    store.timers.later(store.settings.shutdownDelayMs, () => setState(inst, 'stopped'));
  }
}

export async function terminate(
  store: Ec2Store,
  inst: Ec2Instance,
  reason: { code: string; message: string },
): Promise<void> {
  if (inst.state === 'terminated' || inst.state === 'shutting-down') return;
  const wasStopped = inst.state === 'stopped';
  inst.stateReason = reason;
  inst.stateTransitionReason = `User initiated (${awsTime(new Date())})`;
  setState(inst, 'shutting-down');
  const killing = inst.machine?.kill();
  store.timers.later(wasStopped ? 10 : store.settings.shutdownDelayMs, () => {
    void (killing ?? Promise.resolve()).then(() => setState(inst, 'terminated'));
  });
}

export async function interruptSpot(
  store: Ec2Store,
  instanceId: string,
  how: { noticeMs?: number } = {},
): Promise<void> {
  const inst = store.byId.get(instanceId);
  if (!inst?.spotRequest) throw new Error(`${instanceId} is not a spot instance`);
  if (inst.state !== 'running' && inst.state !== 'pending') return;
  const noticeMs = how.noticeMs ?? 0;
  // The notice names the action and when it happens, to the second (the docs' example:
  // {"action": "terminate", "time": "2017-09-18T08:22:00Z"}).
  inst.spotNotice = { action: inst.spotRequest.interruptionBehavior, time: new Date(Date.now() + noticeMs) };
  // The caller awaits the notice; a Timers wait would never settle once the fake closes.
  if (noticeMs > 0) await sleep(noticeMs);
  // The instance may have ended itself during the notice, or the sandbox closed.
  if (store.timers.isClosed || (inst.state !== 'running' && inst.state !== 'pending')) return;
  const reason = {
    code: 'Server.SpotInstanceTermination',
    message: 'Server.SpotInstanceTermination: Spot instance termination',
  };
  if (inst.spotRequest.interruptionBehavior === 'terminate') {
    await terminate(store, inst, reason);
  } else {
    inst.stateReason = {
      code: 'Server.SpotInstanceShutdown',
      message: 'Server.SpotInstanceShutdown: Spot instance shutdown',
    };
    setState(inst, 'stopping');
    await inst.machine?.kill();
    store.timers.later(store.settings.shutdownDelayMs, () => setState(inst, 'stopped'));
  }
}

/** `2025-10-01 12:00:00 GMT`, as in EC2's state transition reasons. */
export function awsTime(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} GMT`;
}
