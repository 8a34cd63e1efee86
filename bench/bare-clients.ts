/**
 * The bare clients the channel benchmark compares against: the same clients the adapters use
 * (memjs plus the memcached bulk connection, the AWS SDK, the PS client), moving the same bytes in
 * the same number of data requests, with none of the framework around them (no framing, no
 * waiting, no reduction).
 */
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { openBulkConnection, SMALL_ITEM_BYTES, createLinearClient, type ChannelSpec } from '../channels/index.js';
import { ParamClient } from '../paramserver/index.js';

interface BareClient {
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
  // The adapter's two clients, used for the same items: memjs for small values, the bulk
  // connection for larger values, for the chunks of values over chunkBytes, every read and every delete.
  const clients = Array.from({ length: connections }, () => createLinearClient(server, { timeout: timeoutMs / 1000, retries: 0, keepAlive: true }));
  const bulk = Array.from({ length: connections }, () => openBulkConnection(server, timeoutMs));
  let next = 0;
  let nextBulk = 0;
  const pick = () => clients[next++ % clients.length]!;
  const pickBulk = () => bulk[nextBulk++ % bulk.length]!;
  // The adapter stores values below chunkBytes as one item, larger ones as chunks of chunkBytes.
  const chunkCount = (n: number) => (n < chunkBytes ? 0 : Math.ceil(n / chunkBytes));
  const sizes = new Map<string, number>();
  const scratch = new Map<string, Uint8Array>();
  return {
    async put(key, value) {
      const n = chunkCount(value.byteLength);
      sizes.set(key, value.byteLength);
      if (n === 0 && value.byteLength < SMALL_ITEM_BYTES) {
        await pick().set(`${key}.0`, Buffer.from(value.buffer, value.byteOffset, value.byteLength), {});
        return;
      }
      if (n === 0) {
        await pickBulk().set(`${key}.0`, value);
        return;
      }
      await Promise.all(
        Array.from({ length: n }, (_, i) => pickBulk().set(`${key}.${i}`, value.subarray(i * chunkBytes, Math.min(value.byteLength, (i + 1) * chunkBytes)))),
      );
    },
    async get(key) {
      const size = sizes.get(key) ?? 0;
      const n = Math.max(1, chunkCount(size));
      // One reused buffer per key: the collectives read into reused buffers too (never slower).
      let out = scratch.get(key);
      if (out?.byteLength !== size) scratch.set(key, (out = new Uint8Array(size)));
      const part = n === 1 ? size : chunkBytes;
      const got = await Promise.all(
        Array.from({ length: n }, (_, i) => pickBulk().getInto(`${key}.${i}`, out.subarray(i * part, Math.min(size, (i + 1) * part)))),
      );
      return got.reduce((s, g) => s + Math.max(0, g), 0);
    },
    async delete(keys) {
      await Promise.all(keys.flatMap((k) => Array.from({ length: Math.max(1, chunkCount(sizes.get(k) ?? 0)) }, (_, i) => pickBulk().delete(`${k}.${i}`))));
    },
    async close() {
      for (const c of clients) c.close();
      for (const b of bulk) b.close();
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
