/**
 * Shard builders, one per kind: they pack rows into growable typed arrays and hand them out as a
 * shard (channels/datasets/shard.ts) with arrays of its own.
 */
import type { DatasetKind, DenseShard, RatingsShard, Shard, SparseShard } from '../../channels/index.js';
import { growF32, growU32, type GrowF32 } from './grow.js';
import type { RatingRow } from './ratings.js';

export interface SparseInputRow {
  label: number;
  /** 0-based, strictly increasing. */
  indices: ArrayLike<number>;
  values: ArrayLike<number>;
  line: number;
}

export interface DenseInputRow {
  label: number;
  x: ArrayLike<number>;
  line: number;
}

export type RowFor<K extends DatasetKind> = K extends 'sparse' ? SparseInputRow : K extends 'dense' ? DenseInputRow : RatingRow;

export interface ShardBuilder<K extends DatasetKind> {
  readonly kind: K;
  readonly rows: number;
  /** Bytes of packed row data held (what a shard of these rows would carry). */
  readonly bytes: number;
  /** Appends a row; `label` is the row's label after any mapping (ignored for ratings). */
  add(row: RowFor<K>, label: number): void;
  /** Appends row `r` of another builder of the same kind. */
  copyRow(from: ShardBuilder<K>, r: number): void;
  /** The rows as a shard with its own arrays; `cols` is the feature space (sparse) or width (dense). */
  build(cols: number): Shard;
  /** Empties the builder, keeping its buffers for the next shard. */
  reset(): void;
}

/** CSR rows: labels, indptr, indices, values. */
export class SparseShardBuilder implements ShardBuilder<'sparse'> {
  readonly kind = 'sparse' as const;
  private labels = growF32();
  private indptr = growU32();
  private indices = growU32();
  private values = growF32();

  constructor() {
    this.indptr.push(0);
  }

  get rows(): number {
    return this.labels.length;
  }

  get bytes(): number {
    return 8 * this.labels.length + 8 * this.indices.length;
  }

  add(row: SparseInputRow, label: number): void {
    const n = row.indices.length;
    this.labels.push(label);
    this.indices.reserve(n);
    this.values.reserve(n);
    const idx = this.indices.data;
    const val = this.values.data;
    const at = this.indices.length;
    for (let k = 0; k < n; k++) {
      idx[at + k] = row.indices[k]!;
      val[at + k] = row.values[k]!;
    }
    this.indices.length += n;
    this.values.length += n;
    this.indptr.push(this.indices.length);
  }

  copyRow(from: ShardBuilder<'sparse'>, r: number): void {
    const src = from as SparseShardBuilder;
    const start = src.indptr.data[r]!;
    const end = src.indptr.data[r + 1]!;
    const n = end - start;
    this.labels.push(src.labels.data[r]!);
    this.indices.reserve(n);
    this.values.reserve(n);
    // A plain loop: rows are short, and subarray views would be garbage per row.
    const idx = this.indices.data;
    const val = this.values.data;
    const sidx = src.indices.data;
    const sval = src.values.data;
    const at = this.indices.length - start;
    for (let k = start; k < end; k++) {
      idx[at + k] = sidx[k]!;
      val[at + k] = sval[k]!;
    }
    this.indices.length += n;
    this.values.length += n;
    this.indptr.push(this.indices.length);
  }

  build(cols: number): SparseShard {
    return { kind: 'sparse', rows: this.rows, cols, labels: this.labels.take(), indptr: this.indptr.take(), indices: this.indices.take(), values: this.values.take() };
  }

  reset(): void {
    this.labels.length = 0;
    this.indices.length = 0;
    this.values.length = 0;
    this.indptr.length = 0;
    this.indptr.push(0);
  }
}

/** Row-major dense rows of a fixed width. */
export class DenseShardBuilder implements ShardBuilder<'dense'> {
  readonly kind = 'dense' as const;
  readonly cols: number;
  private labels = growF32();
  private x: GrowF32;

  constructor(cols: number) {
    this.cols = cols;
    this.x = growF32(Math.max(1024, cols * 64));
  }

  get rows(): number {
    return this.labels.length;
  }

  get bytes(): number {
    return 4 * this.labels.length + 4 * this.x.length;
  }

  add(row: DenseInputRow, label: number): void {
    this.labels.push(label);
    this.x.reserve(this.cols);
    const at = this.x.length;
    if (row.x instanceof Float32Array) this.x.data.set(row.x, at);
    else for (let j = 0; j < this.cols; j++) this.x.data[at + j] = row.x[j]!;
    this.x.length += this.cols;
  }

  copyRow(from: ShardBuilder<'dense'>, r: number): void {
    const src = from as DenseShardBuilder;
    this.labels.push(src.labels.data[r]!);
    this.x.reserve(this.cols);
    this.x.data.set(src.x.data.subarray(r * this.cols, (r + 1) * this.cols), this.x.length);
    this.x.length += this.cols;
  }

  build(): DenseShard {
    return { kind: 'dense', rows: this.rows, cols: this.cols, labels: this.labels.take(), x: this.x.take() };
  }

  reset(): void {
    this.labels.length = 0;
    this.x.length = 0;
  }
}

/** (user, item, rating) triples. */
export class RatingsShardBuilder implements ShardBuilder<'ratings'> {
  readonly kind = 'ratings' as const;
  private users = growU32();
  private items = growU32();
  private ratings = growF32();

  get rows(): number {
    return this.ratings.length;
  }

  get bytes(): number {
    return 12 * this.ratings.length;
  }

  add(row: RatingRow): void {
    this.users.push(row.user);
    this.items.push(row.item);
    this.ratings.push(row.rating);
  }

  copyRow(from: ShardBuilder<'ratings'>, r: number): void {
    const src = from as RatingsShardBuilder;
    this.users.push(src.users.data[r]!);
    this.items.push(src.items.data[r]!);
    this.ratings.push(src.ratings.data[r]!);
  }

  build(): RatingsShard {
    return { kind: 'ratings', rows: this.rows, cols: 0, users: this.users.take(), items: this.items.take(), ratings: this.ratings.take() };
  }

  reset(): void {
    this.users.length = 0;
    this.items.length = 0;
    this.ratings.length = 0;
  }
}
