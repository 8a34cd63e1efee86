/**
 * Parameter server: the wire protocol against a server in a child process (so a crash shows up as
 * a dead process, not a failed assertion somewhere else), and the `ps` channel in-process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomFillSync } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  FrameDecoder,
  type Frame,
  Op,
  PAYLOAD_BYTE_OFFSET,
  ParamClient,
  type ParamServer,
  PsError,
  Status,
  encodeHeader,
  encodeKey,
  encodeWait,
  startParamServer,
} from '../paramserver/index.js';
import { PsChannel } from '../channels/adapters/ps/index.js';
import { ChannelError, WaitTimeoutError } from '../channels/errors.js';
import { parseChannelUrl, type PsSpec } from '../channels/spec.js';
import { sameBytes } from './support/data.js';

const MAIN = fileURLToPath(new URL('../paramserver/main.js', import.meta.url));
const MiB = 1024 * 1024;
const text = new TextEncoder();
const untext = new TextDecoder();

interface Child {
  proc: ChildProcess;
  address: string;
}

async function startChild(args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [MAIN, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^listening (\S+)$/m.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`paramserver exited with ${code} before listening: ${stderr}`)));
    proc.once('error', reject);
  });
  return { proc, address };
}

async function stopChild(child: Child): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = once(child.proc, 'exit');
  child.proc.kill('SIGTERM');
  await exited;
}

/** A port nothing listens on (bound then released). */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A bare socket that sends hand-made bytes and reads back decoded frames. */
class RawConn {
  private readonly decoder = new FrameDecoder();
  private readonly frames: Frame[] = [];
  private readonly wakers: Array<() => void> = [];
  ended = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      for (let f = this.decoder.next(); f; f = this.decoder.next()) this.frames.push(f);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }
  static async open(address: string): Promise<RawConn> {
    const [host, port] = address.split(':') as [string, string];
    const socket = net.connect({ host, port: Number(port) });
    await once(socket, 'connect');
    return new RawConn(socket);
  }
  send(...parts: Uint8Array[]): void {
    for (const p of parts) this.socket.write(p);
  }
  /** The next frame, or 'closed' if the server closed the connection first. */
  async next(): Promise<Frame | 'closed'> {
    for (;;) {
      const f = this.frames.shift();
      if (f) return f;
      if (this.ended) return 'closed';
      await new Promise<void>((resolve) => this.wakers.push(resolve));
    }
  }
  async closed(): Promise<void> {
    while (!this.ended) await new Promise<void>((resolve) => this.wakers.push(resolve));
  }
  destroy(): void {
    this.socket.destroy();
  }
  private wake(): void {
    for (const w of this.wakers.splice(0)) w();
  }
}

function frame(id: number, code: number, ...parts: Uint8Array[]): Uint8Array {
  const size = parts.reduce((n, p) => n + p.byteLength, 0);
  return Buffer.concat([encodeHeader(id, code, size), ...parts]);
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 64 * 1024) randomFillSync(out, at, Math.min(64 * 1024, n - at));
  return out;
}

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Error, 'expected an Error');
    assert.equal((err as { code?: unknown }).code, code, `expected code ${code}, got: ${err.message}`);
    return err;
  }
  assert.fail(`expected a rejection with code ${code}`);
}

describe('paramserver protocol (server in a child process)', () => {
  let child: Child;
  const clients: ParamClient[] = [];
  const connect = async (): Promise<ParamClient> => {
    const c = await ParamClient.connect(child.address, { timeoutMs: 10_000 });
    clients.push(c);
    return c;
  };

  before(async () => {
    child = await startChild(['--max-frame-bytes', String(40 * MiB)]);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stopChild(child);
  });

  test('PING, SET, GET, DEL and LIST', async () => {
    const c = await connect();
    await c.ping();
    const echo = await c.call(Op.PING, [text.encode('hello')]);
    assert.equal(echo.status, Status.OK);
    assert.equal(untext.decode(echo.payload), 'hello');

    await c.set('kv/a', Uint8Array.of(1, 2, 3));
    await c.set('kv/b', new Uint8Array(0));
    await c.set('kv/c/ü', Uint8Array.of(9));
    await c.set('other', Uint8Array.of(7));
    assert.deepEqual(await c.get('kv/a'), Uint8Array.of(1, 2, 3));
    assert.deepEqual(await c.get('kv/b'), new Uint8Array(0));
    assert.deepEqual(await c.get('kv/c/ü'), Uint8Array.of(9));
    assert.equal(await c.get('kv/missing'), undefined);

    await c.set('kv/a', Uint8Array.of(4));
    assert.deepEqual(await c.get('kv/a'), Uint8Array.of(4));

    assert.deepEqual(await c.list('kv/'), ['kv/a', 'kv/b', 'kv/c/ü']);
    assert.deepEqual(await c.list('nothing/'), []);
    assert.ok((await c.list('')).includes('other'));

    assert.equal(await c.del(['kv/a', 'kv/b', 'kv/missing']), 2);
    assert.equal(await c.get('kv/a'), undefined);
    assert.deepEqual(await c.list('kv/'), ['kv/c/ü']);
    assert.equal(await c.del(['kv/c/ü', 'other']), 2);
    assert.equal(await c.del([]), 0);
  });

  test('a GET value is 8-byte aligned, alone or behind other replies', async () => {
    const c = await connect();
    await c.set('align', new Uint8Array(24).fill(5));
    const v = await c.get('align');
    assert.ok(v);
    assert.equal(v.byteOffset, PAYLOAD_BYTE_OFFSET);
    // Several replies in one chunk: each value either in place at an aligned offset or copied.
    const many = await Promise.all([c.get('align'), c.ping(), c.get('align'), c.get('align')]);
    for (const m of [many[0], many[2], many[3]]) {
      assert.equal(m!.byteOffset % 8, 0);
      assert.deepEqual(m, new Uint8Array(24).fill(5));
    }
    assert.equal(v.byteOffset % 8, 0);
    assert.deepEqual(new Float64Array(v.buffer, v.byteOffset, 3).length, 3);
    await c.del(['align']);
  });

  test('STATS counts keys, bytes, connections and ops exactly', async () => {
    const c = await connect();
    const s0 = await c.stats();
    await c.set('stats/x', new Uint8Array(10));
    await c.set('stats/y', new Uint8Array(5));
    await c.get('stats/x');
    await c.get('stats/none');
    await c.del(['stats/y']);
    await c.list('stats/');
    assert.equal(await c.wait('stats/x', 0).then((v) => v?.byteLength), 10);
    await c.ping();
    const s1 = await c.stats();
    assert.equal(s1.keys - s0.keys, 1);
    assert.equal(s1.bytesHeld - s0.bytesHeld, 10);
    assert.ok(s1.connections >= 1);
    assert.equal(s1.ops.set! - s0.ops.set!, 2);
    assert.equal(s1.ops.get! - s0.ops.get!, 2);
    assert.equal(s1.ops.del! - s0.ops.del!, 1);
    assert.equal(s1.ops.list! - s0.ops.list!, 1);
    assert.equal(s1.ops.wait! - s0.ops.wait!, 1);
    assert.equal(s1.ops.ping! - s0.ops.ping!, 1);
    assert.equal(s1.ops.stats! - s0.ops.stats!, 1);
    assert.equal(s1.replies.not_found! - s0.replies.not_found!, 1);
    await c.del(['stats/x']);
  });

  test('100 pipelined requests on one connection each get their own reply', async () => {
    const c = await connect();
    const n = 100;
    const sets = Array.from({ length: n }, (_, i) => c.set(`pipe/${i}`, Uint8Array.of(i, i >> 8, 42)));
    const gets = Array.from({ length: n }, (_, i) => c.get(`pipe/${i}`));
    const pings = Array.from({ length: n }, (_, i) => c.call(Op.PING, [text.encode(`ping ${i}`)]));
    assert.equal(c.inFlight, 3 * n);
    await Promise.all(sets);
    const values = await Promise.all(gets);
    values.forEach((v, i) => assert.deepEqual(v, Uint8Array.of(i, i >> 8, 42), `value of pipe/${i}`));
    const echoes = await Promise.all(pings);
    echoes.forEach((r, i) => assert.equal(untext.decode(r.payload), `ping ${i}`));
    assert.equal(c.inFlight, 0);
    assert.equal(await c.del(Array.from({ length: n }, (_, i) => `pipe/${i}`)), n);
  });

  test('WAIT: at once when present, on a later SET from another client, TIMEOUT otherwise', async () => {
    const a = await connect();
    const b = await connect();
    await b.set('wait/present', Uint8Array.of(1));
    assert.deepEqual(await a.wait('wait/present', 5_000), Uint8Array.of(1));

    const waited = a.wait('wait/later', 30_000);
    const second = a.wait('wait/later', 30_000);
    // Round trips on both connections so the WAITs are surely parked before the SET.
    await a.ping();
    assert.equal((await b.stats()).waiters, 2);
    await b.set('wait/later', Uint8Array.of(5, 6));
    assert.deepEqual(await waited, Uint8Array.of(5, 6));
    assert.deepEqual(await second, Uint8Array.of(5, 6));

    assert.equal(await a.wait('wait/never', 50), undefined);
    const raw = await a.call(Op.WAIT, [encodeWait('wait/never', 20)]);
    assert.equal(raw.status, Status.TIMEOUT);
    assert.equal(raw.payload.byteLength, 0);
    assert.equal((await b.stats()).waiters, 0);
    await b.del(['wait/present', 'wait/later']);
  });

  test('a parked WAIT lets later requests on the same connection complete first', async () => {
    const c = await connect();
    const order: string[] = [];
    const waited = c.wait('order/key', 30_000).then((v) => {
      order.push('wait');
      return v;
    });
    await c.set('order/other', Uint8Array.of(1)).then(() => order.push('set other'));
    await c.get('order/other').then(() => order.push('get other'));
    await c.set('order/key', Uint8Array.of(2));
    assert.deepEqual(await waited, Uint8Array.of(2));
    assert.deepEqual(order, ['set other', 'get other', 'wait']);
    await c.del(['order/key', 'order/other']);
  });

  test('WAITs of a closed connection are dropped', async () => {
    const a = await ParamClient.connect(child.address);
    const b = await connect();
    const pending = rejectsWithCode(a.wait('drop/key', 30_000), 'PS_CONNECTION');
    await a.ping();
    assert.equal((await b.stats()).waiters, 1);
    await a.close();
    await pending;
    // The server notices the close asynchronously; STATS until it has.
    let waiters = 1;
    for (let i = 0; i < 200 && waiters !== 0; i++) {
      waiters = (await b.stats()).waiters;
      if (waiters !== 0) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(waiters, 0);
    await b.set('drop/key', Uint8Array.of(1));
    await b.del(['drop/key']);
  });

  test('a 32 MiB value round-trips byte-exact', async () => {
    const c = await connect();
    const big = randomBytes(32 * MiB);
    await c.set('big/32', big);
    const back = await c.get('big/32');
    assert.equal(back?.byteLength, big.byteLength);
    assert.ok(sameBytes(back, big), '32 MiB value differs after the round trip');
    assert.equal(back!.byteOffset % 8, 0);
    const waited = await c.wait('big/32', 1_000);
    assert.ok(sameBytes(waited, big));
    assert.equal(await c.del(['big/32']), 1);
  });

  test('an oversize frame gets TOO_LARGE and the server keeps serving others', async () => {
    const c = await ParamClient.connect(child.address);
    const err = await rejectsWithCode(c.set('big/over', new Uint8Array(40 * MiB + 1)), 'PS_TOO_LARGE');
    assert.match(err.message, /exceeds the limit of 41943040 bytes/);
    await c.whenClosed();
    await rejectsWithCode(c.ping(), 'PS_CONNECTION');

    // A header declaring a huge frame, with no body: rejected from the header alone.
    const raw = await RawConn.open(child.address);
    const header = encodeHeader(77, Op.SET, 100 * MiB);
    raw.send(header);
    const reply = await raw.next();
    assert.notEqual(reply, 'closed');
    const f = reply as Frame;
    assert.equal(f.id, 77);
    assert.equal(f.code, Status.TOO_LARGE);
    assert.equal(await raw.next(), 'closed');

    const other = await connect();
    await other.set('after/too-large', Uint8Array.of(3));
    assert.deepEqual(await other.get('after/too-large'), Uint8Array.of(3));
    assert.equal(await other.get('big/over'), undefined);
    await other.del(['after/too-large']);
  });

  test('an unknown opcode gets UNKNOWN_OP and the connection stays usable', async () => {
    const c = await connect();
    const r = await c.call(200, [Uint8Array.of(1, 2, 3)]);
    assert.equal(r.status, Status.UNKNOWN_OP);
    assert.equal(untext.decode(r.payload), 'unknown opcode 200');
    await c.ping();
  });

  test('malformed payloads get BAD_REQUEST and the connection stays usable', async () => {
    const raw = await RawConn.open(child.address);
    const cases: Array<[number, Uint8Array, RegExp]> = [
      // GET whose key length says 100 but carries 3 bytes.
      [1, frame(1, Op.GET, Uint8Array.of(100, 0, 97, 98, 99)), /truncated payload/],
      [2, frame(2, Op.GET, Uint8Array.of(1)), /truncated payload/],
      [3, frame(3, Op.GET, Uint8Array.of(0, 0)), /key is empty/],
      [4, frame(4, Op.GET, encodeKey('k'), Uint8Array.of(0)), /trailing bytes/],
      [5, frame(5, Op.SET, Uint8Array.of(2, 0, 0xff, 0xfe)), /not valid UTF-8/],
      [6, frame(6, Op.DEL, Uint8Array.of(5, 0, 0, 0), encodeKey('x')), /truncated payload/],
      [7, frame(7, Op.WAIT, Uint8Array.of(1, 0)), /truncated payload/],
      [8, frame(8, Op.STATS, Uint8Array.of(1)), /trailing bytes/],
      [9, frame(9, Op.LIST), /truncated payload/],
    ];
    for (const [, bytes] of cases) raw.send(bytes);
    for (const [id, , pattern] of cases) {
      const f = await raw.next();
      assert.notEqual(f, 'closed', `connection closed before reply ${id}`);
      assert.equal((f as Frame).id, id);
      assert.equal((f as Frame).code, Status.BAD_REQUEST, `request ${id}`);
      assert.match(untext.decode((f as Frame).payload), pattern, `request ${id}`);
    }
    // A frame of another protocol version.
    const v2 = frame(10, Op.PING);
    v2[4] = 2;
    raw.send(v2);
    const f = (await raw.next()) as Frame;
    assert.equal(f.id, 10);
    assert.equal(f.code, Status.BAD_REQUEST);
    assert.match(untext.decode(f.payload), /unsupported protocol version 2/);
    // Still usable.
    raw.send(frame(11, Op.PING, text.encode('ok')));
    const pong = (await raw.next()) as Frame;
    assert.equal(pong.id, 11);
    assert.equal(pong.code, Status.OK);
    assert.equal(untext.decode(pong.payload), 'ok');
    raw.destroy();
  });

  test('garbage bytes on raw sockets do not crash the server', async () => {
    // A length too short to hold a header: the connection is dropped without a reply.
    const short = await RawConn.open(child.address);
    short.send(Uint8Array.of(2, 0, 0, 0, 1, 1));
    assert.equal(await short.next(), 'closed');

    // Text: its first four bytes read as a length far over the limit.
    const http = await RawConn.open(child.address);
    http.send(text.encode('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const reply = await http.next();
    assert.notEqual(reply, 'closed');
    assert.equal((reply as Frame).code, Status.TOO_LARGE);
    assert.equal(await http.next(), 'closed');

    // Random bytes, then a hang-up mid-stream.
    for (let i = 0; i < 5; i++) {
      const junk = await RawConn.open(child.address);
      junk.send(randomBytes(64 * 1024));
      junk.destroy();
    }
    // A frame cut short by the client closing.
    const cut = await RawConn.open(child.address);
    cut.send(frame(1, Op.SET, encodeKey('cut'), new Uint8Array(1000)).subarray(0, 500));
    cut.destroy();

    const c = await connect();
    await c.ping();
    await c.set('after/garbage', Uint8Array.of(8));
    assert.deepEqual(await c.get('after/garbage'), Uint8Array.of(8));
    assert.equal(await c.get('cut'), undefined);
    await c.del(['after/garbage']);
    assert.equal(child.proc.exitCode, null);
    assert.equal(child.proc.signalCode, null);
  });

  test('connecting to a closed port rejects with PS_UNREACHABLE naming the address', async () => {
    const port = await closedPort();
    const err = await rejectsWithCode(ParamClient.connect(`127.0.0.1:${port}`, { timeoutMs: 2_000 }), 'PS_UNREACHABLE');
    assert.ok(err instanceof PsError);
    assert.match(err.message, new RegExp(`^parameter server at 127\\.0\\.0\\.1:${port} is unreachable: `));
    await rejectsWithCode(ParamClient.connect('no-port-here'), 'PS_ARGUMENT');
  });
});

describe('paramserver in-process', () => {
  test('FrameDecoder yields the same frames whether bytes come one at a time or all at once', () => {
    const frames = [frame(1, Op.PING), frame(2, Op.SET, encodeKey('k'), Uint8Array.of(1, 2, 3, 4, 5)), frame(0xffffffff, Op.GET, encodeKey('k'))];
    const all = Buffer.concat(frames);
    const whole = new FrameDecoder();
    whole.push(all);
    const bytewise = new FrameDecoder();
    const got: Frame[] = [];
    for (const b of all) {
      bytewise.push(Uint8Array.of(b));
      for (let f = bytewise.next(); f; f = bytewise.next()) got.push(f);
    }
    const fromWhole: Frame[] = [];
    for (let f = whole.next(); f; f = whole.next()) fromWhole.push(f);
    assert.equal(whole.pendingBytes, 0);
    assert.equal(bytewise.pendingBytes, 0);
    for (const list of [got, fromWhole]) {
      assert.deepEqual(
        list.map((f) => [f.version, f.id, f.code, Array.from(f.payload), f.payload.byteOffset]),
        [
          [1, 1, Op.PING, [], 8],
          [1, 2, Op.SET, [1, 0, 107, 1, 2, 3, 4, 5], 8],
          [1, 0xffffffff, Op.GET, [1, 0, 107], 8],
        ],
      );
    }
  });

  test('STATS reports exact keys, bytes and connections', async () => {
    const server = await startParamServer();
    const a = await ParamClient.connect(server.address);
    const b = await ParamClient.connect(server.address);
    try {
      await a.set('x', new Uint8Array(100));
      await a.set('y', new Uint8Array(28));
      await b.set('x', new Uint8Array(50));
      const s = await b.stats();
      assert.equal(s.keys, 2);
      assert.equal(s.bytesHeld, 78);
      assert.equal(s.connections, 2);
      assert.equal(s.connectionsTotal, 2);
      assert.equal(s.ops.set, 3);
      assert.equal(s.ops.stats, 1);
      assert.deepEqual(server.stats().ops, { ...s.ops });
    } finally {
      await Promise.all([a.close(), b.close()]);
      await server.stop();
    }
  });

  test('a SET past the memory bound gets TOO_LARGE and the connection stays usable', async () => {
    const server = await startParamServer({ maxBytes: 1000 });
    const c = await ParamClient.connect(server.address);
    try {
      await c.set('a', new Uint8Array(600));
      await rejectsWithCode(c.set('b', new Uint8Array(401)), 'PS_TOO_LARGE');
      await c.set('b', new Uint8Array(400));
      // Replacing a key counts only the difference.
      await c.set('a', new Uint8Array(600));
      assert.equal(await c.get('b').then((v) => v?.byteLength), 400);
      assert.equal(server.stats().bytesHeld, 1000);
      await c.del(['a']);
      assert.equal(server.stats().bytesHeld, 400);
    } finally {
      await c.close();
      await server.stop();
    }
  });

  test('idle connections are closed, but not while a WAIT is parked', async () => {
    const server = await startParamServer({ idleTimeoutMs: 150 });
    const idle = await ParamClient.connect(server.address);
    const waiting = await ParamClient.connect(server.address);
    try {
      // Parked for several idle periods: ends with TIMEOUT, not with a dropped connection.
      const parked = waiting.wait('idle/key', 600);
      await idle.whenClosed();
      await rejectsWithCode(idle.ping(), 'PS_CONNECTION');
      assert.equal(await parked, undefined);
    } finally {
      await Promise.all([idle.close(), waiting.close()]);
      await server.stop();
    }
  });

  test('stop() answers parked WAITs with SHUTTING_DOWN', async () => {
    const server = await startParamServer();
    const c = await ParamClient.connect(server.address);
    const parked = rejectsWithCode(c.wait('stop/key', 30_000), 'PS_SHUTTING_DOWN');
    await c.ping();
    await server.stop();
    await parked;
    await c.whenClosed();
    await rejectsWithCode(c.get('stop/key'), 'PS_CONNECTION');
  });

  test('a per-request timeout rejects with PS_TIMEOUT when the server never answers', async () => {
    // A listener that reads and drops everything, never replying.
    const mute = net.createServer((s) => s.on('error', () => {}).resume());
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const port = (mute.address() as net.AddressInfo).port;
    const c = await ParamClient.connect(`127.0.0.1:${port}`, { timeoutMs: 50, waitMarginMs: 50 });
    try {
      await rejectsWithCode(c.ping(), 'PS_TIMEOUT');
      await rejectsWithCode(c.wait('k', 20), 'PS_TIMEOUT');
    } finally {
      await c.close();
      await new Promise<void>((resolve) => mute.close(() => resolve()));
    }
  });
});

describe('PsChannel', () => {
  let server: ParamServer;
  let spec: PsSpec;
  const channels: PsChannel[] = [];
  const open = async (): Promise<PsChannel> => {
    const ch = await PsChannel.open(spec);
    channels.push(ch);
    return ch;
  };

  before(async () => {
    server = await startParamServer();
    spec = parseChannelUrl(`ps://${server.address}?timeoutMs=5000`) as PsSpec;
  });

  after(async () => {
    await Promise.all(channels.map((c) => c.close()));
    await server.stop();
  });

  test('open on a closed port throws CHANNEL_UNREACHABLE naming the address', async () => {
    const port = await closedPort();
    const err = await rejectsWithCode(PsChannel.open({ kind: 'ps', address: `127.0.0.1:${port}`, timeoutMs: 2_000 }), 'CHANNEL_UNREACHABLE');
    assert.ok(err instanceof ChannelError);
    assert.match(err.message, new RegExp(`^parameter server at 127\\.0\\.0\\.1:${port} is unreachable: .*ECONNREFUSED`));
  });

  test('put, get, getMany, list and delete, with exact stats', async () => {
    const ch = await open();
    assert.equal(ch.kind, 'ps');
    assert.equal(ch.endpoint, `ps://${server.address}`);
    ch.resetStats();
    await ch.put('job/t1/a', Uint8Array.of(1, 2, 3));
    await ch.put('job/t1/b', Uint8Array.of(4, 5));
    assert.deepEqual(await ch.get('job/t1/a'), Uint8Array.of(1, 2, 3));
    assert.equal(await ch.get('job/t1/zz'), undefined);
    assert.deepEqual(await ch.getMany(['job/t1/b', 'job/t1/zz', 'job/t1/a']), [Uint8Array.of(4, 5), undefined, Uint8Array.of(1, 2, 3)]);
    assert.deepEqual(await ch.list!('job/t1/'), ['job/t1/a', 'job/t1/b']);
    await ch.delete(['job/t1/a', 'job/t1/b', 'job/t1/zz']);
    assert.deepEqual(await ch.list!('job/t1/'), []);
    assert.deepEqual(ch.stats(), {
      put: { requests: 2, bytes: 5 },
      get: { requests: 5, bytes: 8 },
      list: { requests: 2, bytes: 0 },
      delete: { requests: 1, bytes: 0 },
    });
    ch.resetStats();
    assert.deepEqual(ch.stats(), { put: { requests: 0, bytes: 0 }, get: { requests: 0, bytes: 0 }, list: { requests: 0, bytes: 0 }, delete: { requests: 0, bytes: 0 } });
    await rejectsWithCode(ch.put('bad key', Uint8Array.of(1)), 'KEY_INVALID');
  });

  test('waitMany resolves as keys are put by another channel, calling onValue for each', async () => {
    const reader = await open();
    const writer = await open();
    reader.resetStats();
    const seen: Array<[number, number[]]> = [];
    const all = reader.waitMany(['job/t2/0', 'job/t2/1', 'job/t2/2'], Date.now() + 30_000, (i, v) => seen.push([i, Array.from(v)]));
    await writer.put('job/t2/1', Uint8Array.of(11));
    await writer.put('job/t2/0', Uint8Array.of(10));
    await writer.put('job/t2/2', Uint8Array.of(12, 13));
    assert.deepEqual(await all, [Uint8Array.of(10), Uint8Array.of(11), Uint8Array.of(12, 13)]);
    assert.deepEqual(seen, [
      [1, [11]],
      [0, [10]],
      [2, [12, 13]],
    ]);
    assert.deepEqual(await reader.wait('job/t2/1', Date.now() + 1_000), Uint8Array.of(11));
    assert.deepEqual(reader.stats().get, { requests: 4, bytes: 5 });
    await writer.delete(['job/t2/0', 'job/t2/1', 'job/t2/2']);
  });

  test('waitMany times out with exactly the missing keys', async () => {
    const ch = await open();
    await ch.put('job/t3/a', Uint8Array.of(1));
    await ch.put('job/t3/c', Uint8Array.of(3));
    const seen: number[] = [];
    const err = await rejectsWithCode(
      ch.waitMany(['job/t3/a', 'job/t3/b', 'job/t3/c', 'job/t3/d'], Date.now() + 150, (i) => seen.push(i)),
      'CHANNEL_TIMEOUT',
    );
    assert.ok(err instanceof WaitTimeoutError);
    assert.deepEqual(err.missingKeys, ['job/t3/b', 'job/t3/d']);
    assert.deepEqual(seen.sort(), [0, 2]);
    // A deadline already past still checks once.
    const late = await rejectsWithCode(ch.wait('job/t3/b', Date.now() - 1), 'CHANNEL_TIMEOUT');
    assert.deepEqual((late as WaitTimeoutError).missingKeys, ['job/t3/b']);
    assert.deepEqual(await ch.wait('job/t3/a', Date.now() - 1), Uint8Array.of(1));
    await ch.delete(['job/t3/a', 'job/t3/c']);
  });

  test('requests fail with CHANNEL_REQUEST when the server goes away, reconnect once it is back, CHANNEL_CLOSED after close', async () => {
    let own = await startParamServer();
    const ch = await PsChannel.open({ kind: 'ps', address: own.address, timeoutMs: 1_000 });
    const parked = rejectsWithCode(ch.wait('job/t4/k', Date.now() + 30_000), 'CHANNEL_REQUEST');
    await ch.get('job/t4/other');
    await own.stop();
    const err = await parked;
    assert.ok(err.cause instanceof PsError);
    // The next request reconnects, retrying with back-off for timeoutMs.
    const started = Date.now();
    await rejectsWithCode(ch.get('job/t4/k'), 'CHANNEL_UNREACHABLE');
    assert.ok(Date.now() - started >= 500, 'it retried before giving up');
    // A server back at the same address (e.g. restarted from a snapshot) is reached again.
    own = await startParamServer({ port: Number(own.address.split(':')[1]) });
    await ch.put('job/t4/k', Uint8Array.of(7));
    assert.deepEqual(await ch.get('job/t4/k'), Uint8Array.of(7));
    await own.stop();
    await ch.close();
    await rejectsWithCode(ch.get('job/t4/k'), 'CHANNEL_CLOSED');
  });
});
