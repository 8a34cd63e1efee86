/**
 * preprocessDistributed with the local launcher (real worker processes) and a file store: the
 * rows equal the local path's (same hashing in other processes), the manifest is written last
 * and lists every shard, raw chunks are removed, and a bad line fails the run naming its file
 * line while leaving nothing behind.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { manifestKey, type DatasetManifest } from '../channels/datasets/manifest.js';
import { DatasetStore } from '../channels/datasets/store.js';
import { FileObjectStore } from '../channels/object-stores/index.js';
import { generateCriteoLike } from '../client/datasets/generate.js';
import { LocalLauncher } from '../client/launchers/local.js';
import { preprocessDistributed } from '../client/preprocess/distributed.js';
import { preprocessLocal, type HashOptions } from '../algorithms/preprocess/pipeline.js';
import { WorkerFailedError } from '../client/preprocess/transform.js';

let dir: string;
let files: FileObjectStore;
let datasets: DatasetStore;
let launcher: LocalLauncher;
let criteo: string;

const HASH: HashOptions = { columns: Array.from({ length: 26 }, (_, i) => `C${i + 1}`), bits: 12, seed: 7 };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cirrus-dparse-'));
  files = new FileObjectStore(join(dir, 'store'));
  datasets = new DatasetStore(files);
  launcher = new LocalLauncher({ timeoutS: 120, memoryMb: 512, concurrency: 2 });
  criteo = join(dir, 'criteo.tsv');
  await generateCriteoLike({ rows: 20_000, seed: 3, file: criteo, bits: 8 });
});

after(async () => {
  await launcher?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Every row of a dataset (train and test) as 'label|i:v,i:v,...' with pairs sorted, sorted. */
async function rowsOf(m: DatasetManifest): Promise<string[]> {
  const out: string[] = [];
  for (const ref of [...m.train.shards, ...m.test.shards]) {
    const s = await datasets.readShard(ref);
    assert.equal(s.kind, 'sparse');
    if (s.kind !== 'sparse') continue;
    for (let r = 0; r < s.rows; r++) {
      const pairs: Array<[number, number]> = [];
      for (let k = s.indptr[r]!; k < s.indptr[r + 1]!; k++) pairs.push([s.indices[k]!, s.values[k]!]);
      pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      out.push(`${s.labels[r]}|${pairs.map(([i, v]) => `${i}:${v}`).join(',')}`);
    }
  }
  return out.sort();
}

test('criteo-like, 4 chunks over 2 workers: same rows as the local path; manifest last; no raw chunk left', async () => {
  const writer = await datasets.createWriter('crit-local');
  const local = await preprocessLocal({ input: criteo, format: 'criteo', name: 'crit-local', writer, hash: HASH, seed: 5, rowsPerShard: 3000 });

  const result = await preprocessDistributed({ input: criteo, format: 'criteo', name: 'crit-dist', store: datasets, launcher, chunkLines: 5000, workers: 2, hash: HASH, seed: 5, rowsPerShard: 3000 });
  assert.equal(result.chunks, 4);
  assert.equal(result.workers, 2);
  const m = await datasets.manifest('crit-dist');
  assert.deepEqual(m, result.manifest);
  assert.equal(m.kind, 'sparse');
  assert.equal(m.task, 'binary');
  assert.equal(m.classes, 2);
  assert.equal(m.features, local.manifest.features);
  // 2^12 hash buckets plus the 13 numeric columns I1..I13.
  assert.equal(m.features, (1 << 12) + 13);
  assert.equal(m.trainRows + m.testRows, 20_000);
  assert.deepEqual(m.transforms.find((t) => t.type === 'hash'), local.manifest.transforms.find((t) => t.type === 'hash'));

  // Same multiset of rows as the local path (hashing in the workers equals hashing here).
  const [a, b] = [await rowsOf(local.manifest), await rowsOf(m)];
  assert.equal(b.length, 20_000);
  assert.deepEqual(b, a);

  // Exactly the manifest and its shards remain: no raw chunk, no stray shard.
  const keys = await files.list('datasets/crit-dist/');
  const listed = [...m.train.shards, ...m.test.shards].map((r) => r.key);
  assert.deepEqual(keys, [manifestKey('crit-dist'), ...listed].sort());
  assert.ok(keys.every((k) => !k.includes('/raw/')));
  // Shards of chunk k come before those of chunk k + 1 in the manifest.
  assert.deepEqual(m.train.shards.map((r) => r.key), [...m.train.shards.map((r) => r.key)].sort());

  // The manifest was written last: no shard is newer.
  const mtime = async (key: string) => (await stat(join(dir, 'store', ...key.split('/')))).mtimeMs;
  const manifestTime = await mtime(manifestKey('crit-dist'));
  for (const k of listed) assert.ok((await mtime(k)) <= manifestTime, `${k} is older than the manifest`);

  // Deterministic: a second run gives the same split, shard for shard.
  const before = await Promise.all(m.train.shards.map((ref) => datasets.readShard(ref)));
  const again = await preprocessDistributed({ input: criteo, format: 'criteo', name: 'crit-dist', store: datasets, launcher, chunkLines: 5000, workers: 2, hash: HASH, seed: 5, rowsPerShard: 3000, overwrite: true });
  assert.deepEqual(again.manifest.train.shards.map((r) => [r.rows, r.nnz]), m.train.shards.map((r) => [r.rows, r.nnz]));
  for (const [i, ref] of again.manifest.train.shards.entries()) assert.deepEqual(await datasets.readShard(ref), before[i]);
  // The replaced run is gone.
  assert.deepEqual(await files.list('datasets/crit-dist/'), [manifestKey('crit-dist'), ...again.manifest.train.shards.map((r) => r.key), ...again.manifest.test.shards.map((r) => r.key)].sort());
});

test('a bad line in chunk 3 fails the run naming the file line; nothing is left under the dataset', async () => {
  const lines = (await readFile(criteo, 'utf8')).split('\n');
  // File line 10017 = chunk index 2 (the third chunk), line 17 within it.
  const fields = lines[10016]!.split('\t');
  fields[1] = 'abc';
  lines[10016] = fields.join('\t');
  const bad = join(dir, 'bad.tsv');
  await writeFile(bad, lines.join('\n'));
  await assert.rejects(
    preprocessDistributed({ input: bad, format: 'criteo', name: 'crit-bad', store: datasets, launcher, chunkLines: 5000, workers: 2, hash: HASH }),
    (e: unknown) => {
      assert.ok(e instanceof WorkerFailedError, String(e));
      assert.equal(e.code, 'PREPROCESS_WORKER_FAILED');
      assert.equal(e.phase, 'dataset-parse');
      assert.equal(e.rank, 1);
      assert.equal(e.workerError?.code, 'INPUT_PARSE');
      assert.ok(e.message.includes(`${bad}:10017 (chunk 2, line 17)`), e.message);
      assert.match(e.message, /'abc'/);
      return true;
    },
  );
  assert.deepEqual(await files.list('datasets/crit-bad/'), []);
});

test('csv with a header and hashed columns: header travels to every worker; rows equal the local path', async () => {
  const rows = ['city,size,label'];
  for (let i = 0; i < 1000; i++) rows.push(`c${i % 37},${(i % 11) * 0.5},${i % 3 === 0 ? 1 : 0}`);
  const csv = join(dir, 'small.csv');
  await writeFile(csv, rows.join('\n') + '\n');
  const hash: HashOptions = { columns: ['city'], bits: 6 };
  const local = await preprocessLocal({ input: csv, format: 'csv', name: 'csv-local', writer: await datasets.createWriter('csv-local'), hash, seed: 1 });
  const r = await preprocessDistributed({ input: csv, format: 'csv', name: 'csv-dist', store: datasets, launcher, chunkLines: 300, chunksPerWorker: 2, hash, seed: 1 });
  assert.equal(r.chunks, 4);
  assert.equal(r.workers, 2);
  assert.equal(r.manifest.features, local.manifest.features);
  assert.equal(r.manifest.task, 'binary');
  assert.deepEqual(await rowsOf(r.manifest), await rowsOf(local.manifest));
  // A bad cell on file line 602: chunk 2 (data lines 601..900), line 1 of it.
  rows[601] = 'c1,xyz,0';
  await writeFile(csv, rows.join('\n') + '\n');
  await assert.rejects(
    preprocessDistributed({ input: csv, format: 'csv', name: 'csv-bad', store: datasets, launcher, chunkLines: 300, hash }),
    (e: unknown) => e instanceof WorkerFailedError && e.message.includes(`${csv}:602 (chunk 2, line 1)`) && e.rank === 2,
  );
  assert.deepEqual(await files.list('datasets/csv-bad/'), []);
});
