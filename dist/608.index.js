"use strict";
exports.id = 608;
exports.ids = [608];
exports.modules = {

/***/ 87608:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   GcpCloud: () => (/* binding */ GcpCloud)
/* harmony export */ });
/* unused harmony exports computeEndpoint, instanceName, labelValue */
/* harmony import */ var _google_cloud_compute_build_src_v1_accelerator_types_client_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(90100);
/* harmony import */ var _google_cloud_compute_build_src_v1_images_client_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(28225);
/* harmony import */ var _google_cloud_compute_build_src_v1_instances_client_js__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(60891);
/* harmony import */ var _google_cloud_compute_build_src_v1_machine_types_client_js__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(52986);
/* harmony import */ var _google_cloud_compute_build_src_v1_zone_operations_client_js__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(99276);
/* harmony import */ var _catalog_gcp_js__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(13973);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(83916);
/* harmony import */ var _retry_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(49809);








/**
 * Compute Engine, through the REST transport of @google-cloud/compute.
 *
 * Credentials: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, which
 * google-github-actions/auth writes for Workload Identity Federation; gcloud's; or the metadata
 * server). The API endpoint can be moved (Private Service Connect, a proxy) with gcloud's own
 * setting CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE (`https://host/compute/v1/`).
 *
 * Permissions called: compute.instances.create, .list, .delete, .getSerialPortOutput,
 * .setMetadata, .setLabels (labels and metadata at creation), compute.disks.create,
 * compute.disks.setLabels, compute.subnetworks.use, .useExternalIp, compute.machineTypes.list,
 * compute.acceleratorTypes.list, compute.images.get, .getFromFamily, .useReadOnly,
 * compute.zoneOperations.get, and with gcp-service-account compute.instances.setServiceAccount
 * plus iam.serviceAccounts.actAs on that account.
 *
 * A machine is `<zone>/<instance name>`.
 */
const SCOPES = ['https://www.googleapis.com/auth/cloud-platform'];
const DEFAULT_API = 'https://compute.googleapis.com/compute/v1';
/** An insert is awaited this long (a GPU VM with a large image can take minutes to be RUNNING). */
const OPERATION_TIMEOUT_MS = 10 * 60_000;
/** Each call: 30 s, retried by us (never by the client, so one policy holds everywhere). */
const CALL = { timeout: 30_000, retry: { retryCodes: [] } };
/** Lists page through every result themselves. */
const LIST = { ...CALL, autoPaginate: false };
/** What each Compute Engine error means for the user. Codes pass through verbatim next to this advice. */
const ADVICE = {
    ZONE_RESOURCE_POOL_EXHAUSTED: {
        advice: 'Compute Engine has no capacity for this machine in this zone right now. Other zones of the region are tried; give more types (type takes a comma list), another region, or spot: false.',
        fallback: 'capacity',
    },
    ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS: { advice: 'Compute Engine has no capacity for this machine in this zone right now.', fallback: 'capacity' },
    QUOTA_EXCEEDED: {
        advice: 'A quota of the project is too low for this machine. Request an increase under IAM & Admin > Quotas for the quota named above (GPU quotas are per region and per model; spot VMs use the PREEMPTIBLE_ ones).',
        fallback: 'capacity',
    },
    NOT_OFFERED: { advice: 'This zone does not offer the machine type or its GPU.', fallback: 'capacity' },
    forbidden: { advice: 'The credentials may not do this. Grant the role in the README (Google Cloud section) to the service account the workflow authenticates as.' },
    notFound: { advice: 'Check the gcp-project, region, type and image inputs.' },
    invalid: { advice: 'Compute Engine refused the request; check the type, image, tags and gcp-service-account inputs.' },
    UNAUTHENTICATED: { advice: 'No valid Google Cloud credentials: authenticate with google-github-actions/auth before this step.' },
};
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
const LABEL = {
    managed: 'cml-runner-managed',
    repo: 'cml-runner-repo',
    runId: 'cml-runner-run-id',
    runner: 'cml-runner-runner',
    clientToken: 'cml-runner-client-token',
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
class GcpCloud {
    project;
    region;
    clock;
    name = 'gcp';
    kind = 'vm';
    instances;
    operations;
    machineTypes;
    acceleratorTypes;
    images;
    apiUrl;
    /** Zones of the region, in order, each with the machine types and GPUs it offers for this launch. */
    zones = [];
    image;
    constructor(project, region, clock = _retry_js__WEBPACK_IMPORTED_MODULE_7__/* .realClock */ .dQ) {
        this.project = project;
        this.region = region;
        this.clock = clock;
        const endpoint = computeEndpoint(process.env.CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE);
        this.apiUrl = endpoint.apiUrl;
        // The project is given: otherwise the auth library asks Resource Manager for it.
        const options = { ...endpoint.options, fallback: true, scopes: SCOPES, projectId: project };
        this.instances = new _google_cloud_compute_build_src_v1_instances_client_js__WEBPACK_IMPORTED_MODULE_2__/* .InstancesClient */ .C(options);
        // One credential for every client: one token exchange, one refresh.
        const shared = { ...options, auth: this.instances.auth };
        this.operations = new _google_cloud_compute_build_src_v1_zone_operations_client_js__WEBPACK_IMPORTED_MODULE_4__/* .ZoneOperationsClient */ .G(shared);
        this.machineTypes = new _google_cloud_compute_build_src_v1_machine_types_client_js__WEBPACK_IMPORTED_MODULE_3__/* .MachineTypesClient */ .g(shared);
        this.acceleratorTypes = new _google_cloud_compute_build_src_v1_accelerator_types_client_js__WEBPACK_IMPORTED_MODULE_0__/* .AcceleratorTypesClient */ .W(shared);
        this.images = new _google_cloud_compute_build_src_v1_images_client_js__WEBPACK_IMPORTED_MODULE_1__/* .ImagesClient */ .A(shared);
    }
    scriptSettings(spec) {
        // Without a service account the machine has no token to delete itself with; it stops instead.
        return spec.gcp?.serviceAccount ? { selfDelete: { cloud: 'gcp', apiUrl: this.apiUrl } } : {};
    }
    /** Finds the zones of the region that offer the types and their GPUs, and the image. */
    async prepare(spec) {
        const types = spec.types.map((t) => (0,_catalog_gcp_js__WEBPACK_IMPORTED_MODULE_5__/* .parseGcpType */ .Ch)(t));
        const machineNames = [...new Set(types.map((t) => t.machineType))];
        const acceleratorNames = [...new Set(types.flatMap((t) => (t.accelerator ? [t.accelerator.type] : [])))];
        const [offeredTypes, offeredAccelerators, image] = await Promise.all([
            this.offered('machineTypes.aggregatedList', machineNames, (filter) => this.machineTypes.aggregatedListAsync({ project: this.project, filter }, LIST), (l) => l.machineTypes ?? []),
            acceleratorNames.length === 0
                ? Promise.resolve(new Map())
                : this.offered('acceleratorTypes.aggregatedList', acceleratorNames, (filter) => this.acceleratorTypes.aggregatedListAsync({ project: this.project, filter }, LIST), (l) => l.acceleratorTypes ?? []),
            this.resolveImage(spec.image ?? _catalog_gcp_js__WEBPACK_IMPORTED_MODULE_5__/* .GCP_IMAGES */ .Wu[spec.wantsGpu ? 'gpu' : 'cpu']),
        ]);
        this.zones = [...offeredTypes.keys()]
            .filter((zone) => zone.startsWith(`${this.region}-`))
            .sort()
            .map((zone) => ({ zone, machineTypes: offeredTypes.get(zone), accelerators: offeredAccelerators.get(zone) ?? new Set() }));
        const usable = this.zones.filter((z) => types.some((t) => this.offers(z, t)));
        if (usable.length === 0) {
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .CloudError */ .K2('GCP', 'NOT_OFFERED', `no zone of ${this.region} offers ${spec.types.join(' or ')} (project ${this.project})`, 'Pick another region (for GPUs see https://cloud.google.com/compute/docs/gpus/gpu-regions-zones), or other types.');
        }
        this.zones = usable;
        this.image = { sourceImage: image.selfLink, diskSizeGb: Math.max(spec.hddSizeGb ?? 0, image.diskSizeGb) };
    }
    /** Zone → names offered, for the given names, from one aggregated list. */
    async offered(action, names, list, items) {
        const filter = names.map((n) => `(name = "${n}")`).join(' OR ');
        return this.call(action, 'global', async () => {
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
        const [image] = await this.call(family ? 'images.getFromFamily' : 'images.get', 'global', () => family ? this.images.getFromFamily({ project, family: name }, CALL) : this.images.get({ project, image: name }, CALL));
        if (!image.selfLink)
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .CloudError */ .K2('GCP', 'notFound', `image ${path} has no self link`, ADVICE.notFound.advice);
        return { selfLink: image.selfLink, diskSizeGb: Number(image.diskSizeGb ?? 10) };
    }
    places() {
        return this.zones.map((z) => z.zone);
    }
    async launch(spec, request, placement) {
        const zone = placement.where;
        const type = (0,_catalog_gcp_js__WEBPACK_IMPORTED_MODULE_5__/* .parseGcpType */ .Ch)(placement.type);
        const offered = this.zones.find((z) => z.zone === zone);
        if (!this.image || !offered)
            throw new Error('prepare() must run before launch()');
        if (!this.offers(offered, type)) {
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .CloudError */ .K2('GCP', 'NOT_OFFERED', `${zone} does not offer ${placement.type}`, ADVICE.NOT_OFFERED.advice, 'capacity');
        }
        const name = instanceName(request.runnerName, request.attempt);
        const instance = this.instanceResource(spec, request, placement, zone, type, name);
        try {
            const [operation] = await this.call('instances.insert', zone, () => this.instances.insert({ project: this.project, zone, requestId: request.clientToken, instanceResource: instance }, CALL));
            await this.awaitOperation(zone, operation.latestResponse, `instances.insert ${name}`);
        }
        catch (err) {
            // Already there: an insert whose answer was lost, retried. Ours if it carries this client token.
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .CloudError */ .K2 && err.code === 'alreadyExists' && (await this.findByClientToken(request.clientToken)).includes(`${zone}/${name}`)) {
                return { id: `${zone}/${name}`, type: placement.type, spot: placement.spot, zone };
            }
            throw err;
        }
        return { id: `${zone}/${name}`, type: placement.type, spot: placement.spot, zone };
    }
    instanceResource(spec, request, placement, zone, type, name) {
        const hasGpu = !!type.accelerator || /^(g2|a2|a3|a4|g4)-/.test(type.machineType);
        const labels = this.labels(request);
        return {
            name,
            machineType: `zones/${zone}/machineTypes/${type.machineType}`,
            labels,
            metadata: {
                items: [
                    { key: 'startup-script', value: request.startupScript },
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
                        sourceImage: this.image.sourceImage,
                        diskSizeGb: String(this.image.diskSizeGb),
                        diskType: `zones/${zone}/diskTypes/pd-balanced`,
                        labels,
                    },
                },
            ],
            // The default network, with an ephemeral external address for the way out to GitHub. No
            // firewall rule is created; the network's own ingress rules apply.
            networkInterfaces: [{ network: 'global/networks/default', accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] }],
            guestAccelerators: type.accelerator ? [{ acceleratorType: `zones/${zone}/acceleratorTypes/${type.accelerator.type}`, acceleratorCount: type.accelerator.count }] : [],
            scheduling: {
                provisioningModel: placement.spot ? 'SPOT' : 'STANDARD',
                // Compute Engine itself deletes the VM at max-lifetime (and a preempted spot VM), disk included.
                instanceTerminationAction: 'DELETE',
                maxRunDuration: { seconds: String(request.maxLifetimeSeconds) },
                // GPUs cannot live-migrate; spot VMs cannot either.
                onHostMaintenance: hasGpu || placement.spot ? 'TERMINATE' : 'MIGRATE',
                automaticRestart: !placement.spot,
            },
            serviceAccounts: spec.gcp?.serviceAccount ? [{ email: spec.gcp.serviceAccount, scopes: SCOPES }] : [],
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
        const deadline = this.clock.now() + OPERATION_TIMEOUT_MS;
        while (op.status !== 'DONE') {
            if (this.clock.now() > deadline)
                throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .CloudError */ .K2('GCP', 'OPERATION_TIMEOUT', `${what}: operation ${op.name} not done after ${OPERATION_TIMEOUT_MS / 60_000} minutes`, '');
            [op] = await this.call('zoneOperations.wait', zone, () => this.operations.wait({ project: this.project, zone, operation: op.name }, { timeout: 150_000, retry: { retryCodes: [] } }));
        }
        const error = op.error?.errors?.[0];
        if (error) {
            const code = error.code ?? 'OPERATION_FAILED';
            const known = ADVICE[code];
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .CloudError */ .K2('GCP', code, `${what} in ${zone}: ${error.message ?? code}`, known?.advice ?? '', known?.fallback);
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
            const meta = (key) => instance.metadata?.items?.find((i) => i.key === key)?.value ?? undefined;
            const repo = meta('cml-runner-repo');
            // The label is lowercased; the exact repository is in the metadata.
            if (repo !== undefined && repo !== filter.repo)
                continue;
            const expires = Date.parse(meta('cml-runner-expires-at') ?? '');
            const created = Date.parse(instance.creationTimestamp ?? '');
            found.push({
                id: `${zone}/${instance.name}`,
                runnerName: meta('cml-runner-runner') ?? instance.labels?.[LABEL.runner] ?? '',
                runId: meta('cml-runner-run-id'),
                repo,
                ...(Number.isFinite(expires) ? { expiresAt: expires } : {}),
                ...(Number.isFinite(created) ? { createdAt: created } : {}),
                state: GCE_STATES[instance.status ?? ''] ?? 'gone',
            });
        }
        return found;
    }
    async aggregated(filter) {
        return this.call('instances.aggregatedList', 'global', async () => {
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
        const [out] = await this.call('instances.getSerialPortOutput', zone, () => this.instances.getSerialPortOutput({ project: this.project, zone, instance: name, port: 1 }, CALL));
        return out.contents ?? '';
    }
    async terminate(id) {
        const [zone, name] = splitId(id);
        try {
            const [operation] = await this.call('instances.delete', zone, () => this.instances.delete({ project: this.project, zone, instance: name }, CALL));
            await this.awaitOperation(zone, operation.latestResponse, `instances.delete ${name}`);
            return 'terminated';
        }
        catch (err) {
            // Already deleted: by itself, by maxRunDuration, by a spot preemption, or by another cleanup.
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .CloudError */ .K2 && (err.code === 'notFound' || err.code === 'RESOURCE_NOT_FOUND'))
                return 'gone';
            throw err;
        }
    }
    async findByClientToken(clientToken) {
        const found = await this.aggregated(`labels.${LABEL.clientToken} = "${labelValue(clientToken)}"`);
        return found.map((f) => `${f.zone}/${f.instance.name}`);
    }
    /** One call with retries for throttling, 5xx and dropped connections; errors become CloudErrors. */
    async call(action, where, fn) {
        try {
            return await (0,_retry_js__WEBPACK_IMPORTED_MODULE_7__/* .withRetry */ .bD)(fn, { attempts: 5, baseMs: 500, retryable, clock: this.clock });
        }
        catch (err) {
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .CloudError */ .K2)
                throw err;
            const { code, message } = describeError(err);
            const known = ADVICE[code];
            throw new _errors_js__WEBPACK_IMPORTED_MODULE_6__/* .CloudError */ .K2('GCP', code, `compute ${action}${where === 'global' ? '' : ` in ${where}`}: ${message}`, known?.advice ?? '', known?.fallback);
        }
    }
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
/** gRPC codes the REST transport maps HTTP statuses to: 4 deadline, 8 resource exhausted (429), 13 internal, 14 unavailable. */
const RETRYABLE_GRPC = new Set([4, 8, 13, 14]);
function retryable(err) {
    const { code } = describeError(err);
    if (code === 'QUOTA_EXCEEDED')
        return false;
    if (code === 'rateLimitExceeded' || code === 'userRateLimitExceeded' || code === 'backendError' || code === 'RATE_LIMIT_EXCEEDED')
        return true;
    const e = err;
    if (typeof e.code === 'number' && RETRYABLE_GRPC.has(e.code))
        return true;
    if (typeof e.code === 'string' && /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|UND_ERR_SOCKET)$/.test(e.code))
        return true;
    return /socket hang up|ECONNRESET|other side closed|fetch failed/i.test(e.message ?? '');
}
/** The REST transport keeps the raw error body here; Compute Engine's own reason is only in it. */
const RAW_PAYLOAD = Symbol.for('google-gax.rawHttpResponsePayload');
/** HTTP statuses without a reason in the body, as Compute Engine names them. */
const STATUS_CODES = { 401: 'UNAUTHENTICATED', 403: 'forbidden', 404: 'notFound', 409: 'alreadyExists' };
/**
 * The Compute Engine reason (notFound, alreadyExists, quotaExceeded…) as the code, read from the
 * raw error body, or from the ErrorInfo detail the client decodes (QUOTA_EXCEEDED).
 */
function describeError(err) {
    const e = err;
    let reason;
    try {
        const body = typeof e[RAW_PAYLOAD] === 'string' ? JSON.parse(e[RAW_PAYLOAD]) : undefined;
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
    return { code: code ?? String(e.code ?? 'Error'), message: (0,_errors_js__WEBPACK_IMPORTED_MODULE_6__/* .errorMessage */ .gJ)(err) };
}


/***/ })

};
;