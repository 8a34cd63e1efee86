/**
 * Snapshot stores against a real directory and a real in-process S3 server (s3rver). Covers bit-exact
 * round trips, incomplete and corrupted snapshots being passed over, and pruning.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3RVER_CREDENTIALS, startS3Server, type S3Server } from '../client/servers/index.js';
import { ParamModel, PsModelError } from '../paramserver/model.js';
import { newSnapshotId, openSnapshotStore, type SnapshotStore } from '../paramserver/snapshot.js';

function trainedModels(seed: number): Map<string, ParamModel> {
  const adam = new ParamModel({ size: 1000, optimizer: { type: 'adam', learningRate: 0.01, l2: 0.001 }, sync: { mode: 'ssp', workers: 2, staleness: 1 } });
  const sgd = new ParamModel({ size: 7, optimizer: { type: 'momentum', learningRate: 0.1 }, sync: { mode: 'async' } }, Float32Array.of(1, 2, 3, 4, 5, 6, 7));
  for (let s = 0; s < 3; s++) {
    adam.applySparse(Uint32Array.of(seed, 999 - s, 500), Float32Array.of(0.5 + s, -1, seed));
    sgd.applyDense(Float32Array.from({ length: 7 }, (_, i) => (i - 3) * (s + seed)));
  }
  // Names that are not file-name safe: parts are numbered, names live in the manifest.
  return new Map([
    ['job/1/weights: adam ✓', adam],
    ['small', sgd],
  ]);
}

function assertSameModels(got: Map<string, ParamModel>, want: Map<string, ParamModel>): void {
  assert.deepEqual([...got.keys()], [...want.keys()]);
  for (const [name, model] of want) assert.deepEqual(got.get(name)!.serialize(), model.serialize(), `model '${name}'`);
}

/** Contract tests shared by both backends. `corrupt` overwrites one stored part of a snapshot. */
function contract(open: () => Promise<SnapshotStore>, corrupt: (id: string, part: string, bytes: Uint8Array) => Promise<void>, ids: () => Promise<string[]>) {
  it('loadNewest is undefined while empty', async () => {
    const store = await open();
    try {
      assert.equal(await store.loadNewest(), undefined);
    } finally {
      await store.close();
    }
  });

  it('round trips every model bit-exact, optimizer state and update count included', async () => {
    const store = await open();
    try {
      const models = trainedModels(3);
      const id = await store.save(models);
      const loaded = await store.loadNewest();
      assert.ok(loaded);
      assert.equal(loaded.id, id);
      assert.deepEqual(loaded.skipped, []);
      assertSameModels(loaded.models, models);
      assert.equal(loaded.models.get('small')!.updates, 3);
    } finally {
      await store.close();
    }
  });

  it('ignores a snapshot without a manifest (half-written)', async () => {
    const store = await open();
    try {
      const good = trainedModels(4);
      const goodId = await store.save(good);
      const halfId = newSnapshotId();
      await corrupt(halfId, 'part-00000.bin', trainedModels(5).get('small')!.serialize());
      const loaded = await store.loadNewest();
      assert.equal(loaded!.id, goodId);
      assert.deepEqual(loaded!.skipped, [{ id: halfId, reason: `snapshot ${halfId}: no manifest (incomplete)` }]);
      assertSameModels(loaded!.models, good);
    } finally {
      await store.close();
    }
  });

  it('falls back to the previous snapshot when a part is truncated or corrupted', async () => {
    const store = await open();
    try {
      const older = trainedModels(6);
      const olderId = await store.save(older);
      const newerId = await store.save(trainedModels(7));
      const part = (await store.loadNewest())!;
      assert.equal(part.id, newerId);
      const bytes = trainedModels(7).get('job/1/weights: adam ✓')!.serialize();
      // Same length, one bit flipped: only the checksum catches it.
      const flipped = bytes.slice();
      flipped[bytes.byteLength - 1]! ^= 1;
      await corrupt(newerId, 'part-00000.bin', flipped);
      let loaded = await store.loadNewest();
      assert.equal(loaded!.id, olderId);
      assert.deepEqual(loaded!.skipped, [{ id: newerId, reason: `snapshot ${newerId}: part part-00000.bin (model 'job/1/weights: adam ✓') does not match its sha256` }]);
      assertSameModels(loaded!.models, older);
      // What a reader sees mid-PUT on a non-atomic store: a prefix of the bytes.
      await corrupt(newerId, 'part-00000.bin', bytes.subarray(0, 100));
      loaded = await store.loadNewest();
      assert.equal(loaded!.id, olderId);
      assert.equal(loaded!.skipped[0]!.reason, `snapshot ${newerId}: part part-00000.bin (model 'job/1/weights: adam ✓') has 100 bytes, the manifest says ${bytes.byteLength}`);
    } finally {
      await store.close();
    }
  });

  it('prune keeps the newest N complete snapshots', async () => {
    const store = await open();
    try {
      const saved: string[] = [];
      for (let s = 0; s < 4; s++) saved.push(await store.save(trainedModels(s)));
      // An incomplete snapshot newer than all: possibly in flight, so it stays.
      const inFlight = newSnapshotId();
      await corrupt(inFlight, 'part-00000.bin', Uint8Array.of(1, 2, 3));
      const before = await ids();
      await store.prune(2);
      const after = await ids();
      assert.deepEqual(after, before.filter((id) => id >= saved[2]!));
      assert.ok(after.includes(inFlight) && after.includes(saved[2]!) && after.includes(saved[3]!));
      assert.ok(!after.includes(saved[1]!) && !after.includes(saved[0]!));
      assert.equal((await store.loadNewest())!.id, saved[3]);
      await assert.rejects(store.prune(0), { code: 'PS_ARGUMENT', message: 'prune: keep must be an integer >= 1, got 0' });
    } finally {
      await store.close();
    }
  });
}

describe('snapshot ids', () => {
  it('sort by time and strictly increase within a process', () => {
    const a = newSnapshotId(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
    assert.match(a, /^20240102T030405678Z-[0-9a-f]{6}$/);
    const b = newSnapshotId(Date.UTC(2024, 0, 2, 3, 4, 5, 678)); // same ms, and an earlier clock next
    const c = newSnapshotId(Date.UTC(2020, 0, 1));
    assert.ok(a < b && b < c, `${a} < ${b} < ${c}`);
    assert.ok(b.startsWith('20240102T030405679Z-') && c.startsWith('20240102T030405680Z-'));
  });
});

describe('file snapshot store', () => {
  let root: string;
  let dir: string;
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'cirrus-ps-snap-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const fresh = () => {
    dir = join(root, `s${n++}`);
    return openSnapshotStore(pathToFileURL(dir).href);
  };
  contract(
    fresh,
    async (id, part, bytes) => {
      await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, id), { recursive: true }));
      await writeFile(join(dir, id, part), bytes);
    },
    async () => (await readdir(dir)).sort(),
  );

  it('leaves no temp files behind', async () => {
    const store = await fresh();
    const id = await store.save(trainedModels(1));
    assert.deepEqual((await readdir(join(dir, id))).sort(), ['manifest.json', 'part-00000.bin', 'part-00001.bin']);
    await store.close();
  });

  it('rejects bad URLs naming the problem', async () => {
    await assert.rejects(openSnapshotStore('not a url'), (err: unknown) => err instanceof PsModelError && err.code === 'PS_ARGUMENT' && err.message === "snapshot URL 'not a url' is invalid: expected file:///abs/dir or s3://bucket/prefix");
    await assert.rejects(openSnapshotStore('ftp://x/y'), { code: 'PS_ARGUMENT', message: "snapshot URL 'ftp://x/y' has unsupported scheme 'ftp:': expected file: or s3:" });
    await assert.rejects(openSnapshotStore('s3://b/p?secretAccessKey=hush&bogus=1'), {
      code: 'PS_ARGUMENT',
      message: "snapshot URL 's3://b/p?secretAccessKey=***&bogus=1': unknown query field 'bogus'; expected endpoint, region, accessKeyId, secretAccessKey, sessionToken, forcePathStyle",
    });
    await assert.rejects(openSnapshotStore('s3://b/p?accessKeyId=a'), { code: 'PS_ARGUMENT', message: "snapshot URL 's3://b/p?accessKeyId=a': give both accessKeyId and secretAccessKey, or neither" });
  });
});

describe('s3 snapshot store (s3rver)', () => {
  let server: S3Server;
  let raw: S3Client;
  let prefix = '';
  let n = 0;
  before(async () => {
    server = await startS3Server({ buckets: ['snaps'] });
    raw = new S3Client({
      region: 'us-east-1',
      endpoint: server.endpoint,
      forcePathStyle: true,
      credentials: { ...S3RVER_CREDENTIALS },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  });
  after(async () => {
    raw.destroy();
    await server.stop();
  });
  const url = () =>
    `s3://snaps/${prefix}?endpoint=${encodeURIComponent(server.endpoint)}&accessKeyId=${S3RVER_CREDENTIALS.accessKeyId}&secretAccessKey=${S3RVER_CREDENTIALS.secretAccessKey}&region=us-east-1`;
  const fresh = () => {
    prefix = `ps/run${n++}`;
    return openSnapshotStore(url());
  };
  const listIds = async (): Promise<string[]> => {
    const out = await raw.send(new ListObjectsV2Command({ Bucket: 'snaps', Prefix: `${prefix}/` }));
    return [...new Set((out.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1).split('/')[0]!))].sort();
  };
  contract(
    fresh,
    async (id, part, bytes) => {
      await raw.send(new PutObjectCommand({ Bucket: 'snaps', Key: `${prefix}/${id}/${part}`, Body: bytes, ContentLength: bytes.byteLength }));
    },
    listIds,
  );

  it('stores under the prefix, manifest included, and hides the secret in store.url', async () => {
    const store = await fresh();
    try {
      assert.equal(store.url, url().replace('secretAccessKey=S3RVER', 'secretAccessKey=***'));
      const id = await store.save(trainedModels(2));
      const out = await raw.send(new GetObjectCommand({ Bucket: 'snaps', Key: `${prefix}/${id}/manifest.json` }));
      const manifest = JSON.parse(await out.Body!.transformToString()) as { id: string; models: { name: string; part: string; bytes: number }[] };
      assert.equal(manifest.id, id);
      assert.deepEqual(
        manifest.models.map((m) => [m.name, m.part]),
        [
          ['job/1/weights: adam ✓', 'part-00000.bin'],
          ['small', 'part-00001.bin'],
        ],
      );
    } finally {
      await store.close();
    }
  });
});
