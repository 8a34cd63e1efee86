/**
 * Memcached channel (memjs, binary protocol).
 *
 * Item layout: every item stored at a user key starts with a 1-byte tag.
 *   0x00  inline: the rest of the item is the value.
 *   0x01  manifest (MANIFEST_BYTES): the value lives in `count` chunk items whose keys derive from
 *         the key and a random 8-byte write id, so a rewrite never touches chunks a reader may be
 *         fetching. Chunks are written first and the manifest last: a reader sees the old value,
 *         the new value or nothing, never a mix.
 * Chunk items hold raw bytes (no tag). Every item expires ttlS after its last write (default a
 * day), so what a dead client or a hung run left does not stay forever; a job's keys are rewritten
 * far more often than that, so no live value expires.
 *
 * Clients: memjs writes small items (manifests, inline values under SMALL_ITEM_BYTES) and probes
 * the server. Everything else goes through BulkConnection (memcached-bulk.ts), which neither
 * copies a value to send it nor allocates per packet to receive it: larger inline values, chunk
 * items, every read and every delete. A read is one GET whatever the value's size (a reader
 * cannot know it before the answer), and lands straight in the assembled value or in memory the
 * caller lends (see waitManyInto).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Client as MemjsClient } from 'memjs';
import { type Channel, type ChannelAbility, type ChannelStats, type LentBuffer, type Listing, type OpKind, type PutParts, type ReadInto, emptyStats } from '../../channel.js';
import { ChannelError } from '../../errors.js';
import { type BulkConnection, openBulkConnection } from './bulk.js';
import { createLinearClient } from './memjs-linear.js';
import { listMemcachedKeys } from './list-keys.js';
import { MAX_KEY_BYTES, assertKey } from '../../keys.js';
import { FAST_POLL, type PollPolicy, pollMany } from '../../poll.js';
import { type MemcachedSpecInput, memcachedSpec } from '../../spec.js';

type Client = MemjsClient;

const TAG_INLINE = 0x00;
const TAG_MANIFEST = 0x01;
const MANIFEST_VERSION = 1;
/** tag(1) version(1) count(u32) total(u64) chunkBytes(u32) writeId(8). */
export const MANIFEST_BYTES = 1 + 1 + 4 + 8 + 4 + 8;
/** Chunk locations remembered for overwrite/delete clean-up. */
const KNOWN_CAPACITY = 10_000;
/** Grace on top of memjs' own timeout before we declare a request lost (memjs can miss a closed socket). */
const BACKSTOP_GRACE_MS = 1_000;
const PROBE_KEY = 'cirrus~probe';
/** Inline values from this size on go out on a bulk connection (no copy); smaller ones via memjs. */
export const SMALL_ITEM_BYTES = 4096;
const EMPTY = new Uint8Array(0);
/**
 * A poll is one GET miss (tens of microseconds), so waits poll at a granularity relative to how
 * long they have waited: a rank waiting 30 ms for a peer arrives at most ~3 ms late, where a
 * fixed 10 ms cap could make it ~5 ms late on average.
 */
const MEMCACHED_POLL: PollPolicy = { ...FAST_POLL, maxDelayFraction: 0.1 };

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

/** What this client last saw at a key: inline (no chunks) or the chunk set of a manifest. */
type Known = { kind: 'inline' } | { kind: 'chunked'; count: number; writeId: string };
const INLINE: Known = { kind: 'inline' };

/** Map with least-recently-used eviction (Map keeps insertion order; re-insert on use). */
class LruMap<K, V> {
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

type Lend = (byteLength: number) => LentBuffer | undefined;

/** An item as read: an inline value (`bytes` long, tag excluded) or a manifest. */
type Item = { kind: 'inline'; value: Uint8Array; bytes: number } | { kind: 'manifest'; manifest: Manifest };

const silentLogger = { log: (): void => undefined };

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function hint(e: unknown): string {
  return /too large/i.test(reason(e))
    ? ' (the server item size limit, memcached -I, is below chunkBytes plus ~100 bytes of item overhead: lower chunkBytes or raise -I)'
    : '';
}

/**
 * Where a `bytes`-long value goes: the lent room as its pieces in order (one buffer, or head then
 * body) when its size matches, else a fresh buffer. A value read into pieces is reported as its
 * first piece.
 */
function roomFor(lent: LentBuffer | undefined, bytes: number): [Uint8Array] | [Uint8Array, Uint8Array] {
  if (lent instanceof Uint8Array) {
    if (lent.byteLength === bytes) return [lent];
  } else if (lent !== undefined && lent.head.byteLength + lent.body.byteLength === bytes) return [lent.head, lent.body];
  return [new Uint8Array(bytes)];
}

function view(b: Uint8Array, start: number, end = b.byteLength): Buffer {
  return Buffer.from(b.buffer, b.byteOffset + start, end - start);
}

export class MemcachedChannel implements Channel, Listing, PutParts, ReadInto {
  readonly kind = 'memcached';
  readonly abilities: readonly ChannelAbility[] = ['list', 'putParts', 'readInto'];
  readonly endpoint: string;
  private readonly server: string;
  private readonly timeoutMs: number;
  private readonly chunkBytes: number;
  private readonly ttlS: number;
  private readonly clients: Client[];
  private nextClient = 0;
  private readonly bulk: BulkConnection[];
  private nextBulk = 0;
  private counters = emptyStats();
  private closed = false;
  private readonly known = new LruMap<string, Known>(KNOWN_CAPACITY);
  /** Keys with a put in flight: reads must not overwrite what the put records in `known`. */
  private readonly putting = new Map<string, number>();
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(spec: MemcachedSpecInput) {
    const r = memcachedSpec.safeParse(spec);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new ChannelError('CHANNEL_ENDPOINT', `memcached spec ${['', ...issue.path.map(String)].join('.') || '.'}: ${issue.message}`);
    }
    const s = r.data;
    this.server = s.server;
    this.endpoint = `memcached://${s.server}`;
    this.timeoutMs = s.timeoutMs;
    this.chunkBytes = s.chunkBytes;
    this.ttlS = s.ttlS;
    // One memjs Client per connection: each owns one socket, so requests spread over sockets.
    this.clients = Array.from({ length: s.connections }, () =>
      createLinearClient(s.server, {
        timeout: s.timeoutMs / 1000,
        conntimeout: s.timeoutMs / 1000,
        // memjs retries after a fixed delay on any error; fail fast and let the caller decide.
        retries: 0,
        keepAlive: true,
        logger: silentLogger,
      }),
    );
    this.bulk = Array.from({ length: s.connections }, () => openBulkConnection(s.server, s.timeoutMs));
  }

  /** Creates a channel and checks the server answers within spec.timeoutMs. */
  static async open(spec: MemcachedSpecInput): Promise<MemcachedChannel> {
    const ch = new MemcachedChannel(spec);
    try {
      await ch.probe();
    } catch (e) {
      ch.abort(new Error('probe failed'));
      throw new ChannelError('CHANNEL_UNREACHABLE', `memcached at ${ch.server} is unreachable: ${reason(e)}`, { cause: e });
    }
    return ch;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    return this.putParts(key, EMPTY, value);
  }

  /**
   * Puts the value head ++ body without joining them: the body's bytes go to the socket as they
   * are, so they must stay unchanged until this resolves. head is short (a frame header).
   */
  async putParts(key: string, head: Uint8Array, body: Uint8Array): Promise<void> {
    this.check(key);
    this.putting.set(key, (this.putting.get(key) ?? 0) + 1);
    try {
      const total = head.byteLength + body.byteLength;
      let now: Known;
      if (total + 1 <= this.chunkBytes) {
        if (total < SMALL_ITEM_BYTES) {
          const item = Buffer.allocUnsafe(total + 1);
          item[0] = TAG_INLINE;
          item.set(head, 1);
          item.set(body, 1 + head.byteLength);
          await this.rawSet(key, item, total);
        } else {
          const lead = new Uint8Array(1 + head.byteLength);
          lead[0] = TAG_INLINE;
          lead.set(head, 1);
          await this.bulkSet(key, body, lead, total);
        }
        now = INLINE;
      } else {
        now = await this.putChunked(key, head, body);
      }
      // Read what the key held only now: with two puts on one key from this client, each one cleans
      // up after whichever manifest it replaced.
      const previous = this.known.get(key);
      this.known.set(key, now);
      if (previous?.kind === 'chunked' && !(now.kind === 'chunked' && now.writeId === previous.writeId)) {
        // The old chunks are garbage now; a failure here must not fail a put that succeeded.
        await this.deleteRaw(chunkKeys(key, previous)).catch(() => undefined);
      }
    } finally {
      const n = this.putting.get(key)! - 1;
      if (n === 0) this.putting.delete(key);
      else this.putting.set(key, n);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.check(key);
    return this.read(key);
  }

  async getMany(keys: string[]): Promise<Array<Uint8Array | undefined>> {
    for (const k of keys) this.check(k);
    // memjs pipelines concurrent requests on each socket.
    return Promise.all(keys.map((k) => this.read(k)));
  }

  async wait(key: string, deadline: number): Promise<Uint8Array> {
    const [v] = await this.waitMany([key], deadline);
    return v!;
  }

  async waitMany(keys: string[], deadline: number, onValue?: (index: number, value: Uint8Array) => void): Promise<Uint8Array[]> {
    for (const k of keys) this.check(k);
    return pollMany(keys, deadline, (missing) => Promise.all(missing.map((k) => this.read(k))), MEMCACHED_POLL, this.endpoint, onValue);
  }

  /**
   * waitMany that assembles each chunked value in memory the caller lends: `dest(index, bytes)`
   * returns room for exactly that many bytes (or undefined for a fresh buffer). Lets a caller that
   * consumes values at once reuse its buffers instead of allocating megabytes per read, which
   * is what makes V8 run full GCs. A value read into two pieces is reported as its head piece
   * (the caller knows the body is in place). Inline values still come back as views of the
   * received bytes.
   */
  async waitManyInto(
    keys: string[],
    deadline: number,
    dest: (index: number, byteLength: number) => LentBuffer | undefined,
    onValue?: (index: number, value: Uint8Array) => void,
  ): Promise<Uint8Array[]> {
    for (const k of keys) this.check(k);
    const index = new Map(keys.map((k, i) => [k, i]));
    // Lent memory is per key: a key listed twice would have two values read into one buffer.
    if (index.size !== keys.length) throw new ChannelError('KEY_INVALID', `${this.endpoint}: waitManyInto needs distinct keys; a key is listed twice`);
    return pollMany(
      keys,
      deadline,
      (missing) => Promise.all(missing.map((k) => this.read(k, (n) => dest(index.get(k)!, n)))),
      MEMCACHED_POLL,
      this.endpoint,
      onValue,
    );
  }

  /** Keys under `prefix`, found by crawling the server (memcached-keys.ts). */
  async list(prefix: string): Promise<string[]> {
    this.counters.list.requests++;
    return listMemcachedKeys(this.server, prefix, this.timeoutMs, isChunkKey);
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.check(k);
    await Promise.all(keys.map((k) => this.deleteOne(k)));
  }

  stats(): ChannelStats {
    return structuredClone(this.counters);
  }

  resetStats(): void {
    this.counters = emptyStats();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      // Let requests already on the wire finish (each is bounded by its timeout) before closing sockets.
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      for (const c of this.clients) c.close();
      for (const b of this.bulk) b.close();
    })();
    return this.closing;
  }

  // ---- internals -------------------------------------------------------------------------------

  private check(key: string): void {
    if (this.closed) throw new ChannelError('CHANNEL_CLOSED', `${this.endpoint}: channel is closed`);
    assertKey(key);
  }

  /** Chunk i holds bytes [i * chunkBytes, (i + 1) * chunkBytes) of head ++ body; head (short) leads chunk 0. */
  private async putChunked(key: string, head: Uint8Array, body: Uint8Array): Promise<Known> {
    const size = this.chunkBytes;
    const h = head.byteLength;
    const total = h + body.byteLength;
    if (h >= size) throw new ChannelError('CHANNEL_REQUEST', `${this.endpoint}: a value's head part (${h} bytes) must be shorter than chunkBytes (${size})`);
    const count = Math.ceil(total / size);
    const writeId = randomBytes(8).toString('hex');
    const keys = chunkKeys(key, { count, writeId });
    try {
      // Views, not copies: the bulk connection writes them to the socket as they are.
      await Promise.all(
        keys.map((k, i) => {
          const start = i * size;
          const end = Math.min(total, start + size);
          return i === 0 && h > 0 ? this.bulkSet(k, view(body, 0, end - h), head, end) : this.bulkSet(k, view(body, start - h, end - h));
        }),
      );
      await this.rawSet(key, encodeManifest({ count, totalBytes: total, chunkBytes: size, writeId }));
    } catch (e) {
      // No manifest points at these chunks; drop whatever made it (best effort).
      await this.deleteRaw(keys).catch(() => undefined);
      throw e;
    }
    return { kind: 'chunked', count, writeId };
  }

  private remember(key: string, k: Known | undefined): void {
    if (this.putting.has(key)) return;
    if (k === undefined) this.known.delete(key);
    else this.known.set(key, k);
  }

  private async read(key: string, dest?: Lend): Promise<Uint8Array | undefined> {
    let item = await this.fetchItem(key, dest);
    for (let attempt = 0; ; attempt++) {
      if (item === undefined) {
        this.remember(key, undefined);
        return undefined;
      }
      if (item.kind === 'inline') {
        this.counters.get.bytes += item.bytes;
        this.remember(key, INLINE);
        return item.value;
      }
      this.counters.get.bytes += MANIFEST_BYTES;
      const m = item.manifest;
      const value = await this.fetchChunks(key, m, dest);
      if (value !== undefined) {
        this.remember(key, { kind: 'chunked', count: m.count, writeId: m.writeId });
        return value;
      }
      // A chunk vanished: normally the value was overwritten or deleted under us. Look again once.
      if (attempt >= 1) return undefined;
      const again = await this.fetchItem(key);
      if (again?.kind === 'manifest' && again.manifest.writeId === m.writeId) {
        throw new ChannelError(
          'CHANNEL_CORRUPT',
          `${this.endpoint}: value at '${key}' lost chunks while its manifest is still present (evicted? give memcached more memory with -m)`,
        );
      }
      item = again;
    }
  }

  /**
   * One GET of the item at `key`, on a bulk connection (a value of any size is read at once, and
   * the reader cannot know its size before the answer). An inline value too large to be a
   * manifest lands in the memory `dest` lends for it, past a 1-byte scratch for its tag.
   */
  private async fetchItem(key: string, dest?: Lend): Promise<Item | undefined> {
    let small: Uint8Array | undefined;
    let value: Uint8Array | undefined;
    const tag = new Uint8Array(1);
    const n = await this.sendBulk('get', (c) =>
      c.getWith(key, (bytes) => {
        if (bytes <= MANIFEST_BYTES) return [(small = new Uint8Array(bytes))];
        const room = roomFor(dest?.(bytes - 1), bytes - 1);
        value = room[0];
        return [tag, ...room];
      }),
    );
    if (n < 0) return undefined;
    if (small !== undefined) return this.decode(key, small);
    if (tag[0] !== TAG_INLINE) throw this.foreign(key, n, tag[0]!);
    return { kind: 'inline', value: value!, bytes: n - 1 };
  }

  private decode(key: string, item: Uint8Array): Item {
    if (item.byteLength >= 1 && item[0] === TAG_INLINE) {
      return { kind: 'inline', value: item.subarray(1), bytes: item.byteLength - 1 };
    }
    const manifest = decodeManifest(item);
    if (manifest) return { kind: 'manifest', manifest };
    throw this.foreign(key, item.byteLength, item[0]);
  }

  private foreign(key: string, bytes: number, tag: number | undefined): ChannelError {
    return new ChannelError('CHANNEL_CORRUPT', `${this.endpoint}: item at '${key}' (${bytes} bytes, tag ${tag ?? 'none'}) was not written by a Cirrus memcached channel`);
  }

  /** The assembled value, or undefined when a chunk is missing. */
  private async fetchChunks(key: string, m: Manifest, dest?: Lend): Promise<Uint8Array | undefined> {
    const [out, body] = roomFor(dest?.(m.totalBytes), m.totalBytes);
    const h = out.byteLength;
    let missing = false;
    await Promise.all(
      chunkKeys(key, m).map(async (k, i) => {
        const start = i * m.chunkBytes;
        const expected = i < m.count - 1 ? m.chunkBytes : m.totalBytes - start;
        // Read in place: the chunk's bytes land in `out` (then `body`) without an intermediate buffer.
        const end = start + expected;
        const got = await this.sendBulk('get', (c) =>
          body === undefined || end <= h
            ? c.getInto(k, out.subarray(start, end))
            : start >= h
              ? c.getInto(k, body.subarray(start - h, end - h))
              : c.getInto(k, out.subarray(start), body.subarray(0, end - h)),
        );
        if (got < 0) {
          missing = true;
          return;
        }
        this.counters.get.bytes += got;
        if (got !== expected) {
          throw new ChannelError('CHANNEL_CORRUPT', `${this.endpoint}: chunk ${i} of '${key}' has ${got} bytes, expected ${expected}`);
        }
      }),
    );
    return missing ? undefined : out;
  }

  private async deleteOne(key: string): Promise<void> {
    let known = this.known.get(key);
    if (known === undefined) {
      // Unknown key: learn whether chunks hang off it. Only a manifest-sized item is read; a
      // larger one is inline and only measured.
      let small: Uint8Array | undefined;
      const n = await this.sendBulk('get', (c) => c.getWith(key, (bytes) => (bytes === MANIFEST_BYTES ? [(small = new Uint8Array(bytes))] : undefined)));
      if (n >= 0) {
        const m = small && decodeManifest(small);
        this.counters.get.bytes += m ? MANIFEST_BYTES : Math.max(0, n - 1);
        known = m ? { kind: 'chunked', count: m.count, writeId: m.writeId } : INLINE;
      }
    }
    // Manifest first: a reader then sees "gone" rather than a manifest whose chunks are missing.
    await this.deleteRaw([key]);
    this.known.delete(key);
    if (known?.kind === 'chunked') await this.deleteRaw(chunkKeys(key, known));
  }

  /**
   * Deletes items (chunks, manifests, inline values) on the bulk connections, where a burst of
   * deletes leaves in one write (memjs' per-request cost showed in profiles of collective rounds).
   */
  private async deleteRaw(keys: string[]): Promise<void> {
    await Promise.all(keys.map((k) => this.sendBulk('delete', (c) => c.delete(k))));
  }

  /** `bytes`: payload to count (inline puts count the value, not the tag). */
  private async rawSet(key: string, item: Buffer, bytes = item.byteLength): Promise<void> {
    this.counters.put.bytes += bytes;
    await this.send('put', key, (c) => c.set(key, item, { expires: this.ttlS }));
  }

  /** `lead`: short bytes stored before the item's; `payload`: the bytes to count (tags excluded). */
  private async bulkSet(key: string, item: Uint8Array, lead?: Uint8Array, payload = item.byteLength): Promise<void> {
    this.counters.put.bytes += payload;
    await this.sendBulk('put', (c) => c.set(key, item, lead, this.ttlS));
  }

  /** One memjs request: counted, spread round-robin over the connections, never left hanging. */
  private send<T>(kind: OpKind, key: string, op: (c: Client) => Promise<T>): Promise<T> {
    const client = this.clients[this.nextClient]!;
    this.nextClient = (this.nextClient + 1) % this.clients.length;
    const label = kind === 'put' ? 'set' : kind;
    return this.track(kind, () => new Promise<T>((resolve, reject) => {
      const fail = (e: unknown) =>
        reject(
          e instanceof ChannelError
            ? e
            : new ChannelError('CHANNEL_REQUEST', `memcached ${label} of '${key}' at ${this.endpoint} failed: ${reason(e)}${hint(e)}`, { cause: e }),
        );
      // memjs times requests out itself, but loses requests pending on a socket the server closed.
      const backstop = setTimeout(() => {
        const err = new Error(`no response within ${this.timeoutMs + BACKSTOP_GRACE_MS} ms`);
        fail(err);
        for (const s of client.servers) s.error(err);
      }, this.timeoutMs + BACKSTOP_GRACE_MS);
      op(client).then(
        (v) => {
          clearTimeout(backstop);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(backstop);
          fail(e);
        },
      );
    }));
  }

  /** One bulk-connection request (it times requests out itself). */
  private sendBulk<T>(kind: OpKind, op: (c: BulkConnection) => Promise<T>): Promise<T> {
    const conn = this.bulk[this.nextBulk]!;
    this.nextBulk = (this.nextBulk + 1) % this.bulk.length;
    return this.track(kind, () =>
      op(conn).catch((e: unknown) => {
        const h = hint(e);
        throw h && e instanceof ChannelError ? new ChannelError(e.code, `${e.message}${h}`, { cause: e }) : e;
      }),
    );
  }

  /** Counts a request and tracks it for close(), which waits for requests on the wire. */
  private track<T>(kind: OpKind, run: () => Promise<T>): Promise<T> {
    // After close(), only requests of operations still draining may go out (clients would reconnect).
    if (this.closed && this.inFlight === 0) {
      return Promise.reject(new ChannelError('CHANNEL_CLOSED', `${this.endpoint}: channel is closed`));
    }
    this.counters[kind].requests++;
    this.inFlight++;
    return run().finally(() => {
      if (--this.inFlight === 0 && this.drained) {
        const d = this.drained;
        this.drained = undefined;
        d();
      }
    });
  }

  /** A get on every connection (opens all sockets), bounded by timeoutMs. Not counted in stats. */
  private async probe(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      await Promise.race([Promise.all(this.clients.map((c) => c.get(PROBE_KEY))), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops every socket at once and fails whatever is pending on them. */
  private abort(err: Error): void {
    this.closed = true;
    for (const c of this.clients) for (const s of c.servers) s.error(err);
    for (const b of this.bulk) b.fail(err);
  }
}
