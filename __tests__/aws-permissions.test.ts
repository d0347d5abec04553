import { afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { EC2Client, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import {
  ACCOUNT_ID,
  INSTANCE_PROFILE_POLICY_FILE,
  LAUNCHER_POLICY_FILE,
  type PolicyDocument,
  type PolicyStatement,
  SANDBOX_ADMIN_CREDENTIALS,
  SANDBOX_CREDENTIALS,
  VPC_ID,
  readPolicy,
} from '../sandbox/ec2.js';
import type { Sandbox } from '../sandbox/index.js';
import {
  type Attempt,
  MemoryLog,
  attemptLaunch,
  cleanupLedger,
  cleanupRunOf,
  cloudFor,
  settle,
  sweepOf,
} from './helpers.js';
import { useSandbox } from './support/sandbox.js';
import { until } from './support/wait.js';

/**
 * The AWS launching identity is held by the fake EC2 and SSM to the policy the README documents
 * (docs/permissions/aws/launcher-policy.json, read from the file). Each statement, and each
 * action of a statement with several, is removed in turn: the launch (or the cleanup or sweep
 * that needs it) fails naming what is missing, and nothing is left behind. The tag conditions
 * keep the launcher's hands off instances that are not the action's own.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

afterEach(() => {
  sb.ec2.iam.setLauncherPolicies();
  sb.ec2.setSpotRole({ creation: true });
});

const DOCUMENTED = readPolicy(LAUNCHER_POLICY_FILE);
const statementsOf = (doc: PolicyDocument): PolicyStatement[] =>
  Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
const actionsOf = (s: PolicyStatement): string[] =>
  s.Action === undefined ? [] : Array.isArray(s.Action) ? s.Action : [s.Action];

/** The documented policy without one action of one statement (without the statement when it is its only action). */
function without(sid: string, action: string): PolicyDocument {
  const statements = statementsOf(DOCUMENTED).flatMap((s) => {
    if (s.Sid !== sid) return [s];
    const rest = actionsOf(s).filter((a) => a !== action);
    return rest.length > 0 ? [{ ...s, Action: rest }] : [];
  });
  return { ...DOCUMENTED, Statement: statements };
}

const REGION = 'us-east-1';
const instanceArn = (id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT_ID}:${id}`;
const launched = () => sb.ec2.instances().length;

/** A launch that must fail before anything is created, naming the missing permission. */
async function refusedBeforeCreating(inputs: Record<string, string>, ...expected: string[]): Promise<Attempt> {
  const before = launched();
  const attempt = await attemptLaunch(sb, { labels: 'cml-permissions', ...inputs });
  expect(attempt.error).toBeDefined();
  for (const text of expected) expect(attempt.error!.message).toContain(text);
  expect(launched()).toBe(before);
  return attempt;
}

/** What each documented permission is needed for: the run that fails without it, and how. */
const NEEDED_FOR: Record<string, () => Promise<void>> = {
  'LaunchOnlyTaggedRunners ec2:RunInstances': async () => {
    await refusedBeforeCreating(
      {},
      `is not authorized to perform: ec2:RunInstances on resource: ${instanceArn('instance/*')} because no ` +
        'identity-based policy allows the ec2:RunInstances action',
    );
  },
  'LaunchFromImagesIntoSubnets ec2:RunInstances': async () => {
    await refusedBeforeCreating(
      {},
      `ec2:RunInstances on resource: arn:aws:ec2:${REGION}::image/${sb.ec2.images.ubuntuX64}`,
    );
  },
  'TagOnlyAtLaunch ec2:CreateTags': async () => {
    await refusedBeforeCreating({}, `ec2:CreateTags on resource: ${instanceArn('instance/*')}`);
  },
  'EndAndReadOnlyTaggedRunners ec2:TerminateInstances': async () => {
    // Launching needs no termination; `mode: cleanup` and `mode: sweep` do, and say so.
    const { error, result } = await attemptLaunch(sb, { labels: 'cml-no-terminate' });
    expect(error).toBeUndefined();
    const id = result!.runners[0]!.machine.id;
    await expect(cleanupRunOf(sb)).rejects.toThrow(
      `ec2:TerminateInstances on resource: ${instanceArn(`instance/${id}`)}`,
    );
    await expect(sweepOf(sb, 'aws', 0)).rejects.toThrow('is not authorized to perform: ec2:TerminateInstances');
    expect(sb.ec2.instance(id)!.state).toBe('running');
    sb.ec2.iam.setLauncherPolicies();
    await cleanupRunOf(sb);
  },
  'EndAndReadOnlyTaggedRunners ec2:GetConsoleOutput': async () => {
    // The console is read only to explain a failed launch; without it the error says why it is missing.
    const { error } = await attemptLaunch(sb, {
      labels: 'cml-no-console',
      'startup-script': 'echo "E: broken" >&2; exit 3',
    });
    expect(error?.message).toContain('the console could not be read');
    expect(error?.message).toContain('is not authorized to perform: ec2:GetConsoleOutput on resource');
  },
  'CloseMetadataOfTaggedRunners ec2:ModifyInstanceMetadataOptions': async () => {
    // Turning the metadata service off is a warning when refused: the runner stays, its IMDS on.
    const log = new MemoryLog();
    const { error, result } = await attemptLaunch(sb, { labels: 'cml-no-imds-off' }, undefined, '4242', log);
    expect(error).toBeUndefined();
    const id = result!.runners[0]!.machine.id;
    expect(log.lines).toContainEqual(
      expect.stringContaining(`ec2:ModifyInstanceMetadataOptions on resource: ${instanceArn(`instance/${id}`)}`),
    );
    expect(sb.ec2.instance(id)!.metadataOptions.httpEndpoint).toBe('enabled');
    await cleanupRunOf(sb);
  },
  'CreateOnlyTaggedGroups ec2:CreateSecurityGroup': async () => {
    await refusedBeforeCreating({}, `ec2:CreateSecurityGroup on resource: ${instanceArn('security-group/*')}`);
    expect(sb.ec2.securityGroups()).toEqual([]);
  },
  'CreateGroupsInVpcs ec2:CreateSecurityGroup': async () => {
    await refusedBeforeCreating({}, `ec2:CreateSecurityGroup on resource: ${instanceArn(`vpc/${VPC_ID}`)}`);
    expect(sb.ec2.securityGroups()).toEqual([]);
  },
  'TagGroupsOnlyAtCreation ec2:CreateTags': async () => {
    await refusedBeforeCreating({}, `ec2:CreateTags on resource: ${instanceArn('security-group/*')}`);
    expect(sb.ec2.securityGroups()).toEqual([]);
  },
  'DeleteOnlyTaggedGroups ec2:DeleteSecurityGroup': async () => {
    // A failed launch: main ends the machine but may not delete the group, and says so; post can.
    sb.machines.failBoot(1);
    const { error, ledger, log } = await attemptLaunch(sb, { labels: 'cml-no-group-delete', 'startup-timeout': '5' });
    expect(error).toBeDefined();
    const group = sb.ec2.securityGroups()[0]!;
    expect(log.lines).toContainEqual(
      expect.stringContaining(`ec2:DeleteSecurityGroup on resource: ${instanceArn(`security-group/${group.id}`)}`),
    );
    expect(ledger!.resources![0]!.ended).toBeUndefined();
    sb.ec2.iam.setLauncherPolicies();
    const report = await cleanupLedger(sb, ledger!);
    expect(report.resources.map((r) => r.result)).toEqual(['deleted']);
  },
  'Describe ec2:DescribeSecurityGroups': async () => {
    // Cleanup and sweep find the groups by their tags; without the permission they fail naming it.
    const { error } = await attemptLaunch(sb, { labels: 'cml-no-describe-groups' });
    expect(error).toBeUndefined();
    await expect(cleanupRunOf(sb)).rejects.toThrow('is not authorized to perform: ec2:DescribeSecurityGroups');
    await expect(sweepOf(sb, 'aws', 0)).rejects.toThrow('is not authorized to perform: ec2:DescribeSecurityGroups');
    sb.ec2.iam.setLauncherPolicies();
    await cleanupRunOf(sb);
  },
  'Describe ec2:DescribeSubnets': async () => {
    await refusedBeforeCreating({ 'aws-subnet': 'subnet-0a1' }, 'is not authorized to perform: ec2:DescribeSubnets');
  },
  'Describe ec2:DescribeVpcs': async () => {
    await refusedBeforeCreating({}, 'is not authorized to perform: ec2:DescribeVpcs');
  },
  'Describe ec2:DescribeImages': async () => {
    await refusedBeforeCreating(
      {},
      'is not authorized to perform: ec2:DescribeImages because no identity-based policy allows the ' +
        'ec2:DescribeImages action',
    );
  },
  'Describe ec2:DescribeInstanceTypeOfferings': async () => {
    // Only a check: without it the launch goes on, with a warning naming the permission.
    const log = new MemoryLog();
    const { error } = await attemptLaunch(sb, { labels: 'cml-no-offerings' }, undefined, '4242', log);
    expect(error).toBeUndefined();
    expect(log.lines).toContainEqual(expect.stringContaining('may not call ec2:DescribeInstanceTypeOfferings'));
    await cleanupRunOf(sb);
  },
  'Describe ec2:DescribeInstances': async () => {
    // Waiting for the machine reads its state: the launch fails naming the permission. Post ends
    // what the ledger names by id, which needs no Describe; `mode: cleanup` and `mode: sweep` find
    // machines by their tags, so they fail naming it.
    const { error, ledger } = await attemptLaunch(sb, { labels: 'cml-no-describe' });
    expect(error?.message).toContain(
      'is not authorized to perform: ec2:DescribeInstances because no identity-based policy allows',
    );
    await cleanupLedger(sb, ledger!);
    await expect(cleanupRunOf(sb)).rejects.toThrow('ec2:DescribeInstances');
    await expect(sweepOf(sb, 'aws', 0)).rejects.toThrow('ec2:DescribeInstances');
  },
  'CreateTheSpotRoleOnce iam:CreateServiceLinkedRole': async () => {
    // A new account: the first spot launch must create the EC2 Spot role; refused, it runs on-demand.
    sb.ec2.setSpotRole({ exists: false });
    const log = new MemoryLog();
    const { error, result } = await attemptLaunch(
      sb,
      { labels: 'cml-no-spot-role', spot: 'true' },
      undefined,
      '4242',
      log,
    );
    expect(error).toBeUndefined();
    expect(sb.ec2.instance(result!.runners[0]!.machine.id)!.spot).toBe(false);
    expect(log.lines).toContainEqual(expect.stringContaining('AuthFailure.ServiceLinkedRoleCreationNotPermitted'));
    expect(sb.ec2.spotServiceLinkedRole()).toBe(false);
    await cleanupRunOf(sb);
  },
  'FindPublicImages ssm:GetParameter': async () => {
    await refusedBeforeCreating(
      {},
      'AccessDeniedException',
      `is not authorized to perform: ssm:GetParameter on resource: arn:aws:ssm:${REGION}::parameter/aws/service/`,
    );
  },
};

describe('every permission of the documented launcher policy is needed', () => {
  const pairs = statementsOf(DOCUMENTED).flatMap((s) => actionsOf(s).map((a) => `${s.Sid} ${a}`));

  test('the table covers every statement and action of the file', () => {
    expect(Object.keys(NEEDED_FOR).sort()).toEqual([...pairs].sort());
  });

  test.each(pairs)('without %s', async (pair) => {
    const [sid, action] = pair.split(' ') as [string, string];
    sb.ec2.iam.setLauncherPolicies(without(sid, action));
    await NEEDED_FOR[pair]!();
    sb.ec2.iam.setLauncherPolicies();
    expect(await settle(sb)).toEqual([]);
  });
});

describe('aws-instance-profile needs the documented iam:PassRole statement', () => {
  test('without it the launch is refused naming iam:PassRole and the role; with it the machine gets the profile', async () => {
    await refusedBeforeCreating(
      { 'aws-instance-profile': 'cml-runner-profile' },
      `is not authorized to perform: iam:PassRole on resource: arn:aws:iam::${ACCOUNT_ID}:role/cml-runner-machine`,
    );
    sb.ec2.iam.setLauncherPolicies(DOCUMENTED, readPolicy(INSTANCE_PROFILE_POLICY_FILE));
    const { error, result } = await attemptLaunch(sb, {
      labels: 'cml-profile',
      'aws-instance-profile': 'cml-runner-profile',
    });
    expect(error).toBeUndefined();
    expect(sb.ec2.instance(result!.runners[0]!.machine.id)!.iamInstanceProfile?.arn).toContain('cml-runner-profile');
    await cleanupRunOf(sb);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('the tag conditions', () => {
  const client = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
    new EC2Client({ endpoint: sb.env.AWS_ENDPOINT_URL_EC2, region: REGION, credentials, maxAttempts: 1 });

  test("a stranger's untagged instance survives mode: sweep and a direct terminate by the launcher", async () => {
    const admin = client(SANDBOX_ADMIN_CREDENTIALS);
    try {
      const out = await admin.send(
        new RunInstancesCommand({
          ImageId: sb.ec2.images.ubuntuX64,
          InstanceType: 't3.micro',
          MinCount: 1,
          MaxCount: 1,
          TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'cml-runner:repo', Value: 'octo-org/ml' }] }],
        }),
      );
      const id = out.Instances![0]!.InstanceId!;
      await until('the stranger runs', () => sb.ec2.instance(id)?.state === 'running', 10_000);

      const report = await sweepOf(sb, 'aws', 0);
      expect(report.machines.map((m) => m.id)).not.toContain(id);
      const cloud = await cloudFor(sb, 'aws', REGION);
      await expect(cloud.terminate(id)).rejects.toThrow(
        `is not authorized to perform: ec2:TerminateInstances on resource: ${instanceArn(`instance/${id}`)}`,
      );
      expect(sb.ec2.instance(id)!.state).toBe('running');

      await admin.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
      expect(await settle(sb)).toEqual([]);
    } finally {
      admin.destroy();
    }
  });

  test('the launcher may not launch untagged, and an explicit Deny wins over the Allow', async () => {
    const launcher = client(SANDBOX_CREDENTIALS);
    const run = (tags: boolean) =>
      launcher.send(
        new RunInstancesCommand({
          ImageId: sb.ec2.images.ubuntuX64,
          InstanceType: 't3.micro',
          MinCount: 1,
          MaxCount: 1,
          DryRun: true,
          ...(tags
            ? {
                TagSpecifications: (['instance', 'volume', 'network-interface'] as const).map((ResourceType) => ({
                  ResourceType,
                  Tags: [{ Key: 'cml-runner:managed', Value: 'true' }],
                })),
              }
            : {}),
        }),
      );
    try {
      await expect(run(false)).rejects.toMatchObject({
        name: 'UnauthorizedOperation',
        $metadata: { httpStatusCode: 403 },
        message: expect.stringMatching(
          /^You are not authorized to perform this operation\. User: arn:aws:sts::\d{12}:assumed-role\/.+ is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-1:\d{12}:instance\/\* because no identity-based policy allows the ec2:RunInstances action\. Encoded authorization failure message: \S+$/,
        ),
      });
      await expect(run(true)).rejects.toMatchObject({ name: 'DryRunOperation' });
      sb.ec2.iam.setLauncherPolicies(DOCUMENTED, {
        Version: '2012-10-17',
        Statement: { Effect: 'Deny', Action: 'ec2:Run*', Resource: 'arn:aws:ec2:*:*:subnet/*' },
      });
      await expect(run(true)).rejects.toMatchObject({
        name: 'UnauthorizedOperation',
        message: expect.stringContaining('/subnet-0a1 with an explicit deny in an identity-based policy'),
      });
      expect(sb.ec2.instances().filter((i) => i.state !== 'terminated')).toEqual([]);
    } finally {
      launcher.destroy();
    }
  });
});
