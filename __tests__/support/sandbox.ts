import type { FaultPlan } from '../../sandbox/core/faults.js';
import { type Sandbox, type SandboxOptions, startSandbox } from '../../sandbox/index.js';

/**
 * One sandbox per suite. After each test it asserts what every test owes: the sandbox holds
 * nothing (no machine, resource or registration left; waited for up to `settleMs` while machines
 * end themselves), and every fault the test added fired at least once (a fault that never
 * matches would otherwise pass silently). Then the fault plan is cleared for the next test.
 */
export function useSandbox(opts: SandboxOptions & { settleMs?: number } = {}): () => Sandbox {
  let sb: Sandbox | undefined;
  const { settleMs = 20_000, ...options } = opts;
  beforeAll(async () => {
    sb = await startSandbox(options);
  });
  afterEach(async () => {
    if (!sb) return;
    const unfired = sb.faults.unfired();
    sb.faults.clear();
    const left = await settle(sb, settleMs);
    const problems = [
      ...left.map((l) => `left behind: ${l}`),
      ...unfired.map(
        (f) => `a fault never fired: ${JSON.stringify(f, (_k, v) => (v instanceof RegExp ? String(v) : v))}`,
      ),
    ];
    if (problems.length > 0) throw new Error(`After this test:\n- ${problems.join('\n- ')}`);
  });
  afterAll(async () => {
    await sb?.close();
  });
  return () => {
    if (!sb) throw new Error('the sandbox is started in beforeAll; use it inside a test');
    return sb;
  };
}

/** Waits until the sandbox holds nothing, or returns what is left after `ms`. */
export async function settle(sb: Sandbox, ms = 20_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = await sb.leftovers();
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * For suites that drive one fake with a fault plan of their own: what to assert after each test,
 * that every fault the test added fired. Read it before the plan is cleared.
 */
export function unfiredFaults(plan: FaultPlan): string[] {
  return plan.unfired().map((f) => JSON.stringify(f, (_k, v) => (v instanceof RegExp ? String(v) : v)));
}
