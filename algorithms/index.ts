/** The algorithms room: models and their kernels, optimisers, metrics, column statistics and transforms, preprocessing. */
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
  KMeans,
  LinearSVM,
  LloydAccumulator,
  MAX_CLUSTERS,
  MLP,
  MODEL_TYPES,
  MatrixFactorization,
  ModelError,
  SoftmaxRegression,
  SparseLogisticRegression,
  centroidNorms,
  createModel,
  initialCentroids,
  lloydReference,
  mfLayout,
  mfSupport,
  moveCentroids,
  nearestCentroids,
  type CreateModelOptions,
  type KMeansInit,
  type LloydReference,
  type MfLayout,
  type ModelErrorCode,
} from './models/index.js';
export { gemmNT, gemmTN, transpose } from './kernels/gemm.js';
export { disableTfjsKernels, enableTfjsKernels, tfjsKernelBackend } from './kernels/tfjs-backend.js';
export { createRng, seededRandom, type Rng } from './rng.js';
export { admmConsensus, admmDualUpdate, admmLocalGradient, admmPenalty } from './admm.js';
export { OPTIMIZER_TYPES, OptimizerError, createOptimizer, type OptimizerErrorCode, type OptimizerState } from './optimizers.js';
export { Evaluator, LOG_EPS, MetricsError, accuracy, auc, logLoss, top1Accuracy, type EvalReport, type MetricsErrorCode } from './metrics.js';
export { TrainingError, trainReference, type ReferenceOptions, type ReferenceResult, type TrainingErrorCode } from './reference.js';
export type { Batch, DenseBatch, EvalResult, Model, ModelBatch, ModelSpec, RatingsBatch, ModelType, Optimizer, OptimizerSpec, SparseBatch } from './model.js';
export { SPARSE_GRADIENT_MODELS, SupportError, SupportFinder } from './support.js';
export * from './preprocess/index.js';
export { evaluateShards } from './shard-evaluation.js';
