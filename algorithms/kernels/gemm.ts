/**
 * Dense matrix kernels on Float32Array: plain JS numbers are float64, so every dot product
 * accumulates in float64 and only the stored results round to float32.
 *
 * Register-blocked so each loaded value feeds several independent accumulators: that is what lets
 * V8's scalar code reach ~3 GFMA/s instead of ~1 for a naive dot product.
 */

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
  // unrolled on purpose: a 4x4 block of C in 16 locals, and the store written out twice (add or
  // overwrite) so the hot loop has no branch; a loop over the block would spill to memory.
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
  // unrolled on purpose: four rows of X against two columns of G per pass, kept in locals.
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
