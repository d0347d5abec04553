"use strict";
exports.id = 916;
exports.ids = [916];
exports.modules = {

/***/ 19916:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  AwsCloud: () => (/* binding */ AwsCloud),
  createCloud: () => (/* binding */ createCloud)
});

// EXTERNAL MODULE: external "node:zlib"
var external_node_zlib_ = __webpack_require__(38522);
// EXTERNAL MODULE: ./node_modules/@aws-sdk/client-ec2/dist-cjs/index.js
var dist_cjs = __webpack_require__(35193);
// EXTERNAL MODULE: ./node_modules/@aws-sdk/client-ssm/dist-cjs/index.js
var client_ssm_dist_cjs = __webpack_require__(34736);
// EXTERNAL MODULE: ./src/errors.ts
var errors = __webpack_require__(83916);
// EXTERNAL MODULE: ./src/clouds/call.ts
var call = __webpack_require__(15268);
// EXTERNAL MODULE: ./src/clouds/tags.ts
var clouds_tags = __webpack_require__(1061);
// EXTERNAL MODULE: ./src/clouds/aws/catalog.ts
var catalog = __webpack_require__(77307);
;// CONCATENATED MODULE: ./src/clouds/aws/errors.ts


/**
 * What each EC2 and SSM error means: its kind, and what the user can do. Codes pass through
 * verbatim next to this advice. Codes: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
 */
const KNOWN = {
    InsufficientInstanceCapacity: {
        kind: 'capacity',
        advice: 'AWS has no capacity for this instance type in this availability zone right now. Give more types (type takes a ' +
            'comma list) or subnets in other zones (aws-subnet takes a comma list), another region, or spot: false.',
    },
    InsufficientCapacity: {
        kind: 'capacity',
        advice: 'AWS has no capacity for this request right now. Give more types or subnets, or another region.',
    },
    Unsupported: {
        kind: 'capacity',
        advice: 'This instance type is not offered in this availability zone. Give subnets in other zones (aws-subnet takes a ' +
            'comma list), or another region.',
    },
    SpotMaxPriceTooLow: {
        kind: 'market',
        advice: 'The spot-price input is below the current spot price. Raise it, or use spot-price: -1 to pay up to the ' +
            'on-demand price.',
    },
    // The account's first spot launch creates the EC2 Spot service-linked role; without the right
    // to create it, spot fails (403) while on-demand works: a market refusal, so on-demand-fallback applies.
    'AuthFailure.ServiceLinkedRoleCreationNotPermitted': {
        kind: 'market',
        advice: 'Spot needs the EC2 Spot service-linked role (AWSServiceRoleForEC2Spot), which the first spot launch in an ' +
            'account creates, and these credentials may not create it. Grant iam:CreateServiceLinkedRole for ' +
            'spot.amazonaws.com (see the README IAM policy), or create the role once with: aws iam ' +
            'create-service-linked-role --aws-service-name spot.amazonaws.com. Until then spot: false, or ' +
            'on-demand-fallback: true (the default), launches on-demand.',
    },
    MaxSpotInstanceCountExceeded: {
        kind: 'quota',
        advice: 'The account reached its spot instance quota in this region. Use spot: false or request a higher spot quota ' +
            'in Service Quotas.',
    },
    VcpuLimitExceeded: {
        kind: 'quota',
        advice: 'The account vCPU quota for this instance family in this region is too low. Request an increase in Service ' +
            'Quotas (for GPUs: "Running On-Demand G and VT instances" or "Running On-Demand P instances", or the Spot ' +
            'equivalents).',
    },
    InstanceLimitExceeded: {
        kind: 'quota',
        advice: 'The account instance quota in this region is reached. Request an increase in Service Quotas.',
    },
    UnauthorizedOperation: {
        kind: 'permanent',
        advice: 'The AWS credentials may not do this. Grant the actions in the README IAM policy to the role the workflow ' +
            'assumes.',
    },
    AuthFailure: {
        kind: 'permanent',
        advice: 'AWS did not accept the credentials. Check the AWS_* variables or the role ' +
            'aws-actions/configure-aws-credentials assumes.',
    },
    'InvalidAMIID.NotFound': {
        kind: 'permanent',
        advice: 'The image does not exist in this region. Check the image input and the region.',
    },
    'InvalidSubnetID.NotFound': {
        kind: 'permanent',
        advice: 'Check the aws-subnet input: the subnet must exist in this region.',
    },
    'InvalidGroup.NotFound': {
        kind: 'permanent',
        advice: 'Check the aws-security-group input: the group must exist in the subnet VPC.',
    },
    InvalidParameterValue: { kind: 'permanent', advice: 'Check the type, image, aws-instance-profile and tags inputs.' },
    ParameterNotFound: { kind: 'permanent', advice: 'Check the image input and the region.' },
    AccessDeniedException: { kind: 'permanent', advice: 'The credentials need ssm:GetParameter on public parameters.' },
    'InvalidGroup.Duplicate': { kind: 'permanent', advice: '' },
    /** A security group still used by an instance (one shutting down too): deleting it waits. */
    DependencyViolation: { kind: 'permanent', advice: 'An instance still uses the security group.' },
    /** An instance id EC2 no longer knows: terminated long ago. */
    'InvalidInstanceID.NotFound': { kind: 'gone', advice: '' },
};
/** Throttles and service-side failures: the same request may succeed. */
const TRANSIENT = new Set([
    'RequestLimitExceeded',
    'Throttling',
    'ThrottlingException',
    'TooManyRequestsException',
    'InternalError',
    'InternalFailure',
    'ServiceUnavailable',
    'Unavailable',
    'RequestTimeout',
    'RequestTimeoutException',
]);
/** The kind of an EC2 or SSM error, by its code, then by its HTTP status, then by its connection. */
function awsErrorKind(err) {
    const e = err;
    const code = e.name ?? '';
    const known = KNOWN[code];
    if (known)
        return known.kind;
    if (TRANSIENT.has(code))
        return 'transient';
    const status = e.$metadata?.httpStatusCode;
    if (status !== undefined)
        return status === 429 || status >= 500 ? 'transient' : 'permanent';
    return (0,call/* isConnectionError */.Rk)(err) ? 'transient' : 'permanent';
}
function awsError(err, action, region) {
    const code = err.name ?? 'Error';
    return new errors/* CloudError */.K2('AWS', code, `${action} in ${region}: ${(0,errors/* errorMessage */.gJ)(err)}`, KNOWN[code]?.advice ?? '', awsErrorKind(err));
}
const awsRetryAfterMs = (err) => (0,call/* retryAfterHeader */.W8)(err.$response?.headers?.['retry-after']);
/** A refusal made here, in the same shape as the service's. */
const awsRefusal = (code, detail, advice = KNOWN[code]?.advice ?? '', kind = KNOWN[code]?.kind ?? 'permanent') => new errors/* CloudError */.K2('AWS', code, detail, advice, kind);

// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(77598);
;// CONCATENATED MODULE: ./src/clouds/aws/groups.ts





/**
 * The security group a launch makes when `aws-security-group` is not given: one per launch, in the
 * VPC of its subnets (the default VPC without them), named after the launch's run and a random
 * part (names are unique per VPC), tagged like the machines. A new group has no inbound rule and
 * keeps the default outbound rule that allows all traffic ("Security groups for your VPC",
 * https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html): the runner reaches
 * GitHub, nothing reaches the runner.
 *
 * It is written to the ledger before CreateSecurityGroup, so a create whose answer never arrived
 * is found by name; a retry after a lost answer gets `InvalidGroup.Duplicate` and takes the group
 * the first call made. It is deleted after the machines: EC2 refuses with `DependencyViolation`
 * while an instance still uses it, one shutting down too
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html), so the
 * delete is tried again for up to three minutes, then reported as still in use.
 */
const GROUP_KIND = 'security-group';
/** How long a delete waits for instances that still hold the group. */
const DELETE_PATIENCE_MS = 180_000;
const FIRST_WAIT_MS = 500;
const LONGEST_WAIT_MS = 15_000;
/** Instance states that still hold a group and are not ending. */
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];
const ENDING_STATE = 'shutting-down';
class LaunchGroups {
    ec2;
    call;
    ctx;
    region;
    constructor(ec2, call, ctx, region) {
        this.ec2 = ec2;
        this.call = call;
        this.ctx = ctx;
        this.region = region;
    }
    /** The VPC the launch's machines go to: that of the subnets (which must share one), or the default VPC. */
    async vpcFor(subnets) {
        if (subnets.length > 0) {
            const out = await this.call('ec2:DescribeSubnets', () => this.ec2.send(new dist_cjs/* DescribeSubnetsCommand */.jSW({ SubnetIds: [...subnets] })));
            const vpcs = [...new Set((out.Subnets ?? []).map((s) => s.VpcId).filter((v) => Boolean(v)))];
            if (vpcs.length !== 1) {
                throw awsRefusal('InvalidParameterCombination', `the subnets ${subnets.join(', ')} are in ${vpcs.length} VPCs (${vpcs.join(', ')}), and a security group ` +
                    'belongs to one', 'Give subnets of one VPC in aws-subnet, or a security group of your own in aws-security-group.');
            }
            return vpcs[0];
        }
        const out = await this.call('ec2:DescribeVpcs', () => this.ec2.send(new dist_cjs/* DescribeVpcsCommand */.Dti({ Filters: [{ Name: 'is-default', Values: ['true'] }] })));
        const vpc = out.Vpcs?.[0]?.VpcId;
        if (!vpc) {
            throw awsRefusal('VPCIdNotSpecified', `${this.region} has no default VPC`, 'Give the subnets to launch in (aws-subnet), or a security group of your own (aws-security-group).');
        }
        return vpc;
    }
    /** Makes the launch's group in `vpcId`, recorded before the call; its tags are the first machine's, less its own. */
    async create(vpcId, machineTags, resources) {
        const runId = machineTags[clouds_tags/* TAG */.D.runId] ?? 'run';
        const name = `cml-runner-${runId}-${(0,external_node_crypto_.randomBytes)(4).toString('hex')}`;
        const { [clouds_tags/* TAG */.D.runner]: _runner, Name: _name, ...shared } = machineTags;
        const tags = Object.entries({ ...shared, Name: name }).map(([Key, Value]) => ({ Key, Value }));
        const entry = resources?.add(GROUP_KIND, name);
        let id;
        try {
            const out = await this.call('ec2:CreateSecurityGroup', () => this.ec2.send(new dist_cjs/* CreateSecurityGroupCommand */.x3C({
                GroupName: name,
                Description: `cml-runner-action runners of ${machineTags[clouds_tags/* TAG */.D.repo] ?? 'a repository'}, run ${runId}`,
                VpcId: vpcId,
                TagSpecifications: [{ ResourceType: 'security-group', Tags: tags }],
            })));
            id = out.GroupId;
        }
        catch (err) {
            // A retry after a lost answer: the group the first call made is ours by its name.
            if (!(err instanceof errors/* CloudError */.K2 && err.code === 'InvalidGroup.Duplicate'))
                throw err;
            id = (await this.findByName(name))[0];
            if (!id)
                throw err;
        }
        if (!id)
            throw awsRefusal('NoGroup', 'CreateSecurityGroup returned no group id');
        entry?.created(id);
        this.ctx.log.info(`security group ${id} (${name}) in ${vpcId}: no inbound rule`);
        return id;
    }
    async findByName(name) {
        const out = await this.call('ec2:DescribeSecurityGroups', () => this.ec2.send(new dist_cjs/* DescribeSecurityGroupsCommand */.jsQ({
            Filters: [
                { Name: 'group-name', Values: [name] },
                { Name: `tag:${clouds_tags/* TAG */.D.managed}`, Values: ['true'] },
            ],
        })));
        return (out.SecurityGroups ?? []).map((g) => g.GroupId).filter((g) => Boolean(g));
    }
    /** The groups this action made for a repository (and run), each marked in use when a live instance holds it. */
    async list(filter) {
        const filters = [
            { Name: `tag:${clouds_tags/* TAG */.D.managed}`, Values: ['true'] },
            { Name: `tag:${clouds_tags/* TAG */.D.repo}`, Values: [filter.repo] },
            ...(filter.runId ? [{ Name: `tag:${clouds_tags/* TAG */.D.runId}`, Values: [filter.runId] }] : []),
        ];
        const groups = [];
        let NextToken;
        do {
            const out = await this.call('ec2:DescribeSecurityGroups', () => this.ec2.send(new dist_cjs/* DescribeSecurityGroupsCommand */.jsQ({ Filters: filters, NextToken })));
            for (const g of out.SecurityGroups ?? [])
                if (g.GroupId)
                    groups.push({ id: g.GroupId, name: g.GroupName ?? '' });
            NextToken = out.NextToken;
        } while (NextToken);
        if (groups.length === 0)
            return [];
        const used = new Set();
        const held = new Set();
        NextToken = undefined;
        do {
            const out = await this.call('ec2:DescribeInstances', () => this.ec2.send(new dist_cjs/* DescribeInstancesCommand */.bNs({
                Filters: [
                    { Name: 'instance.group-id', Values: groups.map((g) => g.id) },
                    { Name: 'instance-state-name', Values: [...LIVE_STATES, ENDING_STATE] },
                ],
                NextToken,
            })));
            for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
                const into = inst.State?.Name === ENDING_STATE ? held : used;
                for (const g of inst.SecurityGroups ?? [])
                    if (g.GroupId)
                        into.add(g.GroupId);
            }
            NextToken = out.NextToken;
        } while (NextToken);
        return groups.map((g) => ({
            kind: GROUP_KIND,
            name: g.name,
            id: g.id,
            inUse: used.has(g.id),
            held: held.has(g.id),
        }));
    }
    /** Deletes a group by id, or by name when its create never answered. */
    async delete(resource) {
        if (resource.kind !== GROUP_KIND)
            throw new Error(`AWS makes no ${resource.kind}`);
        const ids = resource.id ? [resource.id] : await this.findByName(resource.name);
        let result = 'gone';
        for (const id of ids) {
            const one = await this.deleteOne(id);
            if (one === 'in use')
                return one;
            if (one === 'deleted')
                result = one;
        }
        return result;
    }
    async deleteOne(id) {
        const { clock, signal } = this.ctx;
        const started = clock.now();
        for (let wait = FIRST_WAIT_MS;; wait = Math.min(wait * 2, LONGEST_WAIT_MS)) {
            try {
                await this.call('ec2:DeleteSecurityGroup', () => this.ec2.send(new dist_cjs/* DeleteSecurityGroupCommand */.yEh({ GroupId: id })));
                return 'deleted';
            }
            catch (err) {
                if (err instanceof errors/* CloudError */.K2 && err.code === 'InvalidGroup.NotFound')
                    return 'gone';
                if (!(err instanceof errors/* CloudError */.K2 && err.code === 'DependencyViolation'))
                    throw err;
                if (clock.now() - started >= DELETE_PATIENCE_MS)
                    return 'in use';
                this.ctx.log.debug(`security group ${id} is still in use; trying again in ${wait} ms`);
                await clock.sleep(wait, signal);
            }
        }
    }
}

;// CONCATENATED MODULE: ./src/clouds/aws/provider.ts









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
const REQUEST_HANDLER = { connectionTimeout: 5_000, requestTimeout: 30_000 };
/** EC2 instance states as the lifecycle sees them; terminated (and anything unknown) is gone. */
const EC2_STATES = {
    pending: 'starting',
    running: 'running',
    'shutting-down': 'ending',
    stopping: 'ending',
    stopped: 'stopped',
};
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
];
function createCloud(options, region, ctx) {
    return new AwsCloud(options, region, ctx);
}
/** The SDK's settings from the context's environment: endpoints, and keys when they are given. */
function clientConfig(region, env, endpoint) {
    const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN: sessionToken, } = env;
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
class AwsCloud {
    options;
    region;
    ctx;
    name = 'aws';
    title = 'AWS';
    kind = 'vm';
    ec2;
    ssm;
    policy;
    spotRoleAdvised = false;
    groups;
    constructor(options, region, ctx) {
        this.options = options;
        this.region = region;
        this.ctx = ctx;
        this.ec2 = new dist_cjs/* EC2Client */.gu5(clientConfig(region, ctx.env, ctx.env.AWS_ENDPOINT_URL_EC2 || ctx.env.AWS_ENDPOINT_URL));
        this.ssm = new client_ssm_dist_cjs/* SSMClient */.jBj(clientConfig(region, ctx.env, ctx.env.AWS_ENDPOINT_URL_SSM || ctx.env.AWS_ENDPOINT_URL));
        this.policy = {
            translate: (err, action) => awsError(err, action, region),
            retryAfterMs: awsRetryAfterMs,
            baseMs: 250,
        };
        this.groups = new LaunchGroups(this.ec2, (action, fn) => this.call(action, fn), ctx, region);
    }
    call(action, fn) {
        return (0,call/* cloudCall */.QY)(this.ctx, this.policy, action, fn);
    }
    async prepare(spec, resources) {
        const byArch = new Map();
        for (const type of spec.types)
            if (!byArch.has((0,catalog/* awsArchitecture */.H3)(type)))
                byArch.set((0,catalog/* awsArchitecture */.H3)(type), type);
        // The image and disk layout per architecture (a type list may mix x86_64 and arm64 types),
        // and which types the region offers, at once: the check adds no round trip.
        const images = new Map();
        const [offered, vpc] = await Promise.all([
            this.offeredHere(spec.types),
            this.options.securityGroup ? undefined : this.groups.vpcFor(this.options.subnets),
            ...[...byArch].map(async ([arch, type]) => images.set(arch, await this.prepareImage(spec, arch, type))),
        ]);
        const warnings = [];
        let types;
        if (offered === 'unchecked') {
            warnings.push(`the AWS credentials may not call ec2:DescribeInstanceTypeOfferings, so the types were not checked against ` +
                `what ${this.region} offers; grant it as in the README IAM policy`);
        }
        else {
            types = spec.types.filter((t) => offered.has(t));
            if (types.length === 0)
                throw await this.notOffered(spec.types);
        }
        // The launch's own group is made with its first machine, so a launch refused before any
        // machine leaves none; every machine of the launch shares it.
        let group;
        const groupFor = (request) => {
            if (this.options.securityGroup)
                return undefined;
            group ??= this.groups.create(vpc, request.tags, resources);
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
                return this.launch(spec, images, request, placement, own ?? this.options.securityGroup);
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
    async closeMetadata(machine) {
        if (this.options.instanceProfile || machine.spot)
            return;
        await this.call('ec2:ModifyInstanceMetadataOptions', () => this.ec2.send(new dist_cjs/* ModifyInstanceMetadataOptionsCommand */.a5G({ InstanceId: machine.id, HttpEndpoint: 'disabled' })));
        const started = this.ctx.clock.now();
        for (let wait = 200;; wait = Math.min(wait * 2, 5_000)) {
            const out = await this.call('ec2:DescribeInstances', () => this.ec2.send(new dist_cjs/* DescribeInstancesCommand */.bNs({ Filters: [{ Name: 'instance-id', Values: [machine.id] }] })));
            const options = out.Reservations?.[0]?.Instances?.[0]?.MetadataOptions;
            if (options?.State === 'applied' && options.HttpEndpoint === 'disabled')
                return;
            if (this.ctx.clock.now() - started > 60_000) {
                throw new Error(`the metadata service of ${machine.id} was not turned off within a minute`);
            }
            await this.ctx.clock.sleep(wait, this.ctx.signal);
        }
    }
    listResources(filter) {
        return this.groups.list(filter);
    }
    deleteResource(resource) {
        return this.groups.delete(resource);
    }
    /** The types this region offers among `types`, or `unchecked` when the credentials may not ask. */
    async offeredHere(types) {
        try {
            return await this.offeredIn(this.ec2, this.region, types);
        }
        catch (err) {
            if (err instanceof errors/* CloudError */.K2 && err.code === 'UnauthorizedOperation')
                return 'unchecked';
            throw err;
        }
    }
    /** DescribeInstanceTypeOfferings in a region (LocationType region), every page. */
    async offeredIn(ec2, region, types) {
        const found = new Set();
        let NextToken;
        do {
            const out = await this.call(`ec2:DescribeInstanceTypeOfferings in ${region}`, () => ec2.send(new dist_cjs/* DescribeInstanceTypeOfferingsCommand */.DyC({
                LocationType: 'region',
                Filters: [{ Name: 'instance-type', Values: [...types] }],
                NextToken,
            })));
            for (const o of out.InstanceTypeOfferings ?? [])
                if (o.InstanceType)
                    found.add(o.InstanceType);
            NextToken = out.NextToken;
        } while (NextToken);
        return found;
    }
    /** The error for types this region offers none of, naming the regions that do (asked at once). */
    async notOffered(types) {
        const endpoint = this.ctx.env.AWS_ENDPOINT_URL_EC2 || this.ctx.env.AWS_ENDPOINT_URL;
        const regions = OTHER_REGIONS.filter((r) => r !== this.region);
        const answers = await Promise.allSettled(regions.map(async (region) => {
            const ec2 = new dist_cjs/* EC2Client */.gu5(clientConfig(region, this.ctx.env, endpoint));
            try {
                return await this.offeredIn(ec2, region, types);
            }
            finally {
                ec2.destroy();
            }
        }));
        // A region that did not answer (not enabled for the account, a policy limited to one region) is left out.
        const where = types.map((type) => {
            const offering = regions.filter((_r, i) => {
                const a = answers[i];
                return a.status === 'fulfilled' && a.value.has(type);
            });
            return `${type} in ${offering.length > 0 ? offering.join(', ') : 'none of the regions asked'}`;
        });
        const list = types.join(', ');
        return awsRefusal('InstanceTypeNotOffered', `${this.region} offers none of the types ${list} (ec2:DescribeInstanceTypeOfferings). ` +
            `Offered: ${where.join('; ')}`, 'Give a region that offers them in region (a native AWS region such as us-east-2 works too), or types that ' +
            `${this.region} offers. Nothing was created.`, 'permanent');
    }
    async prepareImage(spec, arch, type) {
        const imageId = await this.resolveImageId(spec, arch);
        const images = await this.call('ec2:DescribeImages', () => this.ec2.send(new dist_cjs/* DescribeImagesCommand */.ji5({ ImageIds: [imageId] })));
        const image = images.Images?.[0];
        if (!image?.RootDeviceName) {
            throw awsRefusal('InvalidAMIID.NotFound', `image ${imageId} was not found in ${this.region}`);
        }
        if (image.Architecture && image.Architecture !== arch) {
            throw awsRefusal('ArchitectureMismatch', `image ${imageId} is ${image.Architecture} but ${type} needs ${arch}`, 'Pick an image for the type architecture, or leave the image input empty.');
        }
        // The root volume must be mapped at the image's own root device name, or EC2 adds a second
        // disk instead of growing the root (RootDeviceName differs between AMIs: /dev/sda1, /dev/xvda).
        const rootSnapshotGb = image.BlockDeviceMappings?.find((b) => b.DeviceName === image.RootDeviceName)?.Ebs?.VolumeSize ?? 8;
        const size = Math.max(spec.hddSizeGb ?? rootSnapshotGb, rootSnapshotGb);
        return {
            imageId,
            blockDevices: [
                { DeviceName: image.RootDeviceName, Ebs: { VolumeSize: size, VolumeType: 'gp3', DeleteOnTermination: true } },
            ],
        };
    }
    /** The image input, an SSM parameter it names, or the public parameter for GPU or CPU Ubuntu. */
    async resolveImageId(spec, arch) {
        if (spec.image?.startsWith('ami-'))
            return spec.image;
        const name = spec.image ?? catalog/* AWS_IMAGE_PARAMETERS */.$L[spec.wantsGpu ? 'gpu' : 'cpu'][arch];
        const out = await this.call(`ssm:GetParameter ${name}`, () => this.ssm.send(new client_ssm_dist_cjs/* GetParameterCommand */.lhy({ Name: name })));
        const value = out.Parameter?.Value;
        if (!value?.startsWith('ami-')) {
            throw awsRefusal('InvalidParameter', `SSM parameter ${name} does not hold an AMI id`, 'Check the image input.');
        }
        return value;
    }
    async launch(spec, images, request, placement, securityGroup) {
        const { type, spot, where: subnet } = placement;
        const image = images.get((0,catalog/* awsArchitecture */.H3)(type));
        if (!image)
            throw new Error('prepare() must run before launch()');
        const tags = Object.entries(request.tags).map(([Key, Value]) => ({ Key, Value }));
        const input = {
            ImageId: image.imageId,
            InstanceType: type,
            MinCount: 1,
            MaxCount: 1,
            ClientToken: request.clientToken,
            // Gzipped (cloud-init unpacks it): the script, its settings and a 6 KB startup-script stay
            // well under the 16 KB user-data limit.
            UserData: (0,external_node_zlib_.gzipSync)(Buffer.from(request.startupScript, 'utf8'), { level: 9 }).toString('base64'),
            // A guest shutdown deletes the machine: the runner ends itself and nothing stays billed.
            InstanceInitiatedShutdownBehavior: 'terminate',
            // IMDSv2 only, and one hop so containers in the job cannot reach instance credentials.
            MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
            BlockDeviceMappings: image.blockDevices,
            TagSpecifications: ['instance', 'volume', 'network-interface'].map((ResourceType) => ({
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
        const out = await this.call('ec2:RunInstances', () => this.ec2.send(new dist_cjs/* RunInstancesCommand */.zq7(input))).catch((err) => {
            // With on-demand-fallback the lifecycle moves on to on-demand and names only the code: say
            // once what gives spot back.
            if (err instanceof errors/* CloudError */.K2 && err.code === SPOT_ROLE_REFUSED && !this.spotRoleAdvised) {
                this.spotRoleAdvised = true;
                this.ctx.log.warning(err.advice);
            }
            throw err;
        });
        const inst = out.Instances?.[0];
        if (!inst?.InstanceId)
            throw awsRefusal('NoInstance', 'RunInstances returned no instance', '');
        return { id: inst.InstanceId, type, spot, zone: inst.Placement?.AvailabilityZone };
    }
    instanceProfile() {
        const profile = this.options.instanceProfile;
        if (!profile)
            return undefined;
        return profile.startsWith('arn:') ? { Arn: profile } : { Name: profile };
    }
    async states(ids) {
        const states = new Map(ids.map((id) => [id, { state: 'gone' }]));
        if (ids.length === 0)
            return states;
        // A filter, unlike InstanceIds, does not fail the whole call for an id EC2 has forgotten.
        const out = await this.call('ec2:DescribeInstances', () => this.ec2.send(new dist_cjs/* DescribeInstancesCommand */.bNs({ Filters: [{ Name: 'instance-id', Values: [...ids] }] })));
        for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
            if (!inst.InstanceId)
                continue;
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
    async list(filter) {
        const filters = [
            { Name: `tag:${clouds_tags/* TAG */.D.managed}`, Values: ['true'] },
            { Name: `tag:${clouds_tags/* TAG */.D.repo}`, Values: [filter.repo] },
            ...(filter.runId ? [{ Name: `tag:${clouds_tags/* TAG */.D.runId}`, Values: [filter.runId] }] : []),
        ];
        const found = [];
        let NextToken;
        do {
            const out = await this.call('ec2:DescribeInstances', () => this.ec2.send(new dist_cjs/* DescribeInstancesCommand */.bNs({ Filters: filters, MaxResults: 500, NextToken })));
            for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
                if (!inst.InstanceId)
                    continue;
                const tags = Object.fromEntries((inst.Tags ?? []).map((t) => [t.Key ?? '', t.Value]));
                found.push((0,clouds_tags/* managedFromTags */.V)(inst.InstanceId, tags, {
                    state: EC2_STATES[inst.State?.Name ?? ''] ?? 'gone',
                    ...(inst.LaunchTime ? { createdAt: inst.LaunchTime.getTime() } : {}),
                }));
            }
            NextToken = out.NextToken;
        } while (NextToken);
        return found;
    }
    async consoleLog(id) {
        const get = (Latest) => this.call('ec2:GetConsoleOutput', () => this.ec2.send(new dist_cjs/* GetConsoleOutputCommand */.Olx({ InstanceId: id, Latest })));
        let out;
        try {
            out = await get(true);
        }
        catch (err) {
            // Only Nitro instances give the latest output; a Xen one (t2, m4, c4, p3) refuses Latest
            // (UnsupportedOperation) but still has the output last posted.
            if (!(err instanceof errors/* CloudError */.K2) || err.kind !== 'permanent')
                throw err;
            out = await get(false);
        }
        return out.Output ? Buffer.from(out.Output, 'base64').toString('utf8') : '';
    }
    async terminate(id) {
        return (0,call/* endedOrGone */.p4)(async () => {
            const out = await this.call('ec2:TerminateInstances', () => this.ec2.send(new dist_cjs/* TerminateInstancesCommand */.NaF({ InstanceIds: [id] })));
            // Already terminated, or already on its way there (a shutdown the machine started itself).
            const previous = out.TerminatingInstances?.[0]?.PreviousState?.Name;
            return previous === 'terminated' || previous === 'shutting-down' ? 'gone' : 'terminated';
        });
    }
    async findByClientToken(clientToken) {
        const out = await this.call('ec2:DescribeInstances', () => this.ec2.send(new dist_cjs/* DescribeInstancesCommand */.bNs({ Filters: [{ Name: 'client-token', Values: [clientToken] }] })));
        return (out.Reservations ?? [])
            .flatMap((r) => r.Instances ?? [])
            .filter((i) => i.State?.Name !== 'terminated')
            .map((i) => i.InstanceId)
            .filter(Boolean);
    }
}


/***/ }),

/***/ 15268:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   QY: () => (/* binding */ cloudCall),
/* harmony export */   Rk: () => (/* binding */ isConnectionError),
/* harmony export */   W8: () => (/* binding */ retryAfterHeader),
/* harmony export */   p4: () => (/* binding */ endedOrGone)
/* harmony export */ });
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(83916);
/* harmony import */ var _retry_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(49809);


/** The Retry-After hint of each translated error, kept apart so CloudError stays as it is. */
const hints = new WeakMap();
function cloudCall(ctx, policy, action, fn) {
    return (0,_retry_js__WEBPACK_IMPORTED_MODULE_1__/* .retry */ .L5)(async () => {
        try {
            return await fn();
        }
        catch (err) {
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_0__/* .CloudError */ .K2)
                throw err;
            const translated = policy.translate(err, action);
            const hint = policy.retryAfterMs?.(err);
            if (hint !== undefined)
                hints.set(translated, hint);
            throw translated;
        }
    }, {
        attempts: policy.attempts ?? 5,
        baseMs: policy.baseMs ?? 500,
        maxMs: policy.maxMs ?? 20_000,
        clock: ctx.clock,
        signal: ctx.signal,
        classify: _errors_js__WEBPACK_IMPORTED_MODULE_0__/* .errorKind */ .f8,
        retryAfterMs: (err) => (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_0__/* .CloudError */ .K2 ? hints.get(err) : undefined),
        onRetry: (err, attempt, waitMs) => ctx.log.debug(`${action}: ${(0,_errors_js__WEBPACK_IMPORTED_MODULE_0__/* .errorMessage */ .gJ)(err).split('\n')[0]}; attempt ${attempt + 1} in ${Math.round(waitMs)} ms`),
    });
}
/**
 * Ends something, where "the cloud does not know it" counts as ended: the machine ended itself,
 * was preempted, or another cleanup got there first. The one place that reads `gone` so.
 */
async function endedOrGone(end) {
    try {
        return (await end()) ?? 'terminated';
    }
    catch (err) {
        if ((0,_errors_js__WEBPACK_IMPORTED_MODULE_0__/* .errorKind */ .f8)(err) === 'gone')
            return 'gone';
        throw err;
    }
}
/** A Retry-After header (seconds, or an HTTP date) as milliseconds from `now`. */
function retryAfterHeader(value, now = Date.now()) {
    if (!value)
        return undefined;
    const seconds = Number(value);
    if (Number.isFinite(seconds))
        return Math.max(0, seconds * 1000);
    const at = Date.parse(value);
    return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}
/** Errors of the connection itself (nothing answered): worth another try. */
function isConnectionError(err) {
    const e = err;
    const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : '';
    if (/^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|UND_ERR_SOCKET|UND_ERR_CONNECT_TIMEOUT)$/.test(code)) {
        return true;
    }
    if (e.name === 'TimeoutError' || e.name === 'AbortError')
        return true;
    return /socket hang up|ECONNRESET|other side closed|fetch failed|network|timed? ?out/i.test(`${e.message ?? ''} ${e.cause?.message ?? ''}`);
}


/***/ })

};
;