/**
 * The conformance suite every Channel adapter must pass, run against the real server.
 * `open` returns a fresh client of the same store each call (so concurrent writers are real clients).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { ABILITY_METHODS, CHANNEL_ABILITIES, canList, canPutParts, canReadInto, hasAbility, type Channel, type ChannelAbility } from '../../channels/channel.js';
import { ChannelError, WaitTimeoutError } from '../../channels/errors.js';
import { skipOrFail } from './skip-or-fail.js';

export interface ConformanceTarget {
  name: string;
  /** Opens a new client of the store. */
  open: () => Promise<Channel>;
  /** Why the suite cannot run here (its server is missing), if so: handed to skipOrFail. */
  missing?: () => string | undefined;
  /**
   * The optional abilities the adapter declares (channel.ts: list, putParts, readInto). The suite
   * checks the declaration against the channel's methods and runs each declared ability's cases.
   */
  abilities: readonly ChannelAbility[];
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

  withChannel(`declares its abilities (${target.abilities.join(', ') || 'none'}) and has exactly their methods`, async (ch) => {
    assert.deepEqual([...(ch.abilities ?? [])].sort(), [...target.abilities].sort(), 'declared abilities');
    for (const ability of CHANNEL_ABILITIES) {
      const declared = target.abilities.includes(ability);
      const method = ABILITY_METHODS[ability];
      assert.equal(typeof (ch as unknown as Record<string, unknown>)[method], declared ? 'function' : 'undefined', `${ability}: method ${method}`);
      assert.equal(hasAbility(ch, ability), declared, `${ability}: guard`);
    }
  });

  if (target.abilities.includes('list')) listCases(target, withChannel, k);
  if (target.abilities.includes('putParts')) putPartsCases(withChannel, k);
  if (target.abilities.includes('readInto')) readIntoCases(withChannel, k);

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

type WithChannel = (title: string, body: (ch: Channel, t: TestContext) => Promise<void>) => void;

function same(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The 'list' ability. */
function listCases(target: ConformanceTarget, withChannel: WithChannel, k: (name: string) => string): void {
  withChannel('list returns the keys under a prefix, sorted', async (ch) => {
    assert.ok(canList(ch), `${target.name} declares list, but canList says no`);
    const keys = [k('ls/b'), k('ls/a'), k('ls/c/d')];
    for (const key of keys) await ch.put(key, Uint8Array.of(1));
    assert.deepEqual(await ch.list(k('ls/')), [...keys].sort());
    await ch.delete(keys);
    assert.deepEqual(await ch.list(k('ls/')), []);
  });
}

/** The 'putParts' ability: head ++ body stored as one value, byte-exact, at every size class. */
function putPartsCases(withChannel: WithChannel, k: (name: string) => string): void {
  for (const [headBytes, bodyBytes] of [
    [0, 0],
    [16, 10],
    [0, 3 * 1024 * 1024 + 5],
    [32, 3 * 1024 * 1024 + 5],
  ] as const) {
    withChannel(`putParts of ${headBytes} + ${bodyBytes} bytes reads back as one value and is counted`, async (ch) => {
      assert.ok(canPutParts(ch));
      const head = new Uint8Array(randomBytes(headBytes));
      const body = new Uint8Array(randomBytes(bodyBytes));
      const key = k(`pp-${headBytes}-${bodyBytes}`);
      ch.resetStats();
      await ch.putParts(key, head, body);
      assert.ok(ch.stats().put.bytes >= headBytes + bodyBytes, `put bytes ${ch.stats().put.bytes}`);
      const got = await ch.wait(key, Date.now() + 10_000);
      assert.equal(got.byteLength, headBytes + bodyBytes);
      assert.ok(same(got, Buffer.concat([head, body])), 'bytes differ');
      // The put resolved: the caller's memory is its own again.
      body.fill(0);
      assert.ok(same(await ch.get(key), Buffer.concat([head, got.subarray(headBytes)])));
      await ch.delete([key]);
    });
  }
}

/** The 'readInto' ability: waitManyInto uses lent room of the right size, else a fresh buffer; values byte-exact. */
function readIntoCases(withChannel: WithChannel, k: (name: string) => string): void {
  withChannel('waitManyInto reads values whole, in two pieces or fresh, byte-exact, and names what is missing', async (ch) => {
    assert.ok(canReadInto(ch));
    const a = new Uint8Array(randomBytes(2 * 1024 * 1024 + 3));
    const b = new Uint8Array(randomBytes(1536 * 1024));
    const small = new Uint8Array(randomBytes(10));
    const keys = [k('ri/a'), k('ri/b'), k('ri/small'), k('ri/c')];
    await Promise.all([ch.put(keys[0]!, a), ch.put(keys[1]!, b), ch.put(keys[2]!, small), ch.put(keys[3]!, a)]);
    const whole = new Uint8Array(a.byteLength);
    const head = new Uint8Array(70 * 1024);
    const body = new Uint8Array(b.byteLength - head.byteLength);
    const wrong = new Uint8Array(a.byteLength + 1);
    const seen = new Set<number>();
    const got = await ch.waitManyInto(
      keys,
      Date.now() + 10_000,
      (i, n) => {
        assert.equal(n, [a, b, small, a][i]!.byteLength, `dest asked for value ${i}'s length`);
        return i === 0 ? whole : i === 1 ? { head, body } : i === 3 ? wrong : undefined;
      },
      (i) => seen.add(i),
    );
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3], 'onValue once per key');
    assert.ok(same(got[0], a), 'whole');
    if (got[0] === whole) assert.ok(same(whole, a));
    // A value read in two pieces is reported as its head piece.
    if (got[1] === head) assert.ok(same(Buffer.concat([head, body]), b), 'two pieces');
    else assert.ok(same(got[1], b), 'fresh instead of two pieces');
    assert.ok(same(got[2], small), 'small');
    // Room of the wrong size is not used.
    assert.ok(same(got[3], a), 'wrong-size room');
    assert.notEqual(got[3]!.buffer, wrong.buffer);
    await assert.rejects(ch.waitManyInto([keys[0]!, keys[0]!], Date.now() + 1_000, () => undefined), { code: 'KEY_INVALID' });
    await assert.rejects(ch.waitManyInto([keys[0]!, k('ri/never')], Date.now() + 300, () => undefined), (e: unknown) => {
      assert.ok(e instanceof WaitTimeoutError, String(e));
      assert.deepEqual(e.missingKeys, [k('ri/never')]);
      return true;
    });
    await ch.delete(keys);
  });
}
