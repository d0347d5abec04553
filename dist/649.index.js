"use strict";
exports.id = 649;
exports.ids = [649];
exports.modules = {

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


/***/ }),

/***/ 71649:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  GcpCloud: () => (/* binding */ GcpCloud),
  NETWORK_TAG: () => (/* binding */ NETWORK_TAG),
  NO_SERVICE_ACCOUNT_WARNING: () => (/* binding */ NO_SERVICE_ACCOUNT_WARNING),
  computeEndpoint: () => (/* binding */ computeEndpoint),
  createCloud: () => (/* binding */ createCloud),
  instanceName: () => (/* binding */ instanceName),
  labelValue: () => (/* binding */ labelValue)
});

// EXTERNAL MODULE: ./node_modules/@google-cloud/compute/build/src/v1/accelerator_types_client.js
var accelerator_types_client = __webpack_require__(90100);
// EXTERNAL MODULE: ./node_modules/@google-cloud/compute/build/src/v1/images_client.js
var images_client = __webpack_require__(28225);
// EXTERNAL MODULE: ./node_modules/@google-cloud/compute/build/src/v1/instances_client.js
var instances_client = __webpack_require__(60891);
// EXTERNAL MODULE: ./node_modules/@google-cloud/compute/build/src/v1/machine_types_client.js
var machine_types_client = __webpack_require__(52986);
// EXTERNAL MODULE: ./node_modules/@google-cloud/compute/build/src/v1/zone_operations_client.js
var zone_operations_client = __webpack_require__(99276);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(73024);
// EXTERNAL MODULE: ./src/errors.ts
var errors = __webpack_require__(83916);
// EXTERNAL MODULE: ./src/clouds/call.ts
var call = __webpack_require__(15268);
// EXTERNAL MODULE: ./src/clouds/tags.ts
var clouds_tags = __webpack_require__(1061);
// EXTERNAL MODULE: ./src/clouds/gcp/catalog.ts
var catalog = __webpack_require__(52208);
;// CONCATENATED MODULE: ./src/clouds/gcp/errors.ts


/**
 * What each Compute Engine error means: its kind, and what the user can do. Codes pass through
 * verbatim. Reasons: https://cloud.google.com/compute/docs/troubleshooting/troubleshooting-vm-creation
 */
const KNOWN = {
    ZONE_RESOURCE_POOL_EXHAUSTED: {
        kind: 'capacity',
        advice: 'Compute Engine has no capacity for this machine in this zone right now. Other zones of the region are tried; ' +
            'give more types (type takes a comma list), another region, or spot: false.',
    },
    ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS: {
        kind: 'capacity',
        advice: 'Compute Engine has no capacity for this machine in this zone right now.',
    },
    NOT_OFFERED: { kind: 'capacity', advice: 'This zone does not offer the machine type or its GPU.' },
    // A quota holds in every zone of the region: trying the next zone only repeats the refusal.
    QUOTA_EXCEEDED: {
        kind: 'quota',
        advice: 'A quota of the project is too low for this machine. Request an increase under IAM & Admin > Quotas for the ' +
            'quota named above (GPU quotas are per region and per model; spot VMs use the PREEMPTIBLE_ ones).',
    },
    forbidden: {
        kind: 'permanent',
        advice: 'The credentials may not do this. Grant the role in the README (Google Cloud section) to the service account ' +
            'the workflow authenticates as.',
    },
    notFound: { kind: 'gone', advice: 'Check the gcp-project, region, type and image inputs.' },
    RESOURCE_NOT_FOUND: { kind: 'gone', advice: 'Check the gcp-project, region, type and image inputs.' },
    invalid: {
        kind: 'permanent',
        advice: 'Compute Engine refused the request; check the type, image, tags, gcp-network, gcp-subnetwork and ' +
            'gcp-service-account inputs (a project without a default network needs gcp-network or gcp-subnetwork).',
    },
    // An organisation policy, or a precondition such as a metadata fingerprint.
    conditionNotMet: {
        kind: 'permanent',
        advice: 'A condition of the project refused this. For constraints/compute.vmExternalIpAccess (an organisation ' +
            'policy against external IPs), set gcp-external-ip: false on a network whose Cloud NAT (or a proxy) ' +
            'reaches GitHub.',
    },
    alreadyExists: { kind: 'permanent', advice: '' },
    UNAUTHENTICATED: {
        kind: 'permanent',
        advice: 'No valid Google Cloud credentials: authenticate with google-github-actions/auth before this step.',
    },
};
const TRANSIENT = new Set([
    'rateLimitExceeded',
    'userRateLimitExceeded',
    'backendError',
    'RATE_LIMIT_EXCEEDED',
    'internalError',
]);
/**
 * gRPC codes the REST transport maps HTTP statuses to: 4 deadline, 8 resource exhausted (429),
 * 13 internal, 14 unavailable.
 */
const TRANSIENT_GRPC = new Set([4, 8, 13, 14]);
/** The REST transport keeps the raw error body here; Compute Engine's own reason is only in it. */
const RAW_PAYLOAD = Symbol.for('google-gax.rawHttpResponsePayload');
/** HTTP statuses without a reason in the body, as Compute Engine names them. */
const STATUS_CODES = {
    401: 'UNAUTHENTICATED',
    403: 'forbidden',
    404: 'notFound',
    409: 'alreadyExists',
};
/**
 * The Compute Engine reason (notFound, alreadyExists, quotaExceeded…) as the code, read from the
 * raw error body, or from the ErrorInfo detail the client decodes (QUOTA_EXCEEDED).
 */
function gceCode(err) {
    const e = err;
    let reason;
    try {
        const raw = e[RAW_PAYLOAD];
        const body = typeof raw === 'string' ? JSON.parse(raw) : undefined;
        reason = body?.error?.errors?.[0]?.reason;
    }
    catch {
        // Not JSON: the status alone says it.
    }
    let code = e.reason ?? reason ?? (e.httpStatusCode ? STATUS_CODES[e.httpStatusCode] : undefined);
    if (code === 'quotaExceeded')
        code = 'QUOTA_EXCEEDED';
    if (!code && /invalid_grant|unauthorized_client|invalid_client/.test(e.message ?? ''))
        code = 'UNAUTHENTICATED';
    return code ?? String(e.code ?? 'Error');
}
/** The kind of a Compute Engine error, by its reason, then by its status, then by its connection. */
function gceErrorKind(code, err) {
    const known = KNOWN[code];
    if (known)
        return known.kind;
    if (TRANSIENT.has(code))
        return 'transient';
    const e = (err ?? {});
    if (typeof e.code === 'number' && TRANSIENT_GRPC.has(e.code))
        return 'transient';
    if (e.httpStatusCode !== undefined)
        return e.httpStatusCode === 429 || e.httpStatusCode >= 500 ? 'transient' : 'permanent';
    return err !== undefined && (0,call/* isConnectionError */.Rk)(err) ? 'transient' : 'permanent';
}
/** Compute Engine's words when the caller may not run a VM as that service account. */
const NO_ACT_AS = /does not have access to service account '([^']+)'/;
function gceError(err, action) {
    const code = gceCode(err);
    const message = (0,errors/* errorMessage */.gJ)(err);
    const actAs = NO_ACT_AS.exec(message);
    const advice = actAs
        ? `The launching identity needs iam.serviceAccounts.actAs on ${actAs[1]}: grant it ` +
            'roles/iam.serviceAccountUser on that account alone (docs/permissions/gcp/service-account-user.yaml, ' +
            'README "The launcher\'s roles").'
        : (KNOWN[code]?.advice ?? '');
    return new errors/* CloudError */.K2('GCP', code, `compute ${action}: ${message}`, advice, gceErrorKind(code, err));
}
/** A refusal made here, or an operation's own error, in the same shape as the service's. */
const gceRefusal = (code, detail, advice = KNOWN[code]?.advice ?? '', kind = gceErrorKind(code)) => new errors/* CloudError */.K2('GCP', code, detail, advice, kind);

;// CONCATENATED MODULE: ./src/clouds/gcp/provider.ts











/**
 * Compute Engine, through the REST transport of @google-cloud/compute.
 *
 * Credentials: the file GOOGLE_APPLICATION_CREDENTIALS names in the context's environment (what
 * google-github-actions/auth writes for Workload Identity Federation), handed to GoogleAuth;
 * without it, Application Default Credentials (gcloud's, or the metadata server). The API
 * endpoint can be moved (Private Service Connect, a proxy) with gcloud's own setting
 * CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE (`https://host/compute/v1/`).
 *
 * Retries: gax retries nothing (`retryCodes: []` on every call); each call is retried by
 * `cloudCall`. An insert carries a requestId, so a repeat after a lost answer makes one VM.
 *
 * Permissions called: compute.instances.create, .get, .list, .delete, .getSerialPortOutput,
 * .setMetadata (metadata at creation, and removing a reusable runner's startup script once it is
 * online), .setLabels (labels at creation), .setTags (the network tag at creation),
 * compute.disks.create, compute.disks.setLabels, compute.subnetworks.use, .useExternalIp (not
 * with gcp-external-ip: false), compute.machineTypes.list, compute.acceleratorTypes.list,
 * compute.images.get, .getFromFamily, .useReadOnly, compute.zoneOperations.get, and with gcp-service-account
 * compute.instances.setServiceAccount plus iam.serviceAccounts.actAs on that account.
 *
 * A machine is `<zone>/<instance name>`.
 */
const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];
/** The network tag of every VM, for a firewall rule that denies ingress to runners. */
const NETWORK_TAG = 'cml-runner';
const DEFAULT_API = 'https://compute.googleapis.com/compute/v1';
/** An insert is awaited this long (a GPU VM with a large image can take minutes to be RUNNING). */
const OPERATION_TIMEOUT_MS = 10 * 60_000;
/** Each call: 30 s, retried by us (never by the client, so one policy holds everywhere). */
const CALL = { timeout: 30_000, retry: { retryCodes: [] } };
/** Lists page through every result themselves. */
const LIST = { ...CALL, autoPaginate: false };
/** Compute Engine instance statuses as the lifecycle sees them. */
const GCE_STATES = {
    PROVISIONING: 'starting',
    STAGING: 'starting',
    RUNNING: 'running',
    STOPPING: 'ending',
    SUSPENDING: 'ending',
    SUSPENDED: 'stopped',
    TERMINATED: 'stopped',
    REPAIRING: 'running',
};
/** Labels are the only filterable tags: lowercase, 63 characters. Exact values go in metadata too. */
const asKey = (tag) => tag.replace(':', '-');
const LABEL = {
    managed: asKey(clouds_tags/* TAG */.D.managed),
    repo: asKey(clouds_tags/* TAG */.D.repo),
    runId: asKey(clouds_tags/* TAG */.D.runId),
    runner: asKey(clouds_tags/* TAG */.D.runner),
    clientToken: asKey(clouds_tags/* TAG */.D.clientToken),
};
/** `https://host[:port]/compute/v1/` as the client's endpoint options. */
function computeEndpoint(override) {
    if (!override)
        return { options: {}, apiUrl: DEFAULT_API };
    const url = new URL(override);
    const protocol = url.protocol.replace(':', '');
    const port = url.port ? Number(url.port) : protocol === 'http' ? 80 : 443;
    return { options: { apiEndpoint: url.hostname, port, protocol }, apiUrl: `${url.origin}/compute/v1` };
}
function createCloud(options, region, ctx) {
    return new GcpCloud(options, region, ctx);
}
/** The warning a launch without a service account gets: its machines cannot delete themselves. */
const NO_SERVICE_ACCOUNT_WARNING = 'gcp-service-account is empty, so the machines cannot delete themselves: when a runner ends, its VM stops and ' +
    'its disk bills until the cleanup job or a sweep deletes it (Compute Engine deletes a VM at max-lifetime only ' +
    'while it runs). Give a service account that may delete instances; see "Google Cloud" in the README.';
class GcpCloud {
    options;
    region;
    ctx;
    name = 'gcp';
    title = 'Google Cloud';
    kind = 'vm';
    instances;
    operations;
    machineTypes;
    acceleratorTypes;
    images;
    apiUrl;
    project;
    policy = { translate: (err, action) => gceError(err, action) };
    constructor(options, region, ctx) {
        this.options = options;
        this.region = region;
        this.ctx = ctx;
        this.project = options.project;
        const endpoint = computeEndpoint(ctx.env.CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE);
        this.apiUrl = endpoint.apiUrl;
        // The project is given: otherwise the auth library asks Resource Manager for it.
        const clientOptions = { ...endpoint.options, fallback: true, scopes: SCOPES, projectId: this.project };
        this.instances = new instances_client/* InstancesClient */.C(clientOptions);
        giveCredentialFile(this.instances.auth, ctx.env);
        // One credential for every client: one token exchange, one refresh.
        const shared = { ...clientOptions, auth: this.instances.auth };
        this.operations = new zone_operations_client/* ZoneOperationsClient */.G(shared);
        this.machineTypes = new machine_types_client/* MachineTypesClient */.g(shared);
        this.acceleratorTypes = new accelerator_types_client/* AcceleratorTypesClient */.W(shared);
        this.images = new images_client/* ImagesClient */.A(shared);
    }
    /** Finds the zones of the region that offer the types and their GPUs, and the image. */
    async prepare(spec) {
        const types = spec.types.map((t) => (0,catalog/* parseGcpType */.Ch)(t));
        const machineNames = [...new Set(types.map((t) => t.machineType))];
        const acceleratorNames = [...new Set(types.flatMap((t) => (t.accelerator ? [t.accelerator.type] : [])))];
        const [offeredTypes, offeredAccelerators, image] = await Promise.all([
            this.offered('machineTypes.aggregatedList', machineNames, (filter) => this.machineTypes.aggregatedListAsync({ project: this.project, filter }, LIST), (l) => l.machineTypes ?? []),
            acceleratorNames.length === 0
                ? Promise.resolve(new Map())
                : this.offered('acceleratorTypes.aggregatedList', acceleratorNames, (filter) => this.acceleratorTypes.aggregatedListAsync({ project: this.project, filter }, LIST), (l) => l.acceleratorTypes ?? []),
            this.resolveImage(spec.image ?? catalog/* GCP_IMAGES */.Wu[spec.wantsGpu ? 'gpu' : 'cpu']),
        ]);
        const zones = [...offeredTypes.keys()]
            .filter((zone) => zone.startsWith(`${this.region}-`))
            .sort()
            .map((zone) => ({
            zone,
            machineTypes: offeredTypes.get(zone),
            accelerators: offeredAccelerators.get(zone) ?? new Set(),
        }))
            .filter((z) => types.some((t) => this.offers(z, t)));
        if (zones.length === 0) {
            // Nowhere in the region: not a capacity to wait for, so the launch fails at once.
            throw gceRefusal('NOT_OFFERED', `no zone of ${this.region} offers ${spec.types.join(' or ')} (project ${this.project})`, 'Pick another region (for GPUs see https://cloud.google.com/compute/docs/gpus/gpu-regions-zones), or ' +
                'other types.', 'permanent');
        }
        const prepared = {
            sourceImage: image.selfLink,
            diskSizeGb: Math.max(spec.hddSizeGb ?? 0, image.diskSizeGb),
        };
        const serviceAccount = this.options.serviceAccount;
        // Machines whose startup script holds a registration token (reusable runners).
        const withToken = new Set();
        return {
            // Without a service account the machine has no token to delete itself with; it stops instead.
            scriptSettings: serviceAccount ? { selfDelete: { cloud: 'gcp', apiUrl: this.apiUrl } } : {},
            places: zones.map((z) => z.zone),
            warnings: serviceAccount ? [] : [NO_SERVICE_ACCOUNT_WARNING],
            launch: async (request, placement) => {
                const machine = await this.launch(zones, prepared, request, placement);
                if ('registrationToken' in request.credential)
                    withToken.add(machine.id);
                return machine;
            },
            online: (machine) => (withToken.has(machine.id) ? this.removeStartupScript(machine.id) : Promise.resolve()),
        };
    }
    /**
     * Removes the `startup-script` metadata item, which any job could read from the metadata server
     * (a reusable runner's holds its registration token): instances.get for the fingerprint, then
     * instances.setMetadata with the other items. A fingerprint that changed meanwhile (412
     * conditionNotMet) is read again once. The running machine is not affected.
     */
    async removeStartupScript(id, attempt = 1) {
        const [zone, name] = splitId(id);
        const where = { project: this.project, zone, instance: name };
        const [instance] = await this.call(`instances.get in ${zone}`, () => this.instances.get(where, CALL));
        const items = instance.metadata?.items ?? [];
        const kept = items.filter((i) => i.key !== 'startup-script');
        if (kept.length === items.length)
            return;
        const metadataResource = { fingerprint: instance.metadata?.fingerprint ?? null, items: kept };
        try {
            const [operation] = await this.call(`instances.setMetadata in ${zone}`, () => this.instances.setMetadata({ ...where, metadataResource }, CALL));
            await this.awaitOperation(zone, operation.latestResponse, `instances.setMetadata ${name}`);
        }
        catch (err) {
            const code = err.code;
            if (attempt === 1 && (code === 'conditionNotMet' || code === 'CONDITION_NOT_MET'))
                return this.removeStartupScript(id, 2);
            throw err;
        }
    }
    /** Zone → names offered, for the given names, from one aggregated list. */
    async offered(action, names, list, items) {
        const filter = names.map((n) => `(name = "${n}")`).join(' OR ');
        return this.call(action, async () => {
            const byZone = new Map();
            for await (const [key, scoped] of list(filter)) {
                const zone = key.replace(/^zones\//, '');
                for (const item of items(scoped))
                    if (item.name)
                        (byZone.get(zone) ?? byZone.set(zone, new Set()).get(zone)).add(item.name);
            }
            return byZone;
        });
    }
    offers(z, t) {
        return z.machineTypes.has(t.machineType) && (!t.accelerator || z.accelerators.has(t.accelerator.type));
    }
    async resolveImage(path) {
        const m = /projects\/([^/]+)\/global\/images\/(family\/)?([^/]+)$/.exec(path);
        const [, project, family, name] = m;
        const [image] = await this.call(family ? 'images.getFromFamily' : 'images.get', () => family
            ? this.images.getFromFamily({ project, family: name }, CALL)
            : this.images.get({ project, image: name }, CALL));
        if (!image.selfLink)
            throw gceRefusal('notFound', `image ${path} has no self link`, undefined, 'permanent');
        return { selfLink: image.selfLink, diskSizeGb: Number(image.diskSizeGb ?? 10) };
    }
    async launch(zones, image, request, placement) {
        const zone = placement.where;
        const type = (0,catalog/* parseGcpType */.Ch)(placement.type);
        const offered = zones.find((z) => z.zone === zone);
        if (!offered)
            throw new Error(`${zone} is not a place this launch was prepared for`);
        if (!this.offers(offered, type))
            throw gceRefusal('NOT_OFFERED', `${zone} does not offer ${placement.type}`);
        const name = instanceName(request.runnerName, request.attempt);
        const instance = this.instanceResource(image, request, placement, zone, type, name);
        try {
            // Retried with the same requestId: Compute Engine answers a repeat with the first insert's operation.
            const [operation] = await this.call(`instances.insert in ${zone}`, () => this.instances.insert({ project: this.project, zone, requestId: request.clientToken, instanceResource: instance }, CALL));
            await this.awaitOperation(zone, operation.latestResponse, `instances.insert ${name}`);
        }
        catch (err) {
            // Already there: an insert whose answer was lost, retried. Ours if it carries this client token.
            const code = err.code;
            if (code === 'alreadyExists' && (await this.findByClientToken(request.clientToken)).includes(`${zone}/${name}`)) {
                return { id: `${zone}/${name}`, type: placement.type, spot: placement.spot, zone };
            }
            throw err;
        }
        return { id: `${zone}/${name}`, type: placement.type, spot: placement.spot, zone };
    }
    instanceResource(image, request, placement, zone, type, name) {
        const serviceAccount = this.options.serviceAccount;
        const hasGpu = !!type.accelerator || /^(g2|a2|a3|a4|g4)-/.test(type.machineType);
        const labels = this.labels(request);
        return {
            name,
            machineType: `zones/${zone}/machineTypes/${type.machineType}`,
            labels,
            // A firewall rule can deny ingress to every runner by this network tag (see the README).
            tags: { items: [NETWORK_TAG] },
            metadata: {
                items: [
                    { key: 'startup-script', value: request.startupScript },
                    // Project-wide SSH keys give no way in; nothing here adds instance keys.
                    { key: 'block-project-ssh-keys', value: 'TRUE' },
                    // Exact values of the tags, which labels can only carry lowercased.
                    ...Object.entries(request.tags)
                        .filter(([k]) => k.startsWith('cml-runner:'))
                        .map(([key, value]) => ({ key: key.replace(':', '-'), value })),
                ],
            },
            disks: [
                {
                    boot: true,
                    autoDelete: true,
                    initializeParams: {
                        sourceImage: image.sourceImage,
                        diskSizeGb: String(image.diskSizeGb),
                        diskType: `zones/${zone}/diskTypes/pd-balanced`,
                        labels,
                    },
                },
            ],
            networkInterfaces: [this.networkInterface()],
            guestAccelerators: type.accelerator
                ? [
                    {
                        acceleratorType: `zones/${zone}/acceleratorTypes/${type.accelerator.type}`,
                        acceleratorCount: type.accelerator.count,
                    },
                ]
                : [],
            scheduling: {
                provisioningModel: placement.spot ? 'SPOT' : 'STANDARD',
                // Compute Engine itself deletes the VM at max-lifetime (and a preempted spot VM), disk included.
                instanceTerminationAction: 'DELETE',
                maxRunDuration: { seconds: String(request.maxLifetimeSeconds) },
                // GPUs cannot live-migrate; spot VMs cannot either.
                onHostMaintenance: hasGpu || placement.spot ? 'TERMINATE' : 'MIGRATE',
                automaticRestart: !placement.spot,
            },
            serviceAccounts: serviceAccount ? [{ email: serviceAccount, scopes: SCOPES }] : [],
        };
    }
    /**
     * gcp-network (`default`) and gcp-subnetwork, with an ephemeral external address for the way
     * out to GitHub unless gcp-external-ip is false (then Cloud NAT or a proxy must give one). A
     * subnetwork alone names its network. No firewall rule is created; the network's own apply.
     */
    networkInterface() {
        const { network, subnetwork, externalIp } = this.options;
        const path = (ref, scope) => (ref.startsWith('projects/') ? ref : `${scope}/${ref}`);
        return {
            ...(network !== undefined || subnetwork === undefined
                ? { network: path(network ?? 'default', 'global/networks') }
                : {}),
            ...(subnetwork !== undefined ? { subnetwork: path(subnetwork, `regions/${this.region}/subnetworks`) } : {}),
            ...(externalIp === false ? {} : { accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] }),
        };
    }
    /** Tags as labels: lowercase, `:` and other characters become `_` or `-`, 63 characters at most. */
    labels(request) {
        const labels = {};
        for (const [key, value] of Object.entries(request.tags)) {
            if (key === 'Name')
                continue;
            const k = key.startsWith('cml-runner:') ? key.replace(':', '-') : key;
            labels[k] = labelValue(value);
        }
        labels[LABEL.clientToken] = request.clientToken;
        return labels;
    }
    async awaitOperation(zone, first, what) {
        let op = first;
        const deadline = this.ctx.clock.now() + OPERATION_TIMEOUT_MS;
        while (op.status !== 'DONE') {
            if (this.ctx.clock.now() > deadline) {
                throw gceRefusal('OPERATION_TIMEOUT', `${what}: operation ${op.name} not done after ${OPERATION_TIMEOUT_MS / 60_000} minutes`);
            }
            const request = { project: this.project, zone, operation: op.name };
            [op] = await this.call(`zoneOperations.wait in ${zone}`, () => this.operations.wait(request, { timeout: 150_000, retry: { retryCodes: [] } }));
        }
        const error = op.error?.errors?.[0];
        if (error) {
            const code = error.code ?? 'OPERATION_FAILED';
            throw gceRefusal(code, `${what} in ${zone}: ${error.message ?? code}`);
        }
    }
    async states(ids) {
        const states = new Map(ids.map((id) => [id, { state: 'gone' }]));
        if (ids.length === 0)
            return states;
        const wanted = new Set(ids);
        // One call for every zone: the instances of this launch, found by their labels.
        for (const inst of await this.aggregated(`labels.${LABEL.managed} = "true"`)) {
            const id = `${inst.zone}/${inst.instance.name}`;
            if (!wanted.has(id))
                continue;
            const detail = inst.instance.statusMessage ?? undefined;
            states.set(id, { state: GCE_STATES[inst.instance.status ?? ''] ?? 'gone', ...(detail ? { detail } : {}) });
        }
        return states;
    }
    async list(filter) {
        const clauses = [`(labels.${LABEL.managed} = "true")`, `(labels.${LABEL.repo} = "${labelValue(filter.repo)}")`];
        if (filter.runId)
            clauses.push(`(labels.${LABEL.runId} = "${labelValue(filter.runId)}")`);
        const found = [];
        for (const { zone, instance } of await this.aggregated(clauses.join(' '))) {
            const tags = tagsFromMetadata(instance);
            // The label is lowercased; the exact repository is in the metadata.
            if (tags[clouds_tags/* TAG */.D.repo] !== undefined && tags[clouds_tags/* TAG */.D.repo] !== filter.repo)
                continue;
            tags[clouds_tags/* TAG */.D.runner] ??= instance.labels?.[LABEL.runner] ?? undefined;
            const created = Date.parse(instance.creationTimestamp ?? '');
            found.push((0,clouds_tags/* managedFromTags */.V)(`${zone}/${instance.name}`, tags, {
                state: GCE_STATES[instance.status ?? ''] ?? 'gone',
                ...(Number.isFinite(created) ? { createdAt: created } : {}),
            }));
        }
        return found;
    }
    async aggregated(filter) {
        return this.call('instances.aggregatedList', async () => {
            const out = [];
            for await (const [key, scoped] of this.instances.aggregatedListAsync({ project: this.project, filter, maxResults: 500 }, LIST)) {
                for (const instance of scoped.instances ?? [])
                    out.push({ zone: key.replace(/^zones\//, ''), instance });
            }
            return out;
        });
    }
    async consoleLog(id) {
        const [zone, name] = splitId(id);
        const request = { project: this.project, zone, instance: name, port: 1 };
        const [out] = await this.call(`instances.getSerialPortOutput in ${zone}`, () => this.instances.getSerialPortOutput(request, CALL));
        return out.contents ?? '';
    }
    async terminate(id) {
        const [zone, name] = splitId(id);
        // Already deleted counts: by itself, by maxRunDuration, by a spot preemption, or by another cleanup.
        return (0,call/* endedOrGone */.p4)(async () => {
            const request = { project: this.project, zone, instance: name };
            const [operation] = await this.call(`instances.delete in ${zone}`, () => this.instances.delete(request, CALL));
            await this.awaitOperation(zone, operation.latestResponse, `instances.delete ${name}`);
        });
    }
    async findByClientToken(clientToken) {
        const found = await this.aggregated(`labels.${LABEL.clientToken} = "${labelValue(clientToken)}"`);
        return found.map((f) => `${f.zone}/${f.instance.name}`);
    }
    call(action, fn) {
        return (0,call/* cloudCall */.QY)(this.ctx, this.policy, action, fn);
    }
}
/**
 * The credential file named in the context's environment, handed to GoogleAuth as its contents
 * (what its own chain would read from GOOGLE_APPLICATION_CREDENTIALS; the keyFilename option is
 * deprecated and warns). Without it, GoogleAuth's own chain: gcloud's, or the metadata server.
 */
function giveCredentialFile(auth, env) {
    const file = env.GOOGLE_APPLICATION_CREDENTIALS;
    if (!file)
        return;
    try {
        auth.jsonContent = JSON.parse((0,external_node_fs_.readFileSync)(file, 'utf8'));
    }
    catch (err) {
        throw gceRefusal('UNAUTHENTICATED', `the credential file GOOGLE_APPLICATION_CREDENTIALS names (${file}) cannot be read: ${(0,errors/* errorMessage */.gJ)(err)}`, undefined, 'permanent');
    }
}
/** The exact tag values, which the instance keeps in its metadata (`cml-runner-repo`). */
function tagsFromMetadata(instance) {
    const tags = {};
    for (const item of instance.metadata?.items ?? []) {
        if (item.key?.startsWith('cml-runner-') && item.value != null)
            tags[item.key.replace('cml-runner-', 'cml-runner:')] = item.value;
    }
    return tags;
}
/** Instance names: lowercase letters, digits and dashes, starting with a letter, 63 at most. */
function instanceName(runnerName, attempt) {
    const suffix = attempt > 1 ? `-${attempt}` : '';
    let base = runnerName.toLowerCase().replace(/[^a-z0-9-]/g, '-');
    if (!/^[a-z]/.test(base))
        base = `r-${base}`;
    base = base.slice(0, 63 - suffix.length).replace(/-+$/, '');
    return `${base}${suffix}`;
}
/** A label value: lowercase letters, digits, `_` and `-`, 63 at most. */
function labelValue(value) {
    return value
        .toLowerCase()
        .replace(/[^a-z0-9_-]/g, '_')
        .slice(0, 63);
}
function splitId(id) {
    const slash = id.indexOf('/');
    return [id.slice(0, slash), id.slice(slash + 1)];
}


/***/ })

};
;