/**
 * Feature hashing ("the hashing trick"). A categorical column `c` with value `v` goes to bucket
 *   murmur3(c + '=' + v, seed) mod 2^bits
 * The column name is part of the key so equal values in different columns do not collide, and the
 * '=' separator (column names may not contain '=') keeps 'a'+'bc' apart from 'ab'+'c'.
 *
 * Layout of the sparse feature space (`features` indices in all):
 *   [0, 2^bits)                          hash buckets; a bucket hit k times in a row has value k
 *   2^bits                               the bias, a constant 1, when `bias` is set
 *   then one index per numeric column    in the order given, after the bias if any
 * A missing categorical value adds nothing; a numeric value that is missing or 0 adds nothing (a
 * sparse zero). Numeric values are kept as they are, or with `log1p` as sign(v)*log(1+|v|), which
 * tames count features such as Criteo's I1..I13 (heavy-tailed, some negative).
 */
import { PreprocessOptionsError } from './errors.js';
import { murmur3Parts } from './murmur3.js';

export const HASH_SEPARATOR = '=';
export const MAX_HASH_BITS = 31;

export type NumericTransform = 'none' | 'log1p';

/** The bucket of `value` in `column`: murmur3(column + '=' + value, seed) mod 2^bits. */
export function hashBucket(column: string, value: string, bits: number, seed = 0): number {
  checkBits(bits);
  return (murmur3Parts(column + HASH_SEPARATOR, value, 0, value.length, seed) & bucketMask(bits)) >>> 0;
}

export interface FeatureHasherOptions {
  bits: number;
  /** Hashed (categorical) columns, in the order rows give their values. */
  hashed: readonly string[];
  /** Numeric columns placed at their own indices, in the order rows give their values. */
  numeric?: readonly string[];
  numericTransform?: NumericTransform;
  bias?: boolean;
  seed?: number;
}

export interface HashedRow {
  /** Sorted, each index once. */
  indices: number[];
  values: number[];
}

export class FeatureHasher {
  readonly bits: number;
  readonly bias: boolean;
  readonly seed: number;
  readonly hashed: readonly string[];
  readonly numeric: readonly string[];
  readonly numericTransform: NumericTransform;
  /** Size of the feature space. */
  readonly features: number;
  /** Index of the bias feature, or -1 without one. */
  readonly biasIndex: number;
  /** Index of the first numeric column. */
  readonly numericBase: number;
  private readonly prefixes: string[];
  private readonly mask: number;
  /** Scratch of the row being hashed: its buckets, and its numeric indices and values. */
  private buckets: Uint32Array;
  private n = 0;
  private numIdx: number[] = [];
  private numVal: number[] = [];

  constructor(options: FeatureHasherOptions) {
    checkBits(options.bits);
    this.bits = options.bits;
    this.bias = options.bias ?? false;
    this.seed = options.seed ?? 0;
    this.hashed = [...options.hashed];
    this.numeric = [...(options.numeric ?? [])];
    this.numericTransform = options.numericTransform ?? 'none';
    for (const c of this.hashed) {
      if (c.includes(HASH_SEPARATOR)) throw new PreprocessOptionsError(`hashed column name ${JSON.stringify(c)}: expected a name without '${HASH_SEPARATOR}' (it separates column from value in the hash key)`);
    }
    const size = 2 ** this.bits;
    this.biasIndex = this.bias ? size : -1;
    this.numericBase = size + (this.bias ? 1 : 0);
    this.features = this.numericBase + this.numeric.length;
    if (this.features > 0xffffffff) throw new PreprocessOptionsError(`hashing: ${this.features} features do not fit 32-bit indices; use fewer bits`);
    this.prefixes = this.hashed.map((c) => c + HASH_SEPARATOR);
    this.mask = bucketMask(this.bits);
    this.buckets = new Uint32Array(Math.max(1, this.hashed.length));
  }

  /**
   * Hashes one row: `cats[k]` is the value of hashed column k (null = missing), `nums[k]` of
   * numeric column k (null = missing).
   */
  hashRow(cats: ArrayLike<string | null | undefined>, nums: ArrayLike<number | null | undefined> = []): HashedRow {
    this.begin();
    for (let k = 0; k < this.prefixes.length; k++) {
      const v = cats[k];
      if (v !== null && v !== undefined) this.addHashed(k, v, 0, v.length);
    }
    for (let k = 0; k < this.numeric.length; k++) {
      const v = nums[k];
      if (v !== null && v !== undefined) this.addNumeric(k, v);
    }
    return this.end();
  }

  // Incremental form of hashRow, for parsers that hash cells straight out of the line (no
  // substring per cell): begin(), then addHashed (any order) and addNumeric (column order), then end().

  begin(): void {
    this.n = 0;
    this.numIdx.length = 0;
    this.numVal.length = 0;
  }

  /** Hashed column k has the value text[start, end). */
  addHashed(k: number, text: string, start: number, end: number): void {
    if (this.n === this.buckets.length) {
      const grown = new Uint32Array(2 * this.n);
      grown.set(this.buckets);
      this.buckets = grown;
    }
    this.buckets[this.n++] = (murmur3Parts(this.prefixes[k]!, text, start, end, this.seed) & this.mask) >>> 0;
  }

  /** Numeric column k has the value v (0 adds nothing). */
  addNumeric(k: number, v: number): void {
    if (v === 0) return;
    this.numIdx.push(this.numericBase + k);
    this.numVal.push(this.numericTransform === 'log1p' ? (v > 0 ? Math.log1p(v) : -Math.log1p(-v)) : v);
  }

  end(): HashedRow {
    const n = this.n;
    const sorted = this.buckets;
    // Insertion sort: a row has a few dozen buckets at most, and this allocates nothing.
    for (let i = 1; i < n; i++) {
      const v = sorted[i]!;
      let j = i - 1;
      while (j >= 0 && sorted[j]! > v) {
        sorted[j + 1] = sorted[j]!;
        j--;
      }
      sorted[j + 1] = v;
    }
    const indices: number[] = [];
    const values: number[] = [];
    for (let i = 0; i < n; i++) {
      const b = sorted[i]!;
      if (i > 0 && sorted[i - 1] === b) values[values.length - 1]! += 1;
      else {
        indices.push(b);
        values.push(1);
      }
    }
    if (this.bias) {
      indices.push(this.biasIndex);
      values.push(1);
    }
    // Numeric indices lie above the buckets and the bias; callers add them in column order.
    for (let i = 0; i < this.numIdx.length; i++) {
      if (i > 0 && this.numIdx[i]! <= this.numIdx[i - 1]!) throw new Error('FeatureHasher: numeric columns must be added in increasing column order, once each');
      indices.push(this.numIdx[i]!);
      values.push(this.numVal[i]!);
    }
    return { indices, values };
  }

  /** The manifest's record of this transform, enough to hash new rows the same way. */
  describe(): Record<string, unknown> {
    return {
      type: 'hash',
      hash: 'murmur3_x86_32',
      key: `column${HASH_SEPARATOR}value`,
      columns: [...this.hashed],
      bits: this.bits,
      seed: this.seed,
      counts: true,
      bias: this.bias ? { index: this.biasIndex } : false,
      numeric: { columns: [...this.numeric], firstIndex: this.numericBase, transform: this.numericTransform },
    };
  }
}

function bucketMask(bits: number): number {
  return 2 ** Math.min(bits, 32) - 1;
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > MAX_HASH_BITS) {
    throw new PreprocessOptionsError(`hash bits: expected an integer in [1, ${MAX_HASH_BITS}], found ${bits}`);
  }
}
