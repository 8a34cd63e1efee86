/**
 * The S3 requests every S3 user here makes, written once: PUT, GET with the body read into one
 * aligned buffer (retried when the body breaks off), paged LIST, batched DELETE. They throw the
 * SDK's errors; callers map them to their own error classes (see sdk-errors.ts for the wording).
 */
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { isMissingKey } from './sdk-errors.js';

/** S3's limit on keys per DeleteObjects request, and its (and s3rver's) largest LIST page. */
export const S3_MAX_BATCH = 1000;

/** One object's body as handed to the SDK (the caller must not change it until the promise settles). */
export async function putObject(client: S3Client, bucket: string, key: string, body: Uint8Array): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.byteLength, ContentType: 'application/octet-stream' }));
}

export interface GetOptions {
  /** GETs tried in all. Default 3. */
  attempts?: number;
  /** Also try again when the body ends short of its Content-Length (and return it short after the last try). */
  whole?: boolean;
  /** Stops retrying (e.g. the caller was closed). */
  stopped?: () => boolean;
  /** Called before each GET sent (request counters). */
  onRequest?: () => void;
}

export interface GotObject {
  body: Uint8Array;
  /** The announced length; the body is shorter when the object was cut off (or still being written). */
  contentLength: number | undefined;
  attempts: number;
}

/**
 * GET of one object; undefined when the key does not exist. The SDK retries failed requests but
 * not a body cut off mid-stream (a reset connection, or s3rver when the object is overwritten
 * during the read), so those are tried again here.
 */
export async function getObject(client: S3Client, bucket: string, key: string, options: GetOptions = {}): Promise<GotObject | undefined> {
  const attempts = options.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    options.onRequest?.();
    let streaming = false;
    let got: GotObject;
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      streaming = true;
      got = { body: await readBody(out.Body, out.ContentLength), contentLength: out.ContentLength, attempts: attempt };
    } catch (err) {
      if (isMissingKey(err)) return undefined;
      if (streaming && attempt < attempts && !options.stopped?.()) continue;
      throw err;
    }
    const short = got.contentLength !== undefined && got.body.byteLength !== got.contentLength;
    if (!options.whole || !short || attempt >= attempts) return got;
  }
}

export interface ListOptions {
  /** Keys per page (MaxKeys), at most 1000; default: the server's. */
  pageSize?: number;
  /** Lists the common prefixes up to this delimiter instead of the keys. */
  delimiter?: string;
  /** Called before each page requested. */
  onRequest?: () => void;
}

/** Every full key under `prefix` (or, with a delimiter, every common prefix), in the server's order. */
export async function listObjects(client: S3Client, bucket: string, prefix: string, options: ListOptions = {}): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    options.onRequest?.();
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: options.pageSize, Delimiter: options.delimiter }),
    );
    if (options.delimiter === undefined) {
      for (const o of page.Contents ?? []) if (o.Key !== undefined) out.push(o.Key);
    } else {
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix !== undefined) out.push(p.Prefix);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
    if (page.IsTruncated && !token) throw new Error('the listing is truncated but has no NextContinuationToken');
  } while (token);
  return out;
}

/** A key DeleteObjects reported as not deleted (a missing key is not reported). */
export interface DeleteFailure {
  key: string;
  code: string;
  message: string;
}

export interface DeleteOptions {
  /** Keys per DeleteObjects request, at most 1000. Default 1000. */
  batchSize?: number;
  /** Requests in flight. Default 4. */
  concurrency?: number;
  onRequest?: () => void;
  /** After a batch's request answered (whatever it reported). */
  onBatch?: (fullKeys: string[]) => void;
  /** The error for a request that failed. */
  requestError: (fullKeys: string[], err: unknown) => Error;
  /** The error for keys the server refused to delete. */
  refused: (failures: DeleteFailure[]) => Error;
}

/** Deletes the full keys (duplicates once) in batches; missing keys are not an error. */
export async function deleteObjects(client: S3Client, bucket: string, fullKeys: string[], options: DeleteOptions): Promise<void> {
  const unique = [...new Set(fullKeys)];
  const size = Math.min(S3_MAX_BATCH, Math.max(1, options.batchSize ?? S3_MAX_BATCH));
  const batches: string[][] = [];
  for (let i = 0; i < unique.length; i += size) batches.push(unique.slice(i, i + size));
  await mapLimit(batches, options.concurrency ?? 4, async (batch) => {
    options.onRequest?.();
    let reported;
    try {
      const out = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
      reported = out.Errors ?? [];
    } catch (err) {
      throw options.requestError(batch, err);
    }
    options.onBatch?.(batch);
    const failures = reported.filter((e) => e.Code !== 'NoSuchKey').map((e) => ({ key: e.Key ?? '?', code: e.Code ?? 'error', message: e.Message ?? '' }));
    if (failures.length > 0) throw options.refused(failures);
  });
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order; the first failure stops new work. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
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
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return out;
}

/**
 * Reads a GetObject body into a fresh buffer of the announced length: one copy, and the buffer
 * starts at offset 0 of its ArrayBuffer, so an 8-byte-aligned section inside (a tensor frame, a
 * shard column) stays aligned. A body that ends early is returned short.
 */
export async function readBody(body: unknown, contentLength: number | undefined): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') {
    const withTransform = body as { transformToByteArray?: () => Promise<Uint8Array> };
    if (typeof withTransform.transformToByteArray !== 'function') throw new Error('GetObject returned a body that cannot be read');
    const bytes = await withTransform.transformToByteArray();
    return bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
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
