/**
 * The fake EC2's state: every instance ever launched (with its volumes, network interface and
 * spot request), the indexes by id and by client token, spot prices, IMDS session tokens, and the
 * timers of everything that happens later. What is still billed is read from here.
 */
import crypto from 'node:crypto';
import type { Ec2Instance, SpotRequest } from '../ec2.js';
import { Timers } from '../core/index.js';
import type { MachineFleet } from '../machine.js';
import { INSTANCE_TYPES, SECURITY_GROUPS, VPC_ID } from './catalog.js';

export interface Ec2Settings {
  /** Time from `pending` to `running` (and the machine booting). */
  bootDelayMs: number;
  /** Time spent in `shutting-down`/`stopping`. */
  shutdownDelayMs: number;
  /** How long a terminated instance stays visible to DescribeInstances. */
  terminatedVisibleMs: number;
  /**
   * Whether the caller may create the EC2 Spot service-linked role (iam:CreateServiceLinkedRole
   * for spot.amazonaws.com), which the account's first spot RunInstances creates.
   */
  spotRoleCreation: boolean;
}

/** A security group made by CreateSecurityGroup (the default VPC's default group is in catalog.ts). */
export interface Ec2SecurityGroup {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  region: string;
  tags: Record<string, string>;
  /** A new group has no inbound rule and one outbound rule: all traffic to 0.0.0.0/0. */
  ingress: Array<{ protocol: string; cidr: string }>;
  egress: Array<{ protocol: string; cidr: string }>;
}

/** A RunInstances answered for a client token: a retry with the same token gets the same reservation. */
export interface TokenRecord {
  fingerprint: string;
  reservationId: string;
  instanceIds: string[];
}

export const hex = (len: number): string =>
  crypto
    .randomBytes(Math.ceil(len / 2))
    .toString('hex')
    .slice(0, len);
export const newId = (prefix: string): string => `${prefix}-0${hex(16)}`;

export class Ec2Store {
  /** Every instance, in launch order. */
  readonly all: Ec2Instance[] = [];
  readonly byId = new Map<string, Ec2Instance>();
  /** Keyed `<region>/<client token>`: tokens are per region. */
  readonly byToken = new Map<string, TokenRecord>();
  readonly spotPrices = new Map<string, number>();
  /** IMDSv2 session tokens. */
  readonly imdsTokens = new Map<string, { instanceId: string; expiresAt: number }>();
  /** Security groups made by CreateSecurityGroup, by id; deleted ones are removed. */
  readonly securityGroups = new Map<string, Ec2SecurityGroup>();
  readonly timers = new Timers();
  /** The base URL of the instances' metadata services, once the server listens. */
  imdsUrl = '';
  /**
   * Whether the account has the AWSServiceRoleForEC2Spot service-linked role. A new account
   * does not: its first spot launch creates it ("Service-linked role for Spot Instance requests",
   * https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/service-linked-roles-spot-instance-requests.html).
   */
  spotServiceLinkedRole = false;

  constructor(
    readonly settings: Ec2Settings,
    readonly machines: MachineFleet,
  ) {}

  add(inst: Ec2Instance): void {
    this.all.push(inst);
    this.byId.set(inst.id, inst);
  }

  /** The current spot price of a type (default 40% of on-demand). */
  spotPrice(type: string): number {
    return this.spotPrices.get(type) ?? Math.round((INSTANCE_TYPES[type]?.onDemandPrice ?? 1) * 0.4 * 10000) / 10000;
  }

  /** Instances live in one region; a terminated one stays visible for a while, as in AWS. */
  visible(inst: Ec2Instance, region: string): boolean {
    if (inst.region !== region) return false;
    return !(
      inst.state === 'terminated' &&
      inst.terminatedAt &&
      Date.now() - inst.terminatedAt.getTime() > this.settings.terminatedVisibleMs
    );
  }

  /** A group's VPC, for the default group or one made in `region`; undefined when there is no such group. */
  groupVpc(id: string, region: string): string | undefined {
    if (SECURITY_GROUPS[id]) return VPC_ID;
    const g = this.securityGroups.get(id);
    return g && g.region === region ? g.vpcId : undefined;
  }

  /** A group's name as instances show it. */
  groupName(id: string): string {
    return SECURITY_GROUPS[id] ?? this.securityGroups.get(id)?.name ?? id;
  }

  spotRequests(): SpotRequest[] {
    return this.all.flatMap((i) => (i.spotRequest ? [i.spotRequest] : []));
  }

  /** Human-readable lines for everything still billed: live instances, orphaned volumes, open spot requests. */
  leftovers(): string[] {
    const lines: string[] = [];
    for (const i of this.all) {
      const tags = Object.entries(i.tags)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      if (i.state !== 'terminated') {
        lines.push(
          `EC2 instance ${i.id} (${i.instanceType}, ${i.market}, ${i.region}) is ${i.state}${i.state === 'stopped' ? ' (its volumes are still billed)' : ''}${tags ? `; tags ${tags}` : ''}`,
        );
      }
      for (const v of i.blockDevices) {
        if (v.state === 'available') {
          lines.push(
            `EBS volume ${v.id} (${v.size} GiB ${v.volumeType}, ${v.deviceName} of ${i.id}) was left after termination: DeleteOnTermination was false`,
          );
        }
      }
      const sr = i.spotRequest;
      if (
        sr &&
        (sr.state === 'open' || sr.state === 'disabled' || (sr.state === 'active' && i.state === 'terminated'))
      ) {
        lines.push(`Spot request ${sr.id} (${sr.type}, for ${i.id}) is still ${sr.state} and will launch again`);
      }
    }
    for (const g of this.securityGroups.values()) {
      lines.push(`EC2 security group ${g.id} (${g.name}, ${g.vpcId}, ${g.region}) was not deleted`);
    }
    return lines;
  }
}
