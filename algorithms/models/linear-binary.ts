/**
 * What the binary linear models share (weights [w_0 .. w_{F-1}, bias], starting at zero: the
 * losses are convex, so zero is the neutral start and needs no seed). The passes are in
 * ../kernels/linear.ts; sparse-lr.ts, dense-lr.ts and svm.ts pick the loss and the batch kinds.
 */
import type { Batch, EvalResult, Model, ModelSpec } from '../model.js';
import { binaryPass, sparseGradientPass, type BinaryLoss } from '../kernels/linear.js';
import { createRng } from '../rng.js';
import { checkBatch, checkSize, checkWeights } from './checks.js';

export abstract class LinearBinaryModel implements Model {
  readonly size: number;
  constructor(
    readonly spec: ModelSpec,
    private readonly lossKind: BinaryLoss,
    private readonly accepts: { dense: boolean; sparse: boolean },
  ) {
    this.size = spec.features + 1;
    checkSize(spec, this.size);
  }

  init(seed: number): Float32Array {
    createRng(seed); // validates the seed; a convex model starts at zero
    return new Float32Array(this.size);
  }

  gradient(batch: Batch, weights: Float32Array, grad: Float32Array): number {
    this.check(batch, weights);
    checkWeights(this.spec.type, this.size, grad, 'grad');
    if (batch.kind === 'sparse') return sparseGradientPass(batch, weights, this.spec.features, this.lossKind === 'hinge', grad);
    return binaryPass(batch, weights, this.spec.features, this.lossKind, grad, null).loss;
  }

  evaluate(batch: Batch, weights: Float32Array): EvalResult {
    this.check(batch, weights);
    const scores = new Float32Array(batch.rows);
    const { loss, correct } = binaryPass(batch, weights, this.spec.features, this.lossKind, null, scores);
    return { rows: batch.rows, lossSum: loss, correct, scores };
  }

  predict(batch: Batch, weights: Float32Array): Float32Array {
    this.check(batch, weights);
    const scores = new Float32Array(batch.rows);
    binaryPass(batch, weights, this.spec.features, this.lossKind, null, scores);
    return scores;
  }

  private check(batch: Batch, weights: Float32Array): void {
    checkBatch(this.spec.type, batch, this.spec.features, this.accepts);
    checkWeights(this.spec.type, this.size, weights);
  }
}
