/**
 * Object stores: the same behaviour from memory, a directory, and S3 (a real s3rver).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import {
  FileObjectStore,
  MemoryObjectStore,
  ObjectStoreError,
  S3ObjectStore,
  openObjectStore,
  type ObjectStore,
  type ObjectStoreErrorCode,
} from '../channels/object-stores/index.js';
import { createS3Client } from '../paramserver/index.js';
import { s3SpecFor, startS3Server, type S3Server } from '../client/servers/index.js';
import { pattern, sameBytes } from './support/data.js';

const MiB = 1024 * 1024;

let server: S3Server;
let tmp: string;
const opened: ObjectStore[] = [];

function storeError(code: ObjectStoreErrorCode, ...includes: string[]) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ObjectStoreError, `expected an ObjectStoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const s of includes) assert.ok(err.message.includes(s), `message '${err.message}' should name '${s}'`);
    return true;
  };
}

async function putAll(store: ObjectStore, keys: string[], limit = 16): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < keys.length) {
      const k = keys[next++]!;
      await store.put(k, Buffer.from(k));
    }
  }));
}

before(async () => {
  server = await startS3Server();
  tmp = await mkdtemp(join(tmpdir(), 'cirrus-object-store-'));
});

after(async () => {
  try {
    for (const s of opened) await s.close();
    // Leave the bucket empty whatever the tests did.
    const all = await S3ObjectStore.open(s3SpecFor(server));
    try {
      await all.delete(await all.list(''));
      assert.deepEqual(await all.list(''), []);
    } finally {
      await all.close();
    }
  } finally {
    await server?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
});

type Factory = { name: string; open: () => Promise<ObjectStore> };

const factories: Factory[] = [
  { name: 'MemoryObjectStore', open: async () => new MemoryObjectStore() },
  { name: 'FileObjectStore', open: async () => new FileObjectStore(await mkdtemp(join(tmp, 'files-'))) },
  { name: 'S3ObjectStore', open: async () => S3ObjectStore.open(s3SpecFor(server, 'cirrus', `conf-${opened.length}/`)) },
];

for (const f of factories) {
  describe(`${f.name}: shared behaviour`, () => {
    let store: ObjectStore;
    before(async () => {
      store = await f.open();
      opened.push(store);
    });

    for (const size of [0, 1, 5 * MiB]) {
      it(`round-trips ${size} bytes exactly`, async () => {
        const key = `rt/${size}.bin`;
        const value = pattern(size, size % 251);
        await store.put(key, value);
        const got = await store.get(key);
        assert.ok(got !== undefined);
        assert.equal(got.byteLength, size);
        assert.ok(sameBytes(got, value));
        await store.delete([key]);
        assert.equal(await store.get(key), undefined);
      });
    }

    it('overwrites a key with the new bytes', async () => {
      await store.put('ow/a', Uint8Array.of(1, 2, 3, 4));
      await store.put('ow/a', Uint8Array.of(9));
      assert.deepEqual([...(await store.get('ow/a'))!], [9]);
      await store.delete(['ow/a']);
    });

    it('returns undefined for missing keys and ignores them on delete', async () => {
      assert.equal(await store.get('missing/key'), undefined);
      assert.equal(await store.get('missing'), undefined);
      await store.delete(['missing/key', 'missing/other']);
      await store.delete([]);
    });

    it('lists keys under a prefix, sorted, with / separators', async () => {
      const keys = ['ls/b/2', 'ls/a', 'ls/b/1', 'ls/ab/x', 'ls/c/d/e/f', 'lsx/other'];
      await putAll(store, keys);
      assert.deepEqual(await store.list('ls/'), ['ls/a', 'ls/ab/x', 'ls/b/1', 'ls/b/2', 'ls/c/d/e/f']);
      // A prefix may end mid-segment, as on S3.
      assert.deepEqual(await store.list('ls/a'), ['ls/a', 'ls/ab/x']);
      assert.deepEqual(await store.list('ls/b/'), ['ls/b/1', 'ls/b/2']);
      assert.deepEqual(await store.list('ls'), ['ls/a', 'ls/ab/x', 'ls/b/1', 'ls/b/2', 'ls/c/d/e/f', 'lsx/other']);
      assert.deepEqual(await store.list('nothing/'), []);
      await store.delete(keys);
      assert.deepEqual(await store.list('ls'), []);
    });

    it('rejects invalid keys and prefixes with OBJECT_STORE_KEY naming them', async () => {
      const cases: Array<[string, string]> = [
        ['', 'must not be empty'],
        ['/abs/key', 'relative'],
        ['a/../b', "'..' segments"],
        ['..', "'..' segments"],
        ['a/./b', "'.' segments"],
        ['a//b', 'empty segments'],
        ['dir/', "must not end with '/'"],
        ['a\\b', "'/' as the separator"],
        ['a\nb', 'control characters'],
        ['x'.repeat(1025), 'at most 1024 bytes'],
      ];
      for (const [key, why] of cases) {
        await assert.rejects(store.put(key, new Uint8Array(1)), storeError('OBJECT_STORE_KEY', why, store.url), `put '${key}'`);
        await assert.rejects(store.get(key), storeError('OBJECT_STORE_KEY', why), `get '${key}'`);
        await assert.rejects(store.delete(['ok', key]), storeError('OBJECT_STORE_KEY', why), `delete '${key}'`);
      }
      await assert.rejects(store.put('a/../b', new Uint8Array(1)), storeError('OBJECT_STORE_KEY', "key 'a/../b'"));
      await assert.rejects(store.list('../'), storeError('OBJECT_STORE_KEY', "prefix '../'"));
      await assert.rejects(store.list('/x'), storeError('OBJECT_STORE_KEY', "prefix '/x'"));
    });
  });
}

describe('MemoryObjectStore', () => {
  it('copies on put and on get', async () => {
    const store = new MemoryObjectStore();
    const value = Uint8Array.of(1, 2, 3);
    await store.put('k', value);
    value[0] = 9;
    const got = (await store.get('k'))!;
    assert.deepEqual([...got], [1, 2, 3]);
    got[1] = 9;
    assert.deepEqual([...(await store.get('k'))!], [1, 2, 3]);
    assert.equal(store.url, 'memory://');
  });
});

describe('FileObjectStore', () => {
  it('stores keys as files under its directory and names itself with a file URL', async () => {
    const dir = await mkdtemp(join(tmp, 'layout-'));
    const store = new FileObjectStore(dir);
    assert.equal(store.url, pathToFileURL(dir).href);
    await store.put('a/b/c.bin', Uint8Array.of(7, 8));
    assert.ok(existsSync(join(dir, 'a', 'b', 'c.bin')));
    // Atomic put: no temp file left behind.
    assert.deepEqual(await readdir(join(dir, 'a', 'b')), ['c.bin']);
    await store.delete(['a/b/c.bin']);
    // Directories left empty by delete are pruned; the store's own directory stays.
    assert.deepEqual(await readdir(dir), []);
    assert.ok(existsSync(dir));
  });

  it('ignores temp files of puts in progress and reserves their names', async () => {
    const dir = await mkdtemp(join(tmp, 'temp-'));
    const store = new FileObjectStore(dir);
    await store.put('d/real', Uint8Array.of(1));
    await writeFile(join(dir, 'd', '.real.0123456789ab.cirrus-tmp'), 'partial');
    assert.deepEqual(await store.list(''), ['d/real']);
    await assert.rejects(store.put('d/x.cirrus-tmp', new Uint8Array(1)), storeError('OBJECT_STORE_KEY', 'reserved for temp files'));
    await store.delete(['d/real']);
    await rm(join(dir, 'd'), { recursive: true });
  });

  it('reports a key that collides with a file as a request error naming it', async () => {
    const dir = await mkdtemp(join(tmp, 'collide-'));
    const store = new FileObjectStore(dir);
    await store.put('f', Uint8Array.of(1));
    await assert.rejects(store.put('f/g', Uint8Array.of(2)), storeError('OBJECT_STORE_REQUEST', "PUT 'f/g'", store.url));
    assert.equal(await store.get('f/g'), undefined);
    await store.delete(['f']);
  });
});

describe('S3ObjectStore on s3rver', () => {
  it('stores plain bytes (no envelope) under its prefix', async () => {
    const spec = s3SpecFor(server, 'cirrus', 'plain');
    const store = await S3ObjectStore.open(spec);
    const raw = createS3Client(spec);
    try {
      // 'plain' means the folder 'plain/'.
      assert.equal(store.url, `s3://cirrus/plain/?endpoint=${server.endpoint}`);
      await store.put('x/y', Uint8Array.of(5, 6, 7));
      const out = await raw.send(new GetObjectCommand({ Bucket: 'cirrus', Key: 'plain/x/y' }));
      assert.deepEqual([...(await out.Body!.transformToByteArray())], [5, 6, 7]);
      assert.deepEqual(await store.list(''), ['x/y']);
      await store.delete(['x/y']);
      assert.deepEqual(await store.list(''), []);
    } finally {
      raw.destroy();
      await store.close();
    }
  });

  it('follows continuation tokens and deletes in batches (small pages)', async () => {
    const store = await S3ObjectStore.open(s3SpecFor(server, 'cirrus', 'pages/'), { listPageSize: 100, deleteBatchSize: 100 });
    try {
      const keys = Array.from({ length: 250 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
      await putAll(store, keys);
      assert.deepEqual(await store.list('k/'), keys);
      await store.delete(keys);
      assert.deepEqual(await store.list('k/'), []);
    } finally {
      await store.close();
    }
  });

  it('lists and deletes more than 1000 keys with the default page and batch sizes', async () => {
    const store = await S3ObjectStore.open(s3SpecFor(server, 'cirrus', 'many/'));
    try {
      const keys = Array.from({ length: 1050 }, (_, i) => `k/${String(i).padStart(5, '0')}`);
      await putAll(store, keys, 32);
      assert.deepEqual(await store.list(''), keys);
      await store.delete(keys);
      assert.deepEqual(await store.list(''), []);
    } finally {
      await store.close();
    }
  });

  it('fails to open a missing bucket or a dead endpoint, naming it', async () => {
    await assert.rejects(S3ObjectStore.open(s3SpecFor(server, 'no-such-bucket')), storeError('OBJECT_STORE_UNREACHABLE', "bucket 'no-such-bucket' does not exist", 's3://no-such-bucket/'));
    const dead = { ...s3SpecFor({ endpoint: 'http://127.0.0.1:9' }), timeoutMs: 2_000 };
    await assert.rejects(S3ObjectStore.open(dead), storeError('OBJECT_STORE_UNREACHABLE', 'http://127.0.0.1:9'));
  });

  it('refuses requests after close', async () => {
    const store = await S3ObjectStore.open(s3SpecFor(server));
    await store.close();
    await assert.rejects(store.get('a'), storeError('OBJECT_STORE_CLOSED', 'is closed'));
  });
});

describe('openObjectStore', () => {
  it('opens memory://, file:// URLs and plain paths', async () => {
    const mem = await openObjectStore('memory://');
    assert.ok(mem instanceof MemoryObjectStore);
    const dir = await mkdtemp(join(tmp, 'open-'));
    const file = await openObjectStore(pathToFileURL(dir).href);
    assert.ok(file instanceof FileObjectStore);
    assert.equal(file.dir, dir);
    const plain = await openObjectStore(join(dir, 'sub'));
    assert.ok(plain instanceof FileObjectStore);
    assert.equal(plain.url, pathToFileURL(join(dir, 'sub')).href);
    const relative = await openObjectStore('rel/dir');
    assert.ok(relative instanceof FileObjectStore);
    assert.equal(relative.dir, resolve('rel/dir'));
    assert.equal(existsSync(resolve('rel')), false, 'opening does not create directories');
  });

  it('opens s3:// URLs (credentials from the standard AWS chain) and spec objects', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
    try {
      const url = `s3://cirrus/viaurl/?endpoint=${server.endpoint}`;
      const store = await openObjectStore(url);
      try {
        assert.ok(store instanceof S3ObjectStore);
        assert.equal(store.url, url);
        await store.put('k', Uint8Array.of(1));
        assert.deepEqual(await store.list(''), ['k']);
        await store.delete(['k']);
      } finally {
        await store.close();
      }
    } finally {
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      else process.env.AWS_ACCESS_KEY_ID = saved.id;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      else process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
    const fromSpec = await openObjectStore({ kind: 's3', bucket: 'cirrus', endpoint: server.endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    assert.ok(fromSpec instanceof S3ObjectStore);
    await fromSpec.close();
  });

  it('rejects unknown schemes and bad targets, naming them and what is expected', async () => {
    await assert.rejects(openObjectStore('ftp://host/dir'), storeError('OBJECT_STORE_TARGET', "'ftp://host/dir'", "unknown scheme 'ftp://'", 's3://bucket', 'file:///', 'memory://'));
    await assert.rejects(openObjectStore('memory://x'), storeError('OBJECT_STORE_TARGET', "'memory://x'", "expected 'memory://'"));
    await assert.rejects(openObjectStore('file://relative/dir'), storeError('OBJECT_STORE_TARGET', "'file://relative/dir'", 'absolute path'));
    await assert.rejects(openObjectStore('s3://Bad_Bucket/x'), storeError('OBJECT_STORE_TARGET', "'s3://Bad_Bucket/x'", 'bucket'));
    await assert.rejects(openObjectStore(''), storeError('OBJECT_STORE_TARGET', "object store ''", 's3://bucket'));
    await assert.rejects(openObjectStore({ kind: 'memcached' } as never), storeError('OBJECT_STORE_TARGET', 'kind "memcached"', "{kind:'s3'"));
  });
});
