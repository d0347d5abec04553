import type { CloudDescriptor } from '../clouds/descriptor.js';
import {
  GENERIC_GPUS,
  GENERIC_REGIONS,
  GENERIC_TYPES,
  GPU_ALIASES,
  RETIRED_GPUS,
  isGenericGpu,
  type GenericGpu,
} from '../clouds/generic.js';
import { InputError } from '../errors.js';
import { bool, integer, list, parseTags } from './inputs.js';
import type { InputReader, MachineSpec } from './spec.js';

/**
 * EC2 user data is at most 16384 bytes. The startup template takes about 5 KB and its settings
 * (JIT config, download URLs) about 3 KB as base64; the user's script is base64 too (4/3).
 */
const MAX_STARTUP_SCRIPT_BYTES = 6144;

/** The machine inputs, in generic words made native by the cloud's catalog. */
export function parseMachine(read: InputReader, cloud: Pick<CloudDescriptor, 'catalog'>): MachineSpec {
  const input = (name: string): string => read(name).trim();
  const catalog = cloud.catalog;

  const regionRaw = input('region') || 'us-east';
  const region = catalog.region(regionRaw);
  if (region === undefined) {
    throw new InputError(
      'region',
      regionRaw,
      `use one of ${GENERIC_REGIONS.join(', ')}, or ${catalog.nativeRegionHint}`,
    );
  }
  const gpu = parseGpu(input('gpu') || 'nogpu');
  const typeList = list(input('type') || 'm');
  if (typeList.length === 0) throw new InputError('type', input('type'), 'give at least one type');
  const types = typeList.map((t) => {
    const native = catalog.machineType(t, gpu);
    if (!native) {
      throw new InputError(
        'type',
        t,
        `use one of ${GENERIC_TYPES.join(', ')}, or ${catalog.nativeTypeHint}; a comma list is a fallback order`,
      );
    }
    return native;
  });

  const hddRaw = input('hdd-size');
  const hddSizeGb = hddRaw ? integer('hdd-size', hddRaw, 8, 16384, 'a disk size in GB from 8 to 16384') : undefined;

  const image = input('image') || undefined;
  if (image !== undefined && !catalog.image(image)) throw new InputError('image', image, catalog.imageHint);
  const spot = bool('spot', input('spot') || 'false');
  const onDemandFallback = bool('on-demand-fallback', input('on-demand-fallback') || 'true');
  const spotPriceRaw = input('spot-price') || '-1';
  const spotPrice = Number(spotPriceRaw);
  if (!Number.isFinite(spotPrice) || (spotPrice <= 0 && spotPrice !== -1)) {
    throw new InputError(
      'spot-price',
      spotPriceRaw,
      'use a maximum hourly price in USD greater than 0, or -1 for up to the on-demand price',
    );
  }
  const startupScript = parseStartupScript(read('startup-script'));
  if (startupScript !== undefined && Buffer.byteLength(startupScript) > MAX_STARTUP_SCRIPT_BYTES) {
    throw new InputError(
      'startup-script',
      `${startupScript.slice(0, 40)}… (${Buffer.byteLength(startupScript)} bytes)`,
      `keep it at most ${MAX_STARTUP_SCRIPT_BYTES} bytes, since it travels in the machine's user data ` +
        '(16 KB on EC2) with the runner settings; download larger scripts from the machine instead',
    );
  }
  const tags = parseTags(input('tags'));
  if (new Set(types).size !== types.length) {
    throw new InputError('type', input('type'), 'name each type once; a comma list is a fallback order');
  }
  const wantsGpu = gpu !== 'nogpu' || types.some((t) => catalog.typeHasGpu(t));
  return {
    region,
    types,
    gpu,
    wantsGpu,
    hddSizeGb,
    image,
    spot,
    onDemandFallback,
    spotPrice: spotPrice === -1 ? undefined : spotPrice,
    startupScript,
    tags,
  };
}

function parseGpu(value: string): GenericGpu {
  const v = value.toLowerCase();
  const retired = RETIRED_GPUS[v];
  if (retired) throw new InputError('gpu', value, retired);
  const gpu = GPU_ALIASES[v] ?? v;
  if (!isGenericGpu(gpu)) {
    throw new InputError(
      'gpu',
      value,
      `use one of ${GENERIC_GPUS.join(', ')} (tesla means v100), or leave it out and give a native GPU type in 'type'`,
    );
  }
  return gpu;
}

/** A plain script, or one given as base64 (as CML accepted). */
function parseStartupScript(value: string): string | undefined {
  if (!value.trim()) return undefined;
  const compact = value.trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(compact) && compact.length % 4 === 0 && compact.length >= 8) {
    const decoded = Buffer.from(compact, 'base64').toString('utf8');
    if (!decoded.includes('\uFFFD')) return decoded;
  }
  return value;
}
