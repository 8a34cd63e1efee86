/**
 * Evaluating a model over whole dataset shards (a test split): the client's view of how a published
 * model does. A shard has the shape of a batch; rows are taken in slices so the MLP's activations
 * stay bounded. Matrix factorization reports the squared error, so its loss is the MSE.
 */
import type { Shard } from '../channels/index.js';
import { Evaluator, type EvalReport } from './metrics.js';
import type { Batch, Model } from './model.js';

/** Rows per slice: bounds the activations a deep model holds at once. */
const EVAL_SLICE_ROWS = 8192;

/** Whether a model's results carry one binary score per row (for AUC). */
function scoresBinary(model: Pick<Model, 'spec'>): boolean {
  const t = model.spec.type;
  return model.spec.classes <= 2 && t !== 'softmax' && t !== 'mlp' && t !== 'kmeans' && t !== 'mf';
}

/** Loss, accuracy (and AUC for binary scores) of `weights` over every row of `shards`. */
export function evaluateShards(model: Model, weights: Float32Array, shards: readonly Shard[], sliceRows = EVAL_SLICE_ROWS): EvalReport {
  const ev = new Evaluator(scoresBinary(model));
  for (const shard of shards) {
    if (shard.kind === 'ratings') {
      ev.add(model.evaluate({ kind: 'ratings', rows: shard.rows, users: shard.users, items: shard.items, ratings: shard.ratings }, weights));
      continue;
    }
    for (let start = 0; start < shard.rows; start += sliceRows) {
      const batch = shardRows(shard, start, Math.min(shard.rows, start + sliceRows));
      ev.add(model.evaluate(batch, weights), batch.labels);
    }
  }
  return ev.result();
}

/** Rows [start, end) of a sparse or dense shard as a batch (views, no copies). */
export function shardRows(shard: Exclude<Shard, { kind: 'ratings' }>, start: number, end: number): Batch {
  if (shard.kind === 'sparse') {
    return { kind: 'sparse', rows: end - start, cols: shard.cols, labels: shard.labels.subarray(start, end), indptr: shard.indptr.subarray(start, end + 1), indices: shard.indices, values: shard.values };
  }
  return { kind: 'dense', rows: end - start, cols: shard.cols, labels: shard.labels.subarray(start, end), x: shard.x.subarray(start * shard.cols, end * shard.cols) };
}
