/** In-process channel for unit tests: a Map with change notification (no polling). */
import { CountingChannel, type Channel, type ChannelAbility, type Listing } from '../../channel.js';
import { ChannelError, WaitTimeoutError } from '../../errors.js';
import { assertKey } from '../../keys.js';

/** The data behind memory channels; several clients may share one store, as on a real server. */
export class MemoryStore {
  readonly values = new Map<string, Uint8Array>();
  readonly waiters = new Map<string, Set<() => void>>();
}

export class MemoryChannel extends CountingChannel implements Channel, Listing {
  readonly kind = 'memory';
  readonly abilities: readonly ChannelAbility[] = ['list'];
  readonly endpoint = 'memory://';
  private readonly store: Map<string, Uint8Array>;
  private readonly waiters: Map<string, Set<() => void>>;
  private closed = false;

  constructor(shared: MemoryStore = new MemoryStore()) {
    super();
    this.store = shared.values;
    this.waiters = shared.waiters;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.check(key);
    // Copy: a caller reusing its buffer must not change what readers see.
    this.store.set(key, value.slice());
    this.counters.put.requests++;
    this.counters.put.bytes += value.byteLength;
    const ws = this.waiters.get(key);
    if (ws) for (const wake of [...ws]) wake();
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.check(key);
    this.counters.get.requests++;
    const v = this.store.get(key);
    if (v) this.counters.get.bytes += v.byteLength;
    return v;
  }

  async getMany(keys: string[]): Promise<Array<Uint8Array | undefined>> {
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async wait(key: string, deadline: number): Promise<Uint8Array> {
    const [v] = await this.waitMany([key], deadline);
    return v!;
  }

  waitMany(keys: string[], deadline: number, onValue?: (index: number, value: Uint8Array) => void): Promise<Uint8Array[]> {
    const started = Date.now();
    try {
      for (const k of keys) this.check(k);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const out: Array<Uint8Array | undefined> = new Array(keys.length);
      let remaining = keys.length;
      const cleanups: Array<() => void> = [];
      const finish = (err?: Error) => {
        clearTimeout(timer);
        for (const c of cleanups) c();
        if (err) reject(err);
        else resolve(out as Uint8Array[]);
      };
      const timer = setTimeout(() => {
        const missing = keys.filter((_, i) => out[i] === undefined);
        finish(new WaitTimeoutError(missing, Date.now() - started, this.endpoint));
      }, Math.max(0, deadline - Date.now()));
      keys.forEach((key, i) => {
        const take = (): boolean => {
          const v = this.store.get(key);
          if (v === undefined || out[i] !== undefined) return false;
          this.counters.get.requests++;
          this.counters.get.bytes += v.byteLength;
          out[i] = v;
          onValue?.(i, v);
          if (--remaining === 0) finish();
          return true;
        };
        if (take()) return;
        let set = this.waiters.get(key);
        if (!set) this.waiters.set(key, (set = new Set()));
        const waiting = set;
        const wake = () => {
          if (take()) waiting.delete(wake);
        };
        waiting.add(wake);
        cleanups.push(() => {
          waiting.delete(wake);
          if (waiting.size === 0 && this.waiters.get(key) === waiting) this.waiters.delete(key);
        });
      });
      if (keys.length === 0) finish();
    });
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) {
      this.check(k);
      this.store.delete(k);
      this.counters.delete.requests++;
    }
  }

  async list(prefix: string): Promise<string[]> {
    if (this.closed) throw new ChannelError('CHANNEL_CLOSED', 'memory channel is closed');
    this.counters.list.requests++;
    return [...this.store.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Number of keys held (tests use it to check that nothing is left behind). */
  size(): number {
    return this.store.size;
  }

  private check(key: string): void {
    if (this.closed) throw new ChannelError('CHANNEL_CLOSED', 'memory channel is closed');
    assertKey(key);
  }
}
