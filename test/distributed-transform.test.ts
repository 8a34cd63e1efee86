/**
 * distributedTransform with the local launcher (real worker processes) and real stores (files,
 * and s3rver): the fitted statistics equal a one-pass local computation over all rows, the
 * written shards equal the local transform, and a failed worker leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { manifestKey, manifestSchema, shardKey, type DatasetManifest, type ShardRef } from '../channels/datasets/manifest.js';
import { decodeShard, encodeShard, type DenseShard, type Shard, type SparseShard } from '../channels/datasets/shard.js';
import type { ObjectStore } from '../channels/datasets/types.js';
import { FileObjectStore, openObjectStore } from '../channels/object-stores/index.js';
import { s3SpecFor, startS3Server, type S3Server } from '../client/servers/index.js';
import { finalizeStats, minMaxScale, shardStats, zScore, type FinalStats } from '../algorithms/index.js';
import { LocalLauncher } from '../client/launchers/local.js';
import { PreprocessError, WorkerFailedError, distributedTransform, type ScalingOp } from '../client/preprocess/transform.js';
import { lcg } from './support/data.js';

let dir: string;
let files: FileObjectStore;
let launcher: LocalLauncher;
let s3: S3Server | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cirrus-transform-'));
  files = new FileObjectStore(dir);
  launcher = new LocalLauncher({ timeoutS: 120, memoryMb: 512, concurrency: 2 });
});

after(async () => {
  await launcher?.close();
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

const DENSE_COLS = 5;

/** Column 0: 1e6 + noise; 1: wide negative; 2: constant; 3: small with NaN gaps; 4: unit noise. */
function denseShard(rows: number, seed: number): DenseShard {
  const u = lcg(seed);
  const x = new Float32Array(rows * DENSE_COLS);
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const row = [1e6 + 10 * u(), -3e5 + 2000 * (u() - 0.5), 7, (r + seed) % 5 === 0 ? NaN : 1e-3 * u(), u()];
    x.set(row, r * DENSE_COLS);
    labels[r] = u() < 0.5 ? 1 : 0;
  }
  return { kind: 'dense', rows, cols: DENSE_COLS, labels, x };
}

const SPARSE_COLS = 40;

function sparseShard(rows: number, seed: number): SparseShard {
  const u = lcg(seed);
  const indptr = new Uint32Array(rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < SPARSE_COLS - 1; j++) {
      // Feature 0 in every row; others rarer with growing index; feature 39 never.
      if (j === 0 || u() < 0.5 / (1 + j / 4)) {
        indices.push(j);
        values.push(j % 4 === 3 ? -50 * u() : j === 5 ? 1e6 + u() : 1 + 9 * u());
      }
    }
    indptr[r + 1] = indices.length;
  }
  return { kind: 'sparse', rows, cols: SPARSE_COLS, labels: Float32Array.from({ length: rows }, (_, r) => r % 2), indptr, indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}

/** Concatenates shards of one kind into one (the "all rows at once" reference input). */
function concat(shards: Shard[]): Shard {
  const first = shards[0]!;
  if (first.kind === 'dense') {
    const ds = shards as DenseShard[];
    const rows = ds.reduce((a, s) => a + s.rows, 0);
    const x = new Float32Array(rows * first.cols);
    const labels = new Float32Array(rows);
    let r = 0;
    for (const s of ds) {
      x.set(s.x, r * first.cols);
      labels.set(s.labels, r);
      r += s.rows;
    }
    return { kind: 'dense', rows, cols: first.cols, labels, x };
  }
  const ss = shards as SparseShard[];
  const rows = ss.reduce((a, s) => a + s.rows, 0);
  const nnz = ss.reduce((a, s) => a + s.indices.length, 0);
  const out: SparseShard = { kind: 'sparse', rows, cols: first.cols, labels: new Float32Array(rows), indptr: new Uint32Array(rows + 1), indices: new Uint32Array(nnz), values: new Float32Array(nnz) };
  let r = 0;
  let k = 0;
  for (const s of ss) {
    out.labels.set(s.labels, r);
    for (let i = 0; i < s.rows; i++) out.indptr[r + i + 1] = k + s.indptr[i + 1]!;
    out.indices.set(s.indices, k);
    out.values.set(s.values, k);
    r += s.rows;
    k += s.indices.length;
  }
  return out;
}

interface Source {
  manifest: DatasetManifest;
  train: Shard[];
  test: Shard[];
}

async function writeDataset(store: ObjectStore, name: string, train: Shard[], test: Shard[]): Promise<Source> {
  const put = async (split: 'train' | 'test', shards: Shard[]): Promise<ShardRef[]> =>
    Promise.all(
      shards.map(async (s, i) => {
        const key = shardKey(name, 'r0', split, i);
        const bytes = encodeShard(s);
        await store.put(key, bytes);
        const ref: ShardRef = { key, rows: s.rows, bytes: bytes.byteLength };
        if (s.kind === 'sparse') ref.nnz = s.indices.length;
        return ref;
      }),
    );
  const first = train[0]!;
  const trainRefs = await put('train', train);
  const testRefs = await put('test', test);
  const rows = (xs: Shard[]) => xs.reduce((a, s) => a + s.rows, 0);
  const manifest = manifestSchema.parse({
    formatVersion: 1,
    name,
    kind: first.kind,
    task: 'binary',
    features: first.cols,
    classes: 2,
    rowsPerShard: Math.max(1, ...train.map((s) => s.rows)),
    trainRows: rows(train),
    testRows: rows(test),
    train: { rows: rows(train), shards: trainRefs },
    test: { rows: rows(test), shards: testRefs },
    stats: null,
    transforms: [{ type: 'parse', note: 'written by the test' }],
    createdAt: new Date().toISOString(),
  });
  await store.put(manifestKey(name), new TextEncoder().encode(JSON.stringify(manifest)));
  return { manifest, train, test };
}

function near(a: number, e: number, rel: number): boolean {
  return a === e || Math.abs(a - e) <= rel * Math.max(Math.abs(e), 1e-300) || (Math.abs(e) < 1e-12 && Math.abs(a) < 1e-12);
}

/** Exact count/min/max; mean and std within `rel` (relative), or `abs` where the value is ~0. */
function assertStats(actual: FinalStats, expected: FinalStats, what: string, rel = 1e-9, abs = 0): void {
  assert.deepEqual(actual.count, expected.count, `${what}: count`);
  assert.deepEqual(actual.min, expected.min, `${what}: min`);
  assert.deepEqual(actual.max, expected.max, `${what}: max`);
  for (const f of ['mean', 'std'] as const) {
    expected[f].forEach((e, j) => {
      const a = actual[f][j]!;
      assert.ok(near(a, e, rel) || Math.abs(a - e) <= abs, `${what}: ${f}[${j}] = ${a}, expected ${e}`);
    });
  }
}

function valuesOf(s: Shard): Float32Array {
  if (s.kind === 'dense') return s.x;
  if (s.kind === 'sparse') return s.values;
  throw new Error('ratings');
}

async function readShard(store: ObjectStore, ref: ShardRef): Promise<Shard> {
  const bytes = await store.get(ref.key);
  assert.ok(bytes, `shard ${ref.key} exists`);
  return decodeShard(bytes, ref.key);
}

async function readManifest(store: ObjectStore, name: string): Promise<DatasetManifest | undefined> {
  const bytes = await store.get(manifestKey(name));
  return bytes && manifestSchema.parse(JSON.parse(new TextDecoder().decode(bytes)));
}

function apply(op: ScalingOp, shard: Shard, stats: FinalStats): Shard {
  return op.type === 'minmax' ? minMaxScale(shard, stats, op.lo, op.hi) : zScore(shard, stats);
}

/** Runs the transform and checks everything the result and the store say against local computations. */
async function runAndCheck(store: ObjectStore, src: Source, target: string, op: ScalingOp, shardsPerWorker: number, storeEndpoint?: Parameters<typeof distributedTransform>[0]['storeEndpoint']): Promise<void> {
  const result = await distributedTransform({ store, source: src.manifest, target, op, launcher, shardsPerWorker, ...(storeEndpoint ? { storeEndpoint } : {}) });
  const groups = (n: number) => Math.ceil(n / shardsPerWorker);
  assert.deepEqual(result.workers, { stats: groups(src.train.length), transform: groups(src.train.length) + groups(src.test.length) });

  // 1. Fitted statistics = one pass over all training rows at once.
  const local = finalizeStats(shardStats(concat(src.train)));
  assertStats(result.fitted, local, `${target}: fitted vs one-pass`);

  // 2. The published manifest: last in, complete, describing the new shards.
  const manifest = await readManifest(store, target);
  assert.ok(manifest, 'the manifest is published');
  assert.deepEqual(manifest, result.manifest);
  assert.equal(manifest.name, target);
  assert.equal(manifest.kind, src.manifest.kind);
  assert.equal(manifest.trainRows, src.manifest.trainRows);
  assert.equal(manifest.train.shards.length, src.train.length);
  assert.equal(manifest.test.shards.length, src.test.length);
  assert.equal(manifest.transforms.length, 2);
  assert.deepEqual(manifest.transforms[0], src.manifest.transforms[0], 'earlier transforms are kept');
  // Dense statistics also sit in the manifest, so a model trained on it carries them to raw rows.
  const fitted = manifest.kind === 'dense' ? { fitted: result.fitted } : {};
  assert.deepEqual({ ...manifest.transforms[1], sparse: undefined }, { ...op, fittedOn: src.manifest.name, fittedKey: result.fittedKey, sparse: undefined, ...fitted });
  const storedFit = await store.get(result.fittedKey);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(storedFit)), result.fitted, 'the fitted statistics are kept with the dataset');

  // 3. Every shard equals the local transform: bit for bit with the same statistics, and within
  //    float32 rounding with the one-pass statistics.
  const outTrain: Shard[] = [];
  for (const split of ['train', 'test'] as const) {
    const refs: ShardRef[] = manifest[split].shards;
    for (let i = 0; i < refs.length; i++) {
      const ref = refs[i]!;
      assert.ok(ref.key.startsWith(`datasets/${target}/`), ref.key);
      const out = await readShard(store, ref);
      if (split === 'train') outTrain.push(out);
      const input: Shard = src[split][i]!;
      assert.deepEqual(out, apply(op, input, result.fitted), `${split} shard ${i}: same as the local transform`);
      const viaLocal = valuesOf(apply(op, input, local));
      valuesOf(out).forEach((v, k) => assert.ok(Object.is(v, viaLocal[k]) || Math.abs(v - viaLocal[k]!) <= 1e-6 * Math.max(1, Math.abs(viaLocal[k]!)), `${split} shard ${i}[${k}]: ${v} vs ${viaLocal[k]}`));
    }
  }
  // 4. The manifest's statistics are those of the new training features.
  assertStats(manifest.stats!, finalizeStats(shardStats(concat(outTrain))), `${target}: manifest stats`, 1e-9, 1e-12);
}

test('dense z-score over a file store: fitted stats = one pass over all rows, shards = local transform', async () => {
  const train = [300, 1, 257, 0, 800, 33, 120].map((n, i) => denseShard(n, 10 + i));
  const test = [90, 0, 45].map((n, i) => denseShard(n, 100 + i));
  const src = await writeDataset(files, 'dense-src', train, test);
  await runAndCheck(files, src, 'dense-z', { type: 'zscore' }, 2);
  // The source is untouched.
  assert.deepEqual(await readManifest(files, 'dense-src'), src.manifest);
});

test('sparse min-max (max-abs, zeros stay zero) over a file store', async () => {
  const train = [400, 13, 250, 600].map((n, i) => sparseShard(n, 20 + i));
  const test = [77].map((n, i) => sparseShard(n, 200 + i));
  const src = await writeDataset(files, 'sparse-src', train, test);
  await runAndCheck(files, src, 'sparse-mm', { type: 'minmax', lo: 0, hi: 1 }, 3);
  const m = (await readManifest(files, 'sparse-mm'))!;
  // Non-negative features have min 0 (implicit zeros), so max-abs scaling IS min-max into [0, 1].
  assert.equal(m.stats!.max[0], 1);
  assert.equal(m.stats!.min[1], 0);
  await assert.rejects(
    distributedTransform({ store: files, source: src.manifest, target: 'sparse-bad', op: { type: 'minmax', lo: -1, hi: 1 }, launcher, shardsPerWorker: 2 }),
    (e: unknown) => e instanceof PreprocessError && e.code === 'PREPROCESS_CONFIG' && /op\.lo/.test(e.message),
  );
});

test('dense min-max over s3rver (workers reach it through the S3 spec in their event)', async () => {
  s3 = await startS3Server({ buckets: ['cirrus'] });
  const spec = s3SpecFor(s3, 'cirrus', 'transform-test');
  const store = await openObjectStore(spec);
  try {
    const src = await writeDataset(store, 'dense-s3', [120, 64, 200].map((n, i) => denseShard(n, 30 + i)), [50].map((n) => denseShard(n, 300)));
    await runAndCheck(store, src, 'dense-s3-mm', { type: 'minmax', lo: -1, hi: 1 }, 1, spec);
  } finally {
    await store.close();
  }
});

async function leftovers(store: ObjectStore, target: string): Promise<string[]> {
  return store.list(`datasets/${target}/`);
}

test('a worker failure in the statistics phase names the rank; nothing is written', async () => {
  const train = [50, 50, 50, 50, 50].map((n, i) => denseShard(n, 40 + i));
  const src = await writeDataset(files, 'bad-train', train, [denseShard(10, 400)]);
  // Shard 3 sits in the second group of two (rank 1).
  await files.put(src.manifest.train.shards[3]!.key, new TextEncoder().encode('not a shard'));
  await assert.rejects(
    distributedTransform({ store: files, source: src.manifest, target: 'bad-train-out', op: { type: 'zscore' }, launcher, shardsPerWorker: 2 }),
    (e: unknown) => {
      assert.ok(e instanceof WorkerFailedError, String(e));
      assert.equal(e.code, 'PREPROCESS_WORKER_FAILED');
      assert.equal(e.phase, 'dataset-stats');
      assert.equal(e.rank, 1);
      assert.equal(e.status, 'error');
      assert.equal(e.workerError?.code, 'SHARD_FORMAT');
      assert.match(e.message, /dataset-stats worker rank 1 failed \(error\): SHARD_FORMAT: datasets\/bad-train\/r0\/train\/00003\.shard: not a dataset shard/);
      return true;
    },
  );
  assert.deepEqual(await leftovers(files, 'bad-train-out'), []);
});

test('a worker failure in the transform phase removes the shards other workers wrote; no manifest', async () => {
  const train = [60, 60, 60, 60].map((n, i) => denseShard(n, 50 + i));
  const test = [20, 20, 20].map((n, i) => denseShard(n, 500 + i));
  const src = await writeDataset(files, 'bad-test', train, test);
  // The statistics phase only reads training shards; the transform phase then meets a missing test shard.
  await files.delete([src.manifest.test.shards[2]!.key]);
  await assert.rejects(
    distributedTransform({ store: files, source: src.manifest, target: 'bad-test-out', op: { type: 'minmax', lo: 0, hi: 1 }, launcher, shardsPerWorker: 2 }),
    (e: unknown) => {
      assert.ok(e instanceof WorkerFailedError, String(e));
      assert.equal(e.phase, 'dataset-transform');
      // train groups are ranks 0-1, test groups 2-3: test shard 2 is in rank 3.
      assert.equal(e.rank, 3);
      assert.equal(e.workerError?.code, 'SHARD_MISSING');
      assert.match(e.message, /00002\.shard' does not exist/);
      return true;
    },
  );
  assert.deepEqual(await leftovers(files, 'bad-test-out'), [], 'no shard, statistics object or manifest is left');
});

test('an existing target is refused, and replaced (old run removed) with overwrite', async () => {
  const src = await writeDataset(files, 'again-src', [denseShard(30, 60), denseShard(30, 61)], []);
  const first = await distributedTransform({ store: files, source: src.manifest, target: 'again', op: { type: 'zscore' }, launcher, shardsPerWorker: 1 });
  await assert.rejects(
    distributedTransform({ store: files, source: src.manifest, target: 'again', op: { type: 'zscore' }, launcher, shardsPerWorker: 1 }),
    (e: unknown) => e instanceof PreprocessError && e.code === 'PREPROCESS_TARGET_EXISTS',
  );
  const second = await distributedTransform({ store: files, source: src.manifest, target: 'again', op: { type: 'minmax', lo: 0, hi: 1 }, launcher, shardsPerWorker: 2, overwrite: true });
  const keys = await leftovers(files, 'again');
  const expected = [manifestKey('again'), second.fittedKey, ...second.manifest.train.shards.map((r) => r.key)].sort();
  assert.deepEqual(keys, expected, 'only the new run and its manifest remain');
  assert.ok(first.manifest.train.shards.every((r) => !keys.includes(r.key)));
  // The source dataset is untouched.
  assert.equal((await files.list('datasets/again-src/')).length, 3);
});
