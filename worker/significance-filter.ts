/**
 * The significance filter of MLLess (Middleware'21): a worker accumulates its updates locally and
 * sends only the coordinates whose accumulated update is large relative to the weight,
 *   |lr * acc_i| > threshold_t * max(|w_i|, WEIGHT_FLOOR),   threshold_t = threshold / sqrt(1 + epoch),
 * keeping the rest for later (they grow until they matter, or go out with the flush of the run's
 * last batch; a stopped or relaunched worker loses what it held, each piece below its threshold).
 * The floor keeps a weight near zero from making every update of it look significant. Updates are
 * kept in gradient units (what the parameter server's optimizer takes), lr only scales the test.
 */
export const WEIGHT_FLOOR = 0.01;

export class SignificanceFilter {
  /** Accumulated, not yet sent update per coordinate. */
  private readonly acc: Float32Array;
  private idx = new Uint32Array(1024);
  private val = new Float32Array(1024);
  /** Coordinates offered and coordinates sent, over the filter's life. */
  offered = 0;
  sent = 0;

  constructor(
    size: number,
    private readonly threshold: number,
    private readonly lr: number,
  ) {
    this.acc = new Float32Array(size);
  }

  private room(n: number): void {
    if (this.idx.length >= n) return;
    const m = Math.max(n, this.idx.length * 2);
    this.idx = new Uint32Array(m);
    this.val = new Float32Array(m);
  }

  /**
   * Adds `values` at `indices` (increasing) to the accumulator and returns the significant
   * coordinates (increasing, with their whole accumulated update), which leave the accumulator.
   * The returned arrays are valid until the next call.
   */
  offer(indices: Uint32Array, values: Float32Array, weights: Float32Array, epoch: number): { indices: Uint32Array; values: Float32Array } {
    this.room(indices.length);
    const thr = this.threshold / Math.sqrt(1 + epoch);
    let k = 0;
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j]!;
      const a = this.acc[i]! + values[j]!;
      const w = Math.abs(weights[i]!);
      if (Math.abs(this.lr * a) > thr * (w > WEIGHT_FLOOR ? w : WEIGHT_FLOOR)) {
        this.idx[k] = i;
        this.val[k] = a;
        k++;
        this.acc[i] = 0;
      } else {
        this.acc[i] = a;
      }
    }
    this.offered += indices.length;
    this.sent += k;
    return { indices: this.idx.subarray(0, k), values: this.val.subarray(0, k) };
  }

  /** Everything still held (increasing indices), and clears it: sent at the end of an epoch. */
  flush(): { indices: Uint32Array; values: Float32Array } {
    const idx: number[] = [];
    const val: number[] = [];
    for (let i = 0; i < this.acc.length; i++) {
      if (this.acc[i] !== 0) {
        idx.push(i);
        val.push(this.acc[i]!);
        this.acc[i] = 0;
      }
    }
    this.sent += idx.length;
    return { indices: Uint32Array.from(idx), values: Float32Array.from(val) };
  }
}
