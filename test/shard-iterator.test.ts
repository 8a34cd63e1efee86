/**
 * ShardIterator: partitioning over ranks, reproducible shuffling, prefetch depth, batch shapes.
 * Datasets live in a directory store (and one pass runs against a real s3rver).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DatasetError, type DatasetErrorCode } from '../channels/datasets/errors.js';
import type { DatasetManifest } from '../channels/datasets/manifest.js';
import type { DenseShard, RatingsShard, SparseShard } from '../channels/datasets/shard.js';
import { DatasetStore } from '../channels/datasets/store.js';
import type { ManifestFields, ObjectStore } from '../channels/datasets/types.js';
import { FileObjectStore, S3ObjectStore } from '../channels/object-stores/index.js';
import { s3SpecFor, startS3Server, type S3Server } from '../client/servers/index.js';
import { ShardIterator, SplitMix32, combineSeed, permutation, type Batch, type ShardIteratorOptions, type SparseBatch } from '../worker/index.js';
import { WrappedStore } from './support/data.js';

// ---- helpers --------------------------------------------------------------------------------

const COLS = 64;

/** Row r carries the id firstId + r in its label and first value; (id % 3) + 1 nonzeros. */
function sparseShard(rows: number, firstId: number): SparseShard {
  const indptr = new Uint32Array(rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < rows; r++) {
    const id = firstId + r;
    for (let j = 0; j < (id % 3) + 1; j++) {
      indices.push((id * 7 + j * 13) % COLS);
      values.push(j === 0 ? id : id + j / 4);
    }
    indptr[r + 1] = indices.length;
  }
  const labels = Float32Array.from({ length: rows }, (_, r) => firstId + r);
  return { kind: 'sparse', rows, cols: COLS, labels, indptr, indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}

function denseShard(rows: number, firstId: number, cols: number): DenseShard {
  const labels = Float32Array.from({ length: rows }, (_, r) => firstId + r);
  const x = Float32Array.from({ length: rows * cols }, (_, i) => (firstId + Math.floor(i / cols)) * 100 + (i % cols));
  return { kind: 'dense', rows, cols, labels, x };
}

function ratingsShard(rows: number, firstId: number): RatingsShard {
  return {
    kind: 'ratings',
    rows,
    cols: 0,
    users: Uint32Array.from({ length: rows }, (_, r) => firstId + r),
    items: Uint32Array.from({ length: rows }, (_, r) => (firstId + r) * 2),
    ratings: Float32Array.from({ length: rows }, (_, r) => (firstId + r) / 2),
  };
}

function fields(kind: 'sparse' | 'dense' | 'ratings', features: number): ManifestFields {
  return { kind, task: 'regression', features, classes: 0, rowsPerShard: 16, stats: null, transforms: [] };
}

function datasetError(code: DatasetErrorCode, message?: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.equal(err.message, message);
    return true;
  };
}

/** Every get takes delayMs longer; counts gets in flight and their maximum. */
class SlowGetStore extends WrappedStore {
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    inner: ObjectStore,
    private readonly delayMs: number,
    private readonly failKey?: string,
  ) {
    super(inner);
  }
  override async get(key: string): Promise<Uint8Array | undefined> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      if (key === this.failKey) throw new Error(`injected read failure of ${key}`);
      return await this.inner.get(key);
    } finally {
      this.inFlight--;
    }
  }
}

/** Gets of a key wait until open(key); records the keys requested, in order. */
class GatedGetStore extends WrappedStore {
  readonly started: string[] = [];
  private readonly gates = new Map<string, () => void>();
  private readonly opened = new Set<string>();
  override async get(key: string): Promise<Uint8Array | undefined> {
    this.started.push(key);
    if (!this.opened.has(key)) await new Promise<void>((r) => this.gates.set(key, r));
    return this.inner.get(key);
  }
  open(key: string): void {
    this.opened.add(key);
    this.gates.get(key)?.();
  }
}

/** Label of every row, in visiting order, plus per-batch checks that rows are intact. */
function rowIds(batch: Batch): number[] {
  if (batch.kind === 'sparse') {
    assert.equal(batch.indptr.length, batch.rows + 1);
    const ids: number[] = [];
    for (let k = 0; k < batch.rows; k++) {
      const id: number = batch.labels[k]!;
      const a: number = batch.indptr[k]!;
      const b: number = batch.indptr[k + 1]!;
      // The row's nonzeros came along with its label.
      assert.equal(b - a, (id % 3) + 1, `row ${id}: nonzeros`);
      assert.equal(batch.values[a], id, `row ${id}: first value`);
      assert.equal(batch.indices[a], (id * 7) % COLS, `row ${id}: first index`);
      ids.push(id);
    }
    return ids;
  }
  if (batch.kind === 'dense') {
    const ids = [...batch.labels];
    ids.forEach((id, k) => assert.deepEqual([...batch.x.subarray(k * batch.cols, (k + 1) * batch.cols)], Array.from({ length: batch.cols }, (_, c) => id * 100 + c)));
    return ids;
  }
  const ids = [...batch.users];
  ids.forEach((id, k) => {
    assert.equal(batch.items[k], id * 2);
    assert.equal(batch.ratings[k], id / 2);
  });
  return ids;
}

async function collect(it: ShardIterator): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it.batches()) out.push(b);
  return out;
}

// ---- setup ------------------------------------------------------------------------------------

/** Train shard i has TRAIN_ROWS[i] rows; ids run consecutively from 0. */
const TRAIN_ROWS = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const TRAIN_TOTAL = TRAIN_ROWS.reduce((a, b) => a + b, 0);
const TEST_ROWS = [5, 6];

let tmp: string;
let files: FileObjectStore;
let ds: DatasetStore;
let sparse: DatasetManifest;
let dense: DatasetManifest;
let ratings: DatasetManifest;

async function writeDataset(store: DatasetStore, name: string, kind: 'sparse' | 'dense' | 'ratings'): Promise<DatasetManifest> {
  const make = (rows: number, first: number) => (kind === 'sparse' ? sparseShard(rows, first) : kind === 'dense' ? denseShard(rows, first, 3) : ratingsShard(rows, first));
  const w = await store.createWriter(name);
  let id = 0;
  for (const rows of TRAIN_ROWS) {
    await w.addShard('train', make(rows, id));
    id += rows;
  }
  for (const rows of TEST_ROWS) {
    await w.addShard('test', make(rows, id));
    id += rows;
  }
  return w.commit(fields(kind, kind === 'sparse' ? COLS : kind === 'dense' ? 3 : 0));
}

function options(manifest: DatasetManifest, over: Partial<ShardIteratorOptions> = {}): ShardIteratorOptions {
  return { store: ds, manifest, rank: 0, world: 1, epoch: 0, seed: 42, order: 'sequential', batchSize: 4, ...over };
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'cirrus-iter-'));
  files = new FileObjectStore(tmp);
  ds = new DatasetStore(files);
  sparse = await writeDataset(ds, 'iter', 'sparse');
  dense = await writeDataset(ds, 'iter-dense', 'dense');
  ratings = await writeDataset(ds, 'iter-ratings', 'ratings');
});

after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// ---- tests ------------------------------------------------------------------------------------

describe('ShardIterator', () => {
  it('visits every training row exactly once across W = 1..5 ranks (both orders)', async () => {
    for (const order of ['sequential', 'random'] as const) {
      for (let world = 1; world <= 5; world++) {
        const seen: number[] = [];
        for (let rank = 0; rank < world; rank++) {
          const it = new ShardIterator(options(sparse, { rank, world, order, epoch: 3 }));
          // Shard i goes to rank i % world.
          assert.deepEqual(
            [...it.shards].map((r) => sparse.train.shards.indexOf(r)).sort((a, b) => a - b),
            TRAIN_ROWS.map((_, i) => i).filter((i) => i % world === rank),
          );
          const batches = await collect(it);
          for (const b of batches) seen.push(...rowIds(b));
          const rows = it.shards.reduce((s, r) => s + r.rows, 0);
          assert.deepEqual(it.stats().rowsRead, rows);
          assert.equal(it.stats().shardsRead, it.shards.length);
          assert.equal(it.stats().bytesRead, it.shards.reduce((s, r) => s + r.bytes, 0));
        }
        assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: TRAIN_TOTAL }, (_, i) => i), `${order}, world ${world}`);
      }
    }
  });

  it('cuts each shard into batchSize batches; the last one of a shard is smaller, no row dropped', async () => {
    for (const batchSize of [1, 4, 7, 16, 100]) {
      const batches = await collect(new ShardIterator(options(sparse, { batchSize })));
      const expected = TRAIN_ROWS.flatMap((rows) => {
        const sizes = Array<number>(Math.floor(rows / batchSize)).fill(batchSize);
        if (rows % batchSize) sizes.push(rows % batchSize);
        return sizes;
      });
      assert.deepEqual(batches.map((b) => b.rows), expected, `batchSize ${batchSize}`);
      assert.equal(batches.reduce((s, b) => s + b.rows, 0), TRAIN_TOTAL);
    }
  });

  it('sequential order keeps shards and rows in order, as views into the shard', async () => {
    const it = new ShardIterator(options(sparse, { rank: 1, world: 3, batchSize: 5 }));
    const batches = (await collect(it)) as SparseBatch[];
    const firstIds = TRAIN_ROWS.map((_, i) => TRAIN_ROWS.slice(0, i).reduce((a, b) => a + b, 0));
    const expected = [1, 4, 7].flatMap((i) => Array.from({ length: TRAIN_ROWS[i]! }, (_, r) => firstIds[i]! + r));
    assert.deepEqual(batches.flatMap(rowIds), expected);
    // Shard 1 (8 rows) gives batches of 5 and 3 that share the shard's buffer and arrays.
    const [b0, b1] = batches as [SparseBatch, SparseBatch];
    assert.equal(b0.labels.buffer, b1.labels.buffer);
    assert.equal(b0.indices, b1.indices);
    assert.equal(b0.values, b1.values);
    // indptr keeps absolute offsets: the second batch starts after the first batch's nonzeros.
    assert.equal(b1.indptr[0], b0.indptr[5]);
    assert.equal(b0.indices.length, sparse.train.shards[1]!.nnz);
  });

  it('random order gathers permuted rows into fresh compact arrays', async () => {
    const batches = (await collect(new ShardIterator(options(sparse, { order: 'random', batchSize: 5 })))) as SparseBatch[];
    const [b0, b1] = batches as [SparseBatch, SparseBatch];
    assert.notEqual(b0.labels.buffer, b1.labels.buffer);
    for (const b of batches) {
      assert.equal(b.indptr[0], 0);
      assert.equal(b.indices.length, b.indptr[b.rows]);
      assert.equal(b.values.length, b.indptr[b.rows]);
    }
  });

  it('random order is reproducible for (seed, rank, epoch) and differs across epochs and seeds', async () => {
    const order = async (over: Partial<ShardIteratorOptions>) => {
      const it = new ShardIterator(options(sparse, { order: 'random', world: 2, ...over }));
      return { shards: it.shards.map((r) => r.key), rows: (await collect(it)).flatMap(rowIds) };
    };
    const base = await order({ rank: 0, epoch: 1, seed: 7 });
    assert.deepEqual(await order({ rank: 0, epoch: 1, seed: 7 }), base);
    const otherEpoch = await order({ rank: 0, epoch: 2, seed: 7 });
    const otherSeed = await order({ rank: 0, epoch: 1, seed: 8 });
    assert.notDeepEqual(otherEpoch.rows, base.rows);
    assert.notDeepEqual(otherSeed.rows, base.rows);
    // Same rows, different order.
    assert.deepEqual([...otherEpoch.rows].sort((a, b) => a - b), [...base.rows].sort((a, b) => a - b));
    // Rows inside a shard are shuffled too, not only the shard order.
    const sequential = (await collect(new ShardIterator(options(sparse, { world: 2 })))).flatMap(rowIds);
    const firstShard = base.shards[0]!;
    const ref = sparse.train.shards.find((r) => r.key === firstShard)!;
    const inShard = base.rows.slice(0, ref.rows);
    assert.notDeepEqual(inShard, [...inShard].sort((a, b) => a - b));
    assert.notDeepEqual(base.rows, sequential);
  });

  it('prefetches readAhead shards ahead of the one being consumed', async () => {
    for (const [readAhead, expectedMax] of [[2, 3], [1, 2], [0, 1]] as const) {
      const slow = new SlowGetStore(files, 30);
      const it = new ShardIterator(options(sparse, { store: new DatasetStore(slow), readAhead }));
      const batches = await collect(it);
      assert.equal(slow.maxInFlight, expectedMax, `readAhead ${readAhead}`);
      const s = it.stats();
      assert.equal(s.shardsRead, 10);
      assert.equal(s.rowsRead, TRAIN_TOTAL);
      assert.equal(batches.reduce((n, b) => n + b.rows, 0), TRAIN_TOTAL);
      assert.equal(s.bytesRead, sparse.train.shards.reduce((n, r) => n + r.bytes, 0));
      assert.ok(s.waitMs > 0, `waitMs is reported (${s.waitMs})`);
      assert.ok(s.fetchMs > 0, `fetchMs is reported (${s.fetchMs})`);
    }
  });

  it('starts the next fetches before handing out the current shard', async () => {
    const gated = new GatedGetStore(files);
    const it = new ShardIterator(options(sparse, { store: new DatasetStore(gated), readAhead: 2 }));
    const keys = it.shards.map((r) => r.key);
    const gen = it.batches();
    gated.open(keys[0]!);
    // Shard 0 (7 rows) arrives; shards 1 and 2 were requested before its first batch is handed out.
    assert.equal((await gen.next()).value?.rows, 4);
    assert.deepEqual(gated.started, keys.slice(0, 3));
    assert.equal((await gen.next()).value?.rows, 3);
    assert.deepEqual(gated.started, keys.slice(0, 3));
    // Moving on to shard 1 requests shard 3 before blocking on shard 1.
    const next = gen.next();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(gated.started, keys.slice(0, 4));
    for (const k of keys) gated.open(k);
    assert.equal((await next).value?.rows, 4);
    await gen.return(undefined);
  });

  it('reports a failed shard read when it is reached, and ignores it after an early stop', async () => {
    const failKey = sparse.train.shards[2]!.key;
    const failing = () => new DatasetStore(new SlowGetStore(files, 5, failKey));
    await assert.rejects(collect(new ShardIterator(options(sparse, { store: failing() }))), /injected read failure/);
    // Stopping after the first batch leaves the failing prefetch unobserved: no unhandled rejection.
    for await (const b of new ShardIterator(options(sparse, { store: failing() })).batches()) {
      assert.equal(b.rows, 4);
      break;
    }
    await new Promise((r) => setTimeout(r, 30));
  });

  it('iterates the test split on request', async () => {
    const batches = await collect(new ShardIterator(options(sparse, { split: 'test', world: 2, rank: 1 })));
    assert.deepEqual(batches.flatMap(rowIds), Array.from({ length: TEST_ROWS[1]! }, (_, r) => TRAIN_TOTAL + TEST_ROWS[0]! + r));
  });

  it('refuses more workers than shards with DATASET_TOO_FEW_SHARDS', () => {
    assert.throws(
      () => new ShardIterator(options(sparse, { world: 11, rank: 0 })),
      datasetError('DATASET_TOO_FEW_SHARDS', "dataset 'iter' has 10 train shards; 11 workers need at least 11 (re-shard with a smaller --shard-rows)"),
    );
    assert.throws(
      () => new ShardIterator(options(sparse, { world: 3, rank: 2, split: 'test' })),
      datasetError('DATASET_TOO_FEW_SHARDS', "dataset 'iter' has 2 test shards; 3 workers need at least 3 (re-shard with a smaller --shard-rows)"),
    );
    // Exactly as many shards as workers is fine.
    assert.equal(new ShardIterator(options(sparse, { world: 10, rank: 9 })).shards.length, 1);
  });

  it('validates its options', () => {
    const bad: Array<[Partial<ShardIteratorOptions>, string]> = [
      [{ world: 0 }, 'world must be an integer >= 1, got 0'],
      [{ world: 2, rank: 2 }, 'rank must be an integer in [0, 1], got 2'],
      [{ batchSize: 0 }, 'batchSize must be an integer >= 1, got 0'],
      [{ readAhead: -1 }, 'readAhead must be an integer >= 0, got -1'],
      [{ epoch: 1.5 }, 'epoch must be an integer >= 0, got 1.5'],
      [{ seed: Number.NaN }, 'seed must be a safe integer, got NaN'],
      [{ order: 'shuffled' as never }, "order must be 'random' or 'sequential', got 'shuffled'"],
    ];
    for (const [over, message] of bad) assert.throws(() => new ShardIterator(options(sparse, over)), datasetError('DATASET_ARGUMENT', `shard iterator: ${message}`));
  });

  it('yields dense and ratings batches, as views in order and gathered when random', async () => {
    for (const manifest of [dense, ratings]) {
      for (const order of ['sequential', 'random'] as const) {
        const seen: number[] = [];
        for (let rank = 0; rank < 3; rank++) {
          const batches = await collect(new ShardIterator(options(manifest, { rank, world: 3, order, batchSize: 6 })));
          for (const b of batches) {
            assert.equal(b.kind, manifest.kind);
            if (b.kind === 'dense') assert.equal(b.x.length, b.rows * b.cols);
            seen.push(...rowIds(b));
          }
        }
        assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: TRAIN_TOTAL }, (_, i) => i), `${manifest.kind} ${order}`);
      }
      const [b0, b1] = await collect(new ShardIterator(options(manifest, { batchSize: 4 })));
      const arr = (b: Batch) => (b.kind === 'dense' ? b.x : b.kind === 'ratings' ? b.users : b.labels);
      assert.equal(arr(b0!).buffer, arr(b1!).buffer, `${manifest.kind} sequential batches are views`);
    }
  });
});

describe('PRNG', () => {
  it('is deterministic per seed and permutes exactly', () => {
    const a = new SplitMix32(combineSeed(1, 2, 3));
    const b = new SplitMix32(combineSeed(1, 2, 3));
    const xs = Array.from({ length: 5 }, () => a.next());
    assert.deepEqual(Array.from({ length: 5 }, () => b.next()), xs);
    assert.notEqual(combineSeed(1, 2, 3), combineSeed(1, 2, 4));
    assert.notEqual(combineSeed(2 ** 40, 0, 0), combineSeed(0, 0, 0));
    const p = permutation(1000, new SplitMix32(9));
    assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
    assert.notDeepEqual([...p], Array.from({ length: 1000 }, (_, i) => i));
  });
});

describe('ShardIterator on s3rver', () => {
  let server: S3Server;
  let store: S3ObjectStore;
  before(async () => {
    server = await startS3Server();
    store = await S3ObjectStore.open(s3SpecFor(server));
  });
  after(async () => {
    try {
      await store?.delete(await store.list(''));
      await store?.close();
    } finally {
      await server?.stop();
    }
  });

  it('streams a dataset written to S3, every row once over 3 ranks', async () => {
    const s3ds = new DatasetStore(store);
    const manifest = await writeDataset(s3ds, 'iter-s3', 'sparse');
    const seen: number[] = [];
    for (let rank = 0; rank < 3; rank++) {
      const it = new ShardIterator({ store: s3ds, manifest, rank, world: 3, epoch: 0, seed: 1, order: 'random', batchSize: 8 });
      for await (const b of it.batches()) seen.push(...rowIds(b));
    }
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: TRAIN_TOTAL }, (_, i) => i));
    await s3ds.remove('iter-s3');
    assert.deepEqual(await store.list(''), []);
  });
});
