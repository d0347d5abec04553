"use strict";
exports.id = 128;
exports.ids = [128];
exports.modules = {

/***/ 35128:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  AZURE_VM_ROLE: () => (/* binding */ AZURE_VM_ROLE),
  AzureCloud: () => (/* binding */ AzureCloud),
  azureCredential: () => (/* binding */ azureCredential),
  createCloud: () => (/* binding */ createCloud),
  groupName: () => (/* binding */ groupName)
});

// EXTERNAL MODULE: ./node_modules/@azure/arm-authorization/dist/index.js
var dist = __webpack_require__(71043);
// EXTERNAL MODULE: ./node_modules/@azure/arm-compute/dist/esm/index.js + 133 modules
var esm = __webpack_require__(72280);
// EXTERNAL MODULE: ./node_modules/@azure/arm-network/dist/esm/index.js + 355 modules
var dist_esm = __webpack_require__(12163);
// EXTERNAL MODULE: ./node_modules/@azure/arm-resources/dist/esm/index.js + 24 modules
var arm_resources_dist_esm = __webpack_require__(56033);
// EXTERNAL MODULE: ./node_modules/@actions/core/lib/core.js + 15 modules
var core = __webpack_require__(14116);
// EXTERNAL MODULE: ./node_modules/@azure/identity/dist/esm/index.js + 182 modules
var identity_dist_esm = __webpack_require__(25563);
// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __webpack_require__(77598);
// EXTERNAL MODULE: ./src/bootstrap/render.ts
var render = __webpack_require__(87524);
// EXTERNAL MODULE: ./src/errors.ts
var errors = __webpack_require__(83916);
// EXTERNAL MODULE: ./src/retry.ts
var retry = __webpack_require__(49809);
// EXTERNAL MODULE: ./src/clouds/call.ts
var call = __webpack_require__(15268);
// EXTERNAL MODULE: ./src/clouds/tags.ts
var clouds_tags = __webpack_require__(1061);
// EXTERNAL MODULE: ./src/clouds/azure/catalog.ts
var catalog = __webpack_require__(89413);
;// CONCATENATED MODULE: ./src/clouds/azure/errors.ts


/**
 * What each ARM error means: its kind, and what the user can do. Codes pass through verbatim.
 * Codes: https://learn.microsoft.com/azure/azure-resource-manager/troubleshooting/common-deployment-errors
 */
const KNOWN = {
    SkuNotAvailable: {
        kind: 'capacity',
        advice: 'This VM size is not available in this region for the subscription right now. Give more types (type takes a ' +
            'comma list) or another region.',
    },
    AllocationFailed: {
        kind: 'capacity',
        advice: 'Azure has no capacity for this VM size in this region right now. Give more types, another region, or spot: ' +
            'false.',
    },
    ZonalAllocationFailed: { kind: 'capacity', advice: 'Azure has no capacity for this VM size in this zone right now.' },
    OverconstrainedAllocationRequest: {
        kind: 'capacity',
        advice: 'Azure cannot place this VM size with these constraints right now.',
    },
    OperationNotAllowed: {
        kind: 'quota',
        advice: 'A quota of the subscription is too low for this VM (the message names it). Request an increase under ' +
            'Subscriptions > Usage + quotas (GPU families have their own vCPU quotas; spot VMs use the Spot quota).',
    },
    AuthorizationFailed: {
        kind: 'permanent',
        advice: 'The Azure credentials may not do this. Grant the custom role in the README (Azure section) to the identity ' +
            'the workflow signs in as.',
    },
    InvalidAuthenticationToken: {
        kind: 'permanent',
        advice: 'Azure did not accept the token; check the AZURE_* variables or azure/login.',
    },
    InvalidTemplateDeployment: { kind: 'permanent', advice: 'Check the type, image and tags inputs.' },
    InvalidParameter: { kind: 'permanent', advice: 'Check the type, image and tags inputs.' },
    ResourceGroupNotFound: { kind: 'gone', advice: '' },
    ResourceNotFound: { kind: 'gone', advice: '' },
    NotFound: { kind: 'gone', advice: '' },
};
/** Throttles and service-side failures: the same request may succeed. */
const TRANSIENT = new Set([
    'TooManyRequests',
    'InternalServerError',
    'ServiceUnavailable',
    'GatewayTimeout',
    'RetryableError',
]);
/** The poller's message for a failed operation: `The long-running operation has failed. AllocationFailed. ...`. */
const FAILED_OPERATION = /^The long-running operation has failed\. (\w+)\./;
function armCode(err) {
    const e = err;
    const code = e.code && e.code !== 'REQUEST_SEND_ERROR' ? e.code : undefined;
    return (code ??
        e.details?.error?.code ??
        FAILED_OPERATION.exec(e.message ?? '')?.[1] ??
        String(e.statusCode ?? e.code ?? 'Error'));
}
/** The kind of an ARM error, by its code, then by its HTTP status, then by its connection. */
function azureErrorKind(err) {
    const e = err;
    const code = armCode(err);
    const known = KNOWN[code];
    // OperationNotAllowed is also how ARM refuses other operations; only a quota one is a quota.
    if (code === 'OperationNotAllowed' && !/quota|limit/i.test(e.message ?? ''))
        return 'permanent';
    if (known)
        return known.kind;
    if (TRANSIENT.has(code))
        return 'transient';
    if (e.statusCode !== undefined)
        return e.statusCode === 429 || e.statusCode >= 500 ? 'transient' : 'permanent';
    return e.code === 'REQUEST_SEND_ERROR' || (0,call/* isConnectionError */.Rk)(err) ? 'transient' : 'permanent';
}
/** ARM's refusal of an OS disk smaller than the image's: `...disk size 20 GB is smaller than ...: 30 GB...`. */
const DISK_TOO_SMALL = /disk size (\d+) GB is smaller than the size of the corresponding disk in the VM image: (\d+) GB/;
/**
 * The RBAC action each list needs. A refused page of a list keeps no more than "Pagination failed
 * with unexpected statusCode 403" (the SDK drops ARM's answer, which names the action), so the
 * message names the action itself.
 */
const LIST_ACTIONS = {
    'resourceGroups.list': 'Microsoft.Resources/subscriptions/resourceGroups/read',
    'resourceSkus.list': 'Microsoft.Compute/skus/read',
    'galleryImageVersions.listByGalleryImage': 'Microsoft.Compute/galleries/images/versions/read',
};
function armMessage(err, code, action) {
    const message = (0,errors/* errorMessage */.gJ)(err);
    const needed = LIST_ACTIONS[action];
    if (code !== 'AuthorizationFailed' || !needed || !/^Pagination failed/.test(message))
        return message;
    return `${message}: the client does not have authorization to perform action '${needed}'`;
}
function azureError(err, action) {
    const code = armCode(err);
    const message = armMessage(err, code, action);
    const disk = code === 'OperationNotAllowed' ? DISK_TOO_SMALL.exec(message) : null;
    if (disk) {
        // Not a quota: the hdd-size input is below the image's disk. No other size or place helps.
        return new errors/* CloudError */.K2('Azure', code, `${action}: ${message}`, `Input 'hdd-size' (${disk[1]} GB) is below the image's OS disk (${disk[2]} GB): ` +
            `give hdd-size of at least ${disk[2]}, or leave it empty to keep the image's size.`, 'permanent');
    }
    const kind = azureErrorKind(err);
    // The quota advice is for a quota; ARM refuses other operations with OperationNotAllowed too.
    const advice = code === 'OperationNotAllowed' && kind !== 'quota' ? '' : (KNOWN[code]?.advice ?? '');
    return new errors/* CloudError */.K2('Azure', code, `${action}: ${message}`, advice, kind);
}
const azureRetryAfterMs = (err) => (0,call/* retryAfterHeader */.W8)(err.response?.headers?.get('retry-after'));
/** A refusal made here, in the same shape as the service's. */
const azureRefusal = (code, detail, kind) => new errors/* CloudError */.K2('Azure', code, detail, KNOWN[code]?.advice ?? '', kind);

;// CONCATENATED MODULE: ./src/clouds/azure/offerings.ts


const lower = (s) => (s ?? '').toLowerCase();
/** VM sizes by lower-case name, for one region or (region undefined) each region that lists them. */
async function offeredSizes(compute, call, region) {
    return call('resourceSkus.list', async () => {
        const byRegion = new Map();
        const options = region ? { filter: `location eq '${region}'` } : {};
        for await (const sku of compute.resourceSkus.list(options)) {
            if (lower(sku.resourceType) !== 'virtualmachines' || !sku.name)
                continue;
            for (const location of sku.locations ?? []) {
                if (region && lower(location) !== lower(region))
                    continue;
                const sizes = byRegion.get(lower(location)) ?? byRegion.set(lower(location), new Map()).get(lower(location));
                sizes.set(lower(sku.name), {
                    usable: !restricted(sku, location),
                    trustedLaunchDisabled: sku.capabilities?.some((c) => c.name === 'TrustedLaunchDisabled' && lower(c.value) === 'true') ?? false,
                });
            }
        }
        return byRegion;
    });
}
/** Restricted in the region (Location), or in every zone the region has for it (Zone). */
function restricted(sku, location) {
    const zones = sku.locationInfo?.find((l) => lower(l.location) === lower(location))?.zones ?? [];
    return (sku.restrictions ?? []).some((r) => {
        const here = [...(r.values ?? []), ...(r.restrictionInfo?.locations ?? [])].some((v) => lower(v) === lower(location));
        if (!here)
            return false;
        if (r.type === 'Location')
            return true;
        const out = new Set(r.restrictionInfo?.zones ?? []);
        return r.type === 'Zone' && (zones.length === 0 || zones.every((z) => out.has(z)));
    });
}
/** The launch's sizes nowhere usable here: a permanent refusal naming the regions that have them. */
async function notOffered(compute, call, region, types) {
    const everywhere = await offeredSizes(compute, call);
    const where = types.map((t) => {
        const regions = [...everywhere]
            .filter(([, sizes]) => sizes.get(lower(t))?.usable)
            .map(([r]) => r)
            .sort();
        return `${t} ${regions.length ? `is offered in ${regions.join(', ')}` : 'is offered in no region'}`;
    });
    return new errors/* CloudError */.K2('Azure', 'SkuNotAvailable', `${types.join(', ')}: not offered to this subscription in ${region} (${where.join('; ')})`, 'Pick a region that offers a size, or other sizes (the type input takes a comma list).', 'permanent');
}
/** The image as given, when it could not be read: its kind from its resource id. */
const unreadImage = (image) => ({
    reference: image.id ? { id: image.id } : image,
    kind: !image.id ? 'marketplace' : /\/providers\/Microsoft\.Compute\/images\//i.test(image.id) ? 'managed' : 'gallery',
});
/** Compares dotted versions numerically (1.10.0 after 1.9.0). */
function compareVersions(a, b) {
    const pa = a.split('.').map(Number);
    const pb = b.split('.').map(Number);
    for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
        const d = (pa[i] ?? 0) - (pb[i] ?? 0);
        if (d !== 0 && !Number.isNaN(d))
            return d;
    }
    return a.localeCompare(b);
}
/**
 * A Marketplace image's `osDiskImage` carries its size, which the SDK's model drops: read it from
 * the raw answer, whatever its casing (`sizeInGb`, `sizeinGB`), or from `sizeInBytes`.
 */
function osDiskGb(body) {
    const disk = body?.properties?.osDiskImage ?? {};
    for (const [k, v] of Object.entries(disk))
        if (/^sizeingb$/i.test(k) && typeof v === 'number')
            return v;
    const bytes = Object.entries(disk).find(([k]) => /^sizeinbytes$/i.test(k))?.[1];
    return typeof bytes === 'number' ? Math.ceil(bytes / 1024 ** 3) : undefined;
}
/** Resolves the image input: its OS disk size and generation, and `latest` to a version. */
async function prepareImage(compute, call, region, image, input) {
    try {
        if (!image.id)
            return await marketplaceImage(compute, call, region, image);
        return await imageById(compute, call, image.id);
    }
    catch (err) {
        if (err instanceof errors/* CloudError */.K2 && err.kind === 'gone') {
            throw new errors/* CloudError */.K2('Azure', err.code, `image ${input} was not found`, 'Check the image input.', 'permanent');
        }
        throw err;
    }
}
async function marketplaceImage(compute, call, region, image) {
    const { publisher, offer, sku } = image;
    let version = image.version;
    if (version.toLowerCase() === 'latest') {
        const versions = await call('virtualMachineImages.list', () => compute.virtualMachineImages.list(region, publisher, offer, sku));
        const names = versions.map((v) => v.name).sort(compareVersions);
        if (names.length === 0) {
            throw new errors/* CloudError */.K2('Azure', 'NotFound', `no version of ${publisher}:${offer}:${sku} in ${region}`, '', 'gone');
        }
        version = names.at(-1);
    }
    let raw;
    const got = await call('virtualMachineImages.get', () => compute.virtualMachineImages.get(region, publisher, offer, sku, version, {
        onResponse: (r) => {
            raw = r.parsedBody;
        },
    }));
    const sizeGb = osDiskGb(raw);
    return {
        reference: { publisher, offer, sku, version },
        ...(sizeGb ? { sizeGb } : {}),
        ...(got.hyperVGeneration ? { generation: got.hyperVGeneration } : {}),
        kind: 'marketplace',
    };
}
async function imageById(compute, call, id) {
    const parts = id.split('/');
    const group = parts[4];
    if (parts[7]?.toLowerCase() === 'images') {
        const img = await call('images.get', () => compute.images.get(group, parts[8]));
        const sizeGb = img.storageProfile?.osDisk?.diskSizeGB;
        return {
            reference: { id },
            ...(sizeGb ? { sizeGb } : {}),
            ...(img.hyperVGeneration ? { generation: img.hyperVGeneration } : {}),
            kind: 'managed',
        };
    }
    const [gallery, name, version] = [parts[8], parts[10], parts[12]];
    const [definition, chosen] = await Promise.all([
        call('galleryImages.get', () => compute.galleryImages.get(group, gallery, name)),
        version
            ? call('galleryImageVersions.get', () => compute.galleryImageVersions.get(group, gallery, name, version))
            : call('galleryImageVersions.listByGalleryImage', async () => {
                // The create takes the newest version not excluded from latest.
                let latest;
                for await (const v of compute.galleryImageVersions.listByGalleryImage(group, gallery, name)) {
                    if (v.publishingProfile?.excludeFromLatest || !v.name)
                        continue;
                    if (!latest || compareVersions(v.name, latest.name) > 0)
                        latest = v;
                }
                return latest;
            }),
    ]);
    const sizeGb = chosen?.storageProfile?.osDiskImage?.sizeInGB;
    return {
        reference: { id },
        ...(sizeGb ? { sizeGb } : {}),
        ...(definition.hyperVGeneration ? { generation: definition.hyperVGeneration } : {}),
        kind: 'gallery',
    };
}
/**
 * The security type, always explicit: a new Gen2 VM left without one may be Trusted Launch with
 * Secure Boot on, under which an NVIDIA driver the image or the startup script brings does not
 * load. Trusted Launch without Secure Boot (vTPM on) where the size and image take it, which an
 * image that takes only Trusted Launch needs too; Standard otherwise (Gen1 and managed images,
 * sizes without Trusted Launch).
 */
function securityProfileFor(size, offered, image) {
    const imageTakesIt = image.generation?.toUpperCase() !== 'V1' && image.kind !== 'managed';
    if (imageTakesIt && (0,catalog/* azureSizeTakesTrustedLaunch */.zx)(size) && !offered?.trustedLaunchDisabled) {
        return { securityType: 'TrustedLaunch', uefiSettings: { secureBootEnabled: false, vTpmEnabled: true } };
    }
    return { securityType: 'Standard' };
}

;// CONCATENATED MODULE: ./src/clouds/azure/provider.ts















/**
 * Azure. Each runner gets its own resource group holding everything of its machine (network
 * security group, virtual network, public address, network interface, VM and its disk), so one
 * deletion ends it all, and a machine's id is its resource group's name.
 *
 * Credentials, from the context's environment: AZURE_CLIENT_ID / AZURE_TENANT_ID with
 * AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, or the job's GitHub OIDC token; otherwise
 * @azure/identity's DefaultAzureCredential (the Azure CLI that azure/login signs in, a managed
 * identity). The ARM endpoint moves with AZURE_RESOURCE_MANAGER_ENDPOINT (sovereign clouds,
 * Azure Stack Hub).
 *
 * Retries: the SDK's are off (maxRetries 0); each call, a long-running one as a whole, is
 * retried by `cloudCall`. Creates are PUTs of a named resource, so a repeat is harmless.
 *
 * The VM has a system-assigned managed identity with the custom role "cml-runner-action VM"
 * (docs/permissions/azure/vm-role.json, found by name) on its own resource group, so that its
 * startup script can delete the group (or deallocate the VM) when the runner is done: a stopped
 * Azure VM still bills. That role writes nothing, tags included, so a job on the VM cannot hide
 * its group from cleanup and sweep, which find groups by their tags and by their name prefix.
 *
 * The runner's credential is not in the custom data (the startup script), which cannot be changed
 * after creation and which root on the VM can read back: it is the VM's user data, which the
 * script reads from the instance metadata service and `online()` empties once the runner is up.
 */
const DEFAULT_ARM = 'https://management.azure.com';
/** The custom role a VM's identity gets on its own resource group (docs/permissions/azure/vm-role.json). */
const AZURE_VM_ROLE = 'cml-runner-action VM';
/** What a VM that cannot end itself costs, and what ends it instead. */
const STILL_BILLS = 'A stopped Azure VM still bills: keep the cleanup job (mode: cleanup, if: always()) and a scheduled sweep, ' +
    'which delete them.';
const LRO_TIMEOUT_MS = 15 * 60_000;
/** Groups whose VM list() reads at once. */
const LIST_CONCURRENCY = 10;
/** Long-running operations are polled as often as ARM's Retry-After says, or every 0.5 s when it says nothing. */
const POLL = { updateIntervalInMs: 500 };
function createCloud(options, region, ctx) {
    return new AzureCloud(options, region, ctx);
}
class AzureCloud {
    options;
    region;
    ctx;
    name = 'azure';
    title = 'Azure';
    kind = 'vm';
    resources;
    network;
    compute;
    authorization;
    arm;
    /** One throwaway key for every VM of the launch: making an RSA key blocks for tens of milliseconds. */
    sshKey;
    subscriptionId;
    policy = {
        translate: (err, action) => azureError(err, action),
        retryAfterMs: azureRetryAfterMs,
    };
    constructor(options, region, ctx) {
        this.options = options;
        this.region = region;
        this.ctx = ctx;
        this.subscriptionId = options.subscriptionId;
        this.arm = (ctx.env.AZURE_RESOURCE_MANAGER_ENDPOINT || DEFAULT_ARM).replace(/\/+$/, '');
        const credential = azureCredential(ctx.env);
        const scopes = [`${this.arm}/.default`];
        // No retries in the SDK: cloudCall is the only retry layer.
        const retryOptions = { maxRetries: 0 };
        const clientOptions = { endpoint: this.arm, credentials: { scopes }, retryOptions };
        this.resources = new arm_resources_dist_esm/* ResourceManagementClient */.h0(credential, this.subscriptionId, clientOptions);
        this.network = new dist_esm/* NetworkManagementClient */.D76(credential, this.subscriptionId, clientOptions);
        this.compute = new esm/* ComputeManagementClient */.Kx(credential, this.subscriptionId, clientOptions);
        this.authorization = new dist/* AuthorizationManagementClient */.IK(credential, this.subscriptionId, {
            endpoint: this.arm,
            credentialScopes: scopes,
            retryOptions,
        });
    }
    async prepare(spec) {
        // Nothing is shared between runners: each has its own group. The sizes the subscription may
        // use here and the image are looked up side by side, before anything exists.
        const warnings = [];
        const call = (action, fn) => this.call(action, fn);
        const input = spec.image ?? catalog/* AZURE_DEFAULT_IMAGE */.yu;
        const [offered, image, vmRoleId] = await Promise.all([
            this.readable(warnings, 'the resource SKUs', 'sizes are not checked before the launch', () => offeredSizes(this.compute, call, this.region).then((r) => r.get(this.region.toLowerCase()) ?? new Map())),
            this.readable(warnings, 'the image', 'its disk size is not checked', () => prepareImage(this.compute, call, this.region, (0,catalog/* parseAzureImage */.uk)(input), input)),
            this.vmRole(warnings),
        ]);
        const types = offered ? spec.types.filter((t) => offered.get(t.toLowerCase())?.usable) : undefined;
        if (types?.length === 0)
            throw await notOffered(this.compute, call, this.region, spec.types);
        const prepared = {
            image: image ?? unreadImage((0,catalog/* parseAzureImage */.uk)(input)),
            // hdd-size below the image's disk is raised to it; Azure refuses a smaller disk.
            ...(spec.hddSizeGb ? { diskSizeGb: Math.max(spec.hddSizeGb, image?.sizeGb ?? 0) } : {}),
            offered: offered ?? new Map(),
            ...(vmRoleId ? { vmRoleId } : {}),
        };
        return {
            ...(types ? { types } : {}),
            scriptSettings: {
                selfDelete: { cloud: 'azure', apiUrl: this.arm },
                ...(spec.spot ? { spotNotice: 'azure' } : {}),
                // The credential goes in the VM's user data, which online() empties; never in custom data.
                credentialFrom: 'azure-user-data',
            },
            places: [undefined],
            warnings,
            launch: (request, placement) => this.launch(spec, prepared, request, placement, warnings),
            online: (machine) => this.clearUserData(machine.id),
        };
    }
    /**
     * Empties the VM's user data, which holds the runner's credential: any process on the VM can
     * read it from the instance metadata service until then. A PATCH with an empty `userData`
     * deletes it, without stopping or rebooting the VM.
     * https://learn.microsoft.com/azure/virtual-machines/user-data#updating-user-data
     */
    async clearUserData(group) {
        await this.lro('virtualMachines.update', () => this.compute.virtualMachines.update(group, 'runner', { userData: '' }, POLL));
    }
    /** A read before the launch; without the right to make it, a warning and the launch goes on. */
    async readable(warnings, what, effect, fn) {
        try {
            return await fn();
        }
        catch (err) {
            if (err.code !== 'AuthorizationFailed')
                throw err;
            // ARM's message names the action refused: the one to add to the role.
            const refused = /perform action '([^']+)'/.exec(err instanceof Error ? err.message : '')?.[1];
            const named = refused ? `: ${refused}` : '';
            warnings.push(`The launching identity may not read ${what} (AuthorizationFailed${named}), so ${effect}.`);
            return undefined;
        }
    }
    /**
     * The definition id of the VM role, found by its name among the subscription's role
     * definitions; without it (not created, or not readable) a warning, and the VMs get no role.
     */
    async vmRole(warnings) {
        const scope = `/subscriptions/${this.subscriptionId}`;
        const found = await this.readable(warnings, 'role definitions', `it cannot find the role "${AZURE_VM_ROLE}" and the VMs cannot delete their own resource groups. ${STILL_BILLS}`, () => this.call('roleDefinitions.list', async () => {
            const ids = [];
            const filter = `roleName eq '${AZURE_VM_ROLE}'`;
            for await (const r of this.authorization.roleDefinitions.list(scope, { filter }))
                if (r.id)
                    ids.push(r.id);
            return ids;
        }));
        if (found === undefined)
            return undefined;
        if (found.length === 0) {
            warnings.push(`The role "${AZURE_VM_ROLE}" does not exist in subscription ${this.subscriptionId}, so the VMs cannot delete ` +
                `their own resource groups. ${STILL_BILLS} Create it once with ` +
                'az role definition create --role-definition @vm-role.json (see "Azure" in the README).');
            return undefined;
        }
        return found[0];
    }
    async launch(spec, prepared, request, placement, warnings) {
        const group = groupName(this.options.resourceGroupPrefix, request.runnerName, request.attempt);
        // Resource groups carry no creation time a list returns: the sweep's grace period needs one.
        const tags = {
            ...request.tags,
            [clouds_tags/* TAG */.D.clientToken]: request.clientToken,
            [clouds_tags/* TAG */.D.createdAt]: new Date(this.ctx.clock.now()).toISOString(),
        };
        const location = this.region;
        await this.call('resourceGroups.createOrUpdate', () => this.resources.resourceGroups.createOrUpdate(group, { location, tags }));
        try {
            return await this.createMachine(spec, prepared, request, placement, group, tags, warnings);
        }
        catch (err) {
            // Whatever was created goes with its group; the refusal itself is what the user sees.
            await this.deleteGroup(group).catch(() => undefined);
            throw err;
        }
    }
    async createMachine(spec, prepared, request, placement, group, tags, warnings) {
        const location = this.region;
        const vmName = 'runner';
        // The network and the address do not depend on each other: they are created side by side.
        const network = (async () => {
            // No inbound rule at all: the NSG's default rules deny inbound from the internet.
            const nsg = await this.lro('networkSecurityGroups.createOrUpdate', () => this.network.networkSecurityGroups.createOrUpdate(group, 'runner-nsg', { location, tags, securityRules: [] }, POLL));
            return this.lro('virtualNetworks.createOrUpdate', () => this.network.virtualNetworks.createOrUpdate(group, 'runner-vnet', {
                location,
                tags,
                addressSpace: { addressPrefixes: ['10.0.0.0/24'] },
                subnets: [{ name: 'runner', addressPrefix: '10.0.0.0/24', networkSecurityGroup: { id: nsg.id } }],
            }, POLL));
        })();
        // A public address is the machine's way out to GitHub (new virtual networks have no default
        // outbound access); the NSG keeps everything from coming in.
        const address = this.lro('publicIPAddresses.createOrUpdate', () => this.network.publicIPAddresses.createOrUpdate(group, 'runner-ip', { location, tags, sku: { name: 'Standard' }, publicIPAllocationMethod: 'Static' }, POLL));
        const [vnet, ip] = await Promise.all([network, address]);
        const nic = await this.lro('networkInterfaces.createOrUpdate', () => this.network.networkInterfaces.createOrUpdate(group, 'runner-nic', {
            location,
            tags,
            ipConfigurations: [
                {
                    name: 'primary',
                    subnet: { id: vnet.subnets?.[0]?.id },
                    publicIPAddress: { id: ip.id, deleteOption: 'Delete' },
                },
            ],
        }, POLL));
        this.sshKey ??= throwawaySshKey();
        const vm = {
            location,
            tags,
            identity: { type: 'SystemAssigned' },
            hardwareProfile: { vmSize: placement.type },
            securityProfile: securityProfileFor(placement.type, prepared.offered.get(placement.type.toLowerCase()), prepared.image),
            storageProfile: {
                imageReference: prepared.image.reference,
                osDisk: {
                    createOption: 'FromImage',
                    deleteOption: 'Delete',
                    managedDisk: { storageAccountType: 'StandardSSD_LRS' },
                    ...(prepared.diskSizeGb ? { diskSizeGB: prepared.diskSizeGb } : {}),
                },
            },
            osProfile: {
                computerName: vmName,
                adminUsername: 'runner',
                // The startup script, without the credential: cloud-init runs it as root at first boot.
                // Base64, 64 KB at most; it cannot be changed after creation, and root on the VM can read it.
                customData: Buffer.from(request.startupScript, 'utf8').toString('base64'),
                // No password, no key: nobody signs in. The serial log says what happened.
                linuxConfiguration: {
                    disablePasswordAuthentication: true,
                    ssh: {
                        publicKeys: [{ path: '/home/runner/.ssh/authorized_keys', keyData: this.sshKey }],
                    },
                    provisionVMAgent: true,
                },
            },
            // The credential, which the script reads from the instance metadata service and online() empties.
            userData: (0,render/* credentialUserData */.Z)(request.credential),
            networkProfile: { networkInterfaces: [{ id: nic.id, primary: true, deleteOption: 'Delete' }] },
            diagnosticsProfile: { bootDiagnostics: { enabled: true } },
            ...(placement.spot
                ? { priority: 'Spot', evictionPolicy: 'Delete', billingProfile: { maxPrice: spec.spotPrice ?? -1 } }
                : {}),
        };
        const created = await this.lro('virtualMachines.createOrUpdate', () => this.compute.virtualMachines.createOrUpdate(group, vmName, vm, POLL));
        await this.allowSelfDelete(group, created.identity?.principalId, prepared.vmRoleId, warnings);
        return { id: group, type: placement.type, spot: placement.spot, zone: location };
    }
    /** The VM role on its own group for the VM's identity, so the VM can delete the group. */
    async allowSelfDelete(group, principalId, roleDefinitionId, warnings) {
        if (!principalId || !roleDefinitionId)
            return;
        const scope = `/subscriptions/${this.subscriptionId}/resourceGroups/${group}`;
        // A new identity takes a moment to replicate: PrincipalNotFound is worth another try here.
        // The assignment's name is fixed before the first try, so a repeat cannot make a second one.
        const name = crypto.randomUUID();
        const policy = {
            ...this.policy,
            translate: (err, action) => {
                const e = azureError(err, action);
                return e.code === 'PrincipalNotFound' ? azureRefusal(e.code, e.message, 'transient') : e;
            },
            baseMs: 2000,
        };
        try {
            await (0,call/* cloudCall */.QY)(this.ctx, policy, 'roleAssignments.create', () => this.authorization.roleAssignments.create(scope, name, {
                roleDefinitionId,
                principalId,
                principalType: 'ServicePrincipal',
            }));
        }
        catch (err) {
            const code = err.code ?? 'Error';
            if (code !== 'AuthorizationFailed')
                throw err;
            const warning = `The launching identity may not assign the role "${AZURE_VM_ROLE}" (${code}), so the VMs cannot delete their ` +
                `own resource groups. ${STILL_BILLS} ` +
                'To let VMs delete themselves, grant Microsoft.Authorization/roleAssignments/write with the condition that ' +
                'allows this role (see "Azure" in the README).';
            if (!warnings.includes(warning))
                warnings.push(warning);
        }
    }
    async states(ids) {
        const states = new Map(ids.map((id) => [id, { state: 'gone' }]));
        if (ids.length === 0)
            return states;
        // By name, not by tag: a group whose tags were removed is still there, and still bills.
        const groups = await this.groups();
        const wanted = new Set(ids);
        await Promise.all(groups
            .filter((g) => wanted.has(g.name))
            .map(async (g) => {
            states.set(g.name, g.provisioningState === 'Deleting' ? { state: 'ending' } : await this.vmState(g.name));
        }));
        return states;
    }
    async vmState(group) {
        try {
            const view = await this.call('virtualMachines.instanceView', () => this.compute.virtualMachines.instanceView(group, 'runner'));
            const codes = (view.statuses ?? []).map((s) => s.code ?? '');
            const power = codes.find((c) => c.startsWith('PowerState/'))?.slice('PowerState/'.length);
            const failed = view.statuses?.find((s) => s.code?.startsWith('ProvisioningState/failed'));
            if (failed)
                return { state: 'failed', detail: failed.message ?? failed.code ?? 'provisioning failed' };
            const state = power === 'running'
                ? 'running'
                : power === 'stopped' || power === 'deallocated'
                    ? 'stopped'
                    : power === 'stopping' || power === 'deallocating'
                        ? 'ending'
                        : 'starting';
            return { state };
        }
        catch (err) {
            // A launch returns once its VM exists, so a group without one lost it: evicted or deleted.
            if (err instanceof errors/* CloudError */.K2 && err.kind === 'gone') {
                return { state: 'gone', detail: 'the VM is gone from its resource group (a spot eviction, or deleted)' };
            }
            throw err;
        }
    }
    /**
     * This action's groups for a repository (and a run): those its tags say are, and those named
     * `<azure-resource-group-prefix>-...` whatever their tags. Resource Manager filters groups by
     * one tag only, not by name, so the list is the subscription's groups, filtered here. A group
     * without this action's tags (someone removed them) is read by its VM's tags; with none there
     * either, it is listed for sweep alone, with its runner named after the group, since which run
     * launched it is unknown.
     */
    async list(filter) {
        const prefix = `${this.options.resourceGroupPrefix}-`.toLowerCase();
        const groups = (await this.groups()).filter((g) => g.tags[clouds_tags/* TAG */.D.managed] === 'true' || g.name.toLowerCase().startsWith(prefix));
        const tagged = await (0,retry/* mapLimited */.bB)(groups, LIST_CONCURRENCY, (g) => g.tags[clouds_tags/* TAG */.D.managed] === 'true' ? Promise.resolve(g.tags) : this.vmTags(g.name));
        const ours = [];
        groups.forEach((g, i) => {
            const r = tagged[i];
            if (r.status === 'rejected')
                throw r.reason;
            const tags = r.value;
            if (tags[clouds_tags/* TAG */.D.managed] === 'true') {
                if (tags[clouds_tags/* TAG */.D.repo] === filter.repo && (!filter.runId || tags[clouds_tags/* TAG */.D.runId] === filter.runId))
                    ours.push({ g, tags });
            }
            else if (!filter.runId) {
                ours.push({ g, tags: { [clouds_tags/* TAG */.D.runner]: g.name.slice(prefix.length) } });
            }
        });
        const states = await (0,retry/* mapLimited */.bB)(ours, LIST_CONCURRENCY, (o) => this.groupState({ ...o.g, tags: o.tags }));
        return ours.map((o, i) => {
            const s = states[i];
            // A state that could not be read leaves the group to the tags: cleanup and sweep still act on it.
            return (0,clouds_tags/* managedFromTags */.V)(o.g.name, o.tags, { state: s.status === 'fulfilled' ? s.value : 'running' });
        });
    }
    /** The tags of a group's VM, or none when it has no VM. */
    async vmTags(group) {
        try {
            const vm = await this.call('virtualMachines.get', () => this.compute.virtualMachines.get(group, 'runner'));
            return vm.tags ?? {};
        }
        catch (err) {
            if (err instanceof errors/* CloudError */.K2 && err.kind === 'gone')
                return {};
            throw err;
        }
    }
    /**
     * A group as cleanup and sweep see it: `ending` while Azure deletes it, else its VM's state. A
     * group without its VM is never `gone`, since the group is what bills: a Spot eviction
     * (evictionPolicy Delete) takes the VM and its disk and leaves the group with its public
     * address. Such a group is `stopped`, for cleanup and sweep to delete, unless it is young
     * enough that its launch may still be creating the VM (`starting`); sweep spares a young group
     * either way, by its created-at tag and the grace period.
     * https://learn.microsoft.com/azure/virtual-machines/spot-vms#eviction-policy
     */
    async groupState(g) {
        if (g.provisioningState === 'Deleting')
            return 'ending';
        const vm = await this.vmState(g.name);
        if (vm.state !== 'gone')
            return vm.state;
        const created = Date.parse(g.tags[clouds_tags/* TAG */.D.createdAt] ?? '');
        const creating = Number.isFinite(created) && this.ctx.clock.now() - created < LRO_TIMEOUT_MS;
        return creating ? 'starting' : 'stopped';
    }
    async groups(filter) {
        return this.call('resourceGroups.list', async () => {
            const out = [];
            for await (const g of this.resources.resourceGroups.list(filter ? { filter } : {})) {
                if (g.name)
                    out.push({ name: g.name, tags: g.tags ?? {}, provisioningState: g.properties?.provisioningState });
            }
            return out;
        });
    }
    async consoleLog(id) {
        const data = await this.call('virtualMachines.retrieveBootDiagnosticsData', () => this.compute.virtualMachines.retrieveBootDiagnosticsData(id, 'runner'));
        if (!data.serialConsoleLogBlobUri)
            return '';
        const res = await fetch(data.serialConsoleLogBlobUri, { signal: AbortSignal.timeout(30_000) });
        return res.ok ? await res.text() : '';
    }
    async terminate(id) {
        return (0,call/* endedOrGone */.p4)(() => this.deleteGroup(id));
    }
    /** Starts the group's deletion; ARM goes on with it. Everything in the group goes with it. */
    async deleteGroup(group) {
        await this.call('resourceGroups.delete', async () => {
            const poller = this.resources.resourceGroups.delete(group, {
                forceDeletionTypes: 'Microsoft.Compute/virtualMachines',
            });
            await poller.submitted();
        });
    }
    async findByClientToken(clientToken) {
        const groups = await this.groups(`tagName eq '${clouds_tags/* TAG */.D.clientToken}' and tagValue eq '${clientToken}'`);
        return groups.map((g) => g.name);
    }
    /** A long-running create, awaited through the SDK's poller, with a timeout. */
    async lro(action, start) {
        return this.call(action, async () => {
            const timeout = AbortSignal.timeout(LRO_TIMEOUT_MS);
            const poller = start();
            return await Promise.race([
                Promise.resolve(poller),
                new Promise((_, reject) => timeout.addEventListener('abort', () => reject(azureRefusal('OperationTimedOut', `${action} not done after ${LRO_TIMEOUT_MS / 60_000} minutes`, 'permanent')))),
            ]);
        });
    }
    call(action, fn) {
        return (0,call/* cloudCall */.QY)(this.ctx, this.policy, action, fn);
    }
}
/**
 * @azure/identity's chain, except in a workflow with GitHub OIDC and an app registration but no
 * secret: then the job's own OIDC token is the client assertion (federated credentials).
 * Instance discovery is for Microsoft's own clouds; another authority host (Azure Stack) skips it.
 */
function azureCredential(env) {
    const host = env.AZURE_AUTHORITY_HOST;
    const microsoft = !host ||
        /(^|\.)(microsoftonline\.(com|us|de)|chinacloudapi\.cn|microsoftonline\.microsoft\.scloud)$/.test(new URL(host).hostname);
    // The credential is handed what it would otherwise read from the process environment.
    const options = {
        ...(host ? { authorityHost: host } : {}),
        ...(microsoft ? {} : { disableInstanceDiscovery: true }),
    };
    const { AZURE_TENANT_ID: tenant, AZURE_CLIENT_ID: client, AZURE_CLIENT_SECRET: secret } = env;
    const tokenFile = env.AZURE_FEDERATED_TOKEN_FILE;
    if (tenant && client && secret)
        return new identity_dist_esm/* ClientSecretCredential */.HC(tenant, client, secret, options);
    if (tenant && client && tokenFile) {
        return new identity_dist_esm/* WorkloadIdentityCredential */.R9({ ...options, tenantId: tenant, clientId: client, tokenFilePath: tokenFile });
    }
    if (env.ACTIONS_ID_TOKEN_REQUEST_URL && tenant && client) {
        return new identity_dist_esm/* ClientAssertionCredential */.XI(tenant, client, () => (0,core/* getIDToken */.V9)('api://AzureADTokenExchange'), options);
    }
    return new identity_dist_esm/* DefaultAzureCredential */.gv(options);
}
/**
 * A Linux VM needs a password or a key. It gets a fresh public key whose private half is never
 * kept: nobody signs in, and the serial log says what happened.
 */
function throwawaySshKey() {
    const { publicKey } = (0,external_node_crypto_.generateKeyPairSync)('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const mpint = (b64url) => {
        const bytes = Buffer.from(b64url, 'base64url');
        return bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
    };
    const field = (b) => Buffer.concat([Buffer.from([0, 0, (b.length >> 8) & 0xff, b.length & 0xff]), b]);
    const blob = Buffer.concat([field(Buffer.from('ssh-rsa')), field(mpint(jwk.e)), field(mpint(jwk.n))]);
    return `ssh-rsa ${blob.toString('base64')} cml-runner`;
}
/** Resource group names: the prefix, the runner name, and the attempt when it is not the first. */
function groupName(prefix, runnerName, attempt) {
    return `${prefix}-${runnerName}${attempt > 1 ? `-${attempt}` : ''}`.slice(0, 90);
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