import type { CloudDescriptor } from '../descriptor.js';
import { KUBERNETES_CATALOG } from './catalog.js';
import { type KubernetesOptions, kubeconfigSecrets, kubernetesOptions } from './options.js';

/** Runner pods on an existing cluster. The client is loaded only with the provider. */
export const kubernetes: CloudDescriptor<KubernetesOptions> = {
  name: 'kubernetes',
  title: 'Kubernetes',
  catalog: KUBERNETES_CATALOG,
  options: kubernetesOptions,
  secrets: (o) => ('text' in o.access ? kubeconfigSecrets(o.access.text) : []),
  load: () => import('./provider.js'),
};
