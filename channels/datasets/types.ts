/** Contracts of the dataset storage layer, shared by the preprocessing client and the workers. */
import type { DatasetManifest, ShardRef } from './manifest.js';
import type { Shard } from './shard.js';

/**
 * Plain object storage (no channel envelope): S3 objects, files in a directory, or memory.
 * Datasets rely on one property only: an object whose put() has resolved is complete.
 */
export interface ObjectStore {
  /** Where it points, for messages, e.g. 's3://bucket/prefix' or 'file:///data/cirrus'. */
  readonly url: string;
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** undefined when the object does not exist. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Keys under prefix, sorted, all pages. */
  list(prefix: string): Promise<string[]>;
  /** Missing keys are not an error. */
  delete(keys: string[]): Promise<void>;
  close(): Promise<void>;
}

export type Split = 'train' | 'test';

/** What a writer's caller supplies at commit; the writer fills in name, shards, row counts, dates. */
export type ManifestFields = Omit<DatasetManifest, 'formatVersion' | 'name' | 'train' | 'test' | 'trainRows' | 'testRows' | 'createdAt'>;

/** Writes one dataset: shards first (any order, concurrently), the manifest last. */
export interface DatasetWriter {
  readonly name: string;
  readonly runId: string;
  /** Encodes and uploads a shard; the returned ref is what the manifest will list. */
  addShard(split: Split, shard: Shard): Promise<ShardRef>;
  /** Waits for every upload, writes the manifest (making the dataset visible), removes the shards of the dataset it replaced. */
  commit(fields: ManifestFields): Promise<DatasetManifest>;
  /** Deletes every shard this writer uploaded; the dataset stays invisible (or unchanged). */
  abort(): Promise<void>;
}
