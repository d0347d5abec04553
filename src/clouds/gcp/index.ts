import type { CloudDescriptor } from '../descriptor.js';
import { GCP_CATALOG } from './catalog.js';
import { gcpOptions, type GcpOptions } from './options.js';

/** Google Compute Engine. The SDK is loaded only with the provider. */
export const gcp: CloudDescriptor<GcpOptions> = {
  name: 'gcp',
  title: 'Google Cloud',
  catalog: GCP_CATALOG,
  options: gcpOptions,
  load: () => import('./provider.js'),
};
