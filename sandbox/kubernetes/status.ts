/**
 * The API server's error answers: a `Status` object with the reason, message, details and code
 * that k8s.io/apimachinery/pkg/api/errors builds, and field errors in the format of
 * k8s.io/apimachinery/pkg/util/validation/field.
 * https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
 */

import type { Fault } from '../core/index.js';

// biome-ignore lint/suspicious/noExplicitAny: the fake API server handles objects as untyped JSON, as the real one's unstructured objects
export type Json = Record<string, any>;

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** An error the server answers with: HTTP code, Status reason, message and details. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  status(): Json {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** Which resource an error is about, as the server names it: `jobs.batch`, `secrets`. */
export interface ResourceRef {
  group: string;
  resource: string;
}

export const qualified = (r: ResourceRef): string => (r.group ? `${r.resource}.${r.group}` : r.resource);
const detailsOf = (r: ResourceRef, name?: string): StatusDetails => ({
  ...(name !== undefined ? { name } : {}),
  ...(r.group ? { group: r.group } : {}),
  kind: r.resource,
});

export const notFound = (r: ResourceRef, name: string): ApiError =>
  new ApiError(404, 'NotFound', `${qualified(r)} "${name}" not found`, detailsOf(r, name));

export const alreadyExists = (r: ResourceRef, name: string): ApiError =>
  new ApiError(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, detailsOf(r, name));

export const conflict = (r: ResourceRef, name: string, why: string): ApiError =>
  new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`,
    detailsOf(r, name),
  );

export const badRequest = (message: string): ApiError => new ApiError(400, 'BadRequest', message);

export const forbidden = (r: ResourceRef, name: string | undefined, why: string): ApiError =>
  new ApiError(
    403,
    'Forbidden',
    `${qualified(r)}${name !== undefined ? ` "${name}"` : ''} is forbidden: ${why}`,
    detailsOf(r, name),
  );

export const unauthorized = (): ApiError => new ApiError(401, 'Unauthorized', 'Unauthorized');

export const methodNotAllowed = (): ApiError =>
  new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});

export const resourceNotFound = (): ApiError =>
  new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});

export const unsupportedMediaType = (): ApiError =>
  new ApiError(
    415,
    'UnsupportedMediaType',
    'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json',
  );

// ---------------------------------------------------------------------------------------------
// Field errors (k8s.io/apimachinery/pkg/util/validation/field)

export type FieldErrorType =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueDuplicate'
  | 'FieldValueNotFound'
  | 'FieldValueTooLong'
  | 'FieldValueTooMany'
  | 'FieldValueForbidden';

export interface FieldError {
  type: FieldErrorType;
  field: string;
  /** What follows `field: ` in the message, e.g. `Required value`, `Invalid value: "x": why`. */
  body: string;
}

/** A value as field errors print it (Go's %q for strings, %d for numbers, %v otherwise). */
export function goValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  return JSON.stringify(v);
}

const withDetail = (head: string, detail?: string): string => (detail ? `${head}: ${detail}` : head);

export const required = (field: string, detail?: string): FieldError => ({
  type: 'FieldValueRequired',
  field,
  body: withDetail('Required value', detail),
});
export const invalid = (field: string, value: unknown, detail?: string): FieldError => ({
  type: 'FieldValueInvalid',
  field,
  body: withDetail(`Invalid value: ${goValue(value)}`, detail),
});
export const notSupported = (field: string, value: unknown, supported: string[]): FieldError => ({
  type: 'FieldValueNotSupported',
  field,
  body: `Unsupported value: ${goValue(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`,
});
export const duplicate = (field: string, value: unknown): FieldError => ({
  type: 'FieldValueDuplicate',
  field,
  body: `Duplicate value: ${goValue(value)}`,
});
export const fieldNotFound = (field: string, value: unknown): FieldError => ({
  type: 'FieldValueNotFound',
  field,
  body: `Not found: ${goValue(value)}`,
});
export const tooLong = (field: string, max: number): FieldError => ({
  type: 'FieldValueTooLong',
  field,
  body: `Too long: must have at most ${max} bytes`,
});
export const forbiddenField = (field: string, detail: string): FieldError => ({
  type: 'FieldValueForbidden',
  field,
  body: `Forbidden: ${detail}`,
});

/** 422 Invalid, as the server answers a create or update that fails validation. */
export function invalidObject(kind: string, group: string, name: string, errors: FieldError[]): ApiError {
  // The message lists each distinct error once (field.ErrorList.ToAggregate); the causes keep them all.
  const text = [...new Set(errors.map((e) => `${e.field}: ${e.body}`))];
  const what = `${kind}${group ? `.${group}` : ''} "${name}"`;
  return new ApiError(422, 'Invalid', `${what} is invalid: ${text.length === 1 ? text[0] : `[${text.join(', ')}]`}`, {
    name,
    ...(group ? { group } : {}),
    kind,
    causes: errors.map((e) => ({ reason: e.type, message: e.body, field: e.field })),
  });
}

/** The Status an injected fault answers with: the code as reason, with the real status and message. */
export function faultError(fault: Fault, ref: { group: string; resource: string }, name: string | undefined): ApiError {
  const code = fault.code!;
  const defaults: Record<string, [number, string]> = {
    TooManyRequests: [429, 'Too many requests, please try again later.'],
    InternalError: [500, 'Internal error occurred: injected by the sandbox'],
    ServiceUnavailable: [503, 'the server is currently unable to handle the request'],
    Timeout: [504, 'Timeout: request did not complete within requested timeout - context deadline exceeded'],
    ServerTimeout: [500, 'The list operation could not be completed at this time, please try again.'],
    Conflict: [
      409,
      `Operation cannot be fulfilled on ${ref.group ? `${ref.resource}.${ref.group}` : ref.resource} "${name ?? ''}": the object has been modified; please apply your changes to the latest version and try again`,
    ],
    Forbidden: [403, 'forbidden'],
    Unauthorized: [401, 'Unauthorized'],
    BadRequest: [400, 'bad request'],
    NotFound: [404, `${ref.group ? `${ref.resource}.${ref.group}` : ref.resource} "${name ?? ''}" not found`],
  };
  const [status, message] = defaults[code] ?? [500, `injected fault ${code}`];
  const retryAfter = fault.retryAfter ?? (code === 'TooManyRequests' ? 1 : undefined);
  return new ApiError(
    fault.status ?? status,
    code,
    fault.message ?? message,
    {
      ...(name !== undefined ? { name } : {}),
      ...(ref.group ? { group: ref.group } : {}),
      kind: ref.resource,
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    },
    retryAfter !== undefined ? { 'retry-after': String(retryAfter) } : {},
  );
}
