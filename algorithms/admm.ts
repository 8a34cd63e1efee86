/**
 * Consensus ADMM (LambdaML's form) for the linear models: every worker i keeps a local model w_i
 * and a scaled dual u_i; the consensus model z is what the run publishes. With the global problem
 *   min  sum_i f_i(w_i) + g(z)   s.t. w_i = z,
 * where f_i is worker i's share of the mean training loss times W and g(z) = W (l2/2) |z|^2 (so
 * the objective is the same as GA-SGD's: mean loss + (l2/2) |w|^2), each round is
 *   local solve   w_i <- argmin f_i(w) + (rho/2) |w - z + u_i|^2   (a few SGD passes, inexact)
 *   consensus     z   <- rho * mean_i(w_i + u_i) / (l2 + rho)         (one all-reduce of w_i + u_i)
 *   dual          u_i <- u_i + w_i - z
 * These helpers are the arithmetic of those steps; worker/train-admm.ts runs them.
 */

/** The augmented Lagrangian's penalty term (rho/2) |w - z + u|^2. */
export function admmPenalty(w: ArrayLike<number>, z: ArrayLike<number>, u: ArrayLike<number>, rho: number): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) {
    const d = w[i]! - z[i]! + u[i]!;
    s += d * d;
  }
  return (rho / 2) * s;
}

/**
 * The local objective's gradient: scale * gradSum / rows (this worker's share of the mean loss)
 * plus the penalty's gradient rho (w - z + u).
 */
export function admmLocalGradient(out: Float32Array, gradSum: Float32Array, rows: number, scale: number, rho: number, w: Float32Array, z: Float32Array, u: Float32Array): void {
  const f = scale / rows;
  for (let i = 0; i < out.length; i++) out[i] = gradSum[i]! * f + rho * (w[i]! - z[i]! + u[i]!);
}

/** z <- rho * (sum_i (w_i + u_i)) / (W (l2 + rho)): the minimiser of g(z) + (rho/2) sum_i |w_i - z + u_i|^2. */
export function admmConsensus(z: Float32Array, sumWU: ArrayLike<number>, world: number, rho: number, l2: number): void {
  const f = rho / (world * (l2 + rho));
  for (let i = 0; i < z.length; i++) z[i] = sumWU[i]! * f;
}

/** u <- u + w - z. */
export function admmDualUpdate(u: Float32Array, w: Float32Array, z: Float32Array): void {
  for (let i = 0; i < u.length; i++) u[i] = u[i]! + w[i]! - z[i]!;
}
