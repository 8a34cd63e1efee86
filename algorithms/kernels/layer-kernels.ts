/**
 * The three products an MLP layer needs, in two implementations: the JS kernels of ./gemm.ts and
 * tfjs matmuls (see ./tfjs-backend.ts for when the latter are used).
 */
import { gemmNT, gemmTN, transpose } from './gemm.js';
import type { Tf } from './tfjs-backend.js';

/** The three products an MLP layer needs; H (rows x inDim), W (outDim x inDim) at wOff in w. */
export interface LayerKernels {
  readonly name: 'js' | 'tfjs';
  /** Z = H W^T (overwrites Z). */
  forward(H: Float32Array, rows: number, inDim: number, w: Float32Array, wOff: number, outDim: number, Z: Float32Array): void;
  /** grad[gOff ..] (outDim x inDim) += dZ^T H. */
  weightGrad(dZ: Float32Array, H: Float32Array, rows: number, inDim: number, outDim: number, grad: Float32Array, gOff: number): void;
  /** dH = dZ W (overwrites dH). */
  inputGrad(dZ: Float32Array, w: Float32Array, wOff: number, rows: number, inDim: number, outDim: number, dH: Float32Array): void;
}

export const jsKernels: LayerKernels = {
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
export function makeTfjsKernels(tf: Tf): LayerKernels {
  let scratch = new Float32Array(0);
  const transposed = (A: Float32Array, aOff: number, rows: number, cols: number): Float32Array => {
    if (scratch.length < rows * cols) scratch = new Float32Array(rows * cols);
    return transpose(A, aOff, rows, cols, scratch.subarray(0, rows * cols));
  };
  /**
   * The WASM backend's result read in place in its heap, so a step allocates no model-sized copy;
   * undefined on another backend (tfjs-node) or if the backend's layout is not the one expected,
   * and the caller copies it out with dataSync() instead.
   */
  const heapView = (t: ReturnType<Tf['matMul']>): Float32Array | undefined => {
    const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array }; dataIdMap?: { get(id: object): { memoryOffset?: number | null } | undefined } };
    const heap = backend.wasm?.HEAPU8;
    const offset = backend.dataIdMap?.get(t.dataId)?.memoryOffset;
    if (!heap || typeof offset !== 'number' || t.dtype !== 'float32' || offset % 4 !== 0) return undefined;
    return new Float32Array(heap.buffer, heap.byteOffset + offset, t.size);
  };
  /** a x b into `out` (overwritten) or, with `accumulate`, added into out[outOff ..]. */
  const product = (a: Float32Array, aShape: [number, number], b: Float32Array, bShape: [number, number], out: Float32Array, accumulate = false, outOff = 0): void => {
    const ta = tf.tensor2d(a, aShape);
    const tb = tf.tensor2d(b, bShape);
    const tc = tf.matMul(ta, tb);
    try {
      const c = heapView(tc) ?? (tc.dataSync() as Float32Array);
      if (!accumulate) out.set(c, outOff);
      else for (let i = 0; i < c.length; i++) out[outOff + i] += c[i];
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
      // Added straight from tfjs's result: no model-sized buffer per step (its garbage made the
      // collector run often, at a cost that grows with the worker's heap).
      product(transposed(dZ, 0, rows, outDim), [outDim, rows], H.subarray(0, rows * inDim), [rows, inDim], grad, true, gOff);
    },
    inputGrad(dZ, w, wOff, rows, inDim, outDim, dH) {
      product(dZ.subarray(0, rows * outDim), [rows, outDim], w.subarray(wOff, wOff + outDim * inDim), [outDim, inDim], dH);
    },
  };
}
