import type { InputReader, MachineSpec } from '../../config/spec.js';
import { list } from '../../config/inputs.js';
import { InputError } from '../../errors.js';
import type { Env } from '../descriptor.js';
import { AWS_IMAGE_PARAMETERS, awsFamilyIsVolta } from './catalog.js';

export interface AwsOptions {
  /** In the order to try, usually one per availability zone; empty lets EC2 choose. */
  subnets: string[];
  securityGroup?: string;
  instanceProfile?: string;
}

/**
 * A V100 type needs an image whose NVIDIA driver drives Volta: the default GPU image (the Deep
 * Learning Base OSS Nvidia Driver AMI) has NVIDIA's open kernel modules, which support Turing
 * and newer only (NVIDIA Driver Installation Guide, "Kernel Modules").
 */
function checkVoltaImage(machine: MachineSpec): void {
  const volta = machine.types.find(awsFamilyIsVolta);
  if (!volta) return;
  const defaults: readonly string[] = Object.values(AWS_IMAGE_PARAMETERS.gpu);
  const image = machine.image;
  if (image !== undefined && !defaults.includes(image) && !/oss-nvidia-driver/.test(image)) return;
  const why =
    `${volta} has NVIDIA V100 GPUs, which the NVIDIA driver of the ${image ? '' : 'default '}GPU image ` +
    "(the Deep Learning Base OSS Nvidia Driver AMI, with NVIDIA's open kernel modules) does not support";
  if (image === undefined) {
    throw new InputError(
      'type',
      volta,
      `${why}: give an image with NVIDIA's proprietary driver (such as the Deep Learning Base Proprietary ` +
        'Nvidia Driver AMI) in image, or use a T4, A10G or L4 type (g4dn, g5, g6)',
    );
  }
  throw new InputError('image', image, `${why}: give an image with NVIDIA's proprietary driver for ${volta}`);
}

/** aws-subnet, aws-security-group and aws-instance-profile; with the machine, the image a V100 type needs. */
export function awsOptions(read: InputReader, _env: Env, machine?: MachineSpec): AwsOptions {
  if (machine) checkVoltaImage(machine);
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
