/**
 * DatasetStore over a real s3rver and over a directory: shards first, manifest last, nothing left
 * behind by aborts, failures, overwrites or removals.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DatasetError, type DatasetErrorCode } from '../channels/datasets/errors.js';
import { datasetPrefix, manifestKey, type DatasetManifest } from '../channels/datasets/manifest.js';
import type { Shard, SparseShard } from '../channels/datasets/shard.js';
import { DatasetStore } from '../channels/datasets/store.js';
import type { ManifestFields, ObjectStore } from '../channels/datasets/types.js';
import { FileObjectStore, S3ObjectStore } from '../channels/object-stores/index.js';
import { s3SpecFor, startS3Server, type S3Server } from '../client/servers/index.js';
import { WrappedStore } from './support/data.js';

// ---- helpers --------------------------------------------------------------------------------

/** Row r carries the id firstId + r in its label and first value; 1-3 nonzeros per row. */
function sparseShard(rows: number, firstId: number, cols = 64): SparseShard {
  const indptr = new Uint32Array(rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < rows; r++) {
    const id = firstId + r;
    for (let j = 0; j < (id % 3) + 1; j++) {
      indices.push((id * 7 + j * 13) % cols);
      values.push(j === 0 ? id : id + j / 4);
    }
    indptr[r + 1] = indices.length;
  }
  const labels = Float32Array.from({ length: rows }, (_, r) => firstId + r);
  return { kind: 'sparse', rows, cols, labels, indptr, indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}

function sparseFields(cols = 64, rowsPerShard = 10): ManifestFields {
  return { kind: 'sparse', task: 'regression', features: cols, classes: 0, rowsPerShard, stats: null, transforms: [] };
}

function assertSameShard(actual: Shard, expected: SparseShard): void {
  assert.equal(actual.kind, 'sparse');
  if (actual.kind !== 'sparse') return;
  assert.equal(actual.rows, expected.rows);
  assert.equal(actual.cols, expected.cols);
  assert.deepEqual([...actual.labels], [...expected.labels]);
  assert.deepEqual([...actual.indptr], [...expected.indptr]);
  assert.deepEqual([...actual.indices], [...expected.indices]);
  assert.deepEqual([...actual.values], [...expected.values]);
}

function datasetError(code: DatasetErrorCode, ...includes: string[]) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const s of includes) assert.ok(err.message.includes(s), `message '${err.message}' should include '${s}'`);
    return true;
  };
}

/** The n-th put (1-based) fails without writing anything. */
class FailingPutStore extends WrappedStore {
  puts = 0;
  constructor(
    inner: ObjectStore,
    private readonly failOn: number,
  ) {
    super(inner);
  }
  override async put(key: string, bytes: Uint8Array): Promise<void> {
    if (++this.puts === this.failOn) throw new Error(`injected failure of put ${this.failOn}`);
    return this.inner.put(key, bytes);
  }
}

/** Puts wait for release(); counts the puts started. */
class GatedPutStore extends WrappedStore {
  started = 0;
  private gate!: () => void;
  private readonly opened = new Promise<void>((r) => (this.gate = r));
  override async put(key: string, bytes: Uint8Array): Promise<void> {
    this.started++;
    await this.opened;
    return this.inner.put(key, bytes);
  }
  release(): void {
    this.gate();
  }
}

/** The first `times` gets of `key` return only its first half (a read racing a non-atomic PUT). */
class TornReadStore extends WrappedStore {
  torn = 0;
  constructor(
    inner: ObjectStore,
    private readonly key: string,
    private readonly times: number,
  ) {
    super(inner);
  }
  override async get(key: string): Promise<Uint8Array | undefined> {
    const bytes = await this.inner.get(key);
    if (key !== this.key || bytes === undefined || this.torn >= this.times) return bytes;
    this.torn++;
    return bytes.subarray(0, bytes.byteLength >> 1);
  }
}

const tick = () => new Promise<void>((r) => setImmediate(r));

// ---- setup ------------------------------------------------------------------------------------

let server: S3Server;
let tmp: string;
const stores: Array<{ name: string; store: ObjectStore }> = [];

before(async () => {
  server = await startS3Server();
  tmp = await mkdtemp(join(tmpdir(), 'cirrus-datasets-'));
  stores.push({ name: 's3rver', store: await S3ObjectStore.open(s3SpecFor(server, 'cirrus', 'dstest/')) });
  stores.push({ name: 'directory', store: new FileObjectStore(join(tmp, 'files')) });
});

after(async () => {
  try {
    for (const { store } of stores) {
      assert.deepEqual(await store.list(''), [], `${store.url} is left empty by the tests`);
      await store.close();
    }
  } finally {
    await server?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
});

// ---- tests ------------------------------------------------------------------------------------

for (const backend of ['s3rver', 'directory']) {
  describe(`DatasetStore on ${backend}`, () => {
    let store: ObjectStore;
    let ds: DatasetStore;
    before(() => {
      store = stores.find((s) => s.name === backend)!.store;
      ds = new DatasetStore(store);
    });

    it('writes shards then a manifest, and reads back identical shards', async () => {
      const train = [sparseShard(10, 0), sparseShard(10, 10), sparseShard(7, 20)];
      const test = [sparseShard(5, 1000)];
      const w = await ds.createWriter('roundtrip');
      assert.match(w.runId, /^\d{8}T\d{9}Z-[0-9a-f]{8}$/);
      const refs = [];
      for (const s of train) refs.push(await w.addShard('train', s));
      refs.push(await w.addShard('test', test[0]!));
      assert.deepEqual(
        refs.map((r) => r.key),
        [0, 1, 2].map((i) => `datasets/roundtrip/${w.runId}/train/0000${i}.shard`).concat(`datasets/roundtrip/${w.runId}/test/00000.shard`),
      );
      const m = await w.commit(sparseFields());
      assert.equal(m.formatVersion, 1);
      assert.equal(m.name, 'roundtrip');
      assert.equal(m.trainRows, 27);
      assert.equal(m.testRows, 5);
      assert.equal(m.train.rows, 27);
      // Rows with id % 3 == k have k + 1 nonzeros.
      assert.deepEqual(m.train.shards.map((r) => [r.rows, r.nnz]), [[10, 19], [10, 20], [7, 15]]);
      assert.deepEqual(m.test.shards.map((r) => [r.rows, r.nnz]), [[5, 11]]);
      // 32-byte header + labels, indptr, indices, values.
      assert.equal(m.train.shards[2]!.bytes, 32 + 4 * (7 + 8 + 15 + 15));
      assert.ok(!Number.isNaN(Date.parse(m.createdAt)));
      assert.deepEqual(await ds.manifest('roundtrip'), m);

      for (let i = 0; i < 3; i++) assertSameShard(await ds.readShard(m.train.shards[i]!), train[i]!);
      assertSameShard(await ds.readShard(m.test.shards[0]!), test[0]!);
      assert.deepEqual(await store.list(datasetPrefix('roundtrip')), [...m.train.shards, ...m.test.shards].map((r) => r.key).concat(manifestKey('roundtrip')).sort());
      await ds.remove('roundtrip');
    });

    it('is not visible before commit', async () => {
      const w = await ds.createWriter('invisible');
      for (let i = 0; i < 3; i++) await w.addShard('train', sparseShard(4, 4 * i));
      await w.addShard('test', sparseShard(4, 100));
      // Wait until every shard is stored, then look for the dataset.
      const runPrefix = `datasets/invisible/${w.runId}/`;
      while ((await store.list(runPrefix)).length < 4) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual((await ds.list()).map((m) => m.name), []);
      await assert.rejects(ds.manifest('invisible'), datasetError('DATASET_NOT_FOUND', `dataset 'invisible' does not exist in ${store.url}`));
      await w.commit(sparseFields());
      assert.deepEqual((await ds.list()).map((m) => [m.name, m.trainRows, m.testRows]), [['invisible', 12, 4]]);
      await ds.remove('invisible');
    });

    it('abort deletes everything the writer uploaded', async () => {
      const w = await ds.createWriter('aborted');
      for (let i = 0; i < 5; i++) await w.addShard(i < 4 ? 'train' : 'test', sparseShard(6, 6 * i));
      await w.abort();
      assert.deepEqual(await store.list(datasetPrefix('aborted')), []);
      await assert.rejects(w.addShard('train', sparseShard(1, 0)), datasetError('DATASET_WRITER', 'aborted'));
      await assert.rejects(w.commit(sparseFields()), datasetError('DATASET_WRITER', 'aborted'));
      await w.abort(); // idempotent
    });

    it('a failed upload leaves no manifest and no shards', async () => {
      const failing = new FailingPutStore(store, 2);
      const fds = new DatasetStore(failing);
      const w = await fds.createWriter('failing');
      let rejected = 0;
      for (let i = 0; i < 4; i++) {
        try {
          await w.addShard('train', sparseShard(5, 5 * i));
        } catch (err) {
          assert.ok(err instanceof DatasetError && err.code === 'DATASET_UPLOAD', String(err));
          rejected++;
        }
      }
      await assert.rejects(w.commit(sparseFields()), datasetError('DATASET_UPLOAD', "dataset 'failing'", 'injected failure of put 2', `datasets/failing/${w.runId}/train/00001.shard`));
      assert.equal(failing.puts + rejected, 4, 'shards added after the failure are refused, not uploaded');
      assert.equal(await store.get(manifestKey('failing')), undefined);
      assert.deepEqual(await store.list(datasetPrefix('failing')), []);
      await assert.rejects(ds.manifest('failing'), datasetError('DATASET_NOT_FOUND'));
    });

    it('back-pressures addShard at the upload concurrency', async () => {
      const gated = new GatedPutStore(store);
      const w = await new DatasetStore(gated).createWriter('gated', { concurrency: 2 });
      let resolved = 0;
      const adds = [0, 1, 2, 3].map((i) => w.addShard('train', sparseShard(3, 3 * i)).then((ref) => (resolved++, ref)));
      for (let i = 0; i < 5; i++) await tick();
      assert.equal(gated.started, 2);
      assert.equal(resolved, 2);
      gated.release();
      const refs = await Promise.all(adds);
      assert.equal(gated.started, 4);
      // Indices follow the order of the calls.
      assert.deepEqual(refs.map((r) => r.key.slice(-11)), ['00000.shard', '00001.shard', '00002.shard', '00003.shard']);
      const m = await w.commit(sparseFields());
      assert.deepEqual(m.train.shards.map((r) => r.rows), [3, 3, 3, 3]);
      await ds.remove('gated');
    });

    it('refuses to replace a dataset without overwrite, swaps it with overwrite, and leaves no old shards', async () => {
      const w1 = await ds.createWriter('swap');
      for (let i = 0; i < 3; i++) await w1.addShard('train', sparseShard(10, 10 * i));
      await w1.addShard('test', sparseShard(3, 500));
      const m1 = await w1.commit(sparseFields());

      await assert.rejects(ds.createWriter('swap'), datasetError('DATASET_EXISTS', `dataset 'swap' already exists in ${store.url}; pass overwrite`));

      // Leftovers of a crashed older run and a stray key: the next commit sweeps them.
      const crashed = 'datasets/swap/19990101T000000000Z-deadbeef/train/00000.shard';
      await store.put(crashed, Uint8Array.of(1, 2, 3));
      await store.put('datasets/swap/stray', Uint8Array.of(4));

      const w2 = await ds.createWriter('swap', { overwrite: true });
      await w2.addShard('train', sparseShard(8, 2000));
      await w2.addShard('train', sparseShard(8, 2008));
      // Until the commit, readers still get the old dataset.
      assert.deepEqual(await ds.manifest('swap'), m1);
      const m2 = await w2.commit(sparseFields());
      assert.equal(m2.trainRows, 16);
      assert.equal(m2.testRows, 0);
      assert.deepEqual(await ds.manifest('swap'), m2);
      assert.deepEqual(await store.list(datasetPrefix('swap')), [manifestKey('swap'), ...m2.train.shards.map((r) => r.key)].sort());
      assertSameShard(await ds.readShard(m2.train.shards[1]!), sparseShard(8, 2008));
      await assert.rejects(ds.readShard(m1.train.shards[0]!), datasetError('DATASET_SHARD', m1.train.shards[0]!.key, 'is missing'));
      await ds.remove('swap');
    });

    it('concurrent writers of one dataset never publish a manifest of missing shards', async () => {
      // Same DatasetStore: a commit leaves the other writer's run alone, whichever commits first.
      const a = await ds.createWriter('race', { overwrite: true });
      const b = await ds.createWriter('race', { overwrite: true });
      await a.addShard('train', sparseShard(2, 0));
      await b.addShard('train', sparseShard(3, 0));
      await b.commit(sparseFields());
      const ma = await a.commit(sparseFields());
      assert.equal((await ds.manifest('race')).trainRows, 2);
      assert.deepEqual(await store.list(datasetPrefix('race')), [manifestKey('race'), ma.train.shards[0]!.key].sort());

      // Separate processes (stores): the newer commit sweeps the older, unfinished run, whose commit then fails.
      const other = new DatasetStore(store);
      const older = await other.createWriter('race', { overwrite: true });
      await older.addShard('train', sparseShard(4, 0));
      await new Promise((r) => setTimeout(r, 5)); // distinct run-id times
      const newer = await ds.createWriter('race', { overwrite: true });
      await newer.addShard('train', sparseShard(5, 0));
      const mn = await newer.commit(sparseFields());
      await assert.rejects(older.commit(sparseFields()), datasetError('DATASET_UPLOAD', `run ${older.runId} vanished before commit`));
      assert.deepEqual(await ds.manifest('race'), mn);
      assert.deepEqual(await store.list(datasetPrefix('race')), [manifestKey('race'), mn.train.shards[0]!.key].sort());
      await ds.remove('race');
    });

    it('remove deletes the manifest and every key under the dataset; missing datasets are DATASET_NOT_FOUND', async () => {
      const w = await ds.createWriter('doomed');
      await w.addShard('train', sparseShard(4, 0));
      await w.commit(sparseFields());
      await store.put('datasets/doomed/extra/key', Uint8Array.of(1));
      await ds.remove('doomed');
      assert.deepEqual(await store.list(datasetPrefix('doomed')), []);
      await assert.rejects(ds.remove('doomed'), datasetError('DATASET_NOT_FOUND', `dataset 'doomed' does not exist in ${store.url}`));
      await assert.rejects(ds.manifest('never'), datasetError('DATASET_NOT_FOUND', `dataset 'never' does not exist in ${store.url}`));
    });

    it('list() returns the committed datasets by name and ignores prefixes without a manifest', async () => {
      for (const name of ['list-b', 'list-a']) {
        const w = await ds.createWriter(name);
        await w.addShard('train', sparseShard(2, 0));
        await w.commit(sparseFields());
      }
      await store.put('datasets/list-orphan/20000101T000000000Z-00000000/train/00000.shard', Uint8Array.of(0));
      const all = await ds.list();
      assert.deepEqual(all.map((m) => m.name), ['list-a', 'list-b']);
      assert.deepEqual(all.map((m) => m.trainRows), [2, 2]);
      await ds.remove('list-a');
      await ds.remove('list-b');
      assert.deepEqual(await ds.cleanupOrphans('list-orphan'), ['datasets/list-orphan/20000101T000000000Z-00000000/train/00000.shard']);
      assert.deepEqual(await ds.list(), []);
    });

    it('cleanupOrphans removes unlisted keys and keeps the listed shards and young runs when asked', async () => {
      const w = await ds.createWriter('orphans');
      await w.addShard('train', sparseShard(3, 0));
      const m = await w.commit(sparseFields());
      const old = 'datasets/orphans/20000101T000000000Z-0badc0de/train/00000.shard';
      const young = `datasets/orphans/${new Date().toISOString().replace(/[-:.]/g, '')}-12345678/train/00000.shard`;
      await store.put(old, Uint8Array.of(1));
      await store.put(young, Uint8Array.of(2));
      assert.deepEqual(await ds.cleanupOrphans('orphans', { minAgeMs: 3_600_000 }), [old]);
      assert.deepEqual(await ds.cleanupOrphans('orphans'), [young]);
      assert.deepEqual(await store.list(datasetPrefix('orphans')), [m.train.shards[0]!.key, manifestKey('orphans')].sort());
      assert.deepEqual(await ds.cleanupOrphans('orphans'), []);
      // A dataset that was never committed: everything is an orphan.
      await store.put('datasets/ghost/x', Uint8Array.of(3));
      assert.deepEqual(await ds.cleanupOrphans('ghost'), ['datasets/ghost/x']);
      await ds.remove('orphans');
    });

    it('a corrupt manifest gives DATASET_MANIFEST naming the key and the field', async () => {
      const w = await ds.createWriter('corrupt');
      await w.addShard('train', sparseShard(3, 0));
      const m = await w.commit(sparseFields());
      const key = manifestKey('corrupt');
      const write = (json: unknown) => store.put(key, new TextEncoder().encode(JSON.stringify(json)));
      const bad: Array<[unknown, string]> = [
        [{ ...m, train: { ...m.train, shards: [{ ...m.train.shards[0]!, rows: 'three' }] } }, "field 'train.shards.0.rows'"],
        [{ ...m, kind: 'tabular' }, "field 'kind'"],
        [{ ...m, name: 'other' }, "field 'name'"],
        [{ ...m, trainRows: 4 }, "field 'trainRows'"],
        [{ ...m, train: { ...m.train, rows: 9 } }, "field 'train.rows'"],
      ];
      for (const [json, field] of bad) {
        await write(json);
        await assert.rejects(ds.manifest('corrupt'), datasetError('DATASET_MANIFEST', `manifest '${key}' in ${store.url}`, field));
      }
      await store.put(key, new TextEncoder().encode('{"formatVersion": 1, "na'));
      await assert.rejects(ds.manifest('corrupt'), datasetError('DATASET_MANIFEST', `manifest '${key}'`, 'not valid JSON', '5 reads'));
      // A corrupt manifest blocks cleanup (it cannot tell what is listed) but not removal.
      await assert.rejects(ds.cleanupOrphans('corrupt'), datasetError('DATASET_MANIFEST'));
      await ds.remove('corrupt');
      assert.deepEqual(await store.list(datasetPrefix('corrupt')), []);
    });

    it('retries a manifest read that raced a non-atomic PUT', async () => {
      const w = await ds.createWriter('torn');
      await w.addShard('train', sparseShard(3, 0));
      const m = await w.commit(sparseFields());
      const torn = new TornReadStore(store, manifestKey('torn'), 2);
      assert.deepEqual(await new DatasetStore(torn).manifest('torn'), m);
      assert.equal(torn.torn, 2);
      await ds.remove('torn');
    });

    it('readShard checks the shard against its manifest entry', async () => {
      const w = await ds.createWriter('checked');
      await w.addShard('train', sparseShard(6, 0));
      const m = await w.commit(sparseFields());
      const ref = m.train.shards[0]!;
      await assert.rejects(ds.readShard({ ...ref, bytes: ref.bytes + 4 }), datasetError('DATASET_SHARD', `shard '${ref.key}'`, `has ${ref.bytes} bytes; the manifest says ${ref.bytes + 4}`));
      await assert.rejects(ds.readShard({ ...ref, rows: 7 }), datasetError('DATASET_SHARD', `shard '${ref.key}'`, 'has 6 rows; the manifest says 7'));
      await store.put(ref.key, new Uint8Array(ref.bytes));
      await assert.rejects(ds.readShard(ref), datasetError('DATASET_SHARD', `shard '${ref.key}'`, 'not a dataset shard'));
      await ds.remove('checked');
    });

    it('validates names, and writer use out of order', async () => {
      for (const name of ['', '../x', '.hidden', 'a/b', 'x'.repeat(101)]) {
        await assert.rejects(ds.createWriter(name), datasetError('DATASET_NAME', `dataset name '${name.slice(0, 120)}' is invalid`, 'starting with a letter or digit'));
      }
      await assert.rejects(ds.manifest('a/b'), datasetError('DATASET_NAME'));
      await assert.rejects(ds.createWriter('ok', { concurrency: 0 }), datasetError('DATASET_ARGUMENT', 'concurrency'));

      const w = await ds.createWriter('misuse');
      await w.addShard('train', sparseShard(3, 0));
      // Wrong fields: the commit fails, the uploads stay usable for a corrected commit.
      await assert.rejects(w.commit({ ...sparseFields(), kind: 'dense' }), datasetError('DATASET_MANIFEST', "field 'kind' is 'dense'", 'is sparse'));
      await assert.rejects(w.commit({ ...sparseFields(), features: 10 }), datasetError('DATASET_MANIFEST', "field 'features' is 10", 'has 64 columns'));
      await assert.rejects(w.commit({ ...sparseFields(), rowsPerShard: 0 }), datasetError('DATASET_MANIFEST', "field 'rowsPerShard'"));
      const m: DatasetManifest = await w.commit(sparseFields());
      assert.equal(m.trainRows, 3);
      await assert.rejects(w.addShard('train', sparseShard(1, 0)), datasetError('DATASET_WRITER', 'committed'));
      await assert.rejects(w.commit(sparseFields()), datasetError('DATASET_WRITER', 'committed'));
      await assert.rejects(w.abort(), datasetError('DATASET_WRITER', 'committed', "remove('misuse')"));
      await ds.remove('misuse');
    });
  });
}

describe('DatasetStore.open', () => {
  it('opens a directory target and leaves no files behind after remove', async () => {
    const dir = join(tmp, 'opened');
    const ds = await DatasetStore.open(dir);
    try {
      const w = await ds.createWriter('d');
      await w.addShard('train', sparseShard(2, 0));
      await w.commit(sparseFields());
      assert.deepEqual((await ds.list()).map((m) => m.name), ['d']);
      await ds.remove('d');
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await ds.close();
    }
  });
});
