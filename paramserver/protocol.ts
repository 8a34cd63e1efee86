/**
 * Wire protocol of the parameter server (see PROTOCOL.md for the tables). Every message is a
 * length-prefixed frame, little-endian:
 *
 *   u32 frameLength   bytes after this field
 *   u8  version       PROTOCOL_VERSION (1)
 *   u32 requestId     chosen by the client, echoed in the reply
 *   u8  code          opcode in a request, status in a reply
 *   ... payload       frameLength - 6 bytes
 *
 * New operations are new opcodes; the header never changes within a version, so a receiver can
 * always skip a frame it does not understand and answer UNKNOWN_OP.
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import { FrameTooLargeError, PsError } from './errors.js';

export const PROTOCOL_VERSION = 1;
/** Size of the u32 length prefix. */
export const LENGTH_BYTES = 4;
/** version + requestId + code: the part of the header counted in frameLength. */
export const BODY_HEADER_BYTES = 6;
/** Full header on the wire. */
export const HEADER_BYTES = LENGTH_BYTES + BODY_HEADER_BYTES;
/** Default limit on frameLength. */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

/**
 * Decoded frames live in their own ArrayBuffer with the body starting at this offset, so the
 * payload starts at byteOffset 8: tensor frames stored as values then decode as zero-copy views.
 */
const FRAME_PAD = (8 - (BODY_HEADER_BYTES % 8)) % 8;
export const PAYLOAD_BYTE_OFFSET = FRAME_PAD + BODY_HEADER_BYTES;

/**
 * { names[0]: base, names[1]: base + 1, ... }, typed with the literal codes. Both code tables below
 * are built with it. Codes are wire format: add names at the end of a group, never reorder.
 */
function numbered<const Base extends number, const Names extends readonly string[]>(base: Base, names: Names): Numbered<Names, Counter<Base>> {
  return Object.fromEntries(names.map((name, i) => [name, base + i])) as Numbered<Names, Counter<Base>>;
}
/** A tuple of length N: type-level counting, so that Numbered can give each name its literal code. */
type Counter<N extends number, T extends unknown[] = []> = T['length'] extends N ? T : Counter<N, [...T, unknown]>;
type Numbered<Names extends readonly string[], C extends unknown[]> = Names extends readonly [infer Head extends string, ...infer Rest extends readonly string[]]
  ? { readonly [K in Head]: C['length'] } & Numbered<Rest, [...C, unknown]>
  : unknown;

/** Opcodes, in groups by range (see PROTOCOL.md). */
export const Op = {
  // 1-15: key-value store.
  ...numbered(1, ['PING', 'SET', 'GET', 'DEL', 'WAIT', 'STATS', 'LIST']),
  // 16-47: model operations (see PROTOCOL.md and model-wire.ts).
  ...numbered(16, ['CREATE_MODEL', 'PUSH', 'PULL_SPARSE', 'PULL_FULL', 'DROP_MODEL']),
  // 48-63: administration.
  ...numbered(48, ['SNAPSHOT', 'SHUTDOWN']),
  // 64-79: session.
  ...numbered(64, ['HELLO', 'AUTH', 'REGISTER', 'DEREGISTER', 'FORGET_TASK']),
};
export type OpName = keyof typeof Op;
export type OpCode = (typeof Op)[OpName];

/** Reply statuses, numbered from 0 (OK). */
export const Status = numbered(0, ['OK', 'NOT_FOUND', 'TIMEOUT', 'BAD_REQUEST', 'TOO_LARGE', 'UNKNOWN_OP', 'SHUTTING_DOWN', 'INTERNAL', 'UNAUTHORIZED', 'CONFLICT', 'RANGE']);
export type StatusName = keyof typeof Status;
export type StatusCode = (typeof Status)[StatusName];

const OP_NAMES = new Map<number, OpName>(Object.entries(Op).map(([k, v]) => [v, k as OpName]));
const STATUS_NAMES = new Map<number, StatusName>(Object.entries(Status).map(([k, v]) => [v, k as StatusName]));

export function opName(code: number): OpName | undefined {
  return OP_NAMES.get(code);
}

export function statusName(code: number): string {
  return STATUS_NAMES.get(code) ?? `status ${code}`;
}

/** One decoded frame: a request (code = opcode) or a reply (code = status). */
export interface Frame {
  version: number;
  id: number;
  code: number;
  /** View into the frame's own buffer at byteOffset PAYLOAD_BYTE_OFFSET, or (inPlace decoder) into the received chunk; 8-byte aligned either way. */
  payload: Uint8Array;
}

/**
 * Incremental frame decoder. Socket chunks are queued as they arrive and each frame is copied
 * exactly once, into its own buffer, when its last byte is in: no re-concatenation per chunk, and
 * a frame never keeps a socket chunk alive.
 */
export class FrameDecoder {
  private readonly chunks: Uint8Array[] = [];
  /** Read offset into chunks[0]. */
  private head = 0;
  private buffered = 0;
  readonly maxFrameBytes: number;
  private readonly inPlace: boolean;

  /**
   * opts.inPlace: a frame that lies within one received chunk, with its payload 8-byte aligned
   * there, is returned as a view into that chunk instead of a copy. For clients, whose replies are
   * consumed at once; a server keeps copies, so a small stored value never pins a large chunk.
   */
  constructor(opts: { maxFrameBytes?: number; inPlace?: boolean } = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.inPlace = opts.inPlace ?? false;
  }

  /** Bytes received but not yet returned as frames. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
  }

  /**
   * The next complete frame, or undefined until more bytes arrive. Throws PsError('PS_PROTOCOL')
   * for a length that cannot hold a header and FrameTooLargeError over the limit; the stream
   * cannot be resynchronised after either, so the caller should drop the connection.
   */
  next(): Frame | undefined {
    if (this.buffered < LENGTH_BYTES) return undefined;
    const length = this.peekU32(0);
    if (length < BODY_HEADER_BYTES) {
      throw new PsError('PS_PROTOCOL', `frame length ${length} is shorter than the ${BODY_HEADER_BYTES}-byte header`);
    }
    if (length > this.maxFrameBytes) {
      // Wait for the header so the rejection can name the request (10 bytes, never the body).
      if (this.buffered < HEADER_BYTES) return undefined;
      throw new FrameTooLargeError(this.peekU32(LENGTH_BYTES + 1), length, this.maxFrameBytes);
    }
    if (this.buffered < LENGTH_BYTES + length) return undefined;
    const first = this.chunks[0]!;
    const at = first.byteOffset + this.head + LENGTH_BYTES;
    // In place only where the payload lands 8-byte aligned, as in a copy: values stay readable as
    // typed-array views either way.
    if (this.inPlace && first.byteLength - this.head >= LENGTH_BYTES + length && (at + BODY_HEADER_BYTES) % 8 === 0) {
      const frame: Frame = {
        version: this.peekByte(LENGTH_BYTES),
        id: this.peekU32(LENGTH_BYTES + 1),
        code: this.peekByte(LENGTH_BYTES + 5),
        payload: new Uint8Array(first.buffer, at + BODY_HEADER_BYTES, length - BODY_HEADER_BYTES),
      };
      this.skip(LENGTH_BYTES + length);
      return frame;
    }
    this.skip(LENGTH_BYTES);
    // Unzeroed: every byte after the pad is overwritten by the frame at once.
    const buffer = Buffer.allocUnsafeSlow(FRAME_PAD + length).buffer;
    const body = new Uint8Array(buffer, FRAME_PAD, length);
    this.take(body);
    const view = new DataView(buffer, FRAME_PAD, BODY_HEADER_BYTES);
    return {
      version: view.getUint8(0),
      id: view.getUint32(1, true),
      code: view.getUint8(5),
      payload: new Uint8Array(buffer, PAYLOAD_BYTE_OFFSET, length - BODY_HEADER_BYTES),
    };
  }

  private peekByte(offset: number): number {
    let pos = this.head + offset;
    for (const c of this.chunks) {
      if (pos < c.byteLength) return c[pos]!;
      pos -= c.byteLength;
    }
    throw new RangeError('FrameDecoder: peek past the buffered bytes');
  }

  private peekU32(offset: number): number {
    // Assembled byte by byte because the 4 bytes may straddle chunks.
    return (this.peekByte(offset) | (this.peekByte(offset + 1) << 8) | (this.peekByte(offset + 2) << 16) | (this.peekByte(offset + 3) << 24)) >>> 0;
  }

  private skip(n: number): void {
    this.consume(n, undefined);
  }

  private take(dest: Uint8Array): void {
    this.consume(dest.byteLength, dest);
  }

  private consume(n: number, dest: Uint8Array | undefined): void {
    let written = 0;
    let drop = 0;
    while (written < n) {
      const c = this.chunks[drop]!;
      const avail = c.byteLength - this.head;
      const step = Math.min(avail, n - written);
      if (dest) dest.set(c.subarray(this.head, this.head + step), written);
      written += step;
      if (step === avail) {
        drop++;
        this.head = 0;
      } else {
        this.head += step;
      }
    }
    // One splice per frame keeps consumption linear in the number of chunks.
    if (drop > 0) this.chunks.splice(0, drop);
    this.buffered -= n;
  }
}

/** The 10-byte header of a frame whose payload is `payloadBytes` long. */
export function encodeHeader(id: number, code: number, payloadBytes: number): Uint8Array {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  putHeader(header, id, code, payloadBytes);
  return header;
}

/** Writes the 10-byte header into the start of `out`. */
function putHeader(out: Buffer, id: number, code: number, payloadBytes: number): void {
  // frameLength is a u32: a larger frame would silently wrap and desynchronise the stream.
  if (BODY_HEADER_BYTES + payloadBytes > 0xffffffff) {
    throw new PsError('PS_TOO_LARGE', `payload of ${payloadBytes} bytes does not fit in one frame (at most ${0xffffffff - BODY_HEADER_BYTES})`);
  }
  out.writeUInt32LE(BODY_HEADER_BYTES + payloadBytes, 0);
  out[4] = PROTOCOL_VERSION;
  out.writeUInt32LE(id >>> 0, 5);
  out[9] = code;
}

/** Below this total size a frame is assembled into one buffer (one small copy beats a writev). */
const COALESCE_BYTES = 16 * 1024;
/** On a corked socket, parts up to this size are copied next to the header; larger ones go as they are. */
const SMALL_PART_BYTES = 512;

/**
 * Writes one frame. Small frames are assembled into one buffer. Large payload parts go to the
 * socket as they are, inside a cork, so the kernel gets one writev and a value is never copied in
 * user space; on a socket that is corked already (a batch of requests or replies) that holds for
 * any frame, and only the header and small parts are assembled. Returns socket.write's
 * back-pressure signal.
 */
export function writeFrame(socket: Socket, id: number, code: number, parts: readonly Uint8Array[]): boolean {
  let payloadBytes = 0;
  let smallBytes = 0;
  for (const p of parts) {
    payloadBytes += p.byteLength;
    if (p.byteLength <= SMALL_PART_BYTES) smallBytes += p.byteLength;
  }
  const corked = socket.writableCorked > 0;
  if (!corked && payloadBytes + HEADER_BYTES <= COALESCE_BYTES) {
    // Unzeroed (and pooled when small): the header and parts fill it entirely.
    const frame = Buffer.allocUnsafe(HEADER_BYTES + payloadBytes);
    putHeader(frame, id, code, payloadBytes);
    let at = HEADER_BYTES;
    for (const p of parts) {
      frame.set(p, at);
      at += p.byteLength;
    }
    return socket.write(frame);
  }
  // Header plus runs of small parts in pooled buffers; large parts written in place.
  socket.cork();
  const run = Buffer.allocUnsafe(HEADER_BYTES + smallBytes);
  putHeader(run, id, code, payloadBytes);
  let at = HEADER_BYTES;
  let runStart = 0;
  let ok = true;
  for (const p of parts) {
    if (p.byteLength <= SMALL_PART_BYTES) {
      run.set(p, at);
      at += p.byteLength;
      continue;
    }
    if (at > runStart) ok = socket.write(run.subarray(runStart, at));
    runStart = at;
    ok = socket.write(p);
  }
  if (at > runStart) ok = socket.write(run.subarray(runStart, at));
  socket.uncork();
  return ok;
}
