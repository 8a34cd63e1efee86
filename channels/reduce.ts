/**
 * Reduction in rank order, fed in arrival order. Float addition is not associative, so summing in
 * whatever order values arrive would make results depend on timing; this reducer adds rank 0, then
 * rank 1, ... as soon as each prefix is complete, which overlaps the arithmetic with the wait and
 * gives every pattern (and a plain local loop) bit-identical sums.
 */
import { CollectiveError } from './errors.js';

export type ReduceOp = 'sum' | 'mean';

export class OrderedReducer {
  private readonly pending: Array<Float32Array | undefined>;
  /** Ranks summed into acc so far (rank 0 waits, uncopied, until rank 1 arrives). */
  private next = 0;
  private readonly acc: Float32Array;

  /**
   * `into`: memory to accumulate in (a caller's result buffer); a fresh array of `length` floats
   * otherwise. The mean's division is fused into the last addition, and the first addition reads
   * ranks 0 and 1 together, so a reduction of W vectors makes W - 1 passes over the result.
   */
  constructor(
    private readonly world: number,
    private readonly length: number,
    private readonly op: ReduceOp,
    private readonly what: string,
    into?: Float32Array,
  ) {
    this.pending = new Array(world);
    this.acc = into ?? new Float32Array(length);
  }

  offer(rank: number, data: Float32Array): void {
    if (data.length !== this.length) {
      throw new CollectiveError('COLLECTIVE_MISMATCH', `${this.what}: rank ${rank} sent ${data.length} floats, expected ${this.length} (every rank must pass vectors of the same length)`);
    }
    this.pending[rank] = data;
    const { acc, world, pending } = this;
    const divisor = this.op === 'mean' ? world : 1;
    if (this.next === 0) {
      const first = pending[0];
      if (first === undefined) return;
      if (world === 1) {
        if (acc !== first) acc.set(first);
        this.finish(1);
        return;
      }
      const second = pending[1];
      if (second === undefined) return;
      if (world === 2 && divisor !== 1) sumDivideInto(acc, first, second, divisor);
      else sumInto(acc, first, second);
      this.finish(2);
    }
    while (this.next < world && pending[this.next] !== undefined) {
      const v = pending[this.next]!;
      if (this.next === world - 1 && divisor !== 1) addDivideInto(acc, v, divisor);
      else addInto(acc, v);
      this.finish(this.next + 1);
    }
  }

  /** The reduced vector (the `into` array when one was given); every rank must have been offered. */
  result(): Float32Array {
    if (this.next !== this.world) {
      throw new CollectiveError('COLLECTIVE_ARGUMENT', `${this.what}: reduction incomplete (${this.next} of ${this.world} ranks)`);
    }
    return this.acc;
  }

  /** Ranks below `next` are summed: drop the references to their vectors. */
  private finish(next: number): void {
    for (let r = this.next; r < next; r++) this.pending[r] = undefined;
    this.next = next;
  }
}

// The kernels below store each element once, four sums before four stores (~1.25x faster than one
// element at a time here). Storing into a Float32Array rounds every sum to float32, so each is
// bit-identical to a one-element-at-a-time loop, and the fused division divides the rounded sum.

/** acc += v */
export function addInto(acc: Float32Array, v: Float32Array): void {
  const n = acc.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const a0 = acc[i]! + v[i]!;
    const a1 = acc[i + 1]! + v[i + 1]!;
    const a2 = acc[i + 2]! + v[i + 2]!;
    const a3 = acc[i + 3]! + v[i + 3]!;
    acc[i] = a0;
    acc[i + 1] = a1;
    acc[i + 2] = a2;
    acc[i + 3] = a3;
  }
  for (; i < n; i++) acc[i]! += v[i]!;
}

/** acc = a + b (acc may be a or b) */
export function sumInto(acc: Float32Array, a: Float32Array, b: Float32Array): void {
  const n = acc.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const s0 = a[i]! + b[i]!;
    const s1 = a[i + 1]! + b[i + 1]!;
    const s2 = a[i + 2]! + b[i + 2]!;
    const s3 = a[i + 3]! + b[i + 3]!;
    acc[i] = s0;
    acc[i + 1] = s1;
    acc[i + 2] = s2;
    acc[i + 3] = s3;
  }
  for (; i < n; i++) acc[i] = a[i]! + b[i]!;
}

/** acc = (acc + v) / d, the sum rounded to float32 before the division */
export function addDivideInto(acc: Float32Array, v: Float32Array, d: number): void {
  const n = acc.length;
  const f = Math.fround;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q0 = f(acc[i]! + v[i]!) / d;
    const q1 = f(acc[i + 1]! + v[i + 1]!) / d;
    const q2 = f(acc[i + 2]! + v[i + 2]!) / d;
    const q3 = f(acc[i + 3]! + v[i + 3]!) / d;
    acc[i] = q0;
    acc[i + 1] = q1;
    acc[i + 2] = q2;
    acc[i + 3] = q3;
  }
  for (; i < n; i++) acc[i] = f(acc[i]! + v[i]!) / d;
}

/** acc = (a + b) / d, the sum rounded to float32 before the division */
export function sumDivideInto(acc: Float32Array, a: Float32Array, b: Float32Array, d: number): void {
  const n = acc.length;
  const f = Math.fround;
  for (let i = 0; i < n; i++) acc[i] = f(a[i]! + b[i]!) / d;
}

/**
 * The rank-order sum (or mean) a plain local loop computes: the reference every collective must
 * match bit for bit. Deliberately the simplest loop, independent of OrderedReducer.
 */
export function referenceReduce(vectors: Float32Array[], op: ReduceOp): Float32Array {
  const acc = vectors[0]!.slice();
  for (let r = 1; r < vectors.length; r++) {
    const v = vectors[r]!;
    for (let i = 0; i < acc.length; i++) acc[i]! += v[i]!;
  }
  if (op === 'mean') for (let i = 0; i < acc.length; i++) acc[i]! /= vectors.length;
  return acc;
}
