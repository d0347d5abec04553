/**
 * Resources as the API writes them (compute#instance, compute#machineType, ...): the JSON the
 * real `@google-cloud/compute` clients decode.
 */
import crypto from 'node:crypto';
import {
  ACCELERATORS,
  API_ROOT,
  GCE_PROJECT,
  type GceImageSpec,
  MACHINE_TYPES,
  imageLink,
  regionOf,
} from '../catalog.js';
import { type Internal, type J, gceTime, zoneLink } from '../store.js';

const stableId = (s: string): string => {
  const h = crypto.createHash('sha256').update(s).digest();
  return ((h.readBigUInt64BE(0) % 9_000_000_000_000_000_000n) + 1_000_000_000_000_000_000n).toString();
};
const fingerprint = (o: unknown): string =>
  crypto.createHash('sha256').update(JSON.stringify(o)).digest().subarray(0, 8).toString('base64');
/** The metadata's fingerprint: it changes whenever an item does. */
export const metadataFingerprint = (items: Record<string, string>): string => fingerprint(items);

export function instanceJson(i: Internal): J {
  const s = i.plan.scheduling;
  const running = i.status === 'RUNNING' || i.status === 'STOPPING';
  return {
    kind: 'compute#instance',
    id: i.id,
    creationTimestamp: gceTime(i.createdAt),
    name: i.name,
    ...(i.plan.description !== undefined ? { description: i.plan.description } : {}),
    tags: { ...(i.networkTags.length > 0 ? { items: [...i.networkTags] } : {}), fingerprint: '42WmSpB8rSM=' },
    machineType: `${zoneLink(i.zone)}/machineTypes/${i.machineType}`,
    status: i.status,
    zone: zoneLink(i.zone),
    canIpForward: false,
    networkInterfaces: i.plan.nics.map((nic, idx) => ({
      kind: 'compute#networkInterface',
      network: `${API_ROOT}/${nic.network}`,
      subnetwork: `${API_ROOT}/${nic.subnetwork}`,
      networkIP: i.networkIP,
      name: `nic${idx}`,
      ...(nic.accessConfig
        ? {
            accessConfigs: [
              {
                kind: 'compute#accessConfig',
                type: nic.accessConfig.type,
                name: nic.accessConfig.name,
                ...(running && i.natIP ? { natIP: i.natIP } : {}),
                networkTier: nic.accessConfig.networkTier,
              },
            ],
          }
        : {}),
      fingerprint: fingerprint([i.id, idx]),
      stackType: 'IPV4_ONLY',
    })),
    disks: i.disks
      .filter((d) => d.state === 'attached')
      .map((d, idx) => ({
        kind: 'compute#attachedDisk',
        type: 'PERSISTENT',
        mode: 'READ_WRITE',
        source: `${zoneLink(d.zone)}/disks/${d.name}`,
        deviceName: d.deviceName,
        index: idx,
        boot: d.boot,
        autoDelete: d.autoDelete,
        interface: 'SCSI',
        diskSizeGb: String(d.sizeGb),
        architecture: 'X86_64',
        ...(d.boot
          ? {
              guestOsFeatures: [
                { type: 'VIRTIO_SCSI_MULTIQUEUE' },
                { type: 'SEV_CAPABLE' },
                { type: 'UEFI_COMPATIBLE' },
                { type: 'GVNIC' },
              ],
            }
          : {}),
      })),
    metadata: {
      kind: 'compute#metadata',
      fingerprint: metadataFingerprint(i.metadata),
      ...(Object.keys(i.metadata).length > 0
        ? { items: Object.entries(i.metadata).map(([key, value]) => ({ key, value })) }
        : {}),
    },
    ...(i.serviceAccount
      ? { serviceAccounts: [{ email: i.serviceAccount.email, scopes: i.serviceAccount.scopes }] }
      : {}),
    selfLink: i.selfLink,
    scheduling: {
      onHostMaintenance: s.onHostMaintenance,
      automaticRestart: s.automaticRestart,
      preemptible: s.preemptible,
      provisioningModel: s.provisioningModel,
      ...(s.instanceTerminationAction ? { instanceTerminationAction: s.instanceTerminationAction } : {}),
      ...(s.maxRunDurationSeconds !== undefined
        ? { maxRunDuration: { seconds: String(Math.floor(s.maxRunDurationSeconds)) } }
        : {}),
      ...(s.terminationTime ? { terminationTime: gceTime(s.terminationTime) } : {}),
    },
    cpuPlatform: running ? 'Intel Cascade Lake' : 'Unknown CPU Platform',
    ...(Object.keys(i.labels).length > 0 ? { labels: i.labels } : {}),
    labelFingerprint: fingerprint(i.labels),
    startRestricted: false,
    deletionProtection: i.deletionProtection,
    ...(i.guestAccelerators.length > 0
      ? {
          guestAccelerators: i.guestAccelerators.map((g) => ({
            acceleratorType: `${zoneLink(i.zone)}/acceleratorTypes/${g.type}`,
            acceleratorCount: g.count,
          })),
        }
      : {}),
    fingerprint: fingerprint([i.id, i.status]),
    ...(i.lastStartTimestamp ? { lastStartTimestamp: gceTime(i.lastStartTimestamp) } : {}),
    ...(i.lastStopTimestamp ? { lastStopTimestamp: gceTime(i.lastStopTimestamp) } : {}),
    satisfiesPzi: true,
  };
}

const OLD = '1969-12-31T16:00:00.000-08:00';

export function machineTypeJson(name: string, zone: string): J {
  const m = MACHINE_TYPES[name]!;
  return {
    kind: 'compute#machineType',
    id: stableId(`mt/${name}`).slice(0, 13),
    creationTimestamp: OLD,
    name,
    description: m.description,
    guestCpus: m.guestCpus,
    memoryMb: m.memoryMb,
    imageSpaceGb: 0,
    maximumPersistentDisks: 128,
    maximumPersistentDisksSizeGb: '263168',
    zone,
    selfLink: `${zoneLink(zone)}/machineTypes/${name}`,
    isSharedCpu: false,
    ...(m.gpu ? { accelerators: [{ guestAcceleratorType: m.gpu.type, guestAcceleratorCount: m.gpu.count }] } : {}),
    architecture: 'X86_64',
  };
}

export function acceleratorJson(name: string, zone: string): J {
  const a = ACCELERATORS[name]!;
  return {
    kind: 'compute#acceleratorType',
    id: stableId(`acc/${name}`).slice(0, 5),
    creationTimestamp: OLD,
    name,
    description: a.description,
    zone: zoneLink(zone),
    selfLink: `${zoneLink(zone)}/acceleratorTypes/${name}`,
    maximumCardsPerInstance: a.maximumCardsPerInstance,
  };
}

export function zoneJson(zone: string): J {
  const region = regionOf(zone);
  return {
    kind: 'compute#zone',
    id: stableId(`zone/${zone}`).slice(0, 4),
    creationTimestamp: OLD,
    name: zone,
    description: zone,
    status: 'UP',
    region: `${API_ROOT}/projects/${GCE_PROJECT}/regions/${region}`,
    selfLink: zoneLink(zone),
    availableCpuPlatforms: ['Intel Cascade Lake', 'Intel Ice Lake', 'AMD Milan', 'Intel Sapphire Rapids'],
    supportsPzs: true,
  };
}

export function imageJson(i: GceImageSpec): J {
  return {
    kind: 'compute#image',
    id: i.id,
    creationTimestamp: i.creationTimestamp,
    name: i.name,
    description: i.description,
    sourceType: 'RAW',
    status: 'READY',
    archiveSizeBytes: String(i.diskSizeGb * 180_000_000),
    diskSizeGb: String(i.diskSizeGb),
    ...(i.family ? { family: i.family } : {}),
    selfLink: imageLink(i),
    labelFingerprint: '42WmSpB8rSM=',
    guestOsFeatures: [
      { type: 'VIRTIO_SCSI_MULTIQUEUE' },
      { type: 'SEV_CAPABLE' },
      { type: 'UEFI_COMPATIBLE' },
      { type: 'GVNIC' },
    ],
    storageLocations: ['us', 'eu', 'asia'],
    architecture: i.architecture,
  };
}
