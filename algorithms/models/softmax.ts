/**
 * Multinomial logistic (softmax) regression, weights: classes rows of (F + 1), row c =
 * [w_c0 .. w_c,F-1, bias_c], starting at zero (convex loss). Multiclass labels must be integers in
 * [0, classes). Also the softmax cross-entropy the MLP's output layer shares.
 */
import type { Batch, EvalResult, Model, ModelSpec } from '../model.js';
import { gemmNT, gemmTN } from '../kernels/gemm.js';
import { createRng } from '../rng.js';
import { badLabel, checkBatch, checkMulticlass, checkSize, checkWeights } from './checks.js';

/**
 * Turns logits z (rows x C) into probabilities in place (or into p - onehot(label) when
 * `gradient`), returning the cross-entropy sum; counts argmax hits into out.correct.
 */
export function softmaxRows(name: string, z: Float32Array, rows: number, C: number, labels: Float32Array, gradient: boolean, out: { correct: number }): number {
  let loss = 0;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    if (!(label >= 0 && label < C && Number.isInteger(label))) throw badLabel(name, r, label, C);
    const o = r * C;
    let max = z[o];
    let arg = 0;
    for (let c = 1; c < C; c++) {
      if (z[o + c] > max) {
        max = z[o + c];
        arg = c;
      }
    }
    if (arg === label) correct++;
    // Subtracting the max keeps exp() <= 1: the log-sum-exp never overflows.
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(z[o + c] - max);
    loss += max + Math.log(sum) - z[o + label];
    const inv = 1 / sum;
    for (let c = 0; c < C; c++) z[o + c] = Math.exp(z[o + c] - max) * inv;
    if (gradient) z[o + label] -= 1;
  }
  out.correct = correct;
  return loss;
}

/** Multinomial logistic (softmax) regression; cross-entropy loss; dense and sparse batches. */
export class SoftmaxRegression implements Model {
  readonly size: number;
  private logits = new Float32Array(0);

  constructor(readonly spec: ModelSpec) {
    checkMulticlass(spec);
    this.size = spec.classes * (spec.features + 1);
    checkSize(spec, this.size);
  }

  init(seed: number): Float32Array {
    createRng(seed);
    return new Float32Array(this.size);
  }

  gradient(batch: Batch, weights: Float32Array, grad: Float32Array): number {
    checkWeights('softmax', this.size, grad, 'grad');
    const { z, loss } = this.forward(batch, weights, true);
    const { rows } = batch;
    const F = this.spec.features, C = this.spec.classes, ld = F + 1;
    // z now holds p - y: grad W += (p - y)^T x, grad b += column sums of (p - y).
    if (batch.kind === 'dense') {
      gemmTN(rows, C, F, z, 0, C, 1, batch.x, 0, F, grad, 0, ld);
    } else {
      const { indptr, indices, values } = batch;
      for (let r = 0; r < rows; r++) {
        const o = r * C;
        for (let p = indptr[r]; p < indptr[r + 1]; p++) {
          const idx = indices[p], v = values[p];
          for (let c = 0; c < C; c++) grad[c * ld + idx] += z[o + c] * v;
        }
      }
    }
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += z[r * C + c];
      grad[c * ld + F] += s;
    }
    return loss;
  }

  evaluate(batch: Batch, weights: Float32Array): EvalResult {
    const { loss, correct } = this.forward(batch, weights, false);
    return { rows: batch.rows, lossSum: loss, correct };
  }

  predict(batch: Batch, weights: Float32Array): Float32Array {
    return this.forward(batch, weights, false).z.slice(0, batch.rows * this.spec.classes);
  }

  /** Logits into the scratch buffer, then softmax (or p - y) in place. */
  private forward(batch: Batch, w: Float32Array, gradient: boolean): { z: Float32Array; loss: number; correct: number } {
    checkBatch('softmax', batch, this.spec.features, { dense: true, sparse: true });
    checkWeights('softmax', this.size, w);
    const { rows } = batch;
    const F = this.spec.features, C = this.spec.classes, ld = F + 1;
    if (this.logits.length < rows * C) this.logits = new Float32Array(rows * C);
    const z = this.logits;
    if (batch.kind === 'dense') {
      gemmNT(rows, C, F, batch.x, 0, F, w, 0, ld, z, 0, C, false);
      for (let r = 0; r < rows; r++) for (let c = 0; c < C; c++) z[r * C + c] += w[c * ld + F];
    } else {
      const { indptr, indices, values } = batch;
      for (let r = 0; r < rows; r++) {
        const o = r * C;
        for (let c = 0; c < C; c++) z[o + c] = w[c * ld + F];
        for (let p = indptr[r]; p < indptr[r + 1]; p++) {
          const idx = indices[p], v = values[p];
          for (let c = 0; c < C; c++) z[o + c] += w[c * ld + idx] * v;
        }
      }
    }
    const out = { correct: 0 };
    const loss = softmaxRows('softmax', z, rows, C, batch.labels, gradient, out);
    return { z, loss, correct: out.correct };
  }
}
