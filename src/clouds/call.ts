import { CloudError, errorKind, errorMessage } from '../errors.js';
import { retry } from '../retry.js';
import type { CloudContext } from './types.js';

/**
 * The one retry layer of the providers. Each SDK's own retries are off; every call a provider
 * makes goes through `cloudCall`, which turns what the SDK threw into the cloud's CloudError
 * (its errors.ts decides the kind) and retries only a `transient` one, with the context's clock
 * and cancel signal. The same request is sent again, so a create retried after a lost answer
 * carries the same client token or request id and makes one machine.
 */
export interface CallPolicy {
  /** Turns whatever the SDK threw into the cloud's CloudError. */
  translate(err: unknown, action: string): CloudError;
  /** A wait the service asked for (Retry-After), read from the SDK's own error, in ms. */
  retryAfterMs?(err: unknown): number | undefined;
  /** Attempts in all (5 unless given), the first wait, and the longest wait. */
  attempts?: number;
  baseMs?: number;
  maxMs?: number;
}

/** The Retry-After hint of each translated error, kept apart so CloudError stays as it is. */
const hints = new WeakMap<CloudError, number>();

export function cloudCall<T>(ctx: CloudContext, policy: CallPolicy, action: string, fn: () => Promise<T>): Promise<T> {
  return retry(
    async () => {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof CloudError) throw err;
        const translated = policy.translate(err, action);
        const hint = policy.retryAfterMs?.(err);
        if (hint !== undefined) hints.set(translated, hint);
        throw translated;
      }
    },
    {
      attempts: policy.attempts ?? 5,
      baseMs: policy.baseMs ?? 500,
      maxMs: policy.maxMs ?? 20_000,
      clock: ctx.clock,
      signal: ctx.signal,
      classify: errorKind,
      retryAfterMs: (err) => (err instanceof CloudError ? hints.get(err) : undefined),
      onRetry: (err, attempt, waitMs) =>
        ctx.log.debug(
          `${action}: ${errorMessage(err).split('\n')[0]}; attempt ${attempt + 1} in ${Math.round(waitMs)} ms`,
        ),
    },
  );
}

/**
 * Ends something, where "the cloud does not know it" counts as ended: the machine ended itself,
 * was preempted, or another cleanup got there first. The one place that reads `gone` so.
 */
export async function endedOrGone(
  end: () => Promise<'terminated' | 'gone'> | Promise<void>,
): Promise<'terminated' | 'gone'> {
  try {
    return (await end()) ?? 'terminated';
  } catch (err) {
    if (errorKind(err) === 'gone') return 'gone';
    throw err;
  }
}

/** A Retry-After header (seconds, or an HTTP date) as milliseconds from `now`. */
export function retryAfterHeader(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** Errors of the connection itself (nothing answered): worth another try. */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; name?: string; message?: string; cause?: { code?: unknown; message?: string } };
  const code = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : '';
  if (
    /^(ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|UND_ERR_SOCKET|UND_ERR_CONNECT_TIMEOUT)$/.test(code)
  ) {
    return true;
  }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return true;
  return /socket hang up|ECONNRESET|other side closed|fetch failed|network|timed? ?out/i.test(
    `${e.message ?? ''} ${e.cause?.message ?? ''}`,
  );
}
