/** A bad input: names the input, the value and what is accepted. Raised before anything is created. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    readonly value: string,
    readonly accepted: string,
  ) {
    super(`Input '${input}' has an invalid value ${JSON.stringify(value)}: ${accepted}.`);
    this.name = 'InputError';
  }
}

/**
 * Whether a refusal lets the launch try elsewhere: `capacity` (none of this type in this zone
 * now: try the next type or zone), `market` (spot is refused at this price: try on-demand when
 * on-demand-fallback allows). A quota, a permission or a bad parameter is neither: it would be
 * refused everywhere, so the launch fails at once.
 */
export type Fallback = 'capacity' | 'market';

/** A cloud refused: the cloud's own code, passed through verbatim, with what the user can do. */
export class CloudError extends Error {
  constructor(
    readonly cloud: string,
    readonly code: string,
    detail: string,
    readonly advice: string,
    readonly fallback?: Fallback,
  ) {
    super(`${cloud} refused with ${code}: ${detail}${advice ? `\n${advice}` : ''}`);
    this.name = 'CloudError';
  }
}

/** The forge (GitHub) refused: status, its message, and which permission is needed. */
export class ForgeError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ForgeError';
  }
}

/** A runner did not come online in time; carries the machine's own log tail. */
export class StartupTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupTimeoutError';
  }
}

export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
