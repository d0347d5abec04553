import { type ErrorKind, errorKind } from './errors.js';

/**
 * The one retry layer. Every remote call (a cloud SDK call, a GitHub request) is retried here and
 * nowhere else: the SDKs' own retries are turned off, and the lifecycle never retries a call
 * itself. Only a `transient` error is retried; the clock and the cancel signal are passed through,
 * so a cancel ends a wait at once and tests can replace time.
 */

export interface Clock {
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** What a client needs to retry its calls: time, and the launch's cancel signal. */
export interface RetryContext {
  clock: Clock;
  signal?: AbortSignal;
}

export interface RetryOptions extends RetryContext {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The first wait; each later wait doubles, with full jitter, up to `maxMs`. */
  baseMs: number;
  maxMs?: number;
  /** How the caller's cloud or forge classifies a failure; defaults to the error's own `kind`. */
  classify?: (err: unknown) => ErrorKind;
  /** A wait the service asked for (Retry-After), in ms; it replaces the backoff when longer. */
  retryAfterMs?: (err: unknown) => number | undefined;
  /** Told before each wait, for a progress line. */
  onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
}

/** Calls `fn` until it succeeds, fails with a kind other than `transient`, or runs out of attempts. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const classify = opts.classify ?? errorKind;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || classify(err) !== 'transient' || opts.signal?.aborted) throw err;
      const ceiling = Math.min(opts.baseMs * 2 ** (attempt - 1), opts.maxMs ?? Number.POSITIVE_INFINITY);
      const wait = Math.max(ceiling / 2 + Math.random() * (ceiling / 2), opts.retryAfterMs?.(err) ?? 0);
      opts.onRetry?.(err, attempt, wait);
      await opts.clock.sleep(wait, opts.signal);
    }
  }
}

/** Runs `fn` over `items` with at most `limit` running at once; settles all before returning. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i]!, i) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
