import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import zlib from 'node:zlib';
import {
  DescribeImagesCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeKeyPairsCommand,
  EC2Client,
  GetConsoleOutputCommand,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  type _InstanceType,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { type FakeEc2, INSTANCE_TYPES, KNOWN_IMAGES, SANDBOX_ADMIN_CREDENTIALS, startFakeEc2 } from '../sandbox/ec2.js';
import { FaultPlan } from '../sandbox/core/index.js';
import { MachineFleet, bootMachine } from '../sandbox/machine.js';
import { type FakeSsm, PUBLIC_PARAMETERS, startFakeSsm } from '../sandbox/ssm.js';
import { unfiredFaults } from './support/sandbox.js';

/**
 * The fake EC2 and SSM, driven by the real SDK clients, and the machines they boot. Every test
 * ends with nothing left behind and every server closed.
 */

let faults: FaultPlan;
let fleet: MachineFleet;
let fake: FakeEc2;
let fakeSsm: FakeSsm;
let ec2: EC2Client;
let ssm: SSMClient;

// The API's behaviour is tested as the account's administrator would see it; IAM on the launching
// identity (SANDBOX_CREDENTIALS, held to the documented policy) has its own suite, aws-permissions.
const credentials = { ...SANDBOX_ADMIN_CREDENTIALS };
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function start(opts: { latencyMs?: number; minuteMs?: number } = {}): Promise<void> {
  faults = new FaultPlan();
  fleet = new MachineFleet({ minuteMs: opts.minuteMs ?? 60_000 });
  fake = await startFakeEc2({
    faults,
    machines: fleet,
    bootDelayMs: 20,
    shutdownDelayMs: 20,
    ...(opts.latencyMs ? { latencyMs: opts.latencyMs } : {}),
  });
  fakeSsm = await startFakeSsm({ faults });
  ec2 = new EC2Client({ endpoint: fake.url, region: 'us-east-1', credentials, maxAttempts: 1 });
  ssm = new SSMClient({ endpoint: fakeSsm.url, region: 'us-east-1', credentials, maxAttempts: 1 });
}

async function stop(): Promise<void> {
  ec2?.destroy();
  ssm?.destroy();
  await fleet?.killAll();
  await fake?.close();
  await fakeSsm?.close();
}

/** A launch the product could make: Ubuntu x64, terminate on shutdown, tagged. */
function launch(over: Partial<RunInstancesCommandInput> = {}): RunInstancesCommandInput {
  return {
    ImageId: KNOWN_IMAGES.ubuntuX64,
    InstanceType: 't3.micro',
    MinCount: 1,
    MaxCount: 1,
    InstanceInitiatedShutdownBehavior: 'terminate',
    ...over,
  };
}

async function waitState(id: string, state: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (fake.instance(id)?.state !== state) {
    if (Date.now() > deadline) throw new Error(`${id} is ${fake.instance(id)?.state}, not ${state}, after ${ms} ms`);
    await sleep(20);
  }
}

async function waitFor(pred: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

/** Terminates whatever is still live and checks nothing is left. */
async function expectClean(): Promise<void> {
  const live = fake
    .instances()
    .filter((i) => i.state !== 'terminated')
    .map((i) => i.id);
  if (live.length > 0) await ec2.send(new TerminateInstancesCommand({ InstanceIds: live }));
  for (const id of live) await waitState(id, 'terminated');
  expect(fake.leftovers()).toEqual([]);
  for (const m of fleet.all()) expect(m.processes()).toEqual([]);
}

async function errorOf(p: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    return {
      name: e.name,
      message: e.message,
      ...(e.$metadata?.httpStatusCode ? { status: e.$metadata.httpStatusCode } : {}),
    };
  }
  throw new Error('expected the call to fail');
}

beforeEach(async () => {
  await start();
});

afterEach(async () => {
  const unfired = unfiredFaults(faults);
  await stop();
  // Every fault a test added must have fired: one that never matches would pass silently.
  expect(unfired).toEqual([]);
});

describe('SSM public parameters', () => {
  test('each product parameter resolves to an image EC2 knows, with the matching architecture', async () => {
    const wanted: Array<[string, string]> = [
      ['/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id', 'x86_64'],
      ['/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id', 'arm64'],
      ['/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id', 'x86_64'],
      ['/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id', 'arm64'],
      ['/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id', 'x86_64'],
      ['/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id', 'arm64'],
    ];
    for (const [name, arch] of wanted) {
      const { Parameter } = await ssm.send(new GetParameterCommand({ Name: name }));
      expect(Parameter).toMatchObject({ Name: name, Type: 'String', Value: PUBLIC_PARAMETERS[name] });
      const { Images } = await ec2.send(new DescribeImagesCommand({ ImageIds: [Parameter!.Value!] }));
      expect(Images).toHaveLength(1);
      expect(Images![0]).toMatchObject({
        ImageId: Parameter!.Value,
        Architecture: arch,
        State: 'available',
        RootDeviceType: 'ebs',
      });
    }
  });

  test('an unknown parameter is ParameterNotFound (HTTP 400); GetParameters lists it as invalid', async () => {
    const err = await errorOf(
      ssm.send(new GetParameterCommand({ Name: '/aws/service/canonical/ubuntu/server/99.04/nope' })),
    );
    expect(err).toMatchObject({ name: 'ParameterNotFound', status: 400 });
    const many = await ssm.send(
      new GetParametersCommand({
        Names: ['/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id', '/nope'],
      }),
    );
    expect(many.Parameters).toHaveLength(1);
    expect(many.InvalidParameters).toEqual(['/nope']);
  });

  test('a wrong secret is InvalidSignatureException, an unknown key UnrecognizedClientException', async () => {
    const wrong = new SSMClient({
      endpoint: fakeSsm.url,
      region: 'us-east-1',
      credentials: { ...credentials, secretAccessKey: 'nope' },
      maxAttempts: 1,
    });
    const unknown = new SSMClient({
      endpoint: fakeSsm.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAOTHER', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    const name = '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id';
    expect(await errorOf(wrong.send(new GetParameterCommand({ Name: name })))).toMatchObject({
      name: 'InvalidSignatureException',
      status: 400,
    });
    expect(await errorOf(unknown.send(new GetParameterCommand({ Name: name })))).toMatchObject({
      name: 'UnrecognizedClientException',
    });
    wrong.destroy();
    unknown.destroy();
  });
});

describe('EC2 authentication', () => {
  test('no Authorization header is MissingAuthenticationToken (401)', async () => {
    const res = await fetch(fake.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=DescribeInstances&Version=2016-11-15',
    });
    expect(res.status).toBe(401);
    const text = await res.text();
    expect(text).toContain('<Code>MissingAuthenticationToken</Code>');
    expect(text).toMatch(/<RequestID>[0-9a-f-]{36}<\/RequestID>/);
  });

  test('a wrong secret is SignatureDoesNotMatch (403); an unknown key AuthFailure (401)', async () => {
    const wrong = new EC2Client({
      endpoint: fake.url,
      region: 'us-east-1',
      credentials: { ...credentials, secretAccessKey: 'nope' },
      maxAttempts: 1,
    });
    const unknown = new EC2Client({
      endpoint: fake.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAOTHER', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    expect(await errorOf(wrong.send(new DescribeInstancesCommand({})))).toMatchObject({
      name: 'SignatureDoesNotMatch',
      status: 403,
    });
    expect(await errorOf(unknown.send(new DescribeInstancesCommand({})))).toMatchObject({
      name: 'AuthFailure',
      status: 401,
      message: 'AWS was not able to validate the provided access credentials',
    });
    wrong.destroy();
    unknown.destroy();
  });

  test('the region comes from the credential scope: instances live in it and are invisible elsewhere', async () => {
    const eu = new EC2Client({ endpoint: fake.url, region: 'eu-west-1', credentials, maxAttempts: 1 });
    const r = await eu.send(new RunInstancesCommand(launch({ SubnetId: 'subnet-0b2' })));
    const id = r.Instances![0]!.InstanceId!;
    expect(r.Instances![0]!.Placement!.AvailabilityZone).toBe('eu-west-1b');
    expect(fake.instance(id)!.region).toBe('eu-west-1');
    expect(await errorOf(ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] })))).toMatchObject({
      name: 'InvalidInstanceID.NotFound',
    });
    await eu.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await waitState(id, 'terminated');
    eu.destroy();
    await expectClean();
  });

  test('an action the fake does not implement is InvalidAction', async () => {
    expect(await errorOf(ec2.send(new DescribeKeyPairsCommand({})))).toMatchObject({
      name: 'InvalidAction',
      status: 400,
    });
  });
});

describe('catalogue', () => {
  test('images have their own root device names and snapshot sizes', async () => {
    const { Images } = await ec2.send(
      new DescribeImagesCommand({ ImageIds: [KNOWN_IMAGES.ubuntuX64, KNOWN_IMAGES.al2023X64, KNOWN_IMAGES.gpuX64] }),
    );
    const byId = Object.fromEntries(Images!.map((i) => [i.ImageId!, i]));
    expect(byId[KNOWN_IMAGES.ubuntuX64]).toMatchObject({
      RootDeviceName: '/dev/sda1',
      BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 8 } }],
    });
    expect(byId[KNOWN_IMAGES.al2023X64]).toMatchObject({
      RootDeviceName: '/dev/xvda',
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda' }],
    });
    expect(byId[KNOWN_IMAGES.gpuX64]!.BlockDeviceMappings![0]!.Ebs!.VolumeSize).toBe(75);
    expect(await errorOf(ec2.send(new DescribeImagesCommand({ ImageIds: ['ami-0123456789abcdef0'] })))).toMatchObject({
      name: 'InvalidAMIID.NotFound',
    });
    expect(await errorOf(ec2.send(new DescribeImagesCommand({ ImageIds: ['ami-xyz'] })))).toMatchObject({
      name: 'InvalidAMIID.Malformed',
    });
    const owned = await ec2.send(new DescribeImagesCommand({ Owners: ['099720109477'] }));
    expect(owned.Images!.every((i) => i.OwnerId === '099720109477')).toBe(true);
  });

  test('instance types carry architecture, vCPUs, memory and GPUs', async () => {
    const required =
      `t3.micro t3.large m5.large m5.2xlarge m5.8xlarge m5.16xlarge m7g.large g4dn.xlarge g4dn.4xlarge g4dn.12xlarge g4dn.metal
      g5.xlarge g5.4xlarge g5.12xlarge g5.48xlarge g6.xlarge g6.4xlarge g6.12xlarge g6.48xlarge g6e.xlarge g6e.4xlarge g6e.12xlarge
      g6e.48xlarge p3.2xlarge p3.8xlarge p3.16xlarge p4d.24xlarge p5.4xlarge p5.48xlarge g5g.xlarge`.split(/\s+/);
    const { InstanceTypes } = await ec2.send(
      new DescribeInstanceTypesCommand({ InstanceTypes: required as _InstanceType[] }),
    );
    expect(InstanceTypes!.map((t) => t.InstanceType).sort()).toEqual([...required].sort());
    const get = (n: string) => InstanceTypes!.find((t) => t.InstanceType === n)!;
    expect(get('g5.12xlarge')).toMatchObject({
      ProcessorInfo: { SupportedArchitectures: ['x86_64'] },
      VCpuInfo: { DefaultVCpus: 48 },
      MemoryInfo: { SizeInMiB: 196608 },
      GpuInfo: { Gpus: [{ Name: 'A10G', Manufacturer: 'NVIDIA', Count: 4, MemoryInfo: { SizeInMiB: 24576 } }] },
    });
    expect(get('g5g.xlarge')).toMatchObject({
      ProcessorInfo: { SupportedArchitectures: ['arm64'] },
      GpuInfo: { Gpus: [{ Name: 'T4g' }] },
    });
    expect(get('m7g.large').ProcessorInfo!.SupportedArchitectures).toEqual(['arm64']);
    expect(get('m5.large').GpuInfo).toBeUndefined();
    expect(
      await errorOf(ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['g9.huge' as _InstanceType] }))),
    ).toMatchObject({ name: 'InvalidInstanceType' });
    expect(Object.keys(INSTANCE_TYPES).length).toBeGreaterThanOrEqual(required.length);
  });
});

describe('RunInstances is strict', () => {
  const big = 'x'.repeat(16385);
  const cases: Array<[string, Partial<RunInstancesCommandInput>, string, RegExp?]> = [
    ['an unknown AMI', { ImageId: 'ami-0123456789abcdef0' }, 'InvalidAMIID.NotFound'],
    ['a malformed AMI', { ImageId: 'ubuntu' }, 'InvalidAMIID.Malformed'],
    [
      'an unknown instance type',
      { InstanceType: 'g9.huge' as never },
      'InvalidParameterValue',
      /Invalid value 'g9.huge' for InstanceType/,
    ],
    [
      'an arm64 type with an x86_64 image',
      { InstanceType: 'm7g.large' },
      'InvalidParameterValue',
      /architecture 'arm64'.*does not match.*'x86_64'/,
    ],
    ['an unknown subnet', { SubnetId: 'subnet-0zz' }, 'InvalidSubnetID.NotFound'],
    ['an unknown security group', { SecurityGroupIds: ['sg-0nope'] }, 'InvalidGroup.NotFound'],
    [
      'an unknown instance profile',
      { IamInstanceProfile: { Name: 'nope' } },
      'InvalidParameterValue',
      /^Value \(nope\) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name$/,
    ],
    ['user data over 16 KB', { UserData: b64(big) }, 'InvalidParameterValue', /^User data is limited to 16384 bytes$/],
    [
      'a root volume smaller than its snapshot',
      { BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 4 } }] },
      'InvalidBlockDeviceMapping',
      /Volume of size 4GB is smaller than snapshot 'snap-[0-9a-f]+', expect size >= 8GB/,
    ],
    [
      'an extra volume with neither size nor snapshot',
      { BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { VolumeType: 'gp3' } }] },
      'InvalidBlockDeviceMapping',
    ],
    [
      'an unknown volume type',
      { BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { VolumeSize: 20, VolumeType: 'gp9' as never } }] },
      'InvalidParameterValue',
    ],
    [
      'a tag on an untaggable resource type',
      { TagSpecifications: [{ ResourceType: 'vpc', Tags: [{ Key: 'a', Value: 'b' }] }] },
      'InvalidParameterValue',
      /not a valid taggable resource type/,
    ],
    [
      'a reserved aws: tag key',
      { TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'aws:x', Value: 'b' }] }] },
      'InvalidParameterValue',
    ],
    ['a hop limit of 65', { MetadataOptions: { HttpPutResponseHopLimit: 65 } }, 'InvalidParameterValue'],
    ['HttpTokens maybe', { MetadataOptions: { HttpTokens: 'maybe' as never } }, 'InvalidParameterValue'],
    [
      'a shutdown behaviour of explode',
      { InstanceInitiatedShutdownBehavior: 'explode' as never },
      'InvalidParameterValue',
    ],
    [
      'a spot max price below the spot price',
      { InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { MaxPrice: '0.0001' } } },
      'SpotMaxPriceTooLow',
      /Your Spot request price of 0.0001 is lower than the minimum required Spot request fulfillment price of/,
    ],
    [
      'a one-time spot request that stops',
      {
        InstanceMarketOptions: {
          MarketType: 'spot',
          SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'stop' },
        },
      },
      'InvalidParameterCombination',
    ],
    ['no MinCount', { MinCount: undefined }, 'MissingParameter'],
  ];
  const rows = cases.map(([what, over, code, message]) => ({ what, over, code, message }));
  test.each(rows)('$what is refused', async ({ over, code, message }) => {
    const err = await errorOf(ec2.send(new RunInstancesCommand(launch(over))));
    expect(err.name).toBe(code);
    expect(err.status).toBe(400);
    if (message) expect(err.message).toMatch(message);
    expect(fake.instances()).toEqual([]);
    expect(fake.calls.at(-1)).toMatchObject({ action: 'RunInstances', status: 400, code });
  });

  test('DryRun answers DryRunOperation and creates nothing', async () => {
    expect(await errorOf(ec2.send(new RunInstancesCommand(launch({ DryRun: true }))))).toMatchObject({
      name: 'DryRunOperation',
      status: 412,
    });
    expect(fake.instances()).toEqual([]);
  });
});

describe('RunInstances records what was asked', () => {
  test('a mapping on the root device resizes the root; any other device adds a second, billed volume', async () => {
    const one = await ec2.send(
      new RunInstancesCommand(
        launch({
          BlockDeviceMappings: [
            {
              DeviceName: '/dev/sda1',
              Ebs: { VolumeSize: 100, VolumeType: 'gp3', DeleteOnTermination: true, Encrypted: true },
            },
          ],
        }),
      ),
    );
    const two = await ec2.send(
      new RunInstancesCommand(launch({ BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 100 } }] })),
    );
    const resized = fake.instance(one.Instances![0]!.InstanceId!)!;
    expect(resized.volumes).toEqual([
      expect.objectContaining({
        deviceName: '/dev/sda1',
        size: 100,
        volumeType: 'gp3',
        root: true,
        encrypted: true,
        deleteOnTermination: true,
      }),
    ]);
    const doubled = fake.instance(two.Instances![0]!.InstanceId!)!;
    expect(doubled.volumes.map((v) => [v.deviceName, v.size, v.root])).toEqual([
      ['/dev/sda1', 8, true],
      ['/dev/xvda', 100, false],
    ]);
    // The same mistake on Amazon Linux, whose root is /dev/xvda, is a resize.
    const al = await ec2.send(
      new RunInstancesCommand(
        launch({
          ImageId: KNOWN_IMAGES.al2023X64,
          BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 100 } }],
        }),
      ),
    );
    expect(fake.instance(al.Instances![0]!.InstanceId!)!.volumes).toHaveLength(1);
    await expectClean();
  });

  test('tags land on the instance, its volumes and its network interface; options are kept', async () => {
    const tags = [
      { Key: 'Name', Value: 'cml-abc' },
      { Key: 'cml-runner:managed', Value: 'true' },
    ];
    const r = await ec2.send(
      new RunInstancesCommand(
        launch({
          InstanceType: 'g4dn.xlarge',
          ImageId: KNOWN_IMAGES.gpuX64,
          SubnetId: 'subnet-0b2',
          SecurityGroupIds: ['sg-0default'],
          IamInstanceProfile: { Name: 'cml-runner-profile' },
          MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
          InstanceMarketOptions: {
            MarketType: 'spot',
            SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate', MaxPrice: '0.5' },
          },
          TagSpecifications: ['instance', 'volume', 'network-interface'].map((ResourceType) => ({
            ResourceType: ResourceType as 'instance',
            Tags: tags,
          })),
        }),
      ),
    );
    const id = r.Instances![0]!.InstanceId!;
    const inst = fake.instance(id)!;
    expect(inst).toMatchObject({
      type: 'g4dn.xlarge',
      spot: true,
      market: 'spot',
      shutdownBehavior: 'terminate',
      name: 'cml-abc',
      availabilityZone: 'us-east-1b',
    });
    expect(inst.spotOptions).toEqual({
      spotInstanceType: 'one-time',
      instanceInterruptionBehavior: 'terminate',
      maxPrice: '0.5',
    });
    expect(inst.metadataOptions).toEqual({
      httpTokens: 'required',
      httpPutResponseHopLimit: 1,
      httpEndpoint: 'enabled',
    });
    for (const t of [inst.tags, inst.volumes[0]!.tags, inst.networkInterfaceTags])
      expect(t).toEqual({ Name: 'cml-abc', 'cml-runner:managed': 'true' });

    await waitState(id, 'running');
    const d = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    const seen = d.Reservations![0]!.Instances![0]!;
    expect(seen).toMatchObject({
      InstanceType: 'g4dn.xlarge',
      InstanceLifecycle: 'spot',
      State: { Name: 'running', Code: 16 },
      Placement: { AvailabilityZone: 'us-east-1b' },
      IamInstanceProfile: { Arn: expect.stringContaining('instance-profile/cml-runner-profile') },
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
      RootDeviceName: '/dev/sda1',
    });
    expect(seen.LaunchTime).toBeInstanceOf(Date);
    expect(seen.Tags).toEqual(expect.arrayContaining(tags));
    expect(seen.BlockDeviceMappings).toEqual([
      expect.objectContaining({ DeviceName: '/dev/sda1', Ebs: expect.objectContaining({ DeleteOnTermination: true }) }),
    ]);
    await expectClean();
  });

  test('the same ClientToken returns the same reservation; different arguments are IdempotentParameterMismatch', async () => {
    const a = await ec2.send(new RunInstancesCommand(launch({ ClientToken: 'tok-1' })));
    const b = await ec2.send(new RunInstancesCommand(launch({ ClientToken: 'tok-1' })));
    expect(b.ReservationId).toBe(a.ReservationId);
    expect(b.Instances![0]!.InstanceId).toBe(a.Instances![0]!.InstanceId);
    expect(fake.instances()).toHaveLength(1);
    expect(
      await errorOf(ec2.send(new RunInstancesCommand(launch({ ClientToken: 'tok-1', InstanceType: 't3.large' })))),
    ).toMatchObject({
      name: 'IdempotentParameterMismatch',
    });
    const byToken = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'client-token', Values: ['tok-1'] }] }),
    );
    expect(byToken.Reservations!.flatMap((r) => r.Instances!).map((i) => i.InstanceId)).toEqual([
      a.Instances![0]!.InstanceId,
    ]);
    await expectClean();
  });

  test('DescribeInstances filters by tag, tag key, state, client token and id; unknown filters and ids are refused', async () => {
    const tagged = (v: string) => ({
      TagSpecifications: [{ ResourceType: 'instance' as const, Tags: [{ Key: 'cml-runner:repo', Value: v }] }],
    });
    const a = (await ec2.send(new RunInstancesCommand(launch(tagged('octo-org/ml'))))).Instances![0]!.InstanceId!;
    const b = (await ec2.send(new RunInstancesCommand(launch(tagged('octo-org/web'))))).Instances![0]!.InstanceId!;
    const ids = async (Filters: Array<{ Name: string; Values: string[] }>) =>
      (await ec2.send(new DescribeInstancesCommand({ Filters })))
        .Reservations!.flatMap((r) => r.Instances!)
        .map((i) => i.InstanceId)
        .sort();
    expect(await ids([{ Name: 'tag:cml-runner:repo', Values: ['octo-org/ml'] }])).toEqual([a]);
    expect(await ids([{ Name: 'tag:cml-runner:repo', Values: ['octo-org/*'] }])).toEqual([a, b].sort());
    expect(await ids([{ Name: 'tag-key', Values: ['cml-runner:repo'] }])).toEqual([a, b].sort());
    expect(await ids([{ Name: 'instance-id', Values: [b] }])).toEqual([b]);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [b] }));
    await waitState(b, 'terminated');
    expect(await ids([{ Name: 'instance-state-name', Values: ['pending', 'running'] }])).toEqual([a]);
    // Terminated instances stay visible, as in AWS.
    expect(await ids([{ Name: 'instance-state-name', Values: ['terminated'] }])).toEqual([b]);
    expect(
      await errorOf(ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'colour', Values: ['red'] }] }))),
    ).toMatchObject({ name: 'InvalidParameterValue' });
    expect(
      await errorOf(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] }))),
    ).toMatchObject({ name: 'InvalidInstanceID.NotFound' });
    expect(await errorOf(ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-nope'] })))).toMatchObject({
      name: 'InvalidInstanceID.Malformed',
    });
    await expectClean();
  });
});

describe('machines', () => {
  test('user data runs; `shutdown -h now` terminates the instance; its console outlives it', async () => {
    const script =
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
      '#!/bin/bash\necho "hello from $(uname -m) as ${HOME-unset}"\necho oops >&2\napt-get install -y jq\nshutdown -h now\nsleep 30\n';
    const r = await ec2.send(new RunInstancesCommand(launch({ UserData: b64(script) })));
    const id = r.Instances![0]!.InstanceId!;
    expect(r.Instances![0]!.State).toEqual({ Code: 0, Name: 'pending' });
    await waitState(id, 'terminated');
    const inst = fake.instance(id)!;
    expect(inst.stateReason?.code).toBe('Client.InstanceInitiatedShutdown');
    expect(inst.volumes.every((v) => v.state === 'deleted')).toBe(true);
    const root = inst.machine!.root;
    expect(fs.existsSync(root)).toBe(false);
    const out = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest: true }));
    const text = Buffer.from(out.Output!, 'base64').toString('utf8');
    // A boot script gets no HOME, as under cloud-init.
    expect(text).toContain('hello from x86_64 as unset');
    expect(text).toContain('oops');
    expect(text).toContain('[machine] apt-get install -y jq (stand-in)');
    expect(text).toContain('[machine] shutdown -h now (stand-in)');
    const d = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    expect(d.Reservations![0]!.Instances![0]!.StateReason).toEqual({
      Code: 'Client.InstanceInitiatedShutdown',
      Message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown',
    });
    await expectClean();
  });

  test('with the default shutdown behaviour the instance stops, and a stopped instance is a leftover', async () => {
    const r = await ec2.send(
      new RunInstancesCommand(
        launch({ InstanceInitiatedShutdownBehavior: undefined, UserData: b64('#!/bin/bash\npoweroff\n') }),
      ),
    );
    const id = r.Instances![0]!.InstanceId!;
    await waitState(id, 'stopped');
    expect(fake.leftovers()).toEqual([expect.stringMatching(new RegExp(`EC2 instance ${id} .* is stopped`))]);
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await waitState(id, 'terminated');
    await expectClean();
  });

  test('TerminateInstances kills every process of the machine; terminating again succeeds', async () => {
    // `setsid` leaves the process group, as a detached spawn does; it must die too.
    const script = '#!/bin/bash\n(sleep 300; echo never) &\nsetsid sleep 302 &\nsleep 301 &\necho started\nwait\n';
    const r = await ec2.send(new RunInstancesCommand(launch({ UserData: b64(script) })));
    const id = r.Instances![0]!.InstanceId!;
    await waitFor(() => fake.consoleOf(id).includes('started'));
    const machine = fake.instance(id)!.machine!;
    await waitFor(() => machine.processes().length >= 5);
    const t1 = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(t1.TerminatingInstances![0]).toMatchObject({
      PreviousState: { Name: 'running', Code: 16 },
      CurrentState: { Name: 'shutting-down', Code: 32 },
    });
    await machine.exited;
    expect(machine.processes()).toEqual([]);
    await waitState(id, 'terminated');
    const t2 = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(t2.TerminatingInstances![0]).toMatchObject({
      PreviousState: { Name: 'terminated' },
      CurrentState: { Name: 'terminated' },
    });
    expect(
      await errorOf(ec2.send(new TerminateInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] }))),
    ).toMatchObject({ name: 'InvalidInstanceID.NotFound' });
    expect(await errorOf(ec2.send(new TerminateInstancesCommand({ InstanceIds: ['i-bad'] })))).toMatchObject({
      name: 'InvalidInstanceID.Malformed',
    });
    await expectClean();
  });

  test('GPU images on GPU types see their GPUs; plain Ubuntu does not; arm64 types report aarch64', async () => {
    const probe = b64(
      '#!/bin/bash\nuname -m\nnvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no nvidia-smi"\n',
    );
    const gpu = (
      await ec2.send(
        new RunInstancesCommand(launch({ ImageId: KNOWN_IMAGES.gpuX64, InstanceType: 'g5.12xlarge', UserData: probe })),
      )
    ).Instances![0]!.InstanceId!;
    const plain = (await ec2.send(new RunInstancesCommand(launch({ InstanceType: 'g5.xlarge', UserData: probe }))))
      .Instances![0]!.InstanceId!;
    const arm = (
      await ec2.send(
        new RunInstancesCommand(
          launch({ ImageId: KNOWN_IMAGES.gpuArm64, InstanceType: 'g5g.xlarge', UserData: probe }),
        ),
      )
    ).Instances![0]!.InstanceId!;
    for (const id of [gpu, plain, arm]) await waitFor(() => /startup script exited/.test(fake.consoleOf(id)));
    expect(fake.consoleOf(gpu).match(/NVIDIA A10G, 24576 MiB/g)).toHaveLength(4);
    expect(fake.consoleOf(plain)).toContain('no nvidia-smi');
    expect(fake.consoleOf(arm)).toMatch(/^aarch64$/m);
    expect(fake.consoleOf(arm)).toContain('NVIDIA T4G');
    await expectClean();
  });

  test('gzipped user data runs; user data that is not a script does not', async () => {
    const gz = zlib.gzipSync(Buffer.from('#!/bin/bash\necho from-gzip\n')).toString('base64');
    const a = (await ec2.send(new RunInstancesCommand(launch({ UserData: gz })))).Instances![0]!.InstanceId!;
    const b = (await ec2.send(new RunInstancesCommand(launch({ UserData: b64('echo not a script\n') })))).Instances![0]!
      .InstanceId!;
    await waitFor(() => fake.consoleOf(a).includes('from-gzip'));
    await waitFor(() => fake.consoleOf(b).includes('Unhandled non-multipart'));
    expect(fake.consoleOf(b)).not.toContain('not a script\n');
    await expectClean();
  });

  test('failBoot: the instance runs but its script never does, and its console is empty', async () => {
    fleet.failBoot(1);
    const id = (await ec2.send(new RunInstancesCommand(launch({ UserData: b64('#!/bin/bash\necho hi\n') }))))
      .Instances![0]!.InstanceId!;
    await waitState(id, 'running');
    await sleep(200);
    const out = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id }));
    expect(out.Output).toBeUndefined();
    expect(fake.instance(id)!.machine!.running).toBe(true);
    await expectClean();
  });

  test('`shutdown -h +N` is scheduled and `shutdown -c` cancels it', async () => {
    await stop();
    await start({ minuteMs: 300 });
    const cancelled = (
      await ec2.send(new RunInstancesCommand(launch({ UserData: b64('#!/bin/bash\nshutdown -h +1\nshutdown -c\n') })))
    ).Instances![0]!.InstanceId!;
    const scheduled = (
      await ec2.send(new RunInstancesCommand(launch({ UserData: b64('#!/bin/bash\nshutdown -h +1 "max lifetime"\n') })))
    ).Instances![0]!.InstanceId!;
    await waitFor(() => fake.consoleOf(scheduled).includes('Shutdown scheduled in 1 minute(s)'));
    expect(fake.instance(scheduled)!.state).toBe('running');
    await waitState(scheduled, 'terminated', 5000);
    await waitFor(() => fake.consoleOf(cancelled).includes('startup script exited'));
    await sleep(500);
    expect(fake.instance(cancelled)!.state).toBe('running');
    await expectClean();
  });

  test('a spot interruption terminates the instance with the spot reason', async () => {
    const id = (await ec2.send(new RunInstancesCommand(launch({ InstanceMarketOptions: { MarketType: 'spot' } }))))
      .Instances![0]!.InstanceId!;
    await waitState(id, 'running');
    await fake.interruptSpot(id);
    await waitState(id, 'terminated');
    expect(fake.instance(id)!.stateReason?.code).toBe('Server.SpotInstanceTermination');
    expect(fake.spotRequests()[0]!.state).toBe('closed');
    await expectClean();
  });

  test('delayBoot: the script starts late (a slow boot); a machine killed meanwhile never runs it', async () => {
    fleet.delayBoot(2, 600);
    const t0 = Date.now();
    const slow = fleet.boot({ id: 'vm-slow', script: 'echo "script ran"; sleep 60', onShutdown: () => undefined });
    const killed = fleet.boot({ id: 'vm-killed', script: 'echo "script ran"', onShutdown: () => undefined });
    const fast = fleet.boot({ id: 'vm-fast', script: 'echo "script ran"', onShutdown: () => undefined });
    await waitFor(() => fast.console().includes('script ran'));
    expect(slow.console()).toBe('');
    await killed.kill();
    await waitFor(() => slow.console().includes('script ran'), 5000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(590);
    expect(await killed.scriptExit).toBeNull();
    expect(killed.console()).toBe('');
    await slow.kill();
    await expectClean();
  });

  test('crashRunner SIGKILLs the runner listener and its jobs only; the rest of the machine carries on', async () => {
    // A stand-in listener: a process named Runner.Listener with a job under it.
    const script = [
      // Inside the machine's own root: a boot script has no HOME, as on a real VM.
      'mkdir -p "$SANDBOX_MACHINE_ROOT/root/bin"',
      `printf '#!/bin/bash\\nsleep 60 &\\nwait\\n' >"$SANDBOX_MACHINE_ROOT/root/bin/Runner.Listener"`,
      'chmod +x "$SANDBOX_MACHINE_ROOT/root/bin/Runner.Listener"',
      '"$SANDBOX_MACHINE_ROOT/root/bin/Runner.Listener" & listener=$!',
      'echo "listener started"',
      'wait "$listener" || echo "listener ended with status $?"',
      'sleep 60',
    ].join('\n');
    const m = fleet.boot({ id: 'vm-crash', script, onShutdown: () => undefined });
    expect(fleet.crashRunner('vm-nope')).toBe(false);
    // The script, the listener and the listener's job.
    await waitFor(() => m.console().includes('listener started') && m.processes().length === 3);
    const runner = m
      .processes()
      .filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('Runner.Listener'));
    expect(runner).toHaveLength(1);
    expect(fleet.crashRunner('vm-crash')).toBe(true);
    await waitFor(() => m.console().includes('listener ended with status 137'));
    expect(m.running).toBe(true);
    // The script carries on (now in its own sleep); the listener and its job are gone.
    await waitFor(() => m.processes().length === 2);
    expect(m.processes()).not.toContain(runner[0]);
    expect(fleet.crashRunner('vm-crash')).toBe(false);
    await m.kill();
    await expectClean();
  });

  test('bootMachine on its own: env, stand-ins, kill', async () => {
    let shutdowns = 0;
    const m = bootMachine({
      id: 'vm-1',
      script:
        'echo "id=$SANDBOX_MACHINE_ID home=$CML_RUNNER_HOME x=$EXTRA"; command -v nvidia-smi || echo "nvidia-smi: command not found"; useradd -m runner; id -un runner; sleep 60',
      env: { EXTRA: 'yes' },
      onShutdown: () => shutdowns++,
    });
    await waitFor(() => m.console().includes('runner\n'));
    expect(m.console()).toContain(`id=vm-1 home=${m.root}/opt/cml-runner x=yes`);
    expect(m.console()).toContain('nvidia-smi: command not found');
    expect(m.running).toBe(true);
    await m.kill();
    expect(m.running).toBe(false);
    expect(m.processes()).toEqual([]);
    expect(fs.existsSync(m.root)).toBe(false);
    expect(shutdowns).toBe(0);
    expect(await m.scriptExit).toBeNull();
  });
});

describe('instance metadata (IMDS)', () => {
  const imds = (id: string): string => `${fake.url}/_imds/${id}`;
  async function token(id: string, ttl = '60'): Promise<string> {
    const res = await fetch(`${imds(id)}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': ttl },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-aws-ec2-metadata-token-ttl-seconds')).toBe(ttl);
    return res.text();
  }
  const get = (url: string, tok?: string, method = 'GET'): Promise<Response> =>
    fetch(url, { method, headers: tok === undefined ? {} : { 'X-aws-ec2-metadata-token': tok } });

  test('machines reach their own IMDS through AWS_EC2_METADATA_SERVICE_ENDPOINT, with an IMDSv2 token', async () => {
    const script = [
      '#!/bin/bash',
      'echo "endpoint=$AWS_EC2_METADATA_SERVICE_ENDPOINT"',
      'TOKEN=$(curl -sf -X PUT "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 21600")',
      'echo "id=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/meta-data/instance-id")"',
      'echo "v1=$(curl -s -o /dev/null -w "%{http_code}" "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/meta-data/instance-id")"',
    ].join('\n');
    const id = (
      await ec2.send(
        new RunInstancesCommand(launch({ UserData: b64(script), MetadataOptions: { HttpTokens: 'required' } })),
      )
    ).Instances![0]!.InstanceId!;
    await waitFor(() => fake.consoleOf(id).includes('v1='));
    expect(fake.consoleOf(id)).toContain(`endpoint=${imds(id)}\n`);
    expect(fake.consoleOf(id)).toContain(`id=${id}\n`);
    expect(fake.consoleOf(id)).toContain('v1=401\n');
    await expectClean();
  });

  test('iptables on the machine: root adds a REJECT rule for a user; IMDS then cuts that user, not root', async () => {
    const port = new URL(fake.url).port;
    const reach = (who: string, as = ''): string =>
      `${as}curl -s -o /dev/null -w '${who}=%{http_code}\\n' --max-time 3 -X PUT "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' || echo '${who}=cut'`;
    const script = [
      '#!/bin/bash',
      'useradd --create-home cml-runner',
      reach('user-before', 'runuser -u cml-runner -- '),
      'runuser -u cml-runner -- iptables -A OUTPUT -p tcp -d 127.0.0.1 -m owner --uid-owner cml-runner -j REJECT; echo "as-user=$?"',
      'iptables -A OUTPUT -p udp -d 127.0.0.1 -m owner --uid-owner cml-runner -j REJECT; echo "udp=$?"',
      'iptables -A OUTPUT -p tcp -d 127.0.0.1 -m owner --uid-owner nobody-here -j REJECT; echo "unknown=$?"',
      `iptables --append OUTPUT --proto tcp --destination 127.0.0.1 --dport ${port} --match owner --uid-owner cml-runner --jump REJECT; echo "rule=$?"`,
      reach('root'),
      reach('user-after', 'runuser -u cml-runner -- '),
      'echo done',
    ].join('\n');
    const id = (await ec2.send(new RunInstancesCommand(launch({ UserData: b64(script) })))).Instances![0]!.InstanceId!;
    await waitFor(() => fake.consoleOf(id).includes('done'));
    const out = fake.consoleOf(id);
    expect(out).toContain('user-before=200\n');
    expect(out).toContain(
      'iptables v1.8.10 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)',
    );
    expect(out).toContain('as-user=4\n');
    expect(out).toContain('udp=2\n');
    expect(out).toContain('Bad value for option "--uid-owner", or out of range ("nobody-here").');
    expect(out).toContain('unknown=2\n');
    expect(out).toContain('rule=0\n');
    expect(out).toContain('root=200\n');
    // Only a sandbox running as root gives the machine's user a uid of its own to refuse.
    expect(out).toContain(process.getuid?.() === 0 ? 'user-after=cut\n' : 'user-after=200\n');
    await expectClean();
  });

  test('tokens: a TTL of 1..21600 s is required, the token is needed when HttpTokens is required, valid on its own instance only', async () => {
    const r = await ec2.send(
      new RunInstancesCommand(launch({ MinCount: 2, MaxCount: 2, MetadataOptions: { HttpTokens: 'required' } })),
    );
    const [a, b] = r.Instances!.map((i) => i.InstanceId!) as [string, string];
    await waitState(a, 'running');
    await waitState(b, 'running');
    for (const ttl of [undefined, '0', '21601', 'abc']) {
      const res = await fetch(`${imds(a)}/latest/api/token`, {
        method: 'PUT',
        headers: ttl === undefined ? {} : { 'X-aws-ec2-metadata-token-ttl-seconds': ttl },
      });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('<title>400 - Bad Request</title>');
    }
    // Only /latest/api/token hands out tokens, and not to a forwarded request.
    expect(
      (
        await fetch(`${imds(a)}/2021-03-23/api/token`, {
          method: 'PUT',
          headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await fetch(`${imds(a)}/latest/api/token`, {
          method: 'PUT',
          headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60', 'X-Forwarded-For': '10.0.0.1' },
        })
      ).status,
    ).toBe(403);
    expect((await get(`${imds(a)}/latest/api/token`)).status).toBe(405);

    const tok = await token(a, '21600');
    expect(tok.length).toBeGreaterThan(20);
    const noToken = await get(`${imds(a)}/latest/meta-data/instance-id`);
    expect(noToken.status).toBe(401);
    expect(await noToken.text()).toContain('<h1>401 - Unauthorized</h1>');
    expect((await get(`${imds(a)}/latest/meta-data/instance-id`, 'not-a-token')).status).toBe(401);
    expect((await get(`${imds(b)}/latest/meta-data/instance-id`, tok)).status).toBe(401);
    const ok = await get(`${imds(a)}/latest/meta-data/instance-id`, tok);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('text/plain');
    expect(await ok.text()).toBe(a);
    expect(await (await get(`${imds(a)}/latest/meta-data/instance-life-cycle`, tok)).text()).toBe('on-demand');
    expect(await (await get(`${imds(a)}/latest/meta-data/placement/availability-zone`, tok)).text()).toBe(
      fake.instance(a)!.availabilityZone,
    );
    const listing = await (await get(`${imds(a)}/latest/meta-data/`, tok)).text();
    expect(listing.split('\n')).toEqual(expect.arrayContaining(['instance-id', 'placement/']));
    expect(listing).not.toContain('spot/');
    expect((await get(`${imds(a)}/latest/meta-data/instance-id`, tok, 'POST')).status).toBe(405);
    const head = await get(`${imds(a)}/latest/meta-data/instance-id`, tok, 'HEAD');
    expect(head.status).toBe(200);
    expect((await get(`${imds(a)}/latest/meta-data/no-such-item`, tok)).status).toBe(404);

    // A token expires with its TTL.
    const short = await token(a, '1');
    await sleep(1100);
    expect((await get(`${imds(a)}/latest/meta-data/instance-id`, short)).status).toBe(401);
    await expectClean();
  });

  test('HttpTokens optional answers without a token (but not with a bad one); HttpEndpoint disabled answers 403', async () => {
    const optional = (await ec2.send(new RunInstancesCommand(launch({ MetadataOptions: { HttpTokens: 'optional' } }))))
      .Instances![0]!.InstanceId!;
    const disabled = (
      await ec2.send(new RunInstancesCommand(launch({ MetadataOptions: { HttpEndpoint: 'disabled' } })))
    ).Instances![0]!.InstanceId!;
    await waitState(optional, 'running');
    await waitState(disabled, 'running');
    expect(await (await get(`${imds(optional)}/latest/meta-data/instance-id`)).text()).toBe(optional);
    expect((await get(`${imds(optional)}/latest/meta-data/instance-id`, 'stale')).status).toBe(401);
    const refused = await fetch(`${imds(disabled)}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' },
    });
    expect(refused.status).toBe(403);
    expect((await get(`${imds(disabled)}/latest/meta-data/instance-id`)).status).toBe(403);
    await expectClean();
  });

  test('spot/instance-action is 404 until interruptSpot publishes the notice, then the action and its time; the interruption follows', async () => {
    const id = (
      await ec2.send(
        new RunInstancesCommand(
          launch({ InstanceMarketOptions: { MarketType: 'spot' }, MetadataOptions: { HttpTokens: 'required' } }),
        ),
      )
    ).Instances![0]!.InstanceId!;
    await waitState(id, 'running');
    const tok = await token(id);
    expect(await (await get(`${imds(id)}/latest/meta-data/instance-life-cycle`, tok)).text()).toBe('spot');
    expect((await get(`${imds(id)}/latest/meta-data/spot/instance-action`, tok)).status).toBe(404);
    expect((await get(`${imds(id)}/latest/meta-data/spot/termination-time`, tok)).status).toBe(404);
    // Without a token it stays 401, notice or not.
    expect((await get(`${imds(id)}/latest/meta-data/spot/instance-action`)).status).toBe(401);

    const t0 = Date.now();
    const interrupted = fake.interruptSpot(id, { noticeMs: 1500 });
    const res = await get(`${imds(id)}/latest/meta-data/spot/instance-action`, tok);
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toMatch(/^\{"action": "terminate", "time": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"\}$/);
    const notice = JSON.parse(body) as { action: string; time: string };
    expect(Math.abs(Date.parse(notice.time) - (t0 + 1500))).toBeLessThanOrEqual(1500);
    expect(await (await get(`${imds(id)}/latest/meta-data/spot/termination-time`, tok)).text()).toBe(notice.time);
    expect(await (await get(`${imds(id)}/latest/meta-data/spot/`, tok)).text()).toBe(
      'instance-action\ntermination-time',
    );
    // The notice comes first; the interruption after noticeMs.
    expect(fake.instance(id)!.state).toBe('running');
    await interrupted;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1450);
    await waitState(id, 'terminated');
    expect(fake.instance(id)!.stateReason?.code).toBe('Server.SpotInstanceTermination');
    // An instance that is gone has no metadata service to answer.
    await expect(get(`${imds(id)}/latest/meta-data/instance-id`, tok)).rejects.toThrow();
    await expectClean();
  });

  test('an instance that ends itself during the notice is left as it ended', async () => {
    const id = (
      await ec2.send(
        new RunInstancesCommand(
          launch({ InstanceMarketOptions: { MarketType: 'spot' }, UserData: b64('#!/bin/bash\nsleep 60\n') }),
        ),
      )
    ).Instances![0]!.InstanceId!;
    await waitState(id, 'running');
    const interrupted = fake.interruptSpot(id, { noticeMs: 800 });
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await interrupted;
    await waitState(id, 'terminated');
    expect(fake.instance(id)!.stateReason?.code).toBe('Client.UserInitiatedShutdown');
    await expectClean();
  });
});

describe('faults and latency', () => {
  test('a capacity error answers with its code and HTTP 500, then the next call succeeds', async () => {
    faults.add({ service: 'ec2', action: 'RunInstances', code: 'InsufficientInstanceCapacity' });
    expect(await errorOf(ec2.send(new RunInstancesCommand(launch())))).toMatchObject({
      name: 'InsufficientInstanceCapacity',
      status: 500,
    });
    expect(fake.instances()).toEqual([]);
    await ec2.send(new RunInstancesCommand(launch()));
    expect(fake.instances()).toHaveLength(1);
    await expectClean();
  });

  test('throttling (503) is retried by the SDK with the same client token; VcpuLimitExceeded is 400', async () => {
    const retrying = new EC2Client({
      endpoint: fake.url,
      region: 'us-east-1',
      credentials,
      maxAttempts: 3,
      retryMode: 'standard',
    });
    faults.add({ service: 'ec2', action: 'RunInstances', code: 'RequestLimitExceeded', times: 2 });
    const r = await retrying.send(new RunInstancesCommand(launch()));
    expect(r.Instances).toHaveLength(1);
    expect(fake.calls.filter((c) => c.action === 'RunInstances').map((c) => c.status)).toEqual([503, 503, 200]);
    retrying.destroy();
    faults.add({ service: 'ec2', action: 'RunInstances', code: 'VcpuLimitExceeded' });
    expect(await errorOf(ec2.send(new RunInstancesCommand(launch())))).toMatchObject({
      name: 'VcpuLimitExceeded',
      status: 400,
    });
    await expectClean();
  }, 30_000);

  test('a fault with only a delay slows the real answer; latencyMs slows every call', async () => {
    faults.add({ service: 'ec2', action: 'DescribeInstances', delayMs: 300 });
    let t0 = Date.now();
    await ec2.send(new DescribeInstancesCommand({}));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(fake.calls.at(-1)).toMatchObject({ action: 'DescribeInstances', status: 200 });
    await stop();
    await start({ latencyMs: 150 });
    t0 = Date.now();
    await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['t3.micro'] }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  test("a fault `where` InstanceType and Spot match fires only for those launches; the call log records each launch's parameters", async () => {
    faults.add({
      service: 'ec2',
      action: 'RunInstances',
      where: { InstanceType: 'g4dn.xlarge', Spot: 'true' },
      code: 'InsufficientInstanceCapacity',
    });
    const spot = { InstanceMarketOptions: { MarketType: 'spot' as const } };
    await ec2.send(new RunInstancesCommand(launch({ InstanceType: 'g4dn.xlarge' })));
    await ec2.send(new RunInstancesCommand(launch({ ...spot, SubnetId: 'subnet-0b2' })));
    expect(faults.fired).toEqual([]);
    expect(
      await errorOf(ec2.send(new RunInstancesCommand(launch({ ...spot, InstanceType: 'g4dn.xlarge' })))),
    ).toMatchObject({
      name: 'InsufficientInstanceCapacity',
      status: 500,
    });
    // Used up: the same launch now succeeds.
    await ec2.send(new RunInstancesCommand(launch({ ...spot, InstanceType: 'g4dn.xlarge' })));
    const image = KNOWN_IMAGES.ubuntuX64;
    expect(
      fake.calls
        .filter((c) => c.action === 'RunInstances')
        .map(({ status, code, params }) => ({ status, code, params })),
    ).toEqual([
      {
        status: 200,
        code: undefined,
        params: { ImageId: image, InstanceType: 'g4dn.xlarge', SubnetId: 'subnet-0a1', Spot: 'false' },
      },
      {
        status: 200,
        code: undefined,
        params: { ImageId: image, InstanceType: 't3.micro', SubnetId: 'subnet-0b2', Spot: 'true' },
      },
      {
        status: 500,
        code: 'InsufficientInstanceCapacity',
        params: { ImageId: image, InstanceType: 'g4dn.xlarge', SubnetId: 'subnet-0a1', Spot: 'true' },
      },
      {
        status: 200,
        code: undefined,
        params: { ImageId: image, InstanceType: 'g4dn.xlarge', SubnetId: 'subnet-0a1', Spot: 'true' },
      },
    ]);
    expect(faults.fired).toEqual([
      {
        service: 'ec2',
        action: 'RunInstances',
        code: 'InsufficientInstanceCapacity',
        params: { ImageId: image, InstanceType: 'g4dn.xlarge', SubnetId: 'subnet-0a1', Spot: 'true' },
      },
    ]);
    expect(fake.instances()).toHaveLength(3);
    await expectClean();
  });

  test('a request without a valid signature, or naming no action EC2 has, is refused even when a fault is armed', async () => {
    faults.add({ service: 'ec2', code: 'RequestLimitExceeded' });
    const unsigned = await fetch(fake.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=DescribeInstances&Version=2016-11-15',
    });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.text()).toContain('<Code>MissingAuthenticationToken</Code>');
    const wrong = new EC2Client({
      endpoint: fake.url,
      region: 'us-east-1',
      credentials: { ...credentials, secretAccessKey: 'nope' },
      maxAttempts: 1,
    });
    expect(await errorOf(wrong.send(new RunInstancesCommand(launch())))).toMatchObject({
      name: 'SignatureDoesNotMatch',
      status: 403,
    });
    wrong.destroy();
    expect(await errorOf(ec2.send(new DescribeKeyPairsCommand({})))).toMatchObject({
      name: 'InvalidAction',
      status: 400,
    });
    expect(faults.fired).toEqual([]);
    expect(fake.calls.map(({ action, status, code }) => ({ action, status, code }))).toEqual([
      { action: 'DescribeInstances', status: 401, code: 'MissingAuthenticationToken' },
      { action: 'RunInstances', status: 403, code: 'SignatureDoesNotMatch' },
      { action: 'DescribeKeyPairs', status: 400, code: 'InvalidAction' },
    ]);
    // The fault was armed all along: the first request EC2 accepts takes it.
    expect(await errorOf(ec2.send(new DescribeInstancesCommand({})))).toMatchObject({
      name: 'RequestLimitExceeded',
      status: 503,
    });
    expect(faults.unfired()).toEqual([]);
    expect(fake.instances()).toEqual([]);
  });

  test('SSM faults use the SSM error shape', async () => {
    faults.add({ service: 'ssm', action: 'GetParameter', code: 'ThrottlingException' });
    const err = await errorOf(ssm.send(new GetParameterCommand({ Name: Object.keys(PUBLIC_PARAMETERS)[0]! })));
    expect(err).toMatchObject({ name: 'ThrottlingException', status: 400 });
  });
});

describe('leftovers', () => {
  test('a volume kept after termination and an open persistent spot request are reported', async () => {
    const r = await ec2.send(
      new RunInstancesCommand(
        launch({
          BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { VolumeSize: 50, DeleteOnTermination: false } }],
          InstanceMarketOptions: {
            MarketType: 'spot',
            SpotOptions: { SpotInstanceType: 'persistent', InstanceInterruptionBehavior: 'terminate' },
          },
        }),
      ),
    );
    const id = r.Instances![0]!.InstanceId!;
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await waitState(id, 'terminated');
    const left = fake.leftovers();
    expect(left).toEqual([
      expect.stringMatching(
        /^EBS volume vol-\w+ \(50 GiB gp2, \/dev\/sdf of i-\w+\) was left after termination: DeleteOnTermination was false$/,
      ),
      expect.stringMatching(/^Spot request sir-\w+ \(persistent, for i-\w+\) is still open/),
    ]);
    // Nothing else: no live instance and no machine process.
    for (const m of fleet.all()) expect(m.processes()).toEqual([]);
  });
});

describe('regions, spot role, hypervisors and drivers', () => {
  const inRegion = (region: string) => new EC2Client({ endpoint: fake.url, region, credentials, maxAttempts: 1 });

  test('DescribeInstanceTypeOfferings answers from the region of the signature, with filters and pages', async () => {
    const west = inRegion('us-west-1');
    const ask = (client: EC2Client, values: string[]) =>
      client.send(
        new DescribeInstanceTypeOfferingsCommand({
          LocationType: 'region',
          Filters: [{ Name: 'instance-type', Values: values }],
        }),
      );
    const east = await ask(ec2, ['g5.xlarge', 'g4dn.xlarge', 'g9.huge']);
    expect(east.InstanceTypeOfferings!.map((o) => [o.InstanceType, o.LocationType, o.Location]).sort()).toEqual([
      ['g4dn.xlarge', 'region', 'us-east-1'],
      ['g5.xlarge', 'region', 'us-east-1'],
    ]);
    expect((await ask(west, ['g5.xlarge', 'g4dn.xlarge'])).InstanceTypeOfferings!.map((o) => o.InstanceType)).toEqual([
      'g4dn.xlarge',
    ]);
    expect((await ask(west, ['g5.*', 'g6.*', 'p5.*'])).InstanceTypeOfferings).toEqual([]);
    // Pages: every type offered in us-east-1, five at a time.
    const seen: string[] = [];
    let NextToken: string | undefined;
    let pages = 0;
    do {
      const page = await ec2.send(new DescribeInstanceTypeOfferingsCommand({ MaxResults: 5, NextToken }));
      expect(page.InstanceTypeOfferings!.length).toBeLessThanOrEqual(5);
      seen.push(...page.InstanceTypeOfferings!.map((o) => o.InstanceType!));
      NextToken = page.NextToken;
      pages++;
    } while (NextToken);
    expect(pages).toBeGreaterThan(2);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(['g5.xlarge', 'p3.2xlarge', 'm5.large']));
    // Zones offer what their region offers.
    const zones = await west.send(
      new DescribeInstanceTypeOfferingsCommand({
        LocationType: 'availability-zone',
        Filters: [{ Name: 'instance-type', Values: ['g4dn.xlarge'] }],
      }),
    );
    expect(zones.InstanceTypeOfferings!.map((o) => o.Location).sort()).toEqual(['us-west-1a', 'us-west-1b']);
    expect(await errorOf(ec2.send(new DescribeInstanceTypeOfferingsCommand({ MaxResults: 4 })))).toMatchObject({
      name: 'InvalidParameterValue',
    });
    west.destroy();
    await expectClean();
  });

  test('RunInstances of a type the region does not offer is Unsupported, and creates nothing', async () => {
    const west = inRegion('us-west-1');
    const before = fake.instances().length;
    expect(
      await errorOf(
        west.send(new RunInstancesCommand(launch({ ImageId: KNOWN_IMAGES.gpuX64, InstanceType: 'g5.xlarge' }))),
      ),
    ).toEqual({
      name: 'Unsupported',
      message:
        'The requested configuration is currently not supported. Please check the documentation for supported configurations.',
      status: 400,
    });
    expect(fake.instances()).toHaveLength(before);
    west.destroy();
    await expectClean();
  });

  test('the first spot launch creates the service-linked role, when the caller may; otherwise it is refused with 403', async () => {
    const spot = launch({ InstanceMarketOptions: { MarketType: 'spot' } });
    expect(fake.spotServiceLinkedRole()).toBe(false);
    fake.setSpotRole({ creation: false });
    expect(await errorOf(ec2.send(new RunInstancesCommand(spot)))).toEqual({
      name: 'AuthFailure.ServiceLinkedRoleCreationNotPermitted',
      message:
        'The provided credentials do not have permission to create the service-linked role for EC2 Spot Instances.',
      status: 403,
    });
    // On-demand needs no role.
    await ec2.send(new RunInstancesCommand(launch()));
    expect(fake.instances()).toHaveLength(1);
    fake.setSpotRole({ creation: true });
    await ec2.send(new RunInstancesCommand(spot));
    expect(fake.spotServiceLinkedRole()).toBe(true);
    // Once the role exists, spot no longer needs the right to create it.
    fake.setSpotRole({ creation: false });
    await ec2.send(new RunInstancesCommand(spot));
    expect(fake.instances().filter((i) => i.spot)).toHaveLength(2);
    await expectClean();
  });

  test('GetConsoleOutput Latest is refused on a Xen instance (p3) and given on a Nitro one; without Latest both answer', async () => {
    const script = b64('#!/bin/bash\necho console-line\n');
    const xen = (
      await ec2.send(
        new RunInstancesCommand(
          launch({ ImageId: KNOWN_IMAGES.gpuProprietaryX64, InstanceType: 'p3.2xlarge', UserData: script }),
        ),
      )
    ).Instances![0]!.InstanceId!;
    const nitro = (await ec2.send(new RunInstancesCommand(launch({ UserData: script })))).Instances![0]!.InstanceId!;
    for (const id of [xen, nitro]) await waitFor(() => fake.consoleOf(id).includes('console-line'));
    const console = async (InstanceId: string, Latest?: boolean) => {
      const out = await ec2.send(new GetConsoleOutputCommand({ InstanceId, ...(Latest ? { Latest } : {}) }));
      return Buffer.from(out.Output ?? '', 'base64').toString('utf8');
    };
    expect(await errorOf(console(xen, true))).toMatchObject({ name: 'UnsupportedOperation', status: 400 });
    expect(await console(xen)).toContain('console-line');
    expect(await console(nitro, true)).toContain('console-line');
    const types = await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: ['p3.2xlarge', 'p3dn.24xlarge'] }));
    expect(Object.fromEntries(types.InstanceTypes!.map((x) => [x.InstanceType, x.Hypervisor]))).toEqual({
      'p3.2xlarge': 'xen',
      'p3dn.24xlarge': 'nitro',
    });
    await expectClean();
  });

  test("a V100 is driven by the proprietary driver only: with the OSS image's open modules nvidia-smi fails", async () => {
    const probe = b64('#!/bin/bash\nnvidia-smi -L; echo "nvidia-smi exit $?"\n');
    const run = async (ImageId: string) =>
      (await ec2.send(new RunInstancesCommand(launch({ ImageId, InstanceType: 'p3.2xlarge', UserData: probe }))))
        .Instances![0]!.InstanceId!;
    const open = await run(KNOWN_IMAGES.gpuX64);
    const proprietary = await run(KNOWN_IMAGES.gpuProprietaryX64);
    for (const id of [open, proprietary]) await waitFor(() => /nvidia-smi exit \d+/.test(fake.consoleOf(id)));
    expect(fake.consoleOf(open)).toContain(
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. " +
        'Make sure that the latest NVIDIA driver is installed and running.',
    );
    expect(fake.consoleOf(open)).toContain('nvidia-smi exit 9');
    expect(fake.consoleOf(open)).toContain('is not supported by open');
    expect(fake.consoleOf(proprietary)).toContain('GPU 0: Tesla V100-SXM2-16GB');
    expect(fake.consoleOf(proprietary)).toContain('nvidia-smi exit 0');
    await expectClean();
  });
});
