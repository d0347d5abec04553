/**
 * Which of the fake's instance types each region offers: what DescribeInstanceTypeOfferings
 * (LocationType `region`) answers, and what RunInstances refuses with `Unsupported` elsewhere.
 *
 * Sources, per family:
 * - g4dn (every region below) and g5 (all but us-west-1): the availability zones EC2 lists for
 *   g4dn.xlarge and g5.* in skypilot-org/skypilot-catalog catalogs/v6/aws/vms.csv (built from
 *   DescribeInstanceTypeOfferings by zone; stored version at commit 001367d2), checked per region.
 * - Current CPU families (t3, t4g, m5, m7i, m7g, c5): offered in every region below (the same
 *   catalogue lists m7i-flex, a later family, in all seven).
 * - The previous Xen generations (t2, m4, c4) predate eu-north-1, which opened with fifth
 *   generation types only.
 * - GPU families beyond g4dn and g5 (g5g, g6, g6e, p3, p3dn, p4d, p5): not checked against a
 *   regional table; the fake keeps the regions each family is known to run in and leaves out
 *   every unclear one (the less convenient reading: the product must cope with "not here").
 *
 * Regions outside the table (any other region a request is signed for) offer nothing.
 */

const ALL = ['us-east-1', 'us-east-2', 'us-west-1', 'us-west-2', 'eu-west-1', 'eu-north-1', 'eu-central-1'] as const;
export type FakeRegion = (typeof ALL)[number];
const except = (...left: FakeRegion[]): FakeRegion[] => ALL.filter((r) => !left.includes(r));

/** Regions per instance family (the part of the type before the dot). */
export const FAMILY_REGIONS: Readonly<Record<string, readonly FakeRegion[]>> = {
  t2: except('eu-north-1'),
  m4: except('eu-north-1'),
  c4: except('eu-north-1'),
  t3: ALL,
  t4g: ALL,
  m5: ALL,
  m7i: ALL,
  m7g: ALL,
  c5: ALL,
  g4dn: ALL,
  g5: except('us-west-1'),
  g5g: ['us-east-1', 'us-east-2', 'us-west-2'],
  g6: ['us-east-1', 'us-east-2', 'us-west-2', 'eu-central-1', 'eu-north-1'],
  g6e: ['us-east-1', 'us-east-2', 'us-west-2', 'eu-north-1'],
  p3: ['us-east-1', 'us-east-2', 'us-west-2', 'eu-west-1', 'eu-central-1'],
  p3dn: ['us-east-1', 'us-west-2'],
  p4d: ['us-east-1', 'us-east-2', 'us-west-2', 'eu-west-1', 'eu-central-1'],
  p5: ['us-east-1', 'us-east-2', 'us-west-2', 'eu-north-1'],
};

/** Whether `region` offers `instanceType` (a type of an unknown family is offered nowhere). */
export function offered(region: string, instanceType: string): boolean {
  const family = instanceType.split('.')[0] ?? '';
  return (FAMILY_REGIONS[family] as readonly string[] | undefined)?.includes(region) ?? false;
}

/**
 * RunInstances of a type the region does not offer at all: `Unsupported` with this message
 * (https://github.com/hashicorp/terraform-provider-aws/issues/9113, 2019-06-24). A type offered in
 * the region but not in the subnet's zone gets "Your requested instance type (t3.micro) is not
 * supported in your requested Availability Zone (us-east-1e). Please retry your request by not
 * specifying an Availability Zone or choosing us-east-1a, ..." instead
 * (https://github.com/ned1313/Getting-Started-Terraform/issues/44, 2025-05-21); the fake's zones
 * offer what their region offers.
 */
export const UNSUPPORTED_CONFIGURATION =
  'The requested configuration is currently not supported. Please check the documentation for supported configurations.';
