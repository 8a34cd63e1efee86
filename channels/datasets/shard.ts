/**
 * Binary shard objects. A 32-byte header, then 4-byte-aligned sections, so decoding gives
 * zero-copy typed-array views whenever the buffer itself is 4-byte aligned.
 *
 *   offset size  field
 *   0      4     magic "CDSH"
 *   4      1     version (1)
 *   5      1     kind: 1 sparse, 2 dense, 3 ratings
 *   6      2     reserved (0)
 *   8      4     rows (u32)
 *   12     4     cols (u32): sparse feature space / dense columns / 0 for ratings
 *   16     8     nnz (u64): sparse nonzeros; dense rows*cols; ratings rows
 *   24     8     payload bytes after the header (u64)
 *   32           sections:
 *     sparse:  labels f32[rows], indptr u32[rows+1], indices u32[nnz], values f32[nnz]
 *     dense:   labels f32[rows], x f32[rows*cols] (row-major)
 *     ratings: users u32[rows], items u32[rows], ratings f32[rows]
 */
import { CirrusError } from '../../paramserver/index.js';
import type { DatasetKind } from './manifest.js';

export interface SparseShard {
  kind: 'sparse';
  rows: number;
  cols: number;
  labels: Float32Array;
  /** Row r's nonzeros are indices/values[indptr[r] .. indptr[r+1]). */
  indptr: Uint32Array;
  indices: Uint32Array;
  values: Float32Array;
}

export interface DenseShard {
  kind: 'dense';
  rows: number;
  cols: number;
  labels: Float32Array;
  x: Float32Array;
}

export interface RatingsShard {
  kind: 'ratings';
  rows: number;
  cols: 0;
  users: Uint32Array;
  items: Uint32Array;
  ratings: Float32Array;
}

export type Shard = SparseShard | DenseShard | RatingsShard;

export class ShardFormatError extends CirrusError<'SHARD_FORMAT'> {
  constructor(message: string) {
    super('SHARD_FORMAT', message);
  }
}

const MAGIC = [0x43, 0x44, 0x53, 0x48]; // "CDSH"
const VERSION = 1;
const SHARD_HEADER_BYTES = 32;
const KIND_CODE: Record<DatasetKind, number> = { sparse: 1, dense: 2, ratings: 3 };
const CODE_KIND: Record<number, DatasetKind> = { 1: 'sparse', 2: 'dense', 3: 'ratings' };

function sections(shard: Shard): Array<Float32Array | Uint32Array> {
  switch (shard.kind) {
    case 'sparse':
      return [shard.labels, shard.indptr, shard.indices, shard.values];
    case 'dense':
      return [shard.labels, shard.x];
    case 'ratings':
      return [shard.users, shard.items, shard.ratings];
  }
}

function nnzOf(shard: Shard): number {
  return shard.kind === 'sparse' ? shard.indices.length : shard.kind === 'dense' ? shard.rows * shard.cols : shard.rows;
}

/** Checks that the arrays of a shard are consistent with its row and column counts. */
export function validateShard(shard: Shard, what = 'shard'): void {
  const fail = (m: string) => {
    throw new ShardFormatError(`${what}: ${m}`);
  };
  const { rows } = shard;
  if (shard.kind === 'sparse') {
    if (shard.labels.length !== rows) fail(`${shard.labels.length} labels for ${rows} rows`);
    if (shard.indptr.length !== rows + 1) fail(`indptr has ${shard.indptr.length} entries, expected ${rows + 1}`);
    if (shard.indptr[0] !== 0 || shard.indptr[rows] !== shard.indices.length) fail(`indptr must run from 0 to ${shard.indices.length}`);
    if (shard.values.length !== shard.indices.length) fail(`${shard.values.length} values for ${shard.indices.length} indices`);
    for (let r = 0; r < rows; r++) if (shard.indptr[r + 1]! < shard.indptr[r]!) fail(`indptr decreases at row ${r}`);
    for (let i = 0; i < shard.indices.length; i++) if (shard.indices[i]! >= shard.cols) fail(`feature index ${shard.indices[i]} >= ${shard.cols} features`);
  } else if (shard.kind === 'dense') {
    if (shard.labels.length !== rows) fail(`${shard.labels.length} labels for ${rows} rows`);
    if (shard.x.length !== rows * shard.cols) fail(`${shard.x.length} values for ${rows} x ${shard.cols}`);
  } else {
    if (shard.users.length !== rows || shard.items.length !== rows || shard.ratings.length !== rows) fail(`ratings columns must all have ${rows} entries`);
  }
}

export function encodeShard(shard: Shard): Uint8Array {
  validateShard(shard);
  const parts = sections(shard);
  const payload = parts.reduce((s, p) => s + p.byteLength, 0);
  const out = new Uint8Array(SHARD_HEADER_BYTES + payload);
  const view = new DataView(out.buffer);
  MAGIC.forEach((b, i) => (out[i] = b));
  view.setUint8(4, VERSION);
  view.setUint8(5, KIND_CODE[shard.kind]);
  view.setUint32(8, shard.rows, true);
  view.setUint32(12, shard.cols, true);
  view.setBigUint64(16, BigInt(nnzOf(shard)), true);
  view.setBigUint64(24, BigInt(payload), true);
  let offset = SHARD_HEADER_BYTES;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), offset);
    offset += p.byteLength;
  }
  return out;
}

/** Decodes a shard; `what` names it (e.g. its key) in errors. Arrays are views when aligned. */
export function decodeShard(bytes: Uint8Array, what = 'shard'): Shard {
  if (bytes.byteLength < SHARD_HEADER_BYTES || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new ShardFormatError(`${what}: not a dataset shard (expected magic "CDSH" and at least ${SHARD_HEADER_BYTES} bytes, got ${bytes.byteLength} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(4);
  if (version !== VERSION) throw new ShardFormatError(`${what}: shard format version ${version} is not supported (expected ${VERSION})`);
  const kind = CODE_KIND[view.getUint8(5)];
  if (!kind) throw new ShardFormatError(`${what}: unknown shard kind ${view.getUint8(5)}`);
  const rows = view.getUint32(8, true);
  const cols = view.getUint32(12, true);
  const nnz = Number(view.getBigUint64(16, true));
  const payload = Number(view.getBigUint64(24, true));
  if (bytes.byteLength !== SHARD_HEADER_BYTES + payload) {
    throw new ShardFormatError(`${what}: shard truncated or padded: ${bytes.byteLength} bytes, header declares ${SHARD_HEADER_BYTES + payload}`);
  }
  // Copy once to an aligned buffer when the input is not 4-byte aligned.
  const base = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  let offset = base.byteOffset + SHARD_HEADER_BYTES;
  const f32 = (n: number) => {
    const a = new Float32Array(base.buffer, offset, n);
    offset += 4 * n;
    return a;
  };
  const u32 = (n: number) => {
    const a = new Uint32Array(base.buffer, offset, n);
    offset += 4 * n;
    return a;
  };
  const expected = kind === 'sparse' ? 4 * (rows + rows + 1 + 2 * nnz) : kind === 'dense' ? 4 * (rows + rows * cols) : 12 * rows;
  if (expected !== payload) throw new ShardFormatError(`${what}: ${kind} shard of ${rows} rows, ${cols} cols, ${nnz} nonzeros needs ${expected} payload bytes, header says ${payload}`);
  let shard: Shard;
  if (kind === 'sparse') shard = { kind, rows, cols, labels: f32(rows), indptr: u32(rows + 1), indices: u32(nnz), values: f32(nnz) };
  else if (kind === 'dense') shard = { kind, rows, cols, labels: f32(rows), x: f32(rows * cols) };
  else shard = { kind, rows, cols: 0, users: u32(rows), items: u32(rows), ratings: f32(rows) };
  validateShard(shard, what);
  return shard;
}
