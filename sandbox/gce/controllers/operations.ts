/**
 * Zone operations: what instances.insert and instances.delete answer at once. An operation is
 * PENDING, then RUNNING, then DONE, with an `error` when the work failed later (a stockout);
 * `zoneOperations.wait` answers when it is DONE or when the request nears its two-minute deadline,
 * possibly still not DONE (https://cloud.google.com/compute/docs/reference/rest/v1/zoneOperations/wait);
 * here that deadline is WAIT_MAX_MS.
 */
import crypto from 'node:crypto';
import { type GceStore, type J, type OpError, type OpRecord, gceTime, numericId, zoneLink } from '../store.js';

const WAIT_MAX_MS = 2000;

const HTTP_STATUS_TEXT: Record<number, string> = {
  400: 'BAD REQUEST',
  403: 'FORBIDDEN',
  404: 'NOT FOUND',
  409: 'CONFLICT',
  429: 'TOO MANY REQUESTS',
  500: 'INTERNAL SERVER ERROR',
  503: 'SERVICE UNAVAILABLE',
};

export function newOp(
  store: GceStore,
  zone: string,
  type: OpRecord['operationType'],
  target: { link: string; id: string },
  user: string,
): OpRecord {
  const now = Date.now();
  const hex = (n: number): string => crypto.randomBytes(n).toString('hex');
  const op: OpRecord = {
    id: numericId(),
    name: `operation-${now}-${hex(7).slice(0, 13)}-${hex(4)}-${hex(4)}`,
    zone,
    operationType: type,
    targetLink: target.link,
    targetId: target.id,
    status: 'PENDING',
    user,
    progress: 0,
    insertTime: new Date(now),
    waiters: new Set(),
  };
  store.ops.set(`${zone}/${op.name}`, op);
  store.timers.later(Math.min(10, store.bootDelayMs), () => startOp(op));
  return op;
}

function startOp(op: OpRecord): void {
  if (op.status !== 'PENDING') return;
  op.status = 'RUNNING';
  op.startTime = new Date();
  notify(op);
}

export function finishOp(op: OpRecord, error?: OpError): void {
  if (op.status === 'DONE') return;
  if (op.status === 'PENDING') op.startTime = new Date();
  op.status = 'DONE';
  op.progress = 100;
  op.endTime = new Date();
  if (error) {
    const item = {
      code: error.code,
      message: error.message,
      ...(error.errorDetails ? { errorDetails: error.errorDetails } : {}),
    };
    op.error = { errors: [item] };
    op.httpErrorStatusCode = error.http;
    op.httpErrorMessage = HTTP_STATUS_TEXT[error.http] ?? 'ERROR';
  }
  notify(op);
}

function notify(op: OpRecord): void {
  for (const w of [...op.waiters]) w();
}

export function opJson(op: OpRecord): J {
  return {
    kind: 'compute#operation',
    id: op.id,
    name: op.name,
    zone: zoneLink(op.zone),
    operationType: op.operationType,
    targetLink: op.targetLink,
    targetId: op.targetId,
    status: op.status,
    user: op.user,
    progress: op.progress,
    insertTime: gceTime(op.insertTime),
    ...(op.startTime ? { startTime: gceTime(op.startTime) } : {}),
    ...(op.endTime ? { endTime: gceTime(op.endTime) } : {}),
    ...(op.error
      ? { error: op.error, httpErrorStatusCode: op.httpErrorStatusCode, httpErrorMessage: op.httpErrorMessage }
      : {}),
    selfLink: `${zoneLink(op.zone)}/operations/${op.name}`,
  };
}

/** `zoneOperations.get`. */
export function getOperation(store: GceStore, zone: string, name: string): J {
  return opJson(store.findOp(zone, name));
}

/** `zoneOperations.wait`: answers once the operation is DONE, or after WAIT_MAX_MS as it is. */
export async function waitOperation(store: GceStore, zone: string, name: string): Promise<J> {
  const op = store.findOp(zone, name);
  if (op.status !== 'DONE') {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        if (op.status !== 'DONE' && !store.closed) return;
        store.timers.cancel(timer);
        op.waiters.delete(done);
        resolve();
      };
      const timer = store.timers.later(WAIT_MAX_MS, () => {
        op.waiters.delete(done);
        resolve();
      });
      op.waiters.add(done);
    });
  }
  return opJson(op);
}
