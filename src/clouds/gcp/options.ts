import type { InputReader, MachineSpec } from '../../config/spec.js';
import { InputError } from '../../errors.js';
import type { Env } from '../descriptor.js';

export interface GcpOptions {
  project: string;
  /**
   * The machine's own service account (cloud-platform scope; IAM decides what it may do). The
   * startup script uses it to delete its own instance. Undefined: the machine has none, so it
   * cannot delete itself and stops instead; cleanup or sweep must then delete it (maxRunDuration
   * no longer applies to a stopped VM).
   */
  serviceAccount?: string;
}

const GCP_LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const GCP_LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
/** A project id (`ml-training-123`), or a domain-scoped one (`example.com:ml`). */
const GCP_PROJECT = /^([a-z][-a-z0-9.]{0,62}:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$/;
/** A user-managed service account, or a project's default compute one. */
const GCP_SERVICE_ACCOUNT = new RegExp(
  String.raw`^([a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9.:]*\.iam\.gserviceaccount\.com` +
    String.raw`|\d+-compute@developer\.gserviceaccount\.com)$`,
);

/**
 * gcp-project (or what google-github-actions/auth set), gcp-service-account, and Google's rules
 * for tags and spot.
 */
export function gcpOptions(read: InputReader, env: Env, machine?: MachineSpec): GcpOptions {
  if (machine) {
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
  if (serviceAccount !== undefined && !GCP_SERVICE_ACCOUNT.test(serviceAccount)) {
    throw new InputError(
      'gcp-service-account',
      serviceAccount,
      'use a service account email such as ci-runner@my-project.iam.gserviceaccount.com',
    );
  }
  return { project, ...(serviceAccount ? { serviceAccount } : {}) };
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
