/**
 * `cirrus datasets generate ratings`: a MovieLens-format ratings file (`userId,movieId,rating`
 * with a header; no timestamp column) drawn from a planted low-rank model plus Gaussian noise:
 *   r = mean + b_u + b_i + p_u . q_i + noise,  noise ~ N(0, noise^2)
 * so the best possible test RMSE (the floor) is the noise level: `<file>.truth.json` records it
 * and the RMSE the planted model actually scores on the written ratings. Ratings stay continuous
 * (not rounded to stars), which is what keeps the floor exact.
 */
import { GenerateError, checkCommon, streamRows, subRng, writeTruth } from './generate.js';

export interface RatingsGenOptions {
  rows: number;
  seed: number;
  file: string;
  /** Default rows / 200 (100,000 ratings: 500 users). */
  users?: number;
  /** Default rows / 330 (100,000 ratings: 303 items). */
  items?: number;
  /** Rank of the planted factors, default 5. */
  rank?: number;
  /** Standard deviation of the noise, default 0.5: the floor RMSE. */
  noise?: number;
}

export interface RatingsTruth {
  rows: number;
  seed: number;
  users: number;
  items: number;
  rank: number;
  mean: number;
  noise: number;
  /** The expected RMSE of the planted model: the noise level. */
  floorRmse: number;
  /** The RMSE of the planted model on the ratings written. */
  observedFloorRmse: number;
}

const MEAN = 3.5;
const BIAS_STD = 0.3;
/** Standard deviation of p_u . q_i. */
const SIGNAL_STD = 0.8;

export async function generateRatings(options: RatingsGenOptions): Promise<RatingsTruth> {
  const { rows, seed, file } = options;
  checkCommon(rows, seed, file, 'generateRatings');
  const users = options.users ?? Math.max(2, Math.round(rows / 200));
  const items = options.items ?? Math.max(2, Math.round(rows / 330));
  const rank = options.rank ?? 5;
  const noise = options.noise ?? 0.5;
  for (const [name, v] of [['users', users], ['items', items], ['rank', rank]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new GenerateError(`generateRatings: ${name} must be a positive integer, got ${v}`);
  }
  if (!(noise >= 0) || !Number.isFinite(noise)) throw new GenerateError(`generateRatings: noise must be a finite number >= 0, got ${noise}`);
  // Factor entries N(0, s^2) with s^4 * rank = SIGNAL_STD^2 give p . q the variance SIGNAL_STD^2.
  const s = Math.pow((SIGNAL_STD * SIGNAL_STD) / rank, 0.25);
  const model = subRng(seed, 21);
  const P = Float64Array.from({ length: users * rank }, () => s * model.normal());
  const Q = Float64Array.from({ length: items * rank }, () => s * model.normal());
  const bu = Float64Array.from({ length: users }, () => BIAS_STD * model.normal());
  const bi = Float64Array.from({ length: items }, () => BIAS_STD * model.normal());
  const rng = subRng(seed, 22);
  let sq = 0;
  let header = true;
  await streamRows(file, rows, (n) => {
    const lines: string[] = [];
    if (header) {
      lines.push('userId,movieId,rating');
      header = false;
    }
    for (let k = 0; k < n; k++) {
      const u = rng.int(users);
      const i = rng.int(items);
      let r = MEAN + bu[u]! + bi[i]!;
      for (let t = 0; t < rank; t++) r += P[u * rank + t]! * Q[i * rank + t]!;
      const e = noise * rng.normal();
      const written = Number((r + e).toPrecision(7));
      sq += (written - r) ** 2;
      lines.push(`${u},${i},${written}`);
    }
    return lines.join('\n') + '\n';
  });
  const truth: RatingsTruth = { rows, seed, users, items, rank, mean: MEAN, noise, floorRmse: noise, observedFloorRmse: rows ? Math.sqrt(sq / rows) : 0 };
  await writeTruth(file, truth);
  return truth;
}
