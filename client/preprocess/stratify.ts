/**
 * Stratified split in one streaming pass: with each class's row count known beforehand (from the
 * label scan), class c sends exactly round(n_c * (1 - train)) of its rows to the test split,
 * chosen uniformly at random (selection sampling: a row goes to test with probability
 * still-needed / still-to-come). So every class's test share is within half a row of its share
 * of the whole file, whatever the order of the rows.
 */
import { seededRandom } from '../../algorithms/index.js';
import type { Split } from '../../channels/index.js';

export function stratifiedSplit(classCounts: ReadonlyMap<number, number>, train: number, seed: number): (label: number) => Split {
  const state = new Map<number, { left: number; need: number }>();
  for (const [label, rows] of classCounts) state.set(label, { left: rows, need: Math.round(rows * (1 - train)) });
  // A stream of its own, salted so it does not repeat the shuffle's draws.
  const random = seededRandom((seed ^ 0x2545f491) >>> 0);
  return (label) => {
    const s = state.get(label);
    // A label the scan did not count cannot happen (the same file is read twice); train is safe.
    if (!s || s.left <= 0) return 'train';
    const test = s.need > 0 && random() * s.left < s.need;
    s.left--;
    if (test) s.need--;
    return test ? 'test' : 'train';
  };
}

/** Enough train shards for a handful of workers: a small file is cut into this many. */
const TARGET_TRAIN_SHARDS = 8;
/** ...but no shard smaller than this (below it, per-shard overheads dominate). */
const MIN_ROWS_PER_SHARD = 32;
const MAX_ROWS_PER_SHARD = 50_000;

/** Rows per shard for a file of `trainRows` training rows, with the reason to print. */
export function chooseRowsPerShard(trainRows: number): { rowsPerShard: number; reason: string } {
  const rowsPerShard = Math.min(MAX_ROWS_PER_SHARD, Math.max(MIN_ROWS_PER_SHARD, Math.ceil(trainRows / TARGET_TRAIN_SHARDS)));
  const shards = Math.max(1, Math.ceil(trainRows / rowsPerShard));
  const why = rowsPerShard === MAX_ROWS_PER_SHARD ? `the largest default` : `so ${trainRows} train rows make ${shards} shard${shards === 1 ? '' : 's'}, enough for up to ${shards} worker${shards === 1 ? '' : 's'}`;
  return { rowsPerShard, reason: `rows per shard: ${rowsPerShard} (${why}; --shard-rows to choose)` };
}
