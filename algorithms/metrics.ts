/**
 * Evaluation metrics. Binary labels are positive when > 0 (as in the models), scores are P(y=1)
 * or any score monotone in it. Multiclass probabilities are rows x classes, row-major.
 */
import { CirrusError } from '../paramserver/index.js';
import type { Batch, EvalResult, Model } from './model.js';

export type MetricsErrorCode = 'METRICS_LENGTH' | 'METRICS_VALUE' | 'METRICS_LABELS';

export class MetricsError extends CirrusError<MetricsErrorCode> {}

type Numbers = ArrayLike<number>;

function sameLength(what: string, labels: Numbers, values: Numbers, per = 1): void {
  if (values.length !== labels.length * per) {
    throw new MetricsError('METRICS_LENGTH', `${what}: ${labels.length} labels need ${labels.length * per} values, got ${values.length}`);
  }
}

/** Probabilities are clipped to [LOG_EPS, 1 - LOG_EPS] so a confident miss costs ~34.5, not Infinity. */
export const LOG_EPS = 1e-15;

/** Mean binary log-loss of P(y=1) = probs[i]. */
export function logLoss(labels: Numbers, probs: Numbers): number {
  sameLength('logLoss', labels, probs);
  if (labels.length === 0) return NaN;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(1 - LOG_EPS, Math.max(LOG_EPS, probs[i]));
    sum -= labels[i] > 0 ? Math.log(p) : Math.log(1 - p);
  }
  return sum / labels.length;
}

/** Binary accuracy: a row is predicted positive when its probability is > threshold. */
export function accuracy(labels: Numbers, probs: Numbers, threshold = 0.5): number {
  sameLength('accuracy', labels, probs);
  if (labels.length === 0) return NaN;
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if ((probs[i] > threshold) === (labels[i] > 0)) hits++;
  return hits / labels.length;
}

/** Top-1 accuracy from rows x classes probabilities; ties go to the lowest class. */
export function top1Accuracy(labels: Numbers, probs: Numbers, classes: number): number {
  if (!Number.isSafeInteger(classes) || classes < 1) throw new MetricsError('METRICS_VALUE', `top1Accuracy: classes must be a positive integer, got ${classes}`);
  sameLength('top1Accuracy', labels, probs, classes);
  if (labels.length === 0) return NaN;
  let hits = 0;
  for (let r = 0; r < labels.length; r++) {
    const o = r * classes;
    let arg = 0;
    for (let c = 1; c < classes; c++) if (probs[o + c] > probs[o + arg]) arg = c;
    if (arg === labels[r]) hits++;
  }
  return hits / labels.length;
}

/**
 * Exact ROC AUC by the Mann-Whitney U statistic: the probability that a random positive scores
 * above a random negative, ties counting one half. Rows are sorted by score and tied scores
 * share their average rank. NaN when only one class is present (AUC is undefined there).
 */
export function auc(labels: Numbers, scores: Numbers): number {
  sameLength('auc', labels, scores);
  const n = labels.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i])) throw new MetricsError('METRICS_VALUE', `auc: score of row ${i} is NaN`);
    order[i] = i;
  }
  // Compare, not subtract: Infinity - Infinity is NaN and would break the sort.
  order.sort((a, b) => (scores[a] < scores[b] ? -1 : scores[a] > scores[b] ? 1 : 0));
  let positives = 0;
  let rankSum = 0; // sum of the (1-based, tie-averaged) ranks of the positives
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && scores[order[j]] === scores[order[i]]) j++;
    const rank = (i + 1 + j) / 2; // average of ranks i+1 .. j
    for (let k = i; k < j; k++) {
      if (labels[order[k]] > 0) {
        positives++;
        rankSum += rank;
      }
    }
    i = j;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

export interface EvalReport {
  rows: number;
  /** Mean loss per row (lossSum / rows), without any L2 term. */
  loss: number;
  accuracy: number;
  /** Binary models only (when scores were added); NaN if only one class was seen. */
  auc?: number;
}

/** Accumulates EvalResults over many batches (and workers: see merge) into one report. */
export class Evaluator {
  private rows = 0;
  private lossSum = 0;
  private correct = 0;
  private scoreParts: Float32Array[] = [];
  private labelParts: Float32Array[] = [];
  private scored = 0;

  /** withAuc false: scores are ignored (multiclass, or when AUC's memory per row is not wanted). */
  constructor(private readonly withAuc = true) {}

  /** Adds one batch's result; `labels` (the batch's, first result.rows used) are needed for AUC. */
  add(result: EvalResult, labels?: Numbers): this {
    this.rows += result.rows;
    this.lossSum += result.lossSum;
    this.correct += result.correct;
    if (result.scores !== undefined && this.withAuc) {
      if (labels === undefined) throw new MetricsError('METRICS_LABELS', 'Evaluator.add: a result with scores needs the batch labels for AUC');
      if (labels.length < result.rows || result.scores.length !== result.rows) {
        throw new MetricsError('METRICS_LENGTH', `Evaluator.add: ${result.rows} rows but ${result.scores.length} scores and ${labels.length} labels`);
      }
      this.scoreParts.push(Float32Array.from(result.scores));
      this.labelParts.push(Float32Array.from({ length: result.rows }, (_, i) => labels[i]));
      this.scored += result.rows;
    }
    return this;
  }

  /** Evaluates a model on a batch and adds the result. */
  addBatch(model: Model, batch: Batch, weights: Float32Array): this {
    return this.add(model.evaluate(batch, weights), batch.labels);
  }

  /** Folds another evaluator (e.g. another worker's) into this one. */
  merge(other: Evaluator): this {
    this.rows += other.rows;
    this.lossSum += other.lossSum;
    this.correct += other.correct;
    this.scoreParts.push(...other.scoreParts);
    this.labelParts.push(...other.labelParts);
    this.scored += other.scored;
    return this;
  }

  report(): EvalReport {
    const out: EvalReport = {
      rows: this.rows,
      loss: this.rows > 0 ? this.lossSum / this.rows : NaN,
      accuracy: this.rows > 0 ? this.correct / this.rows : NaN,
    };
    if (this.scored > 0) {
      if (this.scored !== this.rows) {
        throw new MetricsError('METRICS_LABELS', `Evaluator.report: only ${this.scored} of ${this.rows} rows had scores, AUC would be wrong`);
      }
      out.auc = auc(concat(this.labelParts, this.scored), concat(this.scoreParts, this.scored));
    }
    return out;
  }

  /** Same as report(). */
  result(): EvalReport {
    return this.report();
  }
}

function concat(parts: Float32Array[], total: number): Float32Array {
  const out = new Float32Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
