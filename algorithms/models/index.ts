/**
 * The models behind the Model contract (../model.ts), one file each, on hand-written Float32Array
 * kernels (../kernels/): JS numbers are float64, so every dot product accumulates in float64 and
 * only stored values (activations, gradients) round to float32.
 *
 * Labels: binary models (sparse-lr, dense-lr, svm) read a row as positive when its label is > 0,
 * so both {0,1} and {-1,+1} label sets work. Multiclass models (softmax, mlp) need integer labels
 * in [0, classes) and throw otherwise.
 *
 * Batches: dense batches must have exactly `features` columns; sparse batches may declare fewer
 * (never more).
 *
 * Weight layouts (one flat Float32Array each) are described at the top of each model's file.
 * To add a model: a file here implementing Model, its type in ../model.ts `ModelType` and in
 * MODEL_TYPES (./checks.ts), and a case in createModel (./factory.ts).
 */
export { ModelError, type ModelErrorCode } from './base.js';
export { MODEL_TYPES } from './checks.js';
export { createModel, type CreateModelOptions } from './factory.js';
export { SparseLogisticRegression } from './sparse-lr.js';
export { DenseLogisticRegression } from './dense-lr.js';
export { LinearSVM } from './svm.js';
export { SoftmaxRegression } from './softmax.js';
export { MLP } from './mlp.js';
export { KMeans, LloydAccumulator, MAX_CLUSTERS, centroidNorms, initialCentroids, lloydReference, moveCentroids, nearestCentroids, type KMeansInit, type LloydReference } from './kmeans.js';
export { MatrixFactorization, mfLayout, mfSupport, type MfLayout } from './mf.js';
