import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test, type TestContext, type TestOptions } from 'node:test';
import memjs from 'memjs';
import { ChannelError, WaitTimeoutError } from '../channels/errors.js';
import { MANIFEST_BYTES, MemcachedChannel, chunkKeys, decodeManifest, openBulkConnection } from '../channels/adapters/memcached/index.js';
import { type MemcachedServer, startMemcached } from '../client/servers/index.js';
import { type MemcachedSpec, type MemcachedSpecInput, parseChannelUrl } from '../channels/spec.js';
import { memcachedMissing } from './support/servers.js';
import { skipOrFail } from './support/skip-or-fail.js';

type TestBody = (t: TestContext) => Promise<void>;

const MiB = 1024 * 1024;
const missing = memcachedMissing();

/** A test that needs the memcached binary: skipOrFail decides when it is missing. */
function mcTest(name: string, body: TestBody, options: TestOptions = {}): void {
  test(name, options, async (t) => {
    if (skipOrFail(t, missing)) return;
    await body(t);
  });
}

test('startMemcached names the missing binary and how to install it', async () => {
  await assert.rejects(startMemcached({ binary: '/nonexistent/bin/memcached' }), (e: unknown) => {
    assert.ok(e instanceof ChannelError);
    assert.equal(e.code, 'CHANNEL_UNREACHABLE');
    assert.match(e.message, /memcached was not found/);
    assert.match(e.message, /apt-get install memcached/);
    return true;
  });
});

/** A port with nothing listening on it. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function same(actual: Uint8Array | undefined, expected: Uint8Array): boolean {
  return actual !== undefined && actual.byteLength === expected.byteLength && Buffer.compare(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength), expected) === 0;
}

describe('memcached channel', () => {
  let server: MemcachedServer;
  const opened: MemcachedChannel[] = [];
  let raw: memjs.Client;

  const spec = (over: Partial<MemcachedSpec> = {}): MemcachedSpecInput => ({ kind: 'memcached', server: server.address, timeoutMs: 5_000, chunkBytes: 512 * 1024, connections: 2, ...over });
  const open = async (over: Partial<MemcachedSpec> = {}): Promise<MemcachedChannel> => {
    const ch = await MemcachedChannel.open(spec(over));
    opened.push(ch);
    return ch;
  };
  const rawGet = async (key: string): Promise<Buffer | null> => (await raw.get(key)).value;
  /** Chunk keys of the value currently stored at `key`, read with a raw client. */
  const storedChunkKeys = async (key: string): Promise<string[]> => {
    const item = await rawGet(key);
    assert.ok(item, `${key} should exist`);
    const m = decodeManifest(item);
    assert.ok(m, `${key} should hold a manifest`);
    return chunkKeys(key, m);
  };

  before(async () => {
    if (missing) return;
    server = await startMemcached();
    raw = memjs.Client.create(server.address, { retries: 0, logger: { log: () => undefined } });
  });

  after(async () => {
    for (const ch of opened) await ch.close();
    raw?.close();
    await server?.stop();
  });

  mcTest('inline values of 0, 1 and 1000 bytes round trip and are counted exactly', async () => {
    const ch = await open();
    assert.equal(ch.kind, 'memcached');
    assert.equal(ch.endpoint, `memcached://${server.address}`);
    for (const n of [0, 1, 1000]) {
      const v = randomBytes(n);
      ch.resetStats();
      await ch.put(`inline/${n}`, v);
      const got = await ch.get(`inline/${n}`);
      assert.ok(same(got, v), `value of ${n} bytes`);
      assert.deepEqual(ch.stats(), { put: { requests: 1, bytes: n }, get: { requests: 1, bytes: n }, list: { requests: 0, bytes: 0 }, delete: { requests: 0, bytes: 0 } });
      const item = await rawGet(`inline/${n}`);
      assert.equal(item?.byteLength, n + 1);
      assert.equal(item?.[0], 0x00);
    }
  });

  mcTest('a get that misses is one request of 0 bytes', async () => {
    const ch = await open();
    ch.resetStats();
    assert.equal(await ch.get('missing/one'), undefined);
    assert.deepEqual(ch.stats().get, { requests: 1, bytes: 0 });
  });

  test('every item expires (ttlS), chunks included; list() finds user keys by crawling, not chunks', async () => {
    const ch = await open({ chunkBytes: MiB, ttlS: 600 });
    await ch.put('ttl/small', Uint8Array.of(1));
    await ch.put('ttl/large', randomBytes(2.5 * MiB));
    assert.deepEqual(await ch.list('ttl/'), ['ttl/large', 'ttl/small']);
    const dump = await new Promise<string>((resolve, reject) => {
      const sock = net.connect({ host: server.host, port: server.port });
      let text = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        text += d;
        if (text.endsWith('END\r\n')) {
          sock.destroy();
          resolve(text);
        }
      });
      sock.on('error', reject);
      sock.write('lru_crawler metadump hash\r\n');
    });
    const items = dump.split(/\r?\n/).filter((l) => l.startsWith('key=ttl%2F') || l.startsWith('key=ttl/'));
    assert.equal(items.length, 2 + 3, 'two user keys and three chunks');
    const now = Date.now() / 1000;
    for (const line of items) {
      const exp = Number(/ exp=(-?\d+)/.exec(line)![1]);
      assert.ok(exp > now + 590 && exp <= now + 601, `${line}: expiry ${exp - now} s from now`);
    }
    await ch.delete(['ttl/small', 'ttl/large']);
    assert.deepEqual(await ch.list('ttl/'), []);
  });

  mcTest('a 3.5 MiB value is chunked at 1 MiB: 4 chunk puts + 1 manifest put, byte-exact', async () => {
    const ch = await open({ chunkBytes: MiB });
    const v = randomBytes(3.5 * MiB);
    ch.resetStats();
    await ch.put('chunked/3.5', v);
    assert.deepEqual(ch.stats().put, { requests: 5, bytes: v.byteLength + MANIFEST_BYTES });
    const keys = await storedChunkKeys('chunked/3.5');
    assert.equal(keys.length, 4);
    const sizes = await Promise.all(keys.map(async (k) => (await rawGet(k))?.byteLength));
    assert.deepEqual(sizes, [MiB, MiB, MiB, MiB / 2]);

    ch.resetStats();
    const got = await ch.get('chunked/3.5');
    assert.ok(same(got, v));
    // Assembled into a fresh buffer of exactly the value's size.
    assert.equal(got!.byteOffset, 0);
    assert.equal(got!.buffer.byteLength, v.byteLength);
    assert.deepEqual(ch.stats().get, { requests: 5, bytes: v.byteLength + MANIFEST_BYTES });
  });

  mcTest('a 16 MiB value round trips', async () => {
    const ch = await open();
    const v = randomBytes(16 * MiB);
    await ch.put('chunked/16', v);
    assert.ok(same(await ch.get('chunked/16'), v));
    // Another client (nothing cached) reads it too.
    const other = await open({ connections: 1 });
    assert.ok(same(await other.get('chunked/16'), v));
  });

  mcTest('a chunked value at a 250-byte key uses chunk keys within 250 bytes', async () => {
    const ch = await open({ chunkBytes: 64 * 1024 });
    const key = 'k/' + 'x'.repeat(248);
    assert.equal(Buffer.byteLength(key), 250);
    const v = randomBytes(200 * 1024);
    await ch.put(key, v);
    const keys = await storedChunkKeys(key);
    assert.equal(keys.length, 4);
    for (const k of keys) assert.ok(Buffer.byteLength(k) <= 250, k);
    assert.ok(same(await ch.get(key), v));
    await ch.delete([key]);
    for (const k of keys) assert.equal(await rawGet(k), null);
  });

  mcTest('overwriting a chunked value removes its old chunks', async () => {
    const ch = await open({ chunkBytes: 64 * 1024 });
    await ch.put('over/a', randomBytes(300 * 1024));
    const oldKeys = await storedChunkKeys('over/a');
    assert.equal(oldKeys.length, 5);
    for (const k of oldKeys) assert.notEqual(await rawGet(k), null);

    // chunked -> chunked: old chunks gone, new ones present
    const mid = randomBytes(130 * 1024);
    await ch.put('over/a', mid);
    const midKeys = await storedChunkKeys('over/a');
    assert.equal(midKeys.length, 3);
    for (const k of oldKeys) assert.equal(await rawGet(k), null, `${k} should be deleted`);
    for (const k of midKeys) assert.notEqual(await rawGet(k), null);
    assert.ok(same(await ch.get('over/a'), mid));

    // chunked -> inline
    const small = randomBytes(10);
    await ch.put('over/a', small);
    for (const k of midKeys) assert.equal(await rawGet(k), null, `${k} should be deleted`);
    assert.ok(same(await ch.get('over/a'), small));
  });

  mcTest('a client that read a chunked value cleans up its chunks when it overwrites it', async () => {
    const writer = await open({ chunkBytes: 64 * 1024 });
    const reader = await open({ chunkBytes: 64 * 1024 });
    await writer.put('over/b', randomBytes(200 * 1024));
    const keys = await storedChunkKeys('over/b');
    assert.ok(await reader.get('over/b'));
    await reader.put('over/b', new Uint8Array([1, 2, 3]));
    for (const k of keys) assert.equal(await rawGet(k), null);
  });

  mcTest('delete removes the manifest and its chunks, also from a client that never saw the key', async () => {
    const ch = await open({ chunkBytes: 64 * 1024 });
    await ch.put('del/a', randomBytes(150 * 1024));
    await ch.put('del/b', randomBytes(150 * 1024));
    await ch.put('del/c', randomBytes(100));
    const aKeys = await storedChunkKeys('del/a');
    const bKeys = await storedChunkKeys('del/b');

    ch.resetStats();
    await ch.delete(['del/a', 'del/never-written']);
    // del/a known: 1 manifest delete + 3 chunk deletes, no read; the unknown key costs a get (miss) and a delete.
    assert.deepEqual(ch.stats().delete, { requests: 1 + 3 + 1, bytes: 0 });
    assert.deepEqual(ch.stats().get, { requests: 1, bytes: 0 });
    assert.equal(await rawGet('del/a'), null);
    for (const k of aKeys) assert.equal(await rawGet(k), null);

    const fresh = await open({ chunkBytes: 64 * 1024 });
    await fresh.delete(['del/b', 'del/c']);
    assert.equal(await rawGet('del/b'), null);
    assert.equal(await rawGet('del/c'), null);
    for (const k of bKeys) assert.equal(await rawGet(k), null);
    assert.equal(await ch.get('del/b'), undefined);
  });

  mcTest('a reader polling during an 8 MiB write never sees a partial value', async () => {
    const writer = await open();
    const reader = await open();
    for (let round = 0; round < 4; round++) {
      const key = `race/new/${round}`;
      const v = randomBytes(8 * MiB + round);
      const put = writer.put(key, v);
      let got: Uint8Array | undefined;
      while ((got = await reader.get(key)) === undefined);
      assert.equal(got.byteLength, v.byteLength);
      assert.ok(same(got, v));
      await put;
    }

    // Overwrites: every read is exactly the old or the new value (a reader whose chunks were
    // replaced under it re-reads the manifest).
    const key = 'race/over';
    let current: Buffer = randomBytes(8 * MiB);
    await writer.put(key, current);
    for (let round = 0; round < 4; round++) {
      const next = randomBytes(8 * MiB - 1000 * (round + 1));
      let done = false;
      const put = writer.put(key, next).then(() => {
        done = true;
      });
      let reads = 0;
      // Several readers at once, so some of them hold the old manifest when its chunks go.
      await Promise.all(
        [0, 1, 2].map(async () => {
          while (!done) {
            const got = await reader.get(key);
            reads++;
            assert.ok(got !== undefined, 'an overwritten key never reads as missing');
            assert.ok(same(got, current) || same(got, next), `a read in round ${round} has ${got.byteLength} bytes and matches neither value`);
          }
        }),
      );
      await put;
      assert.ok(reads > 0);
      assert.ok(same(await reader.get(key), next));
      current = next;
    }
  });

  mcTest('waitMany times out naming exactly the missing keys, and resolves once they are written', async () => {
    const waiter = await open();
    const writer = await open();
    await writer.put('wait/b', new Uint8Array([2]));
    const keys = ['wait/a', 'wait/b', 'wait/c'];
    await assert.rejects(waiter.waitMany(keys, Date.now() + 200), (e: unknown) => {
      assert.ok(e instanceof WaitTimeoutError);
      assert.equal(e.code, 'CHANNEL_TIMEOUT');
      assert.deepEqual(e.missingKeys, ['wait/a', 'wait/c']);
      return true;
    });

    const arrived: number[] = [];
    const timer = setTimeout(() => {
      void writer.put('wait/a', new Uint8Array([1]));
      void writer.put('wait/c', randomBytes(600 * 1024)); // chunked
    }, 50);
    const values = await waiter.waitMany(keys, Date.now() + 10_000, (i) => arrived.push(i));
    clearTimeout(timer);
    assert.deepEqual([...values[0]!], [1]);
    assert.deepEqual([...values[1]!], [2]);
    assert.equal(values[2]!.byteLength, 600 * 1024);
    assert.ok(same(values[2], (await writer.get('wait/c'))!));
    assert.deepEqual(arrived.sort(), [0, 1, 2]);
    assert.deepEqual([...(await waiter.wait('wait/a', Date.now() + 1_000))], [1]);
  });

  mcTest('open() on a port with nothing listening fails with CHANNEL_UNREACHABLE naming the endpoint', async () => {
    const port = await closedPort();
    await assert.rejects(MemcachedChannel.open({ kind: 'memcached', server: `127.0.0.1:${port}`, timeoutMs: 1_000, chunkBytes: MiB, connections: 2 }), (e: unknown) => {
      assert.ok(e instanceof ChannelError);
      assert.equal(e.code, 'CHANNEL_UNREACHABLE');
      assert.match(e.message, new RegExp(`memcached at 127\\.0\\.0\\.1:${port} is unreachable`));
      return true;
    });
  }, { timeout: 10_000 });

  mcTest('open() on a server that never answers gives up after timeoutMs', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.on('data', () => undefined);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      await assert.rejects(MemcachedChannel.open({ kind: 'memcached', server: `127.0.0.1:${port}`, timeoutMs: 300, chunkBytes: MiB, connections: 1 }), (e: unknown) => {
        assert.ok(e instanceof ChannelError);
        assert.equal(e.code, 'CHANNEL_UNREACHABLE');
        assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port} is unreachable: no answer within 300 ms`));
        return true;
      });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  }, { timeout: 10_000 });

  mcTest('a bulk request to a server that never answers fails after the timeout, naming the key', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.on('data', () => undefined);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const conn = openBulkConnection(`127.0.0.1:${(silent.address() as net.AddressInfo).port}`, 200);
    try {
      await assert.rejects(conn.getInto('bulk/k', new Uint8Array(4)), (e: unknown) => {
        assert.ok(e instanceof ChannelError);
        assert.equal(e.code, 'CHANNEL_REQUEST');
        assert.match(e.message, /no response to get of 'bulk\/k' within 200 ms/);
        return true;
      });
    } finally {
      conn.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  }, { timeout: 10_000 });

  mcTest('items not written by the channel and chunks lost under a manifest are reported as corrupt', async () => {
    const ch = await open({ chunkBytes: 64 * 1024 });
    await raw.set('corrupt/foreign', Buffer.from('hello'), {});
    await assert.rejects(ch.get('corrupt/foreign'), { code: 'CHANNEL_CORRUPT' });

    await ch.put('corrupt/evicted', randomBytes(100 * 1024));
    const keys = await storedChunkKeys('corrupt/evicted');
    await raw.delete(keys[1]!);
    await assert.rejects(ch.get('corrupt/evicted'), { code: 'CHANNEL_CORRUPT' });
  });

  mcTest('waitManyInto reads chunked values into lent memory, whole or in two pieces, byte-exact', async () => {
    const ch = await open({ chunkBytes: 64 * 1024 });
    const a = randomBytes(200 * 1024 + 3);
    const b = randomBytes(150 * 1024);
    const small = randomBytes(10);
    await Promise.all([ch.put('into/a', a), ch.put('into/b', b), ch.put('into/small', small), ch.put('into/c', a)]);

    const whole = new Uint8Array(a.byteLength);
    // Split b at 70 KiB, past the first chunk boundary: one chunk straddles the two pieces.
    const head = new Uint8Array(70 * 1024);
    const body = new Uint8Array(b.byteLength - head.byteLength);
    const asked: number[] = [];
    const got = await ch.waitManyInto(['into/a', 'into/b', 'into/small', 'into/c'], Date.now() + 5_000, (i, n) => {
      asked.push(i);
      return i === 0 ? whole : i === 1 ? { head, body } : i === 3 ? new Uint8Array(n + 1) : undefined;
    });
    assert.equal(got[0], whole);
    assert.ok(same(whole, a));
    assert.equal(got[1], head, 'a value read in two pieces is reported as its head');
    assert.ok(same(Buffer.concat([head, body]), b));
    assert.ok(same(got[2], small), 'inline values need no lent memory');
    // Room of the wrong size is not used: the value comes back in a fresh buffer.
    assert.ok(same(got[3], a));
    assert.notEqual(got[3]!.buffer, whole.buffer);
    assert.deepEqual(asked.sort(), [0, 1, 3]);
    await assert.rejects(ch.waitManyInto(['into/a', 'into/a'], Date.now() + 1_000, () => undefined), { code: 'KEY_INVALID' });
  });

  mcTest('values from 4 KiB up to chunkBytes - 1 are one tagged item: one put, one get, read into lent memory', async () => {
    const ch = await open({ chunkBytes: 64 * 1024 });
    for (const n of [4096, 64 * 1024 - 1]) {
      const v = randomBytes(n);
      ch.resetStats();
      await ch.put(`big-inline/${n}`, v);
      assert.deepEqual(ch.stats().put, { requests: 1, bytes: n });
      const item = await rawGet(`big-inline/${n}`);
      assert.equal(item?.byteLength, n + 1);
      assert.equal(item?.[0], 0x00);
      assert.ok(same(item?.subarray(1), v));
      ch.resetStats();
      assert.ok(same(await ch.get(`big-inline/${n}`), v));
      assert.deepEqual(ch.stats().get, { requests: 1, bytes: n });
      const whole = new Uint8Array(n);
      const head = new Uint8Array(24);
      const body = new Uint8Array(n - 24);
      const [a] = await ch.waitManyInto([`big-inline/${n}`], Date.now() + 5_000, () => whole);
      assert.equal(a, whole);
      assert.ok(same(whole, v));
      const [b] = await ch.waitManyInto([`big-inline/${n}`], Date.now() + 5_000, () => ({ head, body }));
      assert.equal(b, head);
      assert.ok(same(Buffer.concat([head, body]), v));
    }
    // 64 KiB itself no longer fits one item with its tag: a manifest and one chunk.
    await ch.put('big-inline/chunked', randomBytes(64 * 1024));
    assert.equal((await storedChunkKeys('big-inline/chunked')).length, 1);
  });

  mcTest('putParts stores head ++ body, inline or chunked with the head leading chunk 0, byte-exact and counted', async () => {
    const ch = await open({ chunkBytes: 64 * 1024 });
    const head = randomBytes(24);
    for (const [name, n, requests] of [['small', 10, 1], ['inline', 40_000, 1], ['chunked', 200 * 1024, 5]] as const) {
      const body = randomBytes(n);
      ch.resetStats();
      await ch.putParts(`parts/${name}`, head, body);
      assert.deepEqual(ch.stats().put, { requests, bytes: 24 + n + (requests > 1 ? MANIFEST_BYTES : 0) }, name);
      assert.ok(same(await ch.get(`parts/${name}`), Buffer.concat([head, body])), name);
    }
    const keys = await storedChunkKeys('parts/chunked');
    const sizes = await Promise.all(keys.map(async (k) => (await rawGet(k))?.byteLength));
    assert.deepEqual(sizes, [65536, 65536, 65536, 24 + 200 * 1024 - 3 * 65536]);
    await assert.rejects(ch.putParts('parts/long-head', new Uint8Array(64 * 1024), randomBytes(100_000)), { code: 'CHANNEL_REQUEST', message: `memcached://${server.address}: a value's head part (65536 bytes) must be shorter than chunkBytes (65536)` });
  });

  mcTest('a large item with a foreign tag is reported as corrupt, naming its size and tag', async () => {
    const ch = await open();
    await raw.set('corrupt/foreign-big', Buffer.concat([Buffer.from([7]), randomBytes(5000)]), {});
    await assert.rejects(ch.get('corrupt/foreign-big'), {
      code: 'CHANNEL_CORRUPT',
      message: `memcached://${server.address}: item at 'corrupt/foreign-big' (5001 bytes, tag 7) was not written by a Cirrus memcached channel`,
    });
  });

  mcTest('a bulk connection reads pipelined large values, small values and misses byte-exact, in place where it can', async () => {
    const conn = openBulkConnection(server.address, 5_000);
    try {
      const sizes = [0, 10, 20_000, 300_000, 1_000_000, 16 * 1024, 16 * 1024 + 1];
      const values = sizes.map((n) => randomBytes(n));
      await Promise.all(values.map((v, i) => conn.set(`bulk-read/${i}`, v)));
      // Every value read twice, a miss between each, all requests in flight at once; odd reads
      // split the value over three pieces.
      const reads = values.flatMap((v, i) => {
        const whole = new Uint8Array(v.byteLength);
        const cut1 = Math.floor(v.byteLength / 3);
        const cut2 = Math.floor((2 * v.byteLength) / 3);
        const pieces = [new Uint8Array(cut1), new Uint8Array(cut2 - cut1), new Uint8Array(v.byteLength - cut2)];
        return [
          conn.getInto(`bulk-read/${i}`, whole).then((n) => ({ n, got: whole, want: v })),
          conn.getWith('bulk-read/missing', () => [new Uint8Array(1)]).then((n) => ({ n, got: undefined, want: undefined })),
          conn.getWith(`bulk-read/${i}`, (n) => (n === v.byteLength ? pieces : undefined)).then((n) => ({ n, got: Buffer.concat(pieces), want: v })),
        ];
      });
      for (const r of await Promise.all(reads)) {
        if (r.want === undefined) assert.equal(r.n, -1);
        else {
          assert.equal(r.n, r.want.byteLength);
          assert.ok(same(r.got, r.want), `value of ${r.want.byteLength} bytes`);
        }
      }
      // Room of the wrong size: the length is reported, nothing is written.
      const small = new Uint8Array(5).fill(9);
      assert.equal(await conn.getInto('bulk-read/4', small), 1_000_000);
      assert.deepEqual([...small], [9, 9, 9, 9, 9]);
    } finally {
      conn.close();
    }
  });

  mcTest("the default chunkBytes fits memcached's default item size (-I 1m), even at a 250-byte key", async () => {
    const small = await startMemcached({ itemMaxMb: 1 });
    const ch = await MemcachedChannel.open(parseChannelUrl(`memcached://${small.address}`) as MemcachedSpec);
    try {
      const key = 'k/' + 'x'.repeat(248);
      // The largest single item (1 put), the smallest chunked value (1 chunk + manifest), and a
      // 4 MiB value in 1023 KiB chunks (5 + manifest).
      for (const [n, puts] of [[1023 * 1024 - 1, 1], [1023 * 1024, 2], [4 * MiB + 3, 6]] as const) {
        const v = randomBytes(n);
        ch.resetStats();
        await ch.put(key, v);
        assert.equal(ch.stats().put.requests, puts, `${n} bytes`);
        assert.ok(same(await ch.get(key), v), `${n} bytes`);
      }
    } finally {
      await ch.close();
      await small.stop();
    }
  });

  mcTest('invalid keys and closed channels are rejected', async () => {
    const ch = await MemcachedChannel.open(spec());
    await assert.rejects(ch.put('has space', new Uint8Array(1)), { code: 'KEY_INVALID' });
    await assert.rejects(ch.get(''), { code: 'KEY_INVALID' });
    await assert.rejects(ch.getMany(['ok', 'x'.repeat(251)]), { code: 'KEY_INVALID' });
    await ch.close();
    await assert.rejects(ch.get('ok'), { code: 'CHANNEL_CLOSED' });
    await assert.rejects(ch.put('ok', new Uint8Array(1)), { code: 'CHANNEL_CLOSED' });
    await ch.close();
  });
});
