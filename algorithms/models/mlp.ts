/**
 * The multi-layer perceptron. With widths d_0 = F, d_1 .. d_L-1 = hidden, d_L = classes, the
 * weights are, for each layer l = 0 .. L-1 in order, W_l (d_{l+1} x d_l, row-major: row o holds the
 * weights INTO unit o), then b_l (d_{l+1}). Hidden layers use ReLU, the output layer softmax.
 * Initial weights: He-normal (std sqrt(2/fan_in)) for the ReLU layers and Glorot-uniform for the
 * softmax layer, from a seeded PRNG; biases are 0.
 *
 * Dense matmuls run on the JS kernels or, once enableTfjsKernels() succeeded, on tfjs
 * (../kernels/tfjs-backend.ts); a sparse first layer always runs here, on the nonzeros.
 */
import type { Batch, DenseBatch, EvalResult, Model, ModelSpec } from '../model.js';
import { jsKernels, makeTfjsKernels, type LayerKernels } from '../kernels/layer-kernels.js';
import { activeTfjs } from '../kernels/tfjs-backend.js';
import { createRng } from '../rng.js';
import { ModelError } from './base.js';
import { checkBatch, checkMulticlass, checkSize, checkWeights } from './checks.js';
import { softmaxRows } from './softmax.js';

/** A multi-layer perceptron: ReLU hidden layers, softmax output; dense and sparse batches. */
export class MLP implements Model {
  readonly size: number;
  /** Which matmul kernels this instance uses (fixed at construction). */
  readonly kernels: 'js' | 'tfjs';
  /** Layer widths d_0 = features .. d_L = classes. */
  readonly dims: readonly number[];
  /** Offset of W_l in the weight vector; b_l follows at wOff[l] + d_{l+1} * d_l. */
  readonly wOff: readonly number[];
  private readonly impl: LayerKernels;
  /** acts[l]: layer l's input activations for l >= 1 (acts[L] holds the logits). */
  private acts: Float32Array[] = [];
  private deltas: Float32Array[] = [];
  private capacity = 0;

  constructor(readonly spec: ModelSpec, kernels: 'auto' | 'js' = 'auto') {
    checkMulticlass(spec);
    const hidden = spec.hidden;
    if (!Array.isArray(hidden) || hidden.length === 0) {
      throw new ModelError('MODEL_SPEC', `mlp: spec.hidden must list at least one hidden layer width, got ${JSON.stringify(hidden)}`);
    }
    hidden.forEach((h, i) => {
      if (!Number.isSafeInteger(h) || h < 1) throw new ModelError('MODEL_SPEC', `mlp: spec.hidden[${i}] must be a positive integer, got ${h}`);
    });
    this.dims = [spec.features, ...hidden, spec.classes];
    const wOff: number[] = [];
    let size = 0;
    for (let l = 0; l + 1 < this.dims.length; l++) {
      wOff.push(size);
      size += this.dims[l + 1] * this.dims[l] + this.dims[l + 1];
    }
    this.wOff = wOff;
    this.size = size;
    checkSize(spec, size);
    const tf = kernels === 'auto' ? activeTfjs() : null;
    this.impl = tf === null ? jsKernels : makeTfjsKernels(tf);
    this.kernels = this.impl.name;
  }

  init(seed: number): Float32Array {
    const rng = createRng(seed);
    const w = new Float32Array(this.size);
    const L = this.dims.length - 1;
    for (let l = 0; l < L; l++) {
      const fanIn = this.dims[l], fanOut = this.dims[l + 1];
      const o = this.wOff[l];
      if (l < L - 1) {
        const std = Math.sqrt(2 / fanIn); // He: keeps ReLU activations' variance steady
        for (let i = 0; i < fanIn * fanOut; i++) w[o + i] = std * rng.normal();
      } else {
        const a = Math.sqrt(6 / (fanIn + fanOut)); // Glorot for the linear softmax layer
        for (let i = 0; i < fanIn * fanOut; i++) w[o + i] = a * (2 * rng.uniform() - 1);
      }
    }
    return w;
  }

  gradient(batch: Batch, weights: Float32Array, grad: Float32Array): number {
    checkWeights('mlp', this.size, grad, 'grad');
    const { loss } = this.forward(batch, weights, true);
    const { rows } = batch;
    if (rows === 0) return loss; // nothing to back-propagate (and tfjs would see empty tensors)
    const dims = this.dims, L = dims.length - 1;
    for (let l = L - 1; l >= 0; l--) {
      const inDim = dims[l], outDim = dims[l + 1];
      const dZ = this.acts[l + 1]; // at l = L - 1 this holds p - y; below, the back-propagated delta
      const wOff = this.wOff[l], bOff = wOff + outDim * inDim;
      for (let r = 0; r < rows; r++) {
        const o = r * outDim;
        for (let c = 0; c < outDim; c++) grad[bOff + c] += dZ[o + c];
      }
      if (l === 0 && batch.kind === 'sparse') {
        const { indptr, indices, values } = batch;
        for (let r = 0; r < rows; r++) {
          const o = r * outDim;
          for (let p = indptr[r]; p < indptr[r + 1]; p++) {
            const idx = wOff + indices[p], v = values[p];
            for (let c = 0; c < outDim; c++) grad[idx + c * inDim] += dZ[o + c] * v;
          }
        }
      } else {
        const H = l === 0 ? (batch as DenseBatch).x : this.acts[l];
        this.impl.weightGrad(dZ, H, rows, inDim, outDim, grad, wOff);
      }
      if (l > 0) {
        const dH = this.deltas[l];
        this.impl.inputGrad(dZ, weights, wOff, rows, inDim, outDim, dH);
        // Through the ReLU: the delta passes only where the unit was active.
        const H = this.acts[l];
        for (let i = 0; i < rows * inDim; i++) H[i] = H[i] > 0 ? dH[i] : 0;
      }
    }
    return loss;
  }

  evaluate(batch: Batch, weights: Float32Array): EvalResult {
    const { loss, correct } = this.forward(batch, weights, false);
    return { rows: batch.rows, lossSum: loss, correct };
  }

  predict(batch: Batch, weights: Float32Array): Float32Array {
    this.forward(batch, weights, false);
    if (batch.rows === 0) return new Float32Array(0);
    return this.acts[this.dims.length - 1].slice(0, batch.rows * this.spec.classes);
  }

  private ensure(rows: number): void {
    if (rows <= this.capacity) return;
    const cap = Math.max(rows, 2 * this.capacity);
    this.acts = this.dims.map((d, l) => (l === 0 ? new Float32Array(0) : new Float32Array(cap * d)));
    this.deltas = this.dims.map((d, l) => (l === 0 || l === this.dims.length - 1 ? new Float32Array(0) : new Float32Array(cap * d)));
    this.capacity = cap;
  }

  /** Forward pass; leaves probabilities (or p - y when `gradient`) in acts[L]. */
  private forward(batch: Batch, w: Float32Array, gradient: boolean): { loss: number; correct: number } {
    checkBatch('mlp', batch, this.spec.features, { dense: true, sparse: true });
    checkWeights('mlp', this.size, w);
    const { rows } = batch;
    if (rows === 0) return { loss: 0, correct: 0 };
    this.ensure(rows);
    const dims = this.dims, L = dims.length - 1;
    for (let l = 0; l < L; l++) {
      const inDim = dims[l], outDim = dims[l + 1];
      const wOff = this.wOff[l], bOff = wOff + outDim * inDim;
      const Z = this.acts[l + 1];
      if (l === 0 && batch.kind === 'sparse') {
        Z.fill(0, 0, rows * outDim);
        const { indptr, indices, values } = batch;
        for (let r = 0; r < rows; r++) {
          const o = r * outDim;
          for (let p = indptr[r]; p < indptr[r + 1]; p++) {
            const idx = wOff + indices[p], v = values[p];
            for (let c = 0; c < outDim; c++) Z[o + c] += w[idx + c * inDim] * v;
          }
        }
      } else {
        const H = l === 0 ? (batch as DenseBatch).x : this.acts[l];
        this.impl.forward(H, rows, inDim, w, wOff, outDim, Z);
      }
      const relu = l < L - 1;
      for (let r = 0; r < rows; r++) {
        const o = r * outDim;
        for (let c = 0; c < outDim; c++) {
          const v = Z[o + c] + w[bOff + c];
          Z[o + c] = relu && v < 0 ? 0 : v;
        }
      }
    }
    const out = { correct: 0 };
    const loss = softmaxRows('mlp', this.acts[L], rows, dims[L], batch.labels, gradient, out);
    return { loss, correct: out.correct };
  }
}
