/**
 * Wire layout of the model ops' arrays: PUSH and PULL_SPARSE pad their arrays to a 4-byte payload
 * offset, so the server decodes them as views into the frame (no copy) whatever the key length.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameDecoder, Op, PsError, encodeHeader, encodePull, encodePush } from '../paramserver/index.js';
import { decodePull, decodePush } from '../paramserver/model-wire.js';

/** Encodes parts as one frame and decodes it back the way the server does. */
function roundTrip(code: number, parts: Uint8Array[]): Uint8Array {
  const size = parts.reduce((s, p) => s + p.byteLength, 0);
  const decoder = new FrameDecoder();
  decoder.push(Buffer.concat([encodeHeader(1, code, size), ...parts]));
  const frame = decoder.next();
  assert.ok(frame);
  return frame.payload;
}

test('PUSH and PULL_SPARSE arrays decode as views into the frame for every key length', () => {
  const indices = Uint32Array.of(3, 17, 4_000_000_000, 9);
  const values = Float32Array.of(0.5, -1.25, 3, Number.MIN_VALUE);
  for (let keyLength = 1; keyLength <= 8; keyLength++) {
    const name = 'm'.repeat(keyLength);
    const push = roundTrip(Op.PUSH, encodePush(name, 2, 7, { kind: 'sparse', indices, values }));
    const p = decodePush(push);
    assert.equal(p.name, name);
    assert.equal(p.rank, 2);
    assert.equal(p.clock, 7);
    assert.equal(p.grad.kind, 'sparse');
    if (p.grad.kind !== 'sparse') continue;
    assert.deepEqual(p.grad.indices, indices);
    assert.deepEqual(p.grad.values, values);
    assert.equal(p.grad.indices.buffer, push.buffer, `key of ${keyLength} bytes: indices are a view`);
    assert.equal(p.grad.values.buffer, push.buffer, `key of ${keyLength} bytes: values are a view`);

    const dense = decodePush(roundTrip(Op.PUSH, encodePush(name, 0, 0, { kind: 'dense', values })));
    assert.equal(dense.grad.kind, 'dense');
    assert.deepEqual(dense.grad.values, values);

    const pull = roundTrip(Op.PULL_SPARSE, encodePull(name, 5, 100, indices));
    const q = decodePull(pull, true);
    assert.deepEqual([q.name, q.minClock, q.timeoutMs], [name, 5, 100]);
    assert.deepEqual(q.indices, indices);
    assert.equal(q.indices!.buffer, pull.buffer, `key of ${keyLength} bytes: pulled indices are a view`);
  }
});

test('a payload that is not 4-byte aligned in memory is copied, not misread', () => {
  const indices = Uint32Array.of(1, 2, 3);
  const parts = encodePush('ab', 0, 0, { kind: 'sparse', indices, values: Float32Array.of(1, 2, 3) });
  const size = parts.reduce((s, p) => s + p.byteLength, 0);
  const shifted = new Uint8Array(size + 1).subarray(1);
  let at = 0;
  for (const p of parts) {
    shifted.set(p, at);
    at += p.byteLength;
  }
  const p = decodePush(shifted);
  assert.ok(p.grad.kind === 'sparse');
  assert.deepEqual(p.grad.indices, indices);
  assert.notEqual(p.grad.indices.buffer, shifted.buffer);
});

test('nonzero padding or a payload cut inside the padding is a BAD_REQUEST naming it', () => {
  // Key 'a': 3 + 13 = 16 bytes of head, no padding; key 'ab': 17 bytes, 3 bytes of padding.
  const parts = encodePush('ab', 0, 0, { kind: 'sparse', indices: Uint32Array.of(1), values: Float32Array.of(1) });
  const payload = Buffer.concat(parts);
  assert.equal(payload.byteLength, 17 + 3 + 8);
  const bad = Buffer.from(payload);
  bad[18] = 1;
  assert.throws(() => decodePush(bad), (e: unknown) => e instanceof PsError && e.code === 'PS_BAD_REQUEST' && e.message.includes('padding before the gradient must be zero bytes'));
  assert.throws(() => decodePush(payload.subarray(0, 18)), (e: unknown) => e instanceof PsError && e.code === 'PS_BAD_REQUEST' && e.message.includes('padding before the gradient'));
});

test('an inPlace decoder returns frames inside one chunk with an aligned payload as views of it, and copies the others', () => {
  // 14-byte frames: in a chunk starting at frame 1, frame 1's payload is at 10 (not 8-aligned:
  // copied) and frame 2's at 24 (aligned: in place).
  const frames = [1, 2, 3, 4].map((id) => Buffer.concat([encodeHeader(id, Op.PUSH, 4), Buffer.from([id, id, id, id])]));
  const stream = Buffer.concat(frames);
  // Chunk 1: frames 1 and 2 and half of frame 3; chunk 2: the rest (frame 4's payload at 17 there).
  const cut = 2 * 14 + 7;
  const chunks = [stream.subarray(0, cut), stream.subarray(cut)].map((c) => Buffer.from(c));
  const decoder = new FrameDecoder({ inPlace: true });
  decoder.push(chunks[0]!);
  const got = [decoder.next()!, decoder.next()!];
  assert.equal(decoder.next(), undefined);
  decoder.push(chunks[1]!);
  got.push(decoder.next()!, decoder.next()!);
  assert.equal(decoder.next(), undefined);
  assert.deepEqual(got.map((f) => [f.id, f.code, [...f.payload]]), [1, 2, 3, 4].map((id) => [id, Op.PUSH, [id, id, id, id]]));
  assert.deepEqual(got.map((f) => f.payload.byteOffset % 8), [0, 0, 0, 0], 'payloads are 8-byte aligned');
  assert.notEqual(got[0]!.payload.buffer, chunks[0]!.buffer, 'frame 1: payload at 10 in the chunk, copied');
  assert.equal(got[1]!.payload.buffer, chunks[0]!.buffer, 'frame 2: payload at 24 in the chunk, in place');
  assert.notEqual(got[2]!.payload.buffer, chunks[0]!.buffer, 'frame 3 straddles the chunks: copied');
  assert.notEqual(got[2]!.payload.buffer, chunks[1]!.buffer);
  assert.notEqual(got[3]!.payload.buffer, chunks[1]!.buffer, 'frame 4: payload at 17, copied');
  assert.equal(decoder.pendingBytes, 0);
});
