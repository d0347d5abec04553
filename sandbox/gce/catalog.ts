/**
 * What the fake Compute Engine offers: the project, its service accounts, regions and zones,
 * machine types, accelerator (GPU) types and images. Offerings follow the public Compute Engine
 * catalogue (machine families, GPU regions and zones), cut down to what the product meets.
 */

export const GCE_PROJECT = 'sandbox-project';
export const GCE_PROJECT_NUMBER = '123456789012';

/** Service accounts of the sandbox project. Only `deployer` may be impersonated by the GitHub identity. */
export const GCE_SERVICE_ACCOUNTS = {
  /**
   * What the GitHub workflow impersonates: holds the launcher's roles of docs/permissions/gcp/
   * (launcher-role.yaml with launcher-condition.txt, and launcher-list-role.yaml).
   */
  deployer: 'deployer@sandbox-project.iam.gserviceaccount.com',
  /** A VM identity with the VM's role (vm-role.yaml with vm-delete-condition.txt): a runner deleting its own VM. */
  runner: 'runner@sandbox-project.iam.gserviceaccount.com',
  /** A VM identity with no Compute Engine permission. */
  runnerNoDelete: 'runner-nodelete@sandbox-project.iam.gserviceaccount.com',
  /** The project's default compute service account: exists, no Compute Engine permission here. */
  defaultCompute: '123456789012-compute@developer.gserviceaccount.com',
  /** A project owner (roles/owner): every Compute Engine permission, unconditioned. Tests act as it directly. */
  admin: 'admin@sandbox-project.iam.gserviceaccount.com',
} as const;

/** The workload identity pool provider GitHub tokens are exchanged with. */
export const WIF_AUDIENCE = `//iam.googleapis.com/projects/${GCE_PROJECT_NUMBER}/locations/global/workloadIdentityPools/github/providers/github`;

/** Links in resources are written as the real API writes them. */
export const API_ROOT = 'https://www.googleapis.com/compute/v1';

// ---------------------------------------------------------------------------------------------
// Regions and zones, and who offers what where (the table the rest follows)

export const REGIONS: Readonly<Record<string, readonly string[]>> = {
  'us-central1': ['a', 'b', 'c', 'f'],
  'us-east1': ['b', 'c', 'd'],
  'us-west1': ['a', 'b', 'c'],
  'europe-west1': ['b', 'c', 'd'],
  'europe-west4': ['a', 'b', 'c'],
  'europe-north1': ['a', 'b', 'c'],
};

export const ZONES: readonly string[] = Object.entries(REGIONS).flatMap(([r, suffixes]) =>
  suffixes.map((s) => `${r}-${s}`),
);

export const regionOf = (zone: string): string => zone.replace(/-[a-z]$/, '');

/**
 * Where each GPU-bearing offering exists (machine families g2/a2/a3, and N1 accelerators), cut
 * down to the regions above. "GPU regions and zones availability",
 * https://cloud.google.com/compute/docs/gpus/gpu-regions-zones (as read 2025-10). A machine type
 * and the GPU it carries are listed in the same zones (machineTypes and acceleratorTypes agree).
 */
const WHERE = {
  g2: [
    'us-central1-a',
    'us-central1-b',
    'us-central1-c',
    'us-east1-b',
    'us-east1-c',
    'us-east1-d',
    'us-west1-a',
    'us-west1-b',
    'europe-west1-b',
    'europe-west1-c',
    'europe-west4-a',
    'europe-west4-b',
    'europe-west4-c',
  ],
  a2: [
    'us-central1-a',
    'us-central1-b',
    'us-central1-c',
    'us-central1-f',
    'us-east1-b',
    'europe-west4-a',
    'europe-west4-b',
  ],
  a3: ['us-central1-a', 'us-central1-c', 'us-east1-d', 'europe-west4-b', 'europe-west4-c', 'europe-west1-b'],
  t4: [
    'us-central1-a',
    'us-central1-b',
    'us-central1-c',
    'us-central1-f',
    'us-east1-c',
    'us-east1-d',
    'us-west1-a',
    'us-west1-b',
    'europe-west1-b',
    'europe-west1-d',
    'europe-west4-a',
    'europe-west4-b',
    'europe-west4-c',
  ],
  v100: [
    'us-central1-a',
    'us-central1-b',
    'us-central1-c',
    'us-central1-f',
    'us-west1-a',
    'us-west1-b',
    'europe-west4-a',
    'europe-west4-b',
    'europe-west4-c',
  ],
} as const;

// ---------------------------------------------------------------------------------------------
// Accelerator types

/**
 * NVIDIA GPU architectures. NVIDIA's open kernel modules drive Turing and newer only; Maxwell,
 * Pascal and Volta need the proprietary flavour ("Kernel Modules",
 * https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/kernel-modules.html, 2025-10).
 */
export type GpuArchitecture = 'Volta' | 'Turing' | 'Ampere' | 'Ada Lovelace' | 'Hopper';
export const OPEN_MODULES_DRIVE: ReadonlySet<GpuArchitecture> = new Set(['Turing', 'Ampere', 'Ada Lovelace', 'Hopper']);

export interface AcceleratorSpec {
  /** API name, e.g. `nvidia-tesla-t4`. */
  name: string;
  architecture: GpuArchitecture;
  description: string;
  maximumCardsPerInstance: number;
  /** As `nvidia-smi` names it. */
  smiName: string;
  memoryMiB: number;
  /** Quota name, e.g. `NVIDIA_T4_GPUS` (`PREEMPTIBLE_` in front for Spot). */
  quota: string;
  /** Attachable to N1 machine types through `guestAccelerators`; the others come with their machine type. */
  n1: boolean;
  zones: readonly string[];
}

export const ACCELERATORS: Readonly<Record<string, AcceleratorSpec>> = {
  'nvidia-tesla-t4': {
    name: 'nvidia-tesla-t4',
    architecture: 'Turing',
    description: 'NVIDIA T4',
    maximumCardsPerInstance: 4,
    smiName: 'Tesla T4',
    memoryMiB: 15360,
    quota: 'NVIDIA_T4_GPUS',
    n1: true,
    zones: WHERE.t4,
  },
  'nvidia-tesla-v100': {
    name: 'nvidia-tesla-v100',
    architecture: 'Volta',
    description: 'NVIDIA V100',
    maximumCardsPerInstance: 8,
    smiName: 'Tesla V100-SXM2-16GB',
    memoryMiB: 16384,
    quota: 'NVIDIA_V100_GPUS',
    n1: true,
    zones: WHERE.v100,
  },
  'nvidia-l4': {
    name: 'nvidia-l4',
    architecture: 'Ada Lovelace',
    description: 'NVIDIA L4',
    maximumCardsPerInstance: 8,
    smiName: 'NVIDIA L4',
    memoryMiB: 23034,
    quota: 'NVIDIA_L4_GPUS',
    n1: false,
    zones: WHERE.g2,
  },
  'nvidia-tesla-a100': {
    name: 'nvidia-tesla-a100',
    architecture: 'Ampere',
    description: 'NVIDIA A100 40GB',
    maximumCardsPerInstance: 16,
    smiName: 'NVIDIA A100-SXM4-40GB',
    memoryMiB: 40960,
    quota: 'NVIDIA_A100_GPUS',
    n1: false,
    zones: WHERE.a2,
  },
  'nvidia-h100-80gb': {
    name: 'nvidia-h100-80gb',
    architecture: 'Hopper',
    description: 'NVIDIA H100 80GB',
    maximumCardsPerInstance: 8,
    smiName: 'NVIDIA H100 80GB HBM3',
    memoryMiB: 81559,
    quota: 'NVIDIA_H100_GPUS',
    n1: false,
    zones: WHERE.a3,
  },
};

// ---------------------------------------------------------------------------------------------
// Machine types

export interface MachineTypeSpec {
  name: string;
  family: 'e2' | 'n2' | 'n1' | 'g2' | 'a2' | 'a3';
  guestCpus: number;
  memoryMb: number;
  description: string;
  /** GPUs that come with the machine type (g2, a2, a3). */
  gpu?: { type: string; count: number };
  zones: readonly string[];
  /** Quota its vCPUs count against (`CPUS`, `N2_CPUS`, ...). */
  cpuQuota: string;
  /** How it is sold (MARKETS). */
  markets: readonly Market[];
}

/** Provisioning models: on-demand (STANDARD), Spot, Flex-start (Dynamic Workload Scheduler). */
export type Market = 'STANDARD' | 'SPOT' | 'FLEX_START';
/**
 * A3 High with 1, 2 or 4 GPUs is sold as Spot or Flex-start only, never on-demand; 8 GPUs every
 * way. "Consumption option availability by machine type",
 * https://cloud.google.com/compute/docs/accelerator-optimized-machines#consumption_option_availability_by_machine_type
 * (2025-09; https://github.com/dstackai/gpuhunt/pull/176 drops on-demand A3 High below 8 GPUs for
 * the same reason, 2025-09-13). The other types here are sold on-demand and as Spot.
 */
export const MARKETS: Readonly<Record<string, readonly Market[]>> = {
  'a3-highgpu-1g': ['SPOT', 'FLEX_START'],
  'a3-highgpu-2g': ['SPOT', 'FLEX_START'],
  'a3-highgpu-4g': ['SPOT', 'FLEX_START'],
  'a3-highgpu-8g': ['STANDARD', 'SPOT', 'FLEX_START'],
};
const ON_DEMAND_AND_SPOT: readonly Market[] = ['STANDARD', 'SPOT'];

const GB = 1024;
const standard = (family: 'e2' | 'n2' | 'n1', cpus: number): MachineTypeSpec => {
  const memoryMb = family === 'n1' ? 3840 * cpus : 4 * GB * cpus;
  const mem = family === 'n1' ? `${(3.75 * cpus).toString()} GB` : `${4 * cpus} GB`;
  return {
    name: `${family}-standard-${cpus}`,
    family,
    guestCpus: cpus,
    memoryMb,
    description: `${cpus} vCPU${cpus > 1 ? 's' : ''}, ${mem} RAM`,
    zones: ZONES,
    cpuQuota: family === 'n2' ? 'N2_CPUS' : 'CPUS',
    markets: ON_DEMAND_AND_SPOT,
  };
};

const g2 = (cpus: number, memGb: number, gpus: number): MachineTypeSpec => ({
  name: `g2-standard-${cpus}`,
  family: 'g2',
  guestCpus: cpus,
  memoryMb: memGb * GB,
  description: `${cpus} vCPUs, ${memGb} GB RAM, ${gpus} NVIDIA L4 GPU${gpus > 1 ? 's' : ''}`,
  gpu: { type: 'nvidia-l4', count: gpus },
  zones: WHERE.g2,
  cpuQuota: 'G2_CPUS',
  markets: ON_DEMAND_AND_SPOT,
});

const a2 = (gpus: number, cpus: number, memGb: number): MachineTypeSpec => ({
  name: `a2-highgpu-${gpus}g`,
  family: 'a2',
  guestCpus: cpus,
  memoryMb: memGb * GB,
  description: `Accelerator Optimized: ${gpus} NVIDIA Tesla A100 GPU${gpus > 1 ? 's' : ''}, ${cpus} vCPUs, ${memGb}GB RAM`,
  gpu: { type: 'nvidia-tesla-a100', count: gpus },
  zones: WHERE.a2,
  cpuQuota: 'A2_CPUS',
  markets: ON_DEMAND_AND_SPOT,
});

const a3 = (gpus: number, cpus: number, memGb: number): MachineTypeSpec => ({
  name: `a3-highgpu-${gpus}g`,
  family: 'a3',
  guestCpus: cpus,
  memoryMb: memGb * GB,
  description: `Accelerator Optimized: ${gpus} NVIDIA H100 80GB GPU${gpus > 1 ? 's' : ''}, ${cpus} vCPUs, ${memGb}GB RAM`,
  gpu: { type: 'nvidia-h100-80gb', count: gpus },
  zones: WHERE.a3,
  cpuQuota: 'A3_CPUS',
  markets: MARKETS[`a3-highgpu-${gpus}g`]!,
});

export const MACHINE_TYPES: Readonly<Record<string, MachineTypeSpec>> = Object.fromEntries(
  [
    ...[2, 4, 8, 16].map((n) => standard('e2', n)),
    ...[2, 4, 8, 16, 32, 64].map((n) => standard('n2', n)),
    ...[1, 2, 4, 8, 16, 32, 64, 96].map((n) => standard('n1', n)),
    g2(4, 16, 1),
    g2(8, 32, 1),
    g2(12, 48, 1),
    g2(16, 64, 1),
    g2(24, 96, 2),
    g2(32, 128, 4),
    g2(48, 192, 4),
    g2(96, 384, 8),
    a2(1, 12, 85),
    a2(2, 24, 170),
    a2(4, 48, 340),
    a2(8, 96, 680),
    a3(1, 26, 234),
    a3(2, 52, 468),
    a3(4, 104, 936),
    a3(8, 208, 1872),
  ].map((m) => [m.name, m]),
);

// ---------------------------------------------------------------------------------------------
// Images

export interface GceImageSpec {
  project: string;
  name: string;
  family?: string;
  description: string;
  /** GB, as the API writes it (a string: int64). */
  diskSizeGb: number;
  architecture: 'X86_64' | 'ARM64';
  /** The NVIDIA driver the image carries (DRIVERS), if any: `nvidia-smi` works on the GPUs it drives. */
  nvidiaDriver?: NvidiaDriver;
  creationTimestamp: string;
  id: string;
}

export interface NvidiaDriver {
  /** `open`: NVIDIA's open kernel modules (Turing and newer); `proprietary`: every architecture here. */
  flavour: 'open' | 'proprietary';
  version: string;
}

/**
 * Drivers in images. The Deep Learning VM family names its driver branch (570) but its
 * documentation does not say which flavour of kernel modules it loads; NVIDIA's installation
 * guide makes the open flavour the default since 560 ("Kernel Modules",
 * https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/kernel-modules.html, 2025-10),
 * so the fake takes the less convenient reading: open.
 */
export const DRIVERS = {
  deepLearningVm570: { flavour: 'open', version: '570.133.20' },
  proprietary570: { flavour: 'proprietary', version: '570.133.20' },
} as const satisfies Record<string, NvidiaDriver>;

/** Whether the driver drives this GPU (and `nvidia-smi` sees it). */
export const driverDrives = (driver: NvidiaDriver | undefined, gpu: AcceleratorSpec): boolean =>
  driver !== undefined && (driver.flavour === 'proprietary' || OPEN_MODULES_DRIVE.has(gpu.architecture));

export const IMAGES: readonly GceImageSpec[] = [
  {
    project: 'ubuntu-os-cloud',
    name: 'ubuntu-2404-noble-amd64-v20251001',
    family: 'ubuntu-2404-lts-amd64',
    description: 'Canonical, Ubuntu, 24.04 LTS Minimal, amd64 noble image built on 2025-10-01',
    diskSizeGb: 10,
    architecture: 'X86_64',
    creationTimestamp: '2025-10-01T10:00:00.000-07:00',
    id: '4011223344556670001',
  },
  {
    project: 'ubuntu-os-cloud',
    name: 'ubuntu-2404-noble-arm64-v20251001',
    family: 'ubuntu-2404-lts-arm64',
    description: 'Canonical, Ubuntu, 24.04 LTS, arm64 noble image built on 2025-10-01',
    diskSizeGb: 10,
    architecture: 'ARM64',
    creationTimestamp: '2025-10-01T10:00:00.000-07:00',
    id: '4011223344556670002',
  },
  {
    project: 'deeplearning-platform-release',
    name: 'common-cu128-ubuntu-2204-nvidia-570-v20251010',
    family: 'common-cu128-ubuntu-2204-nvidia-570',
    description: 'Google, Deep Learning VM with CUDA 12.8, M130, Base CUDA 12.8, Ubuntu 22.04, NVIDIA driver 570',
    diskSizeGb: 50,
    architecture: 'X86_64',
    nvidiaDriver: DRIVERS.deepLearningVm570,
    creationTimestamp: '2025-10-10T10:00:00.000-07:00',
    id: '4011223344556670003',
  },
  {
    project: GCE_PROJECT,
    name: 'runner-nvidia-proprietary-570',
    description: 'A runner image built in the sandbox project, with the proprietary NVIDIA 570 driver',
    diskSizeGb: 50,
    architecture: 'X86_64',
    nvidiaDriver: DRIVERS.proprietary570,
    creationTimestamp: '2025-10-12T10:00:00.000-07:00',
    id: '4011223344556670005',
  },
  {
    project: GCE_PROJECT,
    name: 'custom-runner',
    family: 'custom-runner',
    description: 'A runner image built in the sandbox project',
    diskSizeGb: 20,
    architecture: 'X86_64',
    creationTimestamp: '2025-10-12T10:00:00.000-07:00',
    id: '4011223344556670004',
  },
];

/** Projects images can be read from. */
export const IMAGE_PROJECTS: ReadonlySet<string> = new Set(IMAGES.map((i) => i.project));
/** Projects whose images any authenticated caller may read. */
export const PUBLIC_IMAGE_PROJECTS: ReadonlySet<string> = new Set(['ubuntu-os-cloud', 'deeplearning-platform-release']);

export const imageLink = (i: GceImageSpec): string => `${API_ROOT}/projects/${i.project}/global/images/${i.name}`;

export const DISK_TYPES: readonly string[] = ['pd-standard', 'pd-balanced', 'pd-ssd'];

// ---------------------------------------------------------------------------------------------
// VPC networks

export interface SubnetworkSpec {
  name: string;
  region: string;
  ipCidrRange: string;
}

export interface NetworkSpec {
  name: string;
  /** Auto mode: a subnetwork named like the network in every region; custom mode: those listed only. */
  autoCreateSubnetworks: boolean;
  subnetworks: readonly SubnetworkSpec[];
  /** Regions where the network's Cloud Router has a Cloud NAT gateway. */
  cloudNat: readonly string[];
}

/**
 * The sandbox project's networks. `default` is the auto mode network a new project gets, one
 * `default` subnetwork per region ("VPC networks: default network",
 * https://cloud.google.com/vpc/docs/vpc#default-network, 2025-10); a project may have none (deleted,
 * or constraints/compute.skipDefaultNetworkCreation). `ci-vpc` is a custom mode network with a
 * Cloud NAT gateway in us-central1 only. A VM without an external IP reaches the internet only
 * through Cloud NAT in its region ("Cloud NAT overview", https://cloud.google.com/nat/docs/overview,
 * 2025-10); Private Google Access is off on every subnetwork here, so Google APIs are out of its
 * reach too: it can talk to its metadata server and nothing else.
 */
export const NETWORKS: readonly NetworkSpec[] = [
  {
    name: 'default',
    autoCreateSubnetworks: true,
    subnetworks: Object.keys(REGIONS).map((region, i) => ({
      name: 'default',
      region,
      ipCidrRange: `10.${128 + i}.0.0/20`,
    })),
    cloudNat: [],
  },
  {
    name: 'ci-vpc',
    autoCreateSubnetworks: false,
    subnetworks: [
      { name: 'ci-us-central1', region: 'us-central1', ipCidrRange: '10.10.0.0/20' },
      { name: 'ci-europe-west4', region: 'europe-west4', ipCidrRange: '10.20.0.0/20' },
    ],
    cloudNat: ['us-central1'],
  },
];

// ---------------------------------------------------------------------------------------------
// OAuth scopes

export const SCOPE_CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
export const SCOPE_COMPUTE = 'https://www.googleapis.com/auth/compute';
export const SCOPE_COMPUTE_READONLY = 'https://www.googleapis.com/auth/compute.readonly';
export const SCOPE_IAM = 'https://www.googleapis.com/auth/iam';
