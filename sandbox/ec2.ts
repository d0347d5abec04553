/**
 * Fake EC2: the Query API (form-encoded `POST /`, `Action=...&Version=2016-11-15`) with XML
 * answers, driven by the real `@aws-sdk/client-ec2` over loopback HTTP.
 *
 * Strict on purpose: it checks the SigV4 signature, authorises every call of the launching
 * identity against the documented IAM policy (ec2/iam.ts), checks every parameter the product
 * sends, and answers with EC2's own error codes and messages (checked against the EC2 API reference and
 * the errors real users report). Instances really boot: their user data runs as a sandbox
 * machine (see machine.ts), and a `shutdown` inside the machine ends the instance the way
 * `InstanceInitiatedShutdownBehavior` says.
 *
 * Implemented actions: RunInstances, DescribeInstances, TerminateInstances, DescribeImages,
 * DescribeInstanceTypes, DescribeInstanceTypeOfferings, GetConsoleOutput,
 * ModifyInstanceMetadataOptions, CreateSecurityGroup, DescribeSecurityGroups, DeleteSecurityGroup,
 * DescribeSubnets, DescribeVpcs. Anything else is `InvalidAction`.
 *
 * Regions matter: a request's region is its SigV4 credential scope. Instances live in the region
 * they were launched in, and each region offers only the types ec2/offerings.ts gives it
 * (RunInstances of another is `Unsupported`). The account starts without the EC2 Spot
 * service-linked role; the first spot launch creates it, or is refused when the caller may not.
 *
 * The same server is each instance's metadata service (IMDS) under `/_imds/<instance-id>`, which
 * its machine finds in `AWS_EC2_METADATA_SERVICE_ENDPOINT` (the variable the AWS SDKs read). It
 * answers as IMDS does: IMDSv2 session tokens, the instance's metadata options, and the spot
 * interruption notice `spot/instance-action` once `interruptSpot()` publishes it.
 */
import { type FaultPlan, pipeline } from './core/index.js';
import { KNOWN_IMAGES } from './ec2/catalog.js';
import { authError, faultError, unauthorizedError } from './ec2/errors.js';
import { type AccessRequest, AwsIam } from './ec2/iam.js';
import { IMDS_PATH, IMDS_PREFIX, answerImds } from './ec2/imds.js';
import { interruptSpot } from './ec2/lifecycle.js';
import { type Ec2Request, RESOURCE_LEVEL_ACTIONS, checkAction, dispatch, errorAnswer, identify } from './ec2/routes.js';
import { verifySigV4 } from './ec2/sigv4.js';
import { type Ec2SecurityGroup, Ec2Store } from './ec2/store.js';
import { serve } from './http.js';
import { type Machine, MachineFleet } from './machine.js';

export {
  ACCOUNT_ID,
  DEFAULT_SUBNET,
  EC2_NS,
  type GpuArchitecture,
  type GpuModel,
  IMAGES,
  type ImageSpec,
  INSTANCE_PROFILES,
  INSTANCE_TYPES,
  type InstanceTypeSpec,
  KNOWN_IMAGES,
  SECURITY_GROUPS,
  SUBNETS,
  VPC_ID,
  VPCS,
} from './ec2/catalog.js';
export type { Ec2SecurityGroup } from './ec2/store.js';
export { Ec2Error, faultStatus } from './ec2/errors.js';
export {
  type AccessRequest,
  AwsIam,
  type Denial,
  INSTANCE_PROFILE_POLICY_FILE,
  LAUNCHER_POLICY_FILE,
  LAUNCHER_PRINCIPAL,
  type PolicyDocument,
  type PolicyStatement,
  denialSentence,
  evaluate,
  evaluateTrust,
  TRUST_POLICY_FILE,
  readPolicy,
} from './ec2/iam.js';
export { FAMILY_REGIONS, offered } from './ec2/offerings.js';
export { type SigV4Failure, type SigV4Result, verifySigV4 } from './ec2/sigv4.js';

/** The launching identity's keys: what the product is given. IAM holds it to its policies (see ec2/iam.ts). */
export const SANDBOX_CREDENTIALS = { accessKeyId: 'AKIASANDBOX', secretAccessKey: 'sandbox-secret' } as const;
/** An administrator of the same account, for a test's own setup: IAM allows it everything. */
export const SANDBOX_ADMIN_CREDENTIALS = {
  accessKeyId: 'AKIASANDBOXADMIN',
  secretAccessKey: 'sandbox-admin-secret',
} as const;

// ---------------------------------------------------------------------------------------------
// Inventory

export type InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

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
  spotOptions?: {
    spotInstanceType: 'one-time' | 'persistent';
    instanceInterruptionBehavior: 'terminate' | 'stop' | 'hibernate';
    maxPrice?: string;
  };
  /** Decoded user data (after gunzip if it was gzipped), as text. */
  userData: string;
  /** Size in bytes of the decoded user data as sent (before any gunzip). */
  userDataBytes: number;
  shutdownBehavior: 'stop' | 'terminate';
  metadataOptions: {
    httpTokens: 'optional' | 'required';
    httpPutResponseHopLimit: number;
    httpEndpoint: 'enabled' | 'disabled';
  };
  /**
   * Options a ModifyInstanceMetadataOptions asked for, until they apply (DescribeInstances shows
   * the state `pending` meanwhile, and the metadata service still answers as before).
   */
  metadataChange?: Ec2Instance['metadataOptions'];
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
  /** The request parameters faults match on (see ec2/routes.ts); absent for an unknown action. */
  params?: Record<string, string>;
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
  /**
   * Whether the account lets anyone create the EC2 Spot service-linked role. Default true; the
   * launching identity also needs iam:CreateServiceLinkedRole in its policies.
   */
  spotRoleCreation?: boolean;
  /** The account's IAM (shared with the fake SSM). Default: the documented launcher policy. */
  iam?: AwsIam;
}

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
  /** Security groups made by CreateSecurityGroup and not deleted (the default group is not one). */
  securityGroups(): Ec2SecurityGroup[];
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
  /** Whether the account has the AWSServiceRoleForEC2Spot service-linked role (a spot launch created it). */
  spotServiceLinkedRole(): boolean;
  /**
   * Sets whether the caller may create the EC2 Spot service-linked role, and whether the account
   * has it (`exists`, default unchanged): a test can start from an account that never launched spot.
   */
  setSpotRole(how: { creation?: boolean; exists?: boolean }): void;
  /** The policies IAM holds the launching identity to: `sb.ec2.iam.setLauncherPolicies(doc)` substitutes them. */
  iam: AwsIam;
  close(): Promise<void>;
}

/**
 * Starts the fake on a loopback port. Its parts: the state (ec2/store.ts), the routes
 * (ec2/routes.ts), the checks (ec2/validation.ts), the actions (ec2/controllers/), the instances'
 * lives (ec2/lifecycle.ts) and their metadata service (ec2/imds.ts). Every API request is served
 * through the sandbox's one pipeline: latency, Action, SigV4, the Action and Version refused or
 * not, fault, controller, call log.
 */
export async function startFakeEc2(opts: FakeEc2Options): Promise<FakeEc2> {
  const machines = opts.machines ?? new MachineFleet();
  const ownsMachines = opts.machines === undefined;
  const creds = opts.credentials ?? SANDBOX_CREDENTIALS;
  const iam = opts.iam ?? new AwsIam();
  const store = new Ec2Store(
    {
      bootDelayMs: opts.bootDelayMs ?? 100,
      shutdownDelayMs: opts.shutdownDelayMs ?? 100,
      terminatedVisibleMs: opts.terminatedVisibleMs ?? 60 * 60 * 1000,
      spotRoleCreation: opts.spotRoleCreation ?? true,
    },
    machines,
  );
  const calls: Ec2Call[] = [];

  const authorize = (who: { accessKeyId: string }, requests: readonly AccessRequest[]): void => {
    const denied = iam.check(who.accessKeyId === SANDBOX_ADMIN_CREDENTIALS.accessKeyId, requests);
    if (denied) throw unauthorizedError(denied);
  };
  const api = pipeline<Ec2Request, { region: string; accessKeyId: string }>({
    service: 'ec2',
    faults: opts.faults,
    ...(opts.latencyMs ? { latencyMs: opts.latencyMs } : {}),
    identify,
    authenticate: (req, body) => {
      let auth = verifySigV4(req, body, { service: 'ec2', ...creds });
      if (!auth.ok && auth.failure === 'unknown-key' && auth.detail === SANDBOX_ADMIN_CREDENTIALS.accessKeyId)
        auth = verifySigV4(req, body, { service: 'ec2', ...SANDBOX_ADMIN_CREDENTIALS });
      if (!auth.ok) throw authError(auth.failure, auth.detail);
      return { region: auth.region, accessKeyId: auth.accessKeyId };
    },
    // Actions without resource-level permissions are authorised on `*` here; the others in their
    // controllers, once the resources they touch are known.
    authorize: (who, request) => {
      checkAction(request);
      if (!RESOURCE_LEVEL_ACTIONS.has(request.action))
        authorize(who, [{ action: `ec2:${request.action}`, resource: '*' }]);
    },
    identityOf: (who) => who.accessKeyId,
    faultError: (fault) => faultError(fault),
    handle: (request, who) =>
      dispatch(store, request, { region: who.region, authorize: (requests) => authorize(who, requests) }),
    errorAnswer,
    record: (call) =>
      calls.push({
        action: call.action,
        status: call.status,
        ...(call.code ? { code: call.code } : {}),
        ...(call.params ? { params: call.params } : {}),
        at: call.at,
        ms: call.ms,
      }),
  });

  // The instances' metadata services share the server but are not the EC2 API: no latency, no faults.
  const server = await serve('ec2', async (req, body, res) => {
    const imds = IMDS_PATH.exec(req.url ?? '');
    if (imds) answerImds(store, req, res, decodeURIComponent(imds[1]!), imds[2] || '/');
    else await api(req, body, res);
  });
  store.imdsUrl = `${server.url}${IMDS_PREFIX}`;

  return {
    url: server.url,
    calls,
    instances: () => [...store.all],
    instance: (id) => store.byId.get(id),
    images: KNOWN_IMAGES,
    consoleOf: (id) => store.byId.get(id)?.console() ?? '',
    volumes: () => store.all.flatMap((i) => i.blockDevices),
    spotRequests: () => store.spotRequests(),
    securityGroups: () => [...store.securityGroups.values()],
    spotPrice: (type) => store.spotPrice(type),
    setSpotPrice: (type, price) => {
      store.spotPrices.set(type, price);
    },
    interruptSpot: (instanceId, how) => interruptSpot(store, instanceId, how),
    leftovers: () => store.leftovers(),
    spotServiceLinkedRole: () => store.spotServiceLinkedRole,
    setSpotRole: ({ creation, exists }) => {
      if (creation !== undefined) store.settings.spotRoleCreation = creation;
      if (exists !== undefined) store.spotServiceLinkedRole = exists;
    },
    iam,
    close: async () => {
      store.timers.close();
      await server.close();
      if (ownsMachines) await machines.killAll();
      else await Promise.all(store.all.map((i) => i.machine?.kill()));
    },
  };
}
