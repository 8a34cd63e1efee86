/**
 * Queries of trained models beyond predict(batch): a matrix factorization's rating of (user, item)
 * pairs and its top-k items for a user; a k-means model's centroids.
 */
import { MatrixFactorization, type ModelSpec } from '../algorithms/index.js';
import { CirrusError } from '../paramserver/index.js';

export class ModelQueryError extends CirrusError<'MODEL_QUERY'> {
  constructor(message: string) {
    super('MODEL_QUERY', message);
  }
}

function mf(spec: ModelSpec, what: string): MatrixFactorization {
  if (spec.type !== 'mf') throw new ModelQueryError(`${what}: a ${spec.type} model does not rate (user, item) pairs; only mf does`);
  return new MatrixFactorization(spec);
}

/** Predicted ratings of [user, item] pairs. */
export function predictRatings(spec: ModelSpec, weights: Float32Array, pairs: ReadonlyArray<readonly [number, number]>): Float32Array {
  const m = mf(spec, 'predictRatings');
  const users = new Uint32Array(pairs.length);
  const items = new Uint32Array(pairs.length);
  pairs.forEach(([u, i], k) => {
    if (!Number.isSafeInteger(u) || u < 0 || !Number.isSafeInteger(i) || i < 0) throw new ModelQueryError(`predictRatings: pair ${k} is [${u}, ${i}]; expected non-negative integer ids`);
    users[k] = u;
    items[k] = i;
  });
  return m.predict({ kind: 'ratings', rows: pairs.length, users, items, ratings: new Float32Array(pairs.length) }, weights);
}

/** The k best items for `user` by predicted rating, best first, leaving out `exclude`. */
export function recommend(spec: ModelSpec, weights: Float32Array, user: number, k: number, exclude: Iterable<number> = []): Array<{ item: number; score: number }> {
  return mf(spec, 'recommend').recommend(weights, user, k, new Set(exclude));
}

/** kmeans: the k centroids, F numbers each. */
export function centroids(spec: ModelSpec, weights: Float32Array): number[][] {
  const k = spec.clusters;
  if (spec.type !== 'kmeans' || k === undefined) throw new ModelQueryError(`centroids: a ${spec.type} model has no centroids; only kmeans does`);
  const F = spec.features;
  return Array.from({ length: k }, (_, j) => Array.from(weights.subarray(j * F, (j + 1) * F)));
}
