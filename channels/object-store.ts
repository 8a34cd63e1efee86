/**
 * Plain object stores (no channel envelope) for datasets: S3 (or any S3-compatible server), a
 * directory of files, or memory. All three accept the same keys: '/'-separated relative paths of
 * non-empty segments, none of them '.' or '..', so a dataset moves between stores unchanged.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { z } from 'zod';
import { CirrusError } from '../paramserver/index.js';
import type { ObjectStore } from './datasets/types.js';
import { ChannelError } from './errors.js';
import { createS3Client } from './s3.js';
import { parseChannelSpec, parseChannelUrl, type S3Spec, type s3Spec } from './spec.js';
import { describeKeys, describeSdkError, httpStatus, isMissingKey, probeBucket, type BucketProblem } from './s3-errors.js';

export type { ObjectStore } from './datasets/types.js';

export type ObjectStoreErrorCode =
  /** A key or prefix that no store accepts. */
  | 'OBJECT_STORE_KEY'
  /** A request to the backing store failed. */
  | 'OBJECT_STORE_REQUEST'
  /** openObjectStore() got a target it cannot open (bad URL, unknown scheme, bad spec). */
  | 'OBJECT_STORE_TARGET'
  /** The store answered, but the bucket or directory cannot be used. */
  | 'OBJECT_STORE_UNREACHABLE'
  | 'OBJECT_STORE_CLOSED';

export class ObjectStoreError extends CirrusError<ObjectStoreErrorCode> {}

/** S3's own key limit; the other stores keep it so keys stay portable. */
const MAX_KEY_BYTES = 1024;
/** S3's limit on keys per DeleteObjects request. */
const S3_DELETE_BATCH = 1000;
/** S3's (and s3rver's) largest ListObjectsV2 page. */
const S3_LIST_PAGE = 1000;
/** GETs tried when a response body ends short of its Content-Length. */
const BODY_ATTEMPTS = 3;

/** Throws unless `key` is a portable object key; returns it. */
export function assertObjectKey(key: string, store: string): string {
  const bad = (why: string): never => {
    throw new ObjectStoreError('OBJECT_STORE_KEY', `key '${printable(key)}' for ${store} is invalid: ${why}`);
  };
  if (key.length === 0) bad('keys must not be empty');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) bad(`expected at most ${MAX_KEY_BYTES} bytes, got ${Buffer.byteLength(key)}`);
  checkPath(key, bad);
  if (key.endsWith('/')) bad("keys must not end with '/'");
  return key;
}

/** A list prefix may be empty or end anywhere (even mid-segment), but may not climb out. */
function assertPrefix(prefix: string, store: string): void {
  if (prefix === '') return;
  checkPath(prefix, (why) => {
    throw new ObjectStoreError('OBJECT_STORE_KEY', `prefix '${printable(prefix)}' for ${store} is invalid: ${why}`);
  });
}

function checkPath(path: string, bad: (why: string) => never): void {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) bad('control characters are not allowed');
  if (path.includes('\\')) bad("use '/' as the separator, not '\\'");
  if (path.startsWith('/')) bad("keys are relative: they must not start with '/'");
  const segments = path.split('/');
  // The last segment of a prefix may be empty (a prefix ending in '/').
  segments.forEach((s, i) => {
    if (s === '..' || s === '.') bad(`'${s}' segments are not allowed`);
    if (s === '' && i < segments.length - 1) bad("empty segments ('//') are not allowed");
  });
}

function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  const shown = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return shown.length > 80 ? `${shown.slice(0, 80)}...` : shown;
}

/** Byte-wise order of the UTF-8 encodings, which is how S3 lists keys. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}


// ---------------------------------------------------------------------------------------------
// Memory

/** Objects in a Map. Copies on put and on get, so no caller can change a stored object in place. */
export class MemoryObjectStore implements ObjectStore {
  readonly url = 'memory://';
  private readonly objects = new Map<string, Uint8Array>();

  async put(key: string, bytes: Uint8Array): Promise<void> {
    assertObjectKey(key, this.url);
    this.objects.set(key, bytes.slice());
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    assertObjectKey(key, this.url);
    return this.objects.get(key)?.slice();
  }

  async list(prefix: string): Promise<string[]> {
    assertPrefix(prefix, this.url);
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) assertObjectKey(k, this.url);
    for (const k of keys) this.objects.delete(k);
  }

  async close(): Promise<void> {
    // Nothing to release; the objects stay readable, like files after a FileObjectStore closes.
  }
}

// ---------------------------------------------------------------------------------------------
// Files

/** Temp files of puts in progress: '.<name>.<random>.cirrus-tmp', next to their target. */
const TEMP_SUFFIX = '.cirrus-tmp';

/** Key 'a/b/c' is the file <dir>/a/b/c. Puts are atomic: temp file in the same directory, then rename. */
export class FileObjectStore implements ObjectStore {
  readonly url: string;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
    this.url = pathToFileURL(this.dir).href;
  }

  private pathOf(key: string): string {
    assertObjectKey(key, this.url);
    // A user key must never look like one of our temp files, or list() would hide it.
    if (key.split('/').some((s) => s.endsWith(TEMP_SUFFIX))) {
      throw new ObjectStoreError('OBJECT_STORE_KEY', `key '${printable(key)}' for ${this.url} is invalid: segments ending in '${TEMP_SUFFIX}' are reserved for temp files`);
    }
    return join(this.dir, ...key.split('/'));
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    const parent = dirname(path);
    const temp = join(parent, `.${path.slice(parent.length + 1)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
    // A concurrent delete() may prune the (momentarily empty) parent between mkdir and write.
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdir(parent, { recursive: true });
        await writeFile(temp, bytes);
        await rename(temp, path);
        return;
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        if (errno(err) === 'ENOENT' && attempt < 3) continue;
        throw new ObjectStoreError('OBJECT_STORE_REQUEST', `PUT '${key}' on ${this.url} failed: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const path = this.pathOf(key);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      const code = errno(err);
      // ENOTDIR: a prefix of the key is a file, so the key cannot exist.
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new ObjectStoreError('OBJECT_STORE_REQUEST', `GET '${key}' on ${this.url} failed: ${(err as Error).message}`, { cause: err });
    }
    // Small Buffers may sit at any offset of a shared pool; shards decode zero-copy only when aligned.
    return buf.byteOffset % 8 === 0 ? buf : new Uint8Array(buf);
  }

  async list(prefix: string): Promise<string[]> {
    assertPrefix(prefix, this.url);
    // Walk only the deepest directory the prefix names completely.
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash + 1);
    const keys: string[] = [];
    const walk = async (relDir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.dir, ...relDir.split('/').filter(Boolean)), { withFileTypes: true });
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw new ObjectStoreError('OBJECT_STORE_REQUEST', `LIST '${prefix}*' on ${this.url} failed: ${(err as Error).message}`, { cause: err });
      }
      for (const e of entries) {
        const key = relDir + e.name;
        if (e.isDirectory()) {
          // Only descend where keys matching the prefix can be.
          if ((key + '/').startsWith(prefix) || prefix.startsWith(key + '/')) await walk(key + '/');
        } else if (e.isFile() && !e.name.endsWith(TEMP_SUFFIX) && key.startsWith(prefix)) {
          keys.push(key);
        }
      }
    };
    await walk(base);
    return keys.sort(compareKeys);
  }

  async delete(keys: string[]): Promise<void> {
    const paths = keys.map((k) => this.pathOf(k));
    const parents = new Set<string>();
    for (let i = 0; i < paths.length; i++) {
      try {
        await unlink(paths[i]!);
        parents.add(dirname(paths[i]!));
      } catch (err) {
        const code = errno(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        throw new ObjectStoreError('OBJECT_STORE_REQUEST', `DELETE '${keys[i]}' on ${this.url} failed: ${(err as Error).message}`, { cause: err });
      }
    }
    // Prune directories left empty (deepest first) so deleted datasets leave no skeleton behind.
    const ordered = [...parents].sort((a, b) => b.length - a.length);
    for (const p of ordered) await this.pruneUp(p);
  }

  private async pruneUp(start: string): Promise<void> {
    for (let d = start; d.length > this.dir.length && d.startsWith(this.dir + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

// ---------------------------------------------------------------------------------------------
// S3

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
    this.listPageSize = clampInt(options.listPageSize ?? S3_LIST_PAGE, 1, S3_LIST_PAGE);
    this.deleteBatchSize = clampInt(options.deleteBatchSize ?? S3_DELETE_BATCH, 1, S3_DELETE_BATCH);
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
    try {
      await store.probe();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
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
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: bytes, ContentLength: bytes.byteLength, ContentType: 'application/octet-stream' }),
      );
    } catch (err) {
      throw this.requestError('PUT', `'${key}'`, err);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.check(key);
    for (let attempt = 1; ; attempt++) {
      let length: number | undefined;
      let body: Uint8Array;
      let streaming = false;
      try {
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
        streaming = true;
        length = out.ContentLength;
        body = await readBody(out.Body, length);
      } catch (err) {
        if (isMissingKey(err)) return undefined;
        // The SDK retries failed requests, but not a body cut off mid-stream (a reset connection).
        if (streaming && attempt < BODY_ATTEMPTS && !this.closed) continue;
        throw this.requestError('GET', `'${key}'`, err);
      }
      if (length === undefined || body.byteLength === length) return body;
      if (attempt >= BODY_ATTEMPTS) {
        throw new ObjectStoreError('OBJECT_STORE_REQUEST', `GET '${key}' on ${this.url} failed: the body ended after ${body.byteLength} of ${length} bytes (${attempt} attempts)`);
      }
    }
  }

  async list(prefix: string): Promise<string[]> {
    this.checkOpen();
    assertPrefix(prefix, this.url);
    const keys: string[] = [];
    let token: string | undefined;
    do {
      try {
        const out = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + prefix, ContinuationToken: token, MaxKeys: this.listPageSize }),
        );
        for (const o of out.Contents ?? []) if (o.Key !== undefined && o.Key.startsWith(this.prefix)) keys.push(o.Key.slice(this.prefix.length));
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
        if (out.IsTruncated && !token) throw new Error('the listing is truncated but has no NextContinuationToken');
      } catch (err) {
        throw this.requestError('LIST', `'${prefix}*'`, err);
      }
    } while (token);
    // s3rver walks its directories and may not return byte order.
    return keys.sort(compareKeys);
  }

  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.check(k);
    const unique = [...new Set(keys)];
    const batches: string[][] = [];
    for (let i = 0; i < unique.length; i += this.deleteBatchSize) batches.push(unique.slice(i, i + this.deleteBatchSize));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        let failed: Array<{ Key?: string; Code?: string; Message?: string }> | undefined;
        try {
          const out = await this.client.send(
            new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((k) => ({ Key: this.prefix + k })), Quiet: true } }),
          );
          failed = out.Errors;
        } catch (err) {
          throw this.requestError('DELETE', describeKeys(batch), err);
        }
        // Missing keys are not an error; anything reported here is.
        const real = (failed ?? []).filter((e) => e.Code !== 'NoSuchKey');
        if (real.length > 0) {
          const first = real[0]!;
          const names = real.map((e) => (e.Key ?? '?').slice(this.prefix.length));
          throw new ObjectStoreError('OBJECT_STORE_REQUEST', `DELETE ${describeKeys(names)} on ${this.url} failed: ${first.Code ?? 'error'}: ${first.Message ?? ''}`.trimEnd());
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.deleteConcurrency, batches.length) }, worker));
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
    let reason = describeSdkError(err);
    // Without s3:ListBucket, S3 answers 403 instead of 404 for a missing key.
    if (op === 'GET' && httpStatus(err) === 403) reason += ' (S3 also answers 403 for a missing key when the caller lacks s3:ListBucket)';
    return new ObjectStoreError('OBJECT_STORE_REQUEST', `${op} ${what} on ${this.url} failed: ${reason}`, { cause: err });
  }
}

function clampInt(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}

/**
 * Reads a GetObject body into one buffer of the announced length, starting at offset 0 of its
 * ArrayBuffer (so a shard's sections decode as aligned views). A body that ends early comes back short.
 */
async function readBody(body: unknown, contentLength: number | undefined): Promise<Uint8Array> {
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

// ---------------------------------------------------------------------------------------------
// Opening by URL or spec

/** An S3 spec as a user writes it (defaults not yet applied). */
export type S3SpecInput = z.input<typeof s3Spec>;

const EXPECTED_TARGETS = "s3://bucket[/prefix][?endpoint=http://host:port&region=...], file:///absolute/dir, a directory path, or memory://";

/**
 * Opens an object store from a URL, a directory path, or an S3 spec object:
 *   's3://bucket/prefix?endpoint=http://127.0.0.1:4568&region=us-east-1' (credentials: the
 *   standard AWS chain), 'file:///abs/dir', 'some/dir', 'memory://', or {kind:'s3', ...}.
 * S3 stores are probed, so a wrong endpoint or bucket fails here rather than at the first put.
 */
export async function openObjectStore(target: string | S3SpecInput | S3Spec, options?: S3ObjectStoreOptions): Promise<ObjectStore> {
  if (typeof target !== 'string') {
    const kind = (target as { kind?: unknown } | null)?.kind;
    if (kind !== 's3') {
      throw new ObjectStoreError('OBJECT_STORE_TARGET', `object store spec: kind ${JSON.stringify(kind)} is not an object store; expected {kind:'s3', bucket, ...} or a URL: ${EXPECTED_TARGETS}`);
    }
    return S3ObjectStore.open(toS3Spec('spec', 'objectStore', () => parseChannelSpec(target, 'objectStore')), options);
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(target);
  if (!m) {
    if (target.trim() === '') throw new ObjectStoreError('OBJECT_STORE_TARGET', `object store '': expected ${EXPECTED_TARGETS}`);
    return new FileObjectStore(target);
  }
  const scheme = m[1]!.toLowerCase();
  switch (scheme) {
    case 'memory':
      if (m[2] !== '') throw new ObjectStoreError('OBJECT_STORE_TARGET', `object store '${target}': a memory store takes no path; expected 'memory://'`);
      return new MemoryObjectStore();
    case 'file': {
      let dir: string;
      try {
        dir = fileURLToPath(target);
      } catch (err) {
        throw new ObjectStoreError('OBJECT_STORE_TARGET', `object store '${target}': expected a file URL with an absolute path such as file:///data/cirrus (${(err as Error).message})`, { cause: err });
      }
      if (!isAbsolute(dir)) throw new ObjectStoreError('OBJECT_STORE_TARGET', `object store '${target}': expected an absolute path such as file:///data/cirrus`);
      return new FileObjectStore(dir);
    }
    case 's3':
      return S3ObjectStore.open(toS3Spec(`'${target}'`, target, () => parseChannelUrl(target)), options);
    default:
      throw new ObjectStoreError('OBJECT_STORE_TARGET', `object store '${target}': unknown scheme '${scheme}://'; expected ${EXPECTED_TARGETS}`);
  }
}

/** Runs a channel-spec parser and narrows to S3, reporting its errors as object-store errors. */
function toS3Spec(where: string, strip: string, parse: () => ReturnType<typeof parseChannelSpec>): S3Spec {
  let spec;
  try {
    spec = parse();
  } catch (err) {
    if (err instanceof ChannelError) {
      // The channel parser prefixes the URL ('s3://x.bucket: ...'); say it once, in our words.
      let message = err.message;
      if (message.startsWith(`${strip}.`)) {
        const rest = message.slice(strip.length + 1);
        const colon = rest.indexOf(': ');
        message = colon < 0 ? rest : `field '${rest.slice(0, colon)}': ${rest.slice(colon + 2)}`;
      } else if (message.startsWith(`${strip}: `)) {
        message = message.slice(strip.length + 2);
      }
      throw new ObjectStoreError('OBJECT_STORE_TARGET', `object store ${where}: ${message}`, { cause: err });
    }
    throw err;
  }
  if (spec.kind !== 's3') throw new ObjectStoreError('OBJECT_STORE_TARGET', `object store ${where}: expected an s3 spec, got '${spec.kind}'`);
  return spec;
}
