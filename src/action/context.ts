import { context } from '@actions/github';
import type { RunContext } from '../config.js';

/**
 * The workflow run, from the variables every Actions runner sets (GHES included), and the
 * process environment, read here once and passed down: nothing else under src/ reads it.
 */
export function runContext(): RunContext {
  const env: Record<string, string | undefined> = { ...process.env };
  return {
    repository: repository(),
    runId: env.GITHUB_RUN_ID ? String(context.runId) : 'local',
    serverUrl: context.serverUrl,
    apiUrl: context.apiUrl,
    env,
  };
}

/** `owner/repo`; empty outside a workflow run (no GITHUB_REPOSITORY and no event payload). */
function repository(): string {
  try {
    return `${context.repo.owner}/${context.repo.repo}`;
  } catch {
    return '';
  }
}
