/**
 * Test-only binary logistic regression and SGD / momentum optimizer implementing the algorithms
 * room's Model and Optimizer contracts, so the training loop can be tested on its own. Weights:
 * features, then the bias.
 */
import type { Batch, EvalResult, Model, ModelSpec, Optimizer, OptimizerSpec } from '../../algorithms/model.js';
import { SplitMix32 } from '../../worker/shard-iterator.js';

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** Calls f(row, z, label) with z = w . x + b for every row of the batch. */
function forEachRow(batch: Batch, w: Float32Array, f: (row: number, z: number, label: number) => void): void {
  const bias = w[batch.cols]!;
  if (batch.kind === 'dense') {
    const { x, cols } = batch;
    for (let r = 0; r < batch.rows; r++) {
      let z = bias;
      for (let j = 0; j < cols; j++) z += w[j]! * x[r * cols + j]!;
      f(r, z, batch.labels[r]! > 0 ? 1 : 0);
    }
  } else {
    const { indptr, indices, values } = batch;
    for (let r = 0; r < batch.rows; r++) {
      let z = bias;
      for (let k = indptr[r]!; k < indptr[r + 1]!; k++) z += w[indices[k]!]! * values[k]!;
      f(r, z, batch.labels[r]! > 0 ? 1 : 0);
    }
  }
}

export class TestLogisticModel implements Model {
  readonly size: number;
  constructor(readonly spec: ModelSpec) {
    this.size = spec.features + 1;
  }

  init(seed: number): Float32Array {
    const rng = new SplitMix32(seed);
    return Float32Array.from({ length: this.size }, () => (rng.next() / 0x100000000 - 0.5) * 0.02);
  }

  gradient(batch: Batch, w: Float32Array, grad: Float32Array): number {
    let loss = 0;
    const cols = batch.cols;
    forEachRow(batch, w, (r, z, y) => {
      loss += softplus(z) - y * z;
      const d = 1 / (1 + Math.exp(-z)) - y;
      if (batch.kind === 'dense') {
        for (let j = 0; j < cols; j++) grad[j]! += d * batch.x[r * cols + j]!;
      } else {
        for (let k = batch.indptr[r]!; k < batch.indptr[r + 1]!; k++) grad[batch.indices[k]!]! += d * batch.values[k]!;
      }
      grad[cols]! += d;
    });
    return loss;
  }

  evaluate(batch: Batch, w: Float32Array): EvalResult {
    let lossSum = 0;
    let correct = 0;
    const scores = new Float32Array(batch.rows);
    forEachRow(batch, w, (r, z, y) => {
      lossSum += softplus(z) - y * z;
      if ((z >= 0 ? 1 : 0) === y) correct++;
      scores[r] = 1 / (1 + Math.exp(-z));
    });
    return { rows: batch.rows, lossSum, correct, scores };
  }

  predict(batch: Batch, w: Float32Array): Float32Array {
    return this.evaluate(batch, w).scores!;
  }
}

export class TestOptimizer implements Optimizer {
  private velocity: Float32Array | undefined;
  private count = 0;
  constructor(readonly spec: OptimizerSpec) {
    if (spec.type !== 'sgd' && spec.type !== 'momentum') throw new Error(`test optimizer: ${spec.type} is not implemented`);
  }

  get steps(): number {
    return this.count;
  }

  step(w: Float32Array, g: Float32Array): void {
    const lr = this.spec.lr;
    if (this.spec.type === 'sgd') {
      for (let i = 0; i < w.length; i++) w[i]! -= lr * g[i]!;
    } else {
      const m = this.spec.momentum ?? 0.9;
      const v = (this.velocity ??= new Float32Array(w.length));
      for (let i = 0; i < w.length; i++) {
        v[i] = m * v[i]! + g[i]!;
        w[i]! -= lr * v[i]!;
      }
    }
    this.count++;
  }

  state(): { steps: number; buffers: Float32Array[] } {
    return { steps: this.count, buffers: this.velocity ? [this.velocity.slice()] : [] };
  }

  load(state: { steps: number; buffers: Float32Array[] }): void {
    this.count = state.steps;
    this.velocity = state.buffers[0]?.slice();
  }
}

export function createTestModel(spec: ModelSpec): Model {
  if (spec.type !== 'sparse-lr' && spec.type !== 'dense-lr') throw new Error(`test model: ${spec.type} is not implemented`);
  return new TestLogisticModel(spec);
}

export function createTestOptimizer(spec: OptimizerSpec, _size?: number): Optimizer {
  return new TestOptimizer(spec);
}
