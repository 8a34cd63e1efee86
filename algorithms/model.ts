/**
 * The model contract. Weights are one flat Float32Array, so collectives, checkpoints and the
 * parameter server move a single vector. Classical models use hand-written Float32Array kernels.
 */
import type { DenseShard, SparseShard } from '../channels/index.js';

/**
 * A minibatch of sparse (CSR) rows: the very struct a sparse dataset shard is, so a shard is a
 * batch as it is. Row r's nonzeros are indices/values[indptr[r] .. indptr[r+1]); in a batch,
 * indptr may hold absolute offsets into indices/values (indptr[0] need not be 0).
 */
export type SparseBatch = SparseShard;

/** A minibatch of dense rows, row-major: the same struct as a dense dataset shard. */
export type DenseBatch = DenseShard;

/** A minibatch of (user, item, rating) triples (matrix factorization). */
export interface RatingsBatch {
  kind: 'ratings';
  rows: number;
  users: Uint32Array;
  items: Uint32Array;
  ratings: Float32Array;
}

export type Batch = SparseBatch | DenseBatch;

/**
 * What a model's methods take: rows, or ratings for matrix factorization. (Row models declare the
 * narrower Batch and reject ratings at run time with MODEL_BATCH.)
 */
export type ModelBatch = Batch | RatingsBatch;

export type ModelType = 'sparse-lr' | 'dense-lr' | 'svm' | 'softmax' | 'mlp' | 'kmeans' | 'mf';

export interface ModelSpec {
  type: ModelType;
  /** Input features (the dataset's feature count). */
  features: number;
  /** Output classes: 2 for binary models, k for softmax / MLP. */
  classes: number;
  /** MLP hidden layer widths. */
  hidden?: number[];
  /** k-means: the number of clusters k (classes is then unused and set to 2). */
  clusters?: number;
  /** k-means: how the first centroids are chosen from the data (default 'kmeans++'). */
  init?: 'kmeans++' | 'random';
  /** mf: users, items and the factor rank (features is then users + items, for the dataset check). */
  users?: number;
  items?: number;
  rank?: number;
  /**
   * mf: regularization per rating, on the factors and biases that rating touches (the loss of a
   * rating is e^2 + reg (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)), so frequent users and items are not
   * shrunk more than rare ones, on the parameter server and over a collective alike. Default 0.
   */
  reg?: number;
}

export interface EvalResult {
  rows: number;
  /** Sum over rows of the loss (log-loss, hinge, cross-entropy): divide by rows for the mean. */
  lossSum: number;
  /** Rows whose predicted class equals the label (top-1). */
  correct: number;
  /** Binary models: the positive-class score of each row (for AUC). */
  scores?: Float32Array;
}

export interface Model {
  readonly spec: ModelSpec;
  /** Number of parameters (length of the weight vector). */
  readonly size: number;
  /** Initial weights, deterministic for a seed. */
  init(seed: number): Float32Array;
  /**
   * Adds the gradient of the SUM of the per-row losses over the batch into `grad` (which the caller
   * zeroes) and returns that loss sum. No L2 and no division by the row count: distributed workers
   * add their sums and row counts, divide once, and add the L2 term (l2 * w) once.
   */
  gradient(batch: ModelBatch, weights: Float32Array, grad: Float32Array): number;
  /** Loss sum and correct count over a batch, without L2. */
  evaluate(batch: ModelBatch, weights: Float32Array): EvalResult;
  /** Class probabilities (binary: P(y=1) per row; multiclass: rows x classes, row-major). */
  predict(batch: ModelBatch, weights: Float32Array): Float32Array;
}

export interface OptimizerSpec {
  type: 'sgd' | 'momentum' | 'adagrad' | 'adam';
  lr: number;
  /** momentum: coefficient (default 0.9). */
  momentum?: number;
  /** adam: decay rates (default 0.9, 0.999). */
  beta1?: number;
  beta2?: number;
  /** adagrad / adam: denominator epsilon (default 1e-8). */
  eps?: number;
}

export interface Optimizer {
  readonly spec: OptimizerSpec;
  /** Updates `weights` in place from the (already averaged, L2-included) gradient. */
  step(weights: Float32Array, grad: Float32Array): void;
  /** Steps taken so far (Adam's bias correction depends on it). */
  readonly steps: number;
  /** State to checkpoint (momentum / accumulators), and its restore. */
  state(): { steps: number; buffers: Float32Array[] };
  load(state: { steps: number; buffers: Float32Array[] }): void;
}
