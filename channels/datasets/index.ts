/**
 * The datasets door: manifest and shard formats, the dataset store and its writer. Re-exported by
 * channels/index.ts; a worker's entry imports it directly so its cold start loads no adapter.
 */
export type { ObjectStore, DatasetWriter, ManifestFields, Split } from './types.js';
export { DatasetStore, newRunId, assertDatasetName, type CleanupOptions, type CreateWriterOptions } from './store.js';
export { DatasetError } from './errors.js';
export {
  DATASET_FORMAT_VERSION,
  DATASET_NAME,
  columnStats,
  datasetPrefix,
  datasetTask,
  manifestKey,
  manifestSchema,
  shardKey,
  shardRef,
  type ColumnStats,
  type DatasetKind,
  type DatasetManifest,
  type DatasetTask,
  type ShardRef,
} from './manifest.js';
export { decodeShard, encodeShard, validateShard, ShardFormatError, type Shard, type SparseShard, type DenseShard, type RatingsShard } from './shard.js';
