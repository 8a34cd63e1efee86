/**
 * S3 channel against an in-process s3rver. s3rver's store is not atomic (an object being PUT is
 * readable with partial bytes), so these tests also exercise the envelope's incompleteness checks.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ChannelError, WaitTimeoutError } from '../channels/errors.js';
import { ENVELOPE_HEADER_BYTES, ENVELOPE_TRAILER_BYTES, S3Channel } from '../channels/adapters/s3/index.js';
import { s3SpecFor, startS3Server, type S3Server } from '../client/servers/index.js';
import { pattern, sameBytes } from './support/data.js';

const MiB = 1024 * 1024;

let server: S3Server;
let channel: S3Channel;
let raw: S3Client;

async function rawPut(key: string, body: Uint8Array): Promise<void> {
  await raw.send(new PutObjectCommand({ Bucket: 'cirrus', Key: key, Body: body, ContentLength: body.byteLength }));
}

async function rawGet(key: string): Promise<Uint8Array | undefined> {
  try {
    const out = await raw.send(new GetObjectCommand({ Bucket: 'cirrus', Key: key }));
    return await out.Body!.transformToByteArray();
  } catch (err) {
    if ((err as Error).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

function isChannelError(code: string, includes?: string) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ChannelError, `expected a ChannelError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (includes !== undefined) assert.ok(err.message.includes(includes), `message '${err.message}' should name '${includes}'`);
    return true;
  };
}

before(async () => {
  server = await startS3Server();
  const spec = s3SpecFor(server);
  channel = await S3Channel.open(spec);
  raw = new S3Client({
    region: spec.region,
    endpoint: spec.endpoint,
    forcePathStyle: true,
    credentials: spec.credentials!,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});

after(async () => {
  const dir = server?.directory;
  try {
    if (channel) {
      // Leave nothing behind, whatever the tests did.
      const reopened = await S3Channel.open(s3SpecFor(server));
      try {
        await reopened.delete(await reopened.list(''));
        assert.deepEqual(await reopened.list(''), []);
      } finally {
        await reopened.close();
        await channel.close();
      }
    }
  } finally {
    raw?.destroy();
    await server?.stop();
  }
  if (dir) assert.equal(existsSync(dir), false, 'the temp dir is removed on stop');
});

describe('S3Channel on s3rver', () => {
  it('names its endpoint', () => {
    assert.equal(channel.kind, 's3');
    assert.equal(channel.endpoint, `s3://cirrus/@${server.endpoint}`);
  });

  for (const size of [0, 1, MiB, 16 * MiB]) {
    it(`round-trips ${size} bytes exactly`, async () => {
      const key = `rt/${size}`;
      const value = pattern(size, size % 251);
      channel.resetStats();
      await channel.put(key, value);
      const got = await channel.get(key);
      assert.ok(got !== undefined);
      assert.equal(got.byteLength, size);
      assert.ok(sameBytes(got, value));
      // The payload is a view into the body, starting 8-byte aligned.
      assert.equal(got.byteOffset % 8, 0);
      const s = channel.stats();
      assert.deepEqual(s.put, { requests: 1, bytes: size });
      assert.deepEqual(s.get, { requests: 1, bytes: size });
      // On the wire: header + payload + trailer.
      assert.equal((await rawGet(`rt/${size}`))!.byteLength, ENVELOPE_HEADER_BYTES + size + ENVELOPE_TRAILER_BYTES);
      await channel.delete([key]);
      assert.equal(await channel.get(key), undefined);
    });
  }

  it('does not keep a reference to the caller buffer', async () => {
    const value = Uint8Array.of(1, 2, 3);
    const put = channel.put('copy/a', value);
    value[0] = 9;
    await put;
    assert.deepEqual([...(await channel.get('copy/a'))!], [1, 2, 3]);
    await channel.delete(['copy/a']);
  });

  it('counts requests and payload bytes by kind exactly', async () => {
    channel.resetStats();
    await channel.put('stats/a', new Uint8Array(1000));
    await channel.put('stats/b', new Uint8Array(24));
    assert.equal((await channel.get('stats/a'))!.byteLength, 1000);
    assert.equal(await channel.get('stats/missing'), undefined);
    const many = await channel.getMany(['stats/b', 'stats/missing', 'stats/a']);
    assert.deepEqual(many.map((v) => v?.byteLength), [24, undefined, 1000]);
    assert.deepEqual(await channel.list('stats/'), ['stats/a', 'stats/b']);
    await channel.delete(['stats/a', 'stats/b', 'stats/missing']);
    assert.deepEqual(channel.stats(), {
      put: { requests: 2, bytes: 1024 },
      get: { requests: 5, bytes: 2024 },
      list: { requests: 1, bytes: 0 },
      delete: { requests: 1, bytes: 0 },
    });
    channel.resetStats();
    assert.deepEqual(channel.stats().get, { requests: 0, bytes: 0 });
  });

  it('lists past one page and deletes in batches of 1000', async () => {
    const keys = Array.from({ length: 1050 }, (_, i) => `many/k${String(i).padStart(5, '0')}`);
    await mapLimit([...keys].reverse(), 32, (k) => channel.put(k, Uint8Array.of(k.length)));
    channel.resetStats();
    const listed = await channel.list('many/');
    assert.equal(listed.length, 1050);
    assert.deepEqual(listed, keys);
    assert.ok(channel.stats().list.requests >= 2, `expected >= 2 list pages, got ${channel.stats().list.requests}`);
    channel.resetStats();
    await channel.delete(listed);
    assert.deepEqual(channel.stats().delete, { requests: 2, bytes: 0 });
    assert.deepEqual(await channel.list('many/'), []);
  });

  it('applies the spec prefix to stored keys and strips it from listings', async () => {
    const prefixed = await S3Channel.open(s3SpecFor(server, 'cirrus', 'pre/fix/'));
    try {
      assert.equal(prefixed.endpoint, `s3://cirrus/pre/fix/@${server.endpoint}`);
      await prefixed.put('a/1', Uint8Array.of(5));
      assert.deepEqual(await prefixed.list('a/'), ['a/1']);
      assert.deepEqual(await channel.list('pre/'), ['pre/fix/a/1']);
      assert.deepEqual([...(await prefixed.get('a/1'))!], [5]);
      await prefixed.delete(['a/1']);
      assert.deepEqual(await channel.list('pre/'), []);
    } finally {
      await prefixed.close();
    }
  });

  it('never shows a partial value while an 8 MiB put is in flight', async (t) => {
    let partialRawBodies = 0;
    let readsUndefined = 0;
    let readsComplete = 0;
    for (let round = 0; round < 3; round++) {
      const key = `race/${round}`;
      const value = new Uint8Array(randomBytes(8 * MiB));
      let written = false;
      const reader = (async () => {
        // Keep reading until a read that started after the put finished has returned.
        for (;;) {
          const startedAfterPut = written;
          const got = await channel.get(key);
          if (got === undefined) readsUndefined++;
          else {
            assert.ok(sameBytes(got, value), `round ${round}: a read returned ${got.byteLength} bytes that are not the written value`);
            readsComplete++;
          }
          if (startedAfterPut) {
            assert.ok(got !== undefined, 'a read after the put completed must see the value');
            return;
          }
        }
      })();
      // A raw reader shows what the store itself exposes meanwhile.
      const rawReader = (async () => {
        while (!written) {
          const body = await rawGet(key).catch(() => undefined);
          if (body !== undefined && body.byteLength < ENVELOPE_HEADER_BYTES + value.byteLength + ENVELOPE_TRAILER_BYTES) partialRawBodies++;
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 5));
      await channel.put(key, value);
      written = true;
      await Promise.all([reader, rawReader]);
      await channel.delete([key]);
    }
    t.diagnostic(`channel reads: ${readsUndefined} undefined, ${readsComplete} complete; raw partial bodies seen: ${partialRawBodies}`);
    assert.ok(readsComplete >= 3);
  });

  it('while a key is overwritten, readers see the old value, the new value or undefined, never a mix', async (t) => {
    const key = 'race/overwrite';
    const values = [new Uint8Array(randomBytes(4 * MiB)), new Uint8Array(randomBytes(4 * MiB))];
    await channel.put(key, values[0]!);
    let done = false;
    const seen = { undefined: 0, first: 0, second: 0 };
    const reader = (async () => {
      while (!done) {
        const got = await channel.get(key);
        if (got === undefined) seen.undefined++;
        else if (sameBytes(got, values[0]!)) seen.first++;
        else {
          assert.ok(sameBytes(got, values[1]!), `a read returned ${got.byteLength} bytes that match neither value`);
          seen.second++;
        }
      }
    })();
    for (let i = 1; i <= 6; i++) await channel.put(key, values[i % 2]!);
    done = true;
    await reader;
    assert.ok(sameBytes((await channel.get(key))!, values[0]!));
    t.diagnostic(`reads during overwrites: ${JSON.stringify(seen)}`);
    await channel.delete([key]);
  });

  it('treats truncated or mismatched envelopes as not yet written, then as corrupt', async () => {
    const value = pattern(4096, 3);
    await channel.put('env/full', value);
    const full = (await rawGet('env/full'))!;
    assert.equal(full.byteLength, ENVELOPE_HEADER_BYTES + 4096 + ENVELOPE_TRAILER_BYTES);
    // Every prefix a non-atomic store could expose reads as "not there yet".
    for (const n of [0, 2, 4, 23, 24, 25, 2000, full.byteLength - 8, full.byteLength - 1]) {
      await rawPut('env/partial', full.subarray(0, n));
      assert.equal(await channel.get('env/partial'), undefined, `prefix of ${n} bytes`);
    }
    // Full length but the trailer id differs from the header id.
    const badTrailer = full.slice();
    badTrailer[badTrailer.byteLength - 1]! ^= 0xff;
    await rawPut('env/trailer', badTrailer);
    assert.equal(await channel.get('env/trailer'), undefined);

    // A state that never changes becomes CHANNEL_CORRUPT once it outlasts corruptAfterMs.
    const strict = await S3Channel.open(s3SpecFor(server), { corruptAfterMs: 50 });
    try {
      assert.equal(await strict.get('env/trailer'), undefined);
      assert.equal(await strict.get('env/trailer'), undefined);
      await new Promise((resolve) => setTimeout(resolve, 80));
      await assert.rejects(strict.get('env/trailer'), isChannelError('CHANNEL_CORRUPT', "'env/trailer'"));
      // Still the same state: still corrupt, with the lengths in the message.
      await assert.rejects(strict.get('env/trailer'), isChannelError('CHANNEL_CORRUPT', `trailer write id does not match the header (body has ${full.byteLength} bytes`));
      // A wait surfaces the corruption instead of timing out silently.
      await assert.rejects(strict.wait('env/trailer', Date.now() + 2_000), isChannelError('CHANNEL_CORRUPT', 'env/trailer'));
      const halfway = full.byteLength >> 1;
      await rawPut('env/partial', full.subarray(0, halfway));
      // Two reads stay under the minimum of reads before a verdict, so no load can make them late.
      for (let i = 0; i < 2; i++) assert.equal(await strict.get('env/partial'), undefined);
      await new Promise((resolve) => setTimeout(resolve, 80));
      await assert.rejects(strict.get('env/partial'), (err: unknown) => {
        isChannelError('CHANNEL_CORRUPT', "'env/partial'")(err);
        assert.ok((err as Error).message.includes(`body has ${halfway} bytes, envelope declares ${full.byteLength}`), (err as Error).message);
        return true;
      });
      // The completed object reads normally again.
      await rawPut('env/partial', full);
      assert.ok(sameBytes((await strict.get('env/partial'))!, value));
    } finally {
      await strict.close();
    }
    await channel.delete(['env/full', 'env/partial', 'env/trailer']);
  });

  it('rejects an object written without the envelope at once (CHANNEL_CORRUPT), not as missing', async () => {
    await rawPut('foreign/text', new TextEncoder().encode('hello from another tool'));
    await assert.rejects(channel.get('foreign/text'), isChannelError('CHANNEL_CORRUPT', "'foreign/text'"));
    await assert.rejects(channel.get('foreign/text'), isChannelError('CHANNEL_CORRUPT', 'envelope magic'));
    await rawPut('foreign/one', Uint8Array.of(0x00));
    await assert.rejects(channel.get('foreign/one'), isChannelError('CHANNEL_CORRUPT', "'foreign/one'"));
    // Bytes that start like an envelope but carry another version.
    const other = new Uint8Array(ENVELOPE_HEADER_BYTES + ENVELOPE_TRAILER_BYTES);
    other.set([0x43, 0x52, 0x53, 0x33, 9, 0, 0, 0]);
    await rawPut('foreign/version', other);
    await assert.rejects(channel.get('foreign/version'), isChannelError('CHANNEL_CORRUPT', 'version 9'));
    await channel.delete(['foreign/text', 'foreign/one', 'foreign/version']);
  });

  it('wait resolves once the key is written', async () => {
    const waiting = channel.wait('wait/late', Date.now() + 5_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await channel.put('wait/late', Uint8Array.of(42));
    assert.deepEqual([...(await waiting)], [42]);
    await channel.delete(['wait/late']);
  });

  it('waitMany past its deadline names exactly the missing keys', async () => {
    await channel.put('wm/present', Uint8Array.of(1));
    const arrived: number[] = [];
    const deadline = Date.now() + 300;
    await assert.rejects(
      channel.waitMany(['wm/absent-1', 'wm/present', 'wm/absent-2'], deadline, (i) => arrived.push(i)),
      (err: unknown) => {
        assert.ok(err instanceof WaitTimeoutError);
        assert.equal(err.code, 'CHANNEL_TIMEOUT');
        assert.deepEqual(err.missingKeys, ['wm/absent-1', 'wm/absent-2']);
        return true;
      },
    );
    assert.ok(Date.now() >= deadline);
    assert.deepEqual(arrived, [1]);
    await channel.delete(['wm/present']);
  });

  it('validates keys', async () => {
    await assert.rejects(channel.put('has space', Uint8Array.of(1)), isChannelError('KEY_INVALID'));
    await assert.rejects(channel.get(''), isChannelError('KEY_INVALID'));
  });

  it('open() on a missing bucket names the bucket', async () => {
    await assert.rejects(S3Channel.open(s3SpecFor(server, 'no-such-bucket')), isChannelError('CHANNEL_ENDPOINT', "bucket 'no-such-bucket' does not exist"));
  });

  it('open() against a closed port rejects with CHANNEL_UNREACHABLE within the timeout', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const timeoutMs = 2_000;
    const started = Date.now();
    await assert.rejects(
      S3Channel.open({ ...s3SpecFor({ endpoint: `http://127.0.0.1:${port}` }), timeoutMs }),
      isChannelError('CHANNEL_UNREACHABLE', `S3 endpoint http://127.0.0.1:${port} is unreachable`),
    );
    assert.ok(Date.now() - started <= timeoutMs + 1_000, 'open() must give up by its deadline');
  });

  it('open() against a server that accepts but never answers rejects by the deadline', async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const timeoutMs = 400;
      const started = Date.now();
      await assert.rejects(
        S3Channel.open({ ...s3SpecFor({ endpoint: `http://127.0.0.1:${port}` }), timeoutMs }),
        isChannelError('CHANNEL_UNREACHABLE', `no answer within ${timeoutMs} ms`),
      );
      assert.ok(Date.now() - started <= timeoutMs + 1_000, 'open() must give up by its deadline');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('maps request failures to CHANNEL_REQUEST naming the operation, key and endpoint', async () => {
    // A channel whose bucket vanished after open: use a bucket that never existed, skipping open().
    const lost = new S3Channel(s3SpecFor(server, 'gone-bucket'));
    try {
      await assert.rejects(lost.get('x/1'), isChannelError('CHANNEL_REQUEST', `GET x/1 on s3://gone-bucket/@${server.endpoint} failed`));
      await assert.rejects(lost.put('x/1', Uint8Array.of(1)), isChannelError('CHANNEL_REQUEST', 'PUT x/1'));
      await assert.rejects(lost.list('x/'), isChannelError('CHANNEL_REQUEST', 'LIST'));
    } finally {
      await lost.close();
    }
  });

  it('throws CHANNEL_CLOSED after close()', async () => {
    const c = await S3Channel.open(s3SpecFor(server));
    await c.close();
    await c.close();
    await assert.rejects(c.get('a/b'), isChannelError('CHANNEL_CLOSED'));
    await assert.rejects(c.put('a/b', Uint8Array.of(1)), isChannelError('CHANNEL_CLOSED'));
    await assert.rejects(c.list(''), isChannelError('CHANNEL_CLOSED'));
    await assert.rejects(c.delete(['a/b']), isChannelError('CHANNEL_CLOSED'));
    await assert.rejects(c.waitMany(['a/b'], Date.now() + 100), isChannelError('CHANNEL_CLOSED'));
  });
});

describe('startS3Server', () => {
  it('keeps a directory the caller gave, serves the requested buckets, and picks free ports', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cirrus-s3-test-'));
    const s = await startS3Server({ directory: dir, buckets: ['alpha', 'beta'] });
    try {
      assert.equal(s.directory, dir);
      assert.notEqual(s.port, server.port);
      assert.equal(s.endpoint, `http://127.0.0.1:${s.port}`);
      for (const bucket of ['alpha', 'beta']) {
        const c = await S3Channel.open(s3SpecFor(s, bucket));
        await c.put('k', Uint8Array.of(7));
        assert.deepEqual([...(await c.get('k'))!], [7]);
        await c.close();
      }
      await assert.rejects(S3Channel.open(s3SpecFor(s, 'cirrus')), isChannelError('CHANNEL_ENDPOINT', "'cirrus'"));
    } finally {
      await s.stop();
    }
    assert.equal(existsSync(dir), true);
    assert.equal(existsSync(join(dir, 'alpha')), true);
    await rm(dir, { recursive: true, force: true });
  });
});
