/**
 * The fakes' timers: a service's asynchronous work (an operation that completes later, a machine
 * that stops after a delay) runs through one of these, so closing the sandbox cancels all of it
 * and nothing fires into a closed fake.
 */
export class Timers {
  private readonly pending = new Set<NodeJS.Timeout>();
  private closed = false;

  /** Runs `fn` after `ms`, unless the fake closed first. The timer does not keep the process alive. */
  later(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(
      () => {
        this.pending.delete(timer);
        if (!this.closed) fn();
      },
      Math.max(0, ms),
    );
    timer.unref();
    this.pending.add(timer);
    return timer;
  }

  cancel(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.pending.delete(timer);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Cancels every pending timer; later calls to `later` do nothing. */
  close(): void {
    this.closed = true;
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
  }
}

/** Waits `ms` (a fake's latency, a fault's delay); not tied to a fake's life. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
