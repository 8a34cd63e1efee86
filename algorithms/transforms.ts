/**
 * Feature scaling as pure functions: each returns a new shard and leaves its input untouched.
 * Arithmetic is float64; results are stored as float32 like every shard.
 *
 * Dense shards:
 * - minMaxScale: x -> lo + (x - min) * (hi - lo) / (max - min). A constant column (max == min) or
 *   an empty one (count 0) maps to lo. Values outside [min, max] (e.g. test rows scaled with the
 *   training statistics) are not clipped.
 * - zScore: x -> (x - mean) / std; a column with std 0 maps to 0.
 * - NaN (missing) stays NaN.
 *
 * Sparse shards keep their sparsity pattern (same indptr/indices), so no transform may move 0:
 * - minMaxScale requires lo = 0 and scales by the max-abs: x -> x * hi / max(|min|, |max|).
 *   With the dense-equivalent statistics of algorithms/stats.ts a non-negative feature that some
 *   row lacks has min = 0, and then this IS the min-max transform into [0, hi]. A feature with
 *   negative values lands in [-hi, hi]. An all-zero feature stays 0.
 * - zScore divides by std WITHOUT centering (x -> x / std; std 0 -> 0), like scikit-learn's
 *   StandardScaler(with_mean=False): centering would turn every implicit zero into -mean/std.
 */
import type { DenseShard, Shard, SparseShard } from '../channels/index.js';
import type { FinalStats } from './stats.js';

export type TransformErrorCode = 'TRANSFORM_UNSUPPORTED' | 'TRANSFORM_STATS_MISMATCH' | 'TRANSFORM_ARGUMENT' | 'TRANSFORM_DENSIFIES';

export class TransformError extends Error {
  readonly code: TransformErrorCode;
  constructor(code: TransformErrorCode, message: string) {
    super(message);
    this.name = 'TransformError';
    this.code = code;
  }
}

type FeatureShard = DenseShard | SparseShard;

function checkShard(shard: Shard, stats: FinalStats, name: string): FeatureShard {
  if (shard.kind === 'ratings') throw new TransformError('TRANSFORM_UNSUPPORTED', `${name}: ratings shards have no feature columns to scale`);
  for (const field of ['count', 'min', 'max', 'mean', 'std'] as const) {
    if (stats[field].length !== shard.cols) {
      throw new TransformError('TRANSFORM_STATS_MISMATCH', `${name}: stats.${field} has ${stats[field].length} entries but the shard has ${shard.cols} columns`);
    }
  }
  return shard;
}

/**
 * Applies (x - center[j]) * scale[j] + offset[j] per column. Subtracting first keeps the digits of
 * data with a large offset (1e6 + noise) that scale * x - scale * center would cancel away.
 * Sparse shards only ever get a scale (center and offset 0), so zeros stay zeros.
 */
function affine(shard: FeatureShard, scale: Float64Array, center: Float64Array, offset: Float64Array): Shard {
  if (shard.kind === 'dense') {
    const { rows, cols } = shard;
    const x = new Float32Array(shard.x.length);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let j = 0; j < cols; j++) x[base + j] = (shard.x[base + j]! - center[j]!) * scale[j]! + offset[j]!;
    }
    return { kind: 'dense', rows, cols, labels: shard.labels.slice(), x };
  }
  const values = new Float32Array(shard.values.length);
  for (let i = 0; i < values.length; i++) values[i] = scale[shard.indices[i]!]! * shard.values[i]!;
  return {
    kind: 'sparse',
    rows: shard.rows,
    cols: shard.cols,
    labels: shard.labels.slice(),
    indptr: shard.indptr.slice(),
    indices: shard.indices.slice(),
    values,
  };
}

/** Min-max scaling into [lo, hi] (dense), or max-abs scaling into [0, hi] for sparse (see the module comment). */
export function minMaxScale(shard: Shard, stats: FinalStats, lo = 0, hi = 1): Shard {
  const s = checkShard(shard, stats, 'minMaxScale');
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi)) {
    throw new TransformError('TRANSFORM_ARGUMENT', `minMaxScale: expected finite lo < hi, got lo=${lo}, hi=${hi}`);
  }
  const cols = s.cols;
  const scale = new Float64Array(cols);
  const center = new Float64Array(cols);
  const offset = new Float64Array(cols);
  if (s.kind === 'sparse') {
    if (lo !== 0) {
      throw new TransformError('TRANSFORM_DENSIFIES', `minMaxScale: a sparse shard can only be scaled into [0, hi] (lo=${lo} would turn every implicit zero into ${lo}); use lo = 0`);
    }
    for (let j = 0; j < cols; j++) {
      const maxAbs = Math.max(Math.abs(stats.min[j]!), Math.abs(stats.max[j]!));
      scale[j] = stats.count[j]! > 0 && maxAbs > 0 ? hi / maxAbs : 0;
    }
    return affine(s, scale, center, offset);
  }
  for (let j = 0; j < cols; j++) {
    const range = stats.max[j]! - stats.min[j]!;
    offset[j] = lo; // a constant or empty column keeps scale 0, so it maps to lo
    if (stats.count[j]! > 0 && range > 0) {
      scale[j] = (hi - lo) / range;
      center[j] = stats.min[j]!;
    }
  }
  return affine(s, scale, center, offset);
}

/** Standardisation (dense) or division by std without centering (sparse); std 0 -> 0. */
export function zScore(shard: Shard, stats: FinalStats): Shard {
  const s = checkShard(shard, stats, 'zScore');
  const cols = s.cols;
  const scale = new Float64Array(cols);
  const center = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    const std = stats.std[j]!;
    if (!(std > 0)) continue; // scale 0: the column becomes 0
    scale[j] = 1 / std;
    if (s.kind === 'dense') center[j] = stats.mean[j]!;
  }
  return affine(s, scale, center, new Float64Array(cols));
}
