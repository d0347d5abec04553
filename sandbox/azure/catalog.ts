/**
 * What the fake Azure knows: ids, api-versions, role ids, apps, GPU sizes and images.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GpuSpec } from '../machine.js';

export const TLS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'tls');
/** The sandbox CA (PEM file): trust it with NODE_EXTRA_CA_CERTS, CURL_CA_BUNDLE, tls.setDefaultCACertificates or a client's `tlsOptions.ca`. */
export const AZURE_CA_FILE = path.join(TLS_DIR, 'ca.pem');

export const AZURE_TENANT_ID = '72f988bf-0000-4000-8000-00000000a2e1';
export const AZURE_SUBSCRIPTION_ID = '5b1f1e4c-0000-4000-8000-0000000005b1';

/** The exact api-version each client sends (measured; anything else is refused, as ARM refuses an unknown one). */
export const AZURE_API_VERSIONS = {
  /** @azure/arm-resources 8: resourceGroups.*, and the delete's operationresults Location. */
  resources: '2025-04-01',
  /** @azure/arm-network 39: NSGs, virtual networks, public IPs, NICs, their async operations. */
  network: '2026-01-01',
  /** @azure/arm-compute 25: virtualMachines.*, their async operations. */
  compute: '2026-04-01',
  /** @azure/arm-authorization 9: roleAssignments.create. */
  authorization: '2022-04-01',
  /** @azure/arm-compute 25: resourceSkus.list (Microsoft.Compute/skus keeps its own, older version). */
  skus: '2021-07-01',
  /** @azure/arm-compute 25: galleryImages.get, galleryImageVersions.get and listByGalleryImage. */
  galleries: '2025-12-03',
} as const;
/** IMDS versions the fake knows (IMDS itself accepts many dated versions). */
export const IMDS_VERSIONS = [
  '2018-02-01',
  '2019-08-01',
  '2020-07-01',
  '2020-09-01',
  '2021-01-01',
  '2021-02-01',
  '2021-12-13',
  '2023-07-01',
];

/**
 * Role definition ids. Owner, Contributor and Reader are built in (the same ids in every tenant);
 * the custom roles are made from docs/permissions/azure/ when the fake starts (azure/rbac.ts),
 * with these ids as `az role definition create` would give them.
 */
export const ROLE_IDS = {
  owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
  /** "cml-runner-action launcher" (launcher-role.json). */
  launcher: '5a5d0c1e-0000-4000-8000-00000000c001',
  /** "cml-runner-action VM" (vm-role.json). */
  vm: '5a5d0c1e-0000-4000-8000-00000000c002',
  /** The launcher role without Microsoft.Authorization/roleAssignments/write, as the README allows. */
  launcherWithoutAssignments: '5a5d0c1e-0000-4000-8000-00000000c003',
} as const;

export interface AzureApp {
  clientId: string;
  /** The service principal's object id (what role assignments and AuthorizationFailed name). */
  objectId: string;
  secret: string;
  /** Its role, assigned at subscription scope. */
  role: keyof typeof ROLE_IDS;
  /** Assigned with the launcher's condition (launcher-condition.txt). */
  conditioned?: boolean;
}

/**
 * `launcher` has the documented launcher role with the documented condition (it may assign the
 * VM role and nothing else); `noRoleAssignments` has that role without roleAssignments/write
 * (403 AuthorizationFailed on a roleAssignments PUT); `admin` is Owner, for what a subscription
 * administrator does by hand.
 */
export const AZURE_APPS: Record<'launcher' | 'noRoleAssignments' | 'admin', AzureApp> = {
  launcher: {
    clientId: '0a1b2c3d-0000-4000-8000-00000000a001',
    objectId: '0a1b2c3d-0000-4000-8000-00000000b001',
    secret: 'sandbox-launcher-secret',
    role: 'launcher',
    conditioned: true,
  },
  noRoleAssignments: {
    clientId: '0a1b2c3d-0000-4000-8000-00000000a002',
    objectId: '0a1b2c3d-0000-4000-8000-00000000b002',
    secret: 'sandbox-no-role-assignments-secret',
    role: 'launcherWithoutAssignments',
  },
  admin: {
    clientId: '0a1b2c3d-0000-4000-8000-00000000a003',
    objectId: '0a1b2c3d-0000-4000-8000-00000000b003',
    secret: 'sandbox-admin-secret',
    role: 'owner',
  },
};
export type AzureAppName = keyof typeof AZURE_APPS;

/** The audience GitHub's OIDC token must carry for Entra federation. */
export const FEDERATION_AUDIENCE = 'api://AzureADTokenExchange';

/** GPU families by size name. A size matching none has no GPU. */
const GPU_SIZES: Array<{ re: RegExp; model: string; memoryMiB: number; count: (n: number) => number }> = [
  // NCasT4_v3: NC4as/NC8as/NC16as have 1, NC64as 4.
  { re: /^Standard_NC(\d+)as_T4_v3$/i, model: 'Tesla T4', memoryMiB: 15360, count: (n) => (n >= 64 ? 4 : 1) },
  // NVads A10 v5: NV6ads..NV36ads share one A10 (a fraction below 36); NV72ads has 2.
  { re: /^Standard_NV(\d+)ads_A10_v5$/i, model: 'NVIDIA A10', memoryMiB: 23028, count: (n) => (n >= 72 ? 2 : 1) },
  // NC A100 v4: 24 vCPUs per GPU; ND A100 v4: 8.
  {
    re: /^Standard_NC(\d+)ads_A100_v4$/i,
    model: 'NVIDIA A100 80GB PCIe',
    memoryMiB: 81920,
    count: (n) => Math.max(1, Math.floor(n / 24)),
  },
  { re: /^Standard_ND(\d+)am?sr(?:_A100)?_v4$/i, model: 'NVIDIA A100-SXM4-40GB', memoryMiB: 40960, count: () => 8 },
  // NC H100 v5: NC40ads 1, NC80adis 2; ND H100 v5: 8.
  {
    re: /^Standard_NC(\d+)adi?s_H100_v5$/i,
    model: 'NVIDIA H100 NVL',
    memoryMiB: 95830,
    count: (n) => (n >= 80 ? 2 : 1),
  },
  { re: /^Standard_ND(\d+)isr_H100_v5$/i, model: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, count: () => 8 },
];

/** The GPUs of a VM size (`Standard_N*`), whatever the image. */
export function gpuOfSize(size: string): GpuSpec | undefined {
  for (const f of GPU_SIZES) {
    const m = f.re.exec(size);
    if (m) return { model: f.model, count: f.count(Number(m[1] ?? 0)), memoryMiB: f.memoryMiB };
  }
  return undefined;
}

export * from './offerings.js';
