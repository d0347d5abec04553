/**
 * EC2's errors: a code, a message and an HTTP status, as the EC2 API reference lists them
 * ("Error codes for the Amazon EC2 API"), and the defaults an injected fault answers with.
 */
import type { Fault } from '../core/index.js';
import { type Denial, denialSentence, encodedFailure } from './iam.js';
import type { SigV4Failure } from './sigv4.js';

/** An AWS service error: code, message, HTTP status. The SSM fake answers with it too. */
export class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    /** Extra answer headers (a fault's `Retry-After`). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

const FAULT_STATUS: Record<string, number> = {
  RequestLimitExceeded: 503,
  InsufficientInstanceCapacity: 500,
  InsufficientCapacity: 500,
  Unavailable: 503,
  ServiceUnavailable: 503,
  InternalError: 500,
  InternalFailure: 500,
  VcpuLimitExceeded: 400,
};
const FAULT_MESSAGE: Record<string, string> = {
  RequestLimitExceeded: 'Request limit exceeded.',
  InsufficientInstanceCapacity:
    'We currently do not have sufficient capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity. You can currently get capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.',
  Unavailable: 'The server is overloaded and cannot handle the request.',
  InternalError: 'An internal error has occurred',
  VcpuLimitExceeded:
    'You have requested more vCPU capacity than your current vCPU limit allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.',
  MaxSpotInstanceCountExceeded: 'Max spot instance count exceeded',
  InstanceLimitExceeded: 'You have requested more instances than your current instance limit allows.',
};

export function faultStatus(f: Fault): number {
  return f.status ?? (f.code ? (FAULT_STATUS[f.code] ?? 400) : 400);
}

/**
 * The error an injected fault answers with, in EC2's shape. A fault without a code only delays
 * or resets: undefined lets the request through.
 */
export function faultError(f: Fault): Ec2Error | undefined {
  if (!f.code) return undefined;
  const headers: Record<string, string> = f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {};
  return new Ec2Error(
    f.code,
    f.message ?? FAULT_MESSAGE[f.code] ?? `Injected fault ${f.code}`,
    faultStatus(f),
    headers,
  );
}

/** EC2's answer to a request whose signature failed (see sigv4.ts). */
export function authError(failure: SigV4Failure, detail: string): Ec2Error {
  switch (failure) {
    case 'missing':
      return new Ec2Error(
        'MissingAuthenticationToken',
        'The request must contain either a valid (registered) AWS access key ID or X.509 certificate.',
        401,
      );
    case 'incomplete':
      return new Ec2Error('IncompleteSignature', detail, 400);
    case 'unknown-key':
      return new Ec2Error('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);
    case 'wrong-service':
      return new Ec2Error('SignatureDoesNotMatch', detail, 403);
    case 'bad-signature':
      return new Ec2Error(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
        403,
      );
  }
}

/**
 * EC2's answer when IAM denies the launching identity (HTTP 403 `UnauthorizedOperation`, as
 * https://repost.aws/knowledge-center/ec2-not-auth-launch quotes it, read 2026-12-08): the
 * action, the resource and why, then an encoded message only sts:DecodeAuthorizationMessage reads.
 */
export function unauthorizedError(d: Denial): Ec2Error {
  const encoded = d.request.resource === '*' ? '' : ` Encoded authorization failure message: ${encodedFailure()}`;
  return new Ec2Error(
    'UnauthorizedOperation',
    `You are not authorized to perform this operation. ${denialSentence(d)}.${encoded}`,
    403,
  );
}
