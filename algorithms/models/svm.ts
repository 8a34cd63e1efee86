import type { ModelSpec } from '../model.js';
import { LinearBinaryModel } from './linear-binary.js';

/**
 * Linear SVM: hinge loss max(0, 1 - y z) with y = +1 for labels > 0 and -1 otherwise; the gradient
 * is the subgradient -y x where y z < 1 and 0 elsewhere (including the kink y z = 1).
 * predict() and evaluate().scores return sigmoid(z), a pseudo-probability only: it is monotone in
 * the margin (so AUC and the z > 0 decision are right) but not calibrated.
 */
export class LinearSVM extends LinearBinaryModel {
  constructor(spec: ModelSpec) {
    super(spec, 'hinge', { dense: true, sparse: true });
  }
}
