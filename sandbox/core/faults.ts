import type http from 'node:http';

/**
 * Faults the fakes inject on request: a throttle, a 5xx, a capacity error, a slow answer, a reset
 * connection. A fault matches one service and, optionally, one action, and the request's own
 * parameters (`where`: one instance type, one zone). Actions are named by each fake:
 * - EC2: the Action (`RunInstances`); SSM: the operation (`GetParameter`).
 * - GitHub: `METHOD /path-regex` (`POST /repos/.+/generate-jitconfig`).
 * - Kubernetes: `VERB resource` (`create jobs`, `get pods/log`).
 * - Compute Engine: `method scope-regex` (`instances.insert us-central1-a`, `instances.insert .*`).
 * - Azure: `resource.verb location` (`virtualMachines.createOrUpdate eastus`, `oauth2.token global`).
 * Each fault fires `times` times (default 1). A test that adds a fault expects it to fire:
 * `unfired()` lists the ones that never did, and the tests' `useSandbox()` fails on them.
 */
export type Service = 'ec2' | 'ssm' | 'github' | 'kubernetes' | 'gce' | 'azure';

export interface Fault {
  service: Service;
  /** The action, as above. Undefined matches every action of the service. */
  action?: string;
  /**
   * Request parameters that must match, as the fake names them in its call log's `params`. A
   * string matches exactly; a RegExp by test. Each fake documents its own names:
   * - EC2: `InstanceType`, `SubnetId`, `Spot`, `ImageId`, `InstanceId`.
   * - Compute Engine: `zone`, `instance`, `operation`; on instances.insert `name`, `machineType` (short
   *   name), `spot`, `acceleratorType`; `project` on images; `serviceAccount` on IAM Credentials.
   * - Azure: `vmSize`, `priority`, `resourceGroup`, `name`, `location`; Entra `clientId`.
   * - GitHub: `name` (a JIT runner's, or the runners list's filter), `id` (a runner's).
   * - Kubernetes: `name` (from the path, or a created object's), `namespace`.
   */
  where?: Readonly<Record<string, string | RegExp>>;
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

export interface FiredFault {
  service: Service;
  action: string;
  code?: string;
  params?: Readonly<Record<string, string>>;
}

interface Armed extends Fault {
  left: number;
  fired: number;
}

export class FaultPlan {
  private faults: Armed[] = [];
  private firedLog: FiredFault[] = [];

  add(fault: Fault): void {
    this.faults.push({ ...fault, left: fault.times ?? 1, fired: 0 });
  }

  /** Forgets every armed fault and what fired. */
  clear(): void {
    this.faults = [];
    this.firedLog = [];
  }

  /** What fired so far, oldest first. */
  get fired(): readonly FiredFault[] {
    return this.firedLog;
  }

  /** Faults added that never matched a request: a test that adds one expects it to fire. */
  unfired(): Fault[] {
    return this.faults.filter((f) => f.fired === 0).map(({ left: _left, fired: _fired, ...fault }) => fault);
  }

  /** The fault that answers this request, if any; consumes one of its uses. */
  take(service: Service, action: string, params: Readonly<Record<string, string>> = {}): Fault | undefined {
    const hit = this.faults.find(
      (f) => f.service === service && f.left > 0 && matchesAction(f.action, action) && matchesParams(f.where, params),
    );
    if (!hit) return undefined;
    hit.left -= 1;
    hit.fired += 1;
    this.firedLog.push({ service, action, ...(hit.code ? { code: hit.code } : {}), params });
    return hit;
  }
}

function matchesAction(pattern: string | undefined, action: string): boolean {
  if (pattern === undefined || pattern === action) return true;
  // `VERB rest-regex`: the first word exactly, the rest as a regular expression.
  const space = pattern.indexOf(' ');
  if (space > 0 && action.startsWith(pattern.slice(0, space + 1))) {
    return new RegExp(`^${pattern.slice(space + 1)}$`).test(action.slice(space + 1));
  }
  return false;
}

function matchesParams(where: Fault['where'], params: Readonly<Record<string, string>>): boolean {
  if (!where) return true;
  return Object.entries(where).every(([key, want]) => {
    const got = params[key];
    if (got === undefined) return false;
    return typeof want === 'string' ? got === want : want.test(got);
  });
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
