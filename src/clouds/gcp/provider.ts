import { AcceleratorTypesClient } from '@google-cloud/compute/build/src/v1/accelerator_types_client.js';
import { ImagesClient } from '@google-cloud/compute/build/src/v1/images_client.js';
import { InstancesClient } from '@google-cloud/compute/build/src/v1/instances_client.js';
import { MachineTypesClient } from '@google-cloud/compute/build/src/v1/machine_types_client.js';
import { ZoneOperationsClient } from '@google-cloud/compute/build/src/v1/zone_operations_client.js';
import type { google } from '@google-cloud/compute/build/protos/protos.js';
import { readFileSync } from 'node:fs';
import { errorMessage } from '../../errors.js';
import type { MachineSpec } from '../../config/spec.js';
import { type CallPolicy, cloudCall, endedOrGone } from '../call.js';
import type { Env } from '../descriptor.js';
import { TAG, managedFromTags } from '../tags.js';
import type {
  Cloud,
  CloudContext,
  Machine,
  MachineRequest,
  MachineState,
  MachineStatus,
  ManagedMachine,
  Placement,
  PreparedCloud,
} from '../types.js';
import { GCP_IMAGES, type GcpMachineType, parseGcpType } from './catalog.js';
import { gceError, gceRefusal } from './errors.js';
import type { GcpOptions } from './options.js';

type IInstance = google.cloud.compute.v1.IInstance;
type IOperation = google.cloud.compute.v1.IOperation;

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
export const NETWORK_TAG = 'cml-runner';
const DEFAULT_API = 'https://compute.googleapis.com/compute/v1';
/** An insert is awaited this long (a GPU VM with a large image can take minutes to be RUNNING). */
const OPERATION_TIMEOUT_MS = 10 * 60_000;
/** Each call: 30 s, retried by us (never by the client, so one policy holds everywhere). */
const CALL = { timeout: 30_000, retry: { retryCodes: [] } };
/** Lists page through every result themselves. */
const LIST = { ...CALL, autoPaginate: false };

/** Compute Engine instance statuses as the lifecycle sees them. */
const GCE_STATES: Record<string, MachineState> = {
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
const asKey = (tag: string): string => tag.replace(':', '-');
const LABEL = {
  managed: asKey(TAG.managed),
  repo: asKey(TAG.repo),
  runId: asKey(TAG.runId),
  runner: asKey(TAG.runner),
  clientToken: asKey(TAG.clientToken),
} as const;

/** `https://host[:port]/compute/v1/` as the client's endpoint options. */
export function computeEndpoint(override: string | undefined): { options: Record<string, unknown>; apiUrl: string } {
  if (!override) return { options: {}, apiUrl: DEFAULT_API };
  const url = new URL(override);
  const protocol = url.protocol.replace(':', '');
  const port = url.port ? Number(url.port) : protocol === 'http' ? 80 : 443;
  return { options: { apiEndpoint: url.hostname, port, protocol }, apiUrl: `${url.origin}/compute/v1` };
}

export function createCloud(options: GcpOptions, region: string, ctx: CloudContext): Cloud {
  return new GcpCloud(options, region, ctx);
}

/** The warning a launch without a service account gets: its machines cannot delete themselves. */
export const NO_SERVICE_ACCOUNT_WARNING =
  'gcp-service-account is empty, so the machines cannot delete themselves: when a runner ends, its VM stops and ' +
  'its disk bills until the cleanup job or a sweep deletes it (Compute Engine deletes a VM at max-lifetime only ' +
  'while it runs). Give a service account that may delete instances; see "Google Cloud" in the README.';

/** Zones of the region, in order, each with the machine types and GPUs it offers for this launch. */
type Zone = { zone: string; machineTypes: Set<string>; accelerators: Set<string> };
type PreparedImage = { sourceImage: string; diskSizeGb: number };

export class GcpCloud implements Cloud {
  readonly name = 'gcp';
  readonly title = 'Google Cloud';
  readonly kind = 'vm' as const;
  private readonly instances: InstancesClient;
  private readonly operations: ZoneOperationsClient;
  private readonly machineTypes: MachineTypesClient;
  private readonly acceleratorTypes: AcceleratorTypesClient;
  private readonly images: ImagesClient;
  private readonly apiUrl: string;
  private readonly project: string;
  private readonly policy: CallPolicy = { translate: (err, action) => gceError(err, action) };

  constructor(
    private readonly options: GcpOptions,
    readonly region: string,
    private readonly ctx: CloudContext,
  ) {
    this.project = options.project;
    const endpoint = computeEndpoint(ctx.env.CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE);
    this.apiUrl = endpoint.apiUrl;
    // The project is given: otherwise the auth library asks Resource Manager for it.
    const clientOptions = { ...endpoint.options, fallback: true, scopes: SCOPES, projectId: this.project };
    this.instances = new InstancesClient(clientOptions);
    giveCredentialFile(this.instances.auth, ctx.env);
    // One credential for every client: one token exchange, one refresh.
    const shared = { ...clientOptions, auth: this.instances.auth };
    this.operations = new ZoneOperationsClient(shared);
    this.machineTypes = new MachineTypesClient(shared);
    this.acceleratorTypes = new AcceleratorTypesClient(shared);
    this.images = new ImagesClient(shared);
  }

  /** Finds the zones of the region that offer the types and their GPUs, and the image. */
  async prepare(spec: MachineSpec): Promise<PreparedCloud> {
    const types = spec.types.map((t) => parseGcpType(t)!);
    const machineNames = [...new Set(types.map((t) => t.machineType))];
    const acceleratorNames = [...new Set(types.flatMap((t) => (t.accelerator ? [t.accelerator.type] : [])))];
    const [offeredTypes, offeredAccelerators, image] = await Promise.all([
      this.offered(
        'machineTypes.aggregatedList',
        machineNames,
        (filter) => this.machineTypes.aggregatedListAsync({ project: this.project, filter }, LIST),
        (l: google.cloud.compute.v1.IMachineTypesScopedList) => l.machineTypes ?? [],
      ),
      acceleratorNames.length === 0
        ? Promise.resolve(new Map<string, Set<string>>())
        : this.offered(
            'acceleratorTypes.aggregatedList',
            acceleratorNames,
            (filter) => this.acceleratorTypes.aggregatedListAsync({ project: this.project, filter }, LIST),
            (l: google.cloud.compute.v1.IAcceleratorTypesScopedList) => l.acceleratorTypes ?? [],
          ),
      this.resolveImage(spec.image ?? GCP_IMAGES[spec.wantsGpu ? 'gpu' : 'cpu']),
    ]);
    const zones: Zone[] = [...offeredTypes.keys()]
      .filter((zone) => zone.startsWith(`${this.region}-`))
      .sort()
      .map((zone) => ({
        zone,
        machineTypes: offeredTypes.get(zone)!,
        accelerators: offeredAccelerators.get(zone) ?? new Set<string>(),
      }))
      .filter((z) => types.some((t) => this.offers(z, t)));
    if (zones.length === 0) {
      // Nowhere in the region: not a capacity to wait for, so the launch fails at once.
      throw gceRefusal(
        'NOT_OFFERED',
        `no zone of ${this.region} offers ${spec.types.join(' or ')} (project ${this.project})`,
        'Pick another region (for GPUs see https://cloud.google.com/compute/docs/gpus/gpu-regions-zones), or ' +
          'other types.',
        'permanent',
      );
    }
    const prepared: PreparedImage = {
      sourceImage: image.selfLink,
      diskSizeGb: Math.max(spec.hddSizeGb ?? 0, image.diskSizeGb),
    };
    const serviceAccount = this.options.serviceAccount;
    // Machines whose startup script holds a registration token (reusable runners).
    const withToken = new Set<string>();
    return {
      // Without a service account the machine has no token to delete itself with; it stops instead.
      scriptSettings: serviceAccount ? { selfDelete: { cloud: 'gcp', apiUrl: this.apiUrl } } : {},
      places: zones.map((z) => z.zone),
      warnings: serviceAccount ? [] : [NO_SERVICE_ACCOUNT_WARNING],
      launch: async (request, placement) => {
        const machine = await this.launch(zones, prepared, request, placement);
        if ('registrationToken' in request.credential) withToken.add(machine.id);
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
  private async removeStartupScript(id: string, attempt = 1): Promise<void> {
    const [zone, name] = splitId(id);
    const where = { project: this.project, zone, instance: name };
    const [instance] = await this.call(`instances.get in ${zone}`, () => this.instances.get(where, CALL));
    const items = instance.metadata?.items ?? [];
    const kept = items.filter((i) => i.key !== 'startup-script');
    if (kept.length === items.length) return;
    const metadataResource = { fingerprint: instance.metadata?.fingerprint ?? null, items: kept };
    try {
      const [operation] = await this.call(`instances.setMetadata in ${zone}`, () =>
        this.instances.setMetadata({ ...where, metadataResource }, CALL),
      );
      await this.awaitOperation(zone, operation.latestResponse as IOperation, `instances.setMetadata ${name}`);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (attempt === 1 && (code === 'conditionNotMet' || code === 'CONDITION_NOT_MET'))
        return this.removeStartupScript(id, 2);
      throw err;
    }
  }

  /** Zone → names offered, for the given names, from one aggregated list. */
  private async offered<L>(
    action: string,
    names: string[],
    list: (filter: string) => AsyncIterable<[string, L]>,
    items: (l: L) => Array<{ name?: string | null }>,
  ): Promise<Map<string, Set<string>>> {
    const filter = names.map((n) => `(name = "${n}")`).join(' OR ');
    return this.call(action, async () => {
      const byZone = new Map<string, Set<string>>();
      for await (const [key, scoped] of list(filter)) {
        const zone = key.replace(/^zones\//, '');
        for (const item of items(scoped))
          if (item.name) (byZone.get(zone) ?? byZone.set(zone, new Set()).get(zone)!).add(item.name);
      }
      return byZone;
    });
  }

  private offers(z: { machineTypes: Set<string>; accelerators: Set<string> }, t: GcpMachineType): boolean {
    return z.machineTypes.has(t.machineType) && (!t.accelerator || z.accelerators.has(t.accelerator.type));
  }

  private async resolveImage(path: string): Promise<{ selfLink: string; diskSizeGb: number }> {
    const m = /projects\/([^/]+)\/global\/images\/(family\/)?([^/]+)$/.exec(path)!;
    const [, project, family, name] = m as unknown as [string, string, string | undefined, string];
    const [image] = await this.call(family ? 'images.getFromFamily' : 'images.get', () =>
      family
        ? this.images.getFromFamily({ project, family: name }, CALL)
        : this.images.get({ project, image: name }, CALL),
    );
    if (!image.selfLink) throw gceRefusal('notFound', `image ${path} has no self link`, undefined, 'permanent');
    return { selfLink: image.selfLink, diskSizeGb: Number(image.diskSizeGb ?? 10) };
  }

  private async launch(
    zones: readonly Zone[],
    image: PreparedImage,
    request: MachineRequest,
    placement: Placement,
  ): Promise<Machine> {
    const zone = placement.where!;
    const type = parseGcpType(placement.type)!;
    const offered = zones.find((z) => z.zone === zone);
    if (!offered) throw new Error(`${zone} is not a place this launch was prepared for`);
    if (!this.offers(offered, type)) throw gceRefusal('NOT_OFFERED', `${zone} does not offer ${placement.type}`);
    const name = instanceName(request.runnerName, request.attempt);
    const instance = this.instanceResource(image, request, placement, zone, type, name);
    try {
      // Retried with the same requestId: Compute Engine answers a repeat with the first insert's operation.
      const [operation] = await this.call(`instances.insert in ${zone}`, () =>
        this.instances.insert(
          { project: this.project, zone, requestId: request.clientToken, instanceResource: instance },
          CALL,
        ),
      );
      await this.awaitOperation(zone, operation.latestResponse as IOperation, `instances.insert ${name}`);
    } catch (err) {
      // Already there: an insert whose answer was lost, retried. Ours if it carries this client token.
      const code = (err as { code?: string }).code;
      if (code === 'alreadyExists' && (await this.findByClientToken(request.clientToken)).includes(`${zone}/${name}`)) {
        return { id: `${zone}/${name}`, type: placement.type, spot: placement.spot, zone };
      }
      throw err;
    }
    return { id: `${zone}/${name}`, type: placement.type, spot: placement.spot, zone };
  }

  private instanceResource(
    image: PreparedImage,
    request: MachineRequest,
    placement: Placement,
    zone: string,
    type: GcpMachineType,
    name: string,
  ): IInstance {
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
  private networkInterface(): google.cloud.compute.v1.INetworkInterface {
    const { network, subnetwork, externalIp } = this.options;
    const path = (ref: string, scope: string): string => (ref.startsWith('projects/') ? ref : `${scope}/${ref}`);
    return {
      ...(network !== undefined || subnetwork === undefined
        ? { network: path(network ?? 'default', 'global/networks') }
        : {}),
      ...(subnetwork !== undefined ? { subnetwork: path(subnetwork, `regions/${this.region}/subnetworks`) } : {}),
      ...(externalIp === false ? {} : { accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] }),
    };
  }

  /** Tags as labels: lowercase, `:` and other characters become `_` or `-`, 63 characters at most. */
  private labels(request: MachineRequest): Record<string, string> {
    const labels: Record<string, string> = {};
    for (const [key, value] of Object.entries(request.tags)) {
      if (key === 'Name') continue;
      const k = key.startsWith('cml-runner:') ? key.replace(':', '-') : key;
      labels[k] = labelValue(value);
    }
    labels[LABEL.clientToken] = request.clientToken;
    return labels;
  }

  private async awaitOperation(zone: string, first: IOperation, what: string): Promise<void> {
    let op = first;
    const deadline = this.ctx.clock.now() + OPERATION_TIMEOUT_MS;
    while (op.status !== 'DONE') {
      if (this.ctx.clock.now() > deadline) {
        throw gceRefusal(
          'OPERATION_TIMEOUT',
          `${what}: operation ${op.name} not done after ${OPERATION_TIMEOUT_MS / 60_000} minutes`,
        );
      }
      const request = { project: this.project, zone, operation: op.name! };
      [op] = await this.call(`zoneOperations.wait in ${zone}`, () =>
        this.operations.wait(request, { timeout: 150_000, retry: { retryCodes: [] } }),
      );
    }
    const error = op.error?.errors?.[0];
    if (error) {
      const code = error.code ?? 'OPERATION_FAILED';
      throw gceRefusal(code, `${what} in ${zone}: ${error.message ?? code}`);
    }
  }

  async states(ids: readonly string[]): Promise<Map<string, MachineStatus>> {
    const states = new Map<string, MachineStatus>(ids.map((id) => [id, { state: 'gone' }]));
    if (ids.length === 0) return states;
    const wanted = new Set(ids);
    // One call for every zone: the instances of this launch, found by their labels.
    for (const inst of await this.aggregated(`labels.${LABEL.managed} = "true"`)) {
      const id = `${inst.zone}/${inst.instance.name}`;
      if (!wanted.has(id)) continue;
      const detail = inst.instance.statusMessage ?? undefined;
      states.set(id, { state: GCE_STATES[inst.instance.status ?? ''] ?? 'gone', ...(detail ? { detail } : {}) });
    }
    return states;
  }

  async list(filter: { repo: string; runId?: string }): Promise<ManagedMachine[]> {
    const clauses = [`(labels.${LABEL.managed} = "true")`, `(labels.${LABEL.repo} = "${labelValue(filter.repo)}")`];
    if (filter.runId) clauses.push(`(labels.${LABEL.runId} = "${labelValue(filter.runId)}")`);
    const found: ManagedMachine[] = [];
    for (const { zone, instance } of await this.aggregated(clauses.join(' '))) {
      const tags = tagsFromMetadata(instance);
      // The label is lowercased; the exact repository is in the metadata.
      if (tags[TAG.repo] !== undefined && tags[TAG.repo] !== filter.repo) continue;
      tags[TAG.runner] ??= instance.labels?.[LABEL.runner] ?? undefined;
      const created = Date.parse(instance.creationTimestamp ?? '');
      found.push(
        managedFromTags(`${zone}/${instance.name}`, tags, {
          state: GCE_STATES[instance.status ?? ''] ?? 'gone',
          ...(Number.isFinite(created) ? { createdAt: created } : {}),
        }),
      );
    }
    return found;
  }

  private async aggregated(filter: string): Promise<Array<{ zone: string; instance: IInstance }>> {
    return this.call('instances.aggregatedList', async () => {
      const out: Array<{ zone: string; instance: IInstance }> = [];
      for await (const [key, scoped] of this.instances.aggregatedListAsync(
        { project: this.project, filter, maxResults: 500 },
        LIST,
      )) {
        for (const instance of scoped.instances ?? []) out.push({ zone: key.replace(/^zones\//, ''), instance });
      }
      return out;
    });
  }

  async consoleLog(id: string): Promise<string> {
    const [zone, name] = splitId(id);
    const request = { project: this.project, zone, instance: name, port: 1 };
    const [out] = await this.call(`instances.getSerialPortOutput in ${zone}`, () =>
      this.instances.getSerialPortOutput(request, CALL),
    );
    return out.contents ?? '';
  }

  async terminate(id: string): Promise<'terminated' | 'gone'> {
    const [zone, name] = splitId(id);
    // Already deleted counts: by itself, by maxRunDuration, by a spot preemption, or by another cleanup.
    return endedOrGone(async () => {
      const request = { project: this.project, zone, instance: name };
      const [operation] = await this.call(`instances.delete in ${zone}`, () => this.instances.delete(request, CALL));
      await this.awaitOperation(zone, operation.latestResponse as IOperation, `instances.delete ${name}`);
    });
  }

  async findByClientToken(clientToken: string): Promise<string[]> {
    const found = await this.aggregated(`labels.${LABEL.clientToken} = "${labelValue(clientToken)}"`);
    return found.map((f) => `${f.zone}/${f.instance.name}`);
  }

  private call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    return cloudCall(this.ctx, this.policy, action, fn);
  }
}

/**
 * The credential file named in the context's environment, handed to GoogleAuth as its contents
 * (what its own chain would read from GOOGLE_APPLICATION_CREDENTIALS; the keyFilename option is
 * deprecated and warns). Without it, GoogleAuth's own chain: gcloud's, or the metadata server.
 */
function giveCredentialFile(auth: InstancesClient['auth'], env: Env): void {
  const file = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!file) return;
  try {
    auth.jsonContent = JSON.parse(readFileSync(file, 'utf8')) as typeof auth.jsonContent;
  } catch (err) {
    throw gceRefusal(
      'UNAUTHENTICATED',
      `the credential file GOOGLE_APPLICATION_CREDENTIALS names (${file}) cannot be read: ${errorMessage(err)}`,
      undefined,
      'permanent',
    );
  }
}

/** The exact tag values, which the instance keeps in its metadata (`cml-runner-repo`). */
function tagsFromMetadata(instance: IInstance): Record<string, string | undefined> {
  const tags: Record<string, string | undefined> = {};
  for (const item of instance.metadata?.items ?? []) {
    if (item.key?.startsWith('cml-runner-') && item.value != null)
      tags[item.key.replace('cml-runner-', 'cml-runner:')] = item.value;
  }
  return tags;
}

/** Instance names: lowercase letters, digits and dashes, starting with a letter, 63 at most. */
export function instanceName(runnerName: string, attempt: number): string {
  const suffix = attempt > 1 ? `-${attempt}` : '';
  let base = runnerName.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  if (!/^[a-z]/.test(base)) base = `r-${base}`;
  base = base.slice(0, 63 - suffix.length).replace(/-+$/, '');
  return `${base}${suffix}`;
}

/** A label value: lowercase letters, digits, `_` and `-`, 63 at most. */
export function labelValue(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '_')
    .slice(0, 63);
}

function splitId(id: string): [string, string] {
  const slash = id.indexOf('/');
  return [id.slice(0, slash), id.slice(slash + 1)];
}
