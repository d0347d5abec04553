/**
 * resource.Quantity as the API server handles it: parsed exactly (to nano units, rounded up as
 * the server rounds), compared, and written back in canonical form (`0.5` → `500m`,
 * `1024Mi` → `1Gi`, `2000` → `2k`), as a real server returns it on reads.
 * https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/
 */

/** What a quantity string must look like (the serialization format of resource.Quantity). */
export const QUANTITY = /^[+-]?(\d+\.?\d*|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$/;

/** The decoder's own words when a quantity does not parse (k8s.io/apimachinery resource.ErrFormatWrong). */
export const QUANTITY_FORMAT_ERROR =
  "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

type Format = 'BinarySI' | 'DecimalSI' | 'DecimalExponent';

export interface Quantity {
  /** The value in nano units (value × 10⁹), exact. */
  nanos: bigint;
  format: Format;
}

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const NANO = 10n ** 9n;

export function parseQuantity(text: string): Quantity | undefined {
  const m = QUANTITY.exec(text);
  if (!m) return undefined;
  const negative = text.startsWith('-');
  const number = m[1]!;
  const suffix = m[2] ?? '';
  const [whole = '', fraction = ''] = number.split('.');
  let numerator = BigInt((whole || '0') + fraction) * NANO;
  let denominator = 10n ** BigInt(fraction.length);
  let format: Format;
  if (suffix in BINARY) {
    numerator *= 2n ** BigInt(BINARY[suffix]!);
    format = 'BinarySI';
  } else if (suffix in DECIMAL) {
    const exp = DECIMAL[suffix]!;
    if (exp >= 0) numerator *= 10n ** BigInt(exp);
    else denominator *= 10n ** BigInt(-exp);
    format = 'DecimalSI';
  } else {
    const exp = Number(suffix.slice(1));
    if (exp >= 0) numerator *= 10n ** BigInt(exp);
    else denominator *= 10n ** BigInt(-exp);
    format = 'DecimalExponent';
  }
  // Precision below one nano unit is rounded up, away from zero, as the server does.
  let nanos = numerator / denominator;
  if (nanos * denominator !== numerator) nanos += 1n;
  return { nanos: negative ? -nanos : nanos, format };
}

/** The value as a JS number (for fitting requests onto nodes). */
export function quantityValue(q: Quantity): number {
  return Number(q.nanos) / 1e9;
}

/** The canonical string the API server writes back. */
export function canonicalQuantity(q: Quantity): string {
  const negative = q.nanos < 0n;
  const abs = negative ? -q.nanos : q.nanos;
  const sign = negative ? '-' : '';
  if (abs === 0n) return '0';
  if (q.format === 'BinarySI' && abs % NANO === 0n) {
    const units = abs / NANO;
    // Binary suffixes only for whole values of at least 1Ki; anything else is written as decimal.
    if (units >= 1024n) {
      for (const [suffix, bits] of Object.entries(BINARY).reverse()) {
        const base = 2n ** BigInt(bits);
        if (units % base === 0n) return `${sign}${units / base}${suffix}`;
      }
    } else {
      return `${sign}${units}`;
    }
  }
  // Decimal: the largest power of 1000 that divides the value exactly.
  let mantissa = abs;
  let exp = -9;
  while (exp < 18 && mantissa % 1000n === 0n) {
    mantissa /= 1000n;
    exp += 3;
  }
  if (q.format === 'DecimalExponent') return `${sign}${mantissa}${exp === 0 ? '' : `e${exp}`}`;
  const suffix = Object.entries(DECIMAL).find(([, e]) => e === exp)![0];
  return `${sign}${mantissa}${suffix}`;
}
