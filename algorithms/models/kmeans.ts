/**
 * k-means on dense rows. The weights are the k centroids, row-major (k x F), so checkpoints,
 * publishing and the client's evaluation move them like any model's weights.
 *
 * Training is Lloyd's algorithm (worker/train-lloyd.ts): every rank sums, per centroid, the
 * residuals x - c_j of the rows assigned to it and counts them; the sums are reduced; every rank
 * then moves c_j by sum / count. Residuals instead of raw points keep the float32 reduction exact
 * enough: they are small where the points are not. Empty clusters keep their previous centroid.
 *
 * The loss is the within-cluster sum of squares (SSE): the squared distance of each row to its
 * nearest centroid; `evaluate` reports it as lossSum (the client divides by rows), `predict`
 * returns cluster ids. Labels are ignored.
 */
import type { Batch, DenseBatch, EvalResult, Model, ModelSpec } from '../model.js';
import { createRng } from '../rng.js';
import { ModelError } from './base.js';

export type KMeansInit = 'kmeans++' | 'random';

/** Largest k: the reduced vector is k * (F + 1) floats, which must stay a sane message. */
export const MAX_CLUSTERS = 100_000;

/**
 * For each row of x (rows x F, from row `start`), the nearest centroid and the squared distance to
 * it. Distances are |x|^2 - 2 x.c + |c|^2 in float64, two rows against four centroids at a time.
 * Ties go to the lower centroid index.
 */
export function nearestCentroids(
  x: Float32Array, start: number, rows: number, F: number,
  centroids: Float32Array, k: number, cnorm: Float64Array,
  outIdx: Int32Array, outDist: Float64Array,
): void {
  let r = 0;
  for (; r + 2 <= rows; r += 2) {
    const a0 = (start + r) * F, a1 = a0 + F;
    let best0 = Infinity, best1 = Infinity, arg0 = 0, arg1 = 0;
    let j = 0;
    for (; j + 4 <= k; j += 4) {
      const b0 = j * F, b1 = b0 + F, b2 = b1 + F, b3 = b2 + F;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let t = 0; t < F; t++) {
        const c0 = centroids[b0 + t]!, c1 = centroids[b1 + t]!, c2 = centroids[b2 + t]!, c3 = centroids[b3 + t]!;
        const x0 = x[a0 + t]!, x1 = x[a1 + t]!;
        s00 += x0 * c0; s01 += x0 * c1; s02 += x0 * c2; s03 += x0 * c3;
        s10 += x1 * c0; s11 += x1 * c1; s12 += x1 * c2; s13 += x1 * c3;
      }
      let d = cnorm[j]! - 2 * s00; if (d < best0) { best0 = d; arg0 = j; }
      d = cnorm[j + 1]! - 2 * s01; if (d < best0) { best0 = d; arg0 = j + 1; }
      d = cnorm[j + 2]! - 2 * s02; if (d < best0) { best0 = d; arg0 = j + 2; }
      d = cnorm[j + 3]! - 2 * s03; if (d < best0) { best0 = d; arg0 = j + 3; }
      d = cnorm[j]! - 2 * s10; if (d < best1) { best1 = d; arg1 = j; }
      d = cnorm[j + 1]! - 2 * s11; if (d < best1) { best1 = d; arg1 = j + 1; }
      d = cnorm[j + 2]! - 2 * s12; if (d < best1) { best1 = d; arg1 = j + 2; }
      d = cnorm[j + 3]! - 2 * s13; if (d < best1) { best1 = d; arg1 = j + 3; }
    }
    for (; j < k; j++) {
      const b = j * F;
      let s0 = 0, s1 = 0;
      for (let t = 0; t < F; t++) {
        const c = centroids[b + t]!;
        s0 += x[a0 + t]! * c;
        s1 += x[a1 + t]! * c;
      }
      let d = cnorm[j]! - 2 * s0; if (d < best0) { best0 = d; arg0 = j; }
      d = cnorm[j]! - 2 * s1; if (d < best1) { best1 = d; arg1 = j; }
    }
    outIdx[r] = arg0;
    outIdx[r + 1] = arg1;
    outDist[r] = Math.max(0, best0 + sqNorm(x, a0, F));
    outDist[r + 1] = Math.max(0, best1 + sqNorm(x, a1, F));
  }
  for (; r < rows; r++) {
    const a = (start + r) * F;
    let best = Infinity, arg = 0;
    for (let j = 0; j < k; j++) {
      const b = j * F;
      let s = 0;
      for (let t = 0; t < F; t++) s += x[a + t]! * centroids[b + t]!;
      const d = cnorm[j]! - 2 * s;
      if (d < best) { best = d; arg = j; }
    }
    outIdx[r] = arg;
    outDist[r] = Math.max(0, best + sqNorm(x, a, F));
  }
}

function sqNorm(v: Float32Array, off: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += v[off + i]! * v[off + i]!;
  return s;
}

/** |c_j|^2 for every centroid. */
export function centroidNorms(centroids: Float32Array, k: number, F: number, out = new Float64Array(k)): Float64Array {
  for (let j = 0; j < k; j++) out[j] = sqNorm(centroids, j * F, F);
  return out;
}

/** Rows assigned per call of the kernel: bounds the scratch buffers. */
const BLOCK = 1024;

/**
 * One Lloyd pass over a batch: adds, per centroid, the residuals x - c_j of its rows (into `sums`,
 * k x F) and their count (into `counts`); returns the batch's SSE.
 */
export class LloydAccumulator {
  private readonly idx = new Int32Array(BLOCK);
  private readonly dist = new Float64Array(BLOCK);
  constructor(readonly k: number, readonly F: number) {}

  add(batch: DenseBatch, centroids: Float32Array, cnorm: Float64Array, sums: Float64Array, counts: Float64Array): number {
    const { k, F } = this;
    let sse = 0;
    for (let start = 0; start < batch.rows; start += BLOCK) {
      const rows = Math.min(BLOCK, batch.rows - start);
      nearestCentroids(batch.x, start, rows, F, centroids, k, cnorm, this.idx, this.dist);
      for (let r = 0; r < rows; r++) {
        const j = this.idx[r]!;
        sse += this.dist[r]!;
        counts[j]! += 1;
        const a = (start + r) * F, b = j * F;
        for (let t = 0; t < F; t++) sums[b + t]! += batch.x[a + t]! - centroids[b + t]!;
      }
    }
    return sse;
  }
}

/**
 * Moves every centroid to the mean of its rows: c_j += sums_j / counts_j. The empty-cluster rule:
 * a centroid no row chose keeps its position (it may win rows back as the others move).
 * Returns the number of empty clusters.
 */
export function moveCentroids(centroids: Float32Array, k: number, F: number, sums: ArrayLike<number>, counts: ArrayLike<number>): number {
  let empty = 0;
  for (let j = 0; j < k; j++) {
    const n = counts[j]!;
    if (n <= 0) {
      empty++;
      continue;
    }
    const b = j * F;
    for (let t = 0; t < F; t++) centroids[b + t] = centroids[b + t]! + sums[b + t]! / n;
  }
  return empty;
}

/**
 * The first k centroids from sample rows (x: rows x F), deterministic for a seed. 'random' picks k
 * distinct rows uniformly; 'kmeans++' picks the first uniformly and each next one with probability
 * proportional to its squared distance to the nearest chosen one (Arthur & Vassilvitskii).
 */
export function initialCentroids(x: Float32Array, rows: number, F: number, k: number, seed: number, method: KMeansInit): Float32Array {
  if (rows < k) throw new ModelError('MODEL_SPEC', `kmeans: k = ${k} clusters need at least ${k} rows to start from, the sample has ${rows}`);
  const rng = createRng(seed);
  const out = new Float32Array(k * F);
  const pickRow = (j: number, r: number): void => out.set(x.subarray(r * F, (r + 1) * F), j * F);
  if (method === 'random') {
    // Partial Fisher-Yates over row indices.
    const order = Int32Array.from({ length: rows }, (_, i) => i);
    for (let j = 0; j < k; j++) {
      const s = j + Math.floor(rng.uniform() * (rows - j));
      const t = order[j]!;
      order[j] = order[s]!;
      order[s] = t;
      pickRow(j, order[j]!);
    }
    return out;
  }
  const minDist = new Float64Array(rows).fill(Infinity);
  let r = Math.floor(rng.uniform() * rows);
  for (let j = 0; j < k; j++) {
    pickRow(j, r);
    let total = 0;
    const c = j * F;
    for (let i = 0; i < rows; i++) {
      const a = i * F;
      let d = 0;
      for (let t = 0; t < F; t++) {
        const e = x[a + t]! - out[c + t]!;
        d += e * e;
      }
      if (d < minDist[i]!) minDist[i] = d;
      total += minDist[i]!;
    }
    if (j + 1 === k) break;
    if (total <= 0) {
      // Every row sits on a chosen centroid (fewer distinct rows than k): take the next row along.
      r = (r + 1) % rows;
      continue;
    }
    let target = rng.uniform() * total;
    r = rows - 1;
    for (let i = 0; i < rows; i++) {
      target -= minDist[i]!;
      if (target < 0) {
        r = i;
        break;
      }
    }
  }
  return out;
}

export interface LloydReference {
  centroids: Float32Array;
  /** Cluster of every row under the final centroids. */
  assignments: Int32Array;
  /** SSE of every iteration, measured against the centroids it started from. */
  sse: number[];
}

/**
 * Plain sequential Lloyd's: `iterations` passes over all rows from `init` (the reference the
 * distributed runs are checked against). Distances are computed directly as sum (x - c)^2.
 */
export function lloydReference(x: Float32Array, rows: number, F: number, init: Float32Array, iterations: number): LloydReference {
  const k = init.length / F;
  const centroids = init.slice();
  const sse: number[] = [];
  const assign = (): { idx: Int32Array; total: number } => {
    const idx = new Int32Array(rows);
    let total = 0;
    for (let i = 0; i < rows; i++) {
      let best = Infinity;
      for (let j = 0; j < k; j++) {
        let d = 0;
        for (let t = 0; t < F; t++) {
          const e = x[i * F + t]! - centroids[j * F + t]!;
          d += e * e;
        }
        if (d < best) {
          best = d;
          idx[i] = j;
        }
      }
      total += best;
    }
    return { idx, total };
  };
  for (let it = 0; it < iterations; it++) {
    const { idx, total } = assign();
    sse.push(total);
    const sums = new Float64Array(k * F);
    const counts = new Float64Array(k);
    for (let i = 0; i < rows; i++) {
      const j = idx[i]!;
      counts[j]!++;
      for (let t = 0; t < F; t++) sums[j * F + t]! += x[i * F + t]! - centroids[j * F + t]!;
    }
    moveCentroids(centroids, k, F, sums, counts);
  }
  return { centroids, assignments: assign().idx, sse };
}

/** The k-means model behind the Model contract (see the file comment). */
export class KMeans implements Model {
  readonly size: number;
  readonly k: number;
  private readonly F: number;
  private readonly idx = new Int32Array(BLOCK);
  private readonly dist = new Float64Array(BLOCK);

  constructor(readonly spec: ModelSpec) {
    const k = spec.clusters;
    if (!Number.isSafeInteger(k) || k! < 1 || k! > MAX_CLUSTERS) throw new ModelError('MODEL_SPEC', `kmeans: spec.clusters must be an integer from 1 to ${MAX_CLUSTERS}, got ${k}`);
    if (spec.init !== undefined && spec.init !== 'kmeans++' && spec.init !== 'random') throw new ModelError('MODEL_SPEC', `kmeans: spec.init must be 'kmeans++' or 'random', got ${JSON.stringify(spec.init)}`);
    this.k = k!;
    this.F = spec.features;
    this.size = this.k * this.F;
  }

  /**
   * Data-free start: standard-normal centroids from the seed. Training replaces them with centroids
   * drawn from the data (initialCentroids); this only gives the contract's init a meaning.
   */
  init(seed: number): Float32Array {
    const rng = createRng(seed);
    return Float32Array.from({ length: this.size }, () => rng.normal());
  }

  private dense(batch: Batch, what: string): DenseBatch {
    if (batch.kind !== 'dense') throw new ModelError('MODEL_BATCH', `kmeans.${what}: k-means takes dense rows, got a sparse batch`);
    if (batch.cols !== this.F) throw new ModelError('MODEL_BATCH', `kmeans.${what}: batch has ${batch.cols} columns, the model ${this.F}`);
    return batch;
  }

  private checkWeights(w: Float32Array): void {
    if (!(w instanceof Float32Array) || w.length !== this.size) throw new ModelError('MODEL_WEIGHTS', `kmeans: centroids must be a Float32Array of ${this.size} entries (${this.k} x ${this.F}), got ${w?.length}`);
  }

  /** Calls f(row, cluster, squaredDistance) for every row of the batch. */
  private forEachRow(batch: DenseBatch, centroids: Float32Array, f: (row: number, j: number, d: number) => void): void {
    const cnorm = centroidNorms(centroids, this.k, this.F);
    for (let start = 0; start < batch.rows; start += BLOCK) {
      const rows = Math.min(BLOCK, batch.rows - start);
      nearestCentroids(batch.x, start, rows, this.F, centroids, this.k, cnorm, this.idx, this.dist);
      for (let r = 0; r < rows; r++) f(start + r, this.idx[r]!, this.dist[r]!);
    }
  }

  /** Gradient of the SSE in the centroids: 2 (c_j - x) summed over the rows assigned to c_j. */
  gradient(batch: Batch, weights: Float32Array, grad: Float32Array): number {
    const b = this.dense(batch, 'gradient');
    this.checkWeights(weights);
    const F = this.F;
    let sse = 0;
    this.forEachRow(b, weights, (row, j, d) => {
      sse += d;
      for (let t = 0; t < F; t++) grad[j * F + t]! += 2 * (weights[j * F + t]! - b.x[row * F + t]!);
    });
    return sse;
  }

  /** lossSum is the SSE; there is no notion of a correct row, so correct is 0. */
  evaluate(batch: Batch, weights: Float32Array): EvalResult {
    const b = this.dense(batch, 'evaluate');
    this.checkWeights(weights);
    let sse = 0;
    this.forEachRow(b, weights, (_row, _j, d) => (sse += d));
    return { rows: b.rows, lossSum: sse, correct: 0 };
  }

  /** The cluster id of every row. */
  predict(batch: Batch, weights: Float32Array): Float32Array {
    const b = this.dense(batch, 'predict');
    this.checkWeights(weights);
    const out = new Float32Array(b.rows);
    this.forEachRow(b, weights, (row, j) => (out[row] = j));
    return out;
  }
}
