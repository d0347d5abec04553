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
 * What a refusal means for the caller. Each cloud module and the forge classify their own
 * services' errors into these; the retry layer and the lifecycle act on the kind only.
 * - `transient`: a throttle, a 5xx, a reset or timed-out connection; the same call may succeed.
 * - `permanent`: a permission, a bad parameter or bad credentials; fails at once, everywhere.
 * - `gone`: the thing does not exist (any more); ending it counts as done.
 * - `capacity`: none of this type in this place now; the launch tries the next placement.
 * - `market`: spot is refused (at this price); the launch tries on-demand when allowed.
 * - `quota`: an account limit; it would be refused everywhere, so the launch fails at once, naming it.
 */
export type ErrorKind = 'transient' | 'permanent' | 'gone' | 'capacity' | 'market' | 'quota';

/** The kinds that let a launch try elsewhere instead of failing. */
export const isFallback = (kind: ErrorKind): kind is 'capacity' | 'market' => kind === 'capacity' || kind === 'market';

/** A cloud refused: the cloud's own code, passed through verbatim, with what the user can do. */
export class CloudError extends Error {
  constructor(
    readonly cloud: string,
    readonly code: string,
    detail: string,
    readonly advice: string,
    readonly kind: ErrorKind,
  ) {
    super(`${cloud} refused with ${code}: ${detail}${advice ? `\n${advice}` : ''}`);
    this.name = 'CloudError';
  }
}

/**
 * The forge (GitHub) refused: status, its message, and which permission is needed. `attempts`
 * counts the requests sent for the call, the failed one included.
 */
export class ForgeError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly attempts = 1,
    readonly kind: ErrorKind = forgeKind(status),
  ) {
    super(message);
    this.name = 'ForgeError';
  }
}

/**
 * No answer, a timeout, 408 or a 5xx is worth another try; 404 is gone; the rest is final. A rate
 * limit (403 or 429) has been waited out by the client's throttling already when it gets here.
 */
function forgeKind(status: number | undefined): ErrorKind {
  if (status === undefined || status === 408 || status >= 500) return 'transient';
  if (status === 404) return 'gone';
  return 'permanent';
}

/** A runner did not come online in time; carries the machine's own log tail. */
export class StartupTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupTimeoutError';
  }
}

/** The kind an error carries; anything we did not classify is not retried. */
export function errorKind(err: unknown): ErrorKind {
  if (err instanceof CloudError || err instanceof ForgeError) return err.kind;
  return 'permanent';
}

export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
