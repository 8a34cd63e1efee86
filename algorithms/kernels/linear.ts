/**
 * The passes of the binary linear models (logistic regression and the linear SVM), weights
 * [w_0 .. w_{F-1}, bias]. Labels > 0 are positive, so both {0,1} and {-1,+1} label sets work.
 */
import type { Batch, DenseBatch, SparseBatch } from '../model.js';

export type BinaryLoss = 'logistic' | 'hinge';

interface BinaryOut {
  loss: number;
  correct: number;
}

/**
 * One pass over a batch: margin z = w.x + b per row, the row loss, and (when grad is given) the
 * gradient dL/dz * x added into grad. Labels > 0 are positive. scores (optional) get sigmoid(z).
 */
export function binaryPass(batch: Batch, w: Float32Array, F: number, lossKind: BinaryLoss, grad: Float32Array | null, scores: Float32Array | null): BinaryOut {
  const hinge = lossKind === 'hinge';
  const { rows, labels } = batch;
  const bias = w[F];
  let loss = 0;
  let correct = 0;
  let biasGrad = 0;
  const sparse = batch.kind === 'sparse' ? batch : null;
  const dense = batch.kind === 'dense' ? batch : null;
  for (let r = 0; r < rows; r++) {
    let z = bias;
    let start = 0;
    let end = 0;
    if (sparse !== null) {
      const { indices, values } = sparse;
      start = sparse.indptr[r];
      end = sparse.indptr[r + 1];
      for (let p = start; p < end; p++) z += w[indices[p]] * values[p];
    } else {
      const x = (dense as DenseBatch).x;
      start = r * F;
      // unrolled on purpose: four independent accumulators let the adds overlap.
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let j = 0;
      for (; j + 4 <= F; j += 4) {
        s0 += w[j] * x[start + j];
        s1 += w[j + 1] * x[start + j + 1];
        s2 += w[j + 2] * x[start + j + 2];
        s3 += w[j + 3] * x[start + j + 3];
      }
      for (; j < F; j++) s0 += w[j] * x[start + j];
      z += s0 + s1 + s2 + s3;
    }
    const pos = labels[r] > 0;
    if ((z > 0) === pos) correct++; // z = 0 counts as a negative prediction
    let d: number;
    if (hinge) {
      const m = pos ? z : -z;
      if (m < 1) {
        loss += 1 - m;
        d = pos ? -1 : 1;
      } else d = 0; // at and past the kink the subgradient 0 is used
    } else {
      // One exp serves both the stable log(1 + exp(-y'z)) and the sigmoid.
      const e = Math.exp(-Math.abs(z));
      const sig = z >= 0 ? 1 / (1 + e) : e / (1 + e);
      const t = pos ? -z : z; // loss = log(1 + exp(t))
      loss += (t > 0 ? t : 0) + Math.log1p(e);
      d = sig - (pos ? 1 : 0);
    }
    if (scores !== null) scores[r] = z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
    if (grad !== null && d !== 0) {
      biasGrad += d;
      if (sparse !== null) {
        const { indices, values } = sparse;
        for (let p = start; p < end; p++) grad[indices[p]] += d * values[p];
      } else {
        const x = (dense as DenseBatch).x;
        for (let j = 0; j < F; j++) grad[j] += d * x[start + j];
      }
    }
  }
  if (grad !== null) grad[F] += biasGrad;
  return { loss, correct };
}

/**
 * binaryPass's sparse gradient case on its own, the training hot path: monomorphic, and both loops
 * unrolled by four with the four indices loaded first, which lets the CPU overlap the random reads
 * of w and grad (~1.3x faster here). The adds happen in the same order as binaryPass's, so the
 * results are bit-identical to it.
 */
export function sparseGradientPass(batch: SparseBatch, w: Float32Array, F: number, hinge: boolean, grad: Float32Array): number {
  // unrolled on purpose: this repeats binaryPass's sparse gradient case (see above), loops by four.
  const { rows, labels, indptr, indices, values } = batch;
  const bias = w[F];
  let loss = 0;
  let biasGrad = 0;
  for (let r = 0; r < rows; r++) {
    const start = indptr[r];
    const end = indptr[r + 1];
    let z = bias;
    let p = start;
    for (; p + 4 <= end; p += 4) {
      const i0 = indices[p], i1 = indices[p + 1], i2 = indices[p + 2], i3 = indices[p + 3];
      z += w[i0] * values[p];
      z += w[i1] * values[p + 1];
      z += w[i2] * values[p + 2];
      z += w[i3] * values[p + 3];
    }
    for (; p < end; p++) z += w[indices[p]] * values[p];
    const pos = labels[r] > 0;
    let d: number;
    if (hinge) {
      const m = pos ? z : -z;
      if (m >= 1) continue; // the subgradient 0 at and past the kink: nothing to add
      loss += 1 - m;
      d = pos ? -1 : 1;
    } else {
      const e = Math.exp(-Math.abs(z));
      const sig = z >= 0 ? 1 / (1 + e) : e / (1 + e);
      const t = pos ? -z : z;
      loss += (t > 0 ? t : 0) + Math.log1p(e);
      d = sig - (pos ? 1 : 0);
      if (d === 0) continue;
    }
    biasGrad += d;
    p = start;
    for (; p + 4 <= end; p += 4) {
      const i0 = indices[p], i1 = indices[p + 1], i2 = indices[p + 2], i3 = indices[p + 3];
      grad[i0] += d * values[p];
      grad[i1] += d * values[p + 1];
      grad[i2] += d * values[p + 2];
      grad[i3] += d * values[p + 3];
    }
    for (; p < end; p++) grad[indices[p]] += d * values[p];
  }
  grad[F] += biasGrad;
  return loss;
}
