/**
 * Plain object stores (no channel envelope) for datasets: S3 (or any S3-compatible server), a
 * directory of files, or memory. All three accept the same keys: '/'-separated relative paths of
 * non-empty segments, none of them '.' or '..', so a dataset moves between stores unchanged.
 *
 * This module holds what all three share: the error and the key rules. The stores are in
 * object-stores/ (memory.ts, file.ts, s3.ts; open.ts opens one by URL or spec).
 */
import { CirrusError } from '../paramserver/index.js';

export type ObjectStoreErrorCode =
  /** A key or prefix that no store accepts. */
  | 'OBJECT_STORE_KEY'
  /** A request to the backing store failed. */
  | 'OBJECT_STORE_REQUEST'
  /** openObjectStore() got a target it cannot open (bad URL, unknown scheme, bad spec). */
  | 'OBJECT_STORE_TARGET'
  /** The store answered, but the bucket or directory cannot be used. */
  | 'OBJECT_STORE_UNREACHABLE'
  | 'OBJECT_STORE_CLOSED';

export class ObjectStoreError extends CirrusError<ObjectStoreErrorCode> {}

/** S3's own key limit; the other stores keep it so keys stay portable. */
const MAX_KEY_BYTES = 1024;

/** Throws unless `key` is a portable object key; returns it. */
export function assertObjectKey(key: string, store: string): string {
  const bad = (why: string): never => {
    throw new ObjectStoreError('OBJECT_STORE_KEY', `key '${printable(key)}' for ${store} is invalid: ${why}`);
  };
  if (key.length === 0) bad('keys must not be empty');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) bad(`expected at most ${MAX_KEY_BYTES} bytes, got ${Buffer.byteLength(key)}`);
  checkPath(key, bad);
  if (key.endsWith('/')) bad("keys must not end with '/'");
  return key;
}

/** Throws unless `prefix` may be listed: it may be empty or end anywhere (even mid-segment), but may not climb out. */
export function assertPrefix(prefix: string, store: string): void {
  if (prefix === '') return;
  checkPath(prefix, (why) => {
    throw new ObjectStoreError('OBJECT_STORE_KEY', `prefix '${printable(prefix)}' for ${store} is invalid: ${why}`);
  });
}

function checkPath(path: string, bad: (why: string) => never): void {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) bad('control characters are not allowed');
  if (path.includes('\\')) bad("use '/' as the separator, not '\\'");
  if (path.startsWith('/')) bad("keys are relative: they must not start with '/'");
  const segments = path.split('/');
  // The last segment of a prefix may be empty (a prefix ending in '/').
  segments.forEach((s, i) => {
    if (s === '..' || s === '.') bad(`'${s}' segments are not allowed`);
    if (s === '' && i < segments.length - 1) bad("empty segments ('//') are not allowed");
  });
}

export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  const shown = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return shown.length > 80 ? `${shown.slice(0, 80)}...` : shown;
}

/** Byte-wise order of the UTF-8 encodings, which is how S3 lists keys. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
