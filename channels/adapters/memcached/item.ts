/**
 * The memcached adapter's item format. Every item stored at a user key starts with a 1-byte tag.
 *   0x00  inline: the rest of the item is the value.
 *   0x01  manifest (MANIFEST_BYTES): the value lives in `count` chunk items whose keys derive from
 *         the key and a random 8-byte write id, so a rewrite never touches chunks a reader may be
 *         fetching. Chunks are written first and the manifest last: a reader sees the old value,
 *         the new value or nothing, never a mix.
 * Chunk items hold raw bytes (no tag).
 */
import { createHash } from 'node:crypto';
import type { LentBuffer } from '../../channel.js';
import { MAX_KEY_BYTES } from '../../keys.js';

export const TAG_INLINE = 0x00;
const TAG_MANIFEST = 0x01;
const MANIFEST_VERSION = 1;
/** tag(1) version(1) count(u32) total(u64) chunkBytes(u32) writeId(8). */
export const MANIFEST_BYTES = 1 + 1 + 4 + 8 + 4 + 8;

export interface Manifest {
  count: number;
  totalBytes: number;
  chunkBytes: number;
  /** 16 hex digits. */
  writeId: string;
}

export function encodeManifest(m: Manifest): Buffer {
  const b = Buffer.alloc(MANIFEST_BYTES);
  b[0] = TAG_MANIFEST;
  b[1] = MANIFEST_VERSION;
  b.writeUInt32BE(m.count, 2);
  b.writeBigUInt64BE(BigInt(m.totalBytes), 6);
  b.writeUInt32BE(m.chunkBytes, 14);
  b.write(m.writeId, 18, 8, 'hex');
  return b;
}

/** Parses a manifest item; undefined when `item` is not a well-formed manifest. */
export function decodeManifest(item: Uint8Array): Manifest | undefined {
  if (item.byteLength !== MANIFEST_BYTES || item[0] !== TAG_MANIFEST || item[1] !== MANIFEST_VERSION) return undefined;
  const b = Buffer.from(item.buffer, item.byteOffset, item.byteLength);
  const count = b.readUInt32BE(2);
  const total = b.readBigUInt64BE(6);
  const chunkBytes = b.readUInt32BE(14);
  if (total > BigInt(Number.MAX_SAFE_INTEGER) || chunkBytes === 0) return undefined;
  const totalBytes = Number(total);
  if (count !== Math.ceil(totalBytes / chunkBytes) || count === 0) return undefined;
  return { count, totalBytes, chunkBytes, writeId: b.toString('hex', 18, 26) };
}

/** Key of chunk `index` of the value written with `writeId` at `key`. */
export function chunkKey(key: string, writeId: string, index: number): string {
  const direct = `${key}~${writeId}.${index}`;
  if (Buffer.byteLength(direct) <= MAX_KEY_BYTES) return direct;
  // Long keys: chunk keys only need to be unique, and the write id already makes them so.
  const digest = createHash('sha256').update(key).digest('hex').slice(0, 40);
  return `~chunk/${digest}~${writeId}.${index}`;
}

/** Whether a key is a chunk item (see chunkKey), not a user key. */
export function isChunkKey(key: string): boolean {
  return key.startsWith('~chunk/') || /~[0-9a-f]{16}\.\d+$/.test(key);
}

export function chunkKeys(key: string, m: Pick<Manifest, 'count' | 'writeId'>): string[] {
  return Array.from({ length: m.count }, (_, i) => chunkKey(key, m.writeId, i));
}

/** Room a reader lends for a value of `byteLength` bytes (see ReadInto in the contract). */
export type Lend = (byteLength: number) => LentBuffer | undefined;

/** An item as read: an inline value (`bytes` long, tag excluded) or a manifest. */
export type Item = { kind: 'inline'; value: Uint8Array; bytes: number } | { kind: 'manifest'; manifest: Manifest };

/**
 * Where a `bytes`-long value goes: the lent room as its pieces in order (one buffer, or head then
 * body) when its size matches, else a fresh buffer. A value read into pieces is reported as its
 * first piece.
 */
export function roomFor(lent: LentBuffer | undefined, bytes: number): [Uint8Array] | [Uint8Array, Uint8Array] {
  if (lent instanceof Uint8Array) {
    if (lent.byteLength === bytes) return [lent];
  } else if (lent !== undefined && lent.head.byteLength + lent.body.byteLength === bytes) return [lent.head, lent.body];
  return [new Uint8Array(bytes)];
}

export function view(b: Uint8Array, start: number, end = b.byteLength): Buffer {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start);
}
