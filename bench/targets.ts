/**
 * Issue 17's targets and how a measured value is judged against one: met, or missed by how
 * much. Pure, so `npm run bench` and its unit test share one reading of "met".
 */

/** `max`: the measured value must not exceed the goal; `min`: it must reach it. */
export type Direction = 'max' | 'min';

export interface Target {
  name: string;
  direction: Direction;
  goal: number;
  unit: string;
  /** How the goal was derived, when it is relative (e.g. "1.0 × the PC/SC floor of 0.72 ms"). */
  basis?: string;
}

export interface Verdict extends Target {
  measured: number;
  met: boolean;
  /** How far past the goal, in its unit (0 when met). */
  missedBy: number;
  /** The same as a fraction of the goal (0.25 = 25 % past it). */
  missedByFraction: number;
}

export function judge(target: Target, measured: number): Verdict {
  const met = Number.isFinite(measured) && (target.direction === 'max' ? measured <= target.goal : measured >= target.goal);
  const over = target.direction === 'max' ? measured - target.goal : target.goal - measured;
  const missedBy = met ? 0 : Number.isFinite(over) ? over : Number.POSITIVE_INFINITY;
  return { ...target, measured, met, missedBy, missedByFraction: target.goal === 0 ? missedBy : missedBy / target.goal };
}

const fixed = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

/** One line: "met" or "MISSED by 1.2 ms (40 %)"; a value that was not measured says so. */
export function describeVerdict(v: Verdict): string {
  if (!Number.isFinite(v.goal)) return 'NO GOAL (its baseline is unknown)';
  if (!Number.isFinite(v.measured)) return 'NOT MEASURED';
  if (v.met) return 'met';
  return `MISSED by ${fixed(v.missedBy)}${v.unit ? ` ${v.unit}` : ''} (${(v.missedByFraction * 100).toFixed(0)} %)`;
}

export function describeGoal(t: Target): string {
  return `${t.direction === 'max' ? '≤' : '≥'} ${fixed(t.goal)}${t.unit ? ` ${t.unit}` : ''}`;
}

/** The issue's fixed goals; the relative ones (× floor, × bare Node, × baseline) are built in the run. */
export const GOALS = {
  /** NHI basic read, concurrency 1, p50 as a multiple of connect + the read's APDUs through pcsclite. */
  nhiReadTimesFloor: 1.0,
  /** HiPKI pkcs11info, concurrency 1, p50 as a multiple of its own PC/SC floor. */
  moicaInfoTimesFloor: 1.0,
  /** /echo GetBasic throughput at 8 connections, as a multiple of the baseline in bench/baseline.json. */
  echoThroughputTimesBaseline: 3,
  statusPerSecondAt64: 15_000,
  coldStartMedianMs: 300,
  /** `cardbridge --version` wall time as a multiple of `node -e 0`. */
  versionTimesBareNode: 1.5,
  idleRssMb: 60,
  afterLoadRssMb: 80,
  /** cardbridge's part of insert → card-inserted: from pcscd's own report to the event. */
  insertEventOwnMs: 5,
} as const;
