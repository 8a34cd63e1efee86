/**
 * Mergeable per-column statistics: count, min, max, mean and M2 (the sum of squared deviations
 * from the mean). Workers compute a partial per group of shards with Welford's one-pass update;
 * the client merges partials with Chan et al.'s pairwise formula. Both stay accurate on data with
 * a large offset (1e6 + small noise), where the textbook sum-of-squares formula cancels to garbage.
 *
 * Semantics:
 * - Dense shards: one entry per column. NaN means "missing": it is skipped and not counted, so
 *   `count[j]` is the number of non-NaN values of column j.
 * - Sparse shards: one entry per feature index in [0, cols), with the statistics of the DENSE
 *   matrix the shard represents: every implicit (unstored) entry is a real 0. So count[j] = rows
 *   (less stored NaNs), min[j] <= 0 <= max[j] whenever some row lacks feature j, and the mean and
 *   std include the zeros. `stored[j]` additionally counts the stored (non-NaN) entries.
 *   The implicit zeros of a shard are folded in once per shard as a single block (mean 0, M2 0),
 *   so the cost stays O(nnz + cols) per shard.
 * - A column with count 0 finalizes to min = max = mean = std = 0 (JSON and the manifest schema
 *   have no infinities).
 * - Ratings shards have no feature columns: shardStats refuses them.
 */
import type { ColumnStats, DenseShard, Shard, SparseShard } from '../channels/index.js';

export type StatsErrorCode = 'STATS_UNSUPPORTED' | 'STATS_MISMATCH' | 'STATS_FORMAT';

export class StatsError extends Error {
  readonly code: StatsErrorCode;
  constructor(code: StatsErrorCode, message: string) {
    super(message);
    this.name = 'StatsError';
    this.code = code;
  }
}

/** A partial (mergeable) result. Float64 throughout: float32 accumulators would lose the noise under a 1e6 offset. */
export interface PartialStats {
  kind: 'dense' | 'sparse';
  cols: number;
  /** Rows seen (including rows whose values were NaN). */
  rows: number;
  count: Float64Array;
  /** +Infinity / -Infinity while count is 0. */
  min: Float64Array;
  max: Float64Array;
  mean: Float64Array;
  m2: Float64Array;
  /** Sparse only: stored (explicit, non-NaN) entries per feature. */
  stored?: Float64Array;
}

/** The finalized form, identical to the manifest's column statistics. std is the population std. */
export type FinalStats = ColumnStats;

/** Plain-JSON form of PartialStats, for worker results. min/max of empty columns are written as 0. */
export interface PartialStatsJSON {
  kind: 'dense' | 'sparse';
  cols: number;
  rows: number;
  count: number[];
  min: number[];
  max: number[];
  mean: number[];
  m2: number[];
  stored?: number[];
}

export function emptyStats(kind: 'dense' | 'sparse', cols: number): PartialStats {
  const s: PartialStats = {
    kind,
    cols,
    rows: 0,
    count: new Float64Array(cols),
    min: new Float64Array(cols).fill(Infinity),
    max: new Float64Array(cols).fill(-Infinity),
    mean: new Float64Array(cols),
    m2: new Float64Array(cols),
  };
  if (kind === 'sparse') s.stored = new Float64Array(cols);
  return s;
}

/** Welford's update of column j with value v. */
function welford(s: PartialStats, j: number, v: number): void {
  const n = s.count[j]! + 1;
  const mean = s.mean[j]!;
  const d = v - mean;
  const nextMean = mean + d / n;
  s.count[j] = n;
  s.mean[j] = nextMean;
  s.m2[j] = s.m2[j]! + d * (v - nextMean);
  if (v < s.min[j]!) s.min[j] = v;
  if (v > s.max[j]!) s.max[j] = v;
}

/**
 * Chan's merge of (nb, meanB, m2B, minB, maxB) into column j of `s`. Written out once so the sparse
 * zero-block fold and mergeStats share exactly the same arithmetic.
 */
function chan(s: PartialStats, j: number, nb: number, meanB: number, m2B: number, minB: number, maxB: number): void {
  if (nb === 0) return;
  const na = s.count[j]!;
  if (na === 0) {
    s.count[j] = nb;
    s.mean[j] = meanB;
    s.m2[j] = m2B;
    s.min[j] = minB;
    s.max[j] = maxB;
    return;
  }
  const n = na + nb;
  const d = meanB - s.mean[j]!;
  s.count[j] = n;
  s.mean[j] = s.mean[j]! + (d * nb) / n;
  s.m2[j] = s.m2[j]! + m2B + ((d * d) * na * nb) / n;
  if (minB < s.min[j]!) s.min[j] = minB;
  if (maxB > s.max[j]!) s.max[j] = maxB;
}

function denseStats(shard: DenseShard): PartialStats {
  const { rows, cols, x } = shard;
  const s = emptyStats('dense', cols);
  s.rows = rows;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < cols; j++) {
      const v = x[base + j]!;
      if (v === v) welford(s, j, v); // NaN is missing
    }
  }
  return s;
}

function sparseStats(shard: SparseShard): PartialStats {
  const { rows, cols, indices, values } = shard;
  const s = emptyStats('sparse', cols);
  s.rows = rows;
  const nan = new Float64Array(cols);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i]!;
    const v = values[i]!;
    if (v === v) welford(s, j, v);
    else nan[j] = nan[j]! + 1;
  }
  s.stored = Float64Array.from(s.count);
  // Every row that does not store feature j holds an implicit 0: fold them in as one block.
  for (let j = 0; j < cols; j++) {
    const zeros = rows - s.count[j]! - nan[j]!;
    chan(s, j, zeros, 0, 0, 0, 0);
  }
  return s;
}

/** Statistics of one shard (see the module comment for dense vs sparse semantics). */
export function shardStats(shard: Shard): PartialStats {
  if (shard.kind === 'dense') return denseStats(shard);
  if (shard.kind === 'sparse') return sparseStats(shard);
  throw new StatsError('STATS_UNSUPPORTED', 'column statistics are defined for dense and sparse shards, not ratings shards');
}

/** Merges two partials into a new one (inputs untouched). Both must describe the same kind and column count. */
export function mergeStats(a: PartialStats, b: PartialStats): PartialStats {
  if (a.kind !== b.kind || a.cols !== b.cols) {
    throw new StatsError('STATS_MISMATCH', `cannot merge ${a.kind} statistics of ${a.cols} columns with ${b.kind} statistics of ${b.cols} columns`);
  }
  const out: PartialStats = {
    kind: a.kind,
    cols: a.cols,
    rows: a.rows + b.rows,
    count: Float64Array.from(a.count),
    min: Float64Array.from(a.min),
    max: Float64Array.from(a.max),
    mean: Float64Array.from(a.mean),
    m2: Float64Array.from(a.m2),
  };
  if (a.kind === 'sparse') {
    const sa = a.stored ?? new Float64Array(a.cols);
    const sb = b.stored ?? new Float64Array(b.cols);
    out.stored = sa.map((v, j) => v + sb[j]!);
  }
  for (let j = 0; j < a.cols; j++) chan(out, j, b.count[j]!, b.mean[j]!, b.m2[j]!, b.min[j]!, b.max[j]!);
  return out;
}

/** Merges any number of partials, in the order given (order matters only in the last bits). */
export function mergeAll(parts: PartialStats[]): PartialStats {
  if (parts.length === 0) throw new StatsError('STATS_MISMATCH', 'mergeAll needs at least one partial');
  return parts.slice(1).reduce((acc, p) => mergeStats(acc, p), parts[0]!);
}

/** count, min, max, mean and population std per column, as plain arrays (the manifest's form). */
export function finalizeStats(s: PartialStats): FinalStats {
  const out: FinalStats = { count: [], min: [], max: [], mean: [], std: [] };
  for (let j = 0; j < s.cols; j++) {
    const n = s.count[j]!;
    out.count.push(n);
    if (n === 0) {
      out.min.push(0);
      out.max.push(0);
      out.mean.push(0);
      out.std.push(0);
      continue;
    }
    out.min.push(s.min[j]!);
    out.max.push(s.max[j]!);
    out.mean.push(s.mean[j]!);
    // M2 can come out a hair below 0 only through rounding; a variance is never negative.
    out.std.push(Math.sqrt(Math.max(0, s.m2[j]!) / n));
  }
  return out;
}

export function statsToJSON(s: PartialStats): PartialStatsJSON {
  const empty = (j: number) => s.count[j] === 0;
  const out: PartialStatsJSON = {
    kind: s.kind,
    cols: s.cols,
    rows: s.rows,
    count: Array.from(s.count),
    min: Array.from(s.min, (v, j) => (empty(j) ? 0 : v)),
    max: Array.from(s.max, (v, j) => (empty(j) ? 0 : v)),
    mean: Array.from(s.mean),
    m2: Array.from(s.m2),
  };
  if (s.stored) out.stored = Array.from(s.stored);
  return out;
}

/** Parses the JSON form, checking shapes; `what` names the source in errors (e.g. 'rank 3 result'). */
export function statsFromJSON(input: unknown, what = 'statistics'): PartialStats {
  const fail = (m: string): never => {
    throw new StatsError('STATS_FORMAT', `${what}: ${m}`);
  };
  if (typeof input !== 'object' || input === null) return fail('expected an object');
  const o = input as Record<string, unknown>;
  if (o.kind !== 'dense' && o.kind !== 'sparse') return fail(`kind: expected 'dense' or 'sparse', got ${JSON.stringify(o.kind)}`);
  const cols = o.cols;
  if (typeof cols !== 'number' || !Number.isInteger(cols) || cols < 0) return fail('cols: expected a non-negative integer');
  if (typeof o.rows !== 'number' || !Number.isInteger(o.rows) || o.rows < 0) return fail('rows: expected a non-negative integer');
  const arr = (name: string): Float64Array => {
    const a = o[name];
    if (!Array.isArray(a) || a.length !== cols) return fail(`${name}: expected an array of ${cols} numbers`);
    const out = new Float64Array(cols);
    for (let j = 0; j < cols; j++) {
      const v: unknown = a[j];
      if (typeof v !== 'number' || !Number.isFinite(v)) return fail(`${name}[${j}]: expected a finite number, got ${JSON.stringify(v)}`);
      out[j] = v;
    }
    return out;
  };
  const s: PartialStats = { kind: o.kind, cols, rows: o.rows, count: arr('count'), min: arr('min'), max: arr('max'), mean: arr('mean'), m2: arr('m2') };
  if (o.kind === 'sparse') s.stored = o.stored === undefined ? new Float64Array(cols) : arr('stored');
  for (let j = 0; j < cols; j++) {
    if (s.count[j] === 0) {
      s.min[j] = Infinity;
      s.max[j] = -Infinity;
    }
  }
  return s;
}
