/**
 * instances.insert, checked the way Compute Engine checks it: the whole request is decoded and
 * validated before anything exists, and the answer is the API's own 400/404 with its message
 * (`Invalid value for field 'resource.name': ...`, `Required field ... not specified`, ...).
 * The result is a plan the fake then carries out.
 */
import {
  ACCELERATORS,
  type AcceleratorSpec,
  DISK_TYPES,
  GCE_PROJECT,
  GCE_SERVICE_ACCOUNTS,
  type GceImageSpec,
  IMAGES,
  MACHINE_TYPES,
  type MachineTypeSpec,
  type NetworkSpec,
  regionOf,
} from './catalog.js';
import { GceError, badType, invalid, invalidField, notFound, required, unknownName } from './errors.js';

type J = Record<string, unknown>;

export interface DiskPlan {
  name: string;
  deviceName: string;
  boot: boolean;
  autoDelete: boolean;
  sizeGb: number;
  type: string;
  mode: 'READ_WRITE' | 'READ_ONLY';
  interface: 'SCSI' | 'NVME';
  image?: GceImageSpec;
  labels: Record<string, string>;
}

export interface NicPlan {
  /** `projects/P/global/networks/N`. */
  network: string;
  networkName: string;
  /** `projects/P/regions/R/subnetworks/S`. */
  subnetwork: string;
  /** A way out to the internet: an external IP, or Cloud NAT in the region. */
  egress: boolean;
  accessConfig?: { type: 'ONE_TO_ONE_NAT'; name: string; networkTier: 'PREMIUM' | 'STANDARD' };
}

export interface SchedulingPlan {
  provisioningModel: 'STANDARD' | 'SPOT';
  preemptible: boolean;
  automaticRestart: boolean;
  onHostMaintenance: 'MIGRATE' | 'TERMINATE';
  instanceTerminationAction?: 'DELETE' | 'STOP';
  maxRunDurationSeconds?: number;
  terminationTime?: Date;
}

export interface InsertPlan {
  name: string;
  description?: string;
  machineType: MachineTypeSpec;
  /** What `guestAccelerators` asked for (N1 only). */
  guestAccelerators: Array<{ spec: AcceleratorSpec; count: number }>;
  /** The GPUs the VM gets: its accelerators, or those of its machine type. */
  gpus?: { spec: AcceleratorSpec; count: number };
  image: GceImageSpec;
  disks: DiskPlan[];
  /** The `scheduling` object as it was sent. */
  schedulingSent: J;
  scheduling: SchedulingPlan;
  labels: Record<string, string>;
  /** Network tags (`tags.items`), which firewall rules target. */
  networkTags: string[];
  metadata: Array<{ key: string; value: string }>;
  serviceAccount?: { email: string; scopes: string[] };
  nics: NicPlan[];
  deletionProtection: boolean;
  hostname?: string;
}

// ---------------------------------------------------------------------------------------------
// Fields each message knows (the API rejects any other name)

const INSTANCE_FIELDS = [
  'advancedMachineFeatures',
  'canIpForward',
  'confidentialInstanceConfig',
  'cpuPlatform',
  'creationTimestamp',
  'deletionProtection',
  'description',
  'disks',
  'displayDevice',
  'fingerprint',
  'guestAccelerators',
  'hostname',
  'id',
  'instanceEncryptionKey',
  'keyRevocationActionType',
  'kind',
  'labelFingerprint',
  'labels',
  'lastStartTimestamp',
  'lastStopTimestamp',
  'lastSuspendedTimestamp',
  'localSsdEncryptionMode',
  'machineType',
  'metadata',
  'minCpuPlatform',
  'name',
  'networkInterfaces',
  'networkPerformanceConfig',
  'params',
  'privateIpv6GoogleAccess',
  'reservationAffinity',
  'resourcePolicies',
  'resourceStatus',
  'satisfiesPzi',
  'satisfiesPzs',
  'scheduling',
  'selfLink',
  'serviceAccounts',
  'shieldedInstanceConfig',
  'shieldedInstanceIntegrityPolicy',
  'sourceMachineImage',
  'sourceMachineImageEncryptionKey',
  'startRestricted',
  'status',
  'statusMessage',
  'tags',
  'workloadIdentityConfig',
  'zone',
];
const DISK_FIELDS = [
  'architecture',
  'autoDelete',
  'boot',
  'deviceName',
  'diskEncryptionKey',
  'diskSizeGb',
  'forceAttach',
  'guestOsFeatures',
  'index',
  'initializeParams',
  'interface',
  'kind',
  'licenses',
  'mode',
  'savedState',
  'shieldedInstanceInitialState',
  'source',
  'type',
];
const INIT_FIELDS = [
  'architecture',
  'description',
  'diskName',
  'diskSizeGb',
  'diskType',
  'enableConfidentialCompute',
  'labels',
  'licenses',
  'onUpdateAction',
  'provisionedIops',
  'provisionedThroughput',
  'replicaZones',
  'resourceManagerTags',
  'resourcePolicies',
  'sourceImage',
  'sourceImageEncryptionKey',
  'sourceSnapshot',
  'sourceSnapshotEncryptionKey',
  'storagePool',
];
const SCHEDULING_FIELDS = [
  'automaticRestart',
  'availabilityDomain',
  'exposeHostTopology',
  'gracefulShutdown',
  'hostErrorTimeoutSeconds',
  'instanceTerminationAction',
  'localSsdRecoveryTimeout',
  'locationHint',
  'maxRunDuration',
  'minNodeCpus',
  'nodeAffinities',
  'onHostMaintenance',
  'onInstanceStopAction',
  'preemptible',
  'preemptionNoticeDuration',
  'provisioningModel',
  'skipGuestOsShutdown',
  'terminationTime',
];
const NIC_FIELDS = [
  'accessConfigs',
  'aliasIpRanges',
  'aliasIpv6Ranges',
  'enableVpcScopedDns',
  'fingerprint',
  'igmpQuery',
  'internalIpv6PrefixLength',
  'ipv6AccessConfigs',
  'ipv6AccessType',
  'ipv6Address',
  'kind',
  'name',
  'network',
  'networkAttachment',
  'networkIP',
  'nicType',
  'parentNicName',
  'queueCount',
  'serviceClassId',
  'stackType',
  'subnetwork',
  'vlan',
];
const ACCESS_CONFIG_FIELDS = [
  'externalIpv6',
  'externalIpv6PrefixLength',
  'kind',
  'name',
  'natIP',
  'networkTier',
  'publicPtrDomainName',
  'securityPolicy',
  'setPublicPtr',
  'type',
];

// ---------------------------------------------------------------------------------------------
// Decoding helpers: proto3 JSON types, as the API front end decodes them

function known(o: J, names: readonly string[], at: string): void {
  for (const k of Object.keys(o)) if (!names.includes(k)) throw unknownName(k, at);
}
function msg(v: unknown, at: string): J | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw badType(at, 'TYPE_MESSAGE', v);
  return v as J;
}
function list(v: unknown, at: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badType(at, 'TYPE_MESSAGE', v);
  return v;
}
function text(v: unknown, at: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badType(at, 'TYPE_STRING', v);
  return v;
}
function flag(v: unknown, at: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badType(at, 'TYPE_BOOL', v);
  return v;
}
function integer(v: unknown, at: string, type: 'TYPE_INT32' | 'TYPE_INT64'): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  throw badType(at, type, v);
}
function stringMap(v: unknown, at: string): Record<string, string> {
  const o = msg(v, at) ?? {};
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) {
    if (typeof x !== 'string') throw badType(`${at}[${k}]`, 'TYPE_STRING', x);
    out[k] = x;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// References to other resources: a full URL, `projects/P/...`, or a zone-relative partial URL

const URL_PREFIX = '(?:https?://(?:www|compute)\\.googleapis\\.com/compute/v1/)?';
const ref = (tail: string): RegExp => new RegExp(`^${URL_PREFIX}(?:projects/([^/]+)/)?${tail}$`);
const MACHINE_TYPE_REF = ref('zones/([^/]+)/machineTypes/([^/]+)');
const ACCELERATOR_REF = ref('zones/([^/]+)/acceleratorTypes/([^/]+)');
const DISK_TYPE_REF = ref('zones/([^/]+)/diskTypes/([^/]+)');
const IMAGE_REF = ref('global/images/(?:family/([^/]+)|([^/]+))');
const NETWORK_REF = ref('global/networks/([^/]+)');
const SUBNETWORK_REF = ref('regions/([^/]+)/subnetworks/([^/]+)');

const NOT_A_URL = 'Must be a URL to a valid Compute resource of the correct type.';
const CROSS_PROJECT = 'Cross-project references for this resource are not allowed.';

export const NAME_REGEX = '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)';
const NAME = new RegExp(`^${NAME_REGEX}$`);
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const METADATA_KEY = /^[a-zA-Z0-9-_]{1,128}$/;
const SCOPE = /^https:\/\/www\.googleapis\.com\/auth\/[a-z0-9._-]+$/;
const METADATA_VALUE_MAX = 256 * 1024;
const METADATA_TOTAL_MAX = 512 * 1024;
const MAX_RUN_MIN = 30;
const MAX_RUN_MAX = 120 * 24 * 3600;

/** Resolves an image reference (`projects/P/global/images/family/F`, `.../images/I`, or a URL). */
export function findImage(
  project: string,
  family: string | undefined,
  name: string | undefined,
): GceImageSpec | undefined {
  if (family !== undefined) return IMAGES.find((i) => i.project === project && i.family === family);
  return IMAGES.find((i) => i.project === project && i.name === name);
}

/** `tags.items`: network tags, each a lowercase RFC 1035 name. */
function decodeTags(r: J): string[] {
  const tags = msg(r.tags, 'resource.tags') ?? {};
  known(tags, ['items', 'fingerprint'], 'resource.tags');
  const items = list(tags.items, 'resource.tags.items').map((t, i) => {
    const tag = text(t, `resource.tags.items[${i}]`) ?? '';
    if (!NAME.test(tag)) {
      throw invalidField(`resource.tags.items[${i}]`, tag, `Must be a match of regex '${NAME_REGEX}'`);
    }
    return tag;
  });
  return items;
}

export function validateLabels(labels: Record<string, string>, at: string): void {
  if (Object.keys(labels).length > 64) {
    throw invalidField(at, '', 'Resource has too many labels. A resource can have at most 64 labels.');
  }
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY.test(k)) {
      throw invalidField(
        at,
        '',
        `Label key '${k}' violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes. The key can be at most 63 characters long. International characters are allowed.`,
      );
    }
    if (!LABEL_VALUE.test(v)) {
      throw invalidField(
        at,
        '',
        `Label value '${v}' violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most 63 characters long. International characters are allowed.`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** `networks`: the project's VPC networks. */
export function validateInsert(raw: unknown, zone: string, networks: readonly NetworkSpec[]): InsertPlan {
  const r = msg(raw, 'resource');
  if (!r) throw required('resource');
  known(r, INSTANCE_FIELDS, 'resource');

  // Name.
  const name = text(r.name, 'resource.name');
  if (name === undefined || !NAME.test(name)) {
    throw invalidField('resource.name', name ?? '', `Must be a match of regex '${NAME_REGEX}'`);
  }
  const description = text(r.description, 'resource.description');
  const hostname = text(r.hostname, 'resource.hostname');
  if (
    hostname !== undefined &&
    !/^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)+$/.test(hostname)
  ) {
    throw invalidField(
      'resource.hostname',
      hostname,
      'Hostname must be a fully qualified DNS name with at least two labels.',
    );
  }
  const deletionProtection = flag(r.deletionProtection, 'resource.deletionProtection') ?? false;

  const machineType = decodeMachineType(r, zone);
  const guestAccelerators = decodeAccelerators(r, zone, machineType);
  const gpus =
    guestAccelerators[0] ??
    (machineType.gpu ? { spec: ACCELERATORS[machineType.gpu.type]!, count: machineType.gpu.count } : undefined);

  // Scheduling.
  const s = msg(r.scheduling, 'resource.scheduling') ?? {};
  known(s, SCHEDULING_FIELDS, 'resource.scheduling');
  const scheduling = validateScheduling(s, gpus !== undefined);
  if (!machineType.markets.includes(scheduling.provisioningModel)) {
    // The API's wording for this refusal is not documented; a 400 that no other zone would accept.
    throw invalidField(
      'resource.scheduling.provisioningModel',
      scheduling.provisioningModel,
      `Machine type '${machineType.name}' is only available with provisioning models ` +
        `[${machineType.markets.join(', ')}].`,
    );
  }

  const { disks, image } = decodeDisks(r, zone, name, machineType);
  const nics = decodeNics(r, zone, networks);

  // Labels.
  const labels = stringMap(r.labels, 'resource.labels');
  validateLabels(labels, 'resource.labels');

  const networkTags = decodeTags(r);
  const metadata = decodeMetadata(r);
  const serviceAccount = decodeServiceAccount(r);

  return {
    name,
    ...(description !== undefined ? { description } : {}),
    machineType,
    guestAccelerators,
    ...(gpus ? { gpus } : {}),
    image,
    disks,
    schedulingSent: s,
    scheduling,
    labels,
    networkTags,
    metadata,
    ...(serviceAccount ? { serviceAccount } : {}),
    nics,
    deletionProtection,
    ...(hostname !== undefined ? { hostname } : {}),
  };
}

function decodeMachineType(r: J, zone: string): MachineTypeSpec {
  const mtRef = text(r.machineType, 'resource.machineType');
  if (mtRef === undefined || mtRef === '') throw required('resource.machineType');
  const mt = MACHINE_TYPE_REF.exec(mtRef);
  if (!mt) throw invalidField('resource.machineType', mtRef, NOT_A_URL);
  if (mt[1] !== undefined && mt[1] !== GCE_PROJECT) throw invalidField('resource.machineType', mtRef, CROSS_PROJECT);
  if (mt[2] !== zone) {
    throw invalidField(
      'resource.machineType',
      mtRef,
      `Machine type specified '${mt[3]}' is in a different scope than the instance.`,
    );
  }
  const machineType = MACHINE_TYPES[mt[3]!];
  if (!machineType?.zones.includes(zone)) {
    throw invalidField(
      'resource.machineType',
      mtRef,
      `Machine type with name '${mt[3]}' does not exist in zone '${zone}'.`,
    );
  }
  return machineType;
}

function decodeAccelerators(r: J, zone: string, machineType: MachineTypeSpec): InsertPlan['guestAccelerators'] {
  const guestAccelerators: InsertPlan['guestAccelerators'] = [];
  const accs = list(r.guestAccelerators, 'resource.guestAccelerators');
  if (accs.length > 1)
    throw invalidField(
      'resource.guestAccelerators',
      '',
      'At most one accelerator type may be attached to an instance.',
    );
  accs.forEach((a, i) => {
    const at = `resource.guestAccelerators[${i}]`;
    const o = msg(a, at) ?? {};
    known(o, ['acceleratorCount', 'acceleratorType'], at);
    const typeRef = text(o.acceleratorType, `${at}.acceleratorType`);
    if (typeRef === undefined || typeRef === '') throw required(`${at}.acceleratorType`);
    const m = ACCELERATOR_REF.exec(typeRef);
    if (!m) throw invalidField(`${at}.acceleratorType`, typeRef, NOT_A_URL);
    if (m[1] !== undefined && m[1] !== GCE_PROJECT) throw invalidField(`${at}.acceleratorType`, typeRef, CROSS_PROJECT);
    const spec = ACCELERATORS[m[3]!];
    if (m[2] !== zone || !spec || !spec.zones.includes(zone)) {
      throw invalidField(`${at}.acceleratorType`, typeRef, `Accelerator type '${m[3]}' not found in zone '${zone}'.`);
    }
    if (machineType.family !== 'n1' || !spec.n1) {
      throw invalid(`[${machineType.name}, ${spec.name}] features are not compatible for creating instance.`);
    }
    const count = integer(o.acceleratorCount, `${at}.acceleratorCount`, 'TYPE_INT32') ?? 0;
    const allowed = [1, 2, 4, 8].filter((n) => n <= spec.maximumCardsPerInstance);
    if (!allowed.includes(count)) {
      throw invalidField(
        `${at}.acceleratorCount`,
        String(count),
        `Accelerator count must be one of [${allowed.join(', ')}] for accelerator type '${spec.name}'.`,
      );
    }
    guestAccelerators.push({ spec, count });
  });
  return guestAccelerators;
}

function decodeDisks(
  r: J,
  zone: string,
  name: string,
  machineType: MachineTypeSpec,
): { disks: DiskPlan[]; image: GceImageSpec } {
  const rawDisks = list(r.disks, 'resource.disks');
  if (rawDisks.length === 0) throw required('resource.disks');
  const disks: DiskPlan[] = [];
  let image: GceImageSpec | undefined;
  rawDisks.forEach((d, i) => {
    const at = `resource.disks[${i}]`;
    const o = msg(d, at) ?? {};
    known(o, DISK_FIELDS, at);
    const boot = flag(o.boot, `${at}.boot`) ?? false;
    if (boot && i !== 0)
      throw invalidField(`${at}.boot`, 'true', 'Boot disk must be the first disk attached to the instance.');
    const source = text(o.source, `${at}.source`);
    if (source !== undefined) throw notFound(`projects/${GCE_PROJECT}/zones/${zone}/disks/${source.split('/').pop()}`);
    const type = text(o.type, `${at}.type`) ?? 'PERSISTENT';
    if (type === 'SCRATCH')
      throw invalid(`[${machineType.name}, local-ssd] features are not compatible for creating instance.`);
    if (type !== 'PERSISTENT') throw invalidField(`${at}.type`, type, "Must be one of ['PERSISTENT', 'SCRATCH'].");
    const mode = text(o.mode, `${at}.mode`) ?? 'READ_WRITE';
    if (mode !== 'READ_WRITE' && mode !== 'READ_ONLY')
      throw invalidField(`${at}.mode`, mode, "Must be one of ['READ_ONLY', 'READ_WRITE'].");
    if (boot && mode !== 'READ_WRITE')
      throw invalidField(`${at}.mode`, mode, 'Boot disk must be attached in READ_WRITE mode.');
    const iface = text(o.interface, `${at}.interface`) ?? 'SCSI';
    if (iface !== 'SCSI' && iface !== 'NVME')
      throw invalidField(`${at}.interface`, iface, "Must be one of ['NVME', 'SCSI'].");
    const autoDelete = flag(o.autoDelete, `${at}.autoDelete`) ?? false;
    const deviceName = text(o.deviceName, `${at}.deviceName`) ?? `persistent-disk-${i}`;
    if (!NAME.test(deviceName))
      throw invalidField(`${at}.deviceName`, deviceName, `Must be a match of regex '${NAME_REGEX}'`);
    const sizeOnDisk = integer(o.diskSizeGb, `${at}.diskSizeGb`, 'TYPE_INT64');

    const p = msg(o.initializeParams, `${at}.initializeParams`);
    if (!p) throw required(`${at}.initializeParams`);
    known(p, INIT_FIELDS, `${at}.initializeParams`);
    const diskName = text(p.diskName, `${at}.initializeParams.diskName`) ?? (boot ? name : `${name}-${i}`);
    if (!NAME.test(diskName))
      throw invalidField(`${at}.initializeParams.diskName`, diskName, `Must be a match of regex '${NAME_REGEX}'`);
    if (text(p.sourceSnapshot, `${at}.initializeParams.sourceSnapshot`) !== undefined) {
      throw notFound(`projects/${GCE_PROJECT}/global/snapshots/${String(p.sourceSnapshot).split('/').pop()}`);
    }
    const imageRef = text(p.sourceImage, `${at}.initializeParams.sourceImage`);
    let diskImage: GceImageSpec | undefined;
    if (imageRef !== undefined && imageRef !== '') {
      const m = IMAGE_REF.exec(imageRef);
      if (!m) throw invalidField(`${at}.initializeParams.sourceImage`, imageRef, NOT_A_URL);
      const project = m[1] ?? GCE_PROJECT;
      diskImage = findImage(project, m[2], m[3]);
      if (!diskImage)
        throw notFound(`projects/${project}/global/images/${m[2] !== undefined ? `family/${m[2]}` : m[3]}`);
    } else if (boot) {
      throw required(`${at}.initializeParams.sourceImage`);
    }
    const size =
      integer(p.diskSizeGb, `${at}.initializeParams.diskSizeGb`, 'TYPE_INT64') ??
      sizeOnDisk ??
      diskImage?.diskSizeGb ??
      10;
    if (diskImage && size < diskImage.diskSizeGb) {
      throw invalidField(
        `${at}.initializeParams.diskSizeGb`,
        String(size),
        `Requested disk size cannot be smaller than the image size (${diskImage.diskSizeGb} GB)`,
      );
    }
    if (size < 1 || size > 65536) {
      throw invalidField(
        `${at}.initializeParams.diskSizeGb`,
        String(size),
        'Disk size must be between 1 GB and 65536 GB.',
      );
    }
    const diskTypeRef = text(p.diskType, `${at}.initializeParams.diskType`);
    let diskType = 'pd-standard';
    if (diskTypeRef !== undefined && diskTypeRef !== '') {
      const m = DISK_TYPE_REF.exec(diskTypeRef);
      if (!m) throw invalidField(`${at}.initializeParams.diskType`, diskTypeRef, NOT_A_URL);
      if (m[1] !== undefined && m[1] !== GCE_PROJECT)
        throw invalidField(`${at}.initializeParams.diskType`, diskTypeRef, CROSS_PROJECT);
      if (m[2] !== zone || !DISK_TYPES.includes(m[3]!)) {
        throw invalidField(
          `${at}.initializeParams.diskType`,
          diskTypeRef,
          'The referenced diskType resource cannot be found.',
        );
      }
      diskType = m[3]!;
    }
    const labels = stringMap(p.labels, `${at}.initializeParams.labels`);
    validateLabels(labels, `${at}.initializeParams.labels`);
    if (boot) image = diskImage;
    disks.push({
      name: diskName,
      deviceName,
      boot,
      autoDelete,
      sizeGb: size,
      type: diskType,
      mode,
      interface: iface,
      labels,
      ...(diskImage ? { image: diskImage } : {}),
    });
  });
  const boots = disks.filter((d) => d.boot).length;
  if (boots === 0 || !image) throw invalidField('resource.disks', '', 'Exactly one boot disk must be specified.');
  if (boots > 1) throw invalidField('resource.disks', '', 'Only one boot disk may be specified.');
  const names = new Set<string>();
  for (const d of disks) {
    if (names.has(d.name)) throw invalidField('resource.disks', '', `Disk name '${d.name}' is used more than once.`);
    names.add(d.name);
  }
  const devices = new Set<string>();
  for (const d of disks) {
    if (devices.has(d.deviceName))
      throw invalidField('resource.disks', '', `Device name '${d.deviceName}' is used more than once.`);
    devices.add(d.deviceName);
  }
  if (image.architecture !== 'X86_64') {
    throw invalidField(
      'resource.disks[0].initializeParams.sourceImage',
      `projects/${image.project}/global/images/${image.name}`,
      `The architecture of the image (${image.architecture}) is not compatible with the machine type '${machineType.name}' (X86_64).`,
    );
  }

  return { disks, image };
}

function decodeNics(r: J, zone: string, networks: readonly NetworkSpec[]): NicPlan[] {
  const rawNics = list(r.networkInterfaces, 'resource.networkInterfaces');
  if (rawNics.length === 0)
    throw invalidField('resource.networkInterfaces', '', 'At least one network interface is required.');
  const nics: NicPlan[] = [];
  rawNics.forEach((n, i) => {
    const at = `resource.networkInterfaces[${i}]`;
    const o = msg(n, at) ?? {};
    known(o, NIC_FIELDS, at);
    const { network, subnetwork } = nicNetwork(o, at, zone, networks);
    if (i > 0)
      throw invalidField(
        `${at}.network`,
        String(o.network ?? ''),
        'Networks must be distinct for NICs attached to a VM.',
      );
    const accessConfig = decodeAccessConfig(o, at);
    nics.push({
      network: `projects/${GCE_PROJECT}/global/networks/${network.name}`,
      networkName: network.name,
      subnetwork: `projects/${GCE_PROJECT}/regions/${regionOf(zone)}/subnetworks/${subnetwork}`,
      egress: accessConfig !== undefined || network.cloudNat.includes(regionOf(zone)),
      ...(accessConfig ? { accessConfig } : {}),
    });
  });

  return nics;
}

/**
 * The interface's network and subnetwork. Neither given: the `default` network. A subnetwork
 * alone names its network; a custom mode network needs one; an auto mode network's is the one of
 * its name in the region. Messages as the API words them ("The referenced network resource cannot
 * be found.": https://github.com/GoogleCloudPlatform/magic-modules/pull/18826, 2026-08; "...
 * subnetwork resource cannot be found.": https://github.com/hashicorp/terraform-provider-google/issues/2140;
 * "Subnetwork should be specified for custom subnetmode network":
 * https://github.com/hashicorp/terraform-provider-google/issues/175). A subnetwork of another
 * region is not found in this one.
 */
function nicNetwork(
  o: J,
  at: string,
  zone: string,
  networks: readonly NetworkSpec[],
): { network: NetworkSpec; subnetwork: string } {
  const region = regionOf(zone);
  const networkRef = text(o.network, `${at}.network`) || undefined;
  const subnetRef = text(o.subnetwork, `${at}.subnetwork`) || undefined;
  let network: NetworkSpec | undefined;
  if (networkRef !== undefined || subnetRef === undefined) {
    const ref = networkRef ?? `projects/${GCE_PROJECT}/global/networks/default`;
    const m = NETWORK_REF.exec(ref);
    network = m && (m[1] === undefined || m[1] === GCE_PROJECT) ? networks.find((x) => x.name === m[2]) : undefined;
    if (!network) throw invalidField(`${at}.network`, ref, 'The referenced network resource cannot be found.');
  }
  if (subnetRef === undefined) {
    if (!network!.autoCreateSubnetworks)
      throw invalidField(at, '', 'Subnetwork should be specified for custom subnetmode network');
    return { network: network!, subnetwork: network!.name };
  }
  const m = SUBNETWORK_REF.exec(subnetRef);
  const inRegion = m && (m[1] === undefined || m[1] === GCE_PROJECT) && m[2] === region ? m[3] : undefined;
  const owner = networks.find((x) => x.subnetworks.some((sn) => sn.region === region && sn.name === inRegion));
  if (!owner) throw invalidField(`${at}.subnetwork`, subnetRef, 'The referenced subnetwork resource cannot be found.');
  if (network && network !== owner) {
    // Not documented word for word for instances; GKE words the same check this way.
    throw invalidField(
      `${at}.subnetwork`,
      subnetRef,
      `Subnetwork "projects/${GCE_PROJECT}/regions/${region}/subnetworks/${inRegion}" is not valid for Network "${network.name}".`,
    );
  }
  return { network: owner, subnetwork: inRegion! };
}

function decodeAccessConfig(o: J, at: string): NicPlan['accessConfig'] {
  const configs = list(o.accessConfigs, `${at}.accessConfigs`);
  if (configs.length > 1)
    throw invalidField(`${at}.accessConfigs`, '', 'At most one access config currently supported.');
  let accessConfig: NicPlan['accessConfig'];
  configs.forEach((c, j) => {
    const cat = `${at}.accessConfigs[${j}]`;
    const co = msg(c, cat) ?? {};
    known(co, ACCESS_CONFIG_FIELDS, cat);
    const type = text(co.type, `${cat}.type`) ?? 'ONE_TO_ONE_NAT';
    if (type !== 'ONE_TO_ONE_NAT')
      throw invalidField(`${cat}.type`, type, "Must be one of ['DIRECT_IPV6', 'ONE_TO_ONE_NAT'].");
    const tier = text(co.networkTier, `${cat}.networkTier`) ?? 'PREMIUM';
    if (tier !== 'PREMIUM' && tier !== 'STANDARD')
      throw invalidField(`${cat}.networkTier`, tier, "Must be one of ['PREMIUM', 'STANDARD'].");
    if (text(co.natIP, `${cat}.natIP`) !== undefined) {
      throw invalidField(`${cat}.natIP`, String(co.natIP), 'The referenced address resource cannot be found.');
    }
    accessConfig = { type, name: text(co.name, `${cat}.name`) ?? 'External NAT', networkTier: tier };
  });
  return accessConfig;
}

export function decodeMetadata(r: J): InsertPlan['metadata'] {
  const md = msg(r.metadata, 'resource.metadata') ?? {};
  known(md, ['fingerprint', 'items', 'kind'], 'resource.metadata');
  const metadata: InsertPlan['metadata'] = [];
  let total = 0;
  list(md.items, 'resource.metadata.items').forEach((it, i) => {
    const at = `resource.metadata.items[${i}]`;
    const o = msg(it, at) ?? {};
    known(o, ['key', 'value'], at);
    const key = text(o.key, `${at}.key`);
    if (key === undefined || key === '') throw required(`${at}.key`);
    if (!METADATA_KEY.test(key))
      throw invalidField(`${at}.key`, key, "Must be a match of regex '[a-zA-Z0-9-_]{1,128}'");
    if (metadata.some((x) => x.key === key)) throw invalidField(`${at}.key`, key, 'Duplicate metadata key.');
    const value = text(o.value, `${at}.value`) ?? '';
    if (value.length > METADATA_VALUE_MAX) {
      throw new GceError(
        400,
        'invalid',
        `Value for field '${at}.value' is too large: maximum size ${METADATA_VALUE_MAX} character(s); actual size ${value.length}.`,
      );
    }
    total += key.length + value.length;
    metadata.push({ key, value });
  });
  if (total > METADATA_TOTAL_MAX) {
    throw new GceError(
      400,
      'invalid',
      `Value for field 'resource.metadata' is too large: maximum size ${METADATA_TOTAL_MAX} character(s); actual size ${total}.`,
    );
  }

  return metadata;
}

function decodeServiceAccount(r: J): InsertPlan['serviceAccount'] {
  const sas = list(r.serviceAccounts, 'resource.serviceAccounts');
  if (sas.length > 1)
    throw invalidField('resource.serviceAccounts', '', 'At most one service account can be attached to an instance.');
  let serviceAccount: InsertPlan['serviceAccount'];
  sas.forEach((sa, i) => {
    const at = `resource.serviceAccounts[${i}]`;
    const o = msg(sa, at) ?? {};
    known(o, ['email', 'scopes'], at);
    let email = text(o.email, `${at}.email`);
    if (email === undefined || email === '') throw required(`${at}.email`);
    if (email === 'default') email = GCE_SERVICE_ACCOUNTS.defaultCompute;
    if (!(Object.values(GCE_SERVICE_ACCOUNTS) as string[]).includes(email)) {
      throw invalid(`The resource 'projects/${GCE_PROJECT}/serviceAccounts/${email}' was not found`);
    }
    const scopes = list(o.scopes, `${at}.scopes`).map((x, j) => {
      const scope = text(x, `${at}.scopes[${j}]`)!;
      if (!SCOPE.test(scope)) throw invalidField(`${at}.scopes[${j}]`, scope, 'Must be a valid OAuth 2.0 scope URL.');
      return scope;
    });
    serviceAccount = { email, scopes: [...new Set(scopes)] };
  });

  return serviceAccount;
}

function validateScheduling(s: J, hasGpus: boolean): SchedulingPlan {
  const at = 'resource.scheduling';
  const model = text(s.provisioningModel, `${at}.provisioningModel`) ?? 'STANDARD';
  if (model !== 'STANDARD' && model !== 'SPOT')
    throw invalidField(`${at}.provisioningModel`, model, "Must be one of ['SPOT', 'STANDARD'].");
  const preemptibleSent = flag(s.preemptible, `${at}.preemptible`) ?? false;
  const preemptible = preemptibleSent || model === 'SPOT';
  const automaticRestartSent = flag(s.automaticRestart, `${at}.automaticRestart`);
  const onHostSent = text(s.onHostMaintenance, `${at}.onHostMaintenance`);
  if (onHostSent !== undefined && onHostSent !== 'MIGRATE' && onHostSent !== 'TERMINATE') {
    throw invalidField(`${at}.onHostMaintenance`, onHostSent, "Must be one of ['MIGRATE', 'TERMINATE'].");
  }
  if (preemptible && automaticRestartSent === true) {
    throw invalidField(
      `${at}.automaticRestart`,
      'true',
      'Scheduling must have preemptible be false when AutomaticRestart is true.',
    );
  }
  if (preemptible && onHostSent === 'MIGRATE') {
    throw invalidField(
      `${at}.onHostMaintenance`,
      'MIGRATE',
      "Scheduling must have preemptible be false when OnHostMaintenance isn't TERMINATE.",
    );
  }
  const onHostMaintenance = onHostSent ?? (preemptible ? 'TERMINATE' : 'MIGRATE');
  if (hasGpus && onHostMaintenance !== 'TERMINATE')
    throw invalid('Instances with guest accelerators do not support live migration.');
  const automaticRestart = automaticRestartSent ?? !preemptible;

  const action = text(s.instanceTerminationAction, `${at}.instanceTerminationAction`);
  if (action !== undefined && action !== 'DELETE' && action !== 'STOP') {
    throw invalidField(`${at}.instanceTerminationAction`, action, "Must be one of ['DELETE', 'STOP'].");
  }
  const d = msg(s.maxRunDuration, `${at}.maxRunDuration`);
  let maxRunDurationSeconds: number | undefined;
  if (d) {
    known(d, ['nanos', 'seconds'], `${at}.maxRunDuration`);
    const seconds = integer(d.seconds, `${at}.maxRunDuration.seconds`, 'TYPE_INT64') ?? 0;
    const nanos = integer(d.nanos, `${at}.maxRunDuration.nanos`, 'TYPE_INT32') ?? 0;
    if (seconds < MAX_RUN_MIN || seconds > MAX_RUN_MAX || nanos < 0 || nanos > 999_999_999) {
      throw invalidField(
        `${at}.maxRunDuration.seconds`,
        String(seconds),
        `Must be greater than or equal to ${MAX_RUN_MIN} and less than or equal to ${MAX_RUN_MAX}.`,
      );
    }
    maxRunDurationSeconds = seconds + nanos / 1e9;
  }
  const tt = text(s.terminationTime, `${at}.terminationTime`);
  let terminationTime: Date | undefined;
  if (tt !== undefined) {
    const t = Date.parse(tt);
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(tt) || Number.isNaN(t)) {
      throw invalidField(`${at}.terminationTime`, tt, 'Must be a timestamp in RFC 3339 format.');
    }
    if (t < Date.now() + MAX_RUN_MIN * 1000) {
      throw invalidField(`${at}.terminationTime`, tt, `Must be at least ${MAX_RUN_MIN} seconds in the future.`);
    }
    terminationTime = new Date(t);
  }
  if (maxRunDurationSeconds !== undefined && terminationTime !== undefined) {
    throw invalidField(`${at}.terminationTime`, tt, 'Only one of maxRunDuration and terminationTime can be specified.');
  }
  const timed = maxRunDurationSeconds !== undefined || terminationTime !== undefined;
  if (timed && action === undefined) {
    throw invalidField(
      `${at}.instanceTerminationAction`,
      '',
      'Instance termination action must be specified when maxRunDuration or terminationTime is set.',
    );
  }
  if (action !== undefined && !timed && !preemptible) {
    throw invalidField(
      `${at}.instanceTerminationAction`,
      action,
      'Instance termination action can only be specified for Spot VMs or VMs with maxRunDuration or terminationTime.',
    );
  }
  const instanceTerminationAction = (action ??
    (preemptible ? 'STOP' : undefined)) as SchedulingPlan['instanceTerminationAction'];
  return {
    provisioningModel: model,
    preemptible,
    automaticRestart,
    onHostMaintenance,
    ...(instanceTerminationAction ? { instanceTerminationAction } : {}),
    ...(maxRunDurationSeconds !== undefined ? { maxRunDurationSeconds } : {}),
    ...(terminationTime ? { terminationTime } : {}),
  };
}

/** The quota an insert counts against: its GPUs' if it has any, else its vCPUs'. */
export function quotaFor(plan: InsertPlan): string {
  const prefix = plan.scheduling.preemptible ? 'PREEMPTIBLE_' : '';
  if (plan.gpus) return `${prefix}${plan.gpus.spec.quota}`;
  return plan.scheduling.preemptible ? 'PREEMPTIBLE_CPUS' : plan.machineType.cpuQuota;
}
