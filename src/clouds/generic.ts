/**
 * The cloud-agnostic vocabulary users write, kept from CML so that a migration is a rename.
 * Each cloud's catalog (src/clouds/<cloud>/catalog.ts) maps these words to its native names.
 */
export const GENERIC_REGIONS = ['us-east', 'us-west', 'eu-west', 'eu-north'] as const;
export type GenericRegion = (typeof GENERIC_REGIONS)[number];

export const GENERIC_TYPES = ['s', 'm', 'l', 'xl'] as const;
export type GenericType = (typeof GENERIC_TYPES)[number];

export const GENERIC_GPUS = ['nogpu', 't4', 'a10g', 'l4', 'l40s', 'a100', 'h100', 'v100'] as const;
export type GenericGpu = (typeof GENERIC_GPUS)[number];

/** Old names that still mean something: `tesla` was CML's word for the V100. */
export const GPU_ALIASES: Readonly<Record<string, GenericGpu>> = { tesla: 'v100' };

/** GPUs the clouds no longer rent, with what to ask for instead. */
export const RETIRED_GPUS: Readonly<Record<string, string>> = {
  k80:
    'the K80 is retired on every cloud (AWS p2 and Azure NC v1 are gone); ' +
    'use t4 for a small GPU or a10g/l4 for more memory',
};

export const isGenericRegion = (v: string): v is GenericRegion => (GENERIC_REGIONS as readonly string[]).includes(v);
export const isGenericType = (v: string): v is GenericType => (GENERIC_TYPES as readonly string[]).includes(v);
export const isGenericGpu = (v: string): v is GenericGpu => (GENERIC_GPUS as readonly string[]).includes(v);
