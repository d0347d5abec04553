/**
 * The request-level checks Compute Engine makes before a method runs: query parameters the
 * method does not bind, the JSON body, list paging, request ids, and the small typed query
 * parameters of delete and getSerialPortOutput. Each failure is the API's own 400 (errors.ts).
 * The instance resource of instances.insert is checked in validate.ts.
 */
import { GceError, invalidField, unknownQuery } from './errors.js';

type J = Record<string, unknown>;

/** Query parameters every Google API accepts ("System parameters", https://cloud.google.com/apis/docs/system-parameters). */
const SYSTEM_PARAMS = new Set([
  'alt',
  'prettyPrint',
  'fields',
  'key',
  'quotaUser',
  'userIp',
  'callback',
  'upload_protocol',
  'uploadType',
  '.xgafv',
  'access_token',
  'oauth_token',
]);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_RESULTS = 500;

/** Refuses a query parameter that is neither a system parameter nor one the method binds. */
export function checkQuery(query: URLSearchParams, bound: readonly string[]): void {
  for (const key of new Set(query.keys())) {
    const bare = key.startsWith('$') ? key.slice(1) : key;
    if (!SYSTEM_PARAMS.has(bare) && !bound.includes(key)) throw unknownQuery(key);
  }
}

/**
 * The JSON body of a POST. Only instances.insert carries a resource: it must be an object; for
 * the other POST methods (zoneOperations.wait) a body is parsed and ignored.
 */
export function decodeBody(httpMethod: string, body: Buffer, wantsResource: boolean): J | undefined {
  if (httpMethod !== 'POST') return undefined;
  const text = body.toString('utf8');
  let value: unknown;
  if (text.trim() !== '') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new GceError(400, 'parseError', `Invalid JSON payload received. ${(err as Error).message}`, {
        status: 'INVALID_ARGUMENT',
      });
    }
  }
  if (!wantsResource) return undefined;
  if (value === undefined || typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GceError(400, 'invalid', 'Invalid JSON payload received. Expected an object for the request resource.', {
      status: 'INVALID_ARGUMENT',
    });
  }
  return value as J;
}

/** `maxResults` (0 means the default 500), `pageToken` (ours: base64url `p<offset>`), `orderBy`. */
export function paging(q: URLSearchParams): { max: number; start: number; order?: string } {
  const raw = q.get('maxResults');
  let max = MAX_RESULTS;
  if (raw !== null) {
    if (!/^\d+$/.test(raw)) throw invalidField('maxResults', raw, 'Must be a non-negative integer.');
    const n = Number(raw);
    if (n > MAX_RESULTS) throw invalidField('maxResults', raw, `Must be less than or equal to ${MAX_RESULTS}`);
    if (n > 0) max = n;
  }
  const token = q.get('pageToken');
  let start = 0;
  if (token !== null && token !== '') {
    const m = /^p(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
    if (!m) throw invalidField('pageToken', token, 'Invalid page token.');
    start = Number(m[1]);
  }
  const order = q.get('orderBy') ?? undefined;
  if (order !== undefined && order !== 'name' && order !== 'creationTimestamp desc') {
    throw invalidField('orderBy', order, "Only 'name' and 'creationTimestamp desc' are supported.");
  }
  return { max, start, ...(order ? { order } : {}) };
}

export const pageToken = (n: number): string => Buffer.from(`p${n}`).toString('base64url');

/** A `requestId`: a UUID other than the zero UUID, compared without case. */
export function checkRequestId(q: URLSearchParams): string | undefined {
  const requestId = q.get('requestId') ?? undefined;
  if (requestId === undefined) return undefined;
  if (!UUID.test(requestId) || /^[0-]+$/.test(requestId)) {
    throw invalidField(
      'requestId',
      requestId,
      'The request id must be a valid UUID with the exception that zero UUID is not supported.',
    );
  }
  return requestId.toLowerCase();
}

export function checkBoolean(q: URLSearchParams, name: string): void {
  const value = q.get(name);
  if (value !== null && value !== 'true' && value !== 'false') throw invalidField(name, value, 'Must be a boolean.');
}

/** getSerialPortOutput's `port` (1 to 4, default 1) and `start` (an offset; negative counts from the end). */
export function serialPortParams(q: URLSearchParams): { port: number; start: number; portRaw: string } {
  const portRaw = q.get('port') ?? '1';
  if (!/^\d+$/.test(portRaw) || Number(portRaw) < 1 || Number(portRaw) > 4) {
    throw invalidField('port', portRaw, 'Must be greater than or equal to 1 and less than or equal to 4.');
  }
  const startRaw = q.get('start') ?? '0';
  if (!/^-?\d+$/.test(startRaw)) throw invalidField('start', startRaw, 'Must be an integer.');
  return { port: Number(portRaw), start: Number(startRaw), portRaw };
}
