/**
 * The parameter server's key-value store: opaque values by key under a bound on the bytes held,
 * and WAITs parked on keys not yet set, answered when the key is set or their timer fires.
 */
import type { Respond } from './model-service.js';
import { Status, type StatusCode } from './protocol.js';

/** setTimeout fires at once for delays above this, so longer WAITs are clamped to it. */
const MAX_TIMER_MS = 0x7fffffff;

/** What parks WAITs (a connection): the set lets it release them all when it goes away. */
export interface WaitOwner {
  readonly waiters: Set<Waiter>;
}

export interface Waiter {
  owner: WaitOwner;
  key: string;
  timer: NodeJS.Timeout;
  answer: Respond;
}

export class KvStore {
  private readonly values = new Map<string, Uint8Array>();
  private readonly waitersByKey = new Map<string, Set<Waiter>>();
  private held = 0;
  private parked = 0;

  constructor(readonly maxBytes: number) {}

  /** Keys stored. */
  get size(): number {
    return this.values.size;
  }

  /** Sum of stored value lengths. */
  get bytesHeld(): number {
    return this.held;
  }

  /** WAITs currently parked. */
  get waiterCount(): number {
    return this.parked;
  }

  /** The live map, for a snapshot (read before its first await, so it is one point in time). */
  entries(): ReadonlyMap<string, Uint8Array> {
    return this.values;
  }

  get(key: string): Uint8Array | undefined {
    return this.values.get(key);
  }

  /**
   * Stores `value` (a view into its frame's own buffer, so storing it copies nothing). Returns why
   * it was refused when it would take the store over maxBytes; nothing changes then. Waiters are
   * woken separately (wake), after the SET's own reply.
   */
  set(key: string, value: Uint8Array): string | undefined {
    const old = this.values.get(key);
    const held = this.held - (old?.byteLength ?? 0) + value.byteLength;
    if (held > this.maxBytes) return `SET '${key}': ${value.byteLength} bytes would bring the store to ${held} bytes, over its bound of ${this.maxBytes}`;
    this.values.set(key, value);
    this.held = held;
    return undefined;
  }

  /** Deletes the keys; returns how many existed. */
  delete(keys: readonly string[]): number {
    let deleted = 0;
    for (const key of keys) {
      const old = this.values.get(key);
      if (old === undefined) continue;
      this.values.delete(key);
      this.held -= old.byteLength;
      deleted++;
    }
    return deleted;
  }

  /** Keys starting with `prefix`, sorted. */
  list(prefix: string): string[] {
    return [...this.values.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  /** Replaces every value (a restored snapshot). */
  load(values: ReadonlyArray<[string, Uint8Array]>): void {
    this.values.clear();
    this.held = 0;
    for (const [k, v] of values) {
      this.values.set(k, v);
      this.held += v.byteLength;
    }
  }

  /** Parks a WAIT on `key`: answered OK with the value by wake(), or TIMEOUT after `timeoutMs`. */
  park(owner: WaitOwner, key: string, timeoutMs: number, answer: Respond): void {
    const w: Waiter = {
      owner,
      key,
      answer,
      timer: setTimeout(() => {
        this.remove(w);
        answer(Status.TIMEOUT, []);
      }, Math.min(timeoutMs, MAX_TIMER_MS)),
    };
    let set = this.waitersByKey.get(key);
    if (!set) this.waitersByKey.set(key, (set = new Set()));
    set.add(w);
    owner.waiters.add(w);
    this.parked++;
  }

  /** Answers every WAIT parked on `key` with its new value. */
  wake(key: string, value: Uint8Array): void {
    const set = this.waitersByKey.get(key);
    if (!set) return;
    for (const w of [...set]) {
      this.remove(w);
      w.answer(Status.OK, [value]);
    }
  }

  /** Drops the owner's parked WAITs without answering them (its connection is going away). */
  dropOwner(owner: WaitOwner): void {
    for (const w of [...owner.waiters]) this.remove(w);
  }

  /** Answers each of the owner's parked WAITs with `status` (e.g. SHUTTING_DOWN) and drops it. */
  answerOwner(owner: WaitOwner, status: StatusCode, parts: Uint8Array[]): void {
    for (const w of [...owner.waiters]) {
      this.remove(w);
      w.answer(status, parts);
    }
  }

  private remove(w: Waiter): void {
    clearTimeout(w.timer);
    if (!w.owner.waiters.delete(w)) return;
    this.parked--;
    const set = this.waitersByKey.get(w.key);
    if (set) {
      set.delete(w);
      if (set.size === 0) this.waitersByKey.delete(w.key);
    }
  }
}
