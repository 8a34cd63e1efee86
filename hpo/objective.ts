/** What a search optimises, and how trials compare on it. */
import { z } from 'zod';
import { hasAccuracy, type EpochLogs, type TrainMetrics } from '../client/index.js';

export const OBJECTIVE_METRICS = ['testAccuracy', 'testLoss', 'testAuc', 'trainLoss'] as const;
export type ObjectiveMetric = (typeof OBJECTIVE_METRICS)[number];

export interface Objective {
  metric: ObjectiveMetric;
  mode: 'max' | 'min';
}

export const DEFAULT_OBJECTIVE: Objective = { metric: 'testAccuracy', mode: 'max' };

/** Models whose runs have no accuracy to compare (client's hasAccuracy): k-means and matrix factorization. */
export function isLossOnlyModel(model: unknown): boolean {
  return !hasAccuracy(model);
}

/** Accuracy and AUC are maximised, losses minimised, unless the mode says otherwise. */
export const objectiveSchema = z
  .object({ metric: z.enum(OBJECTIVE_METRICS), mode: z.enum(['max', 'min']).optional() })
  .strict()
  .transform((o): Objective => ({ metric: o.metric, mode: o.mode ?? (o.metric === 'testAccuracy' || o.metric === 'testAuc' ? 'max' : 'min') }));

/** The objective's value in a metrics object or an evaluation row; NaN when absent. */
export function objectiveValue(objective: Objective, m: TrainMetrics | EpochLogs | undefined): number {
  const v = m?.[objective.metric];
  return typeof v === 'number' ? v : NaN;
}

/**
 * Negative when `a` is better than `b`. A missing (NaN) value is worse than any number; equal
 * values fall back to `tieBreak` (the trial ids: the earlier trial wins), so ranks are stable.
 */
export function compareByObjective(objective: Objective, a: number, b: number, tieBreak: number): number {
  const aBad = Number.isNaN(a);
  const bBad = Number.isNaN(b);
  if (aBad || bBad) return aBad && bBad ? tieBreak : aBad ? 1 : -1;
  if (a === b) return tieBreak;
  return objective.mode === 'max' ? b - a : a - b;
}

/** An objective's value as people read it: accuracy in percent, the others (AUC, losses) to four decimals. */
export function formatObjective(objective: Objective, value: number): string {
  if (Number.isNaN(value)) return '-';
  return objective.metric === 'testAccuracy' ? `${(100 * value).toFixed(2)}%` : value.toFixed(4);
}
