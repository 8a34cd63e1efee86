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
  /** Keys under `prefix`, where the store can enumerate (memcached cannot). */
  list?(prefix: string): Promise<string[]>;
  stats(): ChannelStats;
  resetStats(): void;
  close(): Promise<void>;
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
