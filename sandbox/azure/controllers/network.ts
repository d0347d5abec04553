/**
 * Network resources a runner needs: network security groups, virtual networks (with subnets),
 * Standard static public IPs and network interfaces. A PUT answers 201 (200 when it replaced
 * one) with an async operation that ends after `lroMs`.
 */
import { AZURE_API_VERSIONS } from '../catalog.js';
import { type AzureStore, type Group, type J, type Reply, type Resource, lower, uuid } from '../store.js';
import {
  ArmError,
  checkAddressSpace,
  checkIpConfiguration,
  checkPublicIp,
  checkSecurityRules,
  checkSubnet,
  locationRequired,
  resourceNotFound,
} from '../validation.js';
import { startOp } from './operations.js';

export function putNetwork(store: AzureStore, g: Group, kind: string, name: string, body: J): Reply {
  const type = `Microsoft.Network/${kind}`;
  const location = body.location;
  if (typeof location !== 'string' || !location) throw locationRequired();
  const props = (body.properties ?? {}) as J;
  const id = `/subscriptions/${store.sub}/resourceGroups/${g.name}/providers/${type}/${name}`;
  const key = lower(`${type}/${name}`);
  const existed = g.resources.has(key);
  const out: J = {
    name,
    id,
    etag: `W/"${uuid()}"`,
    type,
    location,
    ...(body.tags ? { tags: body.tags } : {}),
    properties: { ...props, provisioningState: 'Updating', resourceGuid: uuid() },
  };
  const outProps = out.properties as J;
  switch (kind) {
    case 'networkSecurityGroups':
      checkSecurityRules(props);
      break;
    case 'virtualNetworks':
      checkAddressSpace(props);
      outProps.subnets = ((props.subnets as J[] | undefined) ?? []).map((s) => {
        checkSubnet(store, id, location, s);
        return {
          name: s.name,
          id: `${id}/subnets/${String(s.name)}`,
          type: `${type}/subnets`,
          properties: { ...(s.properties as J), provisioningState: 'Succeeded' },
        };
      });
      break;
    case 'publicIPAddresses':
      checkPublicIp(id, body, props);
      outProps.ipAddress = `20.0.${store.allVms.length % 250}.${(store.allGroups.length % 250) + 1}`;
      out.sku = { name: 'Standard', tier: 'Regional' };
      break;
    case 'networkInterfaces': {
      const cfgs = (props.ipConfigurations as J[] | undefined) ?? [];
      if (!cfgs.length)
        throw new ArmError(
          400,
          'NetworkInterfaceMustHaveIpConfiguration',
          'A network interface needs at least one IP configuration.',
        );
      outProps.ipConfigurations = cfgs.map((c) => {
        const cp = (c.properties ?? {}) as J;
        checkIpConfiguration(store, id, location, cp);
        return {
          name: c.name,
          id: `${id}/ipConfigurations/${String(c.name)}`,
          properties: { ...cp, privateIPAddress: '10.0.0.4', provisioningState: 'Succeeded' },
        };
      });
      break;
    }
    default:
      throw new ArmError(
        404,
        'InvalidResourceType',
        `The resource type '${kind}' could not be found in the namespace 'Microsoft.Network' for api version '${AZURE_API_VERSIONS.network}'.`,
      );
  }
  const res: Resource = { id, type, name, location, body: out };
  g.resources.set(key, res);
  const asyncUrl = startOp(store, 'Microsoft.Network', location, store.config.lroMs, () => {
    (res.body.properties as J).provisioningState = 'Succeeded';
    return { status: 'Succeeded' };
  });
  return {
    status: existed ? 200 : 201,
    json: structuredClone(out),
    headers: { 'azure-asyncoperation': asyncUrl, 'retry-after': store.config.retryAfter },
  };
}

/** `groupName` as the request spelled it, for the error message. */
export function getNetwork(g: Group, groupName: string, kind: string, name: string): Reply {
  const type = `Microsoft.Network/${kind}`;
  const r = g.resources.get(lower(`${type}/${name}`));
  if (!r) throw resourceNotFound(type, name, groupName);
  return { status: 200, json: structuredClone(r.body) };
}
