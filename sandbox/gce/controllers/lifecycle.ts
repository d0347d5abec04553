/**
 * An instance's life: PROVISIONING, STAGING, RUNNING (its startup script boots as a sandbox
 * machine), then STOPPING and TERMINATED, or deleted. A guest `shutdown` leaves it TERMINATED
 * (its disks still bill); `maxRunDuration`, `terminationTime` and Spot preemption apply its
 * `instanceTerminationAction` ("Limit the run time of a VM",
 * https://cloud.google.com/compute/docs/instances/limit-vm-runtime; "Spot VMs",
 * https://cloud.google.com/compute/docs/instances/spot).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { GceDisk, GceStatus } from '../../gce.js';
import { GCE_PROJECT, driverDrives, imageLink } from '../catalog.js';
import type { MetadataView } from '../metadata.js';
import { type GceStore, type Internal, type OpRecord, instanceLink, numericId } from '../store.js';
import type { InsertPlan } from '../validate.js';
import { finishOp, newOp } from './operations.js';

/** Where each VM's metadata server answers, below the fake's URL. */
export const MD_PREFIX = '/_gce_md';

function clearInstanceTimer(store: GceStore, inst: Internal): void {
  const t = store.instanceTimers.get(inst.id);
  if (t) {
    store.timers.cancel(t);
    store.instanceTimers.delete(inst.id);
  }
}

function setStatus(inst: Internal, status: GceStatus): void {
  inst.status = status;
  if (status === 'RUNNING') {
    inst.runningAt = new Date();
    inst.lastStartTimestamp = inst.runningAt;
  }
  if (status === 'TERMINATED') {
    inst.lastStopTimestamp = new Date();
    inst.endedAt ??= inst.lastStopTimestamp;
  }
}

function bootBanner(mem: number): string[] {
  return [
    'SeaBIOS (version 1.8.2-google)',
    `Total RAM Size = 0x${(mem * 1024 * 1024).toString(16).padStart(16, '0')} = ${mem} MiB`,
    'Booting from Hard Disk 0...',
    `[    0.000000] Linux version 6.8.0-1015-gcp (buildd@lcy02-amd64-033) #17~22.04.1-Ubuntu SMP`,
    `[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.8.0-1015-gcp root=PARTUUID=${crypto.randomUUID()} ro console=ttyS0,115200`,
    `[    0.000000] DMI: Google Google Compute Engine/Google Compute Engine, BIOS Google 01/01/2011`,
    `[    2.904411] google_guest_agent[612]: GCE Agent Started (version 20250901.00).`,
    `[    3.200000] google_metadata_script_runner[733]: Starting startup scripts (version 20250901.00).`,
  ];
}

function planDisks(plan: InsertPlan, zone: string): GceDisk[] {
  return plan.disks.map((d) => ({
    name: d.name,
    zone,
    sizeGb: d.sizeGb,
    type: d.type,
    boot: d.boot,
    autoDelete: d.autoDelete,
    deviceName: d.deviceName,
    ...(d.image ? { sourceImage: imageLink(d.image) } : {}),
    instanceName: plan.name,
    state: 'attached',
  }));
}

/** Creates the instance and its disks, answers its insert operation, and boots it after bootDelayMs. */
export function createInstance(
  store: GceStore,
  plan: InsertPlan,
  zone: string,
  user: string,
  requestId: string | undefined,
): OpRecord {
  const id = numericId();
  const selfLink = instanceLink(zone, plan.name);
  const n = store.nextAddressIndex();
  const natIP = plan.nics[0]?.accessConfig
    ? `34.${100 + (n % 100)}.${Math.floor(n / 100) % 250}.${(n % 250) + 1}`
    : undefined;
  const s = plan.scheduling;
  const inst: Internal = {
    id,
    name: plan.name,
    zone,
    status: 'PROVISIONING',
    deleted: false,
    machineType: plan.machineType.name,
    guestAccelerators: plan.guestAccelerators.map((a) => ({ type: a.spec.name, count: a.count })),
    ...(plan.gpus
      ? { gpus: { type: plan.gpus.spec.name, count: plan.gpus.count, model: plan.gpus.spec.smiName } }
      : {}),
    scheduling: plan.schedulingSent,
    provisioningModel: s.provisioningModel,
    preemptible: s.preemptible,
    ...(s.instanceTerminationAction ? { instanceTerminationAction: s.instanceTerminationAction } : {}),
    ...(s.maxRunDurationSeconds !== undefined ? { maxRunDurationSeconds: s.maxRunDurationSeconds } : {}),
    labels: { ...plan.labels },
    networkTags: [...plan.networkTags],
    metadata: Object.fromEntries(plan.metadata.map((i) => [i.key, i.value])),
    ...(plan.serviceAccount
      ? { serviceAccount: { email: plan.serviceAccount.email, scopes: [...plan.serviceAccount.scopes] } }
      : {}),
    disks: planDisks(plan, zone),
    image: imageLink(plan.image),
    selfLink,
    createdAt: new Date(),
    preempted: false,
    deletionProtection: plan.deletionProtection,
    networkIP: `10.128.${Math.floor(n / 250) % 250}.${(n % 250) + 2}`,
    ...(natIP ? { natIP } : {}),
    network: plan.nics[0]!.networkName,
    subnetwork: plan.nics[0]!.subnetwork.split('/').pop()!,
    ...(requestId ? { requestId } : {}),
    plan,
    mac: `42:01:0a:80:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
    bannerLines: bootBanner(plan.machineType.memoryMb),
    console(): string {
      return this.machine ? this.machine.console() : '';
    },
  };
  store.addInstance(inst);
  const op = newOp(store, zone, 'insert', { link: selfLink, id }, user);
  inst.insertOp = op;
  store.timers.later(Math.max(1, Math.floor(store.bootDelayMs / 2)), () => {
    if (!inst.deleted && inst.status === 'PROVISIONING') setStatus(inst, 'STAGING');
  });
  store.timers.later(store.bootDelayMs, () => {
    if (!inst.deleted && inst.status === 'PROVISIONING') setStatus(inst, 'STAGING');
    boot(store, inst);
  });
  return op;
}

/** RUNNING: the insert operation is DONE, the startup script runs, a run-time limit starts. */
function boot(store: GceStore, inst: Internal): void {
  if (inst.deleted || inst.status !== 'STAGING') return;
  setStatus(inst, 'RUNNING');
  if (inst.insertOp) finishOp(inst.insertOp);
  const script = inst.metadata['startup-script'];
  const mdHost = `${store.url.replace(/^http:\/\//, '')}${MD_PREFIX}/${inst.id}`;
  const gpus = inst.plan.gpus;
  const driver = inst.plan.image.nvidiaDriver;
  const driven = gpus !== undefined && driverDrives(driver, gpus.spec);
  const gpu = driven ? { model: gpus.spec.smiName, count: gpus.count, memoryMiB: gpus.spec.memoryMiB } : undefined;
  // The driver is there but cannot drive this GPU: its module does not load, nvidia-smi fails.
  const undriven = gpus !== undefined && driver !== undefined && !driven;
  const egress = inst.plan.nics.some((n) => n.egress);
  const m = store.machines.boot({
    id: inst.id,
    script: script ?? '',
    arch: 'x86_64',
    env: { SANDBOX_INSTANCE_ID: inst.id, SANDBOX_CLOUD: 'gcp', GCE_METADATA_HOST: mdHost },
    ...(gpu ? { gpu } : {}),
    ...(undriven || !egress
      ? {
          prepare: (root: string) => {
            layOutGuest(root, { undriven, egress, mdHost });
            return undefined;
          },
        }
      : {}),
    banner: [
      ...inst.bannerLines,
      ...(undriven ? [OPEN_MODULE_REFUSAL] : []),
      script !== undefined
        ? `[    3.210000] google_metadata_script_runner[733]: Found startup-script in metadata.`
        : `[    3.210000] google_metadata_script_runner[733]: No startup scripts to run.`,
    ],
    onShutdown: () => guestShutdown(store, inst),
  });
  inst.machine = m;
  store.owned.add(m);
  const s = inst.plan.scheduling;
  if (s.maxRunDurationSeconds !== undefined || s.terminationTime !== undefined) {
    const ms =
      s.maxRunDurationSeconds !== undefined
        ? s.maxRunDurationSeconds * store.secondMs
        : s.terminationTime!.getTime() - Date.now();
    const timer = store.timers.later(Math.max(0, ms), () => {
      store.instanceTimers.delete(inst.id);
      void applyTermination(store, inst, 'maxRunDuration');
    });
    store.instanceTimers.set(inst.id, timer);
  }
}

/**
 * What the open kernel module logs for a GPU older than Turing, and what nvidia-smi then says
 * (exit 9) ("Kernel Modules", https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/kernel-modules.html).
 */
const OPEN_MODULE_REFUSAL =
  '[    4.120000] NVRM: The NVIDIA GPU 0000:00:04.0 (PCI ID: 10de:1db1) installed in this system is not supported by ' +
  'open nvidia.ko because it does not include the required GPU System Processor (GSP).';
const SMI_NO_DRIVER =
  "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA " +
  'driver is installed and running.';

/**
 * Stand-ins put first on the machine's PATH (the sandbox machine's `.sandbox/bin`): an nvidia-smi
 * that fails when the driver does not drive the GPU, and, with no way out (no external IP and no
 * Cloud NAT), a curl that reaches the metadata server only and times out connecting anywhere else.
 */
function layOutGuest(root: string, how: { undriven: boolean; egress: boolean; mdHost: string }): void {
  const bin = path.join(root, '.sandbox', 'bin');
  const write = (name: string, body: string): void =>
    fs.writeFileSync(path.join(bin, name), `#!/bin/bash\n${body}`, { mode: 0o755 });
  if (how.undriven) write('nvidia-smi', `echo "${SMI_NO_DRIVER}"\nexit 9\n`);
  if (!how.egress) {
    write(
      'curl',
      `# No external IP and no Cloud NAT: only the metadata server answers.
for a in "$@"; do
  case "$a" in
    http://${how.mdHost}/*) ;;
    http://*|https://*)
      hp="\${a#*://}"; hp="\${hp%%/*}"; host="\${hp%%:*}"; port="\${hp##*:}"
      [[ "$port" == "$hp" ]] && { [[ "$a" == https://* ]] && port=443 || port=80; }
      echo "curl: (28) Failed to connect to $host port $port after 130002 ms: Couldn't connect to server" >&2
      exit 28 ;;
  esac
done
PATH="\${PATH#*:}" exec curl "$@"
`,
    );
  }
}

/** DELETE or STOP, as the instance's `instanceTerminationAction` says. */
async function applyTermination(store: GceStore, inst: Internal, reason: string): Promise<void> {
  if (inst.deleted || inst.status === 'TERMINATED' || inst.status === 'STOPPING') return;
  if (inst.plan.scheduling.instanceTerminationAction === 'DELETE') await removeInstance(store, inst, reason);
  else await stopInstance(store, inst, reason);
}

function guestShutdown(store: GceStore, inst: Internal): void {
  if (inst.deleted || inst.status !== 'RUNNING') return;
  clearInstanceTimer(store, inst);
  inst.endedReason ??= 'guest shutdown';
  setStatus(inst, 'STOPPING');
  store.timers.later(store.stopDelayMs, () => setStatus(inst, 'TERMINATED'));
}

async function stopInstance(store: GceStore, inst: Internal, reason: string): Promise<void> {
  clearInstanceTimer(store, inst);
  inst.endedReason ??= reason;
  setStatus(inst, 'STOPPING');
  if (inst.insertOp) finishOp(inst.insertOp);
  await inst.machine?.kill();
  await store.pause(store.stopDelayMs);
  if (!inst.deleted) setStatus(inst, 'TERMINATED');
}

/** Deletes an instance: STOPPING, its machine killed, then gone; its disks go with it or stay (autoDelete). */
export async function removeInstance(store: GceStore, inst: Internal, reason: string, op?: OpRecord): Promise<void> {
  clearInstanceTimer(store, inst);
  inst.endedReason ??= reason;
  if (inst.insertOp) finishOp(inst.insertOp);
  const wasTerminated = inst.status === 'TERMINATED';
  if (!wasTerminated) setStatus(inst, 'STOPPING');
  await inst.machine?.kill();
  await store.pause(wasTerminated ? Math.min(10, store.stopDelayMs) : store.stopDelayMs);
  if (inst.deleted) return;
  store.dropInstance(inst);
  if (op) finishOp(op);
}

/**
 * Preempts a Spot (or preemptible) instance: `instance/preempted` is TRUE at once, and after the
 * notice its termination action applies (an instance that ended meanwhile stays as it is).
 */
export async function preempt(store: GceStore, zone: string, name: string, noticeMs = 0): Promise<void> {
  const inst = store.live.get(`${zone}/${name}`);
  if (!inst) throw new Error(`no live instance ${zone}/${name}`);
  if (!inst.preemptible) throw new Error(`${zone}/${name} is not a Spot or preemptible instance`);
  if (inst.status !== 'RUNNING' && inst.status !== 'STAGING' && inst.status !== 'PROVISIONING') return;
  inst.preempted = true;
  if (noticeMs > 0) await store.pause(noticeMs);
  if (store.closed) return;
  await applyTermination(store, inst, 'preempted');
}

/** What the VM's metadata server tells it; undefined unless it is RUNNING (no server answers then). */
export function metadataView(inst: Internal | undefined): MetadataView | undefined {
  if (!inst || inst.deleted || inst.status !== 'RUNNING') return undefined;
  const s = inst.plan.scheduling;
  return {
    id: inst.id,
    name: inst.name,
    zone: inst.zone,
    machineType: inst.machineType,
    hostname: inst.plan.hostname ?? `${inst.name}.${inst.zone}.c.${GCE_PROJECT}.internal`,
    image: `projects/${inst.plan.image.project}/global/images/${inst.plan.image.name}`,
    attributes: inst.metadata,
    ...(inst.serviceAccount ? { serviceAccount: inst.serviceAccount } : {}),
    scheduling: {
      automaticRestart: s.automaticRestart,
      onHostMaintenance: s.onHostMaintenance,
      preemptible: s.preemptible,
      provisioningModel: s.provisioningModel,
    },
    preempted: inst.preempted,
    networkIP: inst.networkIP,
    ...(inst.natIP ? { natIP: inst.natIP } : {}),
    network: inst.plan.nics[0]?.networkName ?? 'default',
    mac: inst.mac,
  };
}
