/**
 * Dataset manifests: `datasets/<name>/manifest.json` in the object store, written last, so a
 * dataset is visible only once every shard it lists is complete.
 */
import { z } from 'zod';

export const DATASET_FORMAT_VERSION = 1;
export const DATASET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export const datasetKind = z.enum(['sparse', 'dense', 'ratings']);
export type DatasetKind = z.infer<typeof datasetKind>;

export const datasetTask = z.enum(['binary', 'multiclass', 'regression']);
export type DatasetTask = z.infer<typeof datasetTask>;

export const shardRef = z
  .object({
    /** Object key of the shard, e.g. 'datasets/criteo/train/00003.shard'. */
    key: z.string().min(1),
    rows: z.number().int().nonnegative(),
    bytes: z.number().int().nonnegative(),
    /** Nonzeros (sparse shards). */
    nnz: z.number().int().nonnegative().optional(),
  })
  .strict();
export type ShardRef = z.infer<typeof shardRef>;

const splitInfo = z.object({ rows: z.number().int().nonnegative(), shards: z.array(shardRef) }).strict();

/** Per-column statistics (dense: one entry per column; sparse: per feature index that occurs). */
export const columnStats = z
  .object({
    count: z.array(z.number()),
    min: z.array(z.number()),
    max: z.array(z.number()),
    mean: z.array(z.number()),
    std: z.array(z.number()),
  })
  .strict();
export type ColumnStats = z.infer<typeof columnStats>;

export const manifestSchema = z
  .object({
    formatVersion: z.literal(DATASET_FORMAT_VERSION),
    name: z.string().regex(DATASET_NAME),
    kind: datasetKind,
    task: datasetTask,
    /** Feature count: dense columns, or the size of the sparse feature space. Ratings: 0. */
    features: z.number().int().nonnegative(),
    /** Classes for classification (2 for binary); 0 for regression. */
    classes: z.number().int().nonnegative(),
    /** Ratings datasets: user and item id ranges [0, users) and [0, items). */
    users: z.number().int().nonnegative().optional(),
    items: z.number().int().nonnegative().optional(),
    rowsPerShard: z.number().int().positive(),
    trainRows: z.number().int().nonnegative(),
    testRows: z.number().int().nonnegative(),
    train: splitInfo,
    test: splitInfo,
    /** Statistics of the training split's features, once computed. */
    stats: columnStats.nullable(),
    featureNames: z.array(z.string()).optional(),
    labelNames: z.array(z.string()).optional(),
    source: z
      .object({ file: z.string(), format: z.string(), bytes: z.number().int().nonnegative() })
      .strict()
      .optional(),
    /** Transforms applied, in order (e.g. {type:'zscore'}, {type:'hash', columns, bits}). */
    transforms: z.array(z.record(z.string(), z.unknown())).default([]),
    createdAt: z.string(),
  })
  .strict();

export type DatasetManifest = z.infer<typeof manifestSchema>;

export function datasetPrefix(name: string): string {
  return `datasets/${name}/`;
}

export function manifestKey(name: string): string {
  return `datasets/${name}/manifest.json`;
}

/**
 * Shard object key: datasets/<name>/<runId>/<split>/<5-digit index>.shard. The run id (one per
 * preprocessing run) keeps a rewrite of a dataset from touching the shards its current manifest
 * lists: new shards go under a new run id, then the manifest is swapped, then old shards deleted.
 */
export function shardKey(name: string, runId: string, split: 'train' | 'test', index: number): string {
  return `datasets/${name}/${runId}/${split}/${String(index).padStart(5, '0')}.shard`;
}
