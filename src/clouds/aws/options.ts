import type { InputReader } from '../../config/spec.js';
import { list } from '../../config/inputs.js';
import { InputError } from '../../errors.js';
import type { Env } from '../descriptor.js';

export interface AwsOptions {
  /** In the order to try, usually one per availability zone; empty lets EC2 choose. */
  subnets: string[];
  securityGroup?: string;
  instanceProfile?: string;
}

/** aws-subnet, aws-security-group and aws-instance-profile. */
export function awsOptions(read: InputReader, _env: Env): AwsOptions {
  const input = (name: string): string => read(name).trim();
  const subnets = list(input('aws-subnet'));
  for (const subnet of subnets) {
    if (!/^subnet-[0-9a-f]+$/.test(subnet)) {
      throw new InputError(
        'aws-subnet',
        subnet,
        'use subnet ids such as subnet-0123456789abcdef0, comma-separated in the order to try (one per ' +
          'availability zone)',
      );
    }
  }
  if (new Set(subnets).size !== subnets.length)
    throw new InputError('aws-subnet', input('aws-subnet'), 'name each subnet once');
  const securityGroup = input('aws-security-group') || undefined;
  if (securityGroup !== undefined && !/^sg-[0-9a-f]+$/.test(securityGroup)) {
    throw new InputError('aws-security-group', securityGroup, 'use a security group id such as sg-0123456789abcdef0');
  }
  const instanceProfile = input('aws-instance-profile') || undefined;
  if (
    instanceProfile !== undefined &&
    !/^([\w+=,.@-]{1,128}|arn:aws[\w-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]+)$/.test(instanceProfile)
  ) {
    throw new InputError('aws-instance-profile', instanceProfile, 'use an instance profile name or ARN');
  }
  return { subnets, ...(securityGroup ? { securityGroup } : {}), ...(instanceProfile ? { instanceProfile } : {}) };
}
