/**
 * Fake EC2: the Query API (form-encoded `POST /`, `Action=...&Version=2016-11-15`) with XML
 * answers, driven by the real `@aws-sdk/client-ec2` over loopback HTTP.
 *
 * Strict on purpose: it checks the SigV4 signature, every parameter the product sends, and
 * answers with EC2's own error codes and messages (checked against the EC2 API reference and
 * the errors real users report). Instances really boot: their user data runs as a sandbox
 * machine (see machine.ts), and a `shutdown` inside the machine ends the instance the way
 * `InstanceInitiatedShutdownBehavior` says.
 *
 * Implemented actions: RunInstances, DescribeInstances, TerminateInstances, DescribeImages,
 * DescribeInstanceTypes, GetConsoleOutput. Anything else is `InvalidAction`.
 *
 * The same server is each instance's metadata service (IMDS) under `/_imds/<instance-id>`, which
 * its machine finds in `AWS_EC2_METADATA_SERVICE_ENDPOINT` (the variable the AWS SDKs read). It
 * answers as IMDS does: IMDSv2 session tokens, the instance's metadata options, and the spot
 * interruption notice `spot/instance-action` once `interruptSpot()` publishes it.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import zlib from 'node:zlib';
import { type Fault, type FaultPlan, applyReset, sleep } from './core/index.js';
import { serve } from './http.js';
import { type Machine, MachineFleet } from './machine.js';

export const EC2_NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
export const ACCOUNT_ID = '123456789012';

/** The only credentials the fakes accept. */
export const SANDBOX_CREDENTIALS = { accessKeyId: 'AKIASANDBOX', secretAccessKey: 'sandbox-secret' } as const;

// ---------------------------------------------------------------------------------------------
// Catalogue: instance types, images, network, IAM

export interface GpuModel {
  /** Name as DescribeInstanceTypes gives it (`T4`, `A10G`). */
  name: string;
  manufacturer: string;
  count: number;
  memoryMiB: number;
  /** Name as `nvidia-smi` prints it. */
  smiName: string;
}

export interface InstanceTypeSpec {
  name: string;
  arch: 'x86_64' | 'arm64';
  vcpus: number;
  memoryMiB: number;
  gpu?: GpuModel;
  /** On-demand USD per hour in us-east-1 (approximate, for cost figures in tests and benchmarks). */
  onDemandPrice: number;
}

const gpu = (name: string, count: number, memoryMiB: number, smiName: string): GpuModel => ({
  name,
  manufacturer: 'NVIDIA',
  count,
  memoryMiB,
  smiName,
});
const T4 = (n: number) => gpu('T4', n, 16384, 'Tesla T4');
const A10G = (n: number) => gpu('A10G', n, 24576, 'NVIDIA A10G');
const L4 = (n: number) => gpu('L4', n, 22888, 'NVIDIA L4');
const L40S = (n: number) => gpu('L40S', n, 45776, 'NVIDIA L40S');
const V100 = (n: number) => gpu('V100', n, 16384, 'Tesla V100-SXM2-16GB');
const A100 = (n: number) => gpu('A100', n, 40960, 'NVIDIA A100-SXM4-40GB');
const H100 = (n: number) => gpu('H100', n, 81920, 'NVIDIA H100 80GB HBM3');
const T4G = (n: number) => gpu('T4g', n, 16384, 'NVIDIA T4G');

const types: Array<[string, 'x86_64' | 'arm64', number, number, number, GpuModel?]> = [
  // name, arch, vCPUs, memory MiB, on-demand $/h, GPUs (DescribeInstanceTypes in us-east-1)
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
  ['p4d.24xlarge', 'x86_64', 96, 1179648, 32.7726, A100(8)],
  ['p5.4xlarge', 'x86_64', 16, 262144, 6.88, H100(1)],
  ['p5.48xlarge', 'x86_64', 192, 2097152, 55.04, H100(8)],
  ['g5g.xlarge', 'arm64', 4, 8192, 0.42, T4G(1)],
];

export const INSTANCE_TYPES: Readonly<Record<string, InstanceTypeSpec>> = Object.fromEntries(
  types.map(([name, arch, vcpus, memoryMiB, onDemandPrice, g]) => [
    name,
    { name, arch, vcpus, memoryMiB, onDemandPrice, ...(g ? { gpu: g } : {}) },
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
  /** The image carries the NVIDIA driver, so GPU instances see their GPUs. */
  nvidiaDriver: boolean;
  imdsSupport?: 'v2.0';
  creationDate: string;
}

const CANONICAL = '099720109477';
const AMAZON = '137112412989';
const DLAMI_OWNER = '898082745236';

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
    creationDate: '2025-10-10T10:00:00.000Z',
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
/** Known subnets; each sits in its own availability zone of whatever region the call is signed for. */
export const SUBNETS: Readonly<Record<string, { azSuffix: string; cidrPrefix: string }>> = {
  'subnet-0a1': { azSuffix: 'a', cidrPrefix: '10.0.1' },
  'subnet-0b2': { azSuffix: 'b', cidrPrefix: '10.0.2' },
};
export const DEFAULT_SUBNET = 'subnet-0a1';
export const SECURITY_GROUPS: Readonly<Record<string, string>> = { 'sg-0default': 'default' };
export const INSTANCE_PROFILES: Readonly<Record<string, { arn: string; id: string }>> = {
  'cml-runner-profile': {
    arn: `arn:aws:iam::${ACCOUNT_ID}:instance-profile/cml-runner-profile`,
    id: 'AIPASANDBOXPROFILE0001',
  },
};

// ---------------------------------------------------------------------------------------------
// Inventory

export type InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';
const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface Ec2Volume {
  id: string;
  instanceId: string;
  deviceName: string;
  /** GiB. */
  size: number;
  volumeType: string;
  deleteOnTermination: boolean;
  encrypted: boolean;
  snapshotId?: string;
  /** The volume the image boots from. */
  root: boolean;
  /** `in-use` while attached; `available` once detached from a terminated instance (still billed); `deleted`. */
  state: 'in-use' | 'available' | 'deleted';
  tags: Record<string, string>;
  attachTime: Date;
}

export interface SpotRequest {
  id: string;
  instanceId: string;
  type: 'one-time' | 'persistent';
  interruptionBehavior: 'terminate' | 'stop' | 'hibernate';
  maxPrice?: number;
  /** `active` while its instance runs; a one-time request `closed` once the instance ends; a persistent one stays `open`. */
  state: 'active' | 'open' | 'closed' | 'cancelled' | 'disabled';
  tags: Record<string, string>;
}

export interface Ec2Instance {
  id: string;
  reservationId: string;
  /** Position in its reservation. */
  amiLaunchIndex: number;
  region: string;
  imageId: string;
  instanceType: string;
  /** Same as `instanceType`. */
  type: string;
  architecture: 'x86_64' | 'arm64';
  state: InstanceStateName;
  stateReason?: { code: string; message: string };
  stateTransitionReason: string;
  launchTime: Date;
  /** When it reached `terminated`. */
  terminatedAt?: Date;
  subnetId: string;
  availabilityZone: string;
  privateIp: string;
  securityGroups: string[];
  tags: Record<string, string>;
  market: 'on-demand' | 'spot';
  spot: boolean;
  /** The spot request behind a spot instance. */
  spotRequest?: SpotRequest;
  /** The SpotOptions as asked for (MaxPrice as the string sent). */
  spotOptions?: { spotInstanceType: 'one-time' | 'persistent'; instanceInterruptionBehavior: 'terminate' | 'stop' | 'hibernate'; maxPrice?: string };
  /** Decoded user data (after gunzip if it was gzipped), as text. */
  userData: string;
  /** Size in bytes of the decoded user data as sent (before any gunzip). */
  userDataBytes: number;
  shutdownBehavior: 'stop' | 'terminate';
  metadataOptions: { httpTokens: 'optional' | 'required'; httpPutResponseHopLimit: number; httpEndpoint: 'enabled' | 'disabled' };
  iamInstanceProfile?: { arn: string; id: string };
  /** EBS volumes created at launch: the root, plus any extra mapping (each one billed). */
  volumes: Ec2Volume[];
  /** Same array as `volumes`. */
  blockDevices: Ec2Volume[];
  networkInterface: { id: string; macAddress: string; tags: Record<string, string> };
  /** Same object as `networkInterface.tags`. */
  networkInterfaceTags: Record<string, string>;
  /** The `Name` tag. */
  readonly name: string | undefined;
  clientToken?: string;
  rootDeviceName: string;
  /** The spot interruption notice in the instance metadata (`spot/instance-action`), once published. */
  spotNotice?: { action: 'terminate' | 'stop' | 'hibernate'; time: Date };
  /** The machine running the user data, once the instance is `running`. */
  machine?: Machine;
  /** The console text (banner + the machine's stdout/stderr). */
  console(): string;
}

export interface Ec2Call {
  action: string;
  status: number;
  /** Error code, for failed calls. */
  code?: string;
  at: number;
  ms: number;
}

export interface FakeEc2Options {
  faults: FaultPlan;
  /** Boots the instances' machines; shared with the sandbox so `failBoot` works. */
  machines?: MachineFleet;
  /** Added to every call. */
  latencyMs?: number;
  /** Time from `pending` to `running` (and the machine booting). Default 100 ms. */
  bootDelayMs?: number;
  /** Time spent in `shutting-down`/`stopping`. Default 100 ms. */
  shutdownDelayMs?: number;
  /** How long a terminated instance stays visible to DescribeInstances. Default one hour, as in AWS. */
  terminatedVisibleMs?: number;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** The sandbox's AMIs by role; `gpu*` are the Ubuntu 24.04 Deep Learning Base OSS Nvidia images. */
export const KNOWN_IMAGES = {
  ubuntuX64: 'ami-0a0b0c0d0e0f10001',
  ubuntuArm64: 'ami-0a0b0c0d0e0f10002',
  gpu2204X64: 'ami-0d1a0b0c0d0e20001',
  gpu2204Arm64: 'ami-0d1a0b0c0d0e20002',
  gpuX64: 'ami-0d1a0b0c0d0e20003',
  gpuArm64: 'ami-0d1a0b0c0d0e20004',
  al2023X64: 'ami-0e1f2a3b4c5d30001',
  al2023Arm64: 'ami-0e1f2a3b4c5d30002',
} as const;

export interface FakeEc2 {
  url: string;
  calls: Ec2Call[];
  /** The sandbox's AMI ids by role. */
  images: typeof KNOWN_IMAGES;
  /** The console of an instance's machine (empty before it boots or when its boot failed). */
  consoleOf(instanceId: string): string;
  /** Every instance ever created, in launch order. */
  instances(): Ec2Instance[];
  instance(id: string): Ec2Instance | undefined;
  volumes(): Ec2Volume[];
  spotRequests(): SpotRequest[];
  /** The current spot price of a type (default 40% of on-demand). */
  spotPrice(instanceType: string): number;
  setSpotPrice(instanceType: string, price: number): void;
  /**
   * Interrupts a spot instance as AWS does: publishes the notice in its metadata
   * (`spot/instance-action`, with the time of the interruption) at once, then stops or terminates
   * it after `noticeMs` (AWS gives two minutes; default 0). Resolves once the interruption is
   * applied; an instance that ended itself during the notice is left as it is.
   */
  interruptSpot(instanceId: string, opts?: { noticeMs?: number }): Promise<void>;
  /** Human-readable lines for everything still billed: live instances, orphaned volumes, open spot requests. */
  leftovers(): string[];
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Errors and XML

/** An AWS service error: code, message, HTTP status. The SSM fake answers with it too. */
export class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const FAULT_STATUS: Record<string, number> = {
  RequestLimitExceeded: 503,
  InsufficientInstanceCapacity: 500,
  InsufficientCapacity: 500,
  Unavailable: 503,
  ServiceUnavailable: 503,
  InternalError: 500,
  InternalFailure: 500,
  VcpuLimitExceeded: 400,
};
const FAULT_MESSAGE: Record<string, string> = {
  RequestLimitExceeded: 'Request limit exceeded.',
  InsufficientInstanceCapacity:
    'We currently do not have sufficient capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity. You can currently get capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.',
  Unavailable: 'The server is overloaded and cannot handle the request.',
  InternalError: 'An internal error has occurred',
  VcpuLimitExceeded:
    'You have requested more vCPU capacity than your current vCPU limit allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.',
  MaxSpotInstanceCountExceeded: 'Max spot instance count exceeded',
  InstanceLimitExceeded: 'You have requested more instances than your current instance limit allows.',
};

export function faultStatus(f: Fault): number {
  return f.status ?? (f.code ? (FAULT_STATUS[f.code] ?? 400) : 400);
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
/** A leaf element; nothing when the value is undefined. */
const t = (name: string, v: string | number | boolean | undefined | null): string =>
  v === undefined || v === null ? '' : `<${name}>${esc(String(v))}</${name}>`;
/** An element around already-serialised children. */
const n = (name: string, inner: string): string => `<${name}>${inner}</${name}>`;
/** A list: `<name><item>..</item>...</name>`. */
const items = <T>(name: string, list: readonly T[], f: (x: T) => string): string =>
  `<${name}>${list.map((x) => `<item>${f(x)}</item>`).join('')}</${name}>`;

function errorXml(code: string, message: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`;
}

// ---------------------------------------------------------------------------------------------
// SigV4 (shared with the SSM fake)

export type SigV4Failure = 'missing' | 'incomplete' | 'unknown-key' | 'wrong-service' | 'bad-signature';
export type SigV4Result =
  | { ok: true; accessKeyId: string; region: string; service: string }
  | { ok: false; failure: SigV4Failure; detail: string };

const sha256 = (data: string | Buffer): string => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => crypto.createHmac('sha256', key).update(data).digest();
const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Verifies an `Authorization: AWS4-HMAC-SHA256 ...` header the way AWS does: it rebuilds the
 * canonical request from what arrived and compares signatures.
 */
export function verifySigV4(
  req: http.IncomingMessage,
  body: Buffer,
  expected: { service: string; accessKeyId: string; secretAccessKey: string },
): SigV4Result {
  const auth = req.headers.authorization;
  if (!auth) return { ok: false, failure: 'missing', detail: 'no Authorization header' };
  const m = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})\s*$/.exec(auth);
  if (!m) return { ok: false, failure: 'incomplete', detail: `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=${auth.split(' ')[0]}` };
  const [, credential, signedHeadersRaw, signature] = m as unknown as [string, string, string, string];
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request') {
    return { ok: false, failure: 'incomplete', detail: `Credential should be scoped to a valid region, not '${scope[2] ?? ''}'. ` };
  }
  const [accessKeyId, date, region, service] = scope as [string, string, string, string, string];
  if (accessKeyId !== expected.accessKeyId) return { ok: false, failure: 'unknown-key', detail: accessKeyId };
  if (service !== expected.service) {
    return { ok: false, failure: 'wrong-service', detail: `Credential should be scoped to correct service: '${expected.service}'. ` };
  }
  const amzDate = header(req, 'x-amz-date');
  if (!amzDate || !amzDate.startsWith(date)) {
    return { ok: false, failure: 'incomplete', detail: 'Date must be in ISO-8601 \'basic format\'. Got x-amz-date missing or not matching the credential scope date.' };
  }
  const signedHeaders = signedHeadersRaw.split(';');
  if (!signedHeaders.includes('host')) {
    return { ok: false, failure: 'incomplete', detail: "'Host' must be a 'SignedHeader' in the AWS Authorization." };
  }
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const canonicalPath =
    rawPath
      .split('/')
      .map((seg) => rfc3986(rfc3986(decodeURIComponent(seg))))
      .join('/') || '/';
  const canonicalQuery = rawQuery
    .split('&')
    .filter((p) => p.length > 0)
    .map((p) => {
      const eq = p.indexOf('=');
      const k = decodeURIComponent((eq < 0 ? p : p.slice(0, eq)).replace(/\+/g, ' '));
      const v = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1).replace(/\+/g, ' '));
      return [rfc3986(k), rfc3986(v)] as const;
    })
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = signedHeaders
    .map((h) => `${h}:${(header(req, h) ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const payloadHash = header(req, 'x-amz-content-sha256') ?? sha256(body);
  const canonicalRequest = [req.method ?? 'POST', canonicalPath, canonicalQuery, canonicalHeaders, signedHeadersRaw, payloadHash].join('\n');
  const credentialScope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, credentialScope, sha256(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${expected.secretAccessKey}`, date);
  const kSigning = hmac(hmac(hmac(kDate, region), service), 'aws4_request');
  const expectedSig = crypto.createHmac('sha256', kSigning).update(stringToSign).digest('hex');
  if (!crypto.timingSafeEqual(Buffer.from(expectedSig), Buffer.from(signature))) {
    return { ok: false, failure: 'bad-signature', detail: 'signature mismatch' };
  }
  return { ok: true, accessKeyId, region, service };
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
}

// ---------------------------------------------------------------------------------------------
// Query parameters: `A.1.B.2.C=v` becomes { A: { 1: { B: { 2: { C: 'v' } } } } }

type Params = { [key: string]: Params | string };

function nest(form: URLSearchParams): Params {
  const root: Params = {};
  for (const [key, value] of form) {
    const parts = key.split('.');
    let node = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i]!;
      const next = node[p];
      if (typeof next === 'object') node = next;
      else {
        const created: Params = {};
        node[p] = created;
        node = created;
      }
    }
    const last = parts[parts.length - 1]!;
    if (typeof node[last] !== 'object') node[last] = value;
  }
  return root;
}

const str = (p: Params | undefined, key: string): string | undefined => {
  const v = p?.[key];
  return typeof v === 'string' ? v : undefined;
};
const sub = (p: Params | undefined, key: string): Params | undefined => {
  const v = p?.[key];
  return typeof v === 'object' ? v : undefined;
};
/** A query list (`Key.1`, `Key.2`, ...), in index order. */
function list(p: Params | undefined, key: string): Array<Params | string> {
  const node = sub(p, key);
  if (!node) return [];
  return Object.keys(node)
    .map((k) => {
      if (!/^[1-9]\d*$/.test(k)) throw new Ec2Error('InvalidParameterValue', `The parameter ${key}.${k} is not recognized`);
      return Number(k);
    })
    .sort((a, b) => a - b)
    .map((i) => node[String(i)]!);
}
const strList = (p: Params | undefined, key: string): string[] =>
  list(p, key).map((v) => {
    if (typeof v !== 'string') throw new Ec2Error('InvalidParameterValue', `Invalid value for ${key}`);
    return v;
  });
const structList = (p: Params | undefined, key: string): Params[] =>
  list(p, key).map((v) => {
    if (typeof v === 'string') throw new Ec2Error('InvalidParameterValue', `Invalid value '${v}' for ${key}`);
    return v;
  });

function bool(v: string | undefined, name: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new Ec2Error('InvalidParameterValue', `Invalid value '${v}' for ${name}. Must be a boolean`);
}
function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new Ec2Error('InvalidParameterValue', `Invalid value '${v}' for ${name}. Must be an integer`);
  return Number(v);
}
function required(p: Params, key: string): string {
  const v = str(p, key);
  if (v === undefined || v === '') throw new Ec2Error('MissingParameter', `The request must contain the parameter ${key}`);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Ids

const hex = (len: number): string => crypto.randomBytes(Math.ceil(len / 2)).toString('hex').slice(0, len);
const newId = (prefix: string): string => `${prefix}-0${hex(16)}`;
const INSTANCE_ID = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/;
const AMI_ID = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;

function wildcard(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}
const anyMatch = (values: string[], actual: string | undefined): boolean =>
  actual !== undefined && values.some((v) => wildcard(v).test(actual));

const VOLUME_TYPES: Record<string, [number, number]> = {
  gp2: [1, 16384],
  gp3: [1, 16384],
  io1: [4, 16384],
  io2: [4, 65536],
  st1: [125, 16384],
  sc1: [125, 16384],
  standard: [1, 1024],
};
const TAGGABLE = new Set(['instance', 'volume', 'network-interface', 'spot-instances-request']);
const USER_DATA_LIMIT = 16384;
/** Where each instance's metadata service lives on this server: `<url>/_imds/<instance-id>`. */
const IMDS_PREFIX = '/_imds';
const IMDS_PATH = /^\/_imds\/([^/?]+)([^?]*)/;
/** IMDSv2 session tokens last from one second to six hours. */
const IMDS_MAX_TTL_SECONDS = 21600;
const IMDS_REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed' };

// ---------------------------------------------------------------------------------------------
// The server

export async function startFakeEc2(opts: FakeEc2Options): Promise<FakeEc2> {
  const machines = opts.machines ?? new MachineFleet();
  const ownsMachines = opts.machines === undefined;
  const creds = opts.credentials ?? SANDBOX_CREDENTIALS;
  const bootDelayMs = opts.bootDelayMs ?? 100;
  const shutdownDelayMs = opts.shutdownDelayMs ?? 100;
  const terminatedVisibleMs = opts.terminatedVisibleMs ?? 60 * 60 * 1000;
  const all: Ec2Instance[] = [];
  const byId = new Map<string, Ec2Instance>();
  const byToken = new Map<string, { fingerprint: string; reservationId: string; instanceIds: string[] }>();
  const spotPrices = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const calls: Ec2Call[] = [];
  let closed = false;

  const later = (ms: number, f: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) f();
    }, ms);
    timer.unref();
    timers.add(timer);
  };

  const spotPrice = (type: string): number =>
    spotPrices.get(type) ?? Math.round((INSTANCE_TYPES[type]?.onDemandPrice ?? 1) * 0.4 * 10000) / 10000;

  // ----- lifecycle -----

  function setState(inst: Ec2Instance, state: InstanceStateName): void {
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
    if (state === 'stopped' && inst.spotRequest && inst.spotRequest.type === 'persistent') inst.spotRequest.state = 'disabled';
  }

  function boot(inst: Ec2Instance): void {
    if (inst.state !== 'pending') return;
    setState(inst, 'running');
    const type = INSTANCE_TYPES[inst.instanceType]!;
    const image = IMAGES.find((i) => i.id === inst.imageId)!;
    const { script, note } = userDataScript(inst.userData);
    inst.machine = machines.boot({
      id: inst.id,
      script,
      arch: inst.architecture,
      env: { SANDBOX_INSTANCE_ID: inst.id, SANDBOX_CLOUD: 'aws', AWS_EC2_METADATA_SERVICE_ENDPOINT: `${server.url}${IMDS_PREFIX}/${inst.id}` },
      ...(type.gpu && image.nvidiaDriver
        ? { gpu: { model: type.gpu.smiName, count: type.gpu.count, memoryMiB: type.gpu.memoryMiB } }
        : {}),
      banner: [
        `[    0.000000] Linux version 6.8.0-1016-aws (sandbox) #17-Ubuntu SMP`,
        `[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root=LABEL=cloudimg-rootfs`,
        `[    2.104411] cloud-init[612]: Cloud-init v. 24.4 running 'init' (instance ${inst.id}, ${inst.instanceType})`,
        ...(note ? [note] : []),
      ],
      onShutdown: () => instanceInitiatedShutdown(inst),
    });
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

  function instanceInitiatedShutdown(inst: Ec2Instance): void {
    if (inst.state !== 'running' && inst.state !== 'pending') return;
    inst.stateReason = { code: 'Client.InstanceInitiatedShutdown', message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown' };
    inst.stateTransitionReason = `User initiated (${awsTime(new Date())})`;
    // One-time spot instances cannot be stopped; they end on shutdown whatever the behaviour says.
    const terminate =
      inst.shutdownBehavior === 'terminate' || (inst.spotRequest !== undefined && inst.spotRequest.type === 'one-time');
    if (terminate) {
      setState(inst, 'shutting-down');
      later(shutdownDelayMs, () => setState(inst, 'terminated'));
    } else {
      setState(inst, 'stopping');
      later(shutdownDelayMs, () => setState(inst, 'stopped'));
    }
  }

  async function terminate(inst: Ec2Instance, reason: { code: string; message: string }): Promise<void> {
    if (inst.state === 'terminated' || inst.state === 'shutting-down') return;
    const wasStopped = inst.state === 'stopped';
    inst.stateReason = reason;
    inst.stateTransitionReason = `User initiated (${awsTime(new Date())})`;
    setState(inst, 'shutting-down');
    const killing = inst.machine?.kill();
    later(wasStopped ? 10 : shutdownDelayMs, () => {
      void (killing ?? Promise.resolve()).then(() => setState(inst, 'terminated'));
    });
  }

  // ----- actions -----

  type Ctx = { region: string; requestId: string };
  const handlers: Record<string, (p: Params, ctx: Ctx) => string | Promise<string>> = {
    RunInstances: runInstances,
    DescribeInstances: describeInstances,
    TerminateInstances: terminateInstances,
    DescribeImages: describeImages,
    DescribeInstanceTypes: describeInstanceTypes,
    GetConsoleOutput: getConsoleOutput,
  };

  function runInstances(p: Params, ctx: Ctx): string {
    const imageId = required(p, 'ImageId');
    const minCount = int(required(p, 'MinCount'), 'MinCount')!;
    const maxCount = int(required(p, 'MaxCount'), 'MaxCount')!;
    if (minCount < 1) throw new Ec2Error('InvalidParameterValue', `Invalid value '${minCount}' for minCount. Must be greater than 0`);
    if (maxCount < 1) throw new Ec2Error('InvalidParameterValue', `Invalid value '${maxCount}' for maxCount. Must be greater than 0`);
    if (minCount > maxCount) {
      throw new Ec2Error('InvalidParameterValue', `Invalid value '${maxCount}' for maxCount. Must be greater than or equal to minCount`);
    }

    const clientToken = str(p, 'ClientToken');
    const fingerprint = JSON.stringify(withoutKeys(p, ['Action', 'Version', 'ClientToken']));
    if (clientToken !== undefined) {
      if (clientToken.length > 64) throw new Ec2Error('InvalidParameterValue', 'The client token must be 64 characters or fewer');
      const prior = byToken.get(`${ctx.region}/${clientToken}`);
      if (prior) {
        if (prior.fingerprint !== fingerprint) {
          throw new Ec2Error(
            'IdempotentParameterMismatch',
            'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).',
          );
        }
        return reservationXml(prior.reservationId, prior.instanceIds.map((id) => byId.get(id)!));
      }
    }
    if (bool(str(p, 'DryRun'), 'DryRun')) {
      throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
    }

    if (!AMI_ID.test(imageId)) throw new Ec2Error('InvalidAMIID.Malformed', `Invalid id: "${imageId}" (expecting "ami-...")`);
    const image = IMAGES.find((i) => i.id === imageId);
    if (!image) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);

    // EC2's default when InstanceType is left out is m1.small, which the sandbox (like most regions) does not offer.
    const instanceType = str(p, 'InstanceType') ?? 'm1.small';
    const type = INSTANCE_TYPES[instanceType];
    if (!type) throw new Ec2Error('InvalidParameterValue', `Invalid value '${instanceType}' for InstanceType.`);
    if (type.arch !== image.arch) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `The architecture '${type.arch}' of the specified instance type does not match the architecture '${image.arch}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.`,
      );
    }

    const subnetId = str(p, 'SubnetId') ?? DEFAULT_SUBNET;
    const subnet = SUBNETS[subnetId];
    if (!subnet) throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${subnetId}' does not exist`);

    const groupIds = strList(p, 'SecurityGroupId');
    const groupNames = strList(p, 'SecurityGroup');
    if (groupNames.length > 0 && str(p, 'SubnetId') !== undefined) {
      throw new Ec2Error('InvalidParameterCombination', 'The parameter groupName cannot be used with the parameter subnet');
    }
    for (const g of groupIds) {
      if (!SECURITY_GROUPS[g]) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${g}' does not exist in VPC '${VPC_ID}'`);
    }
    for (const g of groupNames) {
      if (!Object.values(SECURITY_GROUPS).includes(g)) {
        throw new Ec2Error('InvalidGroup.NotFound', `The security group '${g}' does not exist in default VPC '${VPC_ID}'`);
      }
    }
    const securityGroups = [
      ...groupIds,
      ...groupNames.map((name) => Object.keys(SECURITY_GROUPS).find((id) => SECURITY_GROUPS[id] === name)!),
    ];
    if (securityGroups.length === 0) securityGroups.push('sg-0default');

    const profileSpec = sub(p, 'IamInstanceProfile');
    let iamInstanceProfile: { arn: string; id: string } | undefined;
    if (profileSpec) {
      const name = str(profileSpec, 'Name');
      const arn = str(profileSpec, 'Arn');
      if (name !== undefined) {
        iamInstanceProfile = INSTANCE_PROFILES[name];
        if (!iamInstanceProfile) {
          throw new Ec2Error('InvalidParameterValue', `Value (${name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name`);
        }
      }
      if (arn !== undefined) {
        const byArn = Object.values(INSTANCE_PROFILES).find((x) => x.arn === arn);
        if (!byArn || (iamInstanceProfile && iamInstanceProfile !== byArn)) {
          throw new Ec2Error('InvalidParameterValue', `Value (${arn}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN`);
        }
        iamInstanceProfile = byArn;
      }
    }

    const rawUserData = str(p, 'UserData');
    let userDataBytes = 0;
    let userData = '';
    if (rawUserData !== undefined && rawUserData !== '') {
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(rawUserData) || rawUserData.length % 4 !== 0) {
        throw new Ec2Error('InvalidParameterValue', 'Invalid BASE64 encoding of user data.');
      }
      const decoded = Buffer.from(rawUserData, 'base64');
      userDataBytes = decoded.length;
      if (decoded.length > USER_DATA_LIMIT) {
        throw new Ec2Error('InvalidParameterValue', `User data is limited to ${USER_DATA_LIMIT} bytes`);
      }
      userData = (decoded[0] === 0x1f && decoded[1] === 0x8b ? zlib.gunzipSync(decoded) : decoded).toString('utf8');
    }

    const shutdownBehavior = str(p, 'InstanceInitiatedShutdownBehavior') ?? 'stop';
    if (shutdownBehavior !== 'stop' && shutdownBehavior !== 'terminate') {
      throw new Ec2Error('InvalidParameterValue', `Invalid value '${shutdownBehavior}' for InstanceInitiatedShutdownBehavior`);
    }

    const meta = sub(p, 'MetadataOptions');
    const httpTokens = str(meta, 'HttpTokens') ?? (image.imdsSupport === 'v2.0' ? 'required' : 'optional');
    if (httpTokens !== 'optional' && httpTokens !== 'required') {
      throw new Ec2Error('InvalidParameterValue', `Invalid value '${httpTokens}' for HttpTokens. Valid values are optional, required.`);
    }
    const hopLimit = int(str(meta, 'HttpPutResponseHopLimit'), 'HttpPutResponseHopLimit') ?? (image.imdsSupport === 'v2.0' ? 2 : 1);
    if (hopLimit < 1 || hopLimit > 64) {
      throw new Ec2Error('InvalidParameterValue', `The HttpPutResponseHopLimit '${hopLimit}' is invalid. Specify a value from 1 to 64.`);
    }
    const httpEndpoint = str(meta, 'HttpEndpoint') ?? 'enabled';
    if (httpEndpoint !== 'enabled' && httpEndpoint !== 'disabled') {
      throw new Ec2Error('InvalidParameterValue', `Invalid value '${httpEndpoint}' for HttpEndpoint. Valid values are enabled, disabled.`);
    }

    // Block devices: the image's root, possibly resized, plus any extra volume asked for.
    type VolumePlan = Omit<Ec2Volume, 'id' | 'instanceId' | 'state' | 'tags' | 'attachTime'>;
    const plan: VolumePlan[] = [
      {
        deviceName: image.rootDeviceName,
        size: image.snapshotSizeGiB,
        volumeType: image.volumeType,
        deleteOnTermination: true,
        encrypted: false,
        snapshotId: image.snapshotId,
        root: true,
      },
    ];
    const seenDevices = new Set<string>();
    for (const m of structList(p, 'BlockDeviceMapping')) {
      const deviceName = str(m, 'DeviceName');
      if (!deviceName) throw new Ec2Error('MissingParameter', 'The request must contain the parameter BlockDeviceMapping.DeviceName');
      if (!/^(\/dev\/)?(sd[a-z]\d*|xvd[a-z]{1,2}\d*|nvme\d+n\d+)$/.test(deviceName)) {
        throw new Ec2Error('InvalidBlockDeviceMapping', `Invalid device name ${deviceName}`);
      }
      if (seenDevices.has(deviceName)) {
        throw new Ec2Error('InvalidBlockDeviceMapping', `The device '${deviceName}' is used in more than one block-device mapping`);
      }
      seenDevices.add(deviceName);
      const isRoot = deviceName === image.rootDeviceName;
      if (str(m, 'NoDevice') !== undefined) {
        if (isRoot) throw new Ec2Error('InvalidBlockDeviceMapping', `The device '${deviceName}' is the root device and cannot be suppressed`);
        continue;
      }
      if (str(m, 'VirtualName') !== undefined) continue; // instance store: not a billed EBS volume
      const ebs = sub(m, 'Ebs');
      if (!ebs) continue;
      const size = int(str(ebs, 'VolumeSize'), 'VolumeSize');
      const volumeType = str(ebs, 'VolumeType') ?? (isRoot ? image.volumeType : 'gp2');
      const limits = VOLUME_TYPES[volumeType];
      if (!limits) {
        throw new Ec2Error('InvalidParameterValue', `Value (${volumeType}) for parameter volumeType is invalid. Valid values: standard, io1, io2, gp2, sc1, st1, gp3.`);
      }
      const deleteOnTermination = bool(str(ebs, 'DeleteOnTermination'), 'DeleteOnTermination') ?? true;
      const encrypted = bool(str(ebs, 'Encrypted'), 'Encrypted') ?? false;
      const snapshotId = str(ebs, 'SnapshotId') ?? (isRoot ? image.snapshotId : undefined);
      const snapshotSize = isRoot ? image.snapshotSizeGiB : undefined;
      if (snapshotId !== undefined && !isRoot) {
        throw new Ec2Error('InvalidSnapshot.NotFound', `The snapshot '${snapshotId}' does not exist.`);
      }
      if (size === undefined && snapshotId === undefined) {
        throw new Ec2Error('InvalidBlockDeviceMapping', `Either snapshot ID or volume size must be provided for: ${deviceName}`);
      }
      const finalSize = size ?? snapshotSize!;
      if (snapshotSize !== undefined && finalSize < snapshotSize) {
        throw new Ec2Error(
          'InvalidBlockDeviceMapping',
          `Volume of size ${finalSize}GB is smaller than snapshot '${snapshotId}', expect size >= ${snapshotSize}GB`,
        );
      }
      if (finalSize < limits[0] || finalSize > limits[1]) {
        throw new Ec2Error(
          'InvalidParameterValue',
          `Volume of ${finalSize}GiB is outside the range allowed for volume type ${volumeType}: ${limits[0]}-${limits[1]}GiB.`,
        );
      }
      const entry: VolumePlan = { deviceName, size: finalSize, volumeType, deleteOnTermination, encrypted, root: isRoot, ...(snapshotId ? { snapshotId } : {}) };
      if (isRoot) plan[0] = entry;
      else plan.push(entry);
    }

    // Market options.
    const market = sub(p, 'InstanceMarketOptions');
    let spotPlan: Omit<SpotRequest, 'id' | 'instanceId' | 'state' | 'tags'> | undefined;
    let spotOptions: Ec2Instance['spotOptions'];
    if (market) {
      const marketType = str(market, 'MarketType');
      if (marketType !== 'spot') {
        throw new Ec2Error('InvalidParameterValue', `Invalid value '${marketType ?? ''}' for MarketType. Valid values: spot`);
      }
      const so = sub(market, 'SpotOptions');
      const spotType = str(so, 'SpotInstanceType') ?? 'one-time';
      if (spotType !== 'one-time' && spotType !== 'persistent') {
        throw new Ec2Error('InvalidParameterValue', `Invalid value '${spotType}' for SpotInstanceType. Valid values: one-time, persistent`);
      }
      const behavior = str(so, 'InstanceInterruptionBehavior') ?? 'terminate';
      if (behavior !== 'terminate' && behavior !== 'stop' && behavior !== 'hibernate') {
        throw new Ec2Error('InvalidParameterValue', `Invalid value '${behavior}' for InstanceInterruptionBehavior. Valid values: hibernate, stop, terminate`);
      }
      if (spotType === 'one-time' && behavior !== 'terminate') {
        throw new Ec2Error(
          'InvalidParameterCombination',
          `The instance interruption behavior '${behavior}' is supported only for persistent Spot Instance requests.`,
        );
      }
      const maxPriceRaw = str(so, 'MaxPrice');
      let maxPrice: number | undefined;
      if (maxPriceRaw !== undefined) {
        maxPrice = Number(maxPriceRaw);
        if (maxPriceRaw.trim() === '' || !Number.isFinite(maxPrice) || maxPrice <= 0) {
          throw new Ec2Error('InvalidParameterValue', `The value '${maxPriceRaw}' is invalid for parameter MaxPrice`);
        }
        const current = spotPrice(instanceType);
        if (maxPrice < current) {
          throw new Ec2Error(
            'SpotMaxPriceTooLow',
            `Your Spot request price of ${maxPriceRaw} is lower than the minimum required Spot request fulfillment price of ${current}.`,
          );
        }
      }
      spotPlan = { type: spotType, interruptionBehavior: behavior, ...(maxPrice !== undefined ? { maxPrice } : {}) };
      spotOptions = { spotInstanceType: spotType, instanceInterruptionBehavior: behavior, ...(maxPriceRaw !== undefined ? { maxPrice: maxPriceRaw } : {}) };
    }

    // Tags.
    const tagsFor: Record<string, Record<string, string>> = {};
    for (const spec of structList(p, 'TagSpecification')) {
      const resourceType = str(spec, 'ResourceType');
      if (!resourceType) throw new Ec2Error('InvalidParameterValue', 'Tag specification resource type must have a value');
      if (!TAGGABLE.has(resourceType)) {
        throw new Ec2Error('InvalidParameterValue', `'${resourceType}' is not a valid taggable resource type for this operation.`);
      }
      if (resourceType === 'spot-instances-request' && !spotPlan) {
        throw new Ec2Error('InvalidParameterValue', "'spot-instances-request' is not a valid taggable resource type for this operation.");
      }
      if (tagsFor[resourceType]) {
        throw new Ec2Error('InvalidParameterValue', `The resource type '${resourceType}' is specified in more than one tag specification.`);
      }
      const tags: Record<string, string> = {};
      for (const tag of structList(spec, 'Tag')) {
        const key = str(tag, 'Key');
        const value = str(tag, 'Value') ?? '';
        if (key === undefined || key === '') throw new Ec2Error('InvalidParameterValue', 'Tag key must have a value');
        if (key.length > 128) throw new Ec2Error('InvalidParameterValue', `Tag key exceeds the maximum length of 128 characters`);
        if (value.length > 256) throw new Ec2Error('InvalidParameterValue', `Tag value exceeds the maximum length of 256 characters`);
        if (key.toLowerCase().startsWith('aws:')) {
          throw new Ec2Error('InvalidParameterValue', "Tag keys starting with 'aws:' are reserved for internal use");
        }
        if (key in tags) throw new Ec2Error('InvalidParameterValue', `Duplicate tag key '${key}' specified.`);
        tags[key] = value;
      }
      if (Object.keys(tags).length > 50) throw new Ec2Error('TagLimitExceeded', 'The maximum number of tags for a resource is 50.');
      tagsFor[resourceType] = tags;
    }

    // Create.
    const reservationId = newId('r');
    const created: Ec2Instance[] = [];
    const az = `${ctx.region}${subnet.azSuffix}`;
    for (let i = 0; i < maxCount; i++) {
      const id = newId('i');
      const now = new Date();
      const volumes: Ec2Volume[] = plan.map((v) => ({
        ...v,
        id: newId('vol'),
        instanceId: id,
        state: 'in-use' as const,
        tags: { ...(tagsFor.volume ?? {}) },
        attachTime: now,
      }));
      const networkInterface = {
        id: newId('eni'),
        macAddress: `0a:${hex(2)}:${hex(2)}:${hex(2)}:${hex(2)}:${hex(2)}`,
        tags: { ...(tagsFor['network-interface'] ?? {}) },
      };
      const inst: Ec2Instance = {
        id,
        reservationId,
        amiLaunchIndex: i,
        region: ctx.region,
        imageId,
        instanceType,
        type: instanceType,
        architecture: type.arch,
        state: 'pending',
        stateTransitionReason: '',
        launchTime: now,
        subnetId,
        availabilityZone: az,
        privateIp: `${subnet.cidrPrefix}.${10 + ((all.length + i) % 240)}`,
        securityGroups,
        tags: { ...(tagsFor.instance ?? {}) },
        market: spotPlan ? 'spot' : 'on-demand',
        spot: spotPlan !== undefined,
        ...(spotPlan
          ? {
              spotRequest: { ...spotPlan, id: `sir-${hex(8)}`, instanceId: id, state: 'active' as const, tags: { ...(tagsFor['spot-instances-request'] ?? {}) } },
              spotOptions: spotOptions!,
            }
          : {}),
        userData,
        userDataBytes,
        shutdownBehavior,
        metadataOptions: { httpTokens, httpPutResponseHopLimit: hopLimit, httpEndpoint },
        ...(iamInstanceProfile ? { iamInstanceProfile } : {}),
        volumes,
        blockDevices: volumes,
        networkInterface,
        networkInterfaceTags: networkInterface.tags,
        ...(clientToken !== undefined ? { clientToken } : {}),
        rootDeviceName: image.rootDeviceName,
        get name(): string | undefined {
          return this.tags.Name;
        },
        console(): string {
          return this.machine ? this.machine.console() : '';
        },
      };
      all.push(inst);
      byId.set(id, inst);
      created.push(inst);
      later(bootDelayMs, () => boot(inst));
    }
    if (clientToken !== undefined) {
      byToken.set(`${ctx.region}/${clientToken}`, { fingerprint, reservationId, instanceIds: created.map((i) => i.id) });
    }
    return reservationXml(reservationId, created);
  }

  function reservationXml(reservationId: string, insts: Ec2Instance[]): string {
    return (
      t('reservationId', reservationId) +
      t('ownerId', ACCOUNT_ID) +
      items('groupSet', [], () => '') +
      items('instancesSet', insts, instanceXml)
    );
  }

  function visible(inst: Ec2Instance, region: string): boolean {
    if (inst.region !== region) return false;
    return !(inst.state === 'terminated' && inst.terminatedAt && Date.now() - inst.terminatedAt.getTime() > terminatedVisibleMs);
  }

  function findInstances(ids: string[], region: string): Ec2Instance[] {
    for (const id of ids) {
      if (!INSTANCE_ID.test(id)) throw new Ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${id}" (expecting "i-...")`);
    }
    const missing = ids.filter((id) => {
      const inst = byId.get(id);
      return !inst || !visible(inst, region);
    });
    if (missing.length === 1) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${missing[0]}' does not exist`);
    if (missing.length > 1) throw new Ec2Error('InvalidInstanceID.NotFound', `The instance IDs '${missing.join(', ')}' do not exist`);
    return [...new Set(ids)].map((id) => byId.get(id)!);
  }

  const INSTANCE_FILTERS: Record<string, (i: Ec2Instance, values: string[]) => boolean> = {
    'instance-id': (i, v) => anyMatch(v, i.id),
    'instance-state-name': (i, v) => anyMatch(v, i.state),
    'instance-state-code': (i, v) => anyMatch(v, String(STATE_CODES[i.state])),
    'instance-type': (i, v) => anyMatch(v, i.instanceType),
    'image-id': (i, v) => anyMatch(v, i.imageId),
    'client-token': (i, v) => anyMatch(v, i.clientToken),
    'reservation-id': (i, v) => anyMatch(v, i.reservationId),
    'subnet-id': (i, v) => anyMatch(v, i.subnetId),
    'vpc-id': (i, v) => anyMatch(v, VPC_ID),
    'availability-zone': (i, v) => anyMatch(v, i.availabilityZone),
    'instance-lifecycle': (i, v) => anyMatch(v, i.market === 'spot' ? 'spot' : undefined),
    'tag-key': (i, v) => Object.keys(i.tags).some((k) => anyMatch(v, k)),
    'tag-value': (i, v) => Object.values(i.tags).some((x) => anyMatch(v, x)),
  };

  function describeInstances(p: Params, ctx: Ctx): string {
    const ids = strList(p, 'InstanceId');
    const maxResults = int(str(p, 'MaxResults'), 'MaxResults');
    if (maxResults !== undefined && ids.length > 0) {
      throw new Ec2Error('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
    }
    if (maxResults !== undefined && (maxResults < 5 || maxResults > 1000)) {
      throw new Ec2Error('InvalidParameterValue', `Value ( ${maxResults} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`);
    }
    let found = ids.length > 0 ? findInstances(ids, ctx.region) : all.filter((i) => visible(i, ctx.region));
    for (const f of structList(p, 'Filter')) {
      const name = str(f, 'Name') ?? '';
      const values = strList(f, 'Value');
      let test = INSTANCE_FILTERS[name];
      if (name.startsWith('tag:')) {
        const key = name.slice(4);
        test = (i, v) => anyMatch(v, i.tags[key]);
      }
      if (!test) throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
      found = found.filter((i) => test(i, values));
    }
    const start = Number(str(p, 'NextToken') ?? '0');
    if (!Number.isInteger(start) || start < 0) throw new Ec2Error('InvalidParameterValue', 'The token is invalid');
    const page = maxResults === undefined ? found.slice(start) : found.slice(start, start + maxResults);
    const next = maxResults !== undefined && start + maxResults < found.length ? String(start + maxResults) : undefined;
    const reservations: Array<{ id: string; insts: Ec2Instance[] }> = [];
    for (const i of page) {
      const r = reservations.find((x) => x.id === i.reservationId);
      if (r) r.insts.push(i);
      else reservations.push({ id: i.reservationId, insts: [i] });
    }
    return items('reservationSet', reservations, (r) => reservationXml(r.id, r.insts)) + t('nextToken', next);
  }

  async function terminateInstances(p: Params, ctx: Ctx): Promise<string> {
    const ids = strList(p, 'InstanceId');
    if (ids.length === 0) throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceId');
    const insts = findInstances(ids, ctx.region);
    if (bool(str(p, 'DryRun'), 'DryRun')) throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
    const changes = insts.map((inst) => {
      const previous = inst.state;
      void terminate(inst, { code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown' });
      return { inst, previous };
    });
    return items('instancesSet', changes, ({ inst, previous }) =>
      t('instanceId', inst.id) +
      n('currentState', t('code', STATE_CODES[inst.state]) + t('name', inst.state)) +
      n('previousState', t('code', STATE_CODES[previous]) + t('name', previous)),
    );
  }

  function getConsoleOutput(p: Params, ctx: Ctx): string {
    const id = required(p, 'InstanceId');
    const [inst] = findInstances([id], ctx.region);
    const bytes = inst!.machine?.consoleBytes() ?? Buffer.alloc(0);
    const tail = bytes.subarray(Math.max(0, bytes.length - 64 * 1024));
    return (
      t('instanceId', inst!.id) +
      t('timestamp', new Date().toISOString()) +
      (tail.length > 0 ? t('output', tail.toString('base64')) : '')
    );
  }

  const IMAGE_FILTERS: Record<string, (i: ImageSpec, v: string[]) => boolean> = {
    name: (i, v) => anyMatch(v, i.name),
    'image-id': (i, v) => anyMatch(v, i.id),
    architecture: (i, v) => anyMatch(v, i.arch),
    state: (i, v) => anyMatch(v, 'available'),
    'owner-id': (i, v) => anyMatch(v, i.ownerId),
    'owner-alias': (i, v) => anyMatch(v, i.ownerAlias),
    'root-device-type': (i, v) => anyMatch(v, 'ebs'),
    'root-device-name': (i, v) => anyMatch(v, i.rootDeviceName),
    'virtualization-type': (i, v) => anyMatch(v, 'hvm'),
    'image-type': (i, v) => anyMatch(v, 'machine'),
    'is-public': (i, v) => anyMatch(v, 'true'),
  };

  function describeImages(p: Params): string {
    const ids = strList(p, 'ImageId');
    const owners = strList(p, 'Owner');
    for (const id of ids) {
      if (!AMI_ID.test(id)) throw new Ec2Error('InvalidAMIID.Malformed', `Invalid id: "${id}" (expecting "ami-...")`);
    }
    const missing = ids.filter((id) => !IMAGES.some((i) => i.id === id));
    if (missing.length > 0) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${missing.join(', ')}]' does not exist`);
    let found = ids.length > 0 ? IMAGES.filter((i) => ids.includes(i.id)) : [...IMAGES];
    if (owners.length > 0) {
      found = found.filter((i) => owners.some((o) => o === i.ownerId || (o === 'amazon' && i.ownerAlias === 'amazon')));
    }
    for (const f of structList(p, 'Filter')) {
      const name = str(f, 'Name') ?? '';
      const test = IMAGE_FILTERS[name];
      if (!test) throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
      const values = strList(f, 'Value');
      found = found.filter((i) => test(i, values));
    }
    return items('imagesSet', found, (i) =>
      t('imageId', i.id) +
      t('imageLocation', `${i.ownerAlias ?? i.ownerId}/${i.name}`) +
      t('imageState', 'available') +
      t('imageOwnerId', i.ownerId) +
      t('creationDate', i.creationDate) +
      t('isPublic', true) +
      t('architecture', i.arch) +
      t('imageType', 'machine') +
      t('name', i.name) +
      t('description', i.description) +
      t('imageOwnerAlias', i.ownerAlias) +
      t('rootDeviceType', 'ebs') +
      t('rootDeviceName', i.rootDeviceName) +
      items('blockDeviceMapping', [i], (x) =>
        t('deviceName', x.rootDeviceName) +
        n(
          'ebs',
          t('snapshotId', x.snapshotId) + t('volumeSize', x.snapshotSizeGiB) + t('deleteOnTermination', true) + t('volumeType', x.volumeType) + t('encrypted', false),
        ),
      ) +
      t('virtualizationType', 'hvm') +
      t('hypervisor', 'xen') +
      t('enaSupport', true) +
      t('sriovNetSupport', 'simple') +
      t('platformDetails', 'Linux/UNIX') +
      t('usageOperation', 'RunInstances') +
      t('bootMode', i.arch === 'arm64' ? 'uefi' : 'uefi-preferred') +
      t('imdsSupport', i.imdsSupport),
    );
  }

  function describeInstanceTypes(p: Params): string {
    const names = strList(p, 'InstanceType');
    const unknown = names.filter((x) => !INSTANCE_TYPES[x]);
    if (unknown.length > 0) {
      throw new Ec2Error('InvalidInstanceType', `The following supplied instance types do not exist: [${unknown.join(', ')}]`);
    }
    let found = names.length > 0 ? names.map((x) => INSTANCE_TYPES[x]!) : Object.values(INSTANCE_TYPES);
    for (const f of structList(p, 'Filter')) {
      const name = str(f, 'Name') ?? '';
      const values = strList(f, 'Value');
      if (name === 'processor-info.supported-architecture') found = found.filter((x) => anyMatch(values, x.arch));
      else if (name === 'instance-type') found = found.filter((x) => anyMatch(values, x.name));
      else throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
    }
    return items('instanceTypeSet', found, (x) =>
      t('instanceType', x.name) +
      t('currentGeneration', true) +
      t('freeTierEligible', x.name === 't3.micro') +
      items('supportedUsageClasses', ['on-demand', 'spot'], (u) => esc(u)) +
      items('supportedRootDeviceTypes', ['ebs'], (u) => esc(u)) +
      items('supportedVirtualizationTypes', ['hvm'], (u) => esc(u)) +
      t('bareMetal', x.name.endsWith('.metal')) +
      t('hypervisor', x.name.endsWith('.metal') ? undefined : 'nitro') +
      n(
        'processorInfo',
        items('supportedArchitectures', [x.arch], (a) => esc(a)) + t('manufacturer', x.arch === 'arm64' ? 'AWS' : 'Intel'),
      ) +
      n('vCpuInfo', t('defaultVCpus', x.vcpus) + t('defaultCores', Math.max(1, x.vcpus / 2)) + t('defaultThreadsPerCore', x.vcpus > 1 ? 2 : 1)) +
      n('memoryInfo', t('sizeInMiB', x.memoryMiB)) +
      t('instanceStorageSupported', false) +
      (x.gpu
        ? n(
            'gpuInfo',
            items('gpus', [x.gpu], (g) =>
              t('name', g.name) + t('manufacturer', g.manufacturer) + t('count', g.count) + n('memoryInfo', t('sizeInMiB', g.memoryMiB)),
            ) + t('totalGpuMemoryInMiB', x.gpu.count * x.gpu.memoryMiB),
          )
        : '') +
      t('hibernationSupported', false) +
      t('burstablePerformanceSupported', x.name.startsWith('t')) +
      t('dedicatedHostsSupported', true) +
      t('autoRecoverySupported', true),
    );
  }

  // ----- instance XML -----

  function instanceXml(i: Ec2Instance): string {
    const gone = i.state === 'terminated';
    const groups = i.securityGroups.map((id) => ({ id, name: SECURITY_GROUPS[id] ?? id }));
    const groupXml = (name: string) => items(name, gone ? [] : groups, (g) => t('groupId', g.id) + t('groupName', g.name));
    const attached = i.blockDevices.filter((v) => v.state === 'in-use');
    return (
      t('instanceId', i.id) +
      t('imageId', i.imageId) +
      n('instanceState', t('code', STATE_CODES[i.state]) + t('name', i.state)) +
      t('privateDnsName', gone ? '' : `ip-${i.privateIp.replace(/\./g, '-')}.ec2.internal`) +
      t('dnsName', '') +
      t('reason', i.stateTransitionReason) +
      t('amiLaunchIndex', i.amiLaunchIndex) +
      items('productCodes', [], () => '') +
      t('instanceType', i.instanceType) +
      t('launchTime', i.launchTime.toISOString()) +
      n('placement', t('availabilityZone', i.availabilityZone) + t('groupName', '') + t('tenancy', 'default')) +
      n('monitoring', t('state', 'disabled')) +
      (gone ? '' : t('subnetId', i.subnetId) + t('vpcId', VPC_ID) + t('privateIpAddress', i.privateIp)) +
      t('sourceDestCheck', true) +
      groupXml('groupSet') +
      (i.stateReason ? n('stateReason', t('code', i.stateReason.code) + t('message', i.stateReason.message)) : '') +
      t('architecture', i.architecture) +
      t('rootDeviceType', 'ebs') +
      t('rootDeviceName', i.rootDeviceName) +
      items('blockDeviceMapping', attached, (v) =>
        t('deviceName', v.deviceName) +
        n(
          'ebs',
          t('volumeId', v.id) + t('status', 'attached') + t('attachTime', v.attachTime.toISOString()) + t('deleteOnTermination', v.deleteOnTermination),
        ),
      ) +
      t('virtualizationType', 'hvm') +
      t('clientToken', i.clientToken ?? '') +
      items('tagSet', Object.entries(i.tags), ([k, v]) => t('key', k) + t('value', v)) +
      t('hypervisor', 'xen') +
      items('networkInterfaceSet', gone ? [] : [i.networkInterface], (e) =>
        t('networkInterfaceId', e.id) +
        t('subnetId', i.subnetId) +
        t('vpcId', VPC_ID) +
        t('description', '') +
        t('ownerId', ACCOUNT_ID) +
        t('status', 'in-use') +
        t('macAddress', e.macAddress) +
        t('privateIpAddress', i.privateIp) +
        t('sourceDestCheck', true) +
        groupXml('groupSet') +
        n(
          'attachment',
          t('attachmentId', `eni-attach-${e.id.slice(4)}`) + t('deviceIndex', 0) + t('status', 'attached') + t('attachTime', i.launchTime.toISOString()) + t('deleteOnTermination', true),
        ) +
        t('interfaceType', 'interface'),
      ) +
      (i.iamInstanceProfile ? n('iamInstanceProfile', t('arn', i.iamInstanceProfile.arn) + t('id', i.iamInstanceProfile.id)) : '') +
      t('ebsOptimized', false) +
      t('enaSupport', true) +
      (i.spotRequest ? t('instanceLifecycle', 'spot') + t('spotInstanceRequestId', i.spotRequest.id) : '') +
      n(
        'metadataOptions',
        t('state', i.state === 'pending' ? 'pending' : 'applied') +
          t('httpTokens', i.metadataOptions.httpTokens) +
          t('httpPutResponseHopLimit', i.metadataOptions.httpPutResponseHopLimit) +
          t('httpEndpoint', i.metadataOptions.httpEndpoint) +
          t('httpProtocolIpv6', 'disabled') +
          t('instanceMetadataTags', 'disabled'),
      ) +
      t('platformDetails', 'Linux/UNIX') +
      t('usageOperation', 'RunInstances') +
      t('bootMode', i.architecture === 'arm64' ? 'uefi' : 'legacy-bios') +
      t('currentInstanceBootMode', i.architecture === 'arm64' ? 'uefi' : 'legacy-bios')
    );
  }

  // ----- instance metadata (IMDS) -----
  //
  // As the EC2 User Guide describes it ("Use the Instance Metadata Service to access instance
  // metadata", "Responses and error messages"): `PUT /latest/api/token` with a TTL header gives a
  // session token valid on that instance only; GET and HEAD read metadata as text/plain, with the
  // token when HttpTokens is required (401 otherwise, or with a bad or expired token); 400 for a
  // PUT that is not valid, 403 when the request is not allowed or the endpoint is disabled,
  // 404 for what does not exist (such as spot/instance-action before a notice).

  const imdsTokens = new Map<string, { instanceId: string; expiresAt: number }>();

  function answerImds(req: http.IncomingMessage, res: http.ServerResponse, instanceId: string, path: string): void {
    const inst = byId.get(instanceId);
    // Only a running instance can reach its metadata service; for anything else nothing answers.
    if (!inst || inst.state !== 'running') {
      res.destroy();
      return;
    }
    const method = req.method ?? 'GET';
    const fail = (status: number, headers: Record<string, string> = {}): void => {
      const title = `${status} - ${IMDS_REASONS[status] ?? 'Error'}`;
      res.writeHead(status, { 'content-type': 'text/html', ...headers });
      res.end(
        `<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n` +
          `<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  <title>${title}</title>\n </head>\n <body>\n  <h1>${title}</h1>\n </body>\n</html>\n`,
      );
    };
    if (inst.metadataOptions.httpEndpoint === 'disabled') return fail(403);

    if (method === 'PUT') {
      // Tokens come only from /latest/api/token; a version path (/2021-03-23/api/token) is 403.
      if (path !== '/latest/api/token' || header(req, 'x-forwarded-for') !== undefined) return fail(403);
      const raw = header(req, 'x-aws-ec2-metadata-token-ttl-seconds') ?? '';
      const ttl = /^\d{1,6}$/.test(raw) ? Number(raw) : 0;
      if (ttl < 1 || ttl > IMDS_MAX_TTL_SECONDS) return fail(400);
      const token = crypto.randomBytes(42).toString('base64');
      imdsTokens.set(token, { instanceId: inst.id, expiresAt: Date.now() + ttl * 1000 });
      res.writeHead(200, { 'content-type': 'text/plain', 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
      res.end(token);
      return;
    }
    if (path === '/latest/api/token') return fail(405, { allow: 'PUT' });
    if (method !== 'GET' && method !== 'HEAD') return fail(405, { allow: 'GET, HEAD' });

    // A token header makes it an IMDSv2 request, checked even when tokens are optional.
    const token = header(req, 'x-aws-ec2-metadata-token');
    if (token !== undefined || inst.metadataOptions.httpTokens === 'required') {
      const session = token === undefined ? undefined : imdsTokens.get(token);
      if (!session || session.instanceId !== inst.id || session.expiresAt <= Date.now()) return fail(401);
    }

    const found = metadataAt(inst, path);
    if (found === undefined) return fail(404);
    res.writeHead(200, { 'content-type': found.type });
    res.end(method === 'HEAD' ? undefined : found.body);
  }

  /** The metadata item or listing at a path (a listing names folders with a trailing slash). */
  function metadataAt(inst: Ec2Instance, path: string): { body: string; type: string } | undefined {
    if (path === '/latest/user-data') {
      return inst.userData ? { body: inst.userData, type: 'application/octet-stream' } : undefined;
    }
    type Tree = { [name: string]: string | Tree };
    const hostname = `ip-${inst.privateIp.replace(/\./g, '-')}.ec2.internal`;
    const notice = inst.spotNotice;
    const time = notice ? `${notice.time.toISOString().slice(0, 19)}Z` : '';
    const metadata: Tree = {
      'ami-id': inst.imageId,
      'ami-launch-index': String(inst.amiLaunchIndex),
      hostname,
      'instance-id': inst.id,
      'instance-life-cycle': inst.spotRequest ? 'spot' : 'on-demand',
      'instance-type': inst.instanceType,
      'local-hostname': hostname,
      'local-ipv4': inst.privateIp,
      mac: inst.networkInterface.macAddress,
      placement: { 'availability-zone': inst.availabilityZone, region: inst.region },
      'reservation-id': inst.reservationId,
      'security-groups': inst.securityGroups.map((id) => SECURITY_GROUPS[id] ?? id).join('\n'),
      // Present only once the instance is marked for interruption; termination-time only for terminate.
      ...(notice
        ? {
            spot: {
              'instance-action': `{"action": "${notice.action}", "time": "${time}"}`,
              ...(notice.action === 'terminate' ? { 'termination-time': time } : {}),
            },
          }
        : {}),
    };
    const root: Tree = { latest: { 'meta-data': metadata, ...(inst.userData ? { 'user-data': inst.userData } : {}) } };
    let node: string | Tree = root;
    for (const part of path.split('/').filter(Boolean)) {
      if (typeof node === 'string') return undefined;
      const next: string | Tree | undefined = node[part];
      if (next === undefined) return undefined;
      node = next;
    }
    if (typeof node === 'string') return path.endsWith('/') ? undefined : { body: node, type: 'text/plain' };
    return { body: Object.entries(node).map(([k, v]) => (typeof v === 'string' ? k : `${k}/`)).join('\n'), type: 'text/plain' };
  }

  // ----- HTTP -----

  const server = await serve('ec2', async (req, body, res) => {
    const imds = IMDS_PATH.exec(req.url ?? '');
    if (imds) {
      answerImds(req, res, decodeURIComponent(imds[1]!), imds[2] || '/');
      return;
    }
    const started = Date.now();
    const requestId = crypto.randomUUID();
    const form = new URLSearchParams(body.toString('utf8'));
    const q = (req.url ?? '').indexOf('?');
    if (q >= 0) for (const [k, v] of new URLSearchParams((req.url ?? '').slice(q + 1))) form.append(k, v);
    const action = form.get('Action') ?? '';
    const respond = (status: number, xml: string, code?: string, headers: Record<string, string> = {}): void => {
      calls.push({ action, status, ...(code ? { code } : {}), at: started, ms: Date.now() - started });
      res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId, ...headers });
      res.end(xml);
    };
    const fail = (e: Ec2Error, headers?: Record<string, string>): void => respond(e.status, errorXml(e.code, e.message, requestId), e.code, headers);

    if (opts.latencyMs) await sleep(opts.latencyMs);

    const auth = verifySigV4(req, body, { service: 'ec2', ...creds });
    if (!auth.ok) {
      const map: Record<SigV4Failure, Ec2Error> = {
        missing: new Ec2Error('MissingAuthenticationToken', 'The request must contain either a valid (registered) AWS access key ID or X.509 certificate.', 401),
        incomplete: new Ec2Error('IncompleteSignature', auth.detail, 400),
        'unknown-key': new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials', 401),
        'wrong-service': new Ec2Error('SignatureDoesNotMatch', auth.detail, 403),
        'bad-signature': new Ec2Error(
          'SignatureDoesNotMatch',
          'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
          403,
        ),
      };
      fail(map[auth.failure]);
      return;
    }
    if (!action) {
      fail(new Ec2Error('MissingAction', 'The request must contain the parameter Action'));
      return;
    }
    const handler = handlers[action];
    if (!handler) {
      fail(new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`));
      return;
    }
    if (form.get('Version') !== '2016-11-15') {
      fail(new Ec2Error('InvalidParameterValue', `Invalid value '${form.get('Version') ?? ''}' for Version.`));
      return;
    }

    const fault = opts.faults.take('ec2', action);
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (applyReset(fault, res)) return;
    if (fault?.code) {
      const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {};
      fail(new Ec2Error(fault.code, fault.message ?? FAULT_MESSAGE[fault.code] ?? `Injected fault ${fault.code}`, faultStatus(fault)), headers);
      return;
    }

    try {
      const inner = await handler(nest(form), { region: auth.region, requestId });
      respond(
        200,
        `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NS}">${t('requestId', requestId)}${inner}</${action}Response>`,
      );
    } catch (err) {
      if (err instanceof Ec2Error) fail(err);
      else throw err;
    }
  });

  async function interruptSpot(instanceId: string, how: { noticeMs?: number } = {}): Promise<void> {
    const inst = byId.get(instanceId);
    if (!inst || !inst.spotRequest) throw new Error(`${instanceId} is not a spot instance`);
    if (inst.state !== 'running' && inst.state !== 'pending') return;
    const noticeMs = how.noticeMs ?? 0;
    // The notice names the action and when it happens, to the second (the docs' example:
    // {"action": "terminate", "time": "2017-09-18T08:22:00Z"}).
    inst.spotNotice = { action: inst.spotRequest.interruptionBehavior, time: new Date(Date.now() + noticeMs) };
    if (noticeMs > 0) await sleep(noticeMs);
    // The instance may have ended itself during the notice, or the sandbox closed.
    if (closed || (inst.state !== 'running' && inst.state !== 'pending')) return;
    const reason = { code: 'Server.SpotInstanceTermination', message: 'Server.SpotInstanceTermination: Spot instance termination' };
    if (inst.spotRequest.interruptionBehavior === 'terminate') {
      await terminate(inst, reason);
    } else {
      inst.stateReason = { code: 'Server.SpotInstanceShutdown', message: 'Server.SpotInstanceShutdown: Spot instance shutdown' };
      setState(inst, 'stopping');
      await inst.machine?.kill();
      later(shutdownDelayMs, () => setState(inst, 'stopped'));
    }
  }

  function leftovers(): string[] {
    const lines: string[] = [];
    for (const i of all) {
      const tags = Object.entries(i.tags)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      if (i.state !== 'terminated') {
        lines.push(
          `EC2 instance ${i.id} (${i.instanceType}, ${i.market}, ${i.region}) is ${i.state}${i.state === 'stopped' ? ' (its volumes are still billed)' : ''}${tags ? `; tags ${tags}` : ''}`,
        );
      }
      for (const v of i.blockDevices) {
        if (v.state === 'available') {
          lines.push(`EBS volume ${v.id} (${v.size} GiB ${v.volumeType}, ${v.deviceName} of ${i.id}) was left after termination: DeleteOnTermination was false`);
        }
      }
      const sr = i.spotRequest;
      if (sr && (sr.state === 'open' || sr.state === 'disabled' || (sr.state === 'active' && i.state === 'terminated'))) {
        lines.push(`Spot request ${sr.id} (${sr.type}, for ${i.id}) is still ${sr.state} and will launch again`);
      }
    }
    return lines;
  }

  return {
    url: server.url,
    calls,
    instances: () => [...all],
    instance: (id) => byId.get(id),
    images: KNOWN_IMAGES,
    consoleOf: (id) => byId.get(id)?.console() ?? '',
    volumes: () => all.flatMap((i) => i.blockDevices),
    spotRequests: () => all.flatMap((i) => (i.spotRequest ? [i.spotRequest] : [])),
    spotPrice,
    setSpotPrice: (type, price) => {
      spotPrices.set(type, price);
    },
    interruptSpot,
    leftovers,
    close: async () => {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await server.close();
      if (ownsMachines) await machines.killAll();
      else await Promise.all(all.map((i) => i.machine?.kill()));
    },
  };
}

function withoutKeys(p: Params, keys: string[]): Params {
  const out: Params = {};
  for (const k of Object.keys(p).sort()) if (!keys.includes(k)) out[k] = p[k]!;
  return out;
}

/** `2025-10-01 12:00:00 GMT`, as in EC2's state transition reasons. */
function awsTime(d: Date): string {
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} GMT`;
}
