/**
 * Parameter server model, session and admin ops against real servers: in-process for exact state
 * checks, and child processes (main.js) for the CLI flags. Optimizer results are compared with
 * reference computations written here with the same float32 stores in the same order, so equality
 * is exact.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  FrameDecoder,
  type Frame,
  Op,
  ParamClient,
  type ParamServer,
  type ParamServerOptions,
  type SnapshotStoreLike,
  Status,
  encodeHeader,
  startParamServer,
} from '../paramserver/index.js';
import { type ModelConfig, ParamModel } from '../paramserver/model.js';
import { openSnapshotStore } from '../paramserver/snapshot.js';
import { PsChannel } from '../channels/adapters/ps/index.js';
import { parseChannelUrl, type PsSpec } from '../channels/spec.js';

const MAIN = fileURLToPath(new URL('../paramserver/main.js', import.meta.url));
const TOKEN = 'correct horse battery staple 7f3a';

async function rejectsWithCode(p: Promise<unknown>, code: string, message?: string | RegExp): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Error, 'expected an Error');
    assert.equal((err as { code?: unknown }).code, code, `expected code ${code}, got: ${err.message}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected a rejection with code ${code}`);
}

/** Runs `body` against a fresh in-process server and client; both are always cleaned up. */
async function withServer(opts: ParamServerOptions, body: (server: ParamServer, c: ParamClient) => Promise<void>, clientToken?: string): Promise<void> {
  const server = await startParamServer(opts);
  const c = await ParamClient.connect(server.address, clientToken === undefined ? {} : { token: clientToken });
  try {
    await body(server, c);
  } finally {
    await c.close();
    await server.stop();
  }
}

function sgd(size: number, learningRate: number, extra: Partial<ModelConfig['optimizer']> = {}, sync: ModelConfig['sync'] = { mode: 'async' }): ModelConfig {
  return { size, optimizer: { type: 'sgd', learningRate, ...extra }, sync };
}

/** Polls `read` until it returns `want` or 5 s pass (server-side effects of a close are asynchronous). */
async function eventually<T>(read: () => T | Promise<T>, want: T): Promise<void> {
  const deadline = Date.now() + 5_000;
  let got = await read();
  while (got !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    got = await read();
  }
  assert.equal(got, want);
}

describe('model ops', () => {
  test('CREATE_MODEL, PUSH, PULL_SPARSE, PULL_FULL and DROP_MODEL round trip, with exact STATS', async () => {
    await withServer({}, async (server, c) => {
      const cfg = sgd(4, 0.5);
      assert.equal(await c.createModel('m', cfg, Float32Array.of(1, 2, 3, 4)), true);
      // Identical config (keys in another order): joins the model, keeps its weights.
      assert.equal(await c.createModel('m', { sync: { mode: 'async' }, optimizer: { learningRate: 0.5, type: 'sgd' }, size: 4 }), false);
      await rejectsWithCode(
        c.createModel('m', sgd(4, 0.25)),
        'PS_CONFLICT',
        `CREATE_MODEL 'm' on parameter server at ${server.address} failed: CONFLICT: CREATE_MODEL: model 'm' exists with a different config: {"optimizer":{"learningRate":0.5,"type":"sgd"},"size":4,"sync":{"mode":"async"}}`,
      );
      assert.equal(await c.push('m', { rank: 0, clock: 0, values: Float32Array.of(2, 2, 2, 2) }), 1);
      assert.equal(await c.push('m', { rank: 0, clock: 1, indices: Uint32Array.of(3, 0), values: Float32Array.of(4, -2) }), 2);
      const full = await c.pullFull('m');
      assert.deepEqual(full, { clock: 2, values: Float32Array.of(1, 1, 2, 1) });
      const sparse = await c.pullSparse('m', Uint32Array.of(3, 3, 0));
      assert.deepEqual(sparse, { clock: 2, values: Float32Array.of(1, 1, 1) });
      const s = await c.stats();
      assert.equal(s.models, 1);
      assert.equal(s.updatesApplied, 2);
      assert.equal(s.parkedPulls, 0);
      // 4 weights + sgd (no state) + sparse scratch (4 f32 + 4 u8 = 1.25 per weight).
      assert.equal(s.modelFloats, 9);
      assert.equal(s.ops.create_model, 3);
      assert.equal(s.ops.push, 2);
      assert.equal(s.ops.pull_full, 1);
      assert.equal(s.ops.pull_sparse, 1);
      assert.equal(s.replies.conflict, 1);
      assert.equal(await c.dropModel('m'), true);
      assert.equal(await c.dropModel('m'), false);
      await rejectsWithCode(c.pullFull('m'), 'PS_NOT_FOUND', /NOT_FOUND: PULL_FULL: no model named 'm'$/);
      assert.equal((await c.stats()).modelFloats, 0);
    });
  });

  test('100 pipelined PUSH/PULL pairs on one connection come back in order with the right values', async () => {
    await withServer({}, async (_server, c) => {
      await c.createModel('pipe', sgd(4, 1));
      const pushes: Promise<number>[] = [];
      const pulls: Promise<{ clock: number; values: Float32Array }>[] = [];
      for (let i = 0; i < 100; i++) {
        pushes.push(c.push('pipe', { rank: 0, clock: i, indices: Uint32Array.of(i % 4), values: Float32Array.of(-(i + 1)) }));
        pulls.push(c.pullSparse('pipe', Uint32Array.of(0, 1, 2, 3)));
      }
      assert.equal(c.inFlight, 200);
      assert.deepEqual(await Promise.all(pushes), Array.from({ length: 100 }, (_, i) => i + 1));
      const expected = new Float32Array(4);
      const got = await Promise.all(pulls);
      got.forEach((r, i) => {
        expected[i % 4] = expected[i % 4]! + (i + 1);
        assert.equal(r.clock, i + 1, `clock of pull ${i}`);
        assert.deepEqual(r.values, expected, `values of pull ${i}`);
      });
    });
  });

  test('bad indices, lengths and values are refused naming the problem, and nothing is applied', async () => {
    await withServer({}, async (server, c) => {
      await c.createModel('r', sgd(4, 1), Float32Array.of(1, 2, 3, 4));
      const at = `on parameter server at ${server.address} failed`;
      await rejectsWithCode(
        c.push('r', { rank: 0, clock: 0, indices: Uint32Array.of(1, 10), values: Float32Array.of(1, 1) }),
        'PS_RANGE',
        `PUSH to 'r' ${at}: RANGE: PUSH: index 10 at position 1 is out of range for a model of size 4`,
      );
      await rejectsWithCode(c.push('r', { rank: 0, clock: 0, values: Float32Array.of(1, 1, 1) }), 'PS_BAD_REQUEST', `PUSH to 'r' ${at}: BAD_REQUEST: PUSH: dense gradient has 3 values, the model size is 4`);
      await rejectsWithCode(c.push('r', { rank: 0, clock: 0, indices: Uint32Array.of(2), values: Float32Array.of(NaN) }), 'PS_BAD_REQUEST', /gradient value at position 0 \(index 2\) is NaN$/);
      await rejectsWithCode(c.pullSparse('r', Uint32Array.of(0, 4)), 'PS_RANGE', /RANGE: PULL_SPARSE: index 4 at position 1 is out of range for a model of size 4$/);
      await rejectsWithCode(c.createModel('bad', { ...sgd(4, 1), size: 0 }), 'PS_BAD_REQUEST', /config\.size: expected an integer in \[1, 1073741824\]$/);
      await rejectsWithCode(c.createModel('bad', sgd(3, 1), Float32Array.of(1, 2)), 'PS_BAD_REQUEST', /initial weights of model 'bad' have 2 values, the model size is 3$/);
      // Truncated and trailing payloads, by hand.
      const short = await c.call(Op.PUSH, [Uint8Array.of(1, 0, 114, 0, 0)]);
      assert.equal(short.status, Status.BAD_REQUEST);
      assert.match(new TextDecoder().decode(short.payload), /^PUSH: truncated payload: rank needs 4 bytes at offset 3, only 2 left$/);
      assert.deepEqual(await c.pullFull('r'), { clock: 0, values: Float32Array.of(1, 2, 3, 4) });
      assert.equal(server.stats().updatesApplied, 0);
    });
  });

  test('model memory is bounded by maxModelFloats', async () => {
    await withServer({ maxModelFloats: 100 }, async (_server, c) => {
      await c.createModel('a', sgd(40, 1)); // 40 * 2.25 = 90 floats
      await rejectsWithCode(c.createModel('b', sgd(8, 1)), 'PS_TOO_LARGE', /model 'b' needs 18 floats, which would bring the server to 108, over its bound of 100$/);
      await c.dropModel('a');
      await c.createModel('b', sgd(8, 1));
    });
  });
});

describe('optimizers through the server equal a reference computation', () => {
  test('sgd with l2, dense and sparse pushes (duplicates summed), exact float32', async () => {
    await withServer({}, async (_server, c) => {
      const lr = 0.1;
      const l2 = 0.01;
      const init = Float32Array.of(0.5, -1.25, 2, 0.3, -0.7);
      await c.createModel('sgd', sgd(5, lr, { l2 }), init);
      const w = Float32Array.from(init);
      const step = (i: number, g: number) => {
        w[i] = w[i]! - lr * (g + l2 * w[i]!);
      };
      const dense = Float32Array.of(0.3, -0.2, 0.11, 1.7, -0.05);
      await c.push('sgd', { rank: 0, clock: 0, values: dense });
      for (let i = 0; i < 5; i++) step(i, dense[i]!);
      const idx = Uint32Array.of(4, 1, 4);
      const vals = Float32Array.of(0.25, 0.6, 0.125);
      await c.push('sgd', { rank: 0, clock: 1, indices: idx, values: vals });
      const sum = new Float32Array(5);
      for (let k = 0; k < 3; k++) sum[idx[k]!] = sum[idx[k]!]! + vals[k]!;
      step(4, sum[4]!);
      step(1, sum[1]!);
      assert.deepEqual((await c.pullFull('sgd')).values, w);
    });
  });

  test('adam, three pushes with per-coordinate step counts, exact float32', async () => {
    await withServer({}, async (_server, c) => {
      const [lr, b1, b2, eps] = [0.01, 0.9, 0.999, 1e-8];
      await c.createModel('adam', { size: 3, optimizer: { type: 'adam', learningRate: lr }, sync: { mode: 'async' } }, Float32Array.of(1, 2, 3));
      const w = Float32Array.of(1, 2, 3);
      const m = new Float32Array(3);
      const v = new Float32Array(3);
      const t = new Uint32Array(3);
      const step = (i: number, g: number) => {
        t[i] = t[i]! + 1;
        const mi = b1 * m[i]! + (1 - b1) * g;
        const vi = b2 * v[i]! + (1 - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        w[i] = w[i]! - (lr * (mi / (1 - b1 ** t[i]!))) / (Math.sqrt(vi / (1 - b2 ** t[i]!)) + eps);
      };
      const g1 = Float32Array.of(0.5, -0.25, 2);
      await c.push('adam', { rank: 0, clock: 0, values: g1 });
      g1.forEach((g, i) => step(i, g));
      await c.push('adam', { rank: 0, clock: 1, indices: Uint32Array.of(2), values: Float32Array.of(-1.5) });
      step(2, Math.fround(-1.5));
      const g3 = Float32Array.of(0.1, 0.2, 0.3);
      await c.push('adam', { rank: 0, clock: 2, values: g3 });
      g3.forEach((g, i) => step(i, g));
      assert.deepEqual((await c.pullFull('adam')).values, w);
      assert.deepEqual(Array.from(t), [2, 2, 3]);
    });
  });
});

describe('sync modes', () => {
  test('bsp: W=3 pushes are summed and applied once; a pull for the next round parks until the last push', async () => {
    await withServer({}, async (server, c) => {
      const lr = 0.5;
      await c.createModel('bsp', sgd(3, lr, {}, { mode: 'bsp', workers: 3 }), Float32Array.of(1, 1, 1));
      const other = await ParamClient.connect(server.address);
      try {
        const g = [Float32Array.of(0.1, 0.2, 0.3), Float32Array.of(1, 0, -1)];
        assert.equal(await c.push('bsp', { rank: 0, clock: 0, values: g[0]! }), 0);
        assert.equal(await c.push('bsp', { rank: 2, clock: 0, indices: Uint32Array.of(0, 2), values: Float32Array.of(1, -1) }), 0);
        const parked = other.pullFull('bsp', { minClock: 1, timeoutMs: 30_000 });
        await other.ping();
        assert.equal(server.stats().parkedPulls, 1);
        assert.equal(server.stats().updatesApplied, 0);
        assert.deepEqual((await c.pullFull('bsp')).values, Float32Array.of(1, 1, 1), 'nothing applied before the round is complete');
        await rejectsWithCode(c.push('bsp', { rank: 0, clock: 0, values: g[0]! }), 'PS_CONFLICT', /CONFLICT: PUSH: rank 0 already pushed round 0$/);
        await rejectsWithCode(c.push('bsp', { rank: 1, clock: 5, values: g[0]! }), 'PS_CONFLICT', /CONFLICT: PUSH: BSP push of rank 1 is for round 5, but the current round is 0$/);
        await rejectsWithCode(c.push('bsp', { rank: 3, clock: 0, values: g[0]! }), 'PS_RANGE', /RANGE: PUSH: rank 3 is out of range for 3 workers$/);
        assert.equal(await c.push('bsp', { rank: 1, clock: 0, values: g[1]! }), 1);
        const acc = new Float32Array(3);
        for (const x of [g[0]!, Float32Array.of(1, 0, -1), g[1]!]) for (let i = 0; i < 3; i++) acc[i] = acc[i]! + x[i]!;
        const w = Float32Array.of(1, 1, 1);
        for (let i = 0; i < 3; i++) w[i] = w[i]! - lr * acc[i]!;
        assert.deepEqual(await parked, { clock: 1, values: w });
        assert.equal(server.stats().updatesApplied, 1);
        assert.equal(server.stats().parkedPulls, 0);
      } finally {
        await other.close();
      }
    });
  });

  test('bsp mean: sparse pushes averaged over W, only touched coordinates stepped', async () => {
    await withServer({}, async (_server, c) => {
      await c.createModel('mean', sgd(4, 1, { l2: 0.5 }, { mode: 'bsp', workers: 2, reduce: 'mean' }), Float32Array.of(1, 1, 1, 1));
      await c.push('mean', { rank: 1, clock: 0, indices: Uint32Array.of(3), values: Float32Array.of(0.3) });
      await c.push('mean', { rank: 0, clock: 0, indices: Uint32Array.of(1, 3), values: Float32Array.of(0.7, 0.1) });
      const acc = new Float32Array(4);
      acc[3] = acc[3]! + Math.fround(0.3);
      acc[1] = acc[1]! + Math.fround(0.7);
      acc[3] = acc[3]! + Math.fround(0.1);
      const w = Float32Array.of(1, 1, 1, 1);
      for (const i of [1, 3]) {
        const g = Math.fround(acc[i]! / 2);
        w[i] = w[i]! - 1 * (g + 0.5 * w[i]!);
      }
      assert.deepEqual(await c.pullFull('mean', { minClock: 1, timeoutMs: 1_000 }), { clock: 1, values: w });
    });
  });

  test('ssp: a pull parks until every rank reached its minClock; duplicate clocks conflict', async () => {
    await withServer({}, async (server, c) => {
      await c.createModel('ssp', sgd(2, 1, {}, { mode: 'ssp', workers: 2, staleness: 1 }));
      for (let k = 0; k < 3; k++) assert.equal(await c.push('ssp', { rank: 0, clock: k, values: Float32Array.of(1, 0) }), 0);
      await rejectsWithCode(c.push('ssp', { rank: 0, clock: 1, values: Float32Array.of(1, 0) }), 'PS_CONFLICT', /CONFLICT: PUSH: rank 0 already pushed clock 1 \(its next clock is 3\)$/);
      // Rank 0 is at clock 3; with staleness 1 it may run only while min clock >= 3 - 1 - 1 = 1.
      const parked = c.pullSparse('ssp', Uint32Array.of(0, 1), { minClock: 1, timeoutMs: 30_000 });
      await c.ping();
      assert.equal(server.stats().parkedPulls, 1);
      assert.equal(await c.push('ssp', { rank: 1, clock: 0, values: Float32Array.of(0, 2) }), 1);
      assert.deepEqual(await parked, { clock: 1, values: Float32Array.of(-3, -2) });
    });
  });

  test('parked pulls: TIMEOUT after their deadline, dropped with their connection, bounded per connection, NOT_FOUND on drop', async () => {
    await withServer({ maxParkedPulls: 2 }, async (server, c) => {
      await c.createModel('p', sgd(1, 1, {}, { mode: 'bsp', workers: 2 }));
      await rejectsWithCode(c.pullFull('p', { minClock: 5, timeoutMs: 50 }), 'PS_TIMEOUT', /TIMEOUT: model 'p' is at clock 0, short of 5, after 50 ms$/);
      await rejectsWithCode(c.pullFull('p', { minClock: 1, timeoutMs: 0 }), 'PS_TIMEOUT', /short of 1, after 0 ms$/);

      const leaver = await ParamClient.connect(server.address);
      const a = leaver.pullFull('p', { minClock: 1, timeoutMs: 30_000 }).catch((e: unknown) => e);
      const b = leaver.pullFull('p', { minClock: 1, timeoutMs: 30_000 }).catch((e: unknown) => e);
      await rejectsWithCode(leaver.pullFull('p', { minClock: 1, timeoutMs: 30_000 }), 'PS_TOO_LARGE', /this connection already has 2 pulls parked/);
      assert.equal(server.stats().parkedPulls, 2);
      await leaver.close();
      await Promise.all([a, b]);
      await eventually(() => server.stats().parkedPulls, 0);

      const dropped = rejectsWithCode(c.pullSparse('p', Uint32Array.of(0), { minClock: 1, timeoutMs: 30_000 }), 'PS_NOT_FOUND', /model 'p' was dropped while the pull was parked$/);
      const other = await ParamClient.connect(server.address);
      await c.ping();
      assert.equal(await other.dropModel('p'), true);
      await dropped;
      await other.close();
    });
  });

  test('stop() answers parked pulls with SHUTTING_DOWN', async () => {
    const server = await startParamServer();
    const c = await ParamClient.connect(server.address);
    await c.createModel('s', sgd(1, 1, {}, { mode: 'bsp', workers: 2 }));
    const parked = rejectsWithCode(c.pullFull('s', { minClock: 1, timeoutMs: 30_000 }), 'PS_SHUTTING_DOWN');
    await c.ping();
    await server.stop();
    await parked;
    await c.close();
  });
});

describe('registration', () => {
  test('a (task, rank, generation) registers once, ever: CONFLICT after a duplicate and after deregister', async () => {
    await withServer({ maxRegistrations: 3 }, async (server, c) => {
      const at = `on parameter server at ${server.address} failed`;
      await c.register('job/a', 0, 0);
      await rejectsWithCode(c.register('job/a', 0, 0), 'PS_CONFLICT', `REGISTER 'job/a' rank 0 generation 0 ${at}: CONFLICT: REGISTER: task 'job/a' rank 0 generation 0 is already registered`);
      assert.equal(await c.deregister('job/a', 0, 0), true);
      assert.equal(await c.deregister('job/a', 0, 0), false);
      await rejectsWithCode(c.register('job/a', 0, 0), 'PS_CONFLICT', /task 'job\/a' rank 0 generation 0 was registered before and has deregistered$/);
      await c.register('job/a', 0, 1);
      await c.register('job/b', 0, 0);
      assert.equal((await c.stats()).registrations, 3);
      await rejectsWithCode(c.register('job/c', 0, 0), 'PS_TOO_LARGE', /the server holds 3 registrations, its bound/);
      assert.equal(await c.forgetTask('job/a'), 2);
      assert.equal(await c.forgetTask('job/a'), 0);
      assert.equal(server.stats().registrations, 1);
      await c.register('job/a', 0, 0);
    });
  });
});

/** A TCP relay that records every byte in both directions. */
async function recordingProxy(target: string): Promise<{ address: string; bytes(): Buffer; close(): Promise<void> }> {
  const [host, port] = target.split(':') as [string, string];
  const seen: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((inbound) => {
    const outbound = net.connect({ host, port: Number(port) });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    inbound.on('data', (d: Buffer) => {
      seen.push(Buffer.from(d));
      outbound.write(d);
    });
    outbound.on('data', (d: Buffer) => {
      seen.push(Buffer.from(d));
      inbound.write(d);
    });
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    bytes: () => Buffer.concat(seen),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        proxy.close(() => resolve());
      }),
  };
}

describe('authentication', () => {
  test('the right token works, the token never crosses the wire, and the server proves itself', async () => {
    const server = await startParamServer({ token: TOKEN });
    const proxy = await recordingProxy(server.address);
    try {
      const c = await ParamClient.connect(proxy.address, { token: TOKEN });
      await c.set('auth/k', Uint8Array.of(1, 2));
      assert.deepEqual(await c.get('auth/k'), Uint8Array.of(1, 2));
      await c.createModel('auth-m', sgd(2, 1));
      await c.close();
      const wire = proxy.bytes();
      assert.ok(wire.length > 100, `recorded only ${wire.length} bytes`);
      assert.equal(wire.indexOf(Buffer.from(TOKEN)), -1, 'the token appears on the wire');
      assert.equal(wire.indexOf(Buffer.from(TOKEN, 'utf16le')), -1);
      // The PsChannel passes its spec's token too.
      const ch = await PsChannel.open(parseChannelUrl(`ps://${proxy.address}?token=${encodeURIComponent(TOKEN)}`) as PsSpec);
      await ch.put('job/auth/x', Uint8Array.of(9));
      assert.deepEqual(await ch.get('job/auth/x'), Uint8Array.of(9));
      await ch.close();
      assert.equal(proxy.bytes().indexOf(Buffer.from(TOKEN)), -1);
    } finally {
      await proxy.close();
      await server.stop();
    }
  });

  test('a wrong token is refused and its connection closed; unauthenticated ops get UNAUTHORIZED; PING stays open', async () => {
    const logs: string[] = [];
    const server = await startParamServer({ token: TOKEN, log: (l) => logs.push(l) });
    try {
      await rejectsWithCode(
        ParamClient.connect(server.address, { token: 'not the token' }),
        'PS_UNAUTHORIZED',
        `AUTH on parameter server at ${server.address} failed: UNAUTHORIZED: AUTH: authentication failed: wrong token`,
      );
      assert.ok(logs.some((l) => /AUTH failed: authentication failed: wrong token; closing the connection$/.test(l)), logs.join('\n'));

      const anon = await ParamClient.connect(server.address);
      await anon.ping();
      await rejectsWithCode(
        anon.set('k', Uint8Array.of(1)),
        'PS_UNAUTHORIZED',
        `SET 'k' on parameter server at ${server.address} failed: UNAUTHORIZED: SET: this server requires authentication: send HELLO, then AUTH with the token's HMAC`,
      );
      await rejectsWithCode(anon.createModel('m', sgd(1, 1)), 'PS_UNAUTHORIZED');
      await rejectsWithCode(anon.shutdown(), 'PS_UNAUTHORIZED');
      await anon.ping();
      // AUTH without HELLO: refused and the connection is closed.
      const r = await anon.call(Op.AUTH, [new Uint8Array(64)]);
      assert.equal(r.status, Status.UNAUTHORIZED);
      assert.equal(new TextDecoder().decode(r.payload), 'AUTH: AUTH must follow a HELLO on the same connection');
      await anon.whenClosed();
      assert.equal(server.stats().replies.unauthorized, 5);
      assert.equal(server.stats().keys, 0);
    } finally {
      await server.stop();
    }
  });

  test('a client with a token refuses a server without one; a tokenless server refuses non-loopback hosts', async () => {
    const open = await startParamServer();
    try {
      await rejectsWithCode(
        ParamClient.connect(open.address, { token: TOKEN }),
        'PS_UNAUTHORIZED',
        `parameter server at ${open.address} does not require a token, so it cannot prove it knows ours; refusing to use it with a token`,
      );
    } finally {
      await open.stop();
    }
    await rejectsWithCode(
      startParamServer({ host: '0.0.0.0' }),
      'PS_ARGUMENT',
      "refusing to listen on non-loopback host '0.0.0.0' without a token: anyone who can reach it could read and overwrite models (pass a token, or bind 127.0.0.1)",
    );
    const withToken = await startParamServer({ host: '0.0.0.0', token: TOKEN });
    await withToken.stop();
  });

  test('main.js takes the token from --token or CIRRUS_PS_TOKEN and refuses 0.0.0.0 without one', async () => {
    const refused = spawn(process.execPath, [MAIN, '--host', '0.0.0.0', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CIRRUS_PS_TOKEN: '' } });
    let err = '';
    refused.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const [code] = (await once(refused, 'exit')) as [number];
    assert.equal(code, 2);
    assert.match(err, /refusing to listen on non-loopback host '0\.0\.0\.0' without a token/);

    for (const [args, env] of [
      [['--token', TOKEN], {}],
      [[], { CIRRUS_PS_TOKEN: TOKEN }],
    ] as const) {
      const child = await startChild([...args], env);
      try {
        const c = await ParamClient.connect(child.address, { token: TOKEN });
        await c.ping();
        await c.set('x', Uint8Array.of(1));
        await c.close();
        const anon = await ParamClient.connect(child.address);
        await rejectsWithCode(anon.get('x'), 'PS_UNAUTHORIZED');
        await anon.close();
      } finally {
        await stopChild(child);
      }
    }
  });
});

interface Child {
  proc: ChildProcess;
  address: string;
  stderr(): string;
}

async function startChild(args: string[], env: Record<string, string> = {}): Promise<Child> {
  const proc = spawn(process.execPath, [MAIN, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CIRRUS_PS_TOKEN: '', ...env } });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`paramserver did not listen within 10 s: ${stderr}`)), 10_000);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^listening (\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`paramserver exited with ${code} before listening: ${stderr}`)));
  });
  return { proc, address, stderr: () => stderr };
}

async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = once(child.proc, 'exit');
  child.proc.kill('SIGTERM');
  await exited;
}

/** An in-memory store, to check the server's snapshot plumbing apart from the file/S3 stores. */
class MemoryStore implements SnapshotStoreLike {
  saved: Array<{ id: string; bytes: Map<string, Uint8Array> }> = [];
  /** The `keep` of each prune call, and how many snapshots were saved when it came. */
  prunes: Array<{ keep: number; saved: number }> = [];
  private count = 0;
  async prune(keep: number): Promise<void> {
    this.prunes.push({ keep, saved: this.count });
    this.saved = this.saved.slice(-keep);
  }
  async save(models: Map<string, ParamModel>): Promise<string> {
    const bytes = new Map([...models].map(([n, m]) => [n, m.serialize()]));
    const id = `snap-${this.count++}`;
    await new Promise((r) => setTimeout(r, 5));
    this.saved.push({ id, bytes });
    return id;
  }
  async loadNewest(): Promise<{ id: string; models: Map<string, ParamModel> } | undefined> {
    const last = this.saved.at(-1);
    if (!last) return undefined;
    return { id: last.id, models: new Map([...last.bytes].map(([n, b]) => [n, ParamModel.deserialize(b)])) };
  }
}

describe('snapshots and shutdown', () => {
  test('SNAPSHOT replies the id; restore brings back weights, optimizer state and clocks', async () => {
    const store = new MemoryStore();
    await withServer({ snapshots: { store } }, async (_server, c) => {
      await c.createModel('a', { size: 2, optimizer: { type: 'adam', learningRate: 0.1 }, sync: { mode: 'async' } });
      await c.createModel('b', sgd(2, 1, {}, { mode: 'bsp', workers: 2 }));
      await c.push('a', { rank: 0, clock: 0, values: Float32Array.of(1, -1) });
      for (const rank of [0, 1]) await c.push('b', { rank, clock: 0, values: Float32Array.of(1, 2) });
      assert.equal(await c.snapshot(), 'snap-0');
    });
    const before = await store.loadNewest();
    assert.deepEqual([...before!.models.keys()], ['a', 'b']);
    await withServer({ snapshots: { store }, restore: true }, async (server, c) => {
      assert.equal(server.stats().models, 2);
      assert.deepEqual(await c.pullFull('b'), { clock: 1, values: Float32Array.of(-2, -4) });
      const a = await c.pullFull('a');
      assert.equal(a.clock, 1);
      // Same next step as an uninterrupted model: the adam state survived.
      const reference = before!.models.get('a')!;
      reference.applyDense(Float32Array.of(0.5, 0.5));
      await c.push('a', { rank: 0, clock: 1, values: Float32Array.of(0.5, 0.5) });
      assert.deepEqual((await c.pullFull('a')).values, reference.weights);
      // BSP resumes at round 1.
      await rejectsWithCode(c.push('b', { rank: 0, clock: 0, values: Float32Array.of(1, 1) }), 'PS_CONFLICT', /for round 0, but the current round is 1$/);
    });
  });

  test('SNAPSHOT without a store is BAD_REQUEST; periodic snapshots run every everyMs and prune to the newest keep', async () => {
    await withServer({}, async (_server, c) => {
      await rejectsWithCode(c.snapshot(), 'PS_BAD_REQUEST', /BAD_REQUEST: SNAPSHOT: snapshots are not configured on this server/);
    });
    const store = new MemoryStore();
    await withServer({ snapshots: { store, everyMs: 20, keep: 2 } }, async (_server, c) => {
      await c.createModel('p', sgd(1, 1));
      await eventually(() => store.prunes.length >= 4, true);
    });
    // Every save is followed by a prune to the newest `keep`, so the store never grows past it.
    assert.deepEqual(store.prunes.slice(0, 4), [1, 2, 3, 4].map((saved) => ({ keep: 2, saved })));
    assert.ok(store.saved.length <= 2);
  });

  test('SHUTDOWN snapshots, replies OK with the id, then stops; later requests get SHUTTING_DOWN', async () => {
    const store = new MemoryStore();
    const server = await startParamServer({ snapshots: { store } });
    const c = await ParamClient.connect(server.address);
    await c.createModel('z', sgd(1, 1), Float32Array.of(7));
    const reply = c.shutdown();
    const late = c.ping().catch((e: unknown) => e);
    assert.equal(await reply, 'snap-0');
    const lateErr = (await late) as { code?: string };
    assert.ok(lateErr.code === 'PS_SHUTTING_DOWN' || lateErr.code === 'PS_CONNECTION', String(lateErr.code));
    await server.whenStopped();
    await c.whenClosed();
    assert.deepEqual((await store.loadNewest())!.models.get('z')!.weights, Float32Array.of(7));
  });

  test('main.js: --snapshot file:// with SHUTDOWN, then --restore in a new process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ps-snap-'));
    const url = pathToFileURL(dir).href;
    try {
      const first = await startChild(['--snapshot', url]);
      const c = await ParamClient.connect(first.address);
      await c.createModel('m', sgd(3, 0.5), Float32Array.of(1, 2, 3));
      await c.push('m', { rank: 0, clock: 0, indices: Uint32Array.of(1), values: Float32Array.of(2) });
      const id = await c.shutdown();
      assert.match(id, /\S/);
      const [code] = (await once(first.proc, 'exit')) as [number];
      assert.equal(code, 0);
      await c.close();

      const second = await startChild(['--snapshot', url, '--restore']);
      try {
        const d = await ParamClient.connect(second.address);
        assert.deepEqual(await d.pullFull('m'), { clock: 1, values: Float32Array.of(1, 1, 3) });
        await d.close();
        assert.match(second.stderr(), new RegExp(`restore: loaded snapshot ${id} with 1 models`));
      } finally {
        await stopChild(second);
      }
      // A store is read with the other helper's own API too.
      const store = await openSnapshotStore(url);
      assert.equal((await store.loadNewest())!.id, id);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('hardening', () => {
  test('rejected requests are logged through the log option and the server keeps serving', async () => {
    const logs: string[] = [];
    await withServer({ log: (l) => logs.push(l), maxFrameBytes: 1024 }, async (server, c) => {
      const r = await c.call(99, [Uint8Array.of(1)]);
      assert.equal(r.status, Status.UNKNOWN_OP);
      assert.ok(logs.some((l) => l.endsWith(': UNKNOWN_OP: unknown opcode 99')), logs.join('\n'));
      // A raw oversize header: TOO_LARGE, logged, connection closed.
      const raw = net.connect({ host: '127.0.0.1', port: server.port });
      await once(raw, 'connect');
      const decoder = new FrameDecoder();
      const frames: Frame[] = [];
      raw.on('data', (d: Buffer) => {
        decoder.push(d);
        for (let f = decoder.next(); f; f = decoder.next()) frames.push(f);
      });
      raw.write(encodeHeader(5, Op.PUSH, 5000));
      await once(raw, 'close');
      assert.equal(frames[0]?.code, Status.TOO_LARGE);
      assert.ok(logs.some((l) => /frame of 5006 bytes exceeds the limit of 1024 bytes; closing the connection$/.test(l)), logs.join('\n'));
      await c.ping();
    });
  });
});

before(() => {
  // Fail fast if a build left the optional snapshot module out.
  assert.equal(typeof openSnapshotStore, 'function');
});
after(() => {});
