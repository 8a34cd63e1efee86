/**
 * S3 channel (AWS S3 or any S3-compatible store such as s3rver or MinIO).
 *
 * Every value is stored inside a small envelope so a reader can tell a complete object from one
 * still being written: some S3-compatible stores (s3rver among them) expose an object while its
 * PUT is still streaming, with 0 or a prefix of its bytes. Real S3 is atomic and never shows that.
 *
 *   offset 0  u8[4]  magic 'CRS3'
 *   offset 4  u32le  envelope version (1)
 *   offset 8  u64le  payload length
 *   offset 16 u8[8]  write id (random per put)
 *   offset 24        payload (8-byte aligned, so an inner tensor frame stays aligned)
 *   end - 8   u8[8]  write id again
 *
 * A body shorter than the envelope declares, or whose trailer id differs from its header id, is
 * "not completely written yet": get() returns undefined so waits keep polling. If the same
 * incomplete state persists (no growth) for longer than `corruptAfterMs` over several reads, the
 * object is declared corrupt. A body that does not start with the magic (an object written by
 * another tool) is reported as CHANNEL_CORRUPT at once: a partly written envelope always starts
 * with the magic, so waiting would not help.
 */
import { randomBytes } from 'node:crypto';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { type Channel, type ChannelStats, emptyStats } from './channel.js';
import { ChannelError } from './errors.js';
import { assertKey } from './keys.js';
import { pollMany, SLOW_POLL } from './poll.js';
import type { S3Spec } from './spec.js';
import { describeKeys, describeSdkError, httpStatus, isMissingKey, probeBucket } from './s3-errors.js';

// The SDK warns on every Node 20 process that future releases will need Node 22; the versions this
// package pins support Node 20, so the warning is noise in every worker's stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const ENVELOPE_MAGIC = Uint8Array.of(0x43, 0x52, 0x53, 0x33); // 'CRS3'
export const ENVELOPE_VERSION = 1;
export const ENVELOPE_HEADER_BYTES = 24;
export const ENVELOPE_TRAILER_BYTES = 8;

/** S3's limit on keys per DeleteObjects request. */
const DELETE_BATCH = 1000;
/** Incomplete reads of one object needed (besides the time limit) before declaring it corrupt. */
const CORRUPT_MIN_READS = 3;
/** GETs tried when the response body breaks off mid-stream. */
const BODY_ATTEMPTS = 3;

export interface S3ChannelOptions {
  /** Parallel GETs in getMany (and so in waitMany polls). Default 16. */
  concurrency?: number;
  /** How long an object may stay incomplete without growing before get() reports it corrupt. Default 5000. */
  corruptAfterMs?: number;
}

/** Wraps `payload` in an envelope (one copy, which also detaches it from the caller's buffer). */
export function wrapEnvelope(payload: Uint8Array, writeId: Uint8Array = randomBytes(8)): Uint8Array {
  const out = new Uint8Array(ENVELOPE_HEADER_BYTES + payload.byteLength + ENVELOPE_TRAILER_BYTES);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set(ENVELOPE_MAGIC, 0);
  view.setUint32(4, ENVELOPE_VERSION, true);
  view.setBigUint64(8, BigInt(payload.byteLength), true);
  out.set(writeId.subarray(0, 8), 16);
  out.set(payload, ENVELOPE_HEADER_BYTES);
  out.set(writeId.subarray(0, 8), ENVELOPE_HEADER_BYTES + payload.byteLength);
  return out;
}

export type EnvelopeState =
  | { state: 'complete'; payload: Uint8Array }
  /** Possibly still being written; `expected` is the declared total size when the header is in. */
  | { state: 'incomplete'; expected: number | undefined; reason: string }
  /** Cannot become a valid envelope by growing. */
  | { state: 'foreign'; reason: string };

/** Classifies an object body; the payload is a subarray of `body` (no copy). */
export function unwrapEnvelope(body: Uint8Array): EnvelopeState {
  const n = body.byteLength;
  for (let i = 0; i < Math.min(n, ENVELOPE_MAGIC.length); i++) {
    if (body[i] !== ENVELOPE_MAGIC[i]) return { state: 'foreign', reason: 'it does not start with the Cirrus envelope magic (was it written by another tool?)' };
  }
  if (n < ENVELOPE_HEADER_BYTES) return { state: 'incomplete', expected: undefined, reason: `header incomplete (${n} of ${ENVELOPE_HEADER_BYTES} bytes)` };
  const view = new DataView(body.buffer, body.byteOffset, n);
  const version = view.getUint32(4, true);
  if (version !== ENVELOPE_VERSION) return { state: 'foreign', reason: `envelope version ${version} is not supported (expected ${ENVELOPE_VERSION})` };
  const declared = view.getBigUint64(8, true);
  if (declared > BigInt(Number.MAX_SAFE_INTEGER)) return { state: 'foreign', reason: `declared payload length ${declared} is impossible` };
  const length = Number(declared);
  const expected = ENVELOPE_HEADER_BYTES + length + ENVELOPE_TRAILER_BYTES;
  if (n !== expected) {
    return { state: 'incomplete', expected, reason: `body has ${n} bytes, envelope declares ${expected} (${ENVELOPE_HEADER_BYTES} + ${length} payload + ${ENVELOPE_TRAILER_BYTES})` };
  }
  for (let i = 0; i < 8; i++) {
    if (body[16 + i] !== body[n - 8 + i]) return { state: 'incomplete', expected, reason: `trailer write id does not match the header (body has ${n} bytes as declared)` };
  }
  return { state: 'complete', payload: body.subarray(ENVELOPE_HEADER_BYTES, ENVELOPE_HEADER_BYTES + length) };
}

interface Suspect {
  /** When this incomplete state (this body length) was first seen. */
  since: number;
  length: number;
  reads: number;
}

/**
 * The S3 client every S3 user in this package builds from an S3Spec (channel, object store), so
 * all talk to s3rver, MinIO and AWS with the same settings. Without spec.credentials the SDK's
 * standard credential chain applies.
 */
export function createS3Client(spec: S3Spec): S3Client {
  const config: S3ClientConfig = {
    region: spec.region,
    // Without these the SDK streams uploads with aws-chunked framing and trailing checksums,
    // which s3rver stores verbatim inside the object.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Connect and idle limits so a dead or black-holed endpoint fails instead of hanging; no
    // total-request limit, which would cut large transfers on slow links.
    requestHandler: { connectionTimeout: spec.timeoutMs, socketTimeout: spec.timeoutMs },
  };
  if (spec.endpoint) {
    config.endpoint = spec.endpoint;
    // Custom endpoints (s3rver, MinIO) rarely resolve virtual-host bucket names.
    config.forcePathStyle = spec.forcePathStyle ?? true;
  } else if (spec.forcePathStyle !== undefined) {
    config.forcePathStyle = spec.forcePathStyle;
  }
  if (spec.credentials) config.credentials = { ...spec.credentials };
  return new S3Client(config);
}

export class S3Channel implements Channel {
  readonly kind = 's3';
  readonly endpoint: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly concurrency: number;
  private readonly corruptAfterMs: number;
  private readonly suspects = new Map<string, Suspect>();
  private counters = emptyStats();
  private closed = false;

  constructor(
    private readonly spec: S3Spec,
    options: S3ChannelOptions = {},
  ) {
    this.bucket = spec.bucket;
    this.prefix = spec.prefix;
    this.concurrency = Math.max(1, options.concurrency ?? 16);
    this.corruptAfterMs = options.corruptAfterMs ?? 5_000;
    this.endpoint = `s3://${spec.bucket}/${spec.prefix}` + (spec.endpoint ? `@${spec.endpoint}` : '');
    this.client = createS3Client(spec);
  }

  /** Creates the channel and checks that the bucket answers within spec.timeoutMs. */
  static async open(spec: S3Spec, options?: S3ChannelOptions): Promise<S3Channel> {
    const channel = new S3Channel(spec, options);
    try {
      await channel.probe();
    } catch (err) {
      await channel.close();
      throw err;
    }
    return channel;
  }

  private async probe(): Promise<void> {
    const where = this.spec.endpoint ?? `AWS S3 (${this.spec.region})`;
    const found = await probeBucket(this.client, this.bucket, this.spec.timeoutMs);
    if (!found) return;
    const { problem, err } = found;
    const fail = (code: 'CHANNEL_UNREACHABLE' | 'CHANNEL_ENDPOINT', message: string) => new ChannelError(code, message, { cause: err });
    switch (problem) {
      case 'timeout':
        throw fail('CHANNEL_UNREACHABLE', `S3 endpoint ${where} is unreachable: no answer within ${this.spec.timeoutMs} ms`);
      case 'unreachable':
        throw fail('CHANNEL_UNREACHABLE', `S3 endpoint ${where} is unreachable: ${describeSdkError(err)}`);
      case 'missing':
        throw fail('CHANNEL_ENDPOINT', `bucket '${this.bucket}' does not exist at ${where}`);
      case 'denied':
        throw fail('CHANNEL_ENDPOINT', `access to bucket '${this.bucket}' at ${where} is denied (check the credentials): ${describeSdkError(err)}`);
      case 'wrong-region':
        throw fail('CHANNEL_ENDPOINT', `bucket '${this.bucket}' is not in region ${this.spec.region} at ${where}`);
      case 'other':
        throw fail('CHANNEL_ENDPOINT', `bucket '${this.bucket}' at ${where} cannot be used: ${describeSdkError(err)}`);
    }
  }


  async put(key: string, value: Uint8Array): Promise<void> {
    this.check(key);
    const body = wrapEnvelope(value);
    this.counters.put.requests++;
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: body, ContentLength: body.byteLength, ContentType: 'application/octet-stream' }),
      );
    } catch (err) {
      throw this.requestError('PUT', key, err);
    }
    this.counters.put.bytes += value.byteLength;
    this.suspects.delete(key);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.check(key);
    let body: Uint8Array | undefined;
    for (let attempt = 1; body === undefined; attempt++) {
      this.counters.get.requests++;
      let streaming = false;
      try {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
        streaming = true;
        body = await readBody(out.Body, out.ContentLength);
      } catch (err) {
        if (isMissingKey(err)) {
          this.suspects.delete(key);
          return undefined;
        }
        // The SDK retries failed requests but not a body cut off mid-stream (a network reset,
        // or s3rver when the object is overwritten during the read): try again a few times.
        if (!streaming || attempt >= BODY_ATTEMPTS || this.closed) throw this.requestError('GET', key, err);
      }
    }
    const env = unwrapEnvelope(body);
    if (env.state === 'complete') {
      this.suspects.delete(key);
      this.counters.get.bytes += env.payload.byteLength;
      return env.payload;
    }
    if (env.state === 'foreign') {
      this.suspects.delete(key);
      throw new ChannelError('CHANNEL_CORRUPT', `object '${key}' on ${this.endpoint} is not a Cirrus value (${body.byteLength} bytes): ${env.reason}`);
    }
    this.noteIncomplete(key, body.byteLength, env.reason);
    return undefined;
  }

  /** Remembers an incomplete read; throws once the same state has lasted too long. */
  private noteIncomplete(key: string, length: number, reason: string): void {
    const now = Date.now();
    const s = this.suspects.get(key);
    // Growth means a writer is still streaming: restart the clock.
    if (!s || s.length !== length) {
      this.suspects.set(key, { since: now, length, reads: 1 });
      return;
    }
    s.reads++;
    if (s.reads >= CORRUPT_MIN_READS && now - s.since > this.corruptAfterMs) {
      // The entry stays: the same state read again is reported again, at once.
      throw new ChannelError('CHANNEL_CORRUPT', `object '${key}' on ${this.endpoint} stayed incomplete for ${now - s.since} ms over ${s.reads} reads: ${reason}`);
    }
  }

  async getMany(keys: string[]): Promise<Array<Uint8Array | undefined>> {
    for (const k of keys) this.check(k);
    return mapLimit(keys, this.concurrency, (k) => this.get(k));
  }

  async wait(key: string, deadline: number): Promise<Uint8Array> {
    const [v] = await this.waitMany([key], deadline);
    return v!;
  }

  async waitMany(keys: string[], deadline: number, onValue?: (index: number, value: Uint8Array) => void): Promise<Uint8Array[]> {
    for (const k of keys) this.check(k);
    // S3 bills every GET, so poll with the slow back-off.
    return pollMany(keys, deadline, (ks) => this.getMany(ks), SLOW_POLL, this.endpoint, onValue);
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.check(k);
    const unique = [...new Set(keys)];
    const batches: string[][] = [];
    for (let i = 0; i < unique.length; i += DELETE_BATCH) batches.push(unique.slice(i, i + DELETE_BATCH));
    await mapLimit(batches, 4, async (batch) => {
      this.counters.delete.requests++;
      let failed: Array<{ Key?: string; Code?: string; Message?: string }> | undefined;
      try {
        const out = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((k) => ({ Key: this.prefix + k })), Quiet: true } }),
        );
        failed = out.Errors;
      } catch (err) {
        throw this.requestError('DELETE', describeKeys(batch), err);
      }
      for (const k of batch) this.suspects.delete(k);
      // A missing key is not an error for DeleteObjects; anything reported here is real.
      const real = (failed ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (real.length > 0) {
        const first = real[0]!;
        throw new ChannelError(
          'CHANNEL_REQUEST',
          `DELETE ${describeKeys(real.map((e) => this.strip(e.Key ?? '?')))} on ${this.endpoint} failed: ${first.Code ?? 'error'}: ${first.Message ?? ''}`.trimEnd(),
        );
      }
    });
  }

  async list(prefix: string): Promise<string[]> {
    this.checkOpen();
    const keys: string[] = [];
    let token: string | undefined;
    do {
      this.counters.list.requests++;
      try {
        const out = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token }));
        for (const o of out.Contents ?? []) if (o.Key !== undefined) keys.push(this.strip(o.Key));
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } catch (err) {
        throw this.requestError('LIST', `'${prefix}*'`, err);
      }
    } while (token);
    // Byte order, as S3 lists; s3rver walks its directories and may differ.
    return keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  stats(): ChannelStats {
    return structuredClone(this.counters);
  }

  resetStats(): void {
    this.counters = emptyStats();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.suspects.clear();
    this.client.destroy();
  }

  private strip(fullKey: string): string {
    return fullKey.startsWith(this.prefix) ? fullKey.slice(this.prefix.length) : fullKey;
  }

  private checkOpen(): void {
    if (this.closed) throw new ChannelError('CHANNEL_CLOSED', `S3 channel ${this.endpoint} is closed`);
  }

  private check(key: string): void {
    this.checkOpen();
    assertKey(key);
  }

  private requestError(op: string, what: string, err: unknown): ChannelError {
    if (this.closed) return new ChannelError('CHANNEL_CLOSED', `${op} ${what} on ${this.endpoint} failed: the channel was closed`, { cause: err });
    let reason = describeSdkError(err);
    // Without s3:ListBucket, S3 answers 403 instead of 404 for a missing key.
    if (op === 'GET' && httpStatus(err) === 403) reason += ' (S3 also answers 403 for a missing key when the caller lacks s3:ListBucket)';
    return new ChannelError('CHANNEL_REQUEST', `${op} ${what} on ${this.endpoint} failed: ${reason}`, { cause: err });
  }
}

/**
 * Reads a GetObject body into a fresh buffer of the announced length: one copy, and the buffer
 * starts at offset 0 of its ArrayBuffer, so the 8-byte-aligned payload inside stays aligned.
 * A body that ends early is returned short (the envelope check then sees it as incomplete).
 */
async function readBody(body: unknown, contentLength: number | undefined): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') {
    const withTransform = body as { transformToByteArray?: () => Promise<Uint8Array> };
    if (typeof withTransform.transformToByteArray !== 'function') throw new Error('GetObject returned a body that cannot be read');
    return aligned(await withTransform.transformToByteArray());
  }
  let buf = new Uint8Array(contentLength ?? 0);
  let n = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (n + bytes.byteLength > buf.byteLength) {
      // No or wrong Content-Length: grow geometrically.
      const grown = new Uint8Array(Math.max(n + bytes.byteLength, buf.byteLength * 2, 64 * 1024));
      grown.set(buf.subarray(0, n));
      buf = grown;
    }
    buf.set(bytes, n);
    n += bytes.byteLength;
  }
  return n === buf.byteLength ? buf : buf.subarray(0, n);
}

function aligned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
