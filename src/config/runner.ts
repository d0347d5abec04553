import { InputError } from '../errors.js';
import type { InputReader, RunnerSpec } from './spec.js';
import { HIDDEN_CHARACTERS, bool, duration, integer, visible } from './inputs.js';

/** The runner inputs: labels, names, timeouts, group, version, reuse. */
export function parseRunner(read: InputReader, random: () => string = randomSuffix): RunnerSpec {
  const input = (name: string): string => read(name).trim();
  // action.yml gives `labels` the default `cml`: a `labels` the runner passes as '' was set so.
  const labelsRaw = input('labels');
  const labels = parseLabels(labelsRaw || read.isSet?.('labels') ? labelsRaw : 'cml');
  const count = integer('count', input('count') || '1', 1, 100, 'a whole number of runners from 1 to 100');
  const names = parseNames(input('name'), count, random);
  const single = bool('single', input('single') || 'true');
  const idleTimeoutSeconds = duration('idle-timeout', input('idle-timeout') || '300', 0);
  const maxLifetimeSeconds = duration('max-lifetime', input('max-lifetime') || '24h', 60);
  const startupTimeoutSeconds = duration('startup-timeout', input('startup-timeout') || '15m', 5);
  const group = parseGroup(input('runner-group'));
  const allowPartial = bool('allow-partial', input('allow-partial') || 'false');
  const reuseOnline = bool('reuse', input('reuse') || 'false');
  const reuseIdle = bool('reuse-idle', input('reuse-idle') || 'false');
  const reuse = reuseIdle ? ('idle' as const) : reuseOnline ? ('online' as const) : undefined;
  const version = input('runner-version') || 'latest';
  const sudo = bool('sudo', input('sudo') || 'false');
  const cache = input('runner-cache') || undefined;
  if (cache !== undefined && !/^\/[A-Za-z0-9._/-]*$/.test(cache)) {
    throw new InputError(
      'runner-cache',
      cache,
      'use an absolute path on the machine image, such as /opt/actions-runner, of letters, digits, dots, dashes, ' +
        'underscores and slashes',
    );
  }
  if (version !== 'latest' && !/^\d+\.\d+\.\d+$/.test(version)) {
    throw new InputError('runner-version', version, "use 'latest' or a version such as 2.330.0");
  }
  return {
    labels,
    names,
    single,
    idleTimeoutSeconds,
    maxLifetimeSeconds,
    startupTimeoutSeconds,
    group,
    version,
    allowPartial,
    sudo,
    ...(cache ? { cache } : {}),
    ...(reuse ? { reuse } : {}),
  };
}

/** Labels every runner gets from the action itself: asking for them would match any runner. */
const DEFAULT_LABELS = ['self-hosted', 'linux', 'x64', 'arm64', 'arm', 'windows', 'macos'];

/** GitHub labels: no commas (config.sh splits on them), no hidden characters, at most 256 characters. */
function parseLabels(value: string): string[] {
  if (!value) {
    throw new InputError('labels', value, "give at least one label, such as cml-gpu (leave the input out for 'cml')");
  }
  const labels = value.split(',').map((l) => l.trim());
  for (const label of labels) {
    if (!label || label.length > 256 || HIDDEN_CHARACTERS.test(label)) {
      throw new InputError(
        'labels',
        visible(value),
        'use a comma-separated list of non-empty labels without control or invisible format characters, ' +
          'each at most 256 characters',
      );
    }
    if (DEFAULT_LABELS.includes(label.toLowerCase())) {
      throw new InputError(
        'labels',
        value,
        `leave out ${label}: the action gives every runner self-hosted, the OS and the architecture itself ` +
          `(reserved: ${DEFAULT_LABELS.join(', ')}); use labels of your own`,
      );
    }
  }
  if (new Set(labels.map((l) => l.toLowerCase())).size !== labels.length) {
    throw new InputError('labels', value, 'each label only once (GitHub labels are case-insensitive)');
  }
  return labels;
}

/** Runner names become tag values, file names and `--name` values: keep them plain. */
function parseNames(value: string, count: number, random: () => string): string[] {
  if (!value) return Array.from({ length: count }, () => `cml-${random()}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,54}$/.test(value)) {
    throw new InputError(
      'name',
      value,
      'use 1 to 55 letters, digits, dots, dashes or underscores, starting with a letter or digit',
    );
  }
  return count === 1 ? [value] : Array.from({ length: count }, (_, i) => `${value}-${i + 1}`);
}

function parseGroup(value: string): number | string | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  if (value.length > 128 || HIDDEN_CHARACTERS.test(value)) {
    throw new InputError(
      'runner-group',
      visible(value),
      'use a runner group name (at most 128 characters, no control or invisible format characters) or numeric id',
    );
  }
  return value;
}

function randomSuffix(): string {
  return crypto.randomUUID().replace(/-/g, '').slice(0, 10);
}
