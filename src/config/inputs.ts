import { InputError } from '../errors.js';

/** Small readers for input values; each names the input in its InputError. */

/**
 * Control characters and invisible format characters (right-to-left overrides, zero-width spaces):
 * they make a label, tag or group name read as something it is not.
 */
export const HIDDEN_CHARACTERS = /[\p{Cc}\p{Cf}]/u;

/** A value as an error shows it: each invisible format character written as `<U+202E>`. */
export const visible = (value: string): string =>
  value.replace(/\p{Cf}/gu, (c) => `<U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}>`);

const DURATION = /^(\d+)\s*(s|m|h|d)?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

export function oneOf(input: string, value: string, accepted: readonly string[]): string {
  if (!accepted.includes(value)) throw new InputError(input, value, `use one of ${accepted.join(', ')}`);
  return value;
}

export function list(value: string): string[] {
  return value
    .split(/[,\n]/)
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

export function bool(input: string, value: string): boolean {
  const v = value.toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InputError(input, value, 'use true or false');
}

export function integer(input: string, value: string, min: number, max: number, accepted: string): number {
  if (!/^\d+$/.test(value)) throw new InputError(input, value, accepted);
  const n = Number(value);
  if (n < min || n > max) throw new InputError(input, value, accepted);
  return n;
}

/** Seconds, or a number with s, m, h or d. */
export function duration(input: string, value: string, minSeconds: number): number {
  const m = DURATION.exec(value);
  const accepted = `use seconds (300) or a number with s, m, h or d (90m, 24h), at least ${minSeconds} seconds`;
  if (!m) throw new InputError(input, value, accepted);
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2] ?? 's']!;
  if (seconds < minSeconds || seconds > 30 * 86400) throw new InputError(input, value, `${accepted} and at most 30d`);
  return seconds;
}

/** `key=value` pairs, one per line or comma-separated. Keys starting with `aws:` are reserved by AWS. */
export function parseTags(value: string): Record<string, string> {
  const tags: Record<string, string> = {};
  if (!value) return tags;
  const pairs = value.includes('\n') ? value.split('\n') : value.split(',');
  for (const raw of pairs) {
    const pair = raw.trim();
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    const val = eq > 0 ? pair.slice(eq + 1).trim() : '';
    const hidden = HIDDEN_CHARACTERS.test(pair);
    if (!key || key.length > 128 || val.length > 256 || hidden || /^(aws:|cml-runner:)/i.test(key)) {
      throw new InputError(
        'tags',
        visible(pair),
        'use key=value pairs (key up to 128 characters, value up to 256, no control or invisible format ' +
          'characters; keys starting with aws: or cml-runner: are reserved)',
      );
    }
    tags[key] = val;
  }
  return tags;
}
