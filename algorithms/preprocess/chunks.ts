/**
 * Distributed parsing: the pieces the client (which cuts the input into raw chunks) and the
 * workers (which parse and hash them into shards) share: object keys, per-chunk seeds, results.
 */
import { z } from 'zod';
import { datasetPrefix, shardRef, type DatasetKind, type DatasetTask, type ShardRef, type Split } from '../../channels/index.js';

export interface ChunkParseResult {
  index: number;
  /** No data rows in the chunk (e.g. only blank lines): contributes nothing, fields below are unset. */
  empty: boolean;
  train: ShardRef[];
  test: ShardRef[];
  trainRows: number;
  testRows: number;
  kind?: DatasetKind;
  task?: DatasetTask;
  features?: number;
  classes?: number;
  rowsPerShard?: number;
  featureNames?: string[];
  transforms?: Array<Record<string, unknown>>;
}

export interface DatasetParseResult {
  chunks: ChunkParseResult[];
}

const chunkResult = z.object({
  index: z.number().int().nonnegative(),
  empty: z.boolean(),
  train: z.array(shardRef),
  test: z.array(shardRef),
  trainRows: z.number().int().nonnegative(),
  testRows: z.number().int().nonnegative(),
  kind: z.enum(['sparse', 'dense', 'ratings']).optional(),
  task: z.enum(['binary', 'multiclass', 'regression']).optional(),
  features: z.number().int().nonnegative().optional(),
  classes: z.number().int().nonnegative().optional(),
  rowsPerShard: z.number().int().positive().optional(),
  featureNames: z.array(z.string()).optional(),
  transforms: z.array(z.record(z.string(), z.unknown())).optional(),
});
/** Validates what a 'dataset-parse' worker returns. */
export const parseResultSchema = z.object({ chunks: z.array(chunkResult) });

export function rawChunkKey(name: string, runId: string, index: number): string {
  return `${datasetPrefix(name)}${runId}/raw/${String(index).padStart(5, '0')}.gz`;
}

/** Shard key of the n-th shard of one chunk: sorts by chunk, then by shard. */
export function chunkShardKey(name: string, runId: string, split: Split, chunk: number, n: number): string {
  return `${datasetPrefix(name)}${runId}/${split}/${String(chunk).padStart(5, '0')}-${String(n).padStart(5, '0')}.shard`;
}

/** Per-chunk seed: a fixed mix of the base seed and the chunk index (same on every machine). */
export function chunkSeed(seed: number, index: number): number {
  return ((seed >>> 0) ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0;
}
