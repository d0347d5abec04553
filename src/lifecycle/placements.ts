import type { Placement, PreparedCloud } from '../clouds/types.js';
import type { LaunchSpec } from '../config.js';

/** A placement a runner tried, with how it went. */
export interface TriedPlacement extends Placement {
  /** `obtained`, or the cloud's code for why not (InsufficientInstanceCapacity ...). */
  outcome: string;
}

/**
 * Where to try, in order: spot first when asked (every type, in every place), then on-demand
 * when on-demand-fallback allows; within a market, types in the order given, and for each type
 * the places (subnets, zones) in the order given. Only the types the cloud offers there, when it
 * said which.
 */
export function placementsFor(spec: LaunchSpec, cloud: Pick<PreparedCloud, 'places' | 'types'>): Placement[] {
  const markets = spec.machine.spot ? (spec.machine.onDemandFallback ? [true, false] : [true]) : [false];
  const types = cloud.types ?? spec.machine.types;
  return markets.flatMap((spot) =>
    types.flatMap((type) => cloud.places.map((where) => ({ type, spot, ...(where ? { where } : {}) }))),
  );
}

export const describePlacement = (p: Placement): string =>
  `${p.type}${p.where ? ` in ${p.where}` : ''} ${p.spot ? 'spot' : 'on-demand'}`;

/**
 * The placements of one launch, shared by all its runners: what is still worth trying and what
 * was refused. A placement one runner found without capacity is skipped by every other runner,
 * and once the spot market refused (a price, a market closed), no runner asks it again.
 */
export class Placements {
  private readonly full = new Set<string>();
  private spotRefused = false;
  private fallbackAnnounced = false;

  constructor(readonly order: readonly Placement[]) {}

  /** Placements still worth trying for a runner: not tried by it, not refused to any runner. */
  untried(attempts: readonly Placement[]): Placement[] {
    const mine = new Set(attempts.map(describePlacement));
    return this.order.filter((p) => this.worthTrying(p) && !mine.has(describePlacement(p)));
  }

  /** False once any runner was refused here (checked again just before each try). */
  worthTrying(p: Placement): boolean {
    return !this.full.has(describePlacement(p)) && !(p.spot && this.spotRefused);
  }

  /** A refusal: `market` closes spot for every runner, anything else closes this one placement. */
  refuse(p: Placement, kind: 'capacity' | 'market'): void {
    if (kind === 'market') this.spotRefused = true;
    else this.full.add(describePlacement(p));
  }

  /** True the first time a runner falls back from spot to on-demand, so it is said once per launch. */
  firstFallback(): boolean {
    if (this.fallbackAnnounced) return false;
    this.fallbackAnnounced = true;
    return true;
  }

  toString(): string {
    return this.order.map(describePlacement).join(' → ');
  }
}
