import type { CloudDescriptor } from '../descriptor.js';
import { AZURE_CATALOG } from './catalog.js';
import { azureOptions, type AzureOptions } from './options.js';

/** Azure Resource Manager. The SDKs are loaded only with the provider. */
export const azure: CloudDescriptor<AzureOptions> = {
  name: 'azure',
  title: 'Azure',
  catalog: AZURE_CATALOG,
  options: azureOptions,
  load: () => import('./provider.js'),
};
