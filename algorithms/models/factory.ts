/** Builds the model a spec describes. */
import type { Model, ModelSpec } from '../model.js';
import { ModelError } from './base.js';
import { checkSpecBasics } from './checks.js';
import { DenseLogisticRegression } from './dense-lr.js';
import { KMeans } from './kmeans.js';
import { MatrixFactorization } from './mf.js';
import { MLP } from './mlp.js';
import { SoftmaxRegression } from './softmax.js';
import { SparseLogisticRegression } from './sparse-lr.js';
import { LinearSVM } from './svm.js';

export interface CreateModelOptions {
  /** MLP matmul kernels: 'auto' (tfjs when enableTfjsKernels() succeeded, default) or 'js'. */
  kernels?: 'auto' | 'js';
}

/** Builds the model a spec describes; throws ModelError naming what does not fit. */
export function createModel(spec: ModelSpec, options: CreateModelOptions = {}): Model {
  checkSpecBasics(spec);
  const binary = (): void => {
    if (spec.classes !== 2) throw new ModelError('MODEL_SPEC', `${spec.type} is a binary model: spec.classes must be 2, got ${spec.classes}`);
  };
  switch (spec.type) {
    case 'sparse-lr':
      binary();
      return new SparseLogisticRegression(spec);
    case 'dense-lr':
      binary();
      return new DenseLogisticRegression(spec);
    case 'svm':
      binary();
      return new LinearSVM(spec);
    case 'softmax':
      return new SoftmaxRegression(spec);
    case 'mlp':
      return new MLP(spec, options.kernels ?? 'auto');
    case 'kmeans':
      return new KMeans(spec);
    case 'mf':
      return new MatrixFactorization(spec);
  }
}
