/**
 * An S3-compatible server inside this process (s3rver), for tests, demos and single-machine runs.
 * s3rver keeps objects as files under `directory`; note that its store is not atomic (a PUT in
 * flight is visible with partial bytes), which S3Channel's envelope tolerates.
 */
import nodeCrypto from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import type { S3Spec } from '../../channels/index.js';

export interface S3ServerOptions {
  /** Where objects are stored; kept on stop. Default: a fresh temp dir, removed on stop. */
  directory?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Buckets created at start. Default ['cirrus']. */
  buckets?: string[];
  /** Suppress s3rver's request log. Default true. */
  silent?: boolean;
  /**
   * Address to bind and advertise. Default 127.0.0.1. Workers on other hosts (Lambda) need an
   * address they can reach; anyone who reaches it can use s3rver's fixed credentials.
   */
  host?: string;
}

export interface S3Server {
  endpoint: string;
  port: number;
  directory: string;
  stop(): Promise<void>;
}

/** s3rver's fixed credentials (it checks signatures, so the SDK must sign with these). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/** How long stop() lets in-flight requests finish before cutting their connections. */
const STOP_GRACE_MS = 2_000;

let desShimmed = false;

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES ('des'), which OpenSSL 3
 * (Node >= 17) no longer offers: every truncated listing (more than 1000 keys, and even HeadBucket,
 * which s3rver answers by listing) fails with HTTP 500. Triple DES with three equal keys *is*
 * single DES, so route 'des' there. Only calls that would otherwise throw are affected.
 */
function shimSingleDes(): void {
  if (desShimmed) return;
  desShimmed = true;
  try {
    nodeCrypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return; // this OpenSSL still has DES
  } catch {
    // fall through and install the shim
  }
  const tripled = (key: unknown): unknown =>
    key instanceof Uint8Array && key.byteLength === 8 ? Buffer.concat([key, key, key]) : key;
  const isDes = (algorithm: unknown): boolean => typeof algorithm === 'string' && ['des', 'des-cbc'].includes(algorithm.toLowerCase());
  type Factory = (algorithm: string, key: unknown, iv: unknown, options?: unknown) => unknown;
  const wrap = (original: Factory): Factory =>
    (algorithm, key, iv, options) => (isDes(algorithm) ? original('des-ede3-cbc', tripled(key), iv, options) : original(algorithm, key, iv, options));
  const target = nodeCrypto as unknown as Record<'createCipheriv' | 'createDecipheriv', Factory>;
  target.createCipheriv = wrap(target.createCipheriv.bind(nodeCrypto));
  target.createDecipheriv = wrap(target.createDecipheriv.bind(nodeCrypto));
}

/**
 * s3rver announces an object's size, then streams its file; an overwrite during the read truncates
 * the file and the response ends short of its Content-Length. The client then waits for bytes
 * that never come until the keep-alive timeout (5 s) closes the socket. Closing the connection as
 * soon as such a response ends turns the stall into an immediate, retryable error.
 */
function cutShortBodies(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET') return;
  let sent = 0;
  const count = (chunk: unknown): void => {
    if (typeof chunk === 'string') sent += Buffer.byteLength(chunk);
    else if (chunk instanceof Uint8Array) sent += chunk.byteLength;
  };
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    count(chunk);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  res.end = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    if (typeof chunk !== 'function') count(chunk);
    return (end as (...args: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as typeof res.end;
  // Taken now: the response lets go of its socket once it finishes.
  const socket = res.socket;
  res.on('finish', () => {
    const declared = Number(res.getHeader('content-length'));
    if (Number.isFinite(declared) && sent < declared) socket?.destroy();
  });
}

export async function startS3Server(opts: S3ServerOptions = {}): Promise<S3Server> {
  shimSingleDes();
  const ownDirectory = opts.directory === undefined;
  const directory = opts.directory ?? (await mkdtemp(join(tmpdir(), 'cirrus-s3rver-')));
  const buckets = opts.buckets ?? ['cirrus'];
  const host = opts.host ?? '127.0.0.1';
  const instance = new S3rver({
    address: host,
    port: opts.port ?? 0,
    directory,
    silent: opts.silent ?? true,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  let port: number;
  try {
    ({ port } = await instance.run());
  } catch (err) {
    if (ownDirectory) await rm(directory, { recursive: true, force: true });
    throw err;
  }
  instance.httpServer?.prependListener('request', cutShortBodies);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      const http = instance.httpServer;
      const closing = instance.close();
      // Idle keep-alive sockets of clients that were never destroyed would hold close() open.
      http?.closeIdleConnections();
      const force = setTimeout(() => http?.closeAllConnections(), STOP_GRACE_MS);
      force.unref();
      try {
        await closing;
      } finally {
        clearTimeout(force);
        if (ownDirectory) await rm(directory, { recursive: true, force: true });
      }
    })());
  return { endpoint: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, port, directory, stop };
}

/** A complete S3 channel spec (valid as input and as parsed spec) pointing at `server`. */
export function s3SpecFor(server: Pick<S3Server, 'endpoint'>, bucket = 'cirrus', prefix = ''): S3Spec {
  return {
    kind: 's3',
    bucket,
    endpoint: server.endpoint,
    region: 'us-east-1',
    prefix,
    forcePathStyle: true,
    credentials: { ...S3RVER_CREDENTIALS },
    timeoutMs: 10_000,
  };
}
