import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pack, unpack } from 'msgpackr';
import { decodeFloat32, decodeTensor, encodeTensor, headerBytes, readFrameHeader } from '../channels/codec.js';
import { FrameError } from '../channels/errors.js';
import { packMessage, unpackMessage } from '../channels/messages.js';

test('float32 frame round trips with shape, and decodes as a zero-copy view', () => {
  const data = Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 3.25);
  const frame = encodeTensor(data, [3, 4]);
  assert.equal(frame.byteLength, headerBytes(2) + 48);
  assert.equal(headerBytes(2) % 8, 0);
  const t = decodeTensor(frame);
  assert.equal(t.dtype, 'float32');
  assert.deepEqual(t.shape, [3, 4]);
  assert.deepEqual(Array.from(t.data), Array.from(data));
  assert.equal(t.data.buffer, frame.buffer, 'aligned payload must be a view, not a copy');
});

test('every dtype round trips exactly', () => {
  const arrays = [
    Float64Array.of(Math.PI, -0, Number.MAX_VALUE),
    Int32Array.of(-2147483648, 0, 2147483647),
    Uint32Array.of(0, 4294967295),
    Int16Array.of(-32768, 32767),
    Uint16Array.of(0, 65535),
    Int8Array.of(-128, 127),
    Uint8Array.of(0, 255, 7),
  ];
  for (const a of arrays) {
    const t = decodeTensor(encodeTensor(a));
    assert.equal(t.data.constructor, a.constructor);
    assert.deepEqual(Array.from(t.data), Array.from(a));
  }
});

test('a misaligned frame is decoded by copying, with the same values', () => {
  const frame = encodeTensor(Float32Array.of(1, 2, 3));
  const shifted = new Uint8Array(frame.byteLength + 1);
  shifted.set(frame, 1);
  const view = shifted.subarray(1);
  const out = decodeFloat32(view);
  assert.deepEqual(Array.from(out), [1, 2, 3]);
  assert.notEqual(out.buffer, shifted.buffer);
});

test('empty and scalar tensors', () => {
  const empty = decodeTensor(encodeTensor(new Float32Array(0)));
  assert.deepEqual(empty.shape, [0]);
  assert.equal(empty.data.length, 0);
  const scalar = decodeTensor(encodeTensor(Float32Array.of(7), []));
  assert.deepEqual(scalar.shape, []);
  assert.deepEqual(Array.from(scalar.data), [7]);
});

test('a value that is not a tensor frame is rejected naming the key and the magic', () => {
  const err = (() => {
    try {
      decodeTensor(new TextEncoder().encode('hello world, not a tensor'), 'job/x/k');
    } catch (e) {
      return e as FrameError;
    }
    return undefined;
  })();
  assert.ok(err instanceof FrameError);
  assert.equal(err.code, 'FRAME_MAGIC');
  assert.match(err.message, /^job\/x\/k: not a tensor frame: expected magic "CTNS" \(43 54 4e 53\) at byte 0, found "68 65 6c 6c"$/);
  assert.throws(() => decodeTensor(new Uint8Array(0), 'k0'), { code: 'FRAME_MAGIC', message: /found an empty value/ });
});

test('a truncated frame is rejected with the expected and actual lengths', () => {
  const frame = encodeTensor(new Float32Array(100));
  assert.throws(() => decodeTensor(frame.subarray(0, frame.byteLength - 4), 'k1'), {
    code: 'FRAME_TRUNCATED',
    message: `k1: tensor frame truncated: ${frame.byteLength - 4} bytes, expected ${frame.byteLength} (float32 [100])`,
  });
  assert.throws(() => decodeTensor(frame.subarray(0, 10), 'k2'), { code: 'FRAME_TRUNCATED' });
  const longer = new Uint8Array(frame.byteLength + 3);
  longer.set(frame);
  assert.throws(() => decodeTensor(longer, 'k3'), { code: 'FRAME_LENGTH', message: /3 trailing bytes/ });
});

test('wrong version, dtype and inconsistent shape are rejected', () => {
  const frame = encodeTensor(Float32Array.of(1, 2));
  const v = frame.slice();
  v[4] = 9;
  assert.throws(() => readFrameHeader(v), { code: 'FRAME_VERSION', message: 'value: tensor frame version 9 is not supported (expected 1)' });
  const d = frame.slice();
  d[5] = 77;
  assert.throws(() => readFrameHeader(d), { code: 'FRAME_DTYPE', message: /unknown dtype code 77/ });
  const s = frame.slice();
  new DataView(s.buffer).setUint32(16, 5, true);
  assert.throws(() => readFrameHeader(s), { code: 'FRAME_SHAPE', message: /shape \[5\] of float32 needs 20 payload bytes but the header says 8/ });
  assert.throws(() => encodeTensor(Float32Array.of(1, 2, 3), [2, 2]), { code: 'FRAME_SHAPE' });
  assert.throws(() => decodeFloat32(encodeTensor(Int32Array.of(1))), { code: 'FRAME_DTYPE', message: 'value: expected a float32 tensor frame, found int32' });
});

test("msgpackr's default options corrupt a Float32Array; the project's packer does not", () => {
  const weights = Float32Array.of(0.5, -1.25, 3.0e-8, 1234.5);
  // The hazard the codec exists for: defaults turn each float into one byte.
  const naive = unpack(pack({ weights })) as { weights: unknown };
  assert.ok(!(naive.weights instanceof Float32Array), 'msgpackr defaults changed: re-check messages.ts');
  assert.notDeepEqual(Array.from(naive.weights as ArrayLike<number>), Array.from(weights));
  const ours = unpackMessage<{ weights: Float32Array; step: number; tag: string }>(packMessage({ weights, step: 3, tag: 'w' }));
  assert.ok(ours.weights instanceof Float32Array);
  assert.deepEqual(Array.from(ours.weights), Array.from(weights));
  assert.equal(ours.step, 3);
  assert.equal(ours.tag, 'w');
});
