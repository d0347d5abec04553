import type { InputReader, MachineSpec } from '../../config/spec.js';
import { bool } from '../../config/inputs.js';
import { InputError } from '../../errors.js';
import type { Env } from '../descriptor.js';
import { GCP_ATTACHED_GPUS, GCP_SPOT_ONLY, parseGcpType } from './catalog.js';

export interface GcpOptions {
  project: string;
  /**
   * The machine's own service account (cloud-platform scope; IAM decides what it may do). The
   * startup script uses it to delete its own instance. Undefined: the machine has none, so it
   * cannot delete itself and stops instead; cleanup or sweep must then delete it (maxRunDuration
   * no longer applies to a stopped VM).
   */
  serviceAccount?: string;
  /** gcp-network: a network name, or `projects/P/global/networks/N` (a Shared VPC host's). Undefined: `default`. */
  network?: string;
  /** gcp-subnetwork: a subnetwork name in the region, or `projects/P/regions/R/subnetworks/S`. */
  subnetwork?: string;
  /** gcp-external-ip: false, no external address (the way out is Cloud NAT or a proxy). Undefined: one. */
  externalIp?: false;
}

const GCE_NAME = '[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?';
const GCE_PROJECT_ID = '(?:[a-z][-a-z0-9.]{0,62}:)?[a-z][-a-z0-9]{4,28}[a-z0-9]';
const GCP_NETWORK = new RegExp(`^(?:${GCE_NAME}|projects/${GCE_PROJECT_ID}/global/networks/${GCE_NAME})$`);
const GCP_SUBNETWORK = new RegExp(
  `^(?:${GCE_NAME}|projects/${GCE_PROJECT_ID}/regions/([a-z]+-[a-z]+\\d+)/subnetworks/${GCE_NAME})$`,
);
const GCP_LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const GCP_LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
/** A project id (`ml-training-123`), or a domain-scoped one (`example.com:ml`). */
const GCP_PROJECT = /^([a-z][-a-z0-9.]{0,62}:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$/;
/** A user-managed service account. */
const GCP_SERVICE_ACCOUNT = /^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9.:]*\.iam\.gserviceaccount\.com$/;
/** A project's Compute Engine default service account, which often holds the project's Editor role. */
const GCP_DEFAULT_COMPUTE_ACCOUNT = /^\d+-compute@developer\.gserviceaccount\.com$/;

/**
 * gcp-project (or what google-github-actions/auth set), gcp-service-account, and Google's rules
 * for tags and spot.
 */
export function gcpOptions(read: InputReader, env: Env, machine?: MachineSpec): GcpOptions {
  if (machine) {
    gcpMachineRules(read, machine);
    const spotPriceRaw = read('spot-price').trim() || '-1';
    if (machine.spotPrice !== undefined) {
      throw new InputError(
        'spot-price',
        spotPriceRaw,
        'use -1 on Google Cloud: spot VMs there have no maximum price (they are preempted for capacity, not price)',
      );
    }
    for (const [key, value] of Object.entries(machine.tags)) {
      if (!GCP_LABEL_KEY.test(key) || !GCP_LABEL_VALUE.test(value)) {
        throw new InputError(
          'tags',
          `${key}=${value}`,
          'on Google Cloud tags become labels: keys start with a lowercase letter, and keys and values have at ' +
            'most 63 lowercase letters, digits, dashes or underscores',
        );
      }
    }
  }
  const project = gcpProject(read, env);
  const serviceAccount = read('gcp-service-account').trim() || undefined;
  if (machine && serviceAccount !== undefined && GCP_DEFAULT_COMPUTE_ACCOUNT.test(serviceAccount)) {
    // Every job on the runner can take the VM's token from its metadata server. (Ending machines
    // does not use the account, so post and sweep still read the input.)
    throw new InputError(
      'gcp-service-account',
      serviceAccount,
      "not the project's Compute Engine default service account: it often has the Editor role on the project, and " +
        'every job on the runner gets its rights from the metadata server. Create an account with only the VM role ' +
        '(see "The VM\'s own account" in the README), such as cml-runner-vm@my-project.iam.gserviceaccount.com',
    );
  }
  const wellFormed =
    GCP_SERVICE_ACCOUNT.test(serviceAccount ?? '') || GCP_DEFAULT_COMPUTE_ACCOUNT.test(serviceAccount ?? '');
  if (serviceAccount !== undefined && !wellFormed) {
    throw new InputError(
      'gcp-service-account',
      serviceAccount,
      'use a service account email such as ci-runner@my-project.iam.gserviceaccount.com',
    );
  }
  return { project, ...(serviceAccount ? { serviceAccount } : {}), ...(machine ? gcpNetwork(read, machine) : {}) };
}

/** gcp-network, gcp-subnetwork and gcp-external-ip. */
function gcpNetwork(
  read: InputReader,
  machine: MachineSpec,
): Pick<GcpOptions, 'network' | 'subnetwork' | 'externalIp'> {
  const network = read('gcp-network').trim() || 'default';
  if (!GCP_NETWORK.test(network)) {
    throw new InputError(
      'gcp-network',
      network,
      'use a VPC network name such as default or ci-vpc, or projects/HOST_PROJECT/global/networks/NAME for a ' +
        'Shared VPC',
    );
  }
  const subnetwork = read('gcp-subnetwork').trim() || undefined;
  if (subnetwork !== undefined) {
    const m = GCP_SUBNETWORK.exec(subnetwork);
    if (!m) {
      throw new InputError(
        'gcp-subnetwork',
        subnetwork,
        `use a subnetwork name in ${machine.region || 'the region'}, such as ci-subnet, or ` +
          'projects/PROJECT/regions/REGION/subnetworks/NAME',
      );
    }
    if (m[1] !== undefined && m[1] !== machine.region) {
      throw new InputError(
        'gcp-subnetwork',
        subnetwork,
        `the subnetwork is in ${m[1]} but the machines launch in ${machine.region}: give a subnetwork of ` +
          `${machine.region}, or set region to ${m[1]}`,
      );
    }
  }
  const externalIp = bool('gcp-external-ip', read('gcp-external-ip').trim() || 'true');
  return {
    ...(network !== 'default' ? { network } : {}),
    ...(subnetwork ? { subnetwork } : {}),
    ...(externalIp ? {} : { externalIp: false as const }),
  };
}

/**
 * What Compute Engine would refuse, or could not promise, for these types, said before anything
 * is created: a V100 without an image the user vouches for, and a Spot-only A3 High on-demand.
 */
function gcpMachineRules(read: InputReader, machine: MachineSpec): void {
  for (const type of machine.types) {
    const parsed = parseGcpType(type);
    if (parsed?.accelerator?.type === GCP_ATTACHED_GPUS.v100 && !machine.image) {
      throw new InputError(
        'image',
        '',
        `${type} has a V100 (Volta), which needs NVIDIA's proprietary driver, and the default Deep Learning VM ` +
          "image may load NVIDIA's open kernel modules, which do not drive it: give an image whose NVIDIA driver is " +
          'the proprietary flavour, or use t4 or l4',
      );
    }
    if (!parsed || !GCP_SPOT_ONLY.has(parsed.machineType)) continue;
    const eightGpus = 'a3-highgpu-8g (type xl), which is also sold on-demand';
    if (!machine.spot) {
      throw new InputError(
        'type',
        read('type').trim() || type,
        `${type} is sold only as Spot or Flex-start VMs, not on-demand: set spot: true with ` +
          `on-demand-fallback: false, or use ${eightGpus}`,
      );
    }
    if (machine.onDemandFallback) {
      throw new InputError(
        'on-demand-fallback',
        'true',
        `${type} is sold only as Spot or Flex-start VMs, so there is no on-demand VM to fall back to: set ` +
          `on-demand-fallback: false, or use ${eightGpus}`,
      );
    }
  }
}

/**
 * The Google Cloud project: the gcp-project input, else what google-github-actions/auth or
 * gcloud set in the environment. Main and post both call this.
 */
function gcpProject(read: InputReader, env: Env): string {
  const given = read('gcp-project').trim();
  const project =
    given || env.GOOGLE_CLOUD_PROJECT || env.GCLOUD_PROJECT || env.CLOUDSDK_CORE_PROJECT || env.CLOUDSDK_PROJECT || '';
  if (!GCP_PROJECT.test(project)) {
    throw new InputError(
      'gcp-project',
      project,
      given || project
        ? 'use a project id such as ml-training-123 (6 to 30 lowercase letters, digits and dashes)'
        : 'give the project id, or let google-github-actions/auth set GOOGLE_CLOUD_PROJECT',
    );
  }
  return project;
}
