/** The algorithms room: column statistics and feature transforms (models and optimisers follow). */
export {
  StatsError,
  emptyStats,
  finalizeStats,
  mergeAll,
  mergeStats,
  shardStats,
  statsFromJSON,
  statsToJSON,
  type FinalStats,
  type PartialStats,
  type PartialStatsJSON,
  type StatsErrorCode,
} from './stats.js';
export { TransformError, minMaxScale, zScore, type TransformErrorCode } from './transforms.js';
export {
  DenseLogisticRegression,
  LinearSVM,
  MLP,
  MODEL_TYPES,
  ModelError,
  SoftmaxRegression,
  SparseLogisticRegression,
  createModel,
  createRng,
  disableTfjsKernels,
  enableTfjsKernels,
  gemmNT,
  gemmTN,
  tfjsKernelBackend,
  transpose,
  type CreateModelOptions,
  type ModelErrorCode,
  type Rng,
} from './models.js';
export { KMeans, LloydAccumulator, MAX_CLUSTERS, centroidNorms, initialCentroids, lloydReference, moveCentroids, nearestCentroids, type KMeansInit, type LloydReference } from './models/kmeans.js';
export { MatrixFactorization, mfLayout, mfSupport, type MfLayout } from './models/mf.js';
export { admmConsensus, admmDualUpdate, admmLocalGradient, admmPenalty } from './admm.js';
export { OPTIMIZER_TYPES, OptimizerError, createOptimizer, type OptimizerErrorCode, type OptimizerState } from './optimizers.js';
export { Evaluator, LOG_EPS, MetricsError, accuracy, auc, logLoss, top1Accuracy, type EvalReport, type MetricsErrorCode } from './metrics.js';
export { TrainingError, trainReference, type ReferenceOptions, type ReferenceResult, type TrainingErrorCode } from './reference.js';
export type { Batch, DenseBatch, EvalResult, Model, ModelBatch, ModelSpec, RatingsBatch, ModelType, Optimizer, OptimizerSpec, SparseBatch } from './model.js';
export { SPARSE_GRADIENT_MODELS, SupportError, SupportFinder } from './support.js';

// The room's error classes not exported above, so other rooms can catch them through this door.
export { InputError, PreprocessOptionsError, type InputErrorCode } from './preprocess/errors.js';
