/** The S3 object store: objects as they are (no channel envelope) under a bucket prefix, through the shared S3 module. */
import type { S3Client } from '@aws-sdk/client-s3';
import { createS3Client, probedOrClosed, deleteObjects, describeKeys, describeRequestFailure, describeSdkError, getObject, listObjects, probeBucket, putObject, S3_MAX_BATCH, type BucketProblem } from '../../paramserver/s3/index.js';
import type { ObjectStore } from '../datasets/types.js';
import { ObjectStoreError, assertObjectKey, assertPrefix, compareKeys } from '../object-store.js';
import type { S3Spec } from '../spec.js';

/** GETs tried when a response body ends short of its Content-Length. */
const BODY_ATTEMPTS = 3;

export interface S3ObjectStoreOptions {
  /** Keys per ListObjectsV2 page (MaxKeys), at most 1000. Default 1000. */
  listPageSize?: number;
  /** Keys per DeleteObjects request, at most 1000. Default 1000. */
  deleteBatchSize?: number;
  /** Parallel DeleteObjects requests. Default 4. */
  deleteConcurrency?: number;
}


/**
 * Objects in a bucket under spec.prefix, stored as they are (no envelope). put() hands the caller's
 * buffer to the SDK: do not change it until put() resolves.
 */
export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly listPageSize: number;
  private readonly deleteBatchSize: number;
  private readonly deleteConcurrency: number;
  private closed = false;

  constructor(
    private readonly spec: S3Spec,
    options: S3ObjectStoreOptions = {},
  ) {
    this.bucket = spec.bucket;
    // 's3://bucket/data' means the folder 'data/', not keys that merely start with 'data'.
    this.prefix = spec.prefix === '' || spec.prefix.endsWith('/') ? spec.prefix : `${spec.prefix}/`;
    this.listPageSize = clampInt(options.listPageSize ?? S3_MAX_BATCH, 1, S3_MAX_BATCH);
    this.deleteBatchSize = clampInt(options.deleteBatchSize ?? S3_MAX_BATCH, 1, S3_MAX_BATCH);
    this.deleteConcurrency = clampInt(options.deleteConcurrency ?? 4, 1, 64);
    // The same shape openObjectStore() accepts, so a message's URL can be pasted back (no secrets in it).
    const query = new URLSearchParams();
    if (spec.endpoint) query.set('endpoint', spec.endpoint);
    if (spec.region !== 'us-east-1') query.set('region', spec.region);
    const q = query.toString();
    this.url = `s3://${spec.bucket}/${this.prefix}` + (q ? `?${q.replace(/%3A/gi, ':').replace(/%2F/gi, '/')}` : '');
    this.client = createS3Client(spec);
  }

  /** Creates the store and checks that the bucket answers within spec.timeoutMs. */
  static async open(spec: S3Spec, options?: S3ObjectStoreOptions): Promise<S3ObjectStore> {
    const store = new S3ObjectStore(spec, options);
    return probedOrClosed(store, () => store.probe());
  }

  private async probe(): Promise<void> {
    const found = await probeBucket(this.client, this.bucket, this.spec.timeoutMs);
    if (!found) return;
    const why: Record<BucketProblem, () => string> = {
      timeout: () => `no answer within ${this.spec.timeoutMs} ms`,
      missing: () => `bucket '${this.bucket}' does not exist`,
      denied: () => `access to bucket '${this.bucket}' is denied (check the credentials)`,
      'wrong-region': () => `bucket '${this.bucket}' is not in region ${this.spec.region}`,
      unreachable: () => describeSdkError(found.err),
      other: () => describeSdkError(found.err),
    };
    throw new ObjectStoreError('OBJECT_STORE_UNREACHABLE', `object store ${this.url} cannot be used: ${why[found.problem]()}`, { cause: found.err });
  }


  async put(key: string, bytes: Uint8Array): Promise<void> {
    this.check(key);
    try {
      await putObject(this.client, this.bucket, this.prefix + key, bytes);
    } catch (err) {
      throw this.requestError('PUT', `'${key}'`, err);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.check(key);
    let got;
    try {
      got = await getObject(this.client, this.bucket, this.prefix + key, { attempts: BODY_ATTEMPTS, whole: true, stopped: () => this.closed });
    } catch (err) {
      throw this.requestError('GET', `'${key}'`, err);
    }
    if (got === undefined) return undefined;
    const { body, contentLength, attempts } = got;
    if (contentLength !== undefined && body.byteLength !== contentLength) {
      throw new ObjectStoreError('OBJECT_STORE_REQUEST', `GET '${key}' on ${this.url} failed: the body ended after ${body.byteLength} of ${contentLength} bytes (${attempts} attempts)`);
    }
    return body;
  }

  async list(prefix: string): Promise<string[]> {
    this.checkOpen();
    assertPrefix(prefix, this.url);
    let keys: string[];
    try {
      keys = await listObjects(this.client, this.bucket, this.prefix + prefix, { pageSize: this.listPageSize });
    } catch (err) {
      throw this.requestError('LIST', `'${prefix}*'`, err);
    }
    // s3rver walks its directories and may not return byte order.
    return keys.filter((k) => k.startsWith(this.prefix)).map((k) => k.slice(this.prefix.length)).sort(compareKeys);
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.check(k);
    const name = (fullKey: string) => fullKey.slice(this.prefix.length);
    await deleteObjects(this.client, this.bucket, keys.map((k) => this.prefix + k), {
      batchSize: this.deleteBatchSize,
      concurrency: this.deleteConcurrency,
      requestError: (batch, err) => this.requestError('DELETE', describeKeys(batch.map(name)), err),
      // Missing keys are not an error; anything reported here is.
      refused: (failed) =>
        new ObjectStoreError('OBJECT_STORE_REQUEST', `DELETE ${describeKeys(failed.map((e) => name(e.key)))} on ${this.url} failed: ${failed[0]!.code}: ${failed[0]!.message}`.trimEnd()),
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }

  private checkOpen(): void {
    if (this.closed) throw new ObjectStoreError('OBJECT_STORE_CLOSED', `object store ${this.url} is closed`);
  }

  private check(key: string): void {
    this.checkOpen();
    assertObjectKey(key, this.url);
  }

  private requestError(op: string, what: string, err: unknown): ObjectStoreError {
    if (this.closed) return new ObjectStoreError('OBJECT_STORE_CLOSED', `${op} ${what} on ${this.url} failed: the store was closed`, { cause: err });
    return new ObjectStoreError('OBJECT_STORE_REQUEST', `${op} ${what} on ${this.url} failed: ${describeRequestFailure(op, err)}`, { cause: err });
  }
}

function clampInt(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}
