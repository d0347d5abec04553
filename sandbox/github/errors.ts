/**
 * GitHub's REST error shapes: `basic-error` (`message`, `documentation_url`, `status`) and
 * `validation-error-simple` (with `errors`), and the answers an injected fault takes.
 */
import type { Fault } from '../core/index.js';

export const DOCS = 'https://docs.github.com/rest/actions/self-hosted-runners';

/** A REST error as GitHub answers it; `headers` are added to the answer's own. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const notFound = (): HttpError => new HttpError(404, 'Not Found');

export function errorBody(
  status: number,
  message: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    message,
    ...extra,
    documentation_url: (extra.documentation_url as string | undefined) ?? DOCS,
    status: String(status),
  };
}

/**
 * The error an injected fault answers with (default 500). A 403 or 429 is a rate limit, as
 * GitHub words it: secondary when it carries a Retry-After (or is a 429), primary otherwise,
 * with `x-ratelimit-remaining: 0` and the reset time.
 * https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
 */
export function faultError(fault: Fault, rateLimit: number): HttpError {
  const status = fault.status ?? 500;
  const extra: Record<string, string> = {};
  if (fault.retryAfter !== undefined) extra['retry-after'] = String(fault.retryAfter);
  let msg = fault.message;
  if (status === 403 || status === 429) {
    if (fault.retryAfter !== undefined || status === 429) {
      msg ??= 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.';
    } else {
      msg ??= 'API rate limit exceeded for user ID 1.';
      extra['x-ratelimit-remaining'] = '0';
      extra['x-ratelimit-used'] = String(rateLimit);
      extra['x-ratelimit-reset'] = String(Math.floor(Date.now() / 1000) + 1);
    }
  }
  msg ??= status >= 500 ? (status === 503 ? 'Service Unavailable' : 'Server Error') : 'Injected fault';
  return new HttpError(status, msg, {}, extra);
}
