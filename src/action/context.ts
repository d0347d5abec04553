import type { RunContext } from '../config.js';

/** The workflow run, from the variables every Actions runner sets (GHES included). */
export function runContext(env: NodeJS.ProcessEnv = process.env): RunContext {
  return {
    repository: env.GITHUB_REPOSITORY ?? '',
    runId: env.GITHUB_RUN_ID ?? 'local',
    serverUrl: env.GITHUB_SERVER_URL ?? 'https://github.com',
    apiUrl: env.GITHUB_API_URL ?? 'https://api.github.com',
    kubernetes: {
      KUBERNETES_CONFIGURATION: env.KUBERNETES_CONFIGURATION,
      KUBECONFIG: env.KUBECONFIG,
      KUBERNETES_SERVICE_HOST: env.KUBERNETES_SERVICE_HOST,
    },
    azureSubscriptionId: env.AZURE_SUBSCRIPTION_ID,
    gcp: {
      GOOGLE_CLOUD_PROJECT: env.GOOGLE_CLOUD_PROJECT,
      GCLOUD_PROJECT: env.GCLOUD_PROJECT,
      CLOUDSDK_CORE_PROJECT: env.CLOUDSDK_CORE_PROJECT,
      CLOUDSDK_PROJECT: env.CLOUDSDK_PROJECT,
    },
  };
}
