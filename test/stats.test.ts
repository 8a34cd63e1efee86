/**
 * Column statistics and scaling transforms: one-pass merged statistics equal a careful two-pass
 * computation (also under a 1e6 offset), sparse statistics equal those of the dense matrix they
 * represent, and the transforms give exact values on small examples.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DenseShard, RatingsShard, SparseShard } from '../channels/datasets/shard.js';
import {
  StatsError,
  TransformError,
  emptyStats,
  finalizeStats,
  mergeAll,
  mergeStats,
  minMaxScale,
  shardStats,
  statsFromJSON,
  statsToJSON,
  zScore,
  type FinalStats,
} from '../algorithms/index.js';
import { lcg } from './support/data.js';

function dense(rows: number, cols: number, f: (r: number, j: number) => number): DenseShard {
  const x = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) x[r * cols + j] = f(r, j);
  return { kind: 'dense', rows, cols, labels: new Float32Array(rows), x };
}

/** Two-pass reference in float64 with the compensated second pass; NaN skipped. */
function twoPass(columns: number[][]): FinalStats {
  const out: FinalStats = { count: [], min: [], max: [], mean: [], std: [] };
  for (const raw of columns) {
    const col = raw.filter((v) => !Number.isNaN(v));
    const n = col.length;
    const mean = col.reduce((s, v) => s + v, 0) / n;
    let ss = 0;
    let comp = 0;
    for (const v of col) {
      ss += (v - mean) ** 2;
      comp += v - mean;
    }
    out.count.push(n);
    out.min.push(Math.min(...col));
    out.max.push(Math.max(...col));
    out.mean.push(mean);
    out.std.push(Math.sqrt((ss - (comp * comp) / n) / n));
  }
  return out;
}

function columnsOf(shards: DenseShard[]): number[][] {
  const cols = shards[0]!.cols;
  return Array.from({ length: cols }, (_, j) => shards.flatMap((s) => Array.from({ length: s.rows }, (_, r) => s.x[r * cols + j]!)));
}

function assertClose(actual: number[], expected: number[], rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let j = 0; j < expected.length; j++) {
    const a = actual[j]!;
    const e = expected[j]!;
    const tol = rel * Math.max(Math.abs(e), 1e-300);
    assert.ok(Math.abs(a - e) <= tol || (e === 0 && Math.abs(a) < 1e-12), `${what}[${j}]: ${a} vs ${e} (relative ${Math.abs(a - e) / Math.abs(e)})`);
  }
}

function assertStatsClose(actual: FinalStats, expected: FinalStats, what: string): void {
  assert.deepEqual(actual.count, expected.count, `${what}: count`);
  assert.deepEqual(actual.min, expected.min, `${what}: min`);
  assert.deepEqual(actual.max, expected.max, `${what}: max`);
  assertClose(actual.mean, expected.mean, 1e-9, `${what}: mean`);
  assertClose(actual.std, expected.std, 1e-9, `${what}: std`);
}

test('dense: merged one-pass statistics equal a two-pass computation on data with a 1e6 offset', () => {
  const u = lcg(42);
  // Column 0: 1e6 + noise (float32 resolution there is 1/16); 1: -3e5 + wide noise; 2: small
  // values with NaN gaps; 3: constant; 4: 1e6 + tiny noise that float32 rounds to a few levels.
  const gen = (r: number, j: number): number => {
    switch (j) {
      case 0:
        return 1e6 + 10 * u();
      case 1:
        return -3e5 + 1000 * (u() - 0.5);
      case 2:
        return r % 7 === 3 ? NaN : u() * 1e-3;
      case 3:
        return 2.5;
      default:
        return 1e6 + 0.2 * u();
    }
  };
  const sizes = [1000, 1, 2500, 17, 0, 640];
  const shards = sizes.map((n) => dense(n, 5, gen));
  const reference = twoPass(columnsOf(shards));

  const partials = shards.map(shardStats);
  assertStatsClose(finalizeStats(mergeAll(partials)), reference, 'merged left to right');
  // A different merge tree gives the same answer (within rounding).
  const tree = mergeStats(mergeStats(partials[5]!, partials[2]!), mergeStats(mergeStats(partials[0]!, partials[4]!), mergeStats(partials[3]!, partials[1]!)));
  assertStatsClose(finalizeStats(tree), reference, 'merged as a tree');
  // And so does one pass over all rows at once.
  const all = dense(
    sizes.reduce((a, b) => a + b, 0),
    5,
    (() => {
      const cols = columnsOf(shards);
      return (r: number, j: number) => cols[j]![r]!;
    })(),
  );
  assertStatsClose(finalizeStats(shardStats(all)), reference, 'one shard');

  const f = finalizeStats(mergeAll(partials));
  assert.equal(f.std[3], 0, 'a constant column has std 0');
  const total = sizes.reduce((a, b) => a + b, 0);
  assert.equal(f.count[2], total - columnsOf(shards)[2]!.filter(Number.isNaN).length, 'NaN is missing, not counted');
  assert.ok(f.count[2]! < total);
  assert.ok(f.std[0]! > 2 && f.std[0]! < 3.5, `std of 1e6 + 10u should be about 2.9, got ${f.std[0]}`);
});

test('the naive sum-of-squares formula would fail on the same data (the test has teeth)', () => {
  const u = lcg(7);
  const shard = dense(5000, 1, () => 1e6 + 0.2 * u());
  const col = columnsOf([shard])[0]!;
  const n = col.length;
  const s = col.reduce((a, v) => a + v, 0);
  const s2 = col.reduce((a, v) => a + v * v, 0);
  const naive = Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2));
  const good = finalizeStats(shardStats(shard)).std[0]!;
  const reference = twoPass([col]).std[0]!;
  assert.ok(Math.abs(good - reference) / reference < 1e-9);
  assert.ok(Math.abs(naive - reference) / reference > 1e-6, `naive ${naive} vs ${reference}`);
});

function sparseFromRows(cols: number, rows: Array<Array<[number, number]>>): SparseShard {
  const indptr = new Uint32Array(rows.length + 1);
  const indices: number[] = [];
  const values: number[] = [];
  rows.forEach((row, r) => {
    for (const [j, v] of row) {
      indices.push(j);
      values.push(v);
    }
    indptr[r + 1] = indices.length;
  });
  return { kind: 'sparse', rows: rows.length, cols, labels: new Float32Array(rows.length), indptr, indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}

function densify(s: SparseShard): DenseShard {
  const x = new Float32Array(s.rows * s.cols);
  for (let r = 0; r < s.rows; r++) for (let i = s.indptr[r]!; i < s.indptr[r + 1]!; i++) x[r * s.cols + s.indices[i]!] = s.values[i]!;
  return { kind: 'dense', rows: s.rows, cols: s.cols, labels: s.labels, x };
}

function randomSparse(seed: number, rows: number, cols: number): SparseShard {
  const u = lcg(seed);
  return sparseFromRows(
    cols,
    Array.from({ length: rows }, () => {
      const row: Array<[number, number]> = [];
      for (let j = 0; j < cols; j++) {
        // Feature 0 is in every row (no implicit zeros), feature cols-1 in none.
        if (j === cols - 1) continue;
        if (j === 0 || u() < 0.3) row.push([j, j % 3 === 2 ? -1e6 + 5 * u() : 1 + 100 * u()]);
      }
      return row;
    }),
  );
}

test('sparse: statistics equal those of the dense matrix the shard represents (implicit zeros count)', () => {
  const shards = [randomSparse(1, 300, 8), randomSparse(2, 1, 8), randomSparse(3, 450, 8)];
  const merged = mergeAll(shards.map(shardStats));
  const expected = twoPass(columnsOf(shards.map(densify)));
  assertStatsClose(finalizeStats(merged), expected, 'sparse vs densified');
  // And the same via the dense code path.
  assertStatsClose(finalizeStats(mergeAll(shards.map((s) => shardStats(densify(s))))), expected, 'densified shards');
  const f = finalizeStats(merged);
  assert.deepEqual(f.count, Array(8).fill(751), 'count = rows for every feature');
  assert.equal(f.min[1], 0, 'a positive feature missing from some rows has min 0');
  assert.deepEqual([f.min[7], f.max[7], f.mean[7], f.std[7]], [0, 0, 0, 0], 'a feature in no row is all zeros');
  assert.ok(f.min[0]! >= 1, 'a feature present in every row has no implicit zero');
  // stored counts the explicit entries
  const stored = Array.from(merged.stored!);
  assert.equal(stored[0], 751);
  assert.equal(stored[7], 0);
  assert.equal(stored.reduce((a, b) => a + b, 0), shards.reduce((a, s) => a + s.indices.length, 0));
});

test('statistics survive the JSON round trip used for worker results, including empty columns', () => {
  const a = shardStats(dense(3, 2, (r, j) => (j === 1 ? NaN : r)));
  const back = statsFromJSON(JSON.parse(JSON.stringify(statsToJSON(a))));
  assert.deepEqual(finalizeStats(back), finalizeStats(a));
  assert.equal(back.min[1], Infinity, 'an empty column comes back empty, not with min 0');
  const b = shardStats(dense(2, 2, (r) => -5 - r));
  assert.deepEqual(finalizeStats(mergeStats(back, b)), finalizeStats(mergeStats(a, b)));
  assert.deepEqual(finalizeStats(emptyStats('dense', 2)), { count: [0, 0], min: [0, 0], max: [0, 0], mean: [0, 0], std: [0, 0] });
  assert.throws(() => statsFromJSON({ ...statsToJSON(a), mean: [1] }, 'rank 2 result'), (e: unknown) => e instanceof StatsError && e.code === 'STATS_FORMAT' && /rank 2 result: mean/.test(e.message));
  assert.throws(() => mergeStats(a, emptyStats('dense', 3)), (e: unknown) => e instanceof StatsError && e.code === 'STATS_MISMATCH');
  const ratings: RatingsShard = { kind: 'ratings', rows: 1, cols: 0, users: Uint32Array.of(0), items: Uint32Array.of(0), ratings: Float32Array.of(1) };
  assert.throws(() => shardStats(ratings), (e: unknown) => e instanceof StatsError && e.code === 'STATS_UNSUPPORTED');
});

test('dense min-max and z-score: exact values on a small example', () => {
  // col 0: 1, 2, 3   col 1: 5, 5, 5 (constant)   col 2: -4, 0, 4
  const shard = dense(3, 3, (r, j) => [r + 1, 5, 4 * (r - 1)][j]!);
  shard.labels.set([1, 0, 1]);
  const stats = finalizeStats(shardStats(shard));
  assert.deepEqual(stats.mean, [2, 5, 0]);

  const mm = minMaxScale(shard, stats, -1, 1);
  assert.equal(mm.kind, 'dense');
  assert.deepEqual(Array.from((mm as DenseShard).x), [-1, -1, -1, 0, -1, 0, 1, -1, 1], 'constant columns map to lo');
  assert.deepEqual(Array.from((mm as DenseShard).labels), [1, 0, 1], 'labels are kept');
  const unit = minMaxScale(shard, stats) as DenseShard;
  assert.deepEqual(Array.from(unit.x), [0, 0, 0, 0.5, 0, 0.5, 1, 0, 1]);

  const z = zScore(shard, stats) as DenseShard;
  const s0 = Math.sqrt(2 / 3);
  const s2 = Math.sqrt(32 / 3);
  const expected = [-1 / s0, 0, -4 / s2, 0, 0, 0, 1 / s0, 0, 4 / s2].map(Math.fround);
  assert.deepEqual(Array.from(z.x), expected, 'std-0 columns map to 0');
  assert.deepEqual(Array.from(shard.x), [1, 5, -4, 2, 5, 0, 3, 5, 4], 'the input is untouched');

  // Values outside the fitted range are not clipped; NaN stays NaN.
  const other = dense(2, 3, (r) => (r === 0 ? 5 : NaN));
  assert.deepEqual(Array.from((minMaxScale(other, stats) as DenseShard).x.slice(0, 3)), [2, 0, 1.125]);
  assert.ok(Number.isNaN((minMaxScale(other, stats) as DenseShard).x[3]));

  // Large offsets keep their digits: (x - min) is taken before scaling.
  const big = dense(3, 1, (r) => 1e6 + r);
  assert.deepEqual(Array.from((minMaxScale(big, finalizeStats(shardStats(big))) as DenseShard).x), [0, 0.5, 1]);

  assert.throws(() => minMaxScale(shard, stats, 1, 1), (e: unknown) => e instanceof TransformError && e.code === 'TRANSFORM_ARGUMENT');
  assert.throws(() => zScore(dense(1, 2, () => 0), stats), (e: unknown) => e instanceof TransformError && e.code === 'TRANSFORM_STATS_MISMATCH');
});

test('sparse transforms keep the sparsity pattern: max-abs scaling and z-score without centering', () => {
  // feature 0: 2, 0, 4   feature 1: 0, -8, 0   feature 2: never   feature 3: 3 in every row
  const shard = sparseFromRows(4, [
    [
      [0, 2],
      [3, 3],
    ],
    [
      [1, -8],
      [3, 3],
    ],
    [
      [0, 4],
      [3, 3],
    ],
  ]);
  const stats = finalizeStats(shardStats(shard));
  assert.deepEqual(stats.min, [0, -8, 0, 3]);
  assert.deepEqual(stats.max, [4, 0, 0, 3]);

  const mm = minMaxScale(shard, stats, 0, 2) as SparseShard;
  assert.equal(mm.kind, 'sparse');
  assert.deepEqual(Array.from(mm.indptr), Array.from(shard.indptr));
  assert.deepEqual(Array.from(mm.indices), Array.from(shard.indices));
  // x * hi / max(|min|, |max|): feature 0 -> [1, 0, 2] (= its true min-max scaling into [0, 2]), feature 1 -> -2, feature 3 -> 2
  assert.deepEqual(Array.from(mm.values), [1, 2, -2, 2, 2, 2]);
  assert.throws(() => minMaxScale(shard, stats, -1, 1), (e: unknown) => e instanceof TransformError && e.code === 'TRANSFORM_DENSIFIES' && /\[0, hi\]/.test(e.message));

  const z = zScore(shard, stats) as SparseShard;
  const std0 = stats.std[0]!; // of [2, 0, 4]
  const std1 = stats.std[1]!; // of [0, -8, 0]
  assert.ok(Math.abs(std0 - Math.sqrt(8 / 3)) < 1e-12);
  assert.deepEqual(Array.from(z.values), [2 / std0, 0, -8 / std1, 0, 4 / std0, 0].map(Math.fround), 'divided by std, not centred; std 0 -> 0');
  assert.deepEqual(Array.from(z.indices), Array.from(shard.indices));
});
