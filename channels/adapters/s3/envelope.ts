/**
 * The S3 channel's envelope. Every value is stored inside a small envelope so a reader can tell a
 * complete object from one still being written: some S3-compatible stores (s3rver among them) expose an object while its
 * PUT is still streaming, with 0 or a prefix of its bytes. Real S3 is atomic and never shows that.
 *
 *   offset 0  u8[4]  magic 'CRS3'
 *   offset 4  u32le  envelope version (1)
 *   offset 8  u64le  payload length
 *   offset 16 u8[8]  write id (random per put)
 *   offset 24        payload (8-byte aligned, so an inner tensor frame stays aligned)
 *   end - 8   u8[8]  write id again
 *
 * A body shorter than the envelope declares, or whose trailer id differs from its header id, is
 * "not completely written yet": get() returns undefined so waits keep polling. If the same
 * incomplete state persists (no growth) for longer than `corruptAfterMs` over several reads, the
 * object is declared corrupt. A body that does not start with the magic (an object written by
 * another tool) is reported as CHANNEL_CORRUPT at once: a partly written envelope always starts
 * with the magic, so waiting would not help.
 */
import { randomBytes } from 'node:crypto';

export const ENVELOPE_MAGIC = Uint8Array.of(0x43, 0x52, 0x53, 0x33); // 'CRS3'
export const ENVELOPE_VERSION = 1;
export const ENVELOPE_HEADER_BYTES = 24;
export const ENVELOPE_TRAILER_BYTES = 8;

/** Wraps `payload` in an envelope (one copy, which also detaches it from the caller's buffer). */
export function wrapEnvelope(payload: Uint8Array, writeId: Uint8Array = randomBytes(8)): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + payload.byteLength + ENVELOPE_TRAILER_BYTES);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(ENVELOPE_MAGIC, 0);
  view.setUint32(4, ENVELOPE_VERSION, true);
  view.setBigUint64(8, BigInt(payload.byteLength), true);
  out.set(writeId.subarray(0, 8), 16);
  out.set(payload, ENVELOPE_HEADER_BYTES);
  out.set(writeId.subarray(0, 8), ENVELOPE_HEADER_BYTES + payload.byteLength);
  return out;
}

export type EnvelopeState =
  | { state: 'complete'; payload: Uint8Array }
  /** Possibly still being written; `expected` is the declared total size when the header is in. */
  | { state: 'incomplete'; expected: number | undefined; reason: string }
  /** Cannot become a valid envelope by growing. */
  | { state: 'foreign'; reason: string };

/** Classifies an object body; the payload is a subarray of `body` (no copy). */
export function unwrapEnvelope(body: Uint8Array): EnvelopeState {
  const n = body.byteLength;
  for (let i = 0; i < Math.min(n, ENVELOPE_MAGIC.length); i++) {
    if (body[i] !== ENVELOPE_MAGIC[i]) return { state: 'foreign', reason: 'it does not start with the Cirrus envelope magic (was it written by another tool?)' };
  }
  if (n < ENVELOPE_HEADER_BYTES) return { state: 'incomplete', expected: undefined, reason: `header incomplete (${n} of ${ENVELOPE_HEADER_BYTES} bytes)` };
  const view = new DataView(body.buffer, body.byteOffset, n);
  const version = view.getUint32(4, true);
  if (version !== ENVELOPE_VERSION) return { state: 'foreign', reason: `envelope version ${version} is not supported (expected ${ENVELOPE_VERSION})` };
  const declared = view.getBigUint64(8, true);
  if (declared > BigInt(Number.MAX_SAFE_INTEGER)) return { state: 'foreign', reason: `declared payload length ${declared} is impossible` };
  const length = Number(declared);
  const expected = ENVELOPE_HEADER_BYTES + length + ENVELOPE_TRAILER_BYTES;
  if (n !== expected) {
    return { state: 'incomplete', expected, reason: `body has ${n} bytes, envelope declares ${expected} (${ENVELOPE_HEADER_BYTES} + ${length} payload + ${ENVELOPE_TRAILER_BYTES})` };
  }
  for (let i = 0; i < 8; i++) {
    if (body[16 + i] !== body[n - 8 + i]) return { state: 'incomplete', expected, reason: `trailer write id does not match the header (body has ${n} bytes as declared)` };
  }
  return { state: 'complete', payload: body.subarray(ENVELOPE_HEADER_BYTES, ENVELOPE_HEADER_BYTES + length) };
}
