/**
 * The in-process reference loop: it learns (sparse-lr on a separable problem, softmax on three
 * blobs), one step is exactly "grad / rows + l2 * w, then the optimizer", and runs are deterministic.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Evaluator, TrainingError, createModel, createOptimizer, trainReference, type Batch, type DenseBatch, type SparseBatch } from '../algorithms/index.js';

function rng(seed: number): { u: () => number; n: () => number } {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const n = () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return { u, n };
}

/** A linearly separable sparse problem (margin >= 0.1), as one CSR array set. */
function separableSparse(rows: number, F: number, seed: number): SparseBatch {
  const { u, n } = rng(seed);
  const truth = Array.from({ length: F }, () => n());
  const indptr = [0];
  const indices: number[] = [];
  const values: number[] = [];
  const labels: number[] = [];
  while (labels.length < rows) {
    const feats = new Set<number>();
    while (feats.size < 6) feats.add(Math.floor(u() * F));
    const row = [...feats].sort((a, b) => a - b).map((j) => [j, u()] as const);
    const z = row.reduce((s, [j, v]) => s + truth[j] * v, 0) + 0.2;
    if (Math.abs(z) < 0.1) continue;
    for (const [j, v] of row) {
      indices.push(j);
      values.push(v);
    }
    indptr.push(indices.length);
    labels.push(z > 0 ? 1 : 0);
  }
  return { kind: 'sparse', rows, cols: F, labels: Float32Array.from(labels), indptr: Uint32Array.from(indptr), indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}

/** Consecutive row slices as views: indptr keeps absolute offsets, as batches cut from a shard do. */
function sparseSlices(all: SparseBatch, size: number): SparseBatch[] {
  const out: SparseBatch[] = [];
  for (let s = 0; s < all.rows; s += size) {
    const e = Math.min(all.rows, s + size);
    out.push({ ...all, rows: e - s, labels: all.labels.subarray(s, e), indptr: all.indptr.subarray(s, e + 1) });
  }
  return out;
}

function blobs(perClass: number, seed: number): DenseBatch {
  const { n } = rng(seed);
  const centers = [
    [0, 3],
    [3, -2],
    [-3, -2],
  ];
  const rows = 3 * perClass;
  const x = new Float32Array(rows * 2);
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const c = r % 3; // interleaved, so every batch holds all classes
    labels[r] = c;
    x[2 * r] = centers[c][0] + n();
    x[2 * r + 1] = centers[c][1] + n();
  }
  return { kind: 'dense', rows, cols: 2, labels, x };
}

function denseSlices(all: DenseBatch, size: number): DenseBatch[] {
  const out: DenseBatch[] = [];
  for (let s = 0; s < all.rows; s += size) {
    const e = Math.min(all.rows, s + size);
    out.push({ kind: 'dense', rows: e - s, cols: all.cols, labels: all.labels.subarray(s, e), x: all.x.subarray(s * all.cols, e * all.cols) });
  }
  return out;
}

test('sparse-lr on a separable problem: the loss falls and training accuracy exceeds 95%', () => {
  const data = separableSparse(1000, 50, 1);
  const batches = sparseSlices(data, 50);
  const model = createModel({ type: 'sparse-lr', features: 50, classes: 2 });
  const res = trainReference({ model, optimizer: { type: 'sgd', lr: 1 }, batches: () => batches, epochs: 30, l2: 0, seed: 1 });
  assert.equal(res.epochLoss.length, 30);
  assert.equal(res.steps, 30 * 20);
  assert.ok(res.epochLoss[0] < Math.LN2, 'the first epoch already improves on w = 0');
  assert.ok(res.epochLoss[29] < 0.3 * res.epochLoss[0], `loss ${res.epochLoss[0]} -> ${res.epochLoss[29]}`);
  for (let e = 1; e < 30; e++) assert.ok(res.epochLoss[e] < res.epochLoss[e - 1], `epoch ${e} did not improve`);
  const ev = new Evaluator().addBatch(model, data, res.weights).report();
  assert.ok(ev.accuracy > 0.95, `accuracy ${ev.accuracy}`);
  assert.ok(ev.auc! > 0.99, `auc ${ev.auc}`);
});

test('softmax on three Gaussian blobs exceeds 90% accuracy', () => {
  const train = blobs(200, 2);
  const test3 = blobs(100, 3);
  const model = createModel({ type: 'softmax', features: 2, classes: 3 });
  const res = trainReference({ model, optimizer: { type: 'momentum', lr: 0.05 }, batches: () => denseSlices(train, 30), epochs: 15, l2: 1e-4, seed: 1 });
  assert.ok(res.epochLoss[14] < 0.5 * res.epochLoss[0], `loss ${res.epochLoss[0]} -> ${res.epochLoss[14]}`);
  const ev = new Evaluator(false).addBatch(model, test3, res.weights).report();
  assert.ok(ev.accuracy > 0.9, `test accuracy ${ev.accuracy}`);
});

test('one step is w -= lr (grad / rows + l2 w); runs are deterministic; empty batches are skipped', () => {
  const model = createModel({ type: 'dense-lr', features: 3, classes: 2 });
  const batch: DenseBatch = { kind: 'dense', rows: 3, cols: 3, labels: new Float32Array([1, 0, 1]), x: new Float32Array([1, 2, 0, -1, 0.5, 1, 0, 0, 3]) };
  const empty: DenseBatch = { kind: 'dense', rows: 0, cols: 3, labels: new Float32Array(0), x: new Float32Array(0) };
  const w0 = new Float32Array([0.5, -0.25, 0.125, 1]);
  const grad = new Float32Array(4);
  const loss = model.gradient(batch, w0, grad);
  const expected = new Float32Array(4);
  for (let i = 0; i < 4; i++) {
    const g = Math.fround(grad[i] / 3 + 0.1 * w0[i]);
    expected[i] = w0[i] - 0.5 * g;
  }
  const batches: Batch[] = [empty, batch];
  const res = trainReference({ model, optimizer: { type: 'sgd', lr: 0.5 }, batches: () => batches, epochs: 1, l2: 0.1, seed: 9, weights: w0 });
  assert.deepEqual(res.weights, expected);
  assert.deepEqual(res.epochLoss, [loss / 3]);
  assert.equal(res.steps, 1);
  assert.deepEqual(w0, new Float32Array([0.5, -0.25, 0.125, 1]), 'the starting weights are copied, not trained in place');

  // A given optimizer continues from its state; the same inputs give the same bytes.
  const mlp = createModel({ type: 'mlp', features: 2, classes: 3, hidden: [4] }, { kernels: 'js' });
  const data = denseSlices(blobs(20, 4), 10);
  const go = () => trainReference({ model: mlp, optimizer: createOptimizer({ type: 'adam', lr: 0.01 }, mlp.size), batches: () => data, epochs: 3, l2: 0, seed: 5 });
  assert.deepEqual(go(), go());
});

test('bad arguments throw TrainingError', () => {
  const model = createModel({ type: 'dense-lr', features: 3, classes: 2 });
  const base = { model, optimizer: { type: 'sgd' as const, lr: 0.1 }, batches: () => [], epochs: 1, l2: 0, seed: 1 };
  const is = (message: RegExp) => (e: unknown) => e instanceof TrainingError && e.code === 'TRAIN_ARGUMENT' && message.test(e.message);
  assert.throws(() => trainReference({ ...base, epochs: -1 }), is(/epochs must be a non-negative integer, got -1/));
  assert.throws(() => trainReference({ ...base, l2: Number.NaN }), is(/l2 must be a finite number >= 0, got NaN/));
  assert.throws(() => trainReference({ ...base, weights: new Float32Array(3) }), is(/weights has 3 entries, the model needs 4/));
  assert.deepEqual(trainReference(base).epochLoss, [Number.NaN]);
});
