import { CloudError, type ErrorKind, errorMessage } from '../../errors.js';
import { isConnectionError, retryAfterHeader } from '../call.js';

/**
 * What each EC2 and SSM error means: its kind, and what the user can do. Codes pass through
 * verbatim next to this advice. Codes: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
 */
const KNOWN: Record<string, { kind: ErrorKind; advice: string }> = {
  InsufficientInstanceCapacity: {
    kind: 'capacity',
    advice:
      'AWS has no capacity for this instance type in this availability zone right now. Give more types (type takes a ' +
      'comma list) or subnets in other zones (aws-subnet takes a comma list), another region, or spot: false.',
  },
  InsufficientCapacity: {
    kind: 'capacity',
    advice: 'AWS has no capacity for this request right now. Give more types or subnets, or another region.',
  },
  Unsupported: {
    kind: 'capacity',
    advice:
      'This instance type is not offered in this availability zone. Give subnets in other zones (aws-subnet takes a ' +
      'comma list), or another region.',
  },
  SpotMaxPriceTooLow: {
    kind: 'market',
    advice:
      'The spot-price input is below the current spot price. Raise it, or use spot-price: -1 to pay up to the ' +
      'on-demand price.',
  },
  // The account's first spot launch creates the EC2 Spot service-linked role; without the right
  // to create it, spot fails (403) while on-demand works: a market refusal, so on-demand-fallback applies.
  'AuthFailure.ServiceLinkedRoleCreationNotPermitted': {
    kind: 'market',
    advice:
      'Spot needs the EC2 Spot service-linked role (AWSServiceRoleForEC2Spot), which the first spot launch in an ' +
      'account creates, and these credentials may not create it. Grant iam:CreateServiceLinkedRole for ' +
      'spot.amazonaws.com (see the README IAM policy), or create the role once with: aws iam ' +
      'create-service-linked-role --aws-service-name spot.amazonaws.com. Until then spot: false, or ' +
      'on-demand-fallback: true (the default), launches on-demand.',
  },
  MaxSpotInstanceCountExceeded: {
    kind: 'quota',
    advice:
      'The account reached its spot instance quota in this region. Use spot: false or request a higher spot quota ' +
      'in Service Quotas.',
  },
  VcpuLimitExceeded: {
    kind: 'quota',
    advice:
      'The account vCPU quota for this instance family in this region is too low. Request an increase in Service ' +
      'Quotas (for GPUs: "Running On-Demand G and VT instances" or "Running On-Demand P instances", or the Spot ' +
      'equivalents).',
  },
  InstanceLimitExceeded: {
    kind: 'quota',
    advice: 'The account instance quota in this region is reached. Request an increase in Service Quotas.',
  },
  UnauthorizedOperation: {
    kind: 'permanent',
    advice:
      'The AWS credentials may not do this. Grant the actions in the README IAM policy to the role the workflow ' +
      'assumes.',
  },
  AuthFailure: {
    kind: 'permanent',
    advice:
      'AWS did not accept the credentials. Check the AWS_* variables or the role ' +
      'aws-actions/configure-aws-credentials assumes.',
  },
  'InvalidAMIID.NotFound': {
    kind: 'permanent',
    advice: 'The image does not exist in this region. Check the image input and the region.',
  },
  'InvalidSubnetID.NotFound': {
    kind: 'permanent',
    advice: 'Check the aws-subnet input: the subnet must exist in this region.',
  },
  'InvalidGroup.NotFound': {
    kind: 'permanent',
    advice: 'Check the aws-security-group input: the group must exist in the subnet VPC.',
  },
  InvalidParameterValue: { kind: 'permanent', advice: 'Check the type, image, aws-instance-profile and tags inputs.' },
  ParameterNotFound: { kind: 'permanent', advice: 'Check the image input and the region.' },
  AccessDeniedException: { kind: 'permanent', advice: 'The credentials need ssm:GetParameter on public parameters.' },
  'InvalidGroup.Duplicate': { kind: 'permanent', advice: '' },
  /** A security group still used by an instance (one shutting down too): deleting it waits. */
  DependencyViolation: { kind: 'permanent', advice: 'An instance still uses the security group.' },
  /** An instance id EC2 no longer knows: terminated long ago. */
  'InvalidInstanceID.NotFound': { kind: 'gone', advice: '' },
};

/** Throttles and service-side failures: the same request may succeed. */
const TRANSIENT = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'Unavailable',
  'RequestTimeout',
  'RequestTimeoutException',
]);

interface SdkError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

/** The kind of an EC2 or SSM error, by its code, then by its HTTP status, then by its connection. */
export function awsErrorKind(err: unknown): ErrorKind {
  const e = err as SdkError;
  const code = e.name ?? '';
  const known = KNOWN[code];
  if (known) return known.kind;
  if (TRANSIENT.has(code)) return 'transient';
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) return status === 429 || status >= 500 ? 'transient' : 'permanent';
  return isConnectionError(err) ? 'transient' : 'permanent';
}

export function awsError(err: unknown, action: string, region: string): CloudError {
  const code = (err as SdkError).name ?? 'Error';
  return new CloudError(
    'AWS',
    code,
    `${action} in ${region}: ${errorMessage(err)}`,
    KNOWN[code]?.advice ?? '',
    awsErrorKind(err),
  );
}

export const awsRetryAfterMs = (err: unknown): number | undefined =>
  retryAfterHeader((err as SdkError).$response?.headers?.['retry-after']);

/** A refusal made here, in the same shape as the service's. */
export const awsRefusal = (
  code: string,
  detail: string,
  advice = KNOWN[code]?.advice ?? '',
  kind: ErrorKind = KNOWN[code]?.kind ?? 'permanent',
): CloudError => new CloudError('AWS', code, detail, advice, kind);
