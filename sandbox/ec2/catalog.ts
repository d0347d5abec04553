/**
 * What the fake EC2 knows of the service: instance types, images, network, IAM, volume types,
 * and the state codes. Figures are from DescribeInstanceTypes and DescribeImages in us-east-1 and
 * the EC2 API reference (InstanceState, EbsBlockDevice, TagSpecification); the AMIs are the
 * sandbox's own stand-ins for the public images named in sandbox/ssm.ts.
 */
import type { InstanceStateName } from '../ec2.js';

export const EC2_NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
export const ACCOUNT_ID = '123456789012';

/** NVIDIA GPU architectures, oldest first: the open kernel modules drive Turing and newer only. */
export type GpuArchitecture = 'volta' | 'turing' | 'ampere' | 'ada' | 'hopper';

export interface GpuModel {
  /** Name as DescribeInstanceTypes gives it (`T4`, `A10G`). */
  name: string;
  manufacturer: string;
  count: number;
  memoryMiB: number;
  /** Name as `nvidia-smi` prints it. */
  smiName: string;
  architecture: GpuArchitecture;
  /** PCI device id, as the kernel driver names the GPU it could not drive. */
  pciId: string;
}

export interface InstanceTypeSpec {
  name: string;
  arch: 'x86_64' | 'arm64';
  vcpus: number;
  memoryMiB: number;
  gpu?: GpuModel;
  /** On-demand USD per hour in us-east-1 (approximate, for cost figures in tests and benchmarks). */
  onDemandPrice: number;
  /**
   * DescribeInstanceTypes `Hypervisor`: `nitro`, or `xen` for the previous generations (t2, m4,
   * c4, p3 but not p3dn). Source: "Instances built on the AWS Nitro System", Amazon EC2 Instance
   * Types guide (https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-nitro-instances.html).
   * Only Nitro instances give the latest console output ("This option is supported on instance
   * types that use the Nitro hypervisor", GetConsoleOutput,
   * https://docs.aws.amazon.com/sdk-for-sap-abap/v1/api/latest/ec2/operation/GETCONSOLEOUTPUT.html).
   */
  hypervisor: 'nitro' | 'xen';
}

const gpu =
  (name: string, memoryMiB: number, smiName: string, architecture: GpuArchitecture, pciId: string) =>
  (count: number): GpuModel => ({ name, manufacturer: 'NVIDIA', count, memoryMiB, smiName, architecture, pciId });
const T4 = gpu('T4', 16384, 'Tesla T4', 'turing', '10de:1eb8');
const A10G = gpu('A10G', 24576, 'NVIDIA A10G', 'ampere', '10de:2237');
const L4 = gpu('L4', 22888, 'NVIDIA L4', 'ada', '10de:27b8');
const L40S = gpu('L40S', 45776, 'NVIDIA L40S', 'ada', '10de:26b9');
const V100 = gpu('V100', 16384, 'Tesla V100-SXM2-16GB', 'volta', '10de:1db1');
const V100_32 = gpu('V100', 32768, 'Tesla V100-SXM2-32GB', 'volta', '10de:1db5');
const A100 = gpu('A100', 40960, 'NVIDIA A100-SXM4-40GB', 'ampere', '10de:20b0');
const H100 = gpu('H100', 81920, 'NVIDIA H100 80GB HBM3', 'hopper', '10de:2330');
const T4G = gpu('T4g', 16384, 'NVIDIA T4G', 'turing', '10de:1eb9');

/** Xen-based types among the fake's (everything else is Nitro); see `InstanceTypeSpec.hypervisor`. */
const XEN_TYPES = new Set(['t2.micro', 'm4.large', 'c4.xlarge', 'p3.2xlarge', 'p3.8xlarge', 'p3.16xlarge']);

const types: Array<[string, 'x86_64' | 'arm64', number, number, number, GpuModel?]> = [
  // name, arch, vCPUs, memory MiB, on-demand $/h, GPUs (DescribeInstanceTypes in us-east-1)
  ['t2.micro', 'x86_64', 1, 1024, 0.0116],
  ['m4.large', 'x86_64', 2, 8192, 0.1],
  ['c4.xlarge', 'x86_64', 4, 7680, 0.199],
  ['t3.micro', 'x86_64', 2, 1024, 0.0104],
  ['t3.medium', 'x86_64', 2, 4096, 0.0416],
  ['t3.large', 'x86_64', 2, 8192, 0.0832],
  ['t4g.medium', 'arm64', 2, 4096, 0.0336],
  ['m5.large', 'x86_64', 2, 8192, 0.096],
  ['m5.xlarge', 'x86_64', 4, 16384, 0.192],
  ['m5.2xlarge', 'x86_64', 8, 32768, 0.384],
  ['m5.4xlarge', 'x86_64', 16, 65536, 0.768],
  ['m5.8xlarge', 'x86_64', 32, 131072, 1.536],
  ['m5.16xlarge', 'x86_64', 64, 262144, 3.072],
  ['m7i.large', 'x86_64', 2, 8192, 0.1008],
  ['m7g.large', 'arm64', 2, 8192, 0.0816],
  ['c5.xlarge', 'x86_64', 4, 8192, 0.17],
  ['c5.4xlarge', 'x86_64', 16, 32768, 0.68],
  ['g4dn.xlarge', 'x86_64', 4, 16384, 0.526, T4(1)],
  ['g4dn.4xlarge', 'x86_64', 16, 65536, 1.204, T4(1)],
  ['g4dn.12xlarge', 'x86_64', 48, 196608, 3.912, T4(4)],
  ['g4dn.metal', 'x86_64', 96, 393216, 7.824, T4(8)],
  ['g5.xlarge', 'x86_64', 4, 16384, 1.006, A10G(1)],
  ['g5.4xlarge', 'x86_64', 16, 65536, 1.624, A10G(1)],
  ['g5.12xlarge', 'x86_64', 48, 196608, 5.672, A10G(4)],
  ['g5.48xlarge', 'x86_64', 192, 786432, 16.288, A10G(8)],
  ['g6.xlarge', 'x86_64', 4, 16384, 0.8048, L4(1)],
  ['g6.4xlarge', 'x86_64', 16, 65536, 1.3232, L4(1)],
  ['g6.12xlarge', 'x86_64', 48, 196608, 4.6016, L4(4)],
  ['g6.48xlarge', 'x86_64', 192, 786432, 13.3504, L4(8)],
  ['g6e.xlarge', 'x86_64', 4, 32768, 1.861, L40S(1)],
  ['g6e.4xlarge', 'x86_64', 16, 131072, 3.004, L40S(1)],
  ['g6e.12xlarge', 'x86_64', 48, 393216, 10.493, L40S(4)],
  ['g6e.48xlarge', 'x86_64', 192, 1572864, 30.131, L40S(8)],
  ['p3.2xlarge', 'x86_64', 8, 62464, 3.06, V100(1)],
  ['p3.8xlarge', 'x86_64', 32, 249856, 12.24, V100(4)],
  ['p3.16xlarge', 'x86_64', 64, 499712, 24.48, V100(8)],
  ['p3dn.24xlarge', 'x86_64', 96, 786432, 31.212, V100_32(8)],
  ['p4d.24xlarge', 'x86_64', 96, 1179648, 32.7726, A100(8)],
  ['p5.4xlarge', 'x86_64', 16, 262144, 6.88, H100(1)],
  ['p5.48xlarge', 'x86_64', 192, 2097152, 55.04, H100(8)],
  ['g5g.xlarge', 'arm64', 4, 8192, 0.42, T4G(1)],
];

export const INSTANCE_TYPES: Readonly<Record<string, InstanceTypeSpec>> = Object.fromEntries(
  types.map(([name, arch, vcpus, memoryMiB, onDemandPrice, g]) => [
    name,
    {
      name,
      arch,
      vcpus,
      memoryMiB,
      onDemandPrice,
      hypervisor: XEN_TYPES.has(name) ? ('xen' as const) : ('nitro' as const),
      ...(g ? { gpu: g } : {}),
    },
  ]),
);

export interface ImageSpec {
  id: string;
  name: string;
  description: string;
  arch: 'x86_64' | 'arm64';
  rootDeviceName: string;
  snapshotId: string;
  snapshotSizeGiB: number;
  volumeType: string;
  ownerId: string;
  ownerAlias?: string;
  /** The image carries the NVIDIA driver, so GPU instances see their GPUs (those the driver supports). */
  nvidiaDriver: boolean;
  /**
   * The NVIDIA driver's kernel modules and version, from the image's release notes. The open
   * modules drive Turing and newer GPUs only ("Open GPU kernel modules are supported only on
   * Turing and newer generations", NVIDIA Driver Installation Guide, Kernel Modules,
   * https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/kernel-modules.html): on a
   * V100 (Volta) the module loads but drives no GPU ("NVRM: ... is not supported by open
   * nvidia.ko because it does not include the required GPU System Processor (GSP)",
   * https://github.com/NVIDIA/open-gpu-kernel-modules/issues/322), and `nvidia-smi` fails.
   */
  driver?: { kernelModules: 'open' | 'proprietary'; version: string };
  imdsSupport?: 'v2.0';
  creationDate: string;
}

const CANONICAL = '099720109477';
const AMAZON = '137112412989';
const DLAMI_OWNER = '898082745236';
/**
 * The Base OSS Nvidia Driver DLAMIs ship NVIDIA's open kernel modules (hence "OSS"); their
 * release notes list no P3 among the supported instances. Release of 2025-12-05: nvidia_driver
 * 580.105.08, supported G5g, P6e-GB200, P6e-GB300
 * (https://docs.amazonaws.cn/dlami/latest/devguide/aws-deep-learning-ami-gpubaseossarm64-ul2404-2025-12-10.md);
 * the x86_64 base DLAMIs list G4dn, G5, G6, Gr6, G6e, G7, P4d, P4de, P5, P5e, P5en, P6-B200, P6-B300
 * (https://docs.amazonaws.cn/dlami/latest/devguide/aws-deep-learning-ami-gpubasesinglecuda-ul2404-2026-07-17.html).
 */
const OSS_DRIVER = { kernelModules: 'open', version: '580.105.08' } as const;

export const IMAGES: readonly ImageSpec[] = [
  {
    id: 'ami-0a0b0c0d0e0f10001',
    name: 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20251001',
    description: 'Canonical, Ubuntu, 24.04, amd64 noble image',
    arch: 'x86_64',
    rootDeviceName: '/dev/sda1',
    snapshotId: 'snap-0a1b2c3d4e5f60001',
    snapshotSizeGiB: 8,
    volumeType: 'gp3',
    ownerId: CANONICAL,
    nvidiaDriver: false,
    creationDate: '2025-10-01T10:00:00.000Z',
  },
  {
    id: 'ami-0a0b0c0d0e0f10002',
    name: 'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20251001',
    description: 'Canonical, Ubuntu, 24.04, arm64 noble image',
    arch: 'arm64',
    rootDeviceName: '/dev/sda1',
    snapshotId: 'snap-0a1b2c3d4e5f60002',
    snapshotSizeGiB: 8,
    volumeType: 'gp3',
    ownerId: CANONICAL,
    nvidiaDriver: false,
    creationDate: '2025-10-01T10:00:00.000Z',
  },
  {
    id: 'ami-0d1a0b0c0d0e20001',
    name: 'Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20251010',
    description: 'Supported EC2 instances: G4dn, G5, G6, Gr6, G6e, P4, P4de, P5, P5e, P5en, P6-B200',
    arch: 'x86_64',
    rootDeviceName: '/dev/sda1',
    snapshotId: 'snap-0d1a0b0c0d0e20001',
    snapshotSizeGiB: 75,
    volumeType: 'gp3',
    ownerId: DLAMI_OWNER,
    ownerAlias: 'amazon',
    nvidiaDriver: true,
    driver: OSS_DRIVER,
    creationDate: '2025-10-10T10:00:00.000Z',
  },
  {
    id: 'ami-0d1a0b0c0d0e20002',
    name: 'Deep Learning ARM64 Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20251010',
    description: 'Supported EC2 instances: G5g, P6e-GB200',
    arch: 'arm64',
    rootDeviceName: '/dev/sda1',
    snapshotId: 'snap-0d1a0b0c0d0e20002',
    snapshotSizeGiB: 75,
    volumeType: 'gp3',
    ownerId: DLAMI_OWNER,
    ownerAlias: 'amazon',
    nvidiaDriver: true,
    driver: OSS_DRIVER,
    creationDate: '2025-10-10T10:00:00.000Z',
  },
  {
    id: 'ami-0d1a0b0c0d0e20003',
    name: 'Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) 20251010',
    description: 'Supported EC2 instances: G4dn, G5, G6, Gr6, G6e, P4, P4de, P5, P5e, P5en, P6-B200',
    arch: 'x86_64',
    rootDeviceName: '/dev/sda1',
    snapshotId: 'snap-0d1a0b0c0d0e20003',
    snapshotSizeGiB: 75,
    volumeType: 'gp3',
    ownerId: DLAMI_OWNER,
    ownerAlias: 'amazon',
    nvidiaDriver: true,
    driver: OSS_DRIVER,
    creationDate: '2025-10-10T10:00:00.000Z',
  },
  {
    id: 'ami-0d1a0b0c0d0e20004',
    name: 'Deep Learning ARM64 Base OSS Nvidia Driver GPU AMI (Ubuntu 24.04) 20251010',
    description: 'Supported EC2 instances: G5g, P6e-GB200, P6e-GB300',
    arch: 'arm64',
    rootDeviceName: '/dev/sda1',
    snapshotId: 'snap-0d1a0b0c0d0e20004',
    snapshotSizeGiB: 75,
    volumeType: 'gp3',
    ownerId: DLAMI_OWNER,
    ownerAlias: 'amazon',
    nvidiaDriver: true,
    driver: OSS_DRIVER,
    creationDate: '2025-10-10T10:00:00.000Z',
  },
  {
    // Release notes: "Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2) Version
    // 71.6", supported_ec2_instances G3, P3, P3dn, Inf1, nvidia_driver 570.195.03
    // (https://docs.amazonaws.cn/dlami/latest/devguide/aws-deep-learning-ami-base-aml2-2026-01-02.md).
    id: 'ami-0d1a0b0c0d0e20005',
    name: 'Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2) Version 71.6',
    description: 'Supported EC2 instances: G3 (G3.16x not supported), P3, P3dn, Inf1',
    arch: 'x86_64',
    rootDeviceName: '/dev/xvda',
    snapshotId: 'snap-0d1a0b0c0d0e20005',
    snapshotSizeGiB: 100,
    volumeType: 'gp3',
    ownerId: DLAMI_OWNER,
    ownerAlias: 'amazon',
    nvidiaDriver: true,
    driver: { kernelModules: 'proprietary', version: '570.195.03' },
    creationDate: '2026-01-02T10:00:00.000Z',
  },
  {
    id: 'ami-0e1f2a3b4c5d30001',
    name: 'al2023-ami-2023.9.20251014.0-kernel-6.1-x86_64',
    description: 'Amazon Linux 2023 AMI 2023.9.20251014.0 x86_64 HVM kernel-6.1',
    arch: 'x86_64',
    rootDeviceName: '/dev/xvda',
    snapshotId: 'snap-0e1f2a3b4c5d30001',
    snapshotSizeGiB: 8,
    volumeType: 'gp3',
    ownerId: AMAZON,
    ownerAlias: 'amazon',
    nvidiaDriver: false,
    imdsSupport: 'v2.0',
    creationDate: '2025-10-14T10:00:00.000Z',
  },
  {
    id: 'ami-0e1f2a3b4c5d30002',
    name: 'al2023-ami-2023.9.20251014.0-kernel-6.1-arm64',
    description: 'Amazon Linux 2023 AMI 2023.9.20251014.0 arm64 HVM kernel-6.1',
    arch: 'arm64',
    rootDeviceName: '/dev/xvda',
    snapshotId: 'snap-0e1f2a3b4c5d30002',
    snapshotSizeGiB: 8,
    volumeType: 'gp3',
    ownerId: AMAZON,
    ownerAlias: 'amazon',
    nvidiaDriver: false,
    imdsSupport: 'v2.0',
    creationDate: '2025-10-14T10:00:00.000Z',
  },
];

export const VPC_ID = 'vpc-0a1b2c3d4e5f60001';
/**
 * The account's VPCs: the default one, which holds every subnet, and another without subnets,
 * where a test can put a group no launch may use.
 */
export const VPCS: Readonly<Record<string, { isDefault: boolean; cidr: string }>> = {
  [VPC_ID]: { isDefault: true, cidr: '10.0.0.0/16' },
  'vpc-0a1b2c3d4e5f60002': { isDefault: false, cidr: '10.1.0.0/16' },
};
/** Known subnets; each sits in its own availability zone of whatever region the call is signed for. */
export const SUBNETS: Readonly<Record<string, { azSuffix: string; cidrPrefix: string }>> = {
  'subnet-0a1': { azSuffix: 'a', cidrPrefix: '10.0.1' },
  'subnet-0b2': { azSuffix: 'b', cidrPrefix: '10.0.2' },
};
export const DEFAULT_SUBNET = 'subnet-0a1';
/** The default VPC's default group, which every region shows; groups made by CreateSecurityGroup live in the store. */
export const SECURITY_GROUPS: Readonly<Record<string, string>> = { 'sg-0default': 'default' };
export const INSTANCE_PROFILES: Readonly<Record<string, { arn: string; id: string }>> = {
  'cml-runner-profile': {
    arn: `arn:aws:iam::${ACCOUNT_ID}:instance-profile/cml-runner-profile`,
    id: 'AIPASANDBOXPROFILE0001',
  },
};

/** The IAM role each instance profile holds (what RunInstances passes to EC2: iam:PassRole on it). */
export const INSTANCE_PROFILE_ROLES: Readonly<Record<string, string>> = {
  [`arn:aws:iam::${ACCOUNT_ID}:instance-profile/cml-runner-profile`]: 'cml-runner-machine',
};

/** InstanceState codes, as in the API reference (the high byte is internal and always 0 here). */
export const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

/** The sandbox's AMIs by role; `gpu*` are the Ubuntu 24.04 Deep Learning Base OSS Nvidia images. */
export const KNOWN_IMAGES = {
  ubuntuX64: 'ami-0a0b0c0d0e0f10001',
  ubuntuArm64: 'ami-0a0b0c0d0e0f10002',
  gpu2204X64: 'ami-0d1a0b0c0d0e20001',
  gpu2204Arm64: 'ami-0d1a0b0c0d0e20002',
  gpuX64: 'ami-0d1a0b0c0d0e20003',
  gpuArm64: 'ami-0d1a0b0c0d0e20004',
  /** Deep Learning Base Proprietary Nvidia Driver AMI (Amazon Linux 2): drives the V100 (p3). */
  gpuProprietaryX64: 'ami-0d1a0b0c0d0e20005',
  al2023X64: 'ami-0e1f2a3b4c5d30001',
  al2023Arm64: 'ami-0e1f2a3b4c5d30002',
} as const;

/** Volume types and their size range in GiB (EbsBlockDevice, VolumeSize). */
export const VOLUME_TYPES: Record<string, [number, number]> = {
  gp2: [1, 16384],
  gp3: [1, 16384],
  io1: [4, 16384],
  io2: [4, 65536],
  st1: [125, 16384],
  sc1: [125, 16384],
  standard: [1, 1024],
};
/** Resource types RunInstances can tag at launch (TagSpecification.ResourceType) among those the fake creates. */
export const TAGGABLE = new Set(['instance', 'volume', 'network-interface', 'spot-instances-request']);
/** User data is limited to 16 KB, before base64 (RunInstances, UserData). */
export const USER_DATA_LIMIT = 16384;
