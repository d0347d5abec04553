import { gzipSync } from 'node:zlib';
import {
  DescribeImagesCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstancesCommand,
  EC2Client,
  GetConsoleOutputCommand,
  ModifyInstanceMetadataOptionsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type BlockDeviceMapping,
  type RunInstancesCommandInput,
  type Tag,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { MachineSpec } from '../../config/spec.js';
import { CloudError } from '../../errors.js';
import { type CallPolicy, cloudCall, endedOrGone } from '../call.js';
import type { Env } from '../descriptor.js';
import { TAG, managedFromTags } from '../tags.js';
import type {
  Cloud,
  CloudContext,
  CloudResource,
  Machine,
  MachineRequest,
  MachineState,
  MachineStatus,
  ManagedMachine,
  Placement,
  PreparedCloud,
  ResourceRecorder,
} from '../types.js';
import { AWS_IMAGE_PARAMETERS, awsArchitecture } from './catalog.js';
import { awsError, awsRefusal, awsRetryAfterMs } from './errors.js';
import { LaunchGroups } from './groups.js';
import type { AwsOptions } from './options.js';

/**
 * EC2. Endpoints and credentials are handed to the SDK from the context's environment
 * (AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_SSM; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY with
 * AWS_SESSION_TOKEN, as aws-actions/configure-aws-credentials exports them); without keys there,
 * the SDK's default chain (web identity, SSO, instance role) finds them.
 *
 * IAM actions called: ec2:RunInstances, ec2:CreateTags (tags at launch), ec2:DescribeImages,
 * ec2:DescribeInstanceTypeOfferings, ec2:DescribeInstances, ec2:GetConsoleOutput,
 * ec2:TerminateInstances, ec2:ModifyInstanceMetadataOptions, ssm:GetParameter, and iam:PassRole
 * when aws-instance-profile is given; without aws-security-group, the launch's own group
 * (groups.ts): ec2:DescribeSubnets or ec2:DescribeVpcs, ec2:CreateSecurityGroup with
 * ec2:CreateTags, ec2:DescribeSecurityGroups, ec2:DeleteSecurityGroup.
 * A spot launch needs iam:CreateServiceLinkedRole for spot.amazonaws.com once per account (EC2
 * creates the AWSServiceRoleForEC2Spot role on the first one). The documented policy
 * (docs/permissions/aws/) allows launching and tagging only resources tagged `cml-runner:managed`
 * = true at launch, and terminating or reading only such instances: every launch must keep
 * sending that tag on the instance, its volumes and its network interface.
 *
 * Retries: the SDK's are off (one attempt); each call is retried by `cloudCall` when it failed
 * for a throttle, a 5xx or a dropped connection, honouring Retry-After. RunInstances carries a
 * client token, so a retry after a lost answer never makes a second machine.
 */
const REQUEST_HANDLER = { connectionTimeout: 5_000, requestTimeout: 30_000 } as const;

/** EC2 instance states as the lifecycle sees them; terminated (and anything unknown) is gone. */
const EC2_STATES: Record<string, MachineState> = {
  pending: 'starting',
  running: 'running',
  'shutting-down': 'ending',
  stopping: 'ending',
  stopped: 'stopped',
};

interface PreparedImage {
  imageId: string;
  blockDevices: BlockDeviceMapping[];
}

/** Spot refused because the EC2 Spot service-linked role is missing and may not be created. */
const SPOT_ROLE_REFUSED = 'AuthFailure.ServiceLinkedRoleCreationNotPermitted';

/**
 * Regions asked which offer the spec's types when the launch region offers none of them: the
 * generic regions' and a few main ones.
 */
const OTHER_REGIONS = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'eu-west-1',
  'eu-west-2',
  'eu-central-1',
  'eu-north-1',
  'ap-northeast-1',
  'ap-southeast-2',
] as const;

export function createCloud(options: AwsOptions, region: string, ctx: CloudContext): Cloud {
  return new AwsCloud(options, region, ctx);
}

/** The SDK's settings from the context's environment: endpoints, and keys when they are given. */
function clientConfig(region: string, env: Env, endpoint: string | undefined) {
  const {
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_SESSION_TOKEN: sessionToken,
  } = env;
  return {
    region,
    // One attempt: cloudCall is the only retry, so the SDK's own retry strategy is left out.
    maxAttempts: 1,
    requestHandler: REQUEST_HANDLER,
    ...(endpoint ? { endpoint } : {}),
    ...(accessKeyId && secretAccessKey
      ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } }
      : {}),
  };
}

export class AwsCloud implements Cloud {
  readonly name = 'aws';
  readonly title = 'AWS';
  readonly kind = 'vm' as const;
  private readonly ec2: EC2Client;
  private readonly ssm: SSMClient;
  private readonly policy: CallPolicy;
  private spotRoleAdvised = false;
  private readonly groups: LaunchGroups;

  constructor(
    private readonly options: AwsOptions,
    readonly region: string,
    private readonly ctx: CloudContext,
  ) {
    this.ec2 = new EC2Client(clientConfig(region, ctx.env, ctx.env.AWS_ENDPOINT_URL_EC2 || ctx.env.AWS_ENDPOINT_URL));
    this.ssm = new SSMClient(clientConfig(region, ctx.env, ctx.env.AWS_ENDPOINT_URL_SSM || ctx.env.AWS_ENDPOINT_URL));
    this.policy = {
      translate: (err, action) => awsError(err, action, region),
      retryAfterMs: awsRetryAfterMs,
      baseMs: 250,
    };
    this.groups = new LaunchGroups(this.ec2, (action, fn) => this.call(action, fn), ctx, region);
  }

  private call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    return cloudCall(this.ctx, this.policy, action, fn);
  }

  async prepare(spec: MachineSpec, resources?: ResourceRecorder): Promise<PreparedCloud> {
    const byArch = new Map<'x86_64' | 'arm64', string>();
    for (const type of spec.types) if (!byArch.has(awsArchitecture(type))) byArch.set(awsArchitecture(type), type);
    // The image and disk layout per architecture (a type list may mix x86_64 and arm64 types),
    // and which types the region offers, at once: the check adds no round trip.
    const images = new Map<string, PreparedImage>();
    const [offered, vpc] = await Promise.all([
      this.offeredHere(spec.types),
      this.options.securityGroup ? undefined : this.groups.vpcFor(this.options.subnets),
      ...[...byArch].map(async ([arch, type]) => images.set(arch, await this.prepareImage(spec, arch, type))),
    ]);
    const warnings: string[] = [];
    let types: string[] | undefined;
    if (offered === 'unchecked') {
      warnings.push(
        `the AWS credentials may not call ec2:DescribeInstanceTypeOfferings, so the types were not checked against ` +
          `what ${this.region} offers; grant it as in the README IAM policy`,
      );
    } else {
      types = spec.types.filter((t) => offered.has(t));
      if (types.length === 0) throw await this.notOffered(spec.types);
    }
    // The launch's own group is made with its first machine, so a launch refused before any
    // machine leaves none; every machine of the launch shares it.
    let group: Promise<string> | undefined;
    const groupFor = (request: MachineRequest): Promise<string> | undefined => {
      if (this.options.securityGroup) return undefined;
      group ??= this.groups.create(vpc!, request.tags, resources);
      return group;
    };
    return {
      // A spot machine keeps its metadata service on for the spot watch (root); without an instance
      // profile no job needs it, so a firewall rule on the machine keeps job code from the user data.
      scriptSettings: spec.spot ? { spotNotice: 'aws', metadataRootOnly: !this.options.instanceProfile } : {},
      places: this.options.subnets.length > 0 ? this.options.subnets : [undefined],
      ...(types ? { types } : {}),
      warnings,
      launch: async (request, placement) => {
        const own = await groupFor(request);
        return this.launch(spec, images, request, placement, own ?? this.options.securityGroup!);
      },
      online: (machine) => this.closeMetadata(machine),
    };
  }

  /**
   * Turns the machine's metadata service off once its runner is online: the user data, which holds
   * a reusable runner's registration token, cannot be changed while the instance runs
   * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html: only a
   * stopped instance's), and job code could read it there. Waits until EC2 says the change is
   * applied (ModifyInstanceMetadataOptions answers `pending` first:
   * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceMetadataOptions.html).
   * Left on when something on the machine still needs it: an instance profile's credentials, read
   * by job code, and a spot machine's interruption notice, polled by the startup script (without an
   * instance profile, the script's firewall rule closes it to job code: METADATA_ROOT_ONLY).
   */
  private async closeMetadata(machine: Machine): Promise<void> {
    if (this.options.instanceProfile || machine.spot) return;
    await this.call('ec2:ModifyInstanceMetadataOptions', () =>
      this.ec2.send(new ModifyInstanceMetadataOptionsCommand({ InstanceId: machine.id, HttpEndpoint: 'disabled' })),
    );
    const started = this.ctx.clock.now();
    for (let wait = 200; ; wait = Math.min(wait * 2, 5_000)) {
      const out = await this.call('ec2:DescribeInstances', () =>
        this.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [machine.id] }] })),
      );
      const options = out.Reservations?.[0]?.Instances?.[0]?.MetadataOptions;
      if (options?.State === 'applied' && options.HttpEndpoint === 'disabled') return;
      if (this.ctx.clock.now() - started > 60_000) {
        throw new Error(`the metadata service of ${machine.id} was not turned off within a minute`);
      }
      await this.ctx.clock.sleep(wait, this.ctx.signal);
    }
  }

  listResources(filter: {
    repo: string;
    runId?: string;
  }): Promise<Array<CloudResource & { inUse: boolean; held: boolean }>> {
    return this.groups.list(filter);
  }

  deleteResource(resource: CloudResource): Promise<'deleted' | 'gone' | 'in use'> {
    return this.groups.delete(resource);
  }

  /** The types this region offers among `types`, or `unchecked` when the credentials may not ask. */
  private async offeredHere(types: readonly string[]): Promise<Set<string> | 'unchecked'> {
    try {
      return await this.offeredIn(this.ec2, this.region, types);
    } catch (err) {
      if (err instanceof CloudError && err.code === 'UnauthorizedOperation') return 'unchecked';
      throw err;
    }
  }

  /** DescribeInstanceTypeOfferings in a region (LocationType region), every page. */
  private async offeredIn(ec2: EC2Client, region: string, types: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    let NextToken: string | undefined;
    do {
      const out = await this.call(`ec2:DescribeInstanceTypeOfferings in ${region}`, () =>
        ec2.send(
          new DescribeInstanceTypeOfferingsCommand({
            LocationType: 'region',
            Filters: [{ Name: 'instance-type', Values: [...types] }],
            NextToken,
          }),
        ),
      );
      for (const o of out.InstanceTypeOfferings ?? []) if (o.InstanceType) found.add(o.InstanceType);
      NextToken = out.NextToken;
    } while (NextToken);
    return found;
  }

  /** The error for types this region offers none of, naming the regions that do (asked at once). */
  private async notOffered(types: readonly string[]): Promise<CloudError> {
    const endpoint = this.ctx.env.AWS_ENDPOINT_URL_EC2 || this.ctx.env.AWS_ENDPOINT_URL;
    const regions = OTHER_REGIONS.filter((r) => r !== this.region);
    const answers = await Promise.allSettled(
      regions.map(async (region) => {
        const ec2 = new EC2Client(clientConfig(region, this.ctx.env, endpoint));
        try {
          return await this.offeredIn(ec2, region, types);
        } finally {
          ec2.destroy();
        }
      }),
    );
    // A region that did not answer (not enabled for the account, a policy limited to one region) is left out.
    const where = types.map((type) => {
      const offering = regions.filter((_r, i) => {
        const a = answers[i]!;
        return a.status === 'fulfilled' && a.value.has(type);
      });
      return `${type} in ${offering.length > 0 ? offering.join(', ') : 'none of the regions asked'}`;
    });
    const list = types.join(', ');
    return awsRefusal(
      'InstanceTypeNotOffered',
      `${this.region} offers none of the types ${list} (ec2:DescribeInstanceTypeOfferings). ` +
        `Offered: ${where.join('; ')}`,
      'Give a region that offers them in region (a native AWS region such as us-east-2 works too), or types that ' +
        `${this.region} offers. Nothing was created.`,
      'permanent',
    );
  }

  private async prepareImage(spec: MachineSpec, arch: 'x86_64' | 'arm64', type: string): Promise<PreparedImage> {
    const imageId = await this.resolveImageId(spec, arch);
    const images = await this.call('ec2:DescribeImages', () =>
      this.ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })),
    );
    const image = images.Images?.[0];
    if (!image?.RootDeviceName) {
      throw awsRefusal('InvalidAMIID.NotFound', `image ${imageId} was not found in ${this.region}`);
    }
    if (image.Architecture && image.Architecture !== arch) {
      throw awsRefusal(
        'ArchitectureMismatch',
        `image ${imageId} is ${image.Architecture} but ${type} needs ${arch}`,
        'Pick an image for the type architecture, or leave the image input empty.',
      );
    }
    // The root volume must be mapped at the image's own root device name, or EC2 adds a second
    // disk instead of growing the root (RootDeviceName differs between AMIs: /dev/sda1, /dev/xvda).
    const rootSnapshotGb =
      image.BlockDeviceMappings?.find((b) => b.DeviceName === image.RootDeviceName)?.Ebs?.VolumeSize ?? 8;
    const size = Math.max(spec.hddSizeGb ?? rootSnapshotGb, rootSnapshotGb);
    return {
      imageId,
      blockDevices: [
        { DeviceName: image.RootDeviceName, Ebs: { VolumeSize: size, VolumeType: 'gp3', DeleteOnTermination: true } },
      ],
    };
  }

  /** The image input, an SSM parameter it names, or the public parameter for GPU or CPU Ubuntu. */
  private async resolveImageId(spec: MachineSpec, arch: 'x86_64' | 'arm64'): Promise<string> {
    if (spec.image?.startsWith('ami-')) return spec.image;
    const name = spec.image ?? AWS_IMAGE_PARAMETERS[spec.wantsGpu ? 'gpu' : 'cpu'][arch];
    const out = await this.call(`ssm:GetParameter ${name}`, () =>
      this.ssm.send(new GetParameterCommand({ Name: name })),
    );
    const value = out.Parameter?.Value;
    if (!value?.startsWith('ami-')) {
      throw awsRefusal('InvalidParameter', `SSM parameter ${name} does not hold an AMI id`, 'Check the image input.');
    }
    return value;
  }

  private async launch(
    spec: MachineSpec,
    images: ReadonlyMap<string, PreparedImage>,
    request: MachineRequest,
    placement: Placement,
    securityGroup: string,
  ): Promise<Machine> {
    const { type, spot, where: subnet } = placement;
    const image = images.get(awsArchitecture(type));
    if (!image) throw new Error('prepare() must run before launch()');
    const tags: Tag[] = Object.entries(request.tags).map(([Key, Value]) => ({ Key, Value }));
    const input: RunInstancesCommandInput = {
      ImageId: image.imageId,
      InstanceType: type as _InstanceType,
      MinCount: 1,
      MaxCount: 1,
      ClientToken: request.clientToken,
      // Gzipped (cloud-init unpacks it): the script, its settings and a 6 KB startup-script stay
      // well under the 16 KB user-data limit.
      UserData: gzipSync(Buffer.from(request.startupScript, 'utf8'), { level: 9 }).toString('base64'),
      // A guest shutdown deletes the machine: the runner ends itself and nothing stays billed.
      InstanceInitiatedShutdownBehavior: 'terminate',
      // IMDSv2 only, and one hop so containers in the job cannot reach instance credentials.
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
      BlockDeviceMappings: image.blockDevices,
      TagSpecifications: (['instance', 'volume', 'network-interface'] as const).map((ResourceType) => ({
        ResourceType,
        Tags: tags,
      })),
      SubnetId: subnet,
      SecurityGroupIds: [securityGroup],
      IamInstanceProfile: this.instanceProfile(),
      InstanceMarketOptions: spot
        ? {
            MarketType: 'spot',
            SpotOptions: {
              SpotInstanceType: 'one-time',
              InstanceInterruptionBehavior: 'terminate',
              MaxPrice: spec.spotPrice === undefined ? undefined : String(spec.spotPrice),
            },
          }
        : undefined,
    };
    // Retried with the same input, so with the same ClientToken: EC2 answers a repeat with the
    // instance the first call made (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html).
    const out = await this.call('ec2:RunInstances', () => this.ec2.send(new RunInstancesCommand(input))).catch(
      (err: unknown) => {
        // With on-demand-fallback the lifecycle moves on to on-demand and names only the code: say
        // once what gives spot back.
        if (err instanceof CloudError && err.code === SPOT_ROLE_REFUSED && !this.spotRoleAdvised) {
          this.spotRoleAdvised = true;
          this.ctx.log.warning(err.advice);
        }
        throw err;
      },
    );
    const inst = out.Instances?.[0];
    if (!inst?.InstanceId) throw awsRefusal('NoInstance', 'RunInstances returned no instance', '');
    return { id: inst.InstanceId, type, spot, zone: inst.Placement?.AvailabilityZone };
  }

  private instanceProfile(): { Arn: string } | { Name: string } | undefined {
    const profile = this.options.instanceProfile;
    if (!profile) return undefined;
    return profile.startsWith('arn:') ? { Arn: profile } : { Name: profile };
  }

  async states(ids: readonly string[]): Promise<Map<string, MachineStatus>> {
    const states = new Map<string, MachineStatus>(ids.map((id) => [id, { state: 'gone' }]));
    if (ids.length === 0) return states;
    // A filter, unlike InstanceIds, does not fail the whole call for an id EC2 has forgotten.
    const out = await this.call('ec2:DescribeInstances', () =>
      this.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: [...ids] }] })),
    );
    for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      if (!inst.InstanceId) continue;
      // StateReason says why an instance ended early: Server.SpotInstanceTermination,
      // Client.InstanceInitiatedShutdown...
      const reason = inst.StateReason?.Message;
      states.set(inst.InstanceId, {
        state: EC2_STATES[inst.State?.Name ?? ''] ?? 'gone',
        ...(reason ? { detail: reason } : {}),
      });
    }
    return states;
  }

  async list(filter: { repo: string; runId?: string }): Promise<ManagedMachine[]> {
    const filters = [
      { Name: `tag:${TAG.managed}`, Values: ['true'] },
      { Name: `tag:${TAG.repo}`, Values: [filter.repo] },
      ...(filter.runId ? [{ Name: `tag:${TAG.runId}`, Values: [filter.runId] }] : []),
    ];
    const found: ManagedMachine[] = [];
    let NextToken: string | undefined;
    do {
      const out = await this.call('ec2:DescribeInstances', () =>
        this.ec2.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: 500, NextToken })),
      );
      for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        if (!inst.InstanceId) continue;
        const tags = Object.fromEntries((inst.Tags ?? []).map((t) => [t.Key ?? '', t.Value]));
        found.push(
          managedFromTags(inst.InstanceId, tags, {
            state: EC2_STATES[inst.State?.Name ?? ''] ?? 'gone',
            ...(inst.LaunchTime ? { createdAt: inst.LaunchTime.getTime() } : {}),
          }),
        );
      }
      NextToken = out.NextToken;
    } while (NextToken);
    return found;
  }

  async consoleLog(id: string): Promise<string> {
    const get = (Latest: boolean) =>
      this.call('ec2:GetConsoleOutput', () => this.ec2.send(new GetConsoleOutputCommand({ InstanceId: id, Latest })));
    let out: Awaited<ReturnType<typeof get>>;
    try {
      out = await get(true);
    } catch (err) {
      // Only Nitro instances give the latest output; a Xen one (t2, m4, c4, p3) refuses Latest
      // (UnsupportedOperation) but still has the output last posted.
      if (!(err instanceof CloudError) || err.kind !== 'permanent') throw err;
      out = await get(false);
    }
    return out.Output ? Buffer.from(out.Output, 'base64').toString('utf8') : '';
  }

  async terminate(id: string): Promise<'terminated' | 'gone'> {
    return endedOrGone(async () => {
      const out = await this.call('ec2:TerminateInstances', () =>
        this.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] })),
      );
      // Already terminated, or already on its way there (a shutdown the machine started itself).
      const previous = out.TerminatingInstances?.[0]?.PreviousState?.Name;
      return previous === 'terminated' || previous === 'shutting-down' ? 'gone' : 'terminated';
    });
  }

  async findByClientToken(clientToken: string): Promise<string[]> {
    const out = await this.call('ec2:DescribeInstances', () =>
      this.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'client-token', Values: [clientToken] }] })),
    );
    return (out.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .filter((i) => i.State?.Name !== 'terminated')
      .map((i) => i.InstanceId!)
      .filter(Boolean);
  }
}
