/** What a memcached channel remembers about the keys it touched, so overwrites and deletes clean up old chunks. */

/** What this client last saw at a key: inline (no chunks) or the chunk set of a manifest. */
export type Known = { kind: 'inline' } | { kind: 'chunked'; count: number; writeId: string };
export const INLINE: Known = { kind: 'inline' };

/** Map with least-recently-used eviction (Map keeps insertion order; re-insert on use). */
export class LruMap<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly capacity: number) {}
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
  }
  delete(key: K): void {
    this.map.delete(key);
  }
}
