/**
 * The conformance suite every Channel adapter must pass, run against the real server.
 * `open` returns a fresh client of the same store each call (so concurrent writers are real clients).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import type { Channel } from '../../channels/channel.js';
import { ChannelError, WaitTimeoutError } from '../../channels/errors.js';
import { skipOrFail } from './skip-or-fail.js';

export interface ConformanceTarget {
  name: string;
  /** Opens a new client of the store. */
  open: () => Promise<Channel>;
  /** Why the suite cannot run here (its server is missing), if so: handed to skipOrFail. */
  missing?: () => string | undefined;
  /** Whether the adapter enumerates keys (has list); one that does not must not pretend to. */
  lists: boolean;
  /** A unique key prefix per run so reruns never see old data. */
  prefix: string;
}

export function channelConformance(target: ConformanceTarget): void {
  const k = (name: string) => `${target.prefix}${name}`;
  const withChannel = (title: string, body: (ch: Channel, t: TestContext) => Promise<void>) =>
    test(`${target.name}: ${title}`, async (t) => {
      if (skipOrFail(t, target.missing?.())) return;
      const ch = await target.open();
      try {
        await body(ch, t);
      } finally {
        await ch.close();
      }
    });

  for (const size of [0, 1, 1024 * 1024, 16 * 1024 * 1024]) {
    withChannel(`round trip of ${size} bytes is byte-exact and counted`, async (ch) => {
      const value = new Uint8Array(randomBytes(size));
      const key = k(`rt-${size}`);
      ch.resetStats();
      await ch.put(key, value);
      const got = await ch.get(key);
      assert.ok(got, 'value missing after put');
      assert.equal(got.byteLength, size);
      assert.ok(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(value)), 'bytes differ');
      const s = ch.stats();
      assert.ok(s.put.requests >= 1 && s.get.requests >= 1, 'requests not counted');
      assert.ok(s.put.bytes >= size && s.get.bytes >= size, `bytes not counted: put ${s.put.bytes}, get ${s.get.bytes}, value ${size}`);
      await ch.delete([key]);
      assert.equal(await ch.get(key), undefined);
      ch.resetStats();
      assert.deepEqual(ch.stats().put, { requests: 0, bytes: 0 });
    });
  }

  withChannel('missing keys read as undefined; getMany mixes present and missing', async (ch) => {
    assert.equal(await ch.get(k('never-written')), undefined);
    await ch.put(k('gm-a'), Uint8Array.of(1));
    await ch.put(k('gm-c'), Uint8Array.of(3, 3));
    const got = await ch.getMany([k('gm-a'), k('gm-b'), k('gm-c')]);
    assert.deepEqual(got.map((v) => (v ? Array.from(v) : undefined)), [[1], undefined, [3, 3]]);
    await ch.delete([k('gm-a'), k('gm-c')]);
  });

  withChannel('overwrite replaces the value; delete is idempotent', async (ch) => {
    const key = k('ow');
    await ch.put(key, new Uint8Array(3 * 1024 * 1024).fill(7));
    await ch.put(key, Uint8Array.of(9, 9));
    assert.deepEqual(Array.from((await ch.get(key))!), [9, 9]);
    await ch.delete([key]);
    await ch.delete([key, k('not-there')]);
    assert.equal(await ch.get(key), undefined);
  });

  withChannel('a value is a snapshot: changing the buffer after put changes nothing', async (ch) => {
    const key = k('snap');
    const buf = Uint8Array.of(1, 2, 3);
    await ch.put(key, buf);
    buf[0] = 99;
    assert.deepEqual(Array.from((await ch.get(key))!), [1, 2, 3]);
    await ch.delete([key]);
  });

  withChannel('concurrent writers on separate clients to distinct keys all land', async (ch) => {
    const writers = await Promise.all([target.open(), target.open(), target.open()]);
    try {
      const keys: string[] = [];
      await Promise.all(
        writers.map((w, wi) =>
          Promise.all(
            Array.from({ length: 40 }, (_, i) => {
              const key = k(`cw-${wi}-${i}`);
              keys.push(key);
              return w.put(key, Uint8Array.of(wi, i, (wi * 40 + i) & 255));
            }),
          ),
        ),
      );
      const got = await ch.getMany(keys);
      got.forEach((v, idx) => {
        const [, wi, i] = /cw-(\d+)-(\d+)$/.exec(keys[idx]!)!.map(Number) as [number, number, number];
        assert.deepEqual(Array.from(v!), [wi, i, (wi * 40 + i) & 255], keys[idx]);
      });
      await ch.delete(keys);
      assert.deepEqual(await ch.getMany(keys.slice(0, 3)), [undefined, undefined, undefined]);
    } finally {
      await Promise.all(writers.map((w) => w.close()));
    }
  });

  withChannel('wait resolves when another client writes the key', async (ch) => {
    const other = await target.open();
    try {
      const key = k('wait-late');
      setTimeout(() => void other.put(key, Uint8Array.of(42)), 60);
      const v = await ch.wait(key, Date.now() + 10_000);
      assert.deepEqual(Array.from(v), [42]);
      const seen: number[] = [];
      const keys = [k('wm-0'), k('wm-1'), k('wm-2')];
      setTimeout(() => void other.put(keys[1]!, Uint8Array.of(1)), 20);
      setTimeout(() => void other.put(keys[0]!, Uint8Array.of(0)), 40);
      await ch.put(keys[2]!, Uint8Array.of(2));
      const all = await ch.waitMany(keys, Date.now() + 10_000, (i) => seen.push(i));
      assert.deepEqual(all.map((x) => x[0]), [0, 1, 2]);
      assert.deepEqual([...seen].sort(), [0, 1, 2]);
      await ch.delete([key, ...keys]);
    } finally {
      await other.close();
    }
  });

  withChannel('wait past its deadline throws WaitTimeoutError naming exactly the missing keys', async (ch) => {
    await ch.put(k('wt-present'), Uint8Array.of(1));
    const started = Date.now();
    const err = await ch.waitMany([k('wt-present'), k('wt-missing-1'), k('wt-missing-2')], Date.now() + 250).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof WaitTimeoutError, `expected WaitTimeoutError, got ${String(err)}`);
    assert.equal(err.code, 'CHANNEL_TIMEOUT');
    assert.deepEqual(err.missingKeys, [k('wt-missing-1'), k('wt-missing-2')]);
    assert.match(err.message, /never appeared: .*wt-missing-1, .*wt-missing-2$/);
    assert.ok(Date.now() - started >= 240, 'gave up before the deadline');
    await assert.rejects(ch.wait(k('wt-missing-1'), Date.now() + 50), WaitTimeoutError);
    await ch.delete([k('wt-present')]);
  });

  withChannel(target.lists ? 'list returns the keys under a prefix, sorted' : 'has no list (the store cannot enumerate keys)', async (ch) => {
    if (!target.lists) {
      assert.equal(ch.list, undefined);
      return;
    }
    assert.ok(ch.list, `${target.name} says it lists, but its channel has no list()`);
    const keys = [k('ls/b'), k('ls/a'), k('ls/c/d')];
    for (const key of keys) await ch.put(key, Uint8Array.of(1));
    assert.deepEqual(await ch.list(k('ls/')), [...keys].sort());
    await ch.delete(keys);
    assert.deepEqual(await ch.list(k('ls/')), []);
  });

  test(`${target.name}: a closed channel refuses work with CHANNEL_CLOSED`, async (t) => {
    if (skipOrFail(t, target.missing?.())) return;
    const ch = await target.open();
    await ch.close();
    await assert.rejects(
      ch.put(k('closed'), Uint8Array.of(1)),
      (e: unknown) => e instanceof ChannelError && e.code === 'CHANNEL_CLOSED',
    );
  });
}
