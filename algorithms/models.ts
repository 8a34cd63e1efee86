/**
 * The classical and small deep models behind the Model contract (./model.ts), all on hand-written
 * Float32Array kernels: JS numbers are float64, so every dot product accumulates in float64 and
 * only stored values (activations, gradients) round to float32.
 *
 * Labels: binary models read a row as positive when its label is > 0, so both {0,1} and {-1,+1}
 * label sets work. Multiclass models need integer labels in [0, classes) and throw otherwise.
 *
 * Batches: dense batches must have exactly `features` columns; sparse batches may declare fewer
 * (never more). Sparse feature indices are trusted to be < batch.cols: shards are validated when
 * decoded, and a check per nonzero would cost a large part of the sparse kernel's time.
 *
 * Weight layouts (one flat Float32Array each):
 * - sparse-lr, dense-lr, svm: [w_0 .. w_{F-1}, bias].
 * - softmax: classes rows of (F + 1): row c = [w_c0 .. w_c,F-1, bias_c].
 * - mlp with widths d_0 = F, d_1 .. d_L-1 = hidden, d_L = classes: for each layer l = 0 .. L-1
 *   in order, W_l (d_{l+1} x d_l, row-major: row o holds the weights INTO unit o), then b_l
 *   (d_{l+1}). Hidden layers use ReLU, the output layer softmax.
 *
 * Initial weights: linear models (LR, SVM, softmax) start at zero: their losses are convex, so
 * zero is the neutral start and needs no seed. The MLP draws He-normal weights (std sqrt(2/fan_in))
 * for ReLU layers and Glorot-uniform ones for the softmax layer from a seeded PRNG; biases are 0.
 *
 * MLP matmul kernels: plain JS by default. After `await enableTfjsKernels()`, MLPs created from then
 * on run their dense matmuls through tfjs (WASM SIMD backend, or tfjs-node when it is the active
 * backend), about 5-7x faster on one core than the JS loops. Results then differ from the JS path
 * at float32 rounding level, so a reference run and a distributed run that must match
 * should make the same choice (the model's `kernels` field tells which it uses).
 */
import type { Batch, DenseBatch, EvalResult, Model, ModelSpec, ModelType, SparseBatch } from './model.js';

import { ModelError, createRng } from './models/base.js';
import { KMeans } from './models/kmeans.js';
import { MatrixFactorization } from './models/mf.js';

export { ModelError, createRng, type ModelErrorCode, type Rng } from './models/base.js';

export const MODEL_TYPES: readonly ModelType[] = ['sparse-lr', 'dense-lr', 'svm', 'softmax', 'mlp', 'kmeans', 'mf'];

// ---------------------------------------------------------------------------------------------
// Dense kernels. Register-blocked so each loaded value feeds several independent accumulators:
// that is what lets V8's scalar code reach ~3 GFMA/s instead of ~1 for a naive dot product.

/**
 * C[cOff + i*ldc + j] (+)= sum_{t<k} A[aOff + i*lda + t] * B[bOff + j*ldb + t] for i < m, j < n,
 * i.e. C = A B^T with both operands read along contiguous rows.
 */
export function gemmNT(
  m: number, n: number, k: number,
  A: Float32Array, aOff: number, lda: number,
  B: Float32Array, bOff: number, ldb: number,
  C: Float32Array, cOff: number, ldc: number,
  accumulate: boolean,
): void {
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const a0 = aOff + i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
    const c0 = cOff + i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = bOff + j * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
      for (let t = 0; t < k; t++) {
        const w0 = B[b0 + t], w1 = B[b1 + t], w2 = B[b2 + t], w3 = B[b3 + t];
        let x = A[a0 + t];
        s00 += x * w0; s01 += x * w1; s02 += x * w2; s03 += x * w3;
        x = A[a1 + t];
        s10 += x * w0; s11 += x * w1; s12 += x * w2; s13 += x * w3;
        x = A[a2 + t];
        s20 += x * w0; s21 += x * w1; s22 += x * w2; s23 += x * w3;
        x = A[a3 + t];
        s30 += x * w0; s31 += x * w1; s32 += x * w2; s33 += x * w3;
      }
      if (accumulate) {
        C[c0 + j] += s00; C[c0 + j + 1] += s01; C[c0 + j + 2] += s02; C[c0 + j + 3] += s03;
        C[c1 + j] += s10; C[c1 + j + 1] += s11; C[c1 + j + 2] += s12; C[c1 + j + 3] += s13;
        C[c2 + j] += s20; C[c2 + j + 1] += s21; C[c2 + j + 2] += s22; C[c2 + j + 3] += s23;
        C[c3 + j] += s30; C[c3 + j + 1] += s31; C[c3 + j + 2] += s32; C[c3 + j + 3] += s33;
      } else {
        C[c0 + j] = s00; C[c0 + j + 1] = s01; C[c0 + j + 2] = s02; C[c0 + j + 3] = s03;
        C[c1 + j] = s10; C[c1 + j + 1] = s11; C[c1 + j + 2] = s12; C[c1 + j + 3] = s13;
        C[c2 + j] = s20; C[c2 + j + 1] = s21; C[c2 + j + 2] = s22; C[c2 + j + 3] = s23;
        C[c3 + j] = s30; C[c3 + j + 1] = s31; C[c3 + j + 2] = s32; C[c3 + j + 3] = s33;
      }
    }
    for (; j < n; j++) {
      const b0 = bOff + j * ldb;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let t = 0; t < k; t++) {
        const w = B[b0 + t];
        s0 += A[a0 + t] * w; s1 += A[a1 + t] * w; s2 += A[a2 + t] * w; s3 += A[a3 + t] * w;
      }
      if (accumulate) {
        C[c0 + j] += s0; C[c1 + j] += s1; C[c2 + j] += s2; C[c3 + j] += s3;
      } else {
        C[c0 + j] = s0; C[c1 + j] = s1; C[c2 + j] = s2; C[c3 + j] = s3;
      }
    }
  }
  for (; i < m; i++) {
    const a0 = aOff + i * lda, c0 = cOff + i * ldc;
    for (let j = 0; j < n; j++) {
      const b0 = bOff + j * ldb;
      let s0 = 0, s1 = 0;
      let t = 0;
      for (; t + 2 <= k; t += 2) {
        s0 += A[a0 + t] * B[b0 + t];
        s1 += A[a0 + t + 1] * B[b0 + t + 1];
      }
      if (t < k) s0 += A[a0 + t] * B[b0 + t];
      if (accumulate) C[c0 + j] += s0 + s1;
      else C[c0 + j] = s0 + s1;
    }
  }
}

/**
 * D[dOff + c*ldd + j] += sum_{r<m} G[gOff + r*gRow + c*gCol] * X[xOff + r*ldx + j] for c < n, j < k.
 * With (gRow, gCol) = (n, 1) this is D += G^T X (weight gradients); with (1, ldG) it is D += G X
 * (input gradients), so one kernel serves both without transposing anything.
 */
export function gemmTN(
  m: number, n: number, k: number,
  G: Float32Array, gOff: number, gRow: number, gCol: number,
  X: Float32Array, xOff: number, ldx: number,
  D: Float32Array, dOff: number, ldd: number,
): void {
  let r = 0;
  for (; r + 4 <= m; r += 4) {
    const x0 = xOff + r * ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
    const g0 = gOff + r * gRow, g1 = g0 + gRow, g2 = g1 + gRow, g3 = g2 + gRow;
    let c = 0;
    for (; c + 2 <= n; c += 2) {
      const o = c * gCol, p = o + gCol;
      const a0 = G[g0 + o], a1 = G[g1 + o], a2 = G[g2 + o], a3 = G[g3 + o];
      const b0 = G[g0 + p], b1 = G[g1 + p], b2 = G[g2 + p], b3 = G[g3 + p];
      const d0 = dOff + c * ldd, d1 = d0 + ldd;
      for (let j = 0; j < k; j++) {
        const v0 = X[x0 + j], v1 = X[x1 + j], v2 = X[x2 + j], v3 = X[x3 + j];
        D[d0 + j] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3;
        D[d1 + j] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3;
      }
    }
    for (; c < n; c++) {
      const o = c * gCol;
      const a0 = G[g0 + o], a1 = G[g1 + o], a2 = G[g2 + o], a3 = G[g3 + o];
      const d0 = dOff + c * ldd;
      for (let j = 0; j < k; j++) D[d0 + j] += a0 * X[x0 + j] + a1 * X[x1 + j] + a2 * X[x2 + j] + a3 * X[x3 + j];
    }
  }
  for (; r < m; r++) {
    const x0 = xOff + r * ldx, g0 = gOff + r * gRow;
    for (let c = 0; c < n; c++) {
      const a = G[g0 + c * gCol];
      if (a === 0) continue;
      const d0 = dOff + c * ldd;
      for (let j = 0; j < k; j++) D[d0 + j] += a * X[x0 + j];
    }
  }
}

/** out[j*rows + i] = A[aOff + i*cols + j]: an explicit transpose, blocked to stay in cache. */
export function transpose(A: Float32Array, aOff: number, rows: number, cols: number, out: Float32Array): Float32Array {
  const B = 32;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) {
        const a = aOff + i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = A[a + j];
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Optional tfjs matmuls for the MLP.

type Tf = typeof import('@tensorflow/tfjs-core');
let tfjs: Tf | null = null;

/**
 * Loads tfjs-core with its WASM backend and makes the MLP use tfjs matmuls: keeps an already
 * active 'tensorflow' (tfjs-node) or 'wasm' backend, otherwise switches to 'wasm'. Resolves to the
 * backend name. A backend that cannot start is an error that says why (MODEL_BACKEND), never a
 * silent fallback to the 4-5x slower JS kernels: a packaged worker missing its .wasm files must
 * fail loudly. Callers that want the JS kernels create the MLP with kernels: 'js'.
 */
export async function enableTfjsKernels(): Promise<string> {
  let tf: Tf;
  try {
    tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    throw new ModelError('MODEL_BACKEND', `tfjs could not be loaded for the MLP's matmuls: ${(err as Error).message}`);
  }
  const current = tf.getBackend();
  if (current !== 'tensorflow' && current !== 'wasm') {
    let ok = false;
    const warnings: string[] = [];
    // tfjs logs a failed backend init and resolves false; capture its reason for the error.
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      for (const a of args) warnings.push((a instanceof Error ? a.message : String(a)).split('\n')[0]!);
    };
    let why = '';
    try {
      ok = await tf.setBackend('wasm');
      if (ok) await tf.ready();
    } catch (err) {
      why = (err as Error).message;
      ok = false;
    } finally {
      console.warn = warn;
    }
    why ||= warnings.join('; ') || 'tf.setBackend returned false';
    if (!ok) throw new ModelError('MODEL_BACKEND', `the tfjs WASM backend failed to start (${why}); its .wasm files must sit beside the worker's code (the Lambda package carries them)`);
  }
  tfjs = tf;
  return tf.getBackend();
}

/** Returns new MLPs to the JS kernels (tfjs stays loaded). */
export function disableTfjsKernels(): void {
  tfjs = null;
}

/** The tfjs backend new MLPs will use, or null for the JS kernels. */
export function tfjsKernelBackend(): string | null {
  return tfjs === null ? null : tfjs.getBackend();
}

/** The three products an MLP layer needs; H (rows x inDim), W (outDim x inDim) at wOff in w. */
interface LayerKernels {
  readonly name: 'js' | 'tfjs';
  /** Z = H W^T (overwrites Z). */
  forward(H: Float32Array, rows: number, inDim: number, w: Float32Array, wOff: number, outDim: number, Z: Float32Array): void;
  /** grad[gOff ..] (outDim x inDim) += dZ^T H. */
  weightGrad(dZ: Float32Array, H: Float32Array, rows: number, inDim: number, outDim: number, grad: Float32Array, gOff: number): void;
  /** dH = dZ W (overwrites dH). */
  inputGrad(dZ: Float32Array, w: Float32Array, wOff: number, rows: number, inDim: number, outDim: number, dH: Float32Array): void;
}

const jsKernels: LayerKernels = {
  name: 'js',
  forward(H, rows, inDim, w, wOff, outDim, Z) {
    gemmNT(rows, outDim, inDim, H, 0, inDim, w, wOff, inDim, Z, 0, outDim, false);
  },
  weightGrad(dZ, H, rows, inDim, outDim, grad, gOff) {
    gemmTN(rows, outDim, inDim, dZ, 0, outDim, 1, H, 0, inDim, grad, gOff, inDim);
  },
  inputGrad(dZ, w, wOff, rows, inDim, outDim, dH) {
    dH.fill(0, 0, rows * inDim);
    // dH[i, :] += sum_o dZ[i, o] W[o, :]: the sum runs over o, so G's "row" step is 1.
    gemmTN(outDim, rows, inDim, dZ, 0, 1, outDim, w, wOff, inDim, dH, 0, inDim);
  },
};

/**
 * tfjs matmuls on explicitly transposed operands: the WASM backend's transposeA/transposeB flags
 * are about 10x slower than a transpose done here followed by a plain matMul.
 */
function makeTfjsKernels(tf: Tf): LayerKernels {
  let scratch = new Float32Array(0);
  const transposed = (A: Float32Array, aOff: number, rows: number, cols: number): Float32Array => {
    if (scratch.length < rows * cols) scratch = new Float32Array(rows * cols);
    return transpose(A, aOff, rows, cols, scratch.subarray(0, rows * cols));
  };
  const product = (a: Float32Array, aShape: [number, number], b: Float32Array, bShape: [number, number], out: Float32Array): void => {
    const ta = tf.tensor2d(a, aShape);
    const tb = tf.tensor2d(b, bShape);
    const tc = tf.matMul(ta, tb);
    try {
      out.set(tc.dataSync());
    } finally {
      ta.dispose();
      tb.dispose();
      tc.dispose();
    }
  };
  return {
    name: 'tfjs',
    forward(H, rows, inDim, w, wOff, outDim, Z) {
      product(H.subarray(0, rows * inDim), [rows, inDim], transposed(w, wOff, outDim, inDim), [inDim, outDim], Z);
    },
    weightGrad(dZ, H, rows, inDim, outDim, grad, gOff) {
      const g = new Float32Array(outDim * inDim);
      product(transposed(dZ, 0, rows, outDim), [outDim, rows], H.subarray(0, rows * inDim), [rows, inDim], g);
      for (let i = 0; i < g.length; i++) grad[gOff + i] += g[i];
    },
    inputGrad(dZ, w, wOff, rows, inDim, outDim, dH) {
      product(dZ.subarray(0, rows * outDim), [rows, outDim], w.subarray(wOff, wOff + outDim * inDim), [outDim, inDim], dH);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Shared checks.

function checkSpecBasics(spec: ModelSpec): void {
  if (spec === null || typeof spec !== 'object') throw new ModelError('MODEL_SPEC', `model spec must be an object, got ${String(spec)}`);
  if (!MODEL_TYPES.includes(spec.type)) {
    throw new ModelError('MODEL_UNKNOWN_TYPE', `unknown model type ${JSON.stringify(spec.type)}: expected one of ${MODEL_TYPES.join(', ')}`);
  }
  if (!Number.isSafeInteger(spec.features) || spec.features < 1) {
    throw new ModelError('MODEL_SPEC', `${spec.type}: spec.features must be a positive integer, got ${spec.features}`);
  }
  if (!Number.isSafeInteger(spec.classes)) throw new ModelError('MODEL_SPEC', `${spec.type}: spec.classes must be an integer, got ${spec.classes}`);
  if (spec.type !== 'mlp' && spec.hidden !== undefined && spec.hidden.length > 0) {
    throw new ModelError('MODEL_SPEC', `${spec.type}: spec.hidden (${JSON.stringify(spec.hidden)}) is only for mlp models`);
  }
}

/** Float32Array lengths are capped; a weight vector past this is a spec error, not an OOM later. */
const MAX_WEIGHTS = 2 ** 31 - 1;

function checkSize(spec: ModelSpec, size: number): void {
  if (size > MAX_WEIGHTS) throw new ModelError('MODEL_SPEC', `${spec.type}: ${size} weights exceed the limit of ${MAX_WEIGHTS} for one Float32Array`);
}

function checkWeights(name: string, size: number, weights: Float32Array, what = 'weights'): void {
  if (!(weights instanceof Float32Array) || weights.length !== size) {
    throw new ModelError('MODEL_WEIGHTS', `${name}: ${what} must be a Float32Array of ${size} entries, got ${weights instanceof Float32Array ? weights.length + ' entries' : typeof weights}`);
  }
}

function checkBatch(name: string, batch: Batch, features: number, accepts: { dense: boolean; sparse: boolean }): void {
  const kind = (batch as { kind?: unknown }).kind;
  if (kind !== 'dense' && kind !== 'sparse') throw new ModelError('MODEL_BATCH', `${name}: unknown batch kind ${JSON.stringify(kind)}`);
  if (!accepts[kind]) {
    const want = accepts.dense ? 'dense' : 'sparse';
    throw new ModelError('MODEL_BATCH', `${name} expects ${want} batches, got a ${kind} batch`);
  }
  const { rows } = batch;
  if (!Number.isSafeInteger(rows) || rows < 0) throw new ModelError('MODEL_BATCH', `${name}: batch.rows must be a non-negative integer, got ${rows}`);
  if (batch.labels.length < rows) throw new ModelError('MODEL_BATCH', `${name}: ${batch.labels.length} labels for ${rows} rows`);
  if (batch.kind === 'dense') {
    if (batch.cols !== features) throw new ModelError('MODEL_BATCH', `${name}: dense batch has ${batch.cols} columns, the model has ${features} features`);
    if (batch.x.length < rows * batch.cols) throw new ModelError('MODEL_BATCH', `${name}: dense batch x has ${batch.x.length} values for ${rows} x ${batch.cols}`);
  } else {
    if (batch.cols > features) throw new ModelError('MODEL_BATCH', `${name}: sparse batch has ${batch.cols} feature columns, the model only ${features}`);
    if (batch.indptr.length < rows + 1) throw new ModelError('MODEL_BATCH', `${name}: indptr has ${batch.indptr.length} entries for ${rows} rows`);
    const end = rows > 0 ? batch.indptr[rows] : 0;
    if (end > batch.indices.length || end > batch.values.length) {
      throw new ModelError('MODEL_BATCH', `${name}: indptr ends at ${end} but there are ${batch.indices.length} indices and ${batch.values.length} values`);
    }
  }
}

function badLabel(name: string, row: number, label: number, classes: number): ModelError {
  return new ModelError('MODEL_LABEL', `${name}: row ${row} has label ${label}; expected an integer class in [0, ${classes})`);
}

// ---------------------------------------------------------------------------------------------
// Binary linear models.

type BinaryLoss = 'logistic' | 'hinge';

interface BinaryOut {
  loss: number;
  correct: number;
}

/**
 * One pass over a batch: margin z = w.x + b per row, the row loss, and (when grad is given) the
 * gradient dL/dz * x added into grad. Labels > 0 are positive. scores (optional) get sigmoid(z).
 */
function binaryPass(batch: Batch, w: Float32Array, F: number, lossKind: BinaryLoss, grad: Float32Array | null, scores: Float32Array | null): BinaryOut {
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
function sparseGradientPass(batch: SparseBatch, w: Float32Array, F: number, hinge: boolean, grad: Float32Array): number {
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

abstract class LinearBinaryModel implements Model {
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

/** Logistic regression on sparse (CSR) batches; log-loss. */
export class SparseLogisticRegression extends LinearBinaryModel {
  constructor(spec: ModelSpec) {
    super(spec, 'logistic', { dense: false, sparse: true });
  }
}

/** Logistic regression on dense batches; log-loss. */
export class DenseLogisticRegression extends LinearBinaryModel {
  constructor(spec: ModelSpec) {
    super(spec, 'logistic', { dense: true, sparse: false });
  }
}

/**
 * Linear SVM: hinge loss max(0, 1 - y z) with y = +1 for labels > 0 and -1 otherwise; the gradient
 * is the subgradient -y x where y z < 1 and 0 elsewhere (including the kink y z = 1).
 * predict() and evaluate().scores return sigmoid(z), a pseudo-probability only: it is monotone in
 * the margin (so AUC and the z > 0 decision are right) but not calibrated.
 */
export class LinearSVM extends LinearBinaryModel {
  constructor(spec: ModelSpec) {
    super(spec, 'hinge', { dense: true, sparse: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy, shared by the softmax model and the MLP's output layer.

/**
 * Turns logits z (rows x C) into probabilities in place (or into p - onehot(label) when
 * `gradient`), returning the cross-entropy sum; counts argmax hits into out.correct.
 */
function softmaxRows(name: string, z: Float32Array, rows: number, C: number, labels: Float32Array, gradient: boolean, out: { correct: number }): number {
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

function checkMulticlass(spec: ModelSpec): void {
  if (spec.classes < 2) throw new ModelError('MODEL_SPEC', `${spec.type}: spec.classes must be >= 2, got ${spec.classes}`);
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

// ---------------------------------------------------------------------------------------------
// Multi-layer perceptron.

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
    const tf = kernels === 'auto' ? tfjs : null;
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

// ---------------------------------------------------------------------------------------------

export interface CreateModelOptions {
  /** MLP matmul kernels: 'auto' (tfjs when enableTfjsKernels() succeeded, default) or 'js'. */
  kernels?: 'auto' | 'js';
}

/** Builds the model a spec describes; throws ModelError naming what does not fit. */
export function createModel(spec: ModelSpec, options: CreateModelOptions = {}): Model {
  checkSpecBasics(spec);
  const binary = (): void => {
    if (spec.classes !== 2) throw new ModelError('MODEL_SPEC', `${spec.type} is a binary model: spec.classes must be 2, got ${spec.classes}`);
  };
  switch (spec.type) {
    case 'sparse-lr':
      binary();
      return new SparseLogisticRegression(spec);
    case 'dense-lr':
      binary();
      return new DenseLogisticRegression(spec);
    case 'svm':
      binary();
      return new LinearSVM(spec);
    case 'softmax':
      return new SoftmaxRegression(spec);
    case 'mlp':
      return new MLP(spec, options.kernels ?? 'auto');
    case 'kmeans':
      return new KMeans(spec);
    case 'mf':
      return new MatrixFactorization(spec);
  }
}

