/**
 * What GitHub checks before it acts: the `X-GitHub-Api-Version` header, JSON bodies, the
 * generate-jitconfig body (as the REST description's schema: required keys, types, 1 to 100
 * labels, no other keys), and paging parameters.
 */
import { DOCS, HttpError } from './errors.js';

export const API_VERSIONS = ['2026-03-10', '2022-11-28'] as const;

/** The API version a request selects; an unknown one is refused with 400, as GitHub does. */
export function apiVersion(requested: string | undefined): string {
  if (requested === undefined) return '2022-11-28';
  if (!(API_VERSIONS as readonly string[]).includes(requested)) {
    throw new HttpError(
      400,
      `The version you specified in the "X-GitHub-Api-Version" request header, "${requested}", is not a supported version. ` +
        `The following versions are currently supported: ${API_VERSIONS.map((v, i) => `"${v}"${i === 0 ? ' (most recent)' : ''}`).join(', ')}.`,
      { documentation_url: 'https://docs.github.com/rest/about-the-rest-api/api-versions' },
    );
  }
  return requested;
}

export function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'Problems parsing JSON', {
      documentation_url: `${DOCS}#create-configuration-for-a-just-in-time-runner-for-an-organization`,
    });
  }
}

export interface JitRequest {
  name: string;
  runner_group_id: number;
  labels: string[];
  work_folder?: string;
}

const describe = (v: unknown): string => JSON.stringify(v);

/** The generate-jitconfig body, or 422 Validation Failed with every error GitHub would list. */
export function validateJitBody(body: unknown, docs: string): JitRequest {
  const errors: string[] = [];
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    errors.push(`${describe(body)} is not an object.`);
  } else {
    const b = body as Record<string, unknown>;
    for (const k of ['name', 'runner_group_id', 'labels']) if (!(k in b)) errors.push(`"${k}" wasn't supplied.`);
    if ('name' in b && (typeof b.name !== 'string' || b.name.trim() === ''))
      errors.push(`For 'properties/name', ${describe(b.name)} is not a non-empty string.`);
    if ('runner_group_id' in b && !Number.isInteger(b.runner_group_id))
      errors.push(`For 'properties/runner_group_id', ${describe(b.runner_group_id)} is not an integer.`);
    if ('labels' in b) errors.push(...labelErrors(b.labels));
    if ('work_folder' in b && typeof b.work_folder !== 'string')
      errors.push(`For 'properties/work_folder', ${describe(b.work_folder)} is not a string.`);
    const allowed = new Set(['name', 'runner_group_id', 'labels', 'work_folder']);
    for (const k of Object.keys(b)) if (!allowed.has(k)) errors.push(`"${k}" is not a permitted key.`);
  }
  if (errors.length) throw new HttpError(422, 'Validation Failed', { errors, documentation_url: docs });
  return body as JitRequest;
}

function labelErrors(labels: unknown): string[] {
  if (!Array.isArray(labels)) return [`For 'properties/labels', ${describe(labels)} is not an array.`];
  const errors: string[] = [];
  if (labels.length < 1) errors.push(`For 'properties/labels', ${describe(labels)} has fewer items than 1.`);
  if (labels.length > 100) errors.push(`For 'properties/labels', the array has more items than 100.`);
  labels.forEach((l, i) => {
    if (typeof l !== 'string' || l.trim() === '')
      errors.push(`For 'items' at index ${i}, ${describe(l)} is not a non-empty string.`);
  });
  return errors;
}

/** `per_page` (1 to 100, default 30) and `page` (from 1), leniently parsed as GitHub does. */
export function pageParams(url: URL): { perPage: number; page: number } {
  const perPage = Math.min(100, Math.max(1, Number.parseInt(url.searchParams.get('per_page') ?? '30', 10) || 30));
  const page = Math.max(1, Number.parseInt(url.searchParams.get('page') ?? '1', 10) || 1);
  return { perPage, page };
}
