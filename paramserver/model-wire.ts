/**
 * Payload encodings of the model (16-47) and session (66-68) opcodes, shared by server and client.
 * Byte-level layouts are in PROTOCOL.md. Typed arrays go on the wire in platform byte order, which
 * is checked to be little-endian once, here.
 */
import { endianness } from 'node:os';
import { PsError } from './errors.js';
import type { ModelConfig } from './model-config.js';
import { PayloadReader, alignPadding, encodeKey } from './payload.js';
import type { Gradient } from './sync.js';

if (endianness() !== 'LE') throw new Error('the parameter server wire format needs a little-endian host');

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

const GRADIENT_DENSE = 0;
const GRADIENT_SPARSE = 1;

function u32s(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new PsError('PS_ARGUMENT', `${v} is not a u32`);
    view.setUint32(4 * i, v, true);
  });
  return out;
}

/** A typed array's bytes as a view (sent without copying). */
function bytesOf(a: Float32Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Reads `count` f32 values: a view when they are 4-byte aligned in memory, else a copy. */
function readF32(r: PayloadReader, count: number, what: string): Float32Array {
  const bytes = r.take(count * 4, what);
  return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new Float32Array(bytes.slice().buffer);
}

function readU32s(r: PayloadReader, count: number, what: string): Uint32Array {
  const bytes = r.take(count * 4, what);
  return bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, count) : new Uint32Array(bytes.slice().buffer);
}

// CREATE_MODEL: key name | u32 configBytes | config JSON | f32 initial weights (optional, to the end)

export function encodeCreateModel(name: string, config: ModelConfig, init?: Float32Array): Uint8Array[] {
  const json = encoder.encode(JSON.stringify(config));
  return [encodeKey(name), u32s(json.byteLength), json, ...(init ? [bytesOf(init)] : [])];
}

export function decodeCreateModel(payload: Uint8Array): { name: string; config: unknown; init: Float32Array | undefined } {
  const r = new PayloadReader(payload);
  const name = r.key('model name');
  const n = r.u32('config length');
  const raw = r.take(n, 'config');
  let config: unknown;
  try {
    config = JSON.parse(strictDecoder.decode(raw));
  } catch (err) {
    throw new PsError('PS_BAD_REQUEST', `config of model '${name}' is not valid UTF-8 JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (r.remaining % 4 !== 0) throw new PsError('PS_BAD_REQUEST', `initial weights of model '${name}' are ${r.remaining} bytes, not a whole number of f32`);
  const init = r.remaining === 0 ? undefined : readF32(r, r.remaining / 4, 'initial weights');
  return { name, config, init };
}

// PUSH: key name | u32 rank | u32 clock | u8 kind | u32 count | pad to 4 | dense: f32[count] ; sparse: u32[count] f32[count]

export function encodePush(name: string, rank: number, clock: number, grad: Gradient): Uint8Array[] {
  if (grad.kind === 'sparse' && grad.indices.length !== grad.values.length) {
    throw new PsError('PS_ARGUMENT', `sparse gradient has ${grad.indices.length} indices but ${grad.values.length} values`);
  }
  const count = grad.kind === 'dense' ? grad.values.length : grad.indices.length;
  const head = new HeadWriter(name, 13);
  head.u32(rank).u32(clock).u8(grad.kind === 'dense' ? GRADIENT_DENSE : GRADIENT_SPARSE).u32(count);
  if (grad.kind === 'dense') return [head.done(), bytesOf(grad.values)];
  return [head.done(), bytesOf(grad.indices), bytesOf(grad.values)];
}

/**
 * The part of a request before its arrays, in one small buffer: key, fixed fields, then the zero
 * padding that 4-byte aligns what follows. One allocation per request (pushes and pulls are the
 * hot path; their parts are otherwise a handful of tiny arrays).
 */
class HeadWriter {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private at: number;
  constructor(name: string, fieldBytes: number) {
    const key = cachedKey(name);
    this.bytes = new Uint8Array(key.byteLength + fieldBytes + alignPadding(key.byteLength + fieldBytes));
    this.bytes.set(key);
    this.view = new DataView(this.bytes.buffer);
    this.at = key.byteLength;
  }
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new PsError('PS_ARGUMENT', `${v} is not a u32`);
    this.view.setUint32(this.at, v, true);
    this.at += 4;
    return this;
  }
  u8(v: number): this {
    this.bytes[this.at++] = v;
    return this;
  }
  /** The head with its padding (already zero). */
  done(): Uint8Array {
    return this.bytes;
  }
}

/** Encoded model names: a worker sends the same one with every push and pull. */
const keyCache = new Map<string, Uint8Array>();
const KEY_CACHE_SIZE = 64;

function cachedKey(name: string): Uint8Array {
  let key = keyCache.get(name);
  if (key === undefined) {
    key = encodeKey(name);
    if (keyCache.size >= KEY_CACHE_SIZE) keyCache.clear();
    keyCache.set(name, key);
  }
  return key;
}

export function decodePush(payload: Uint8Array): { name: string; rank: number; clock: number; grad: Gradient } {
  const r = new PayloadReader(payload);
  const name = r.key('model name');
  const rank = r.u32('rank');
  const clock = r.u32('clock');
  const kind = r.u8('gradient kind');
  const count = r.u32('gradient count');
  r.align('the gradient');
  let grad: Gradient;
  if (kind === GRADIENT_DENSE) grad = { kind: 'dense', values: readF32(r, count, 'dense gradient') };
  else if (kind === GRADIENT_SPARSE) grad = { kind: 'sparse', indices: readU32s(r, count, 'sparse indices'), values: readF32(r, count, 'sparse values') };
  else throw new PsError('PS_BAD_REQUEST', `gradient kind ${kind} is neither 0 (dense) nor 1 (sparse)`);
  r.end('PUSH');
  return { name, rank, clock, grad };
}

// PULL_SPARSE: key name | u32 minClock | u32 timeoutMs | u32 count | pad to 4 | u32[count]
// PULL_FULL:   key name | u32 minClock | u32 timeoutMs

export function encodePull(name: string, minClock: number, timeoutMs: number, indices?: Uint32Array): Uint8Array[] {
  if (!indices) return [encodeKey(name), u32s(minClock, timeoutMs)];
  return [new HeadWriter(name, 12).u32(minClock).u32(timeoutMs).u32(indices.length).done(), bytesOf(indices)];
}

interface PullRequest {
  name: string;
  minClock: number;
  timeoutMs: number;
  /** Absent for PULL_FULL. */
  indices: Uint32Array | undefined;
}

export function decodePull(payload: Uint8Array, sparse: boolean): PullRequest {
  const r = new PayloadReader(payload);
  const name = r.key('model name');
  const minClock = r.u32('minClock');
  const timeoutMs = r.u32('timeoutMs');
  let indices: Uint32Array | undefined;
  if (sparse) {
    const count = r.u32('index count');
    r.align('the indices');
    indices = readU32s(r, count, 'indices');
  }
  r.end(sparse ? 'PULL_SPARSE' : 'PULL_FULL');
  return { name, minClock, timeoutMs, indices };
}

/** Pull reply: u32 clock, then the f32 values (they land 4-byte aligned in the client's frame buffer). */
export function encodePullReply(clock: number, values: Float32Array): Uint8Array[] {
  return [u32s(clock), bytesOf(values)];
}

export function decodePullReply(payload: Uint8Array, expected: number | undefined): { clock: number; values: Float32Array } {
  const r = new PayloadReader(payload);
  const clock = r.u32('clock');
  if (r.remaining % 4 !== 0 || (expected !== undefined && r.remaining !== expected * 4)) {
    throw new PsError('PS_PROTOCOL', `pull reply carries ${r.remaining} value bytes, expected ${expected === undefined ? 'a multiple of 4' : expected * 4}`);
  }
  const start = payload.byteOffset + 4;
  const count = r.remaining / 4;
  // Zero-copy when aligned, which the reference decoder guarantees (payload at byteOffset 8).
  const values = start % 4 === 0 ? new Float32Array(payload.buffer, start, count) : readF32(r, count, 'values');
  return { clock, values };
}

// REGISTER / DEREGISTER: key task | u32 rank | u32 generation

export function encodeRegistration(task: string, rank: number, generation: number): Uint8Array[] {
  return [encodeKey(task), u32s(rank, generation)];
}

export function decodeRegistration(payload: Uint8Array, what: string): { task: string; rank: number; generation: number } {
  const r = new PayloadReader(payload);
  const task = r.key('task');
  const rank = r.u32('rank');
  const generation = r.u32('generation');
  r.end(what);
  return { task, rank, generation };
}

export function encodeFlag(b: boolean): Uint8Array {
  return Uint8Array.of(b ? 1 : 0);
}

export function decodeFlag(payload: Uint8Array, what: string): boolean {
  if (payload.byteLength !== 1 || payload[0]! > 1) throw new PsError('PS_PROTOCOL', `${what}: expected one byte 0 or 1, got ${payload.byteLength} bytes`);
  return payload[0] === 1;
}
