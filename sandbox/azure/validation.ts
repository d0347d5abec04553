/**
 * What ARM and Entra refuse, and how they say it: the error shapes (ARM's `{error: {code,
 * message}}`, Entra's OAuth `{error, error_description: "AADSTSnnn: ..."}`), the api-version
 * check, and each resource's parameter checks, in the order the services apply them.
 */
import type { Fault } from '../core/index.js';
import type { AzureVm } from '../azure.js';
import {
  RETIRED_SIZES,
  type ResolvedImage,
  SIZES,
  gpuOfSize,
  regionalSize,
  regionalSizes,
  resolveImage,
} from './catalog.js';
import { type Group, type J, type Resource, type AzureStore, lower, uuid } from './store.js';

export class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: J = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): J {
    return { error: { code: this.code, message: this.message, ...this.extra } };
  }
}

/** Entra's OAuth error body: `{error, error_description: "AADSTSnnn: ...", error_codes, ...}`. */
export class EntraError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly aadsts: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(url: string): J {
    const now = new Date().toISOString();
    return {
      error: this.error,
      error_description: `AADSTS${this.aadsts}: ${this.message} Trace ID: ${uuid()} Correlation ID: ${uuid()} Timestamp: ${now.replace('T', ' ')}`,
      error_codes: [this.aadsts],
      timestamp: now,
      trace_id: uuid(),
      correlation_id: uuid(),
      error_uri: `${url}/error?code=${this.aadsts}`,
    };
  }
}

export const invalid = (message: string, target?: string): ArmError =>
  new ArmError(400, 'InvalidParameter', message, target ? { target } : {});
export const notAllowed = (method: string): ArmError =>
  new ArmError(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
export const beingDeleted = (g: Group): ArmError =>
  new ArmError(
    409,
    'ResourceGroupBeingDeleted',
    `The resource group '${g.name}' is in deprovisioning state and cannot perform this operation.`,
  );
export const resourceNotFound = (type: string, name: string, group: string): ArmError =>
  new ArmError(
    404,
    'ResourceNotFound',
    `The Resource '${type}/${name}' under resource group '${group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
  );
export const groupNotFound = (name: string): ArmError =>
  new ArmError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
export const locationRequired = (): ArmError =>
  new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
export const operationNotFound = (): ArmError => new ArmError(404, 'NotFound', 'The operation was not found.');

/** ARM takes exactly the api-versions the provider registered; a location in the message when the type is regional. */
export function checkApiVersion(q: URLSearchParams, expected: string, resourceType: string, location?: string): void {
  const v = q.get('api-version');
  if (v === null)
    throw new ArmError(
      400,
      'MissingApiVersionParameter',
      'The api-version query parameter (?api-version=) is required for all requests.',
    );
  if (v === expected) return;
  if (location) {
    throw new ArmError(
      400,
      'NoRegisteredProviderFound',
      `No registered resource provider found for location '${location}' and API version '${v}' for type '${resourceType}'. The supported api-versions are '${expected}'.`,
    );
  }
  throw new ArmError(
    400,
    'InvalidApiVersionParameter',
    `The api-version '${v}' is invalid. The supported versions are '${expected}'.`,
  );
}

/** The body as a JSON object, or ARM's InvalidRequestContent. */
export function jsonBody(body: Buffer): J {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as J;
  } catch {
    // fall through
  }
  throw new ArmError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized.');
}

export const ref = (v: unknown): string | undefined =>
  v && typeof v === 'object' && typeof (v as J).id === 'string' ? ((v as J).id as string) : undefined;

// ---------------------------------------------------------------------------------------------
// Resource groups

/** A group's PUT body: location, name rules, tags (at most 50; names without `<>%&\?/`). */
export function checkGroupPut(name: string, b: J): { location: string; tags: Record<string, string> } {
  if (typeof b.location !== 'string' || !b.location) throw locationRequired();
  if (!/^[-\w._()]{1,90}$/.test(name) || name.endsWith('.')) {
    throw new ArmError(
      400,
      'InvalidResourceGroup',
      `The provided resource group name '${name}' has these invalid characters. The name can only be a letter, digit, '-', '.', '_', '(', ')' and cannot end with a period.`,
    );
  }
  const tags = (b.tags as Record<string, string> | undefined) ?? {};
  if (Object.keys(tags).length > 50) throw new ArmError(400, 'InvalidTag', 'A resource can have at most 50 tags.');
  for (const [k, v] of Object.entries(tags)) {
    if (k.length > 512 || String(v).length > 256 || /[<>%&\\?/]/.test(k))
      throw new ArmError(400, 'InvalidTagNameCharacters', `The tag name '${k}' or its value is not valid.`);
  }
  return { location: b.location, tags };
}

/** A list's `$filter`: `tagName eq 'K' and tagValue eq 'V'` or `tagName eq 'K'` (quotes doubled). */
export function groupFilter(filter: string | null): (g: Group) => boolean {
  if (filter === null) return () => true;
  const f = /^tagName eq '((?:[^']|'')*)' and tagValue eq '((?:[^']|'')*)'$/.exec(filter);
  const n = /^tagName eq '((?:[^']|'')*)'$/.exec(filter);
  const un = (s: string): string => s.replace(/''/g, "'");
  if (f) return (g) => Object.entries(g.tags).some(([k, v]) => lower(k) === lower(un(f[1]!)) && v === un(f[2]!));
  if (n) return (g) => Object.keys(g.tags).some((k) => lower(k) === lower(un(n[1]!)));
  throw new ArmError(400, 'InvalidFilterInQueryString', `Invalid $filter '${filter}' specified in the query string.`);
}

export function checkForceDeletionTypes(force: string | null): void {
  if (
    force !== null &&
    !['Microsoft.Compute/virtualMachines', 'Microsoft.Compute/virtualMachineScaleSets'].includes(force)
  ) {
    throw new ArmError(
      400,
      'InvalidForceDeletionTypes',
      `The value '${force}' of forceDeletionTypes is not supported. Supported: Microsoft.Compute/virtualMachines, Microsoft.Compute/virtualMachineScaleSets.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Role assignments

/** A role assignment's name is a GUID. */
export function checkAssignmentName(name: string): void {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(name)) {
    throw new ArmError(
      400,
      'InvalidRoleAssignmentId',
      `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`,
    );
  }
}

/** The role definition: a built-in role of the subscription. */
export function checkRoleDefinition(store: AzureStore, props: J): { roleDefinitionId: string; roleGuid: string } {
  const roleDefinitionId = String(props.roleDefinitionId ?? '');
  const roleGuid = roleDefinitionId.split('/').pop() ?? '';
  const shape = new RegExp(
    `^/subscriptions/${store.sub}/providers/Microsoft\\.Authorization/roleDefinitions/[0-9a-f-]{36}$`,
    'i',
  );
  if (!shape.test(roleDefinitionId) || !store.roles.has(roleGuid.toLowerCase())) {
    throw new ArmError(
      400,
      'RoleDefinitionDoesNotExist',
      `The specified role definition with ID '${roleGuid}' does not exist.`,
    );
  }
  return { roleDefinitionId, roleGuid };
}

export function principalNotFound(principalId: string, tenant: string): ArmError {
  return new ArmError(
    400,
    'PrincipalNotFound',
    `Principal ${principalId.replace(/-/g, '')} does not exist in the directory ${tenant}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype`,
  );
}

// ---------------------------------------------------------------------------------------------
// Network

export function checkSecurityRules(props: J): void {
  for (const r of (props.securityRules as J[] | undefined) ?? []) {
    const rp = (r.properties ?? {}) as J;
    if (!r.name || !rp.protocol || !rp.access || !rp.direction || typeof rp.priority !== 'number') {
      throw new ArmError(
        400,
        'SecurityRuleInvalid',
        `Security rule ${String(r.name)} is missing name, protocol, access, direction or priority.`,
      );
    }
  }
}

export function checkAddressSpace(props: J): void {
  const prefixes = ((props.addressSpace as J | undefined)?.addressPrefixes as string[] | undefined) ?? [];
  if (!prefixes.length) throw new ArmError(400, 'InvalidAddressPrefixFormat', 'Address prefixes are required.');
}

export function checkSubnet(store: AzureStore, vnetId: string, location: string, s: J): void {
  const sp = (s.properties ?? {}) as J;
  if (typeof sp.addressPrefix !== 'string' && !Array.isArray(sp.addressPrefixes)) {
    throw new ArmError(400, 'InvalidAddressPrefixFormat', `Subnet ${String(s.name)} has no address prefix.`);
  }
  const nsg = ref(sp.networkSecurityGroup);
  const found = nsg ? store.lookup(nsg, 'Microsoft.Network/networkSecurityGroups') : undefined;
  if (nsg && (!found || found.location !== location)) {
    throw new ArmError(
      400,
      'InvalidResourceReference',
      `Resource ${nsg} referenced by resource ${vnetId}/subnets/${String(s.name)} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
    );
  }
}

/** Basic public IPs are retired; a Standard one must be Static. */
export function checkPublicIp(id: string, body: J, props: J): void {
  const sku = (body.sku as J | undefined)?.name ?? 'Basic';
  if (sku !== 'Standard')
    throw new ArmError(
      400,
      'BasicSkuPublicIpRetired',
      'The fake only takes Standard public IPs (Basic SKU public IPs are retired).',
    );
  if ((props.publicIPAllocationMethod ?? 'Dynamic') !== 'Static') {
    throw new ArmError(
      400,
      'StandardSkuPublicIPAddressesMustBeStatic',
      `Standard sku publicIp ${id} must have AllocationMethod set to Static.`,
    );
  }
}

/** A NIC's IP configuration: its subnet (and public IP) must exist, in the NIC's location. */
export function checkIpConfiguration(store: AzureStore, nicId: string, location: string, cp: J): void {
  const subnet = ref(cp.subnet);
  const m = subnet ? /^(.*)\/subnets\/([^/]+)$/i.exec(subnet) : null;
  const vnet = m ? store.lookup(m[1]!, 'Microsoft.Network/virtualNetworks') : undefined;
  const hasSubnet =
    vnet &&
    ((vnet.body.properties as J).subnets as J[] | undefined)?.some((s) => lower(String(s.name)) === lower(m![2]!));
  if (!m || !vnet || !hasSubnet)
    throw new ArmError(
      400,
      'InvalidResourceReference',
      `Resource ${String(subnet)} referenced by resource ${nicId} was not found.`,
    );
  if (vnet.location !== location)
    throw new ArmError(
      400,
      'InvalidResourceReference',
      `Subnet ${subnet} and network interface ${nicId} are in different locations.`,
    );
  const pip = ref(cp.publicIPAddress);
  const pipRes = pip ? store.lookup(pip, 'Microsoft.Network/publicIPAddresses') : undefined;
  if (pip && (!pipRes || pipRes.location !== location)) {
    throw new ArmError(
      400,
      'InvalidResourceReference',
      `Resource ${pip} referenced by resource ${nicId} was not found.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Virtual machines

/** A VM's PUT body, checked and read. */
export interface VmSpec {
  location: string;
  props: J;
  os: J;
  size: string;
  priority: AzureVm['priority'];
  customData?: string;
  /** `properties.userData`, base64 as given. */
  userData?: string;
  image: J;
  osDisk: J;
  nics: J[];
  /** What the image reference resolved to (generation, OS disk size, NVIDIA driver). */
  resolved: ResolvedImage;
  /** The security type the VM gets, as given or as Azure defaults it. */
  security: VmSecurity;
}

export interface VmSecurity {
  securityType: 'Standard' | 'TrustedLaunch';
  secureBoot: boolean;
  vTpm: boolean;
}

/** The VM PUT's checks, in the order ARM and the compute provider apply them. */
export function checkVmPut(store: AzureStore, g: Group, name: string, body: J): VmSpec {
  const type = 'Microsoft.Compute/virtualMachines';
  const id = `/subscriptions/${store.sub}/resourceGroups/${g.name}/providers/${type}/${name}`;
  const location = body.location;
  if (typeof location !== 'string' || !location) throw locationRequired();
  if (g.resources.has(lower(`${type}/${name}`)))
    throw new ArmError(409, 'Conflict', `The fake does not update VMs: ${id} exists.`);
  if (body.properties === undefined) throw invalid("Required parameter 'properties' is missing (null).", 'properties');
  const p = body.properties as J;
  const size = (p.hardwareProfile as J | undefined)?.vmSize;
  if (typeof size !== 'string' || !/^(Standard|Basic)_\w+$/.test(size))
    throw invalid(`The value '${String(size)}' provided for the VM size is not valid.`, 'hardwareProfile.vmSize');
  const os = (p.osProfile ?? {}) as J;
  const customData = checkOsProfile(os);
  const userData = checkUserData(p.userData);
  const storage = (p.storageProfile ?? {}) as J;
  const image = storage.imageReference as J | undefined;
  if (!image) throw invalid("Required parameter 'storageProfile.imageReference' is missing (null).", 'imageReference');
  if (typeof image.id !== 'string' && !(image.publisher && image.offer && image.sku && image.version)) {
    throw invalid('The image reference needs publisher, offer, sku and version, or an id.', 'imageReference');
  }
  const osDisk = (storage.osDisk ?? {}) as J;
  if (osDisk.deleteOption !== undefined && !['Delete', 'Detach'].includes(String(osDisk.deleteOption)))
    throw invalid('osDisk.deleteOption must be Delete or Detach.', 'osDisk.deleteOption');
  const priority = checkPriority(p);
  const nics = ((p.networkProfile as J | undefined)?.networkInterfaces as J[] | undefined) ?? [];
  if (!nics.length) throw invalid('At least one network interface is required.', 'networkProfile');
  for (const n of nics) checkVmNic(store, g, location, n);
  const diag = ((p.diagnosticsProfile as J | undefined)?.bootDiagnostics ?? {}) as J;
  if (diag.enabled === true && diag.storageUri !== undefined)
    throw invalid('The fake serves managed boot diagnostics only (no storageUri).', 'bootDiagnostics.storageUri');
  checkVmSize(store, id, location, size);
  const resolved = checkImage(store, image);
  const security = checkSecurity(p, size, resolved);
  checkOsDiskSize(osDisk, resolved);
  return {
    resolved,
    security,
    location,
    props: p,
    os,
    size,
    priority,
    ...(customData !== undefined ? { customData } : {}),
    ...(userData ? { userData } : {}),
    image,
    osDisk,
    nics,
  };
}

/**
 * A VM's `userData`, on its PUT or PATCH: base64, 64 KB decoded ("The size can't exceed 64 KB"),
 * which ARM checks as a length of 87384 characters, refused with InvalidParameter and this
 * wording. An empty string deletes it.
 * https://learn.microsoft.com/azure/virtual-machines/user-data
 * https://github.com/Azure/azure-powershell/issues/16597 (ARM's refusal, 2021-12-08)
 */
export function checkUserData(ud: unknown): string | undefined {
  if (ud === undefined || ud === null) return undefined;
  if (
    typeof ud !== 'string' ||
    ud.length > 87384 ||
    !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(ud)
  ) {
    throw invalid('UserData must be in Base64 encoding and with a maximum length of 87384 characters.', 'userData');
  }
  return ud;
}

/**
 * The size must be sold in the region (retired sizes nowhere): else InvalidParameter, as for a
 * size the region lacks. A size restricted for the subscription (in the region, or in every
 * zone of it) is SkuNotAvailable.
 */
function checkVmSize(store: AzureStore, id: string, location: string, size: string): void {
  const offered = RETIRED_SIZES.has(size.toLowerCase()) ? undefined : regionalSize(location, size);
  if (!offered) {
    const names = regionalSizes(location).map((r) => r.size.name);
    throw new ArmError(
      400,
      'InvalidParameter',
      `The requested VM size ${size} is not available in the current region. The sizes available in the current region are: ${names.join(',')}. Find out more on the available VM sizes in each region at https://aka.ms/azure-regions.`,
      { target: 'vmSize' },
    );
  }
  if (offered.restricted) {
    const zones = offered.restricted === 'zones' ? offered.zones.join(',') : '';
    throw new ArmError(
      409,
      'SkuNotAvailable',
      `The requested size for resource '${id}' is currently not available in location '${location}' zones '${zones}' for subscription '${store.sub}'. Please try another size or deploy to a different location or zones. See https://aka.ms/azureskunotavailable for details.`,
    );
  }
}

function checkImage(store: AzureStore, image: J): ResolvedImage {
  const resolved = resolveImage(store.sub, image);
  if (resolved) return resolved;
  if (typeof image.id === 'string') {
    throw new ArmError(404, 'NotFound', `The Image '${image.id}' cannot be found in the subscription.`);
  }
  const urn = [image.publisher, image.offer, image.sku, image.version].map(String).join(':');
  throw new ArmError(
    404,
    'PlatformImageNotFound',
    `The platform image '${urn}' is not available. Verify that all fields in the storage profile are correct. For more details about storage profile information, please refer to https://aka.ms/storageprofile`,
    { target: 'imageReference' },
  );
}

const TL_FAQ = 'For more information, see https://aka.ms/TrustedLaunch-FAQ';

/**
 * The security type: as given, else what Azure defaults a new VM to: Trusted Launch with Secure
 * Boot and vTPM on, whenever the image is a Gen2 one that takes it and the size supports it.
 */
function checkSecurity(p: J, size: string, image: ResolvedImage): VmSecurity {
  const spec = SIZES.get(size.toLowerCase())!;
  const sp = (p.securityProfile ?? {}) as J;
  const uefi = (sp.uefiSettings ?? {}) as J;
  if (image.generation === 'V1' && spec.generations === 'V2') {
    throw new ArmError(
      400,
      'BadRequest',
      `The selected VM size '${size}' cannot boot Hypervisor Generation '1'. If this was a Create operation please check that the Hypervisor Generation of the Image matches the Hypervisor Generation of the selected VM Size. If this was an Update operation please select a Hypervisor Generation '1' VM Size.`,
    );
  }
  const imageTakesTl = image.generation === 'V2' && image.kind !== 'managed';
  const given = sp.securityType;
  if (given !== undefined && given !== 'Standard' && given !== 'TrustedLaunch') {
    throw invalid(`The value '${String(given)}' of parameter 'securityProfile.securityType' is not valid.`);
  }
  const type = given ?? (imageTakesTl && !spec.noTrustedLaunch ? 'TrustedLaunch' : 'Standard');
  if (type === 'TrustedLaunch' && spec.noTrustedLaunch) {
    throw new ArmError(
      400,
      'BadRequest',
      `The VM size '${size}' is not supported for creation of VMs and Virtual Machine Scale Set with 'TrustedLaunch' security type. ${TL_FAQ}`,
    );
  }
  if (type === 'TrustedLaunch' && !imageTakesTl) {
    throw new ArmError(
      400,
      'BadRequest',
      `Use of TrustedLaunch setting is not supported for the provided image. Please select Trusted Launch Supported Gen2 OS Image. ${TL_FAQ}`,
    );
  }
  if (type === 'Standard' && image.trustedLaunchOnly) {
    throw new ArmError(
      400,
      'BadRequest',
      "The provided gallery image only supports creation of VMs and VM Scale Sets with 'TrustedLaunch' security type.",
    );
  }
  if (type === 'Standard') return { securityType: 'Standard', secureBoot: false, vTpm: false };
  // Unless turned off, Trusted Launch has Secure Boot and vTPM on.
  return {
    securityType: 'TrustedLaunch',
    secureBoot: uefi.secureBootEnabled !== false,
    vTpm: uefi.vTpmEnabled !== false,
  };
}

function checkOsDiskSize(osDisk: J, image: ResolvedImage): void {
  const given = osDisk.diskSizeGB;
  if (given === undefined) return;
  if (typeof given !== 'number' || !Number.isInteger(given) || given < 1)
    throw invalid(`The value '${String(given)}' of parameter 'osDisk.diskSizeGB' is not valid.`, 'osDisk.diskSizeGB');
  if (given < image.sizeGb) {
    throw new ArmError(
      409,
      'OperationNotAllowed',
      `The specified disk size ${given} GB is smaller than the size of the corresponding disk in the VM image: ${image.sizeGb} GB. This is not allowed. Please choose equal or greater size or do not specify an explicit size.`,
      { target: 'osDisk.diskSizeGB' },
    );
  }
}

/** Linux auth (a password, or SSH keys when passwords are off) and base64 customData; returns it decoded. */
function checkOsProfile(os: J): string | undefined {
  if (typeof os.computerName !== 'string' || typeof os.adminUsername !== 'string')
    throw invalid("Required parameter 'osProfile' is missing (null).", 'osProfile');
  const linux = (os.linuxConfiguration ?? {}) as J;
  const keys = ((linux.ssh as J | undefined)?.publicKeys as J[] | undefined) ?? [];
  if (linux.disablePasswordAuthentication === true ? keys.length === 0 : typeof os.adminPassword !== 'string') {
    throw invalid("Required parameter 'adminPassword' is missing (null).", 'adminPassword');
  }
  for (const k of keys) {
    if (
      typeof k.keyData !== 'string' ||
      !/^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/.test(k.keyData)
    ) {
      throw invalid(
        'The value of parameter linuxConfiguration.ssh.publicKeys.keyData is invalid.',
        'linuxConfiguration.ssh.publicKeys.keyData',
      );
    }
  }
  if (os.customData === undefined) return undefined;
  const cd = os.customData;
  if (typeof cd !== 'string' || cd.length > 87380 || !/^[A-Za-z0-9+/]*={0,2}$/.test(cd)) {
    throw invalid(
      'Custom data in OSProfile must be in Base64 encoding and with a maximum length of 87380 characters.',
      'customData',
    );
  }
  return Buffer.from(cd, 'base64').toString('utf8');
}

/** Spot fields (evictionPolicy, billingProfile.maxPrice) only with Spot or Low priority. */
function checkPriority(p: J): AzureVm['priority'] {
  const priority = String(p.priority ?? 'Regular') as AzureVm['priority'];
  if (!['Regular', 'Spot', 'Low'].includes(priority))
    throw invalid(`The value '${priority}' of parameter 'priority' is not valid.`, 'priority');
  const max = (p.billingProfile as J | undefined)?.maxPrice;
  if (priority === 'Spot') {
    if (!['Delete', 'Deallocate'].includes(String(p.evictionPolicy ?? 'Deallocate')))
      throw invalid('A Spot VM needs evictionPolicy Delete or Deallocate.', 'evictionPolicy');
    if (max !== undefined && max !== -1 && !(typeof max === 'number' && max > 0))
      throw invalid('billingProfile.maxPrice must be -1 or greater than 0.', 'billingProfile.maxPrice');
  } else if (p.evictionPolicy !== undefined || p.billingProfile !== undefined) {
    throw invalid('evictionPolicy and billingProfile are only for Spot (and Low) priority VMs.', 'evictionPolicy');
  }
  return priority;
}

function checkVmNic(store: AzureStore, g: Group, location: string, n: J): void {
  const nic: Resource | undefined = store.lookup(ref(n), 'Microsoft.Network/networkInterfaces');
  if (!nic) throw new ArmError(404, 'NotFound', `Resource ${String(ref(n))} was not found.`);
  if (nic.location !== location)
    throw new ArmError(
      400,
      'NicInDifferentLocation',
      `The network interface ${nic.id} is in '${nic.location}', the VM in '${location}'.`,
    );
  if (store.allVms.some((v) => !v.deleted && lower(v.group) === lower(g.name) && v.nicId === lower(nic.id))) {
    throw new ArmError(
      400,
      'NicInUse',
      `Network Interface ${nic.id} is used by existing resource. In order to create a new resource, please detach the NIC.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Faults: the services' own error shapes

/** Faults the VM PUT takes itself: capacity and quota (synchronous 409s) and allocation (in the async operation). */
export const VM_FAULTS = new Set([
  'SkuNotAvailable',
  'OperationNotAllowed',
  'AllocationFailed',
  'ZonalAllocationFailed',
  'OverconstrainedAllocationRequest',
]);
export const ASYNC_VM_FAULTS = new Set([
  'AllocationFailed',
  'ZonalAllocationFailed',
  'OverconstrainedAllocationRequest',
]);
export const ALLOCATION_MESSAGE =
  'Allocation failed. We do not have sufficient capacity for the requested VM size in this region. Read more about improving likelihood of allocation success at http://aka.ms/allocation-guidance';

function faultHeaders(f: Fault): Record<string, string> {
  if (f.retryAfter !== undefined) return { 'retry-after': String(f.retryAfter) };
  return f.code === 'TooManyRequests' ? { 'retry-after': '1' } : {};
}

/** An ARM fault: `TooManyRequests` is a 429 with Retry-After; any other code answers its status (default 503). */
export function armFault(f: Fault): ArmError {
  const code = f.code ?? (f.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable');
  const headers = faultHeaders({ ...f, code });
  if (code === 'TooManyRequests') {
    return new ArmError(
      f.status ?? 429,
      code,
      f.message ??
        'The request is being throttled as the limit has been reached for operation type - Write_ObservationWindow_00:05:00.',
      {},
      headers,
    );
  }
  return new ArmError(
    f.status ?? 503,
    code,
    f.message ?? 'The service is temporarily unavailable. Please try again later.',
    {},
    headers,
  );
}

/** An Entra fault: its code as the OAuth `error`, AADSTS50000, status 503 unless given. */
export function entraFault(f: Fault): EntraError {
  const code = f.code ?? (f.status === 429 ? 'temporarily_unavailable' : 'server_error');
  return new EntraError(
    f.status ?? 503,
    code,
    50000,
    f.message ?? 'There was an error issuing a token or an issue with our sign-in service.',
    faultHeaders(f),
  );
}

/** The VM PUT's synchronous capacity and quota refusals, after its validation. */
export function vmFaultError(fault: Fault | undefined, spec: VmSpec): ArmError | undefined {
  const { size, location, priority } = spec;
  if (fault?.code === 'SkuNotAvailable') {
    return new ArmError(
      fault.status ?? 409,
      'SkuNotAvailable',
      fault.message ??
        `The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: ${size}' is currently not available in location '${location}'. Please try another size or deploy to a different location or different zone. See https://aka.ms/azureskunotavailable for details.`,
    );
  }
  if (fault?.code === 'OperationNotAllowed') {
    const gpu = gpuOfSize(size);
    const cores = gpu ? Math.max(4, gpu.count * 4) : 4;
    return new ArmError(
      fault.status ?? 409,
      'OperationNotAllowed',
      fault.message ??
        `Operation could not be completed as it results in exceeding approved ${quotaFamily(size, priority)} Cores quota. Additional details - Deployment Model: Resource Manager, Location: ${location}, Current Limit: 0, Current Usage: 0, Additional Required: ${cores}, (Minimum) New Limit Required: ${cores}. Submit a request for Quota increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView by specifying parameters listed in the ‘Details’ section for deployment to succeed.`,
    );
  }
  return undefined;
}

/** The quota family a size counts against: Spot has its own regional pool. */
export function quotaFamily(size: string, priority: string): string {
  if (priority === 'Spot') return 'Total Regional Low-priority vCPUs';
  // Standard_NC4as_T4_v3 → standardNCASv3_T4Family; Standard_D8s_v5 → standardDSv5Family.
  const m = /^Standard_([A-Z]+)\d*([a-z]*)(?:_([A-Z]\d+\w*?))?_v(\d+)$/.exec(size);
  if (!m) return `standard${size.replace(/^Standard_/, '').replace(/[0-9_]/g, '')}Family`;
  const [, fam, feats, accel, ver] = m;
  return `standard${fam}${feats!.toUpperCase()}v${ver}${accel ? `_${accel}` : ''}Family`;
}
