"use strict";
exports.id = 717;
exports.ids = [717];
exports.modules = {

/***/ 96717:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   AzureCloud: () => (/* binding */ AzureCloud)
/* harmony export */ });
/* unused harmony exports azureCredential, groupName */
/* harmony import */ var _azure_arm_authorization__WEBPACK_IMPORTED_MODULE_9__ = __webpack_require__(71043);
/* harmony import */ var _azure_arm_compute__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(72280);
/* harmony import */ var _azure_arm_network__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(12163);
/* harmony import */ var _azure_arm_resources__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(56033);
/* harmony import */ var _actions_core__WEBPACK_IMPORTED_MODULE_3__ = __webpack_require__(14116);
/* harmony import */ var _azure_identity__WEBPACK_IMPORTED_MODULE_4__ = __webpack_require__(25563);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_5__ = __webpack_require__(77598);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_5___default = /*#__PURE__*/__webpack_require__.n(node_crypto__WEBPACK_IMPORTED_MODULE_5__);
/* harmony import */ var _catalog_azure_js__WEBPACK_IMPORTED_MODULE_6__ = __webpack_require__(53412);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_7__ = __webpack_require__(83916);
/* harmony import */ var _retry_js__WEBPACK_IMPORTED_MODULE_8__ = __webpack_require__(49809);










/**
 * Azure. Each runner gets its own resource group holding everything of its machine (network
 * security group, virtual network, public address, network interface, VM and its disk), so one
 * deletion ends it all, and a machine's id is its resource group's name.
 *
 * Credentials: @azure/identity's DefaultAzureCredential (AZURE_CLIENT_ID / AZURE_TENANT_ID with
 * AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE, the Azure CLI that azure/login signs in,
 * a managed identity). The ARM endpoint moves with AZURE_RESOURCE_MANAGER_ENDPOINT (sovereign
 * clouds, Azure Stack Hub).
 *
 * The VM has a system-assigned managed identity with Contributor on its own resource group, so
 * that its startup script can delete the group when the runner is done: a stopped Azure VM still
 * bills.
 */
const DEFAULT_ARM = 'https://management.azure.com';
/** Contributor, a built-in role: on the VM's own resource group only. */
const CONTRIBUTOR = 'b24988ac-6180-42a0-ab88-20f7382dd24c';
const LRO_TIMEOUT_MS = 15 * 60_000;
/** Long-running operations are polled as often as ARM's Retry-After says, or every 0.5 s when it says nothing. */
const POLL = { updateIntervalInMs: 500 };
const ADVICE = {
    SkuNotAvailable: {
        advice: 'This VM size is not available in this region for the subscription right now. Give more types (type takes a comma list) or another region.',
        fallback: 'capacity',
    },
    AllocationFailed: { advice: 'Azure has no capacity for this VM size in this region right now. Give more types, another region, or spot: false.', fallback: 'capacity' },
    ZonalAllocationFailed: { advice: 'Azure has no capacity for this VM size in this zone right now.', fallback: 'capacity' },
    OverconstrainedAllocationRequest: { advice: 'Azure cannot place this VM size with these constraints right now.', fallback: 'capacity' },
    OperationNotAllowed: {
        advice: 'A quota of the subscription is too low for this VM (the message names it). Request an increase under Subscriptions > Usage + quotas (GPU families have their own vCPU quotas; spot VMs use the Spot quota).',
    },
    AuthorizationFailed: { advice: 'The Azure credentials may not do this. Grant the custom role in the README (Azure section) to the identity the workflow signs in as.' },
    InvalidTemplateDeployment: { advice: 'Check the type, image and tags inputs.' },
    InvalidParameter: { advice: 'Check the type, image and tags inputs.' },
};
class AzureCloud {
    subscriptionId;
    region;
    groupPrefix;
    clock;
    name = 'azure';
    kind = 'vm';
    resources;
    network;
    compute;
    authorization;
    arm;
    /** One throwaway key for every VM of the launch: making an RSA key blocks for tens of milliseconds. */
    sshKey;
    /** Launch warnings the lifecycle reports once (a role assignment refused). */
    warnings = [];
    constructor(subscriptionId, region, groupPrefix = 'cml-runner', clock = _retry_js__WEBPACK_IMPORTED_MODULE_8__/* .realClock */ .dQ) {
        this.subscriptionId = subscriptionId;
        this.region = region;
        this.groupPrefix = groupPrefix;
        this.clock = clock;
        this.arm = (process.env.AZURE_RESOURCE_MANAGER_ENDPOINT || DEFAULT_ARM).replace(/\/+$/, '');
        const credential = azureCredential(process.env);
        const scopes = [`${this.arm}/.default`];
        const options = { endpoint: this.arm, credentials: { scopes }, retryOptions: { maxRetries: 4 } };
        this.resources = new _azure_arm_resources__WEBPACK_IMPORTED_MODULE_2__/* .ResourceManagementClient */ .h0(credential, subscriptionId, options);
        this.network = new _azure_arm_network__WEBPACK_IMPORTED_MODULE_1__/* .NetworkManagementClient */ .D76(credential, subscriptionId, options);
        this.compute = new _azure_arm_compute__WEBPACK_IMPORTED_MODULE_0__/* .ComputeManagementClient */ .Kx(credential, subscriptionId, options);
        this.authorization = new _azure_arm_authorization__WEBPACK_IMPORTED_MODULE_9__/* .AuthorizationManagementClient */ .IK(credential, subscriptionId, { endpoint: this.arm, credentialScopes: scopes });
    }
    scriptSettings() {
        return { selfDelete: { cloud: 'azure', apiUrl: this.arm } };
    }
    async prepare() {
        // Nothing is shared between runners: each has its own group. Sizes the region does not offer
        // are refused by the create itself (SkuNotAvailable), which moves on to the next type.
    }
    places() {
        return [undefined];
    }
    async launch(spec, request, placement) {
        const group = groupName(this.groupPrefix, request.runnerName, request.attempt);
        // Resource groups carry no creation time a list returns: the sweep's grace period needs one.
        const tags = { ...request.tags, 'cml-runner:client-token': request.clientToken, 'cml-runner:created-at': new Date(this.clock.now()).toISOString() };
        const location = this.region;
        await this.call('resourceGroups.createOrUpdate', () => this.resources.resourceGroups.createOrUpdate(group, { location, tags }));
        try {
            return await this.createMachine(spec, request, placement, group, tags);
        }
        catch (err) {
            // Whatever was created goes with its group; the refusal itself is what the user sees.
            await this.deleteGroup(group).catch(() => undefined);
            throw err;
        }
    }
    async createMachine(spec, request, placement, group, tags) {
        const location = this.region;
        const vmName = 'runner';
        // The network and the address do not depend on each other: they are created side by side.
        const network = (async () => {
            // No inbound rule at all: the NSG's default rules deny inbound from the internet.
            const nsg = await this.lro('networkSecurityGroups.createOrUpdate', () => this.network.networkSecurityGroups.createOrUpdate(group, 'runner-nsg', { location, tags, securityRules: [] }, POLL));
            return this.lro('virtualNetworks.createOrUpdate', () => this.network.virtualNetworks.createOrUpdate(group, 'runner-vnet', { location, tags, addressSpace: { addressPrefixes: ['10.0.0.0/24'] }, subnets: [{ name: 'runner', addressPrefix: '10.0.0.0/24', networkSecurityGroup: { id: nsg.id } }] }, POLL));
        })();
        // A public address is the machine's way out to GitHub (new virtual networks have no default
        // outbound access); the NSG keeps everything from coming in.
        const address = this.lro('publicIPAddresses.createOrUpdate', () => this.network.publicIPAddresses.createOrUpdate(group, 'runner-ip', { location, tags, sku: { name: 'Standard' }, publicIPAllocationMethod: 'Static' }, POLL));
        const [vnet, ip] = await Promise.all([network, address]);
        const nic = await this.lro('networkInterfaces.createOrUpdate', () => this.network.networkInterfaces.createOrUpdate(group, 'runner-nic', {
            location,
            tags,
            ipConfigurations: [{ name: 'primary', subnet: { id: vnet.subnets?.[0]?.id }, publicIPAddress: { id: ip.id, deleteOption: 'Delete' } }],
        }, POLL));
        const image = (0,_catalog_azure_js__WEBPACK_IMPORTED_MODULE_6__/* .parseAzureImage */ .uk)(spec.image ?? _catalog_azure_js__WEBPACK_IMPORTED_MODULE_6__/* .AZURE_DEFAULT_IMAGE */ .yu);
        const vm = {
            location,
            tags,
            identity: { type: 'SystemAssigned' },
            hardwareProfile: { vmSize: placement.type },
            storageProfile: {
                imageReference: image,
                osDisk: { createOption: 'FromImage', deleteOption: 'Delete', managedDisk: { storageAccountType: 'StandardSSD_LRS' }, ...(spec.hddSizeGb ? { diskSizeGB: spec.hddSizeGb } : {}) },
            },
            osProfile: {
                computerName: vmName,
                adminUsername: 'runner',
                // The startup script: cloud-init runs it as root at first boot. Base64, 64 KB at most.
                customData: Buffer.from(request.startupScript, 'utf8').toString('base64'),
                // No password, no key: nobody signs in. The serial log says what happened.
                linuxConfiguration: {
                    disablePasswordAuthentication: true,
                    ssh: { publicKeys: [{ path: '/home/runner/.ssh/authorized_keys', keyData: (this.sshKey ??= throwawaySshKey()) }] },
                    provisionVMAgent: true,
                },
            },
            networkProfile: { networkInterfaces: [{ id: nic.id, primary: true, deleteOption: 'Delete' }] },
            diagnosticsProfile: { bootDiagnostics: { enabled: true } },
            ...(placement.spot ? { priority: 'Spot', evictionPolicy: 'Delete', billingProfile: { maxPrice: spec.spotPrice ?? -1 } } : {}),
        };
        const created = await this.lro('virtualMachines.createOrUpdate', () => this.compute.virtualMachines.createOrUpdate(group, vmName, vm, POLL));
        await this.allowSelfDelete(group, created.identity?.principalId);
        return { id: group, type: placement.type, spot: placement.spot, zone: location };
    }
    /** Contributor on its own group for the VM's identity, so the VM can delete the group. */
    async allowSelfDelete(group, principalId) {
        if (!principalId)
            return;
        const scope = `/subscriptions/${this.subscriptionId}/resourceGroups/${group}`;
        try {
            await (0,_retry_js__WEBPACK_IMPORTED_MODULE_8__/* .withRetry */ .bD)(() => this.authorization.roleAssignments.create(scope, crypto.randomUUID(), {
                roleDefinitionId: `/subscriptions/${this.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${CONTRIBUTOR}`,
                principalId,
                principalType: 'ServicePrincipal',
            }), 
            // A new identity takes a moment to replicate: PrincipalNotFound is retried.
            { attempts: 5, baseMs: 2000, retryable: (err) => err.code === 'PrincipalNotFound', clock: this.clock });
        }
        catch (err) {
            const code = err.code ?? 'Error';
            if (code !== 'AuthorizationFailed')
                throw armError('roleAssignments.create', err);
            const warning = `The launching identity may not create role assignments (${code}), so the VMs cannot delete their own resource groups. ` +
                'A stopped Azure VM still bills: keep the cleanup job (mode: cleanup, if: always()) and a scheduled sweep, which delete them. ' +
                'To let VMs delete themselves, grant Microsoft.Authorization/roleAssignments/write (see "Azure" in the README).';
            if (!this.warnings.includes(warning))
                this.warnings.push(warning);
        }
    }
    async states(ids) {
        const states = new Map(ids.map((id) => [id, { state: 'gone' }]));
        if (ids.length === 0)
            return states;
        const groups = await this.groups(`tagName eq 'cml-runner:managed' and tagValue eq 'true'`);
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
            const state = power === 'running' ? 'running' : power === 'stopped' || power === 'deallocated' ? 'stopped' : power === 'stopping' || power === 'deallocating' ? 'ending' : 'starting';
            return { state };
        }
        catch (err) {
            // A launch returns once its VM exists, so a group without one lost it: evicted or deleted.
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_7__/* .CloudError */ .K2 && (err.code === 'ResourceNotFound' || err.code === 'NotFound'))
                return { state: 'gone', detail: 'the VM is gone from its resource group (a spot eviction, or deleted)' };
            throw err;
        }
    }
    async list(filter) {
        const groups = await this.groups(`tagName eq 'cml-runner:repo' and tagValue eq '${filter.repo.replace(/'/g, "''")}'`);
        return groups
            .filter((g) => g.tags['cml-runner:managed'] === 'true' && (!filter.runId || g.tags['cml-runner:run-id'] === filter.runId))
            .map((g) => {
            const expires = Date.parse(g.tags['cml-runner:expires-at'] ?? '');
            const created = Date.parse(g.tags['cml-runner:created-at'] ?? '');
            return {
                id: g.name,
                runnerName: g.tags['cml-runner:runner'] ?? '',
                runId: g.tags['cml-runner:run-id'],
                repo: g.tags['cml-runner:repo'],
                ...(Number.isFinite(expires) ? { expiresAt: expires } : {}),
                ...(Number.isFinite(created) ? { createdAt: created } : {}),
                state: g.provisioningState === 'Deleting' ? 'ending' : 'running',
            };
        });
    }
    async groups(filter) {
        return this.call('resourceGroups.list', async () => {
            const out = [];
            for await (const g of this.resources.resourceGroups.list({ filter })) {
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
        try {
            await this.deleteGroup(id);
            return 'terminated';
        }
        catch (err) {
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_7__/* .CloudError */ .K2 && (err.code === 'ResourceGroupNotFound' || err.code === 'NotFound'))
                return 'gone';
            throw err;
        }
    }
    /** Starts the group's deletion; ARM goes on with it. Everything in the group goes with it. */
    async deleteGroup(group) {
        await this.call('resourceGroups.delete', async () => {
            const poller = this.resources.resourceGroups.delete(group, { forceDeletionTypes: 'Microsoft.Compute/virtualMachines' });
            await poller.submitted();
        });
    }
    async findByClientToken(clientToken) {
        const groups = await this.groups(`tagName eq 'cml-runner:client-token' and tagValue eq '${clientToken}'`);
        return groups.map((g) => g.name);
    }
    /** A long-running create, awaited through the SDK's poller, with a timeout. */
    async lro(action, start) {
        return this.call(action, async () => {
            const timeout = AbortSignal.timeout(LRO_TIMEOUT_MS);
            const poller = start();
            return await Promise.race([
                Promise.resolve(poller),
                new Promise((_, reject) => timeout.addEventListener('abort', () => reject(new _errors_js__WEBPACK_IMPORTED_MODULE_7__/* .CloudError */ .K2('Azure', 'OperationTimedOut', `${action} not done after ${LRO_TIMEOUT_MS / 60_000} minutes`, '')))),
            ]);
        });
    }
    async call(action, fn) {
        try {
            return await fn();
        }
        catch (err) {
            if (err instanceof _errors_js__WEBPACK_IMPORTED_MODULE_7__/* .CloudError */ .K2)
                throw err;
            throw armError(action, err);
        }
    }
}
/**
 * @azure/identity's chain, except in a workflow with GitHub OIDC and an app registration but no
 * secret: then the job's own OIDC token is the client assertion (federated credentials).
 * Instance discovery is for Microsoft's own clouds; another authority host (Azure Stack) skips it.
 */
function azureCredential(env) {
    const host = env.AZURE_AUTHORITY_HOST;
    const microsoft = !host || /(^|\.)(microsoftonline\.(com|us|de)|chinacloudapi\.cn|microsoftonline\.microsoft\.scloud)$/.test(new URL(host).hostname);
    const options = microsoft ? {} : { disableInstanceDiscovery: true };
    const { AZURE_TENANT_ID: tenant, AZURE_CLIENT_ID: client } = env;
    if (env.ACTIONS_ID_TOKEN_REQUEST_URL && tenant && client && !env.AZURE_CLIENT_SECRET && !env.AZURE_FEDERATED_TOKEN_FILE) {
        return new _azure_identity__WEBPACK_IMPORTED_MODULE_4__/* .ClientAssertionCredential */ .XI(tenant, client, () => (0,_actions_core__WEBPACK_IMPORTED_MODULE_3__/* .getIDToken */ .V9)('api://AzureADTokenExchange'), options);
    }
    return new _azure_identity__WEBPACK_IMPORTED_MODULE_4__/* .DefaultAzureCredential */ .gv(options);
}
/**
 * A Linux VM needs a password or a key. It gets a fresh public key whose private half is never
 * kept: nobody signs in, and the serial log says what happened.
 */
function throwawaySshKey() {
    const { publicKey } = (0,node_crypto__WEBPACK_IMPORTED_MODULE_5__.generateKeyPairSync)('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const mpint = (b64url) => {
        const bytes = Buffer.from(b64url, 'base64url');
        return bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
    };
    const field = (b) => Buffer.concat([Buffer.from([0, 0, (b.length >> 8) & 0xff, b.length & 0xff]), b]);
    const blob = Buffer.concat([field(Buffer.from('ssh-rsa')), field(mpint(jwk.e)), field(mpint(jwk.n))]);
    return `ssh-rsa ${blob.toString('base64')} cml-runner`;
}
/** The poller's message for a failed operation: `The long-running operation has failed. AllocationFailed. ...`. */
const FAILED_OPERATION = /^The long-running operation has failed\. (\w+)\./;
function armError(action, err) {
    const e = err;
    const code = e.code ?? e.details?.error?.code ?? FAILED_OPERATION.exec(e.message ?? '')?.[1] ?? String(e.statusCode ?? 'Error');
    const known = ADVICE[code];
    return new _errors_js__WEBPACK_IMPORTED_MODULE_7__/* .CloudError */ .K2('Azure', code, `${action}: ${(0,_errors_js__WEBPACK_IMPORTED_MODULE_7__/* .errorMessage */ .gJ)(err)}`, known?.advice ?? '', known?.fallback);
}
/** Resource group names: the prefix, the runner name, and the attempt when it is not the first. */
function groupName(prefix, runnerName, attempt) {
    return `${prefix}-${runnerName}${attempt > 1 ? `-${attempt}` : ''}`.slice(0, 90);
}


/***/ })

};
;