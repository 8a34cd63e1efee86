/** Small helpers for test data shared by several test files. */
import type { ObjectStore } from '../../channels/datasets/types.js';

/** Deterministic uniform [0, 1) (an LCG is plenty for test data). */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** n deterministic bytes that differ with the seed and along the buffer. */
export function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >>> 8)) & 0xff;
  return out;
}

/** Byte-for-byte equality (false when `a` is missing). */
export function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.byteLength === b.byteLength && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/** An ObjectStore that forwards everything; tests subclass it to inject delays or failures. */
export class WrappedStore implements ObjectStore {
  constructor(protected readonly inner: ObjectStore) {}
  get url(): string {
    return this.inner.url;
  }
  put(key: string, bytes: Uint8Array): Promise<void> {
    return this.inner.put(key, bytes);
  }
  get(key: string): Promise<Uint8Array | undefined> {
    return this.inner.get(key);
  }
  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }
  delete(keys: string[]): Promise<void> {
    return this.inner.delete(keys);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
