import type { ModelSpec } from '../model.js';
import { LinearBinaryModel } from './linear-binary.js';

/** Logistic regression on sparse (CSR) batches; log-loss. */
export class SparseLogisticRegression extends LinearBinaryModel {
  constructor(spec: ModelSpec) {
    super(spec, 'logistic', { dense: false, sparse: true });
  }
}
