/**
 * EC2's XML: answers are `<ActionResponse xmlns="...">` with a `requestId` and the result's
 * members; lists are `<name><item>...</item></name>`; errors are one `<Response><Errors>` document
 * (EC2 API reference, "Error codes" and "Query API responses").
 */
import { EC2_NS } from './catalog.js';

export const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
/** A leaf element; nothing when the value is undefined. */
export const t = (name: string, v: string | number | boolean | undefined | null): string =>
  v === undefined || v === null ? '' : `<${name}>${esc(String(v))}</${name}>`;
/** An element around already-serialised children. */
export const n = (name: string, inner: string): string => `<${name}>${inner}</${name}>`;
/** A list: `<name><item>..</item>...</name>`. */
export const items = <T>(name: string, list: readonly T[], f: (x: T) => string): string =>
  `<${name}>${list.map((x) => `<item>${f(x)}</item>`).join('')}</${name}>`;

/** A successful answer around an action's result members. */
export function responseXml(action: string, requestId: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NS}">${t('requestId', requestId)}${inner}</${action}Response>`;
}

export function errorXml(code: string, message: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`;
}
