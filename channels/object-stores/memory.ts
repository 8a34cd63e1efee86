/** The memory object store: for tests and single-process runs. */
import type { ObjectStore } from '../datasets/types.js';
import { assertObjectKey, assertPrefix, compareKeys } from '../object-store.js';

/** Objects in a Map. Copies on put and on get, so no caller can change a stored object in place. */
export class MemoryObjectStore implements ObjectStore {
  readonly url = 'memory://';
  private readonly objects = new Map<string, Uint8Array>();

  async put(key: string, bytes: Uint8Array): Promise<void> {
    assertObjectKey(key, this.url);
    this.objects.set(key, bytes.slice());
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    assertObjectKey(key, this.url);
    return this.objects.get(key)?.slice();
  }

  async list(prefix: string): Promise<string[]> {
    assertPrefix(prefix, this.url);
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) assertObjectKey(k, this.url);
    for (const k of keys) this.objects.delete(k);
  }

  async close(): Promise<void> {
    // Nothing to release; the objects stay readable, like files after a FileObjectStore closes.
  }
}
