import type http from 'node:http';
/**
 * Faults the fakes inject on request: a throttle, a 5xx, a capacity error, a slow answer.
 * A fault matches one service and, optionally, one action (EC2 `Action`, SSM target,
 * `METHOD /path-regex` for the fake GitHub, `VERB resource` for Kubernetes: `create jobs`,
 * `get pods/log`, or `method scope-regex` for GCE: `instances.insert us-central1-a`,
 * `instances.insert .*`, `sts.token global`, or `resource.verb location` for Azure:
 * `virtualMachines.createOrUpdate eastus`, `resourceGroups.delete global`, `oauth2.token global`).
 * Each fault fires `times` times (default 1).
 */
export type Service = 'ec2' | 'ssm' | 'github' | 'kubernetes' | 'gce' | 'azure';

export interface Fault {
  service: Service;
  /** EC2 Action (`RunInstances`), SSM operation (`GetParameter`), GitHub `POST /repos/.+/generate-jitconfig`, Kubernetes `create jobs`, or GCE `instances.insert .*`. */
  action?: string;
  /** Cloud error code to answer with, e.g. `InsufficientInstanceCapacity`, `RequestLimitExceeded`, or a Kubernetes Status reason (`TooManyRequests`). */
  code?: string;
  /** HTTP status to answer with; each fake has a sensible default per code. */
  status?: number;
  message?: string;
  /** How many matching requests the fault answers. `Infinity` for every one. */
  times?: number;
  /** Delay the answer (the real one, or the error) by this many milliseconds. */
  delayMs?: number;
  /** Seconds sent in a `Retry-After` header. */
  retryAfter?: number;
  /**
   * The connection is reset: `before` the fake acts (nothing happened), or `after` it acted and
   * before the answer (the create happened, but the client never hears of it).
   */
  reset?: 'before' | 'after';
}

interface Armed extends Fault {
  left: number;
  fired: number;
}

export class FaultPlan {
  private faults: Armed[] = [];
  private firedLog: Array<{ service: Service; action: string; code?: string }> = [];

  add(fault: Fault): void {
    this.faults.push({ ...fault, left: fault.times ?? 1, fired: 0 });
  }

  clear(): void {
    this.faults = [];
  }

  /** What fired so far, oldest first. */
  get fired(): ReadonlyArray<{ service: Service; action: string; code?: string }> {
    return this.firedLog;
  }

  /** The fault that answers this request, if any; consumes one of its uses. */
  take(service: Service, action: string): Fault | undefined {
    const hit = this.faults.find((f) => f.service === service && f.left > 0 && matches(f.action, action));
    if (!hit) return undefined;
    hit.left -= 1;
    hit.fired += 1;
    this.firedLog.push({ service, action, code: hit.code });
    return hit;
  }
}

function matches(pattern: string | undefined, action: string): boolean {
  if (pattern === undefined) return true;
  if (pattern === action) return true;
  // GitHub faults are `METHOD /path-regex`; the action they are matched with is `METHOD /path`.
  const space = pattern.indexOf(' ');
  if (space > 0 && action.startsWith(pattern.slice(0, space + 1))) {
    return new RegExp(`^${pattern.slice(space + 1)}$`).test(action.slice(space + 1));
  }
  return false;
}

/**
 * Applies a fault's connection reset. `before`: the socket is destroyed now and the caller must
 * stop (returns true). `after`: the request is handled, but whatever answer is written is
 * replaced by a reset connection.
 */
export function applyReset(fault: Fault | undefined, res: http.ServerResponse): boolean {
  if (fault?.reset === 'before') {
    res.socket?.destroy();
    return true;
  }
  if (fault?.reset === 'after') {
    const drop = (): http.ServerResponse => {
      res.socket?.destroy();
      return res;
    };
    res.writeHead = drop as unknown as typeof res.writeHead;
    res.end = drop as unknown as typeof res.end;
    res.write = (() => true) as unknown as typeof res.write;
  }
  return false;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
