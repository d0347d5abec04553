"use strict";
exports.id = 891;
exports.ids = [891];
exports.modules = {

/***/ 5891:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   AwsCloud: () => (/* binding */ AwsCloud)
/* harmony export */ });
/* harmony import */ var _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(5193);
/* harmony import */ var _aws_sdk_client_ssm__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(4736);
/* harmony import */ var _catalog_aws_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(8922);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(3916);




/**
 * EC2. Credentials and endpoints come from the SDK's own chain (AWS_* variables, OIDC set up
 * by aws-actions/configure-aws-credentials, AWS_ENDPOINT_URL_EC2 / AWS_ENDPOINT_URL_SSM).
 *
 * IAM actions called: ec2:RunInstances, ec2:CreateTags (tags at launch), ec2:DescribeImages,
 * ec2:DescribeInstances, ec2:GetConsoleOutput, ec2:TerminateInstances, ssm:GetParameter,
 * and iam:PassRole when aws-instance-profile is given.
 */
const CLIENT_OPTIONS = {
    maxAttempts: 5,
    retryMode: 'standard',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
};
/** What each EC2 error means for the user. Codes pass through verbatim next to this advice. */
const ADVICE = {
    InsufficientInstanceCapacity: {
        advice: 'AWS has no capacity for this instance type in this availability zone right now. Try another type (type takes a comma list), another region or subnet, or spot: false.',
        capacity: true,
    },
    InsufficientCapacity: { advice: 'AWS has no capacity for this request right now. Try another type, region or subnet.', capacity: true },
    SpotMaxPriceTooLow: { advice: "The spot-price input is below the current spot price. Raise it, or use spot-price: -1 to pay up to the on-demand price." },
    MaxSpotInstanceCountExceeded: { advice: 'The account reached its spot instance limit in this region. Use spot: false or request a higher spot quota.', capacity: true },
    VcpuLimitExceeded: {
        advice: 'The account vCPU quota for this instance family in this region is too low. Request an increase in Service Quotas (for GPUs: "Running On-Demand G and VT instances" or "Running On-Demand P instances", or the Spot equivalents).',
    },
    InstanceLimitExceeded: { advice: 'The account instance quota in this region is reached. Request an increase in Service Quotas.' },
    UnauthorizedOperation: { advice: 'The AWS credentials may not do this. Grant the actions in the README IAM policy to the role the workflow assumes.' },
    'InvalidAMIID.NotFound': { advice: 'The image does not exist in this region. Check the image input and the region.' },
    Unsupported: { advice: 'This instance type is not offered in this availability zone. Pick another subnet (aws-subnet) or region.', capacity: true },
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
    image;
    constructor(region) {
        this.region = region;
        this.ec2 = new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_2__/* .EC2Client */ .gu5({ region, ...CLIENT_OPTIONS });
        this.ssm = new _aws_sdk_client_ssm__WEBPACK_IMPORTED_MODULE_3__/* .SSMClient */ .jBj({ region, ...CLIENT_OPTIONS });
    }
    async prepare(spec) {
        const type = spec.types[0];
        const arch = (0,_catalog_aws_js__WEBPACK_IMPORTED_MODULE_0__/* .awsArchitecture */ .H3)(type);
        const imageId = await this.resolveImageId(spec, arch);
        const images = await this.ec2Call('DescribeImages', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_2__/* .DescribeImagesCommand */ .ji5({ ImageIds: [imageId] })));
        const image = images.Images?.[0];
        if (!image?.RootDeviceName) {
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_1__/* .CloudError */ .K2('AWS', 'InvalidAMIID.NotFound', `image ${imageId} was not found in ${this.region}`, ADVICE['InvalidAMIID.NotFound'].advice);
        }
        if (image.Architecture && image.Architecture !== arch) {
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_1__/* .CloudError */ .K2('AWS', 'ArchitectureMismatch', `image ${imageId} is ${image.Architecture} but ${type} needs ${arch}`, 'Pick an image for the type architecture, or leave the image input empty.');
        }
        // The root volume must be mapped at the image's own root device name, or EC2 adds a second
        // disk instead of growing the root (RootDeviceName differs between AMIs: /dev/sda1, /dev/xvda).
        const rootSnapshotGb = image.BlockDeviceMappings?.find((b) => b.DeviceName === image.RootDeviceName)?.Ebs?.VolumeSize ?? 8;
        const size = Math.max(spec.hddSizeGb ?? rootSnapshotGb, rootSnapshotGb);
        this.image = {
            imageId,
            blockDevices: [{ DeviceName: image.RootDeviceName, Ebs: { VolumeSize: size, VolumeType: 'gp3', DeleteOnTermination: true } }],
        };
    }
    /** The image input, an SSM parameter it names, or the public parameter for GPU or CPU Ubuntu. */
    async resolveImageId(spec, arch) {
        if (spec.image?.startsWith('ami-'))
            return spec.image;
        const name = spec.image ?? _catalog_aws_js__WEBPACK_IMPORTED_MODULE_0__/* .AWS_IMAGE_PARAMETERS */ .$L[spec.wantsGpu ? 'gpu' : 'cpu'][arch];
        try {
            const out = await this.ssm.send(new _aws_sdk_client_ssm__WEBPACK_IMPORTED_MODULE_3__/* .GetParameterCommand */ .lhy({ Name: name }));
            const value = out.Parameter?.Value;
            if (!value?.startsWith('ami-'))
                throw new _errors_js__WEBPACK_IMPORTED_MODULE_1__/* .CloudError */ .K2('AWS', 'InvalidParameter', `SSM parameter ${name} does not hold an AMI id`, 'Check the image input.');
            return value;
        }
        catch (err) {
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_1__/* .CloudError */ .K2)
                throw err;
            const code = err.name ?? 'Error';
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_1__/* .CloudError */ .K2('AWS', code, `ssm:GetParameter ${name} in ${this.region}: ${(0,_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .errorMessage */ .gJ)(err)}`, code === 'ParameterNotFound' ? 'Check the image input and the region.' : 'The credentials need ssm:GetParameter on public parameters.');
        }
    }
    async launch(spec, request) {
        if (!this.image)
            throw new Error('prepare() must run before launch()');
        const type = spec.types[0];
        const tags = Object.entries(request.tags).map(([Key, Value]) => ({ Key, Value }));
        const input = {
            ImageId: this.image.imageId,
            InstanceType: type,
            MinCount: 1,
            MaxCount: 1,
            ClientToken: request.clientToken,
            UserData: Buffer.from(request.startupScript, 'utf8').toString('base64'),
            // A guest shutdown deletes the machine: the runner ends itself and nothing stays billed.
            InstanceInitiatedShutdownBehavior: 'terminate',
            // IMDSv2 only, and one hop so containers in the job cannot reach instance credentials.
            MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
            BlockDeviceMappings: this.image.blockDevices,
            TagSpecifications: ['instance', 'volume', 'network-interface'].map((ResourceType) => ({ ResourceType, Tags: tags })),
            SubnetId: spec.aws.subnet,
            SecurityGroupIds: spec.aws.securityGroup ? [spec.aws.securityGroup] : undefined,
            IamInstanceProfile: spec.aws.instanceProfile
                ? spec.aws.instanceProfile.startsWith('arn:')
                    ? { Arn: spec.aws.instanceProfile }
                    : { Name: spec.aws.instanceProfile }
                : undefined,
            InstanceMarketOptions: spec.spot
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
        const out = await this.ec2Call('RunInstances', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_2__/* .RunInstancesCommand */ .zq7(input)));
        const inst = out.Instances?.[0];
        if (!inst?.InstanceId)
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_1__/* .CloudError */ .K2('AWS', 'NoInstance', 'RunInstances returned no instance', '');
        return { id: inst.InstanceId, type, spot: spec.spot, zone: inst.Placement?.AvailabilityZone };
    }
    async states(ids) {
        const states = new Map(ids.map((id) => [id, { state: 'gone' }]));
        if (ids.length === 0)
            return states;
        // A filter, unlike InstanceIds, does not fail the whole call for an id EC2 has forgotten.
        const out = await this.ec2Call('DescribeInstances', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_2__/* .DescribeInstancesCommand */ .bNs({ Filters: [{ Name: 'instance-id', Values: [...ids] }] })));
        for (const inst of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
            if (!inst.InstanceId)
                continue;
            // StateReason says why an instance ended early: Server.SpotInstanceTermination, Client.InstanceInitiatedShutdown...
            const reason = inst.StateReason?.Message;
            states.set(inst.InstanceId, { state: EC2_STATES[inst.State?.Name ?? ''] ?? 'gone', ...(reason ? { detail: reason } : {}) });
        }
        return states;
    }
    async consoleLog(id) {
        const out = await this.ec2Call('GetConsoleOutput', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_2__/* .GetConsoleOutputCommand */ .Olx({ InstanceId: id, Latest: true })));
        return out.Output ? Buffer.from(out.Output, 'base64').toString('utf8') : '';
    }
    async terminate(id) {
        try {
            const out = await this.ec2Call('TerminateInstances', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_2__/* .TerminateInstancesCommand */ .NaF({ InstanceIds: [id] })));
            return out.TerminatingInstances?.[0]?.PreviousState?.Name === 'terminated' ? 'gone' : 'terminated';
        }
        catch (err) {
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_1__/* .CloudError */ .K2 && err.code === 'InvalidInstanceID.NotFound')
                return 'gone';
            throw err;
        }
    }
    async findByClientToken(clientToken) {
        const out = await this.ec2Call('DescribeInstances', () => this.ec2.send(new _aws_sdk_client_ec2__WEBPACK_IMPORTED_MODULE_2__/* .DescribeInstancesCommand */ .bNs({ Filters: [{ Name: 'client-token', Values: [clientToken] }] })));
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
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_1__/* .CloudError */ .K2('AWS', code, `ec2:${action} in ${this.region}: ${(0,_errors_js__WEBPACK_IMPORTED_MODULE_1__/* .errorMessage */ .gJ)(err)}`, known?.advice ?? '', known?.capacity ?? false);
        }
    }
}


/***/ })

};
;