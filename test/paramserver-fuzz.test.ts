/**
 * Fuzz: 10,000 random and mutated frames against a parameter server *process* (so a crash is a dead
 * process), over many connections, half of them authenticated so the model ops are reached too.
 * Then a well-behaved client must get exact answers, and the process must be alive with a bounded
 * RSS. The generator is seeded, so a failure reproduces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  FrameDecoder,
  type Frame,
  NONCE_BYTES,
  Op,
  ParamClient,
  Status,
  clientProof,
  encodeCreateModel,
  encodeHeader,
  encodeKey,
  encodeKeyList,
  encodePull,
  encodePush,
  encodeRegistration,
  encodeWait,
} from '../paramserver/index.js';
import { lcg } from './support/data.js';

const MAIN = fileURLToPath(new URL('../paramserver/main.js', import.meta.url));
const TOKEN = 'fuzz-token-0123456789';
const STREAM_FRAMES = 8_000;
const STREAM_CONNECTIONS = 40;
const SOLO_FRAMES = 2_000;
const PARALLEL = 20;
/** Bound on the server's resident set after the fuzz (it starts around 50-60 MB). */
const RSS_BOUND_MB = 256;

function frame(id: number, code: number, parts: readonly Uint8Array[]): Uint8Array {
  const size = parts.reduce((n, p) => n + p.byteLength, 0);
  return Buffer.concat([encodeHeader(id, code, size), ...parts]);
}

/** Valid requests of every op but SHUTDOWN (ends the run) and AUTH (a wrong one ends the connection; see soloFrame). */
function validFrames(rand: () => number): Uint8Array[] {
  const int = (n: number) => Math.floor(rand() * n);
  const cfg = { size: 1 + int(64), optimizer: { type: (['sgd', 'adam', 'momentum'] as const)[int(3)]!, learningRate: 0.1 }, sync: { mode: 'async' as const } };
  const id = () => int(0xffffffff);
  const name = `fz${int(4)}`;
  return [
    frame(id(), Op.PING, [Uint8Array.of(1, 2, 3)]),
    frame(id(), Op.SET, [encodeKey(`k${int(8)}`), new Uint8Array(int(200))]),
    frame(id(), Op.GET, [encodeKey(`k${int(8)}`)]),
    frame(id(), Op.DEL, [encodeKeyList([`k${int(8)}`, 'k9'])]),
    frame(id(), Op.WAIT, [encodeWait(`k${int(8)}`, int(20))]),
    frame(id(), Op.STATS, []),
    frame(id(), Op.LIST, [encodeKey('k', true)]),
    frame(id(), Op.CREATE_MODEL, encodeCreateModel(name, cfg)),
    frame(id(), Op.PUSH, encodePush(name, 0, int(5), { kind: 'dense', values: new Float32Array(cfg.size).fill(0.01) })),
    frame(id(), Op.PUSH, encodePush(name, 0, int(5), { kind: 'sparse', indices: Uint32Array.of(int(64), 0), values: Float32Array.of(0.5, -0.5) })),
    frame(id(), Op.PULL_SPARSE, encodePull(name, int(3), int(20), Uint32Array.of(0, int(64)))),
    frame(id(), Op.PULL_FULL, encodePull(name, int(3), int(20))),
    frame(id(), Op.DROP_MODEL, [encodeKey(name)]),
    frame(id(), Op.REGISTER, encodeRegistration(`t${int(4)}`, int(4), int(4))),
    frame(id(), Op.DEREGISTER, encodeRegistration(`t${int(4)}`, int(4), int(4))),
    frame(id(), Op.FORGET_TASK, [encodeKey(`t${int(4)}`)]),
    frame(id(), Op.SNAPSHOT, []),
    frame(id(), Op.HELLO, []),
  ];
}

/**
 * A frame that keeps its connection usable: valid, with flipped bytes past the length field, a
 * truncated payload whose length agrees, an unknown opcode or a wrong version. These are pipelined.
 */
function streamFrame(rand: () => number): Uint8Array {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = validFrames(rand);
  const out = Uint8Array.from(pick[int(pick.length)]!);
  switch (int(5)) {
    case 0:
      for (let k = 1 + int(4); k > 0; k--) {
        const at = 4 + int(out.length - 4);
        out[at] = out[at]! ^ (1 << int(8));
      }
      break;
    case 1: {
      const cut = 10 + int(Math.max(1, out.length - 10));
      new DataView(out.buffer).setUint32(0, cut - 4, true);
      return noShutdown(out.slice(0, cut));
    }
    case 2:
      out[9] = 80 + int(176);
      break;
    case 3:
      out[4] = 2 + int(254);
      break;
    default:
  }
  return noShutdown(out);
}

/**
 * A frame that usually ends its connection (so it gets one of its own): random bytes, a huge
 * declared length, flipped length bytes, or an AUTH with a wrong proof.
 */
function soloFrame(rand: () => number): Uint8Array {
  const int = (n: number) => Math.floor(rand() * n);
  const pick = validFrames(rand);
  const out = Uint8Array.from(pick[int(pick.length)]!);
  switch (int(4)) {
    case 0: {
      const junk = new Uint8Array(1 + int(300));
      for (let i = 0; i < junk.length; i++) junk[i] = int(256);
      return noShutdown(junk);
    }
    case 1:
      new DataView(out.buffer).setUint32(0, 0x7fffffff + int(0x7fffffff), true);
      return noShutdown(out);
    case 2:
      out[int(4)] ^= 1 << int(8);
      return noShutdown(out);
    default:
      return frame(int(1000), Op.AUTH, [Uint8Array.from({ length: 64 }, () => int(256))]);
  }
}

/** Keeps SHUTDOWN out, whatever a mutation made of the opcode byte: it would end the run, by design. */
function noShutdown(out: Uint8Array): Uint8Array {
  if (out.length >= 10 && out[9] === Op.SHUTDOWN) out[9] = 99;
  return out;
}

/** A raw connection: optional handshake, then blast bytes, then hang up; never waits forever. */
async function fuzzConnection(address: string, chunks: Uint8Array[], authenticate: boolean): Promise<void> {
  const [host, port] = address.split(':') as [string, string];
  const socket = net.connect({ host, port: Number(port) });
  socket.on('error', () => {});
  await once(socket, 'connect');
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    decoder.push(d);
    try {
      for (let f = decoder.next(); f; f = decoder.next()) frames.push(f);
    } catch {
      // Replies to garbage may be anything; only the handshake replies are read.
    }
    wake?.();
  });
  const nextFrame = async (): Promise<Frame> => {
    const deadline = Date.now() + 5_000;
    while (frames.length === 0) {
      if (Date.now() > deadline || socket.destroyed) throw new Error('no handshake reply within 5 s');
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
    }
    return frames.shift()!;
  };
  if (authenticate) {
    socket.write(frame(1, Op.HELLO, []));
    const hello = await nextFrame();
    assert.equal(hello.code, Status.OK);
    const serverNonce = hello.payload.slice(1);
    const mine = new Uint8Array(NONCE_BYTES).fill(7);
    socket.write(frame(2, Op.AUTH, [mine, clientProof(TOKEN, serverNonce, mine)]));
    assert.equal((await nextFrame()).code, Status.OK);
  }
  for (const c of chunks) socket.write(c);
  socket.end();
  const closed = once(socket, 'close');
  const timer = setTimeout(() => socket.destroy(), 3_000);
  await closed;
  clearTimeout(timer);
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'no VmRSS line');
  return Number(m[1]) / 1024;
}

test('10,000 random and mutated frames do not crash the server or grow it past the bound', async (t) => {
  const proc = spawn(process.execPath, [MAIN, '--port', '0', '--token', TOKEN, '--max-frame-bytes', String(16 * 1024 * 1024), '--max-model-floats', String(4_000_000)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    // Always drained (a full pipe would block the server); kept up to 1 MB.
    if (stderr.length < 1_000_000) stderr += d;
  });
  try {
    const address = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no 'listening' line within 10 s: ${stderr}`)), 10_000);
      proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /^listening (\S+)$/m.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      proc.once('exit', (code) => reject(new Error(`exited with ${code}: ${stderr}`)));
    });
    const rssBefore = rssMb(proc.pid!);

    const rand = lcg(20240611);
    const perConn = STREAM_FRAMES / STREAM_CONNECTIONS;
    let sent = 0;
    const jobs = Array.from({ length: STREAM_CONNECTIONS }, (_, i) => {
      const frames = Array.from({ length: perConn }, () => streamFrame(rand));
      sent += frames.length;
      // Some connections get all frames in one write, others frame by frame (exercises reassembly).
      const chunks = i % 3 === 0 ? [Buffer.concat(frames)] : frames;
      return () => fuzzConnection(address, chunks, i % 4 !== 3);
    });
    for (let i = 0; i < SOLO_FRAMES; i++) {
      const f = soloFrame(rand);
      sent++;
      jobs.push(() => fuzzConnection(address, [f], i % 2 === 0));
    }
    assert.equal(sent, STREAM_FRAMES + SOLO_FRAMES);
    for (let i = 0; i < jobs.length; i += PARALLEL) await Promise.all(jobs.slice(i, i + PARALLEL).map((j) => j()));

    assert.equal(proc.exitCode, null, `server exited: ${stderr}`);
    assert.equal(proc.signalCode, null);

    // A well-behaved client gets exact answers afterwards.
    const c = await ParamClient.connect(address, { token: TOKEN });
    try {
      await c.set('good/k', Uint8Array.of(1, 2, 3));
      assert.deepEqual(await c.get('good/k'), Uint8Array.of(1, 2, 3));
      assert.equal(await c.createModel('good', { size: 3, optimizer: { type: 'sgd', learningRate: 1 }, sync: { mode: 'async' } }, Float32Array.of(1, 2, 3)), true);
      assert.equal(await c.push('good', { rank: 0, clock: 0, indices: Uint32Array.of(2, 0), values: Float32Array.of(1, 0.5) }), 1);
      assert.deepEqual(await c.pullFull('good'), { clock: 1, values: Float32Array.of(0.5, 2, 2) });
      assert.deepEqual(await c.pullSparse('good', Uint32Array.of(2, 1)), { clock: 1, values: Float32Array.of(2, 2) });
      const stats = await c.stats();
      const errors = (stats.replies.bad_request ?? 0) + (stats.replies.unknown_op ?? 0) + (stats.replies.too_large ?? 0) + (stats.replies.unauthorized ?? 0);
      t.diagnostic(`replies: ${JSON.stringify(stats.replies)}; models ${stats.models}, modelFloats ${stats.modelFloats}, registrations ${stats.registrations}, updatesApplied ${stats.updatesApplied}`);
      // Most pipelined frames must have been parsed and answered, not lost with a dropped connection.
      assert.ok(errors > 3000, `only ${errors} error replies: the fuzz did not reach the server`);
      assert.ok((stats.ops.push ?? 0) > 200 && (stats.ops.create_model ?? 0) > 200, `model ops not reached: ${JSON.stringify(stats.ops)}`);
      assert.equal(stats.parkedPulls, 0);
    } finally {
      await c.close();
    }
    const rssAfter = rssMb(proc.pid!);
    t.diagnostic(`server RSS ${rssBefore.toFixed(1)} MB before, ${rssAfter.toFixed(1)} MB after ${sent} frames over ${jobs.length} connections`);
    assert.ok(rssAfter < RSS_BOUND_MB, `server RSS ${rssAfter.toFixed(1)} MB is over ${RSS_BOUND_MB} MB`);
    assert.match(stderr, /paramserver: .*(BAD_REQUEST|UNKNOWN_OP|TOO_LARGE)/, 'rejections are logged to stderr');
    assert.doesNotMatch(stderr, /at .*\.js:\d+:\d+/, 'a stack trace on stderr');
    assert.equal(proc.exitCode, null);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      await exited;
    }
  }
});
