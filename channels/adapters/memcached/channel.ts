/**
 * Memcached channel (memjs, binary protocol).
 *
 * Values are stored in the item format of item.ts: inline items, or a manifest over chunk items.
 * Every item expires ttlS after its last write (default a day), so what a dead client or a hung
 * run left does not stay forever; a job's keys are rewritten far more often than that, so no live
 * value expires.
 *
 * Clients (connections.ts): memjs writes small items (manifests, inline values under
 * SMALL_ITEM_BYTES) and probes the server. Everything else goes through BulkConnection (bulk.ts),
 * which neither copies a value to send it nor allocates per packet to receive it: larger inline
 * values, chunk items, every read and every delete. A read is one GET whatever the value's size (a
 * reader cannot know it before the answer), and lands straight in the assembled value or in memory
 * the caller lends (see waitManyInto).
 */
import { randomBytes } from 'node:crypto';
import { type Channel, type ChannelAbility, type ChannelStats, type LentBuffer, type Listing, type PutParts, type ReadInto, emptyStats } from '../../channel.js';
import { ChannelError } from '../../errors.js';
import { assertKey } from '../../keys.js';
import { FAST_POLL, type PollPolicy, pollMany } from '../../poll.js';
import { type MemcachedSpecInput, memcachedSpec } from '../../spec.js';
import { MemcachedConnections, reason } from './connections.js';
import { MANIFEST_BYTES, TAG_INLINE, chunkKeys, decodeManifest, encodeManifest, isChunkKey, roomFor, view, type Item, type Lend, type Manifest } from './item.js';
import { INLINE, LruMap, type Known } from './known.js';
import { listMemcachedKeys } from './list-keys.js';

/** Chunk locations remembered for overwrite/delete clean-up. */
const KNOWN_CAPACITY = 10_000;
/** Inline values from this size on go out on a bulk connection (no copy); smaller ones via memjs. */
export const SMALL_ITEM_BYTES = 4096;
const EMPTY = new Uint8Array(0);
/**
 * A poll is one GET miss (tens of microseconds), so waits poll at a granularity relative to how
 * long they have waited: a rank waiting 30 ms for a peer arrives at most ~3 ms late, where a
 * fixed 10 ms cap could make it ~5 ms late on average.
 */
const MEMCACHED_POLL: PollPolicy = { ...FAST_POLL, maxDelayFraction: 0.1 };

export class MemcachedChannel implements Channel, Listing, PutParts, ReadInto {
  readonly kind = 'memcached';
  readonly abilities: readonly ChannelAbility[] = ['list', 'putParts', 'readInto'];
  readonly endpoint: string;
  private readonly server: string;
  private readonly timeoutMs: number;
  private readonly chunkBytes: number;
  private readonly ttlS: number;
  private readonly io: MemcachedConnections;
  private readonly known = new LruMap<string, Known>(KNOWN_CAPACITY);
  /** Keys with a put in flight: reads must not overwrite what the put records in `known`. */
  private readonly putting = new Map<string, number>();

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
    this.io = new MemcachedConnections(s.server, this.endpoint, s.timeoutMs, s.connections);
  }

  /** Creates a channel and checks the server answers within spec.timeoutMs. */
  static async open(spec: MemcachedSpecInput): Promise<MemcachedChannel> {
    const ch = new MemcachedChannel(spec);
    try {
      await ch.io.probe();
    } catch (e) {
      ch.io.abort(new Error('probe failed'));
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
    this.io.counters.list.requests++;
    return listMemcachedKeys(this.server, prefix, this.timeoutMs, isChunkKey);
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.check(k);
    await Promise.all(keys.map((k) => this.deleteOne(k)));
  }

  stats(): ChannelStats {
    return structuredClone(this.io.counters);
  }

  resetStats(): void {
    this.io.counters = emptyStats();
  }

  close(): Promise<void> {
    return this.io.close();
  }

  // ---- internals -------------------------------------------------------------------------------

  private check(key: string): void {
    if (this.io.closed) throw new ChannelError('CHANNEL_CLOSED', `${this.endpoint}: channel is closed`);
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
        this.io.counters.get.bytes += item.bytes;
        this.remember(key, INLINE);
        return item.value;
      }
      this.io.counters.get.bytes += MANIFEST_BYTES;
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
    const n = await this.io.sendBulk('get', (c) =>
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
        const got = await this.io.sendBulk('get', (c) =>
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
        this.io.counters.get.bytes += got;
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
      const n = await this.io.sendBulk('get', (c) => c.getWith(key, (bytes) => (bytes === MANIFEST_BYTES ? [(small = new Uint8Array(bytes))] : undefined)));
      if (n >= 0) {
        const m = small && decodeManifest(small);
        this.io.counters.get.bytes += m ? MANIFEST_BYTES : Math.max(0, n - 1);
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
    await Promise.all(keys.map((k) => this.io.sendBulk('delete', (c) => c.delete(k))));
  }

  /** `bytes`: payload to count (inline puts count the value, not the tag). */
  private async rawSet(key: string, item: Buffer, bytes = item.byteLength): Promise<void> {
    this.io.counters.put.bytes += bytes;
    await this.io.send('put', key, (c) => c.set(key, item, { expires: this.ttlS }));
  }

  /** `lead`: short bytes stored before the item's; `payload`: the bytes to count (tags excluded). */
  private async bulkSet(key: string, item: Uint8Array, lead?: Uint8Array, payload = item.byteLength): Promise<void> {
    this.io.counters.put.bytes += payload;
    await this.io.sendBulk('put', (c) => c.set(key, item, lead, this.ttlS));
  }
}
