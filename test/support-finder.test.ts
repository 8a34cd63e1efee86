/** SupportFinder: the weights a batch's gradient can touch, for async-sgd's sparse pulls and pushes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SupportFinder, createModel, type SparseBatch } from '../algorithms/index.js';
import { lcg } from './support/data.js';

function sparseBatch(rows: number, cols: number, nnz: number, seed: number): SparseBatch {
  const rnd = lcg(seed);
  const indptr = new Uint32Array(rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < nnz; j++) {
      indices.push(Math.floor(rnd() * rnd() * cols)); // skewed, so rows share features
      values.push(rnd() - 0.5);
    }
    indptr[r + 1] = indices.length;
  }
  const labels = Float32Array.from({ length: rows }, (_, r) => r % 3);
  return { kind: 'sparse', rows, cols, labels, indptr, indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}

/** Indices where the full gradient is nonzero. */
function gradientNonzeros(type: 'sparse-lr' | 'svm' | 'softmax', batch: SparseBatch, features: number, classes: number): Set<number> {
  const model = createModel({ type, features, classes });
  const w = new Float32Array(model.size);
  for (let i = 0; i < w.length; i++) w[i] = ((i * 7919) % 13) / 50 - 0.1;
  const g = new Float32Array(model.size);
  const b = type === 'softmax' ? batch : { ...batch, labels: batch.labels.map((l) => (l > 0 ? 1 : 0)) };
  model.gradient(b, w, g);
  const out = new Set<number>();
  g.forEach((v, i) => v !== 0 && out.add(i));
  return out;
}

for (const [type, classes] of [['sparse-lr', 2], ['svm', 2], ['softmax', 3]] as const) {
  test(`${type}: the support holds every nonzero of the gradient, each index once, and nothing else`, () => {
    const F = 500;
    const finder = new SupportFinder({ type, features: F, classes });
    const batch = sparseBatch(40, F, 6, 11);
    const support = finder.find(batch).slice();
    const unique = new Set(support);
    assert.equal(unique.size, support.length, 'no duplicates');
    for (let k = 1; k < support.length; k++) assert.ok(support[k - 1]! < support[k]!, `increasing at position ${k}`);
    const features = new Set(batch.indices);
    const C = type === 'softmax' ? classes : 1;
    assert.equal(support.length, C * (features.size + 1));
    for (const i of gradientNonzeros(type, batch, F, classes)) assert.ok(unique.has(i), `gradient index ${i} is in the support`);
    for (const i of support) {
      const f = i % (F + 1);
      assert.ok(f === F || features.has(f), `support index ${i} is a feature of the batch or a bias`);
    }
  });
}

test('consecutive calls do not leak features of the previous batch', () => {
  const finder = new SupportFinder({ type: 'sparse-lr', features: 100, classes: 2 });
  const a: SparseBatch = { kind: 'sparse', rows: 1, cols: 100, labels: new Float32Array([1]), indptr: new Uint32Array([0, 3]), indices: new Uint32Array([5, 9, 5]), values: new Float32Array([1, 1, 1]) };
  assert.deepEqual([...finder.find(a)], [5, 9, 100]);
  const b: SparseBatch = { ...a, indptr: new Uint32Array([0, 2]), indices: new Uint32Array([9, 42]) };
  assert.deepEqual([...finder.find(b)], [9, 42, 100]);
  // absolute offsets: indptr need not start at 0
  const c: SparseBatch = { ...a, indptr: new Uint32Array([1, 3]), indices: new Uint32Array([77, 3, 3]) };
  assert.deepEqual([...finder.find(c)], [3, 100]);
  // features met in decreasing order still come out increasing (what the parameter server's fast path wants)
  const d: SparseBatch = { ...a, rows: 2, labels: new Float32Array([1, 0]), indptr: new Uint32Array([0, 2, 4]), indices: new Uint32Array([60, 31, 7, 60]) };
  assert.deepEqual([...finder.find(d)], [7, 31, 60, 100]);
});

test('a dense batch touches every weight; models without a sparse gradient are refused by name', () => {
  const finder = new SupportFinder({ type: 'svm', features: 3, classes: 2 });
  assert.deepEqual([...finder.find({ kind: 'dense', rows: 1, cols: 3, labels: new Float32Array([1]), x: new Float32Array(3) })], [0, 1, 2, 3]);
  assert.throws(() => new SupportFinder({ type: 'mlp', features: 3, classes: 2, hidden: [4] }), { name: 'SupportError', message: 'model mlp has no sparse gradient; sparse updates work for sparse-lr, svm, softmax, mf' });
});
