/**
 * The bare clients the channel benchmark compares against: the same libraries the adapters use
 * (memjs, the AWS SDK, the PS client), moving the same bytes in the same number of data requests,
 * with none of the framework around them (no framing, no waiting, no reduction).
 */
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createLinearClient } from '../channels/memjs-linear.js';
import type { ChannelSpec } from '../channels/spec.js';
import { ParamClient } from '../paramserver/index.js';

export interface BareClient {
  put(key: string, value: Uint8Array): Promise<void>;
  /** Reads the value and returns its length. */
  get(key: string): Promise<number>;
  delete(keys: string[]): Promise<void>;
  close(): Promise<void>;
}

export async function openBareClient(spec: ChannelSpec): Promise<BareClient> {
  switch (spec.kind) {
    case 'memcached':
      return bareMemcached(spec.server, spec.chunkBytes, spec.connections, spec.timeoutMs);
    case 's3':
      return bareS3(spec);
    case 'ps':
      return barePs(spec.address, spec.timeoutMs);
    case 'memory':
      throw new Error('the memory channel has no bare client (it is not a server)');
  }
}

function bareMemcached(server: string, chunkBytes: number, connections: number, timeoutMs: number): BareClient {
  const clients = Array.from({ length: connections }, () => createLinearClient(server, { timeout: timeoutMs / 1000, retries: 0, keepAlive: true }));
  let next = 0;
  const pick = () => clients[next++ % clients.length]!;
  // The adapter splits values above chunkBytes into chunks of chunkBytes: do the same requests.
  const chunkCount = (n: number) => Math.max(1, Math.ceil(n / chunkBytes));
  const sizes = new Map<string, number>();
  return {
    async put(key, value) {
      const n = chunkCount(value.byteLength);
      sizes.set(key, n);
      await Promise.all(
        Array.from({ length: n }, (_, i) => pick().set(`${key}.${i}`, Buffer.from(value.buffer, value.byteOffset + i * chunkBytes, Math.min(chunkBytes, value.byteLength - i * chunkBytes)), {})),
      );
    },
    async get(key) {
      const n = sizes.get(key) ?? 1;
      const parts = await Promise.all(Array.from({ length: n }, (_, i) => pick().get(`${key}.${i}`)));
      return parts.reduce((s, p) => s + (p.value?.byteLength ?? 0), 0);
    },
    async delete(keys) {
      await Promise.all(keys.flatMap((k) => Array.from({ length: sizes.get(k) ?? 1 }, (_, i) => pick().delete(`${k}.${i}`))));
    },
    async close() {
      for (const c of clients) c.close();
    },
  };
}

function bareS3(spec: Extract<ChannelSpec, { kind: 's3' }>): BareClient {
  const client = new S3Client({
    region: spec.region,
    ...(spec.endpoint ? { endpoint: spec.endpoint, forcePathStyle: spec.forcePathStyle ?? true } : {}),
    ...(spec.credentials ? { credentials: spec.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const full = (k: string) => spec.prefix + k;
  return {
    async put(key, value) {
      await client.send(new PutObjectCommand({ Bucket: spec.bucket, Key: full(key), Body: value, ContentLength: value.byteLength }));
    },
    async get(key) {
      const r = await client.send(new GetObjectCommand({ Bucket: spec.bucket, Key: full(key) }));
      return (await r.Body!.transformToByteArray()).byteLength;
    },
    async delete(keys) {
      for (let i = 0; i < keys.length; i += 1000) {
        await client.send(new DeleteObjectsCommand({ Bucket: spec.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((k) => ({ Key: full(k) })), Quiet: true } }));
      }
    },
    async close() {
      client.destroy();
    },
  };
}

async function barePs(address: string, timeoutMs: number): Promise<BareClient> {
  const client = await ParamClient.connect(address, { timeoutMs });
  return {
    async put(key, value) {
      await client.set(key, value);
    },
    async get(key) {
      return (await client.get(key))?.byteLength ?? 0;
    },
    async delete(keys) {
      await client.del(keys);
    },
    async close() {
      await client.close();
    },
  };
}
