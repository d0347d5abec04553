"use strict";
exports.id = 891;
exports.ids = [891];
exports.modules = {

/***/ 15891:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   AwsCloud: () => (/* binding */ AwsCloud)
/* harmony export */ });
/* harmony import */ var node_zlib__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(38522);
/* harmony import */ var node_zlib__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__webpack_require__.n(node_zlib__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(35193);
/* harmony import */ var _aws_sdk_client_ssm__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(34736);
/* harmony import */ var _catalog_aws_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(78922);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(83916);





/**
 * EC2. Credentials and endpoints come from the SDK's own chain (AWS_* variables, OIDC set up
 * by aws-actions/configure-aws-credentials, AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_SSM).
 *
 * IAM actions called: ec2:RunInstances, ec2:CreateTags (tags at launch), ec2:DescribeImages,
 * ec2:DescribeInstances, ec2:GetConsoleOutput, ec2:TerminateInstances, ssm:GetParameter,
 * and iam:PassRole when aws-instance-profile is given.
 */
/**
 * Retries in the SDK: throttling, 5xx and dropped connections, up to 5 attempts with full-jitter
 * exponential backoff (100 ms base, 500 ms when throttled, capped at 20 s), honouring a
 * Retry-After hint. A 4xx fails at once, and so does a refusal that means "not here" (no
 * capacity, spot refused at this price): the launch moves to its next placement instead of
 * asking the same zone again. RunInstances carries a client token, so a retry never doubles it.
 */
const MAX_ATTEMPTS = 5;
const retryStrategy = {
    mode: 'standard',
    async acquireInitialRetryToken() {
        return retryToken(0, 0);
    },
    async refreshRetryTokenForRetry(token, info) {
        const count = token.getRetryCount() + 1;
        const code = info.error?.name ?? '';
        if (count >= MAX_ATTEMPTS || info.errorType === 'CLIENT_ERROR' || ADVICE[code]?.fallback)
            throw new Error(`not retried: ${code}`);
        const cap = Math.min(20_000, (info.errorType === 'THROTTLING' ? 500 : 100) * 2 ** (count - 1));
        const hinted = info.retryAfterHint ? info.retryAfterHint.getTime() - Date.now() : 0;
        return retryToken(count, Math.max(hinted, Math.random() * cap));
    },
    recordSuccess() { },
};
const retryToken = (count, delay) => ({ getRetryCount: () => count, getRetryDelay: () => delay });
const CLIENT_OPTIONS = {
    maxAttempts: MAX_ATTEMPTS,
    retryStrategy,
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
};
/** What each EC2 error means for the user. Codes pass through verbatim next to this advice. */
const ADVICE = {
    InsufficientInstanceCapacity: {
        advice: 'AWS has no capacity for this instance type in this availability zone right now. Give more types (type takes a comma list) or subnets in other zones (aws-subnet takes a comma list), another region, or spot: false.',
        fallback: 'capacity',
    },
    InsufficientCapacity: { advice: 'AWS has no capacity for this request right now. Give more types or subnets, or another region.', fallback: 'capacity' },
    SpotMaxPriceTooLow: { advice: 'The spot-price input is below the current spot price. Raise it, or use spot-price: -1 to pay up to the on-demand price.', fallback: 'market' },
    MaxSpotInstanceCountExceeded: { advice: 'The account reached its spot instance quota in this region. Use spot: false or request a higher spot quota in Service Quotas.' },
    VcpuLimitExceeded: {
        advice: 'The account vCPU quota for this instance family in this region is too low. Request an increase in Service Quotas (for GPUs: "Running On-Demand G and VT instances" or "Running On-Demand P instances", or the Spot equivalents).',
    },
    InstanceLimitExceeded: { advice: 'The account instance quota in this region is reached. Request an increase in Service Quotas.' },
    UnauthorizedOperation: { advice: 'The AWS credentials may not do this. Grant the actions in the README IAM policy to the role the workflow assumes.' },
    'InvalidAMIID.NotFound': { advice: 'The image does not exist in this region. Check the image input and the region.' },
    Unsupported: { advice: 'This instance type is not offered in this availability zone. Give subnets in other zones (aws-subnet takes a comma list), or another region.', fallback: 'capacity' },
    'InvalidSubnetID.NotFound': { advice: 'Check the aws-subnet input: the subnet must exist in this region.' },
    'InvalidGroup.NotFound': { advice: 'Check the aws-security-group input: the group must exist in the subnet VPC.' },
    InvalidParameterValue: { advice: 'Check the type, image, aws-instance-profile and tags inputs.' },
};
/** EC2 instance states as the lifecycle sees them; terminated (and anything unknown) is gone. */
const EC2_STATES = {
    pending: 'starting',
    running: 'running',
    'shutting-down': 'ending',
    stopping: 'ending',
    stopped: 'stopped',
};
class AwsCloud {
    region;
    name = 'aws';
    kind = 'vm';
    ec2;
    ssm;
    /** The image and disk layout per architecture; a type list may mix x86_64 and arm64 types. */
    images = new Map();
    constructor(region) {
        this.region = region;
        this.ec2 = new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_3__/* .EC2Client */ .gu5({ region, ...CLIENT_OPTIONS });
        this.ssm = new _aws_sdk_client_ssm__WEBPACK_IMPORTED_MODULE_4__/* .SSMClient */ .jBj({ region, ...CLIENT_OPTIONS });
    }
    async prepare(spec) {
        const byArch = new Map();
        for (const type of spec.types)
            if (!byArch.has((0,_catalog_aws_js__WEBPACK_IMPORTED_MODULE_1__/* .awsArchitecture */ .H3)(type)))
                byArch.set((0,_catalog_aws_js__WEBPACK_IMPORTED_MODULE_1__/* .awsArchitecture */ .H3)(type), type);
        await Promise.all([...byArch].map(([arch, type]) => this.prepareImage(spec, arch, type)));
    }
    async prepareImage(spec, arch, type) {
        const imageId = await this.resolveImageId(spec, arch);
        const images = await this.ec2Call('DescribeImages', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_3__/* .DescribeImagesCommand */ .ji5({ ImageIds: [imageId] })));
        const image = images.Images?.[0];
        if (!image?.RootDeviceName) {
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .CloudError */ .K2('AWS', 'InvalidAMIID.NotFound', `image ${imageId} was not found in ${this.region}`, ADVICE['InvalidAMIID.NotFound'].advice);
        }
        if (image.Architecture && image.Architecture !== arch) {
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .CloudError */ .K2('AWS', 'ArchitectureMismatch', `image ${imageId} is ${image.Architecture} but ${type} needs ${arch}`, 'Pick an image for the type architecture, or leave the image input empty.');
        }
        // The root volume must be mapped at the image's own root device name, or EC2 adds a second
        // disk instead of growing the root (RootDeviceName differs between AMIs: /dev/sda1, /dev/xvda).
        const rootSnapshotGb = image.BlockDeviceMappings?.find((b) => b.DeviceName === image.RootDeviceName)?.Ebs?.VolumeSize ?? 8;
        const size = Math.max(spec.hddSizeGb ?? rootSnapshotGb, rootSnapshotGb);
        this.images.set(arch, {
            imageId,
            blockDevices: [{ DeviceName: image.RootDeviceName, Ebs: { VolumeSize: size, VolumeType: 'gp3', DeleteOnTermination: true } }],
        });
    }
    /** The image input, an SSM parameter it names, or the public parameter for GPU or CPU Ubuntu. */
    async resolveImageId(spec, arch) {
        if (spec.image?.startsWith('ami-'))
            return spec.image;
        const name = spec.image ?? _catalog_aws_js__WEBPACK_IMPORTED_MODULE_1__/* .AWS_IMAGE_PARAMETERS */ .$L[spec.wantsGpu ? 'gpu' : 'cpu'][arch];
        try {
            const out = await this.ssm.send(new _aws_sdk_client_ssm__WEBPACK_IMPORTED_MODULE_4__/* .GetParameterCommand */ .lhy({ Name: name }));
            const value = out.Parameter?.Value;
            if (!value?.startsWith('ami-'))
                throw new _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .CloudError */ .K2('AWS', 'InvalidParameter', `SSM parameter ${name} does not hold an AMI id`, 'Check the image input.');
            return value;
        }
        catch (err) {
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .CloudError */ .K2)
                throw err;
            const code = err.name ?? 'Error';
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .CloudError */ .K2('AWS', code, `ssm:GetParameter ${name} in ${this.region}: ${(0,_errors_js__WEBPACK_IMPORTED_MODULE_2__/* .errorMessage */ .gJ)(err)}`, code === 'ParameterNotFound' ? 'Check the image input and the region.' : 'The credentials need ssm:GetParameter on public parameters.');
        }
    }
    scriptSettings(spec) {
        return spec.spot ? { spotNotice: 'aws' } : {};
    }
    places(spec) {
        return spec.aws.subnets.length > 0 ? spec.aws.subnets : [undefined];
    }
    async launch(spec, request, placement) {
        const { type, spot, where: subnet } = placement;
        const image = this.images.get((0,_catalog_aws_js__WEBPACK_IMPORTED_MODULE_1__/* .awsArchitecture */ .H3)(type));
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
            UserData: (0,node_zlib__WEBPACK_IMPORTED_MODULE_0__.gzipSync)(Buffer.from(request.startupScript, 'utf8'), { level: 9 }).toString('base64'),
            // A guest shutdown deletes the machine: the runner ends itself and nothing stays billed.
            InstanceInitiatedShutdownBehavior: 'terminate',
            // IMDSv2 only, and one hop so containers in the job cannot reach instance credentials.
            MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
            BlockDeviceMappings: image.blockDevices,
            TagSpecifications: ['instance', 'volume', 'network-interface'].map((ResourceType) => ({ ResourceType, Tags: tags })),
            SubnetId: subnet,
            SecurityGroupIds: spec.aws.securityGroup ? [spec.aws.securityGroup] : undefined,
            IamInstanceProfile: spec.aws.instanceProfile
                ? spec.aws.instanceProfile.startsWith('arn:')
                    ? { Arn: spec.aws.instanceProfile }
                    : { Name: spec.aws.instanceProfile }
                : undefined,
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
        const out = await this.ec2Call('RunInstances', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_3__/* .RunInstancesCommand */ .zq7(input)));
        const inst = out.Instances?.[0];
        if (!inst?.InstanceId)
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .CloudError */ .K2('AWS', 'NoInstance', 'RunInstances returned no instance', '');
        return { id: inst.InstanceId, type, spot, zone: inst.Placement?.AvailabilityZone };
    }
    async states(ids) {
        const states = new Map(ids.map((id) => [id, { state: 'gone' }]));
        if (ids.length === 0)
            return states;
        // A filter, unlike InstanceIds, does not fail the whole call for an id EC2 has forgotten.
        const out = await this.ec2Call('DescribeInstances', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_3__/* .DescribeInstancesCommand */ .bNs({ Filters: [{ Name: 'instance-id', Values: [...ids] }] })));
        for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
            if (!inst.InstanceId)
                continue;
            // StateReason says why an instance ended early: Server.SpotInstanceTermination, Client.InstanceInitiatedShutdown...
            const reason = inst.StateReason?.Message;
            states.set(inst.InstanceId, { state: EC2_STATES[inst.State?.Name ?? ''] ?? 'gone', ...(reason ? { detail: reason } : {}) });
        }
        return states;
    }
    async list(filter) {
        const filters = [
            { Name: 'tag:cml-runner:managed', Values: ['true'] },
            { Name: 'tag:cml-runner:repo', Values: [filter.repo] },
            ...(filter.runId ? [{ Name: 'tag:cml-runner:run-id', Values: [filter.runId] }] : []),
        ];
        const found = [];
        let NextToken;
        do {
            const out = await this.ec2Call('DescribeInstances', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_3__/* .DescribeInstancesCommand */ .bNs({ Filters: filters, MaxResults: 500, NextToken })));
            for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
                if (!inst.InstanceId)
                    continue;
                const tag = (key) => inst.Tags?.find((t) => t.Key === key)?.Value;
                const expires = Date.parse(tag('cml-runner:expires-at') ?? '');
                found.push({
                    id: inst.InstanceId,
                    runnerName: tag('cml-runner:runner') ?? tag('Name') ?? '',
                    runId: tag('cml-runner:run-id'),
                    repo: tag('cml-runner:repo'),
                    ...(Number.isFinite(expires) ? { expiresAt: expires } : {}),
                    ...(inst.LaunchTime ? { createdAt: inst.LaunchTime.getTime() } : {}),
                    state: EC2_STATES[inst.State?.Name ?? ''] ?? 'gone',
                });
            }
            NextToken = out.NextToken;
        } while (NextToken);
        return found;
    }
    async consoleLog(id) {
        const out = await this.ec2Call('GetConsoleOutput', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_3__/* .GetConsoleOutputCommand */ .Olx({ InstanceId: id, Latest: true })));
        return out.Output ? Buffer.from(out.Output, 'base64').toString('utf8') : '';
    }
    async terminate(id) {
        try {
            const out = await this.ec2Call('TerminateInstances', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_3__/* .TerminateInstancesCommand */ .NaF({ InstanceIds: [id] })));
            // Already terminated, or already on its way there (a shutdown the machine started itself).
            const previous = out.TerminatingInstances?.[0]?.PreviousState?.Name;
            return previous === 'terminated' || previous === 'shutting-down' ? 'gone' : 'terminated';
        }
        catch (err) {
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .CloudError */ .K2 && err.code === 'InvalidInstanceID.NotFound')
                return 'gone';
            throw err;
        }
    }
    async findByClientToken(clientToken) {
        const out = await this.ec2Call('DescribeInstances', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_3__/* .DescribeInstancesCommand */ .bNs({ Filters: [{ Name: 'client-token', Values: [clientToken] }] })));
        return (out.Reservations ?? [])
            .flatMap((r) => r.Instances ?? [])
            .filter((i) => i.State?.Name !== 'terminated')
            .map((i) => i.InstanceId)
            .filter(Boolean);
    }
    async ec2Call(action, fn) {
        try {
            return await fn();
        }
        catch (err) {
            const code = err.name ?? 'Error';
            const known = ADVICE[code];
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_2__/* .CloudError */ .K2('AWS', code, `ec2:${action} in ${this.region}: ${(0,_errors_js__WEBPACK_IMPORTED_MODULE_2__/* .errorMessage */ .gJ)(err)}`, known?.advice ?? '', known?.fallback);
        }
    }
}


/***/ })

};
;