/**
 * The Channel contract every store adapter implements. Values are opaque bytes; tensors travel as
 * tensor frames (codec.ts). Deadlines are absolute times in epoch milliseconds (Date.now()).
 */

export type OpKind = 'put' | 'get' | 'list' | 'delete';

export interface OpCounter {
  /** Requests sent to the server (a chunked value counts each chunk; a LIST page counts once). */
  requests: number;
  /** Value bytes moved (payload only, not protocol framing). */
  bytes: number;
}

export type ChannelStats = Record<OpKind, OpCounter>;

export interface Channel {
  /** Adapter kind: 'memcached' | 's3' | 'ps' | 'memory'. */
  readonly kind: string;
  /**
   * The optional abilities this channel has (see ChannelAbility). Every adapter declares them and
   * the conformance suite checks the declaration against its methods; a wrapper that leaves this
   * out is judged by its methods alone.
   */
  readonly abilities?: readonly ChannelAbility[];
  /** Where it points, for messages (e.g. 'memcached://127.0.0.1:11211'). */
  readonly endpoint: string;
  put(key: string, value: Uint8Array): Promise<void>;
  /** The value, or undefined when the key does not exist (or is not yet completely written). */
  get(key: string): Promise<Uint8Array | undefined>;
  getMany(keys: string[]): Promise<Array<Uint8Array | undefined>>;
  /** Resolves with the value once the key exists; throws WaitTimeoutError after `deadline`. */
  wait(key: string, deadline: number): Promise<Uint8Array>;
  /**
   * Resolves with every value once all keys exist; calls `onValue` as each one arrives (so callers
   * can overlap work with the wait). Throws WaitTimeoutError naming the missing keys after `deadline`.
   */
  waitMany(keys: string[], deadline: number, onValue?: (index: number, value: Uint8Array) => void): Promise<Uint8Array[]>;
  /** Deletes the keys; missing keys are not an error. */
  delete(keys: string[]): Promise<void>;
  /** Keys under `prefix`, where the store can enumerate: the 'list' ability (use canList). */
  list?(prefix: string): Promise<string[]>;
  stats(): ChannelStats;
  resetStats(): void;
  close(): Promise<void>;
}

/**
 * Optional abilities beyond the core contract, each a small interface below with a type guard:
 * - 'list': enumerate keys under a prefix (Listing);
 * - 'putParts': put head ++ body without joining them (PutParts);
 * - 'readInto': waitMany into memory the caller lends (ReadInto).
 */
export type ChannelAbility = 'list' | 'putParts' | 'readInto';
export const CHANNEL_ABILITIES: readonly ChannelAbility[] = ['list', 'putParts', 'readInto'];

/** The method each ability adds. */
export const ABILITY_METHODS: Readonly<Record<ChannelAbility, string>> = { list: 'list', putParts: 'putParts', readInto: 'waitManyInto' };

export interface Listing {
  /** Keys under `prefix`, in byte order. */
  list(prefix: string): Promise<string[]>;
}

export interface PutParts {
  /**
   * Puts the value head ++ body without joining them. The collectives send a frame header and the
   * vector's own memory, which must stay unchanged until the put resolves.
   */
  putParts(key: string, head: Uint8Array, body: Uint8Array): Promise<void>;
}

/**
 * Memory a caller lends for a value of known length: one buffer, or two pieces (the value's first
 * head.byteLength bytes, then the rest), e.g. a frame header apart from a payload read in place.
 */
export type LentBuffer = Uint8Array | { head: Uint8Array; body: Uint8Array };

export interface ReadInto {
  /**
   * waitMany that reads each value into memory the caller lends: `dest(index, byteLength)` returns
   * room for exactly that many bytes, or undefined for a fresh buffer (room of another size is not
   * used). A value read into two pieces is reported as its head piece. Keys must be distinct.
   */
  waitManyInto(
    keys: string[],
    deadline: number,
    dest: (index: number, byteLength: number) => LentBuffer | undefined,
    onValue?: (index: number, value: Uint8Array) => void,
  ): Promise<Uint8Array[]>;
}

/** Whether `ch` has the ability: it has the method, and it declares it (when it declares any). */
export function hasAbility(ch: Channel, ability: ChannelAbility): boolean {
  if (typeof (ch as unknown as Record<string, unknown>)[ABILITY_METHODS[ability]] !== 'function') return false;
  return ch.abilities === undefined || ch.abilities.includes(ability);
}

export function canList(ch: Channel): ch is Channel & Listing {
  return hasAbility(ch, 'list');
}

export function canPutParts(ch: Channel): ch is Channel & PutParts {
  return hasAbility(ch, 'putParts');
}

export function canReadInto(ch: Channel): ch is Channel & ReadInto {
  return hasAbility(ch, 'readInto');
}

/** What every adapter keeps: request and byte counters (the cost model reads them), with stats() and resetStats(). */
export abstract class CountingChannel {
  protected counters: ChannelStats = emptyStats();

  stats(): ChannelStats {
    return structuredClone(this.counters);
  }

  resetStats(): void {
    this.counters = emptyStats();
  }
}

export function emptyStats(): ChannelStats {
  return { put: { requests: 0, bytes: 0 }, get: { requests: 0, bytes: 0 }, list: { requests: 0, bytes: 0 }, delete: { requests: 0, bytes: 0 } };
}

export function addStats(a: ChannelStats, b: ChannelStats): ChannelStats {
  const out = emptyStats();
  for (const k of Object.keys(out) as OpKind[]) {
    out[k].requests = a[k].requests + b[k].requests;
    out[k].bytes = a[k].bytes + b[k].bytes;
  }
  return out;
}

export function totalRequests(s: ChannelStats): number {
  return s.put.requests + s.get.requests + s.list.requests + s.delete.requests;
}

export function totalBytes(s: ChannelStats): number {
  return s.put.bytes + s.get.bytes + s.list.bytes + s.delete.bytes;
}
