/**
 * How the fake EC2 renders its resources in answers: instances and reservations
 * (DescribeInstances, RunInstances), images and instance types, member names as the EC2 API
 * reference gives them (`instancesSet`, `blockDeviceMapping`, `gpuInfo`).
 */
import type { Ec2Instance } from '../ec2.js';
import { ACCOUNT_ID, type ImageSpec, type InstanceTypeSpec, SECURITY_GROUPS, STATE_CODES, VPC_ID } from './catalog.js';
import { esc, items, n, t } from './xml.js';

/** `groupName` names each security group by id (the store's groups and the default one). */
export function reservationXml(
  reservationId: string,
  insts: Ec2Instance[],
  groupName: (id: string) => string = (id) => SECURITY_GROUPS[id] ?? id,
): string {
  return (
    t('reservationId', reservationId) +
    t('ownerId', ACCOUNT_ID) +
    items('groupSet', [], () => '') +
    items('instancesSet', insts, (i) => instanceXml(i, groupName))
  );
}

/** A terminated instance keeps its id, type and tags, but no longer shows its network. */
function instanceXml(i: Ec2Instance, names: (id: string) => string): string {
  const gone = i.state === 'terminated';
  const groups = i.securityGroups.map((id) => ({ id, name: names(id) }));
  const groupXml = (name: string) =>
    items(name, gone ? [] : groups, (g) => t('groupId', g.id) + t('groupName', g.name));
  const attached = i.blockDevices.filter((v) => v.state === 'in-use');
  return (
    t('instanceId', i.id) +
    t('imageId', i.imageId) +
    n('instanceState', t('code', STATE_CODES[i.state]) + t('name', i.state)) +
    t('privateDnsName', gone ? '' : `ip-${i.privateIp.replace(/\./g, '-')}.ec2.internal`) +
    t('dnsName', '') +
    t('reason', i.stateTransitionReason) +
    t('amiLaunchIndex', i.amiLaunchIndex) +
    items('productCodes', [], () => '') +
    t('instanceType', i.instanceType) +
    t('launchTime', i.launchTime.toISOString()) +
    n('placement', t('availabilityZone', i.availabilityZone) + t('groupName', '') + t('tenancy', 'default')) +
    n('monitoring', t('state', 'disabled')) +
    (gone ? '' : t('subnetId', i.subnetId) + t('vpcId', VPC_ID) + t('privateIpAddress', i.privateIp)) +
    t('sourceDestCheck', true) +
    groupXml('groupSet') +
    (i.stateReason ? n('stateReason', t('code', i.stateReason.code) + t('message', i.stateReason.message)) : '') +
    t('architecture', i.architecture) +
    t('rootDeviceType', 'ebs') +
    t('rootDeviceName', i.rootDeviceName) +
    items(
      'blockDeviceMapping',
      attached,
      (v) =>
        t('deviceName', v.deviceName) +
        n(
          'ebs',
          t('volumeId', v.id) +
            t('status', 'attached') +
            t('attachTime', v.attachTime.toISOString()) +
            t('deleteOnTermination', v.deleteOnTermination),
        ),
    ) +
    t('virtualizationType', 'hvm') +
    t('clientToken', i.clientToken ?? '') +
    items('tagSet', Object.entries(i.tags), ([k, v]) => t('key', k) + t('value', v)) +
    t('hypervisor', 'xen') +
    items(
      'networkInterfaceSet',
      gone ? [] : [i.networkInterface],
      (e) =>
        t('networkInterfaceId', e.id) +
        t('subnetId', i.subnetId) +
        t('vpcId', VPC_ID) +
        t('description', '') +
        t('ownerId', ACCOUNT_ID) +
        t('status', 'in-use') +
        t('macAddress', e.macAddress) +
        t('privateIpAddress', i.privateIp) +
        t('sourceDestCheck', true) +
        groupXml('groupSet') +
        n(
          'attachment',
          t('attachmentId', `eni-attach-${e.id.slice(4)}`) +
            t('deviceIndex', 0) +
            t('status', 'attached') +
            t('attachTime', i.launchTime.toISOString()) +
            t('deleteOnTermination', true),
        ) +
        t('interfaceType', 'interface'),
    ) +
    (i.iamInstanceProfile
      ? n('iamInstanceProfile', t('arn', i.iamInstanceProfile.arn) + t('id', i.iamInstanceProfile.id))
      : '') +
    t('ebsOptimized', false) +
    t('enaSupport', true) +
    (i.spotRequest ? t('instanceLifecycle', 'spot') + t('spotInstanceRequestId', i.spotRequest.id) : '') +
    n(
      'metadataOptions',
      t('state', i.state === 'pending' || i.metadataChange ? 'pending' : 'applied') +
        t('httpTokens', i.metadataOptions.httpTokens) +
        t('httpPutResponseHopLimit', i.metadataOptions.httpPutResponseHopLimit) +
        t('httpEndpoint', i.metadataOptions.httpEndpoint) +
        t('httpProtocolIpv6', 'disabled') +
        t('instanceMetadataTags', 'disabled'),
    ) +
    t('platformDetails', 'Linux/UNIX') +
    t('usageOperation', 'RunInstances') +
    t('bootMode', i.architecture === 'arm64' ? 'uefi' : 'legacy-bios') +
    t('currentInstanceBootMode', i.architecture === 'arm64' ? 'uefi' : 'legacy-bios')
  );
}

export function imageXml(i: ImageSpec): string {
  return (
    t('imageId', i.id) +
    t('imageLocation', `${i.ownerAlias ?? i.ownerId}/${i.name}`) +
    t('imageState', 'available') +
    t('imageOwnerId', i.ownerId) +
    t('creationDate', i.creationDate) +
    t('isPublic', true) +
    t('architecture', i.arch) +
    t('imageType', 'machine') +
    t('name', i.name) +
    t('description', i.description) +
    t('imageOwnerAlias', i.ownerAlias) +
    t('rootDeviceType', 'ebs') +
    t('rootDeviceName', i.rootDeviceName) +
    items(
      'blockDeviceMapping',
      [i],
      (x) =>
        t('deviceName', x.rootDeviceName) +
        n(
          'ebs',
          t('snapshotId', x.snapshotId) +
            t('volumeSize', x.snapshotSizeGiB) +
            t('deleteOnTermination', true) +
            t('volumeType', x.volumeType) +
            t('encrypted', false),
        ),
    ) +
    t('virtualizationType', 'hvm') +
    t('hypervisor', 'xen') +
    t('enaSupport', true) +
    t('sriovNetSupport', 'simple') +
    t('platformDetails', 'Linux/UNIX') +
    t('usageOperation', 'RunInstances') +
    t('bootMode', i.arch === 'arm64' ? 'uefi' : 'uefi-preferred') +
    t('imdsSupport', i.imdsSupport)
  );
}

export function instanceTypeXml(x: InstanceTypeSpec): string {
  return (
    t('instanceType', x.name) +
    t('currentGeneration', true) +
    t('freeTierEligible', x.name === 't3.micro') +
    items('supportedUsageClasses', ['on-demand', 'spot'], (u) => esc(u)) +
    items('supportedRootDeviceTypes', ['ebs'], (u) => esc(u)) +
    items('supportedVirtualizationTypes', ['hvm'], (u) => esc(u)) +
    t('bareMetal', x.name.endsWith('.metal')) +
    t('hypervisor', x.name.endsWith('.metal') ? undefined : x.hypervisor) +
    n(
      'processorInfo',
      items('supportedArchitectures', [x.arch], (a) => esc(a)) +
        t('manufacturer', x.arch === 'arm64' ? 'AWS' : 'Intel'),
    ) +
    n(
      'vCpuInfo',
      t('defaultVCpus', x.vcpus) +
        t('defaultCores', Math.max(1, x.vcpus / 2)) +
        t('defaultThreadsPerCore', x.vcpus > 1 ? 2 : 1),
    ) +
    n('memoryInfo', t('sizeInMiB', x.memoryMiB)) +
    t('instanceStorageSupported', false) +
    (x.gpu
      ? n(
          'gpuInfo',
          items(
            'gpus',
            [x.gpu],
            (g) =>
              t('name', g.name) +
              t('manufacturer', g.manufacturer) +
              t('count', g.count) +
              n('memoryInfo', t('sizeInMiB', g.memoryMiB)),
          ) + t('totalGpuMemoryInMiB', x.gpu.count * x.gpu.memoryMiB),
        )
      : '') +
    t('hibernationSupported', false) +
    t('burstablePerformanceSupported', x.name.startsWith('t')) +
    t('dedicatedHostsSupported', true) +
    t('autoRecoverySupported', true)
  );
}
