"use strict";
exports.id = 561;
exports.ids = [561];
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

/***/ 48561:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

// ESM COMPAT FLAG
__webpack_require__.r(__webpack_exports__);

// EXPORTS
__webpack_require__.d(__webpack_exports__, {
  KubernetesCloud: () => (/* binding */ KubernetesCloud),
  createCloud: () => (/* binding */ createCloud),
  metadataFromTags: () => (/* binding */ metadataFromTags),
  objectName: () => (/* binding */ objectName)
});

// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __webpack_require__(73024);
// EXTERNAL MODULE: ./node_modules/@kubernetes/client-node/dist/index.js + 875 modules
var dist = __webpack_require__(94418);
// EXTERNAL MODULE: ./src/errors.ts
var errors = __webpack_require__(83916);
// EXTERNAL MODULE: ./src/clouds/call.ts
var call = __webpack_require__(15268);
// EXTERNAL MODULE: ./src/clouds/tags.ts
var clouds_tags = __webpack_require__(1061);
// EXTERNAL MODULE: ./src/clouds/kubernetes/catalog.ts
var catalog = __webpack_require__(81184);
;// CONCATENATED MODULE: ./src/clouds/kubernetes/errors.ts



/**
 * What an API server's answer means: the Status reason is the code, the HTTP status the kind.
 * https://kubernetes.io/docs/reference/using-api/api-concepts/#response-status-kind
 */
const ADVICE = {
    401: 'The cluster refused the credentials in the kubeconfig. Check that its token or certificate is current; tokens ' +
        'from `kubectl create token` expire.',
    403: 'The identity in the kubeconfig lacks a permission. Bind it to the Role in the README ' +
        '(docs/permissions/kubernetes/launcher-role.yaml), in the runners namespace.',
    404: 'Check kubernetes-namespace: the namespace must exist.',
    409: 'An object with this name already exists in the namespace; give another runner name.',
    422: 'The cluster rejected the pod spec; check kubernetes-image, kubernetes-node-selector, kubernetes-tolerations, ' +
        'kubernetes-runtime-class, type and hdd-size.',
    429: 'The API server is throttling requests; launch fewer runners at once or retry later.',
};
const QUOTA_ADVICE = 'A ResourceQuota of the namespace refuses this pod (the message names it). Ask for a larger quota, or give a ' +
    'smaller type.';
/** An answer from the API server: its Status reason as the code, and the HTTP status. */
class KubernetesApiError extends errors/* CloudError */.K2 {
    status;
    constructor(status, reason, detail, advice, kind) {
        super('Kubernetes', reason, detail, advice, kind);
        this.status = status;
    }
}
/**
 * The kind of an answer: 429 and 5xx are worth another try; 404 is gone; a ResourceQuota refusal
 * (403 "exceeded quota") is a quota; any other 4xx is final.
 */
function kubernetesErrorKind(status, message) {
    if (status === 429 || status >= 500)
        return 'transient';
    if (status === 404)
        return 'gone';
    if (status === 403 && /exceeded quota/i.test(message))
        return 'quota';
    return 'permanent';
}
function parseStatus(body) {
    if (typeof body === 'string') {
        try {
            return JSON.parse(body);
        }
        catch {
            return body ? { message: body } : undefined;
        }
    }
    return body && typeof body === 'object' ? body : undefined;
}
function kubernetesError(err, call) {
    if (err instanceof errors/* CloudError */.K2)
        return err;
    const { where } = call;
    if (err instanceof dist/* ApiException */.UJ4) {
        const status = parseStatus(err.body);
        const reason = status?.reason ?? (err.code === 401 ? 'Unauthorized' : `HTTP${err.code}`);
        const message = status?.message ?? (err.code === 401 ? 'Unauthorized' : 'no message');
        const kind = kubernetesErrorKind(err.code, message);
        const advice = kind === 'quota'
            ? QUOTA_ADVICE
            : err.code === 404
                ? status?.details?.kind === 'namespaces'
                    ? ADVICE[404]
                    : ''
                : (ADVICE[err.code] ?? '');
        const detail = `${where}: ${message} (HTTP ${err.code}, credentials from ${call.source})`;
        return new KubernetesApiError(err.code, reason, detail, advice, kind);
    }
    const text = (0,errors/* errorMessage */.gJ)(err);
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    if (call.usesPlugin && !/fetch failed|ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET/.test(text + cause)) {
        return new errors/* CloudError */.K2('Kubernetes', 'CredentialPlugin', `${where}: the kubeconfig's exec credential plugin failed: ${text.trim()}${cause}`, 'Install the plugin the kubeconfig names on the launch runner (for example gke-gcloud-auth-plugin, aws or ' +
            'kubelogin), or use a kubeconfig with a service-account token.', 'permanent');
    }
    return new errors/* CloudError */.K2('Kubernetes', 'Unreachable', `${where}: cannot reach the API server at ${call.server}: ${text}${cause}`, 'Check the server address in the kubeconfig, and that the launch job can reach it (a self-hosted launcher ' +
        'inside the network, or an authorised-networks rule).', 'transient');
}
function kubernetesRetryAfterMs(err) {
    if (!(err instanceof dist/* ApiException */.UJ4))
        return undefined;
    const headers = err.headers;
    return (0,call/* retryAfterHeader */.W8)(headers?.['retry-after'] ?? headers?.['Retry-After']);
}

// EXTERNAL MODULE: ./src/clouds/kubernetes/options.ts
var options = __webpack_require__(38053);
;// CONCATENATED MODULE: ./src/clouds/kubernetes/provider.ts








/**
 * Runner pods on an existing cluster. Each runner is a batch/v1 Job with one pod, and a Secret of
 * the same name holding the startup script and the runner's credential. The Job is created
 * suspended, the Secret then created already owned by it, and the Job resumed: a Secret never
 * exists without its Job, so it goes when the Job goes, and the Jobs alone say what exists. The
 * credential reaches the container only through `valueFrom.secretKeyRef`: it is never a literal
 * in the pod spec. Once the runner is online the Secret is deleted (`online`), and the startup
 * script starts itself again without the credential in its environment (src/bootstrap/startup.sh).
 *
 * The Job ends itself: the container exits after its ephemeral job or idle-timeout, the Job
 * completes, and ttlSecondsAfterFinished removes it. activeDeadlineSeconds is max-lifetime,
 * enforced by the cluster.
 *
 * RBAC (docs/permissions/kubernetes/launcher-role.yaml): jobs create/get/list/patch/delete,
 * secrets create/delete (never read or listed: each is named after its Job), pods list,
 * pods/log get, events list, all in the runners' namespace.
 *
 * Retries: the client has none of its own; each call is retried by `cloudCall` (a create only
 * where a repeat is recognised as ours: a dry run, or an object carrying our client token).
 */
const MANAGED_BY = 'cml-runner-action';
/** The runner's exact name, which an object name (lowercased, 63 characters) may not keep. */
const RUNNER_NAME = 'cml-runner/runner-name';
/** Our tags become `cml-runner/` label and annotation keys: `cml-runner:run-id` is `cml-runner/run-id`. */
function asLabelKey(tag) {
    return tag.replace(/^cml-runner:/, 'cml-runner/');
}
const LABEL = {
    managedBy: 'app.kubernetes.io/managed-by',
    machine: 'cml-runner/machine',
    clientToken: asLabelKey(clouds_tags/* TAG */.D.clientToken),
    runId: asLabelKey(clouds_tags/* TAG */.D.runId),
};
/** Where the Secret's startup script is mounted, and the writable work directory. */
const SCRIPT_DIR = '/etc/cml-runner';
const WORK_DIR = '/cml-runner';
/** The official runner image keeps its runner here. */
const PREINSTALLED_RUNNER = '/home/runner';
/** A finished Job stays this long, for `kubectl logs`, then the cluster removes it. */
const FINISHED_TTL_SECONDS = 300;
const CALL_TIMEOUT_MS = 30_000;
/**
 * The official runner image's user `runner` (actions/runner images/Dockerfile: uid 1001, `USER
 * runner`). A user given by name cannot be checked by runAsNonRoot, so the uid is set.
 */
const RUNNER_UID = 1001;
const LOG_TAIL_LINES = 200;
/** Container waiting reasons that never clear by themselves. */
const FATAL_WAITING = new Set([
    'ImagePullBackOff',
    'InvalidImageName',
    'ErrImageNeverPull',
    'CreateContainerConfigError',
    'CreateContainerError',
    'RunContainerError',
]);
function createCloud(options, region, ctx) {
    return new KubernetesCloud(options, region, ctx);
}
class KubernetesCloud {
    options;
    ctx;
    name = 'kubernetes';
    title = 'Kubernetes';
    kind = 'container';
    region;
    core;
    batch;
    server;
    usesPlugin;
    access;
    /** `region` is the namespace a ledger recorded; the kubernetes-namespace input comes first. */
    constructor(options, region, ctx) {
        this.options = options;
        this.ctx = ctx;
        this.access = options.access;
        const access = options.access;
        const namespace = options.namespace ?? (region || undefined);
        const kc = loadKubeconfig(access);
        const cluster = kc.getCurrentCluster();
        if (!cluster)
            throw accessError(access, 'it has no current context with a cluster');
        this.server = cluster.server;
        this.usesPlugin = Boolean(kc.getCurrentUser()?.exec);
        this.region =
            namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? inClusterNamespace(access) ?? 'default';
        this.core = kc.makeApiClient(dist/* CoreV1Api */.f5Y);
        this.batch = kc.makeApiClient(dist/* BatchV1Api */.Q8C);
    }
    /**
     * Before anything exists (no registration either), a server-side dry run of the Secret and the
     * Job: the API server authorises, validates and admits them (RBAC, the namespace, quotas,
     * admission policies) without persisting anything.
     */
    async prepare(spec) {
        const name = `cml-runner-dry-run-${Math.random().toString(36).slice(2, 8)}`;
        const labels = { [LABEL.managedBy]: MANAGED_BY, [LABEL.machine]: name };
        const secret = {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name, labels },
            type: 'Opaque',
            stringData: { 'startup.sh': '#', jitconfig: '-' },
        };
        const job = this.jobFor(spec, {
            name,
            type: spec.types[0],
            labels,
            annotations: {},
            credentialKey: 'jitconfig',
            runnerVersion: 'latest',
            maxLifetimeSeconds: 3600,
        });
        await Promise.all([
            // A dry run persists nothing, so a throttled or failed one is always safe to send again.
            this.call('create', 'secrets', () => this.core.createNamespacedSecret({ namespace: this.region, body: secret, dryRun: 'All' }), { retryCreate: true }),
            this.call('create', 'jobs', () => this.batch.createNamespacedJob({ namespace: this.region, body: job, dryRun: 'All' }), { retryCreate: true }),
        ]);
        return {
            scriptSettings: {},
            places: [undefined],
            warnings: [],
            launch: (request, placement) => this.launch(spec, request, placement),
            online: (machine) => this.removeSecret(machine.id),
        };
    }
    /**
     * Once the runner is online its credential has been read (the container's environment is set
     * when it starts), so its Secret goes now rather than with the Job: a reusable runner's
     * registration token could register other runners for as long as it lasts. The running pod is
     * unaffected; the script it mounted stays (https://kubernetes.io/docs/concepts/configuration/secret/).
     * The Job keeps `restartPolicy: Never`, so no container of it starts again to need the Secret.
     */
    async removeSecret(name) {
        await (0,call/* endedOrGone */.p4)(async () => {
            await this.call('delete', 'secrets', () => this.core.deleteNamespacedSecret({ name, namespace: this.region }));
        });
    }
    async launch(spec, request, placement) {
        // A later attempt (the earlier pod found no room) gets its own name: the old Job may still be going.
        const name = objectName(request.attempt > 1 ? `${request.runnerName}-${request.attempt}` : request.runnerName);
        const { labels, annotations } = metadataFromTags(request.tags);
        Object.assign(labels, {
            [LABEL.managedBy]: MANAGED_BY,
            [LABEL.machine]: name,
            [LABEL.clientToken]: request.clientToken,
        });
        annotations[RUNNER_NAME] = request.runnerName;
        const credentialKey = 'jitConfig' in request.credential ? 'jitconfig' : 'token';
        // 1. The Job, suspended: no pod starts before its Secret exists.
        const job = this.jobFor(spec, {
            name,
            type: placement.type,
            labels,
            annotations,
            credentialKey,
            runnerVersion: request.runnerVersion,
            maxLifetimeSeconds: request.maxLifetimeSeconds,
        });
        job.spec.suspend = true;
        const created = await this.create('jobs', name, request.clientToken, () => this.batch.createNamespacedJob({ namespace: this.region, body: job }));
        let uid = created?.metadata?.uid;
        if (!uid)
            uid = (await this.call('get', 'jobs', () => this.batch.readNamespacedJob({ name, namespace: this.region })))
                .metadata?.uid;
        // 2. The Secret, owned by the Job from the start: deleting the Job, or its TTL, removes the credential too.
        const secret = {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: {
                name,
                labels,
                annotations,
                ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: uid, blockOwnerDeletion: false }],
            },
            type: 'Opaque',
            stringData: {
                'startup.sh': request.startupScript,
                [credentialKey]: 'jitConfig' in request.credential ? request.credential.jitConfig : request.credential.registrationToken,
            },
        };
        await this.create('secrets', name, request.clientToken, () => this.core.createNamespacedSecret({ namespace: this.region, body: secret }));
        // 3. The Job resumed: its pod starts, with the Secret there.
        await this.call('patch', 'jobs', () => this.batch.patchNamespacedJob({
            name,
            namespace: this.region,
            body: [{ op: 'replace', path: '/spec/suspend', value: false }],
        }));
        return { id: name, type: placement.type, spot: false, zone: this.region };
    }
    jobFor(spec, o) {
        const { name, labels, annotations, credentialKey } = o;
        const k8s = this.options;
        const size = (0,catalog/* parsePodSize */.EE)(o.type);
        const limits = { cpu: size.cpu, memory: size.memory };
        if (size.gpus > 0)
            limits[catalog/* KUBERNETES_GPU_RESOURCE */.ti] = String(size.gpus);
        if (spec.hddSizeGb !== undefined)
            limits['ephemeral-storage'] = `${spec.hddSizeGb}Gi`;
        return {
            apiVersion: 'batch/v1',
            kind: 'Job',
            metadata: { name, labels, annotations },
            spec: {
                // One attempt: a failed runner is reported, not silently retried on another pod.
                backoffLimit: 0,
                // max-lifetime, enforced by the cluster whatever happens inside the pod.
                activeDeadlineSeconds: o.maxLifetimeSeconds,
                ttlSecondsAfterFinished: FINISHED_TTL_SECONDS,
                template: {
                    metadata: { labels, annotations },
                    spec: {
                        restartPolicy: 'Never',
                        // The job runs arbitrary workflow code; it gets no credentials for this cluster.
                        automountServiceAccountToken: false,
                        enableServiceLinks: false,
                        terminationGracePeriodSeconds: 30,
                        ...(k8s.runtimeClass ? { runtimeClassName: k8s.runtimeClass } : {}),
                        ...podSecurity(k8s.securityContext).pod,
                        ...(Object.keys(k8s.nodeSelector).length > 0 ? { nodeSelector: k8s.nodeSelector } : {}),
                        ...(k8s.tolerations.length > 0 ? { tolerations: k8s.tolerations } : {}),
                        containers: [
                            {
                                name: 'runner',
                                image: k8s.image ?? `${catalog/* KUBERNETES_DEFAULT_IMAGE */.Xh}:${o.runnerVersion}`,
                                command: ['/bin/bash', `${SCRIPT_DIR}/startup.sh`],
                                env: [
                                    { name: 'CML_RUNNER_HOME', value: WORK_DIR },
                                    { name: 'CML_RUNNER_PREINSTALLED', value: PREINSTALLED_RUNNER },
                                    {
                                        name: credentialKey === 'jitconfig' ? 'ACTIONS_RUNNER_INPUT_JITCONFIG' : 'ACTIONS_RUNNER_INPUT_TOKEN',
                                        valueFrom: { secretKeyRef: { name, key: credentialKey } },
                                    },
                                ],
                                resources: { limits },
                                ...podSecurity(k8s.securityContext).container,
                                volumeMounts: [
                                    { name: 'startup', mountPath: SCRIPT_DIR, readOnly: true },
                                    { name: 'work', mountPath: WORK_DIR },
                                ],
                            },
                        ],
                        volumes: [
                            {
                                name: 'startup',
                                secret: { secretName: name, defaultMode: 0o444, items: [{ key: 'startup.sh', path: 'startup.sh' }] },
                            },
                            { name: 'work', emptyDir: {} },
                        ],
                    },
                },
            },
        };
    }
    async states(ids) {
        const states = new Map(ids.map((id) => [id, { state: 'gone' }]));
        if (ids.length === 0)
            return states;
        const selector = `${LABEL.machine} in (${ids.join(',')})`;
        const [jobs, pods] = await Promise.all([
            this.call('list', 'jobs', () => this.batch.listNamespacedJob({ namespace: this.region, labelSelector: selector })),
            this.call('list', 'pods', () => this.core.listNamespacedPod({ namespace: this.region, labelSelector: selector })),
        ]);
        await Promise.all(jobs.items.map(async (job) => {
            const id = job.metadata?.name ?? '';
            if (!states.has(id))
                return;
            const pod = newest(pods.items.filter((p) => p.metadata?.labels?.[LABEL.machine] === id));
            states.set(id, await this.statusOf(job, pod));
        }));
        return states;
    }
    async statusOf(job, pod) {
        const finished = job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
        if (finished) {
            const why = finished.message ? `${finished.reason}: ${finished.message}` : finished.reason;
            const outcome = finished.type === 'Complete' ? 'completed' : 'failed';
            return { state: 'ending', detail: `the Job ${outcome}${finished.reason ? ` (${why})` : ''}` };
        }
        if (job.metadata?.deletionTimestamp)
            return { state: 'ending', detail: 'the Job is being deleted' };
        if (!pod) {
            // Admission (Pod Security, a missing RuntimeClass) refuses the Job's pod: its controller says so.
            const refused = job.spec?.suspend
                ? undefined
                : (await this.events(job.metadata?.name ?? '', 'Job').catch(() => []))
                    .filter((e) => e.reason === 'FailedCreate')
                    .pop();
            if (!refused)
                return { state: 'starting', detail: 'no pod yet' };
            const podSecurity = /violates PodSecurity/.test(refused.message ?? '')
                ? `; the namespace ${this.region} enforces Pod Security Standards: kubernetes-security-context: restricted ` +
                    'meets them all, or ask the cluster administrator for a namespace whose pod-security.kubernetes.io/enforce ' +
                    'label allows this pod'
                : '';
            return { state: 'failed', detail: `FailedCreate: ${(refused.message ?? '').trim()}${podSecurity}` };
        }
        const phase = pod.status?.phase;
        if (phase === 'Running')
            return { state: 'running' };
        if (phase === 'Succeeded' || phase === 'Failed') {
            const term = pod.status?.containerStatuses?.[0]?.state?.terminated;
            const outcome = phase === 'Succeeded' ? 'completed' : 'failed';
            return {
                state: 'ending',
                detail: `the pod ${outcome}${term ? ` (${term.reason ?? 'exit'} ${term.exitCode})` : ''}`,
            };
        }
        const waiting = pod.status?.containerStatuses
            ?.map((c) => c.state?.waiting)
            .find((w) => w && FATAL_WAITING.has(w.reason ?? ''));
        if (waiting)
            return { state: 'failed', detail: `${waiting.reason}: ${waiting.message ?? ''}`.trim() };
        const unscheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable');
        if (unscheduled) {
            // With a cluster autoscaler, an unschedulable pod may be waiting for a node being added.
            const events = await this.events(pod.metadata?.name ?? '', 'Pod').catch(() => []);
            const scaleUp = events.some((e) => e.reason === 'TriggeredScaleUp') && !events.some((e) => e.reason === 'NotTriggerScaleUp');
            if (scaleUp)
                return { state: 'starting', detail: 'waiting for the cluster autoscaler to add a node' };
            const scheduling = events.filter((e) => e.reason === 'FailedScheduling').pop()?.message ?? unscheduled.message ?? '';
            // "Insufficient cpu/memory/nvidia.com/gpu": a smaller type (the next in the type list) may fit.
            return {
                state: 'failed',
                detail: `Unschedulable: ${scheduling}`,
                ...(/Insufficient /.test(scheduling) ? { fallback: 'capacity' } : {}),
            };
        }
        return { state: 'starting', detail: pod.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? phase };
    }
    async consoleLog(id) {
        const pods = await this.call('list', 'pods', () => this.core.listNamespacedPod({ namespace: this.region, labelSelector: `${LABEL.machine}=${id}` }));
        const pod = newest(pods.items);
        const podName = pod?.metadata?.name;
        const missing = [];
        const eventsOf = (name, kind) => this.events(name, kind).catch((err) => {
            missing.push(`(no events of ${kind} ${name}: ${(0,errors/* errorMessage */.gJ)(err).split('\n')[0]})`);
            return [];
        });
        const [jobEvents, podEvents] = await Promise.all([
            eventsOf(id, 'Job'),
            podName ? eventsOf(podName, 'Pod') : Promise.resolve([]),
        ]);
        const lines = [...jobEvents, ...podEvents].map((e) => `event ${e.involvedObject?.kind ?? ''}/${e.involvedObject?.name ?? ''}: ` +
            `${e.type ?? ''} ${e.reason ?? ''}: ${(e.message ?? '').trim()}`);
        lines.push(...missing);
        if (podName) {
            try {
                const log = await this.call('get', 'pods/log', () => this.core.readNamespacedPodLog({
                    name: podName,
                    namespace: this.region,
                    container: 'runner',
                    tailLines: LOG_TAIL_LINES,
                }));
                lines.push(`--- log of pod ${podName} ---`, String(log ?? '').trimEnd());
            }
            catch (err) {
                lines.push(`(no log from pod ${podName}: ${(0,errors/* errorMessage */.gJ)(err).split('\n')[0]})`);
            }
        }
        else {
            lines.push(`(the Job ${id} has no pod)`);
        }
        return lines.join('\n');
    }
    async terminate(id) {
        // Background propagation: deleting a Job through the API orphans its pods by default.
        const job = await (0,call/* endedOrGone */.p4)(async () => {
            await this.call('delete', 'jobs', () => this.batch.deleteNamespacedJob({ name: id, namespace: this.region, propagationPolicy: 'Background' }));
        });
        // The Secret goes with its owner; it is deleted here too, so the credential goes at once.
        const secret = await (0,call/* endedOrGone */.p4)(async () => {
            await this.call('delete', 'secrets', () => this.core.deleteNamespacedSecret({ name: id, namespace: this.region }));
        });
        return job === 'gone' && secret === 'gone' ? 'gone' : 'terminated';
    }
    /**
     * Jobs this action made in the namespace, for a repository (an annotation, since `owner/repo`
     * is no label value) and optionally one run (a label). Each Job's Secret has its name and is
     * owned by it (it is never created before its Job): ending the Job deletes both by name.
     */
    async list(filter) {
        const labelSelector = `${LABEL.managedBy}=${MANAGED_BY}${filter.runId ? `,${LABEL.runId}=${filter.runId}` : ''}`;
        const jobs = await this.call('list', 'jobs', () => this.batch.listNamespacedJob({ namespace: this.region, labelSelector }));
        const found = new Map();
        for (const o of jobs.items) {
            const name = o.metadata?.name;
            const tags = tagsFromMetadata(o.metadata?.labels ?? {}, o.metadata?.annotations ?? {});
            if (!name || found.has(name) || tags[clouds_tags/* TAG */.D.repo] !== filter.repo)
                continue;
            tags[clouds_tags/* TAG */.D.runner] = o.metadata?.annotations?.[RUNNER_NAME] ?? name;
            const created = o.metadata?.creationTimestamp ? new Date(o.metadata.creationTimestamp).getTime() : undefined;
            const finished = o.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
            const state = finished ? 'ending' : o.spec?.suspend ? 'starting' : 'running';
            found.set(name, (0,clouds_tags/* managedFromTags */.V)(name, tags, { state, ...(created !== undefined ? { createdAt: created } : {}) }));
        }
        return [...found.values()];
    }
    async findByClientToken(clientToken) {
        // The Job comes first: a launch whose answer was lost has a Job or nothing.
        const labelSelector = `${LABEL.clientToken}=${clientToken}`;
        const jobs = await this.call('list', 'jobs', () => this.batch.listNamespacedJob({ namespace: this.region, labelSelector }));
        return jobs.items.map((o) => o.metadata?.name ?? '').filter(Boolean);
    }
    async events(name, kind) {
        const list = await this.call('list', 'events', () => this.core.listNamespacedEvent({
            namespace: this.region,
            fieldSelector: `involvedObject.name=${name},involvedObject.kind=${kind}`,
        }));
        return [...list.items].sort((a, b) => eventTime(a) - eventTime(b));
    }
    /**
     * A create that may have happened already (a retry after a lost answer): a Job of the same
     * name carrying this launch's client token is ours, and counts as created. A Secret is not
     * read back (the launcher may not read Secrets): it is created only after this launch created
     * the Job of its name, and one left by an earlier Job of that name is removed with it by the
     * garbage collector, so a Secret already there is this launch's.
     */
    async create(resource, name, clientToken, fn) {
        try {
            return await this.call('create', resource, fn, { retryCreate: true });
        }
        catch (err) {
            if (!(err instanceof errors/* CloudError */.K2) || err.code !== 'AlreadyExists')
                throw err;
            if (resource === 'secrets')
                return undefined;
            const existing = await this.call('get', 'jobs', () => this.batch.readNamespacedJob({ name, namespace: this.region }));
            if (existing?.metadata?.labels?.[LABEL.clientToken] === clientToken)
                return undefined;
            throw err;
        }
    }
    /**
     * One API call, with a timeout, and errors that say what the user can do; retried by
     * `cloudCall` for throttling, 5xx and lost connections. A create is retried only when the
     * server cannot have acted (429) or when `create()` will recognise its own object
     * (AlreadyExists with our client token).
     */
    call(verb, resource, fn, opts = {}) {
        const where = `${verb} ${resource} in namespace ${this.region}`;
        const mayRepeat = verb !== 'create' || opts.retryCreate === true;
        const policy = {
            attempts: 4,
            retryAfterMs: kubernetesRetryAfterMs,
            translate: (err) => {
                const e = kubernetesError(err, {
                    where,
                    source: this.access.source,
                    server: this.server,
                    usesPlugin: this.usesPlugin,
                });
                const status = e.status;
                return e.kind === 'transient' && !mayRepeat && status !== 429
                    ? new errors/* CloudError */.K2(e.cloud, e.code, e.message, '', 'permanent')
                    : e;
            },
        };
        return (0,call/* cloudCall */.QY)(this.ctx, policy, where, async () => {
            let timer;
            try {
                return await Promise.race([
                    fn(),
                    new Promise((_, reject) => {
                        timer = setTimeout(() => reject(new errors/* CloudError */.K2('Kubernetes', 'Timeout', `${where}: no answer from ${this.server} within ${CALL_TIMEOUT_MS / 1000}s`, 'Check that the API server is reachable from the launch job.', 'transient')), CALL_TIMEOUT_MS);
                    }),
                ]);
            }
            finally {
                clearTimeout(timer);
            }
        });
    }
}
/**
 * The security context of each kubernetes-security-context mode. `restricted` meets the Pod
 * Security Standards' restricted profile (runAsNonRoot, allowPrivilegeEscalation false, all
 * capabilities dropped, the RuntimeDefault seccomp profile), so the pod is admitted in a namespace
 * that enforces it; the runner runs as uid 1001, the official image's `runner`.
 * https://kubernetes.io/docs/concepts/security/pod-security-standards/
 */
function podSecurity(mode) {
    switch (mode) {
        case 'restricted':
            return {
                pod: {
                    securityContext: { runAsNonRoot: true, runAsUser: RUNNER_UID, seccompProfile: { type: 'RuntimeDefault' } },
                },
                container: { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } },
            };
        case 'image':
            return { pod: {}, container: {} };
        case 'privileged':
            return { pod: {}, container: { securityContext: { privileged: true, runAsUser: 0 } } };
    }
}
function loadKubeconfig(access) {
    const kc = new dist/* KubeConfig */.ypW();
    try {
        if (access.source === 'in-cluster')
            kc.loadFromCluster();
        else if (access.source === 'KUBECONFIG') {
            if (access.path.includes(':'))
                kc.loadFromDefault();
            else
                kc.loadFromFile(access.path);
        }
        else
            kc.loadFromString(access.text);
    }
    catch (err) {
        throw accessError(access, (0,errors/* errorMessage */.gJ)(err).split('\n')[0]);
    }
    if (kc.getClusters().length === 0)
        throw accessError(access, 'it names no cluster');
    return kc;
}
function accessError(access, why) {
    const accepted = `${why}; give the contents of a kubeconfig file (kubectl config view --raw --minify --flatten), ` +
        'with a current context, a cluster and a user';
    switch (access.source) {
        case 'the kubeconfig input':
            return new errors/* InputError */.dz('kubeconfig', '(the contents, not shown)', accepted);
        case 'KUBERNETES_CONFIGURATION':
            return new errors/* InputError */.dz('kubeconfig', '(from the KUBERNETES_CONFIGURATION variable, not shown)', accepted);
        case 'KUBECONFIG':
            return new errors/* InputError */.dz('kubeconfig', `(the file ${access.path} named by KUBECONFIG)`, accepted);
        case 'in-cluster':
            return new errors/* InputError */.dz('kubeconfig', '(in-cluster service account)', `${why}; the launch job runs in a pod but its service account could not be read`);
    }
}
function inClusterNamespace(access) {
    if (access.source !== 'in-cluster')
        return undefined;
    try {
        return (0,external_node_fs_.readFileSync)('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined;
    }
    catch {
        return undefined;
    }
}
/** A DNS-1123 label from a runner name: lowercase, dashes for anything else, at most 63 characters. */
function objectName(runnerName) {
    const name = runnerName
        .toLowerCase()
        .replace(/[^a-z0-9-]+/g, '-')
        .replace(/-+/g, '-')
        .slice(0, 63)
        .replace(/^-+|-+$/g, '');
    return name || 'cml-runner';
}
/**
 * Tags become labels where Kubernetes allows the key and value, and annotations otherwise (a
 * repository `owner/repo` or a timestamp is not a valid label value). `cml-runner:` keys become
 * `cml-runner/` keys; the `Name` tag is the object name itself.
 */
function metadataFromTags(tags) {
    const labels = {};
    const annotations = {};
    for (const [rawKey, value] of Object.entries(tags)) {
        if (rawKey === 'Name')
            continue;
        let key = rawKey.replace(/^cml-runner:/, 'cml-runner/');
        if (!(0,options/* isLabelKey */.qI)(key))
            key = `cml-runner/tag-${key
                .replace(/[^A-Za-z0-9_.-]+/g, '-')
                .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '')
                .slice(0, 50) || 'x'}`;
        if ((0,options/* isLabelValue */.eZ)(value))
            labels[key] = value;
        else
            annotations[key] = value;
    }
    return { labels, annotations };
}
/** Our tags back from an object's labels and annotations (`cml-runner/repo` is `cml-runner:repo`). */
function tagsFromMetadata(labels, annotations) {
    const tags = {};
    for (const [key, value] of [...Object.entries(labels), ...Object.entries(annotations)]) {
        if (key.startsWith('cml-runner/'))
            tags[key.replace('cml-runner/', 'cml-runner:')] = value;
    }
    return tags;
}
function newest(pods) {
    return [...pods]
        .sort((a, b) => new Date(a.metadata?.creationTimestamp ?? 0).getTime() - new Date(b.metadata?.creationTimestamp ?? 0).getTime())
        .pop();
}
function eventTime(e) {
    return new Date(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp ?? 0).getTime();
}


/***/ })

};
;