import type http from 'node:http';
import { type Fault, type FaultPlan, type Service, applyReset } from './faults.js';
import { sleep } from './timers.js';

/**
 * The one request pipeline every fake serves through, in this order:
 *
 *   latency → identify (which action, with which parameters) → authenticate → authorise
 *   → fault (its delay, a reset before, or its error) → the fake's own handler
 *   → a reset after (the work is done, the answer is lost) → the call log
 *
 * Each fake supplies only what is its own: how it names a request, who the caller is and what
 * they may do, its error shapes, and its handler. A fault therefore never answers a request that
 * the service would have refused for its credentials, and every answer, fault or not, is logged
 * with the parameters faults match on.
 */

/** What a fake answers: status, body and headers, and the service's error code when it failed. */
export interface Answer {
  status: number;
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** The service's error code (`InsufficientInstanceCapacity`, `QUOTA_EXCEEDED`), for the call log. */
  code?: string;
  /** Writes the answer itself instead (a watch stream, a download); `status` is still logged. */
  write?: (res: http.ServerResponse) => void | Promise<void>;
}

/** A request as the fake named it. */
export interface Identified {
  /** The action faults and the call log name it by (see core/faults.ts). */
  action: string;
  /** Parameters faults may match on, and the call log records. */
  params?: Record<string, string>;
}

/** One request, as every fake logs it. Fakes may add their own fields. */
export interface CallRecord {
  service: Service;
  action: string;
  status: number;
  /** The service's error code for a failed call. */
  code?: string;
  /** Who called, when known: an access key, an app, a service account, a token's name. */
  identity?: string;
  params?: Record<string, string>;
  /** Set when an injected fault answered or shaped this call. */
  fault?: string;
  at: number;
  ms: number;
}

export interface Pipeline<R extends Identified, W> {
  service: Service;
  faults: FaultPlan;
  latencyMs?: number;
  /** Names the request. Throws (as `errorAnswer` understands) for one the service cannot parse. */
  identify(req: http.IncomingMessage, body: Buffer, url: URL): R | Promise<R>;
  /** Who is calling. Throws the service's own 401 for missing or bad credentials. */
  authenticate(req: http.IncomingMessage, body: Buffer, request: R): W | Promise<W>;
  /** Throws the service's own 403 unless `who` may do `request`. */
  authorize?(who: W, request: R): void | Promise<void>;
  /** For the call log: how to name the caller. */
  identityOf?(who: W): string | undefined;
  /**
   * The service's error for an injected fault, thrown as its handler would throw it; `undefined`
   * hands the fault to `handle` instead (an error that the service reports later, inside an
   * asynchronous operation).
   */
  faultError(fault: Fault, request: R): unknown;
  handle(request: R, who: W, fault: Fault | undefined): Answer | Promise<Answer>;
  /** The service's answer for an error thrown by any step; rethrow what is not the service's own. */
  errorAnswer(err: unknown, request: R | undefined): Answer;
  /** Receives each finished call (the fake's call log). */
  record(call: CallRecord, request: R | undefined, who: W | undefined): void;
}

/** The request handler for `serve()` that runs a fake's steps in the pipeline's order. */
export function pipeline<R extends Identified, W>(
  p: Pipeline<R, W>,
): (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => Promise<void> {
  return async (req, body, res) => {
    const at = Date.now();
    const url = new URL(req.url ?? '/', 'http://fake');
    let request: R | undefined;
    let who: W | undefined;
    let fault: Fault | undefined;
    let answer: Answer;
    if (p.latencyMs) await sleep(p.latencyMs);
    try {
      request = await p.identify(req, body, url);
      who = await p.authenticate(req, body, request);
      await p.authorize?.(who, request);
      fault = p.faults.take(p.service, request.action, request.params ?? {});
      if (fault?.delayMs) await sleep(fault.delayMs);
      if (applyReset(fault, res) || res.destroyed) {
        log(p, { request, who, fault, at, status: 0 });
        return;
      }
      const error =
        fault && (fault.code !== undefined || fault.status !== undefined) ? p.faultError(fault, request) : undefined;
      if (error !== undefined) throw error;
      answer = await p.handle(request, who, fault);
    } catch (err) {
      answer = p.errorAnswer(err, request);
    }
    // A reset after the work: the answer is replaced by a dropped connection (see applyReset).
    if (answer.write) await answer.write(res);
    else {
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    }
    log(p, { request, who, fault, at, status: fault?.reset === 'after' ? 0 : answer.status, code: answer.code });
  };
}

function log<R extends Identified, W>(
  p: Pipeline<R, W>,
  c: {
    request: R | undefined;
    who: W | undefined;
    fault: Fault | undefined;
    at: number;
    status: number;
    code?: string;
  },
): void {
  const identity = c.who !== undefined ? p.identityOf?.(c.who) : undefined;
  p.record(
    {
      service: p.service,
      action: c.request?.action ?? '(unparsed)',
      status: c.status,
      ...(c.code ? { code: c.code } : {}),
      ...(identity ? { identity } : {}),
      ...(c.request?.params ? { params: c.request.params } : {}),
      ...(c.fault ? { fault: c.fault.code ?? c.fault.reset ?? `delay ${c.fault.delayMs}ms` } : {}),
      at: c.at,
      ms: Date.now() - c.at,
    },
    c.request,
    c.who,
  );
}
