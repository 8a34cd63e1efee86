/**
 * Matrix factorization with biases (the recommender of Cirrus and LambdaML):
 *   r^(u, i) = mu + b_u + b_i + p_u . q_i
 * trained on ratings batches. Weights, one flat Float32Array:
 *   [P (users x rank), Q (items x rank), b_user (users), b_item (items), mu].
 * The loss of a rating is the squared error (r^ - r)^2, so the mean loss is the MSE and the test
 * RMSE is its square root; the gradient adds the per-rating regularization spec.reg (see
 * ModelSpec.reg), the reported loss leaves it out. A batch's gradient touches only the rows of its users and items (plus
 * their biases and mu): mfSupport lists them, so async-sgd pulls and pushes only those from the
 * parameter server; GA-SGD all-reduces the whole (mostly zero) vector.
 */
import type { EvalResult, Model, ModelBatch, ModelSpec, RatingsBatch } from '../model.js';
import { createRng } from '../rng.js';
import { ModelError } from './base.js';

/** Standard deviation of the initial factors: large enough that SGD leaves the all-biases saddle (factors near 0) quickly. */
const INIT_STD = 0.3;

export interface MfLayout {
  users: number;
  items: number;
  rank: number;
  /** Offsets of Q, b_user, b_item and mu in the weight vector. */
  q: number;
  bu: number;
  bi: number;
  mu: number;
  size: number;
}

export function mfLayout(spec: ModelSpec): MfLayout {
  const { users, items, rank } = spec;
  for (const [name, v] of [['users', users], ['items', items], ['rank', rank]] as const) {
    if (!Number.isSafeInteger(v) || v! < 1) throw new ModelError('MODEL_SPEC', `mf: spec.${name} must be a positive integer, got ${v}`);
  }
  const U = users!, I = items!, R = rank!;
  const q = U * R;
  const bu = q + I * R;
  const bi = bu + U;
  const mu = bi + I;
  return { users: U, items: I, rank: R, q, bu, bi, mu, size: mu + 1 };
}

export class MatrixFactorization implements Model {
  readonly size: number;
  readonly layout: MfLayout;
  private readonly reg: number;

  constructor(readonly spec: ModelSpec) {
    this.layout = mfLayout(spec);
    this.size = this.layout.size;
    this.reg = spec.reg ?? 0;
    if (!(this.reg >= 0) || !Number.isFinite(this.reg)) throw new ModelError('MODEL_SPEC', `mf: spec.reg must be a finite number >= 0, got ${spec.reg}`);
    if (this.size > 2 ** 31 - 1) throw new ModelError('MODEL_SPEC', `mf: ${this.size} weights exceed one Float32Array`);
  }

  /** Factors N(0, INIT_STD^2) from the seed; biases and mu 0. */
  init(seed: number): Float32Array {
    const rng = createRng(seed);
    const w = new Float32Array(this.size);
    for (let i = 0; i < this.layout.bu; i++) w[i] = INIT_STD * rng.normal();
    return w;
  }

  private ratings(batch: ModelBatch, what: string): RatingsBatch {
    if (batch.kind !== 'ratings') throw new ModelError('MODEL_BATCH', `mf.${what}: matrix factorization takes ratings batches, got a ${batch.kind} batch`);
    const { users, items } = this.layout;
    for (let r = 0; r < batch.rows; r++) {
      if (batch.users[r]! >= users) throw new ModelError('MODEL_BATCH', `mf.${what}: user id ${batch.users[r]} of batch row ${r} is outside the model's ${users} users`);
      if (batch.items[r]! >= items) throw new ModelError('MODEL_BATCH', `mf.${what}: item id ${batch.items[r]} of batch row ${r} is outside the model's ${items} items`);
    }
    return batch;
  }

  private checkWeights(w: Float32Array): void {
    if (!(w instanceof Float32Array) || w.length !== this.size) throw new ModelError('MODEL_WEIGHTS', `mf: weights must be a Float32Array of ${this.size} entries, got ${w?.length}`);
  }

  /** r^ for one (user, item). */
  score(w: Float32Array, u: number, i: number): number {
    const { rank: R, q, bu, bi, mu } = this.layout;
    const pu = u * R, qi = q + i * R;
    let s = w[mu]! + w[bu + u]! + w[bi + i]!;
    for (let t = 0; t < R; t++) s += w[pu + t]! * w[qi + t]!;
    return s;
  }

  gradient(batch: ModelBatch, weights: Float32Array, grad: Float32Array): number {
    const b = this.ratings(batch, 'gradient');
    this.checkWeights(weights);
    const { rank: R, q, bu, bi, mu } = this.layout;
    let loss = 0;
    for (let r = 0; r < b.rows; r++) {
      const u = b.users[r]!, i = b.items[r]!;
      const e = this.score(weights, u, i) - b.ratings[r]!;
      loss += e * e;
      const g = 2 * e;
      const lam = 2 * this.reg;
      const pu = u * R, qi = q + i * R;
      for (let t = 0; t < R; t++) {
        const p = weights[pu + t]!, qq = weights[qi + t]!;
        grad[pu + t]! += g * qq + lam * p;
        grad[qi + t]! += g * p + lam * qq;
      }
      grad[bu + u]! += g + lam * weights[bu + u]!;
      grad[bi + i]! += g + lam * weights[bi + i]!;
      grad[mu]! += g;
    }
    return loss;
  }

  /** lossSum is the sum of squared errors; correct is 0 (a regression). */
  evaluate(batch: ModelBatch, weights: Float32Array): EvalResult {
    const b = this.ratings(batch, 'evaluate');
    this.checkWeights(weights);
    let loss = 0;
    for (let r = 0; r < b.rows; r++) {
      const e = this.score(weights, b.users[r]!, b.items[r]!) - b.ratings[r]!;
      loss += e * e;
    }
    return { rows: b.rows, lossSum: loss, correct: 0 };
  }

  /** The predicted rating of every (user, item) of the batch. */
  predict(batch: ModelBatch, weights: Float32Array): Float32Array {
    const b = this.ratings(batch, 'predict');
    this.checkWeights(weights);
    const out = new Float32Array(b.rows);
    for (let r = 0; r < b.rows; r++) out[r] = this.score(weights, b.users[r]!, b.items[r]!);
    return out;
  }

  /**
   * The k items with the highest predicted rating for `user`, best first (ties: lower item id),
   * leaving out `exclude` (e.g. the items the user already rated).
   */
  recommend(weights: Float32Array, user: number, k: number, exclude: ReadonlySet<number> = new Set()): Array<{ item: number; score: number }> {
    this.checkWeights(weights);
    const { users, items } = this.layout;
    if (!Number.isSafeInteger(user) || user < 0 || user >= users) throw new ModelError('MODEL_BATCH', `mf.recommend: user ${user} is outside [0, ${users})`);
    if (!Number.isSafeInteger(k) || k < 1) throw new ModelError('MODEL_SPEC', `mf.recommend: k must be a positive integer, got ${k}`);
    const all: Array<{ item: number; score: number }> = [];
    for (let i = 0; i < items; i++) if (!exclude.has(i)) all.push({ item: i, score: this.score(weights, user, i) });
    all.sort((a, b) => b.score - a.score || a.item - b.item);
    return all.slice(0, k);
  }
}

/**
 * The weight indices a ratings batch's gradient touches, increasing: the P rows of its users, the
 * Q rows of its items, their biases, and mu. `seenUsers`/`seenItems` are scratch marks (length
 * users / items) that the call leaves cleared.
 */
export function mfSupport(layout: MfLayout, batch: RatingsBatch, seenUsers: Uint8Array, seenItems: Uint8Array): Uint32Array {
  const us: number[] = [];
  const is: number[] = [];
  for (let r = 0; r < batch.rows; r++) {
    const u = batch.users[r]!, i = batch.items[r]!;
    if (!seenUsers[u]) {
      seenUsers[u] = 1;
      us.push(u);
    }
    if (!seenItems[i]) {
      seenItems[i] = 1;
      is.push(i);
    }
  }
  us.sort((a, b) => a - b);
  is.sort((a, b) => a - b);
  const R = layout.rank;
  const out = new Uint32Array((us.length + is.length) * (R + 1) + 1);
  let k = 0;
  for (const u of us) for (let t = 0; t < R; t++) out[k++] = u * R + t;
  for (const i of is) for (let t = 0; t < R; t++) out[k++] = layout.q + i * R + t;
  for (const u of us) out[k++] = layout.bu + u;
  for (const i of is) out[k++] = layout.bi + i;
  out[k++] = layout.mu;
  for (const u of us) seenUsers[u] = 0;
  for (const i of is) seenItems[i] = 0;
  return out;
}
