import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Communicator, segmentBounds } from '../channels/collectives.js';
import { CollectiveTimeoutError } from '../channels/errors.js';
import { MemoryChannel } from '../channels/adapters/memory/index.js';
import { OrderedReducer, SIMD_MIN_FLOATS, addDivideInto, addInto, referenceReduce, sumDivideInto, sumInto } from '../channels/reduce.js';
import { SimdArena, simdAvailable } from '../channels/simd-reduce.js';
import { makeVector } from '../bench/vectors.js';
import { benchReduce } from '../bench/reduce.js';
import { skipOrFail } from './support/skip-or-fail.js';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Pattern = 'allReduce' | 'scatterReduce';

async function runWorld(channel: MemoryChannel, world: number, length: number, pattern: Pattern, rounds: number, op: 'sum' | 'mean', jobId = 'mem-test') {
  const comms = Array.from({ length: world }, (_, rank) => new Communicator(channel, { jobId, rank, world, timeoutMs: 5000 }));
  for (let round = 0; round < rounds; round++) {
    const inputs = comms.map((_, rank) => makeVector(7, rank, round, length));
    const expected = referenceReduce(inputs, op);
    const outputs = await Promise.all(comms.map((c, rank) => c[pattern](inputs[rank]!, op)));
    outputs.forEach((out, rank) => {
      assert.equal(out.length, length);
      assert.deepEqual(new Uint8Array(out.buffer, out.byteOffset, out.byteLength), new Uint8Array(expected.buffer), `${pattern} W=${world} n=${length} round ${round} rank ${rank}: result differs from the rank-order sum`);
    });
  }
  await Promise.all(comms.map((c) => c.close()));
}

test('segments cover the vector exactly once, including when length < world', () => {
  for (const [n, w] of [[0, 3], [2, 5], [7, 3], [1_000_003, 8]] as const) {
    let covered = 0;
    let prev = 0;
    for (let j = 0; j < w; j++) {
      const [lo, hi] = segmentBounds(n, w, j);
      assert.equal(lo, prev);
      assert.ok(hi >= lo);
      covered += hi - lo;
      prev = hi;
    }
    assert.equal(covered, n);
  }
});

for (const pattern of ['allReduce', 'scatterReduce'] as const) {
  test(`${pattern} on the memory channel: W = 1..8, lengths 0..1000, sum and mean, bit-exact, nothing left behind`, async () => {
    const channel = new MemoryChannel();
    for (let world = 1; world <= 8; world++) {
      for (const length of [0, 1, world - 1, world + 1, 1000]) {
        await runWorld(channel, world, length, pattern, 3, world % 2 === 0 ? 'mean' : 'sum');
        assert.equal(channel.size(), 0, `${pattern} W=${world} n=${length}: keys left: ${(await channel.list('')).join(', ')}`);
      }
    }
  });
}

test('two jobs and mixed patterns on one channel never mix', async () => {
  const channel = new MemoryChannel();
  const a = Array.from({ length: 3 }, (_, rank) => new Communicator(channel, { jobId: 'job-a', rank, world: 3 }));
  const b = Array.from({ length: 3 }, (_, rank) => new Communicator(channel, { jobId: 'job-b', rank, world: 3 }));
  for (let round = 0; round < 4; round++) {
    const va = a.map((_, r) => makeVector(1, r, round, 50));
    const vb = b.map((_, r) => makeVector(2, r, round, 50));
    const pattern: Pattern = round % 2 ? 'allReduce' : 'scatterReduce';
    const [ra, rb] = await Promise.all([Promise.all(a.map((c, r) => c[pattern](va[r]!))), Promise.all(b.map((c, r) => c[pattern](vb[r]!)))]);
    assert.deepEqual(Array.from(ra[1]!), Array.from(referenceReduce(va, 'sum')));
    assert.deepEqual(Array.from(rb[2]!), Array.from(referenceReduce(vb, 'sum')));
  }
  await Promise.all([...a, ...b].map((c) => c.close()));
  assert.equal(channel.size(), 0);
});

test('a missing rank makes the round fail with a typed error naming it', async () => {
  const channel = new MemoryChannel();
  const comms = [0, 1, 2, 3].map((rank) => new Communicator(channel, { jobId: 'timeout', rank, world: 4, timeoutMs: 150 }));
  const v = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  // Ranks 2 and 3 never call.
  const results = await Promise.allSettled([comms[0]!.scatterReduce(v), comms[1]!.scatterReduce(v)]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    const e = (r as PromiseRejectedResult).reason as CollectiveTimeoutError;
    assert.ok(e instanceof CollectiveTimeoutError);
    assert.equal(e.code, 'COLLECTIVE_TIMEOUT');
    assert.equal(e.round, 0);
  }
  const e0 = (results[0] as PromiseRejectedResult).reason as CollectiveTimeoutError;
  assert.deepEqual(e0.missingRanks, [2, 3]);
  assert.match(e0.message, /^scatterreduce round 0: rank 0 waited \d+ ms; ranks 2, 3 never arrived$/);
  const leader = new Communicator(channel, { jobId: 'timeout2', rank: 0, world: 3, timeoutMs: 100 });
  await assert.rejects(leader.allReduce(v), { code: 'COLLECTIVE_TIMEOUT', message: /ranks 1, 2 never arrived/ });
});

test('vectors of different lengths are refused naming the rank', async () => {
  const channel = new MemoryChannel();
  const [c0, c1] = [0, 1].map((rank) => new Communicator(channel, { jobId: 'mismatch', rank, world: 2, timeoutMs: 300 }));
  const results = await Promise.allSettled([c0!.allReduce(new Float32Array(4)), c1!.allReduce(new Float32Array(5))]);
  assert.equal(results[0]!.status, 'rejected');
  assert.match(String((results[0] as PromiseRejectedResult).reason.message), /rank 1 sent 5 floats, expected 4/);
});

test('bad rank or world is refused at construction', () => {
  const channel = new MemoryChannel();
  assert.throws(() => new Communicator(channel, { jobId: 'x', rank: 3, world: 3 }), { code: 'COLLECTIVE_ARGUMENT', message: 'rank must be an integer in [0, 2], got 3' });
  assert.throws(() => new Communicator(channel, { jobId: 'x', rank: 0, world: 0 }), { code: 'COLLECTIVE_ARGUMENT', message: 'world must be a positive integer, got 0' });
  assert.throws(() => new Communicator(channel, { jobId: 'bad id', rank: 0, world: 1 }), { code: 'KEY_INVALID' });
});

test('out: every algorithm writes the result into the given buffer, round after round, bit-exact; a wrong or overlapping out is refused', async () => {
  const channel = new MemoryChannel();
  for (const world of [1, 2, 3]) {
    for (const [name, length] of [['leader', 5000], ['gather', 10], ['scatter', 1001]] as const) {
      const comms = Array.from({ length: world }, (_, rank) => new Communicator(channel, { jobId: `out-${name}`, rank, world, timeoutMs: 5000 }));
      const outs = comms.map(() => new Float32Array(length).fill(Number.NaN));
      for (let round = 0; round < 3; round++) {
        const inputs = comms.map((_, rank) => makeVector(3, rank, round, length));
        const expected = referenceReduce(inputs, 'mean');
        const results = await Promise.all(
          comms.map((c, rank) => (name === 'scatter' ? c.scatterReduce(inputs[rank]!, 'mean', outs[rank]) : c.allReduce(inputs[rank]!, 'mean', name, outs[rank]))),
        );
        results.forEach((r, rank) => {
          assert.equal(r, outs[rank], `${name} W=${world} rank ${rank}: the result is out itself`);
          assert.deepEqual(new Uint8Array(r.buffer), new Uint8Array(expected.buffer), `${name} W=${world} round ${round} rank ${rank}`);
        });
      }
      await Promise.all(comms.map((c) => c.close()));
      assert.equal(channel.size(), 0);
    }
  }
  const c = new Communicator(channel, { jobId: 'out-bad', rank: 0, world: 1 });
  const v = new Float32Array(8);
  await assert.rejects(c.allReduce(v, 'sum', 'auto', new Float32Array(7)), { code: 'COLLECTIVE_ARGUMENT', message: 'out has 7 floats, the vector 8' });
  await assert.rejects(c.scatterReduce(v.subarray(0, 4), 'sum', v.subarray(2, 6)), { code: 'COLLECTIVE_ARGUMENT', message: 'out overlaps the vector being reduced; pass a separate buffer' });
  assert.equal(c.round, 0, 'a refused call uses no round');
});

test('addInto equals a one-element-at-a-time float32 sum for every length 0..9, in place', () => {
  for (let n = 0; n <= 9; n++) {
    const acc = makeVector(5, 0, n, n);
    const v = makeVector(5, 1, n, n);
    const want = Float32Array.from(acc, (a, i) => a + v[i]!);
    addInto(acc, v);
    assert.deepEqual(acc, want, `length ${n}`);
  }
});

test('sumInto, addDivideInto and sumDivideInto equal one-element-at-a-time float32 loops for every length 0..9', () => {
  for (let n = 0; n <= 9; n++) {
    const a = makeVector(6, 0, n, n);
    const b = makeVector(6, 1, n, n);
    const sum = Float32Array.from(a, (x, i) => x + b[i]!);
    const out = new Float32Array(n);
    sumInto(out, a, b);
    assert.deepEqual(out, sum, `sumInto length ${n}`);
    for (const d of [2, 3, 7]) {
      const want = Float32Array.from(sum, (x) => x / d);
      sumDivideInto(out, a, b, d);
      assert.deepEqual(out, want, `sumDivideInto length ${n} / ${d}`);
      const acc = a.slice();
      addDivideInto(acc, b, d);
      assert.deepEqual(acc, want, `addDivideInto length ${n} / ${d}`);
    }
  }
});

test('OrderedReducer gives the plain loop\'s bits for every arrival order, sum and mean, W = 1..4, JS and SIMD paths', () => {
  const permutations = (xs: number[]): number[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));
  // 37 floats take the JS kernels; SIMD_MIN_FLOATS + 3 takes SIMD (with a scalar tail) unless disabled.
  for (const [length, simd] of [[37, true], [SIMD_MIN_FLOATS + 3, true], [SIMD_MIN_FLOATS + 3, false]] as const) {
    for (let world = 1; world <= 4; world++) {
      const vectors = Array.from({ length: world }, (_, r) => makeVector(9, r, world, length));
      for (const op of ['sum', 'mean'] as const) {
        const want = referenceReduce(vectors, op);
        for (const order of permutations(Array.from({ length: world }, (_, r) => r))) {
          const r = new OrderedReducer(world, length, op, 'test', undefined, simd);
          for (const rank of order) r.offer(rank, vectors[rank]!);
          assert.deepEqual(r.result(), want, `n=${length} simd=${simd} W=${world} ${op} order ${order.join(',')}`);
        }
      }
    }
  }
  const r = new OrderedReducer(3, 4, 'sum', 'unit');
  r.offer(1, new Float32Array(4));
  assert.throws(() => r.result(), { code: 'COLLECTIVE_ARGUMENT', message: 'unit: reduction incomplete (0 of 3 ranks)' });
  assert.throws(() => r.offer(2, new Float32Array(3)), { code: 'COLLECTIVE_MISMATCH', message: 'unit: rank 2 sent 3 floats, expected 4 (every rank must pass vectors of the same length)' });
});

const simdMissing = simdAvailable ? undefined : 'this runtime has no WebAssembly SIMD (Node 20 has it)';

test('the SIMD arena sums and divides like float32 loops for lengths 0..9 and a long odd length, also in place in its slots', (t) => {
  if (skipOrFail(t, simdMissing)) return;
  const arena = new SimdArena();
  for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 100_003, 6]) {
    const a = makeVector(4, 0, n, n);
    const b = makeVector(4, 1, n, n);
    const c = makeVector(4, 2, n, n);
    const want = Float32Array.from(a, (x, i) => Math.fround(Math.fround(x + b[i]!) + c[i]!) / 3);
    const out = new Float32Array(n);
    // Addends from outside the arena (copied in).
    arena.reserve(n);
    arena.begin(a, b);
    arena.add(c, 3);
    arena.store(out);
    assert.deepEqual(out, want, `length ${n}, copied`);
    // Addends read into receive slots (after a frame-like 8-byte head): summed where they are.
    arena.reserve(n, 3, 8 + 4 * n);
    const inSlot = [a, b, c].map((v, i) => {
      const slot = arena.slot(i);
      const view = new Float32Array(slot.buffer, slot.byteOffset + 8, n);
      view.set(v);
      return view;
    });
    out.fill(0);
    arena.begin(inSlot[0]!, inSlot[1]!);
    arena.add(inSlot[2]!, 3);
    arena.store(out);
    assert.deepEqual(out, want, `length ${n}, in slots`);
  }
  assert.throws(() => arena.slot(3), { name: 'RangeError', message: 'slot 3 of 3' });
});

test('bench reduce times the three reduction paths on bit-checked results and writes its JSON', async (t) => {
  if (skipOrFail(t, simdMissing)) return;
  const dir = mkdtempSync(join(tmpdir(), 'cirrus-bench-reduce-'));
  try {
    const r = await benchReduce({ floats: [SIMD_MIN_FLOATS + 5], world: 3, repeat: 3, resultsDir: dir });
    assert.equal(r.rows.length, 1);
    const row = r.rows[0]!;
    assert.equal(row.floats, SIMD_MIN_FLOATS + 5);
    assert.equal(row.world, 3);
    for (const k of ['jsUs', 'simdCopyUs', 'simdSlotsUs'] as const) assert.ok(row[k] > 0, `${k} = ${row[k]}`);
    assert.match(r.table, /JS loops us/);
    assert.deepEqual(JSON.parse(readFileSync(r.file, 'utf8')).rows, r.rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Flips the lowest mantissa bit of the last float: the smallest corruption a bit check must see. */
function flipLastBit(v: Float32Array): void {
  const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
  bits[bits.length - 1]! ^= 1;
}

function hasSlots(arena: SimdArena): boolean {
  try {
    arena.slot(0);
    return true;
  } catch {
    return false;
  }
}

test('bench reduce fails, naming the variant and the float, when any path returns one wrong bit', async (t) => {
  if (skipOrFail(t, simdMissing)) return;
  const n = SIMD_MIN_FLOATS + 5;
  const dir = mkdtempSync(join(tmpdir(), 'cirrus-bench-reduce-'));
  const { result } = OrderedReducer.prototype;
  const { store } = SimdArena.prototype;
  // Each case corrupts one path only: the JS loops' result (no arena), the pooled arena the
  // copied-in path sums in, or the bench's own arena whose receive slots the in-slot path uses.
  const cases: Array<[string, () => void]> = [
    ['js', () => {
      OrderedReducer.prototype.result = function (this: OrderedReducer) {
        const out = result.call(this);
        if (!(this as unknown as { simd?: SimdArena }).simd) flipLastBit(out);
        return out;
      };
    }],
    ['simd-copy', () => {
      SimdArena.prototype.store = function (this: SimdArena, out: Float32Array) {
        store.call(this, out);
        if (!hasSlots(this)) flipLastBit(out);
      };
    }],
    ['simd-slots', () => {
      SimdArena.prototype.store = function (this: SimdArena, out: Float32Array) {
        store.call(this, out);
        if (hasSlots(this)) flipLastBit(out);
      };
    }],
  ];
  try {
    for (const [variant, corrupt] of cases) {
      corrupt();
      try {
        await assert.rejects(benchReduce({ floats: [n], world: 3, repeat: 1, resultsDir: dir }), (e: unknown) => {
          assert.match((e as Error).message, new RegExp(`^bench reduce: ${variant} differs from the plain loop at n = ${n}: float ${n - 1} is `));
          return true;
        });
      } finally {
        OrderedReducer.prototype.result = result;
        SimdArena.prototype.store = store;
      }
    }
    assert.deepEqual(readdirSync(dir), [], 'no results file for a failed check');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
