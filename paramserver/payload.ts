/**
 * Payload codecs of the parameter-server protocol (frames themselves are in protocol.ts): keys,
 * key lists, u32s, text, 4-byte alignment, and PayloadReader, the bounds-checked reader every
 * request and reply payload is decoded with. Layouts are in PROTOCOL.md.
 */
import { PsError } from './errors.js';

/** Largest encodable key, in UTF-8 bytes (u16 length). */
export const MAX_KEY_BYTES = 0xffff;

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** u16 length + UTF-8 bytes. Keys must be 1..65535 bytes; a LIST prefix may be empty. */
export function encodeKey(key: string, allowEmpty = false): Uint8Array {
  const utf8 = encoder.encode(key);
  if (utf8.byteLength > MAX_KEY_BYTES) throw new PsError('PS_ARGUMENT', `key of ${utf8.byteLength} UTF-8 bytes is too long (at most ${MAX_KEY_BYTES})`);
  if (utf8.byteLength === 0 && !allowEmpty) throw new PsError('PS_ARGUMENT', 'key must not be empty');
  const out = new Uint8Array(2 + utf8.byteLength);
  new DataView(out.buffer).setUint16(0, utf8.byteLength, true);
  out.set(utf8, 2);
  return out;
}

/** DEL payload: u32 count, then `count` keys. */
export function encodeKeyList(keys: readonly string[]): Uint8Array {
  const encoded = keys.map((k) => encodeKey(k));
  let size = 4;
  for (const e of encoded) size += e.byteLength;
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, encoded.length, true);
  let at = 4;
  for (const e of encoded) {
    out.set(e, at);
    at += e.byteLength;
  }
  return out;
}

/** WAIT payload: u32 timeoutMs, then the key. */
export function encodeWait(key: string, timeoutMs: number): Uint8Array {
  const k = encodeKey(key);
  const out = new Uint8Array(4 + k.byteLength);
  new DataView(out.buffer).setUint32(0, clampU32(timeoutMs), true);
  out.set(k, 4);
  return out;
}

export function encodeU32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, clampU32(n), true);
  return out;
}

function clampU32(n: number): number {
  if (!Number.isFinite(n) || n <= 0) return 0;
  return Math.min(Math.floor(n), 0xffffffff);
}

/** Zero bytes to add after `offset` payload bytes so that what follows starts 4-byte aligned. */
export function alignPadding(offset: number): number {
  return (4 - (offset & 3)) & 3;
}

/**
 * Sequential reader over a payload. Every read is bounds-checked and throws
 * PsError('PS_BAD_REQUEST') naming what was being read, so a truncated payload becomes a status,
 * never a crash.
 */
export class PayloadReader {
  private offset = 0;
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.offset++]!;
  }

  /** Skips the 0-3 zero bytes that bring the offset to a multiple of 4 (see alignPadding). */
  align(what: string): void {
    const pad = alignPadding(this.offset);
    this.need(pad, `padding before ${what}`);
    for (let i = 0; i < pad; i++) {
      if (this.bytes[this.offset + i] !== 0) throw new PsError('PS_BAD_REQUEST', `padding before ${what} must be zero bytes`);
    }
    this.offset += pad;
  }

  /** The next `n` bytes as a view (no copy). */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  key(what = 'key', allowEmpty = false): string {
    this.need(2, `${what} length`);
    const n = this.view.getUint16(this.offset, true);
    this.offset += 2;
    if (n === 0 && !allowEmpty) throw new PsError('PS_BAD_REQUEST', `${what} is empty`);
    this.need(n, what);
    const raw = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    try {
      return strictDecoder.decode(raw);
    } catch {
      throw new PsError('PS_BAD_REQUEST', `${what} is not valid UTF-8`);
    }
  }

  /** The rest of the payload as a view (no copy). */
  rest(): Uint8Array {
    const out = this.bytes.subarray(this.offset);
    this.offset = this.bytes.byteLength;
    return out;
  }

  /** Rejects trailing bytes: a payload longer than its op defines is malformed. */
  end(what: string): void {
    if (this.remaining !== 0) throw new PsError('PS_BAD_REQUEST', `${what}: ${this.remaining} unexpected trailing bytes`);
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) {
      throw new PsError('PS_BAD_REQUEST', `truncated payload: ${what} needs ${n} bytes at offset ${this.offset}, only ${this.remaining} left`);
    }
  }
}

/** LIST reply payload: u32 count, then `count` keys. */
export function decodeKeyList(payload: Uint8Array, what: string): string[] {
  const r = new PayloadReader(payload);
  const count = r.u32(`${what} count`);
  const keys: string[] = [];
  for (let i = 0; i < count; i++) keys.push(r.key(`${what} key ${i}`));
  r.end(what);
  return keys;
}

export function decodeU32(payload: Uint8Array, what: string): number {
  const r = new PayloadReader(payload);
  const n = r.u32(what);
  r.end(what);
  return n;
}

export function encodeText(text: string): Uint8Array {
  return encoder.encode(text);
}

export function decodeText(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}
