/** Opens an object store by URL, directory path or S3 spec. */
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { ObjectStore } from '../datasets/types.js';
import { ChannelError } from '../errors.js';
import { ObjectStoreError } from '../object-store.js';
import { parseChannelSpec, parseChannelUrl, type S3Spec, type s3Spec } from '../spec.js';
import { FileObjectStore } from './file.js';
import { MemoryObjectStore } from './memory.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3.js';

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
