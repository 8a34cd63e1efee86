/**
 * The plain in-process training loop. Distributed training with one worker must produce the same
 * weights, so this is the executable definition of one step:
 *
 *   grad = 0;  lossSum = model.gradient(batch, w, grad)
 *   g = grad / rows + l2 * w          (L2 on every weight, the bias included)
 *   optimizer.step(w, g)
 *
 * Batches with 0 rows are skipped (no step). The reported per-epoch loss is the mean data loss
 * over the epoch's rows as seen during training (each batch at the weights before its step),
 * without the L2 term.
 */
import { CirrusError } from '../paramserver/index.js';
import type { Batch, Model, Optimizer, OptimizerSpec } from './model.js';
import { createOptimizer } from './optimizers.js';

export type TrainingErrorCode = 'TRAIN_ARGUMENT';

export class TrainingError extends CirrusError<TrainingErrorCode> {}

export interface ReferenceOptions {
  model: Model;
  /** A spec (a fresh optimizer is built for model.size) or an optimizer to continue with. */
  optimizer: OptimizerSpec | Optimizer;
  /** Called once per epoch: the epoch's batches, in order. */
  batches: () => Iterable<Batch>;
  epochs: number;
  l2: number;
  /** Seed for model.init; ignored when `weights` is given. */
  seed: number;
  /** Starting weights (copied); default model.init(seed). */
  weights?: Float32Array;
  /** Called after each epoch with its index and mean training loss. */
  onEpoch?: (epoch: number, meanLoss: number, weights: Float32Array) => void;
}

export interface ReferenceResult {
  weights: Float32Array;
  /** Mean training loss (data loss, no L2) per epoch; NaN for an epoch without rows. */
  epochLoss: number[];
  /** Optimizer steps taken. */
  steps: number;
}

function isOptimizer(o: OptimizerSpec | Optimizer): o is Optimizer {
  return typeof (o as Optimizer).step === 'function';
}

export function trainReference(options: ReferenceOptions): ReferenceResult {
  const { model, epochs, l2 } = options;
  if (!Number.isSafeInteger(epochs) || epochs < 0) throw new TrainingError('TRAIN_ARGUMENT', `epochs must be a non-negative integer, got ${epochs}`);
  if (typeof l2 !== 'number' || !Number.isFinite(l2) || l2 < 0) throw new TrainingError('TRAIN_ARGUMENT', `l2 must be a finite number >= 0, got ${l2}`);
  const size = model.size;
  let weights: Float32Array;
  if (options.weights !== undefined) {
    if (options.weights.length !== size) throw new TrainingError('TRAIN_ARGUMENT', `weights has ${options.weights.length} entries, the model needs ${size}`);
    weights = options.weights.slice();
  } else {
    weights = model.init(options.seed);
  }
  const optimizer = isOptimizer(options.optimizer) ? options.optimizer : createOptimizer(options.optimizer, size);
  const grad = new Float32Array(size);
  const epochLoss: number[] = [];
  let steps = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    let lossSum = 0;
    let rows = 0;
    for (const batch of options.batches()) {
      if (batch.rows === 0) continue;
      grad.fill(0);
      lossSum += model.gradient(batch, weights, grad);
      rows += batch.rows;
      // Divide the sum once, then add L2: exactly what the distributed reduction does.
      const n = batch.rows;
      for (let i = 0; i < size; i++) grad[i] = grad[i] / n + l2 * weights[i];
      optimizer.step(weights, grad);
      steps++;
    }
    const mean = rows > 0 ? lossSum / rows : NaN;
    epochLoss.push(mean);
    options.onEpoch?.(epoch, mean, weights);
  }
  return { weights, epochLoss, steps };
}
