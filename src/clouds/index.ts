import { aws } from './aws/index.js';
import { azure } from './azure/index.js';
import type { CloudDescriptor } from './descriptor.js';
import { gcp } from './gcp/index.js';
import { kubernetes } from './kubernetes/index.js';
import type { Cloud, CloudContext } from './types.js';

/**
 * The only list of clouds. Adding one is a folder in src/clouds/ and a line here; each entry is
 * a small descriptor, and its SDK is imported only when the cloud is loaded.
 */
export const CLOUDS = {
  aws,
  azure,
  gcp,
  kubernetes,
} as const;

export type CloudName = keyof typeof CLOUDS;
export const CLOUD_NAMES = Object.keys(CLOUDS) as CloudName[];

type OptionsOf<D> = D extends CloudDescriptor<infer O> ? O : never;
/** A cloud by name with its own options, as its descriptor read them. */
export type CloudSpec = { [K in CloudName]: { name: K; options: OptionsOf<(typeof CLOUDS)[K]> } }[CloudName];

export const isCloudName = (name: string): name is CloudName => Object.hasOwn(CLOUDS, name);

export function descriptorOf(name: CloudName): CloudDescriptor {
  return CLOUDS[name] as CloudDescriptor;
}

/** Loads one cloud's module, and with it only that cloud's SDK. */
export async function loadCloud(spec: CloudSpec, region: string, ctx: CloudContext): Promise<Cloud> {
  const descriptor = descriptorOf(spec.name);
  const provider = await descriptor.load();
  return provider.createCloud(spec.options, region, ctx);
}
