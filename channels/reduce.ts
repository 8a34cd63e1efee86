/**
 * Reduction in rank order, fed in arrival order. Float addition is not associative, so summing in
 * whatever order values arrive would make results depend on timing; this reducer adds rank 0, then
 * rank 1, ... as soon as each prefix is complete, which overlaps the arithmetic with the wait and
 * gives every pattern (and a plain local loop) bit-identical sums.
 */
import { CollectiveError } from './errors.js';
import { type SimdArena, arenaFits, releaseArena, simdAvailable, takeArena } from './simd-reduce.js';

export type ReduceOp = 'sum' | 'mean';

/** Segments at least this long are summed with WebAssembly SIMD (shorter ones are not worth the copies). */
export const SIMD_MIN_FLOATS = 4096;

export class OrderedReducer {
  private readonly pending: Array<Float32Array | undefined>;
  /** Ranks summed so far (rank 0 waits, uncopied, until rank 1 arrives). */
  private next = 0;
  private readonly acc: Float32Array;
  /** Where the sum accumulates for long vectors (copied into acc at the end). */
  private simd: SimdArena | undefined;
  private readonly useSimd: boolean;

  /**
   * `into`: memory to accumulate in (a caller's result buffer); a fresh array of `length` floats
   * otherwise. The mean's division is fused into the last addition, and the first addition reads
   * ranks 0 and 1 together, so a reduction of W vectors makes W - 1 passes. Long vectors are summed
   * with WebAssembly SIMD (simd-reduce.ts) unless `simd` is false; both paths give the same bits.
   * `simd` may be the caller's arena (reserved for `length` floats), whose receive slots the
   * offered vectors may live in: those are summed in place, without a copy.
   */
  constructor(
    private readonly world: number,
    private readonly length: number,
    private readonly op: ReduceOp,
    private readonly what: string,
    into?: Float32Array,
    private readonly arena: SimdArena | boolean = true,
  ) {
    this.pending = new Array(world);
    this.acc = into ?? new Float32Array(length);
    this.useSimd = arena !== false && simdAvailable && world > 1 && length >= SIMD_MIN_FLOATS && arenaFits(length);
  }

  offer(rank: number, data: Float32Array): void {
    if (data.length !== this.length) {
      throw new CollectiveError('COLLECTIVE_MISMATCH', `${this.what}: rank ${rank} sent ${data.length} floats, expected ${this.length} (every rank must pass vectors of the same length)`);
    }
    this.pending[rank] = data;
    const { acc, world, pending } = this;
    const divisor = this.op === 'mean' ? world : undefined;
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
      const last = world === 2 ? divisor : undefined;
      if (this.useSimd) {
        this.simd = this.arena === true ? takeArena(this.length) : (this.arena as SimdArena);
        this.simd.begin(first, second, last);
      } else if (last !== undefined) sumDivideInto(acc, first, second, last);
      else sumInto(acc, first, second);
      this.finish(2);
    }
    while (this.next < world && pending[this.next] !== undefined) {
      const v = pending[this.next]!;
      const last = this.next === world - 1 ? divisor : undefined;
      if (this.simd) this.simd.add(v, last);
      else if (last !== undefined) addDivideInto(acc, v, last);
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

  /** Ranks below `next` are summed: drop the references to their vectors; at the end, publish the sum. */
  private finish(next: number): void {
    for (let r = this.next; r < next; r++) this.pending[r] = undefined;
    this.next = next;
    if (next === this.world && this.simd) {
      this.simd.store(this.acc);
      // A pooled arena goes back; a caller's arena stays the caller's.
      if (this.arena === true) releaseArena(this.simd);
      this.simd = undefined;
    }
  }
}

// The kernels below store each element once, four sums before four stores (~1.25x faster than one
// element at a time here). Storing into a Float32Array rounds every sum to float32, so each is
// bit-identical to a one-element-at-a-time loop, and the fused division divides the rounded sum.

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

/** acc = (a + b) / d, the sum rounded to float32 before the division (acc may be a or b) */
export function sumDivideInto(acc: Float32Array, a: Float32Array, b: Float32Array, d: number): void {
  const n = acc.length;
  const f = Math.fround;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const q0 = f(a[i]! + b[i]!) / d;
    const q1 = f(a[i + 1]! + b[i + 1]!) / d;
    const q2 = f(a[i + 2]! + b[i + 2]!) / d;
    const q3 = f(a[i + 3]! + b[i + 3]!) / d;
    acc[i] = q0;
    acc[i + 1] = q1;
    acc[i + 2] = q2;
    acc[i + 3] = q3;
  }
  for (; i < n; i++) acc[i] = f(a[i]! + b[i]!) / d;
}

/** acc += v */
export function addInto(acc: Float32Array, v: Float32Array): void {
  sumInto(acc, acc, v);
}

/** acc = (acc + v) / d */
export function addDivideInto(acc: Float32Array, v: Float32Array, d: number): void {
  sumDivideInto(acc, acc, v, d);
}

/**
 * Runs every kernel once over both of its loops before real use. Measured in the collective
 * workers: a first call on a long vector gets optimised mid-loop (on-stack replacement) before its
 * tail loop has ever run, and V8 then re-entered that cached code, which bails out at the tail, on
 * every later call: each reduction ran mostly unoptimised.
 */
function primeKernels(): void {
  const a = new Float32Array(5);
  const b = new Float32Array(5);
  // Enough calls that V8 allocates the feedback vectors (it does so lazily, after a few calls).
  for (let k = 0; k < 20; k++) {
    sumInto(a, a, b);
    sumDivideInto(a, a, b, 2);
  }
}
primeKernels();

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
