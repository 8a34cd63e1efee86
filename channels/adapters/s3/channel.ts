/**
 * S3 channel (AWS S3 or any S3-compatible store such as s3rver or MinIO). Values travel inside the
 * envelope of envelope.ts, so a reader can tell a complete object from one still being written.
 * The client and the requests are the shared S3 module's (paramserver/s3/).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client, probedOrClosed, deleteObjects, describeKeys, describeRequestFailure, describeSdkError, getObject, listObjects, mapLimit, probeBucket, putObject } from '../../../paramserver/s3/index.js';
import { CountingChannel, type Channel, type ChannelAbility, type Listing } from '../../channel.js';
import { ChannelError } from '../../errors.js';
import { assertKey } from '../../keys.js';
import { pollMany, SLOW_POLL } from '../../poll.js';
import type { S3Spec } from '../../spec.js';
import { unwrapEnvelope, wrapEnvelope } from './envelope.js';

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

interface Suspect {
  /** When this incomplete state (this body length) was first seen. */
  since: number;
  length: number;
  reads: number;
}

export class S3Channel extends CountingChannel implements Channel, Listing {
  readonly kind = 's3';
  readonly abilities: readonly ChannelAbility[] = ['list'];
  readonly endpoint: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly concurrency: number;
  private readonly corruptAfterMs: number;
  private readonly suspects = new Map<string, Suspect>();
  private closed = false;

  constructor(
    private readonly spec: S3Spec,
    options: S3ChannelOptions = {},
  ) {
    super();
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
    return probedOrClosed(channel, () => channel.probe());
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
      await putObject(this.client, this.bucket, this.prefix + key, body);
    } catch (err) {
      throw this.requestError('PUT', key, err);
    }
    this.counters.put.bytes += value.byteLength;
    this.suspects.delete(key);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.check(key);
    let got;
    try {
      got = await getObject(this.client, this.bucket, this.prefix + key, { attempts: BODY_ATTEMPTS, stopped: () => this.closed, onRequest: () => this.counters.get.requests++ });
    } catch (err) {
      throw this.requestError('GET', key, err);
    }
    if (got === undefined) {
      this.suspects.delete(key);
      return undefined;
    }
    const body = got.body;
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
    await deleteObjects(this.client, this.bucket, keys.map((k) => this.prefix + k), {
      onRequest: () => this.counters.delete.requests++,
      onBatch: (batch) => {
        for (const k of batch) this.suspects.delete(this.strip(k));
      },
      requestError: (batch, err) => this.requestError('DELETE', describeKeys(batch.map((k) => this.strip(k))), err),
      // A missing key is not an error for DeleteObjects; anything reported here is real.
      refused: (failed) =>
        new ChannelError(
          'CHANNEL_REQUEST',
          `DELETE ${describeKeys(failed.map((e) => this.strip(e.key)))} on ${this.endpoint} failed: ${failed[0]!.code}: ${failed[0]!.message}`.trimEnd(),
        ),
    });
  }

  async list(prefix: string): Promise<string[]> {
    this.checkOpen();
    let keys: string[];
    try {
      keys = (await listObjects(this.client, this.bucket, this.prefix + prefix, { onRequest: () => this.counters.list.requests++ })).map((k) => this.strip(k));
    } catch (err) {
      throw this.requestError('LIST', `'${prefix}*'`, err);
    }
    // Byte order, as S3 lists; s3rver walks its directories and may differ.
    return keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
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
    return new ChannelError('CHANNEL_REQUEST', `${op} ${what} on ${this.endpoint} failed: ${describeRequestFailure(op, err)}`, { cause: err });
  }
}
