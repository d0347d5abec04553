/**
 * The logging the core needs. The action maps it onto @actions/core; tests and the CLI can
 * pass their own. Secrets registered with `secret` are masked wherever the sink supports it.
 */
export interface Log {
  /** Detail for someone debugging a launch; the action sends it to step debug logging (ACTIONS_STEP_DEBUG). */
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  secret(value: string): void;
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** Replaces every known secret in a text; for logs we fetch from machines. */
export function maskSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 4) out = out.split(s).join('***');
  }
  return out;
}

export const silentLog: Log = {
  debug: () => undefined,
  info: () => undefined,
  warning: () => undefined,
  secret: () => undefined,
  group: (_name, fn) => fn(),
};
