import type { CloudDescriptor } from '../descriptor.js';
import { AWS_CATALOG } from './catalog.js';
import { awsOptions, type AwsOptions } from './options.js';

/** AWS EC2. The SDK is loaded only with the provider. */
export const aws: CloudDescriptor<AwsOptions> = {
  name: 'aws',
  title: 'AWS',
  catalog: AWS_CATALOG,
  options: awsOptions,
  load: () => import('./provider.js'),
};
