import type { ModelSpec } from '../model.js';
import { LinearBinaryModel } from './linear-binary.js';

/** Logistic regression on dense batches; log-loss. */
export class DenseLogisticRegression extends LinearBinaryModel {
  constructor(spec: ModelSpec) {
    super(spec, 'logistic', { dense: true, sparse: false });
  }
}
