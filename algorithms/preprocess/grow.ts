/** Growable typed arrays: the sharder packs rows into them as they arrive (no per-row objects). */

type Packed = Float32Array | Uint32Array;

export class Grow<T extends Packed> {
  data: T;
  length = 0;
  constructor(
    private readonly make: (length: number) => T,
    capacity = 1024,
  ) {
    this.data = make(capacity);
  }
  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.data.length) return;
    const next = this.make(Math.max(need, this.data.length * 2));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  push(v: number): void {
    if (this.length === this.data.length) this.reserve(1);
    this.data[this.length++] = v;
  }
  /** An exact-size copy the caller owns (the buffer itself is reused for the next shard). */
  take(): T {
    return this.data.slice(0, this.length) as T;
  }
}

export type GrowF32 = Grow<Float32Array>;
type GrowU32 = Grow<Uint32Array>;
export const growF32 = (capacity?: number): GrowF32 => new Grow((n) => new Float32Array(n), capacity);
export const growU32 = (capacity?: number): GrowU32 => new Grow((n) => new Uint32Array(n), capacity);
