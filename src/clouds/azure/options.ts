import type { InputReader } from '../../config/spec.js';
import { InputError } from '../../errors.js';
import type { Env } from '../descriptor.js';

export interface AzureOptions {
  subscriptionId: string;
  /** Each runner's resource group is `<prefix>-<runner name>`. */
  resourceGroupPrefix: string;
}

/** azure-subscription-id (or AZURE_SUBSCRIPTION_ID, which azure/login exports) and azure-resource-group-prefix. */
export function azureOptions(read: InputReader, env: Env): AzureOptions {
  const subscriptionId = azureSubscription(read, env.AZURE_SUBSCRIPTION_ID);
  const resourceGroupPrefix = read('azure-resource-group-prefix').trim() || 'cml-runner';
  // Group names take 90 characters of letters, digits, _ ( ) - .; the runner name follows the prefix.
  if (!/^[A-Za-z0-9_().-]{1,30}$/.test(resourceGroupPrefix) || resourceGroupPrefix.endsWith('.')) {
    throw new InputError(
      'azure-resource-group-prefix',
      resourceGroupPrefix,
      'use 1 to 30 letters, digits, dashes, underscores, dots or parentheses, not ending in a dot',
    );
  }
  return { subscriptionId, resourceGroupPrefix };
}

/**
 * The Azure subscription: the azure-subscription-id input, else AZURE_SUBSCRIPTION_ID. Main and
 * post both call this.
 */
function azureSubscription(read: InputReader, env: string | undefined): string {
  const given = read('azure-subscription-id').trim();
  const id = given || env?.trim() || '';
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
    throw new InputError(
      'azure-subscription-id',
      id,
      id
        ? 'use a subscription id, a GUID such as 00000000-0000-0000-0000-000000000000'
        : 'give the subscription id, or set AZURE_SUBSCRIPTION_ID',
    );
  }
  return id;
}
