import type { ManagedMachine, MachineState } from './types.js';

/**
 * The tags every machine of ours carries (and, on clouds that tag them, its disks and
 * interfaces). Cleanup and sweep find machines by them alone, so every cloud reads and writes
 * them through this file.
 */
export const TAG = {
  managed: 'cml-runner:managed',
  repo: 'cml-runner:repo',
  runId: 'cml-runner:run-id',
  runner: 'cml-runner:runner',
  expiresAt: 'cml-runner:expires-at',
  /** The create's idempotency key, for a create whose answer never arrived. */
  clientToken: 'cml-runner:client-token',
  /** When the machine was created, on clouds that do not say so themselves. */
  createdAt: 'cml-runner:created-at',
} as const;

/** A machine of ours, read back from its tags; the fields a cloud knows itself are passed in. */
export function managedFromTags(
  id: string,
  tags: Readonly<Record<string, string | undefined>>,
  known: { state: MachineState; createdAt?: number },
): ManagedMachine {
  const expires = Date.parse(tags[TAG.expiresAt] ?? '');
  const created = known.createdAt ?? Date.parse(tags[TAG.createdAt] ?? '');
  return {
    id,
    runnerName: tags[TAG.runner] ?? tags.Name ?? '',
    ...(tags[TAG.runId] !== undefined ? { runId: tags[TAG.runId] } : {}),
    ...(tags[TAG.repo] !== undefined ? { repo: tags[TAG.repo] } : {}),
    ...(Number.isFinite(expires) ? { expiresAt: expires } : {}),
    ...(Number.isFinite(created) ? { createdAt: created } : {}),
    state: known.state,
  };
}
