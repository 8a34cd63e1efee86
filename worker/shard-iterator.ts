/**
 * Streams a worker's share of a dataset split as minibatches, fetching shards ahead of use.
 *
 * Partition: shard i of the split belongs to rank i % world, so every row is visited by exactly
 * one rank per epoch. Order 'random' permutes this rank's shards and the rows inside each shard
 * with a PRNG seeded by (seed, rank, epoch): reproducible for the same triple, different across
 * epochs. 'sequential' keeps both in stored order.
 *
 * Batches of a sequential pass are views into the shard (no copy). With random order the rows of
 * a batch are gathered from the shard in permuted order, which copies them: true row shuffling
 * matters more to SGD than saving a copy of one minibatch, and the copy is only batchSize rows.
 */
import { DatasetError, type DatasetManifest, type ShardRef, type DenseShard, type RatingsShard, type Shard, type SparseShard, type DatasetStore, type Split } from '../channels/index.js';

// Sparse and dense batches are exactly what the models take.
export type { DenseBatch, SparseBatch } from '../algorithms/index.js';
import type { DenseBatch, SparseBatch } from '../algorithms/index.js';

export interface RatingsBatch {
  kind: 'ratings';
  rows: number;
  users: Uint32Array;
  items: Uint32Array;
  ratings: Float32Array;
}

export type Batch = SparseBatch | DenseBatch | RatingsBatch;

export type ShardOrder = 'random' | 'sequential';

export interface ShardIteratorOptions {
  /** Where shards come from (a DatasetStore, or anything with its readShard). */
  store: Pick<DatasetStore, 'readShard'>;
  manifest: DatasetManifest;
  rank: number;
  world: number;
  epoch: number;
  seed: number;
  /** Shard fetches kept in flight ahead of the shard being consumed. Default 2; 0 fetches on demand. */
  readAhead?: number;
  order: ShardOrder;
  batchSize: number;
  /** Default 'train'. */
  split?: Split;
}

export interface ShardIteratorStats {
  /** Shards fetched and decoded (prefetched ones included). */
  shardsRead: number;
  /** Rows handed out in batches. */
  rowsRead: number;
  /** Bytes of the shards fetched. */
  bytesRead: number;
  /** Time batches() spent blocked on a shard fetch that had not completed. */
  waitMs: number;
  /** The part of waitMs spent on the first shard, which no read-ahead can hide. */
  firstWaitMs: number;
  /** Summed duration of the shard fetches (they overlap when prefetching). */
  fetchMs: number;
}

// ---------------------------------------------------------------------------------------------
// PRNG

/** murmur3's 32-bit finalizer: a bijection that spreads every input bit over the output. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Hashes integers (any safe integer, including > 2^32) into one 32-bit seed. */
export function combineSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    const lo = p >>> 0;
    const hi = Math.floor(p / 0x100000000) >>> 0;
    h = mix32((h ^ lo) >>> 0);
    h = mix32((h + hi + 0x9e3779b9) >>> 0);
  }
  return h;
}

/** SplitMix32: a Weyl sequence (golden-ratio increment) passed through mix32. Small, fast, seedable. */
export class SplitMix32 {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 2^32). */
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return mix32(this.state);
  }

  /** Uniform integer in [0, n) (bias below n / 2^32, negligible for shard-sized n). */
  below(n: number): number {
    return Math.floor((this.next() / 0x100000000) * n);
  }
}

/** Fisher-Yates permutation of 0..n-1. */
export function permutation(n: number, rng: SplitMix32): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------

interface Assigned {
  /** Position of the shard in the split's list (stable across epochs; seeds its row order). */
  index: number;
  ref: ShardRef;
}

function argError(message: string): DatasetError {
  return new DatasetError('DATASET_ARGUMENT', `shard iterator: ${message}`);
}

export class ShardIterator {
  /** This rank's shards in the order this epoch visits them. */
  readonly shards: readonly ShardRef[];
  readonly split: Split;
  private readonly assigned: Assigned[];
  private readonly store: Pick<DatasetStore, 'readShard'>;
  private readonly manifest: DatasetManifest;
  private readonly rank: number;
  private readonly epoch: number;
  private readonly seed: number;
  private readonly readAhead: number;
  private readonly order: ShardOrder;
  private readonly batchSize: number;
  private counters: ShardIteratorStats = { shardsRead: 0, rowsRead: 0, bytesRead: 0, waitMs: 0, firstWaitMs: 0, fetchMs: 0 };

  constructor(opts: ShardIteratorOptions) {
    const { manifest, rank, world, epoch, seed, batchSize } = opts;
    const readAhead = opts.readAhead ?? 2;
    const split = opts.split ?? 'train';
    if (!Number.isInteger(world) || world < 1) throw argError(`world must be an integer >= 1, got ${world}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw argError(`rank must be an integer in [0, ${world - 1}], got ${rank}`);
    if (!Number.isInteger(epoch) || epoch < 0) throw argError(`epoch must be an integer >= 0, got ${epoch}`);
    if (!Number.isSafeInteger(seed)) throw argError(`seed must be a safe integer, got ${seed}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw argError(`batchSize must be an integer >= 1, got ${batchSize}`);
    if (!Number.isInteger(readAhead) || readAhead < 0) throw argError(`readAhead must be an integer >= 0, got ${readAhead}`);
    if (opts.order !== 'random' && opts.order !== 'sequential') throw argError(`order must be 'random' or 'sequential', got '${String(opts.order)}'`);
    if (split !== 'train' && split !== 'test') throw argError(`split must be 'train' or 'test', got '${String(split)}'`);

    const all = manifest[split].shards;
    if (world > all.length) {
      throw new DatasetError(
        'DATASET_TOO_FEW_SHARDS',
        `dataset '${manifest.name}' has ${all.length} ${split} shards; ${world} workers need at least ${world} (re-shard with a smaller --shard-rows)`,
      );
    }
    let assigned: Assigned[] = [];
    for (let i = rank; i < all.length; i += world) assigned.push({ index: i, ref: all[i]! });
    if (opts.order === 'random') {
      const perm = permutation(assigned.length, new SplitMix32(combineSeed(seed, rank, epoch)));
      assigned = Array.from(perm, (p) => assigned[p]!);
    }

    this.assigned = assigned;
    this.shards = assigned.map((a) => a.ref);
    this.split = split;
    this.store = opts.store;
    this.manifest = manifest;
    this.rank = rank;
    this.epoch = epoch;
    this.seed = seed;
    this.readAhead = readAhead;
    this.order = opts.order;
    this.batchSize = batchSize;
  }

  /** One pass over this rank's shards. The last batch of each shard may be smaller; no row is dropped. */
  async *batches(): AsyncGenerator<Batch, void, undefined> {
    const list = this.assigned;
    const pending: Array<Promise<Shard>> = [];
    let launched = 0;
    const launch = (): void => {
      const p = this.fetch(list[launched]!.ref);
      // If the consumer stops early, a prefetch nobody awaits must not become an unhandled rejection.
      p.catch(() => undefined);
      pending.push(p);
      launched++;
    };
    for (let k = 0; k < list.length; k++) {
      // The current shard plus readAhead more, all started before we block on the current one.
      while (launched < list.length && launched <= k + this.readAhead) launch();
      const t0 = performance.now();
      const shard = await pending.shift()!;
      const waited = performance.now() - t0;
      this.counters.waitMs += waited;
      if (k === 0) this.counters.firstWaitMs += waited;
      const rowOrder = this.order === 'random' ? permutation(shard.rows, new SplitMix32(combineSeed(this.seed, this.rank, this.epoch, 1 + list[k]!.index))) : undefined;
      for (let start = 0; start < shard.rows; start += this.batchSize) {
        const end = Math.min(shard.rows, start + this.batchSize);
        const batch = rowOrder ? gather(shard, rowOrder.subarray(start, end)) : slice(shard, start, end);
        this.counters.rowsRead += end - start;
        // A consumer that computes synchronously between batches never lets the event loop run:
        // for-await resumes through microtasks only. Yield a macrotask while fetches are in
        // flight so their network callbacks make progress during the compute, not after it.
        if (pending.length > 0) await new Promise<void>((resolve) => setImmediate(resolve));
        yield batch;
      }
    }
  }

  stats(): ShardIteratorStats {
    return { ...this.counters };
  }

  private async fetch(ref: ShardRef): Promise<Shard> {
    const t0 = performance.now();
    const shard = await this.store.readShard(ref);
    this.counters.fetchMs += performance.now() - t0;
    this.counters.shardsRead++;
    this.counters.bytesRead += ref.bytes;
    if (shard.kind !== this.manifest.kind) {
      throw new DatasetError('DATASET_SHARD', `shard '${ref.key}' is ${shard.kind}, but dataset '${this.manifest.name}' is ${this.manifest.kind}`);
    }
    return shard;
  }
}

/** Rows [start, end) as views into the shard. */
function slice(shard: Shard, start: number, end: number): Batch {
  const rows = end - start;
  switch (shard.kind) {
    case 'sparse':
      // indptr keeps the shard's absolute offsets, so indices/values are the shard's own arrays.
      return { kind: 'sparse', rows, cols: shard.cols, labels: shard.labels.subarray(start, end), indptr: shard.indptr.subarray(start, end + 1), indices: shard.indices, values: shard.values };
    case 'dense':
      return { kind: 'dense', rows, cols: shard.cols, labels: shard.labels.subarray(start, end), x: shard.x.subarray(start * shard.cols, end * shard.cols) };
    case 'ratings':
      return { kind: 'ratings', rows, users: shard.users.subarray(start, end), items: shard.items.subarray(start, end), ratings: shard.ratings.subarray(start, end) };
  }
}

/** The given rows, in that order, copied into fresh compact arrays. */
function gather(shard: Shard, rowIds: Uint32Array): Batch {
  switch (shard.kind) {
    case 'sparse':
      return gatherSparse(shard, rowIds);
    case 'dense':
      return gatherDense(shard, rowIds);
    case 'ratings':
      return gatherRatings(shard, rowIds);
  }
}

function gatherSparse(shard: SparseShard, rowIds: Uint32Array): SparseBatch {
  const n = rowIds.length;
  let nnz = 0;
  for (let k = 0; k < n; k++) nnz += shard.indptr[rowIds[k]! + 1]! - shard.indptr[rowIds[k]!]!;
  const labels = new Float32Array(n);
  const indptr = new Uint32Array(n + 1);
  const indices = new Uint32Array(nnz);
  const values = new Float32Array(nnz);
  let off = 0;
  for (let k = 0; k < n; k++) {
    const r = rowIds[k]!;
    const a = shard.indptr[r]!;
    const b = shard.indptr[r + 1]!;
    labels[k] = shard.labels[r]!;
    indices.set(shard.indices.subarray(a, b), off);
    values.set(shard.values.subarray(a, b), off);
    off += b - a;
    indptr[k + 1] = off;
  }
  return { kind: 'sparse', rows: n, cols: shard.cols, labels, indptr, indices, values };
}

/** Rows narrower than this are gathered element by element, wider ones with TypedArray.set. */
const NARROW_ROW_COLS = 64;

function gatherDense(shard: DenseShard, rowIds: Uint32Array): DenseBatch {
  const n = rowIds.length;
  const cols = shard.cols;
  const labels = new Float32Array(n);
  const x = new Float32Array(n * cols);
  const src = shard.x;
  if (cols >= NARROW_ROW_COLS) {
    for (let k = 0; k < n; k++) {
      const r = rowIds[k]!;
      labels[k] = shard.labels[r]!;
      x.set(src.subarray(r * cols, (r + 1) * cols), k * cols);
    }
  } else {
    // A narrow row (Higgs: 28 floats) copies faster element by element than through a subarray
    // view, which costs an object per row (and the collector's time for it).
    for (let k = 0; k < n; k++) {
      const r = rowIds[k]!;
      labels[k] = shard.labels[r]!;
      const from = r * cols, to = k * cols;
      for (let c = 0; c < cols; c++) x[to + c] = src[from + c]!;
    }
  }
  return { kind: 'dense', rows: n, cols, labels, x };
}

function gatherRatings(shard: RatingsShard, rowIds: Uint32Array): RatingsBatch {
  const n = rowIds.length;
  const users = new Uint32Array(n);
  const items = new Uint32Array(n);
  const ratings = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const r = rowIds[k]!;
    users[k] = shard.users[r]!;
    items[k] = shard.items[r]!;
    ratings[k] = shard.ratings[r]!;
  }
  return { kind: 'ratings', rows: n, users, items, ratings };
}
