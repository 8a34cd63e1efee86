/**
 * Models: analytic gradients against central finite differences of an independent float64
 * implementation of each loss (so the forward pass is checked too), for every model, on dense and
 * sparse batches where supported, bias included; plus the contract details (gradient adds, loss
 * sums agree, predict normalises, init is deterministic) and the spec/batch errors.
 *
 * Tolerance: relative error |analytic - numeric| / max(|numeric|, 1e-3) < 1e-3 on every coordinate
 * for the linear models (smooth, or the hinge checked away from its kink), and on at least 99% of
 * the coordinates for the MLP (a ReLU kink inside the difference step may spoil a few), with h = 1e-5.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ModelError,
  createModel,
  disableTfjsKernels,
  enableTfjsKernels,
  gemmNT,
  gemmTN,
  tfjsKernelsFailure,
  transpose,
  type Batch,
  type DenseBatch,
  type Model,
  type ModelSpec,
  type SparseBatch,
} from '../algorithms/index.js';
import { lcg } from './support/data.js';
import { skipOrFail } from './support/skip-or-fail.js';

function denseBatch(rows: number, cols: number, classes: number, seed: number): DenseBatch {
  const rnd = lcg(seed);
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < x.length; i++) x[i] = rnd() < 0.2 ? 0 : 2 * rnd() - 1;
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) labels[r] = Math.floor(rnd() * classes);
  return { kind: 'dense', rows, cols, labels, x };
}

/**
 * A sparse batch that is a view into larger arrays: indptr holds absolute offsets and starts at
 * `skip` (> 0), as a slice of a shard does.
 */
function sparseBatch(rows: number, cols: number, classes: number, seed: number, skip = 7): SparseBatch {
  const rnd = lcg(seed);
  const indptr = new Uint32Array(rows + 1);
  const idx: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < skip; i++) {
    idx.push(0);
    val.push(99); // garbage before the view: must never be read
  }
  indptr[0] = skip;
  for (let r = 0; r < rows; r++) {
    const used = new Set<number>();
    const nnz = 1 + Math.floor(rnd() * Math.min(5, cols));
    while (used.size < nnz) used.add(Math.floor(rnd() * cols));
    for (const j of [...used].sort((a, b) => a - b)) {
      idx.push(j);
      val.push(2 * rnd() - 1);
    }
    indptr[r + 1] = idx.length;
  }
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) labels[r] = Math.floor(rnd() * classes);
  return { kind: 'sparse', rows, cols, labels, indptr, indices: Uint32Array.from(idx), values: Float32Array.from(val) };
}

/** Row r as a dense float64 vector of `features` entries. */
function rowOf(batch: Batch, r: number, features: number): Float64Array {
  const out = new Float64Array(features);
  if (batch.kind === 'dense') for (let j = 0; j < batch.cols; j++) out[j] = batch.x[r * batch.cols + j];
  else for (let p = batch.indptr[r]; p < batch.indptr[r + 1]; p++) out[batch.indices[p]] += batch.values[p];
  return out;
}

// Independent float64 losses, written straight from the definitions and the documented layouts.

function binaryLoss64(kind: 'logistic' | 'hinge', batch: Batch, w: Float64Array, F: number): number {
  let sum = 0;
  for (let r = 0; r < batch.rows; r++) {
    const x = rowOf(batch, r, F);
    let z = w[F];
    for (let j = 0; j < F; j++) z += w[j] * x[j];
    const y = batch.labels[r] > 0 ? 1 : -1;
    sum += kind === 'hinge' ? Math.max(0, 1 - y * z) : Math.log1p(Math.exp(-y * z));
  }
  return sum;
}

function crossEntropy(z: Float64Array, label: number): number {
  const max = Math.max(...z);
  let s = 0;
  for (const v of z) s += Math.exp(v - max);
  return max + Math.log(s) - z[label];
}

function softmaxLoss64(batch: Batch, w: Float64Array, F: number, C: number): number {
  let sum = 0;
  for (let r = 0; r < batch.rows; r++) {
    const x = rowOf(batch, r, F);
    const z = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      z[c] = w[c * (F + 1) + F];
      for (let j = 0; j < F; j++) z[c] += w[c * (F + 1) + j] * x[j];
    }
    sum += crossEntropy(z, batch.labels[r]);
  }
  return sum;
}

function mlpLoss64(batch: Batch, w: Float64Array, dims: number[]): number {
  let sum = 0;
  for (let r = 0; r < batch.rows; r++) {
    let h = rowOf(batch, r, dims[0]);
    let off = 0;
    for (let l = 0; l + 1 < dims.length; l++) {
      const inDim = dims[l], outDim = dims[l + 1];
      const z = new Float64Array(outDim);
      for (let o = 0; o < outDim; o++) {
        let s = w[off + outDim * inDim + o];
        for (let k = 0; k < inDim; k++) s += w[off + o * inDim + k] * h[k];
        z[o] = l + 2 < dims.length ? Math.max(0, s) : s;
      }
      off += outDim * inDim + outDim;
      h = z;
    }
    sum += crossEntropy(h, batch.labels[r]);
  }
  return sum;
}

function randomWeights(size: number, seed: number, scale: number): Float32Array {
  const rnd = lcg(seed);
  const w = new Float32Array(size);
  for (let i = 0; i < size; i++) w[i] = scale * (2 * rnd() - 1);
  return w;
}

/** Compares model.gradient with central differences of loss64; returns the share of coordinates within tolerance. */
function gradCheck(model: Model, batch: Batch, w: Float32Array, loss64: (w: Float64Array) => number, h = 1e-5): { ok: number; worst: number } {
  const grad = new Float32Array(model.size);
  const lossSum = model.gradient(batch, w, grad);
  const w64 = Float64Array.from(w);
  const base = loss64(w64);
  assert.ok(Math.abs(lossSum - base) <= 1e-5 * Math.max(1, Math.abs(base)), `loss sum ${lossSum} vs float64 ${base}`);
  let ok = 0;
  let worst = 0;
  for (let i = 0; i < model.size; i++) {
    const keep = w64[i];
    w64[i] = keep + h;
    const up = loss64(w64);
    w64[i] = keep - h;
    const down = loss64(w64);
    w64[i] = keep;
    const numeric = (up - down) / (2 * h);
    const rel = Math.abs(grad[i] - numeric) / Math.max(Math.abs(numeric), 1e-3);
    if (rel < 1e-3) ok++;
    worst = Math.max(worst, rel);
  }
  return { ok: ok / model.size, worst };
}

test('sparse-lr: gradient matches finite differences (absolute-offset indptr, bias included)', () => {
  const F = 12;
  const model = createModel({ type: 'sparse-lr', features: F, classes: 2 });
  assert.equal(model.size, F + 1);
  const batch = sparseBatch(25, F, 2, 1);
  const w = randomWeights(model.size, 2, 1);
  const { ok, worst } = gradCheck(model, batch, w, (v) => binaryLoss64('logistic', batch, v, F));
  assert.equal(ok, 1, `worst relative error ${worst}`);
});

test('sparse gradients: rows of 0..11 nonzeros (duplicates included) equal a one-nonzero-at-a-time loop exactly', () => {
  // The sparse hot path is unrolled by four; this pins its remainders and repeated indices.
  const F = 16;
  const rnd = lcg(40);
  const indptr = new Uint32Array(13);
  const idx: number[] = [];
  for (let r = 0; r < 12; r++) {
    for (let k = 0; k < r; k++) idx.push(k === 2 ? idx[idx.length - 1]! : Math.floor(rnd() * F));
    indptr[r + 1] = idx.length;
  }
  const indices = Uint32Array.from(idx);
  const values = Float32Array.from(idx, () => 2 * rnd() - 1);
  const labels = Float32Array.from({ length: 12 }, (_, r) => r % 2);
  const batch: SparseBatch = { kind: 'sparse', rows: 12, cols: F, labels, indptr, indices, values };
  for (const type of ['sparse-lr', 'svm'] as const) {
    const model = createModel({ type, features: F, classes: 2 });
    const w = randomWeights(model.size, 41, 1);
    const grad = new Float32Array(model.size);
    const loss = model.gradient(batch, w, grad);
    const want = new Float32Array(model.size);
    let wantLoss = 0;
    let bias = 0;
    for (let r = 0; r < 12; r++) {
      let z = w[F];
      for (let p = indptr[r]; p < indptr[r + 1]; p++) z += w[indices[p]] * values[p];
      const pos = labels[r] > 0;
      let d = 0;
      if (type === 'svm') {
        const m = pos ? z : -z;
        if (m < 1) {
          wantLoss += 1 - m;
          d = pos ? -1 : 1;
        }
      } else {
        const e = Math.exp(-Math.abs(z));
        const t = pos ? -z : z;
        wantLoss += (t > 0 ? t : 0) + Math.log1p(e);
        d = (z >= 0 ? 1 / (1 + e) : e / (1 + e)) - (pos ? 1 : 0);
      }
      if (d === 0) continue;
      bias += d;
      for (let p = indptr[r]; p < indptr[r + 1]; p++) want[indices[p]] += d * values[p];
    }
    want[F] += bias;
    assert.equal(loss, wantLoss, type);
    assert.deepEqual(grad, want, type);
    assert.equal(model.evaluate(batch, w).lossSum, loss, `${type}: evaluate and gradient agree`);
  }
});

test('dense-lr: gradient matches finite differences', () => {
  const F = 9; // not a multiple of 4: exercises the dot product's tail
  const model = createModel({ type: 'dense-lr', features: F, classes: 2 });
  const batch = denseBatch(23, F, 2, 3);
  const w = randomWeights(model.size, 4, 1);
  const { ok, worst } = gradCheck(model, batch, w, (v) => binaryLoss64('logistic', batch, v, F));
  assert.equal(ok, 1, `worst relative error ${worst}`);
});

test('svm: hinge subgradient matches finite differences away from the kink, dense and sparse', () => {
  const F = 10;
  const model = createModel({ type: 'svm', features: F, classes: 2 });
  for (const batch of [denseBatch(30, F, 2, 5), sparseBatch(30, F, 2, 6)]) {
    const w = randomWeights(model.size, 7, 1);
    // Precondition: no row within 1e-3 of the kink y z = 1, so the difference step never crosses it.
    const w64 = Float64Array.from(w);
    let active = 0;
    for (let r = 0; r < batch.rows; r++) {
      const x = rowOf(batch, r, F);
      let z = w64[F];
      for (let j = 0; j < F; j++) z += w64[j] * x[j];
      const m = (batch.labels[r] > 0 ? 1 : -1) * z;
      assert.ok(Math.abs(1 - m) > 1e-3, `row ${r} margin ${m} too close to the kink`);
      if (m < 1) active++;
    }
    assert.ok(active > 0 && active < batch.rows, 'the problem has rows on both sides of the kink');
    const { ok, worst } = gradCheck(model, batch, w, (v) => binaryLoss64('hinge', batch, v, F), 1e-6);
    assert.equal(ok, 1, `${batch.kind}: worst relative error ${worst}`);
  }
});

test('svm: at and past the kink the loss and subgradient are 0; predict is sigmoid(margin)', () => {
  const model = createModel({ type: 'svm', features: 2, classes: 2 });
  const w = new Float32Array([0, 0, 1]); // z = 1 for every row
  const batch: DenseBatch = { kind: 'dense', rows: 2, cols: 2, labels: new Float32Array([1, 0]), x: new Float32Array(4) };
  const grad = new Float32Array(3);
  // Row 0: y z = 1 exactly (kink): loss 0, subgradient 0. Row 1: y = -1, z = 1: loss 2, dL/dz = +1.
  assert.equal(model.gradient(batch, w, grad), 2);
  assert.deepEqual([...grad], [0, 0, 1]);
  const p = model.predict(batch, w);
  assert.equal(p[0], Math.fround(1 / (1 + Math.exp(-1))));
  const ev = model.evaluate(batch, w);
  assert.equal(ev.correct, 1);
  assert.deepEqual(ev.scores, p);
});

test('softmax: gradient matches finite differences on a 3-class problem, dense and sparse', () => {
  const F = 7, C = 3;
  const model = createModel({ type: 'softmax', features: F, classes: C });
  assert.equal(model.size, C * (F + 1));
  for (const batch of [denseBatch(22, F, C, 8), sparseBatch(22, F, C, 9)]) {
    const w = randomWeights(model.size, 10, 1);
    const { ok, worst } = gradCheck(model, batch, w, (v) => softmaxLoss64(batch, v, F, C));
    assert.equal(ok, 1, `${batch.kind}: worst relative error ${worst}`);
  }
});

test('mlp: gradient matches finite differences on a 3-class problem with two hidden layers, dense and sparse', () => {
  const F = 6, C = 3, hidden = [5, 4];
  const spec: ModelSpec = { type: 'mlp', features: F, classes: C, hidden };
  const model = createModel(spec, { kernels: 'js' });
  const dims = [F, ...hidden, C];
  assert.equal(model.size, 5 * 6 + 5 + 4 * 5 + 4 + 3 * 4 + 3);
  for (const batch of [denseBatch(13, F, C, 11), sparseBatch(13, F, C, 12)]) {
    const w = model.init(3);
    // Non-zero biases: with a zero bias, a row whose previous layer is all dead sits exactly on a
    // ReLU kink, where the difference quotient is meaningless.
    for (let i = 0; i < w.length; i++) if (w[i] === 0) w[i] = 0.05 * ((i % 3) + 1);
    const { ok, worst } = gradCheck(model, batch, w, (v) => mlpLoss64(batch, v, dims));
    assert.ok(ok >= 0.99, `${batch.kind}: only ${(ok * 100).toFixed(1)}% of coordinates within 1e-3 (worst ${worst})`);
  }
});

test('gradient adds into grad; evaluate() loss equals the gradient loss sum; correct counts agree with predict()', () => {
  const F = 8;
  const cases: Array<[ModelSpec, Batch]> = [
    [{ type: 'sparse-lr', features: F, classes: 2 }, sparseBatch(17, F, 2, 20)],
    [{ type: 'dense-lr', features: F, classes: 2 }, denseBatch(17, F, 2, 21)],
    [{ type: 'svm', features: F, classes: 2 }, sparseBatch(17, F, 2, 22)],
    [{ type: 'softmax', features: F, classes: 4 }, denseBatch(17, F, 4, 23)],
    [{ type: 'mlp', features: F, classes: 4, hidden: [6] }, denseBatch(17, F, 4, 24)],
  ];
  for (const [spec, batch] of cases) {
    const model = createModel(spec, { kernels: 'js' });
    const w = randomWeights(model.size, 25, 0.5);
    const once = new Float32Array(model.size);
    const loss = model.gradient(batch, w, once);
    const twice = new Float32Array(model.size);
    model.gradient(batch, w, twice);
    model.gradient(batch, w, twice);
    // Adding into a non-zero buffer rounds differently from starting at zero, hence the tolerance.
    for (let i = 0; i < model.size; i++) assert.ok(Math.abs(twice[i] - 2 * once[i]) <= 1e-6 * Math.max(1, Math.abs(once[i])), `${spec.type}: grad[${i}] not accumulated`);
    const ev = model.evaluate(batch, w);
    assert.equal(ev.rows, batch.rows);
    assert.equal(ev.lossSum, loss, spec.type);
    const p = model.predict(batch, w);
    let correct = 0;
    if (spec.classes === 2) {
      assert.equal(p.length, batch.rows);
      for (let r = 0; r < batch.rows; r++) {
        assert.ok(p[r] >= 0 && p[r] <= 1);
        if ((p[r] > 0.5) === (batch.labels[r] > 0)) correct++;
      }
      assert.deepEqual(ev.scores, p);
    } else {
      const C = spec.classes;
      assert.equal(p.length, batch.rows * C);
      for (let r = 0; r < batch.rows; r++) {
        let s = 0;
        let arg = 0;
        for (let c = 0; c < C; c++) {
          s += p[r * C + c];
          if (p[r * C + c] > p[r * C + arg]) arg = c;
        }
        assert.ok(Math.abs(s - 1) < 1e-6, `${spec.type}: row ${r} probabilities sum to ${s}`);
        if (arg === batch.labels[r]) correct++;
      }
      assert.equal(ev.scores, undefined);
    }
    assert.equal(ev.correct, correct, spec.type);
  }
});

test('losses stay finite at huge margins (stable log(1+exp) and log-sum-exp)', () => {
  const lr = createModel({ type: 'dense-lr', features: 1, classes: 2 });
  const batch: DenseBatch = { kind: 'dense', rows: 2, cols: 1, labels: new Float32Array([1, 0]), x: new Float32Array([1, 1]) };
  const grad = new Float32Array(2);
  const loss = lr.gradient(batch, new Float32Array([1000, 0]), grad);
  assert.equal(loss, 1000); // row 0: log(1 + e^-1000) = 0; row 1: log(1 + e^1000) = 1000
  assert.deepEqual([...grad], [1, 1]);
  const sm = createModel({ type: 'softmax', features: 1, classes: 3 });
  const w = new Float32Array([1e4, 0, 0, 0, -1e4, 0]); // logits 1e4, 0, -1e4
  const ev = sm.evaluate({ kind: 'dense', rows: 1, cols: 1, labels: new Float32Array([1]), x: new Float32Array([1]) }, w);
  assert.equal(ev.lossSum, 1e4);
});

test('an empty batch gives loss 0 and leaves grad untouched', () => {
  const empty: DenseBatch = { kind: 'dense', rows: 0, cols: 3, labels: new Float32Array(0), x: new Float32Array(0) };
  for (const spec of [
    { type: 'dense-lr', features: 3, classes: 2 },
    { type: 'softmax', features: 3, classes: 3 },
    { type: 'mlp', features: 3, classes: 3, hidden: [4] },
  ] as ModelSpec[]) {
    const model = createModel(spec);
    const grad = new Float32Array(model.size);
    assert.equal(model.gradient(empty, model.init(1), grad), 0);
    assert.ok(grad.every((g) => g === 0));
    assert.equal(model.predict(empty, model.init(1)).length, 0);
    assert.deepEqual({ ...model.evaluate(empty, model.init(1)), scores: undefined }, { rows: 0, lossSum: 0, correct: 0, scores: undefined });
  }
});

test('init is deterministic: same seed, same bytes; linear models start at zero', () => {
  const mlp = createModel({ type: 'mlp', features: 20, classes: 3, hidden: [8, 4] });
  const a = mlp.init(42);
  assert.deepEqual(mlp.init(42), a);
  assert.notDeepEqual(mlp.init(43), a);
  assert.equal(a.length, mlp.size);
  // He init: the first layer's spread follows sqrt(2 / 20); biases are zero.
  let sq = 0;
  for (let i = 0; i < 8 * 20; i++) sq += a[i] * a[i];
  const std = Math.sqrt(sq / 160);
  assert.ok(std > 0.2 && std < 0.45, `first-layer std ${std}`);
  for (let i = 160; i < 168; i++) assert.equal(a[i], 0);
  for (const type of ['sparse-lr', 'dense-lr', 'svm', 'softmax'] as const) {
    const m = createModel({ type, features: 5, classes: type === 'softmax' ? 3 : 2 });
    assert.ok(m.init(7).every((v) => v === 0), type);
  }
  assert.throws(() => mlp.init(1.5), (e: unknown) => e instanceof ModelError && e.code === 'MODEL_SEED');
});

test('createModel rejects specs that do not fit, naming the problem', () => {
  const cases: Array<[unknown, string, RegExp]> = [
    [{ type: 'cnn', features: 4, classes: 2 }, 'MODEL_UNKNOWN_TYPE', /unknown model type "cnn": expected one of sparse-lr, dense-lr, svm, softmax, mlp/],
    [{ type: 'softmax', features: 4, classes: 1 }, 'MODEL_SPEC', /softmax: spec.classes must be >= 2, got 1/],
    [{ type: 'sparse-lr', features: 4, classes: 3 }, 'MODEL_SPEC', /sparse-lr is a binary model: spec.classes must be 2, got 3/],
    [{ type: 'svm', features: 4, classes: 2, hidden: [8] }, 'MODEL_SPEC', /svm: spec.hidden \(\[8\]\) is only for mlp models/],
    [{ type: 'dense-lr', features: 0, classes: 2 }, 'MODEL_SPEC', /dense-lr: spec.features must be a positive integer, got 0/],
    [{ type: 'dense-lr', features: 2.5, classes: 2 }, 'MODEL_SPEC', /spec.features must be a positive integer, got 2.5/],
    [{ type: 'mlp', features: 4, classes: 3 }, 'MODEL_SPEC', /mlp: spec.hidden must list at least one hidden layer width/],
    [{ type: 'mlp', features: 4, classes: 3, hidden: [8, 0] }, 'MODEL_SPEC', /mlp: spec.hidden\[1\] must be a positive integer, got 0/],
    [{ type: 'softmax', features: 2 ** 30, classes: 10 }, 'MODEL_SPEC', /exceed the limit/],
  ];
  for (const [spec, code, message] of cases) {
    assert.throws(() => createModel(spec as ModelSpec), (e: unknown) => e instanceof ModelError && e.code === code && message.test(e.message), JSON.stringify(spec));
  }
});

test('models reject batches and weights that do not fit', () => {
  const dense = createModel({ type: 'dense-lr', features: 4, classes: 2 });
  const sparseLr = createModel({ type: 'sparse-lr', features: 4, classes: 2 });
  const sm = createModel({ type: 'softmax', features: 4, classes: 3 });
  const w = new Float32Array(5);
  const is = (code: string, message: RegExp) => (e: unknown) => e instanceof ModelError && e.code === code && message.test(e.message);
  assert.throws(() => dense.gradient(sparseBatch(3, 4, 2, 1), w, new Float32Array(5)), is('MODEL_BATCH', /dense-lr expects dense batches, got a sparse batch/));
  assert.throws(() => sparseLr.evaluate(denseBatch(3, 4, 2, 1), w), is('MODEL_BATCH', /sparse-lr expects sparse batches, got a dense batch/));
  assert.throws(() => dense.evaluate(denseBatch(3, 5, 2, 1), w), is('MODEL_BATCH', /dense batch has 5 columns, the model has 4 features/));
  assert.throws(() => sparseLr.evaluate(sparseBatch(3, 9, 2, 1), w), is('MODEL_BATCH', /sparse batch has 9 feature columns, the model only 4/));
  assert.throws(() => dense.evaluate(denseBatch(3, 4, 2, 1), new Float32Array(4)), is('MODEL_WEIGHTS', /weights must be a Float32Array of 5 entries, got 4 entries/));
  assert.throws(() => dense.gradient(denseBatch(3, 4, 2, 1), w, new Float32Array(6)), is('MODEL_WEIGHTS', /grad must be a Float32Array of 5 entries/));
  const bad = denseBatch(3, 4, 3, 1);
  bad.labels[2] = 3;
  assert.throws(() => sm.evaluate(bad, new Float32Array(sm.size)), is('MODEL_LABEL', /softmax: row 2 has label 3; expected an integer class in \[0, 3\)/));
  bad.labels[2] = 0.5;
  assert.throws(() => sm.evaluate(bad, new Float32Array(sm.size)), is('MODEL_LABEL', /row 2 has label 0.5/));
});

test('kernels: gemmNT, gemmTN and transpose equal naive products on odd shapes', () => {
  const rnd = lcg(77);
  const fill = (n: number) => Float32Array.from({ length: n }, () => 2 * rnd() - 1);
  for (const [m, n, k] of [[7, 5, 9], [4, 4, 4], [1, 3, 2], [9, 10, 13]] as const) {
    // C (m x n, ldc n + 1) = A (m x k, lda k + 2) B^T (B: n x k, ldb k + 1), with offsets.
    const A = fill(3 + m * (k + 2)), B = fill(1 + n * (k + 1));
    const C = new Float32Array(2 + m * (n + 1)).fill(0.5);
    gemmNT(m, n, k, A, 3, k + 2, B, 1, k + 1, C, 2, n + 1, true);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0.5;
        for (let t = 0; t < k; t++) s += A[3 + i * (k + 2) + t] * B[1 + j * (k + 1) + t];
        assert.ok(Math.abs(C[2 + i * (n + 1) + j] - s) < 1e-5, `gemmNT ${m}x${n}x${k} at ${i},${j}`);
      }
    }
    // D (n x k) += G^T X with G m x n, X m x k; and D' (m x k) += G X' with X' n x k via strides (1, n).
    const G = fill(m * n), X = fill(m * k), D = fill(n * k), D0 = D.slice();
    gemmTN(m, n, k, G, 0, n, 1, X, 0, k, D, 0, k);
    for (let c = 0; c < n; c++) {
      for (let j = 0; j < k; j++) {
        let s = D0[c * k + j];
        for (let r = 0; r < m; r++) s += G[r * n + c] * X[r * k + j];
        assert.ok(Math.abs(D[c * k + j] - s) < 1e-5, `gemmTN ${m}x${n}x${k} at ${c},${j}`);
      }
    }
    const X2 = fill(n * k), E = new Float32Array(m * k);
    gemmTN(n, m, k, G, 0, 1, n, X2, 0, k, E, 0, k);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < k; j++) {
        let s = 0;
        for (let o = 0; o < n; o++) s += G[i * n + o] * X2[o * k + j];
        assert.ok(Math.abs(E[i * k + j] - s) < 1e-5, `gemmTN (G X) ${m}x${n}x${k} at ${i},${j}`);
      }
    }
    const T = transpose(A, 3, m, k, new Float32Array(m * k));
    for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) assert.equal(T[t * m + i], A[3 + i * k + t]);
  }
});

test('mlp on tfjs kernels (the WASM backend, a dependency) agrees with the JS kernels', async (t) => {
  const backend = await enableTfjsKernels();
  try {
    if (skipOrFail(t, backend === null ? `no tfjs backend could be started: ${tfjsKernelsFailure()}` : undefined)) return;
    assert.ok(backend === 'wasm' || backend === 'tensorflow', `backend ${backend}`);
    const spec: ModelSpec = { type: 'mlp', features: 30, classes: 4, hidden: [9, 6] };
    const fast = createModel(spec);
    const plain = createModel(spec, { kernels: 'js' });
    assert.equal((fast as { kernels?: string }).kernels, 'tfjs');
    assert.equal((plain as { kernels?: string }).kernels, 'js');
    const batch = denseBatch(19, 30, 4, 31);
    const w = fast.init(5);
    const g1 = new Float32Array(fast.size), g2 = new Float32Array(fast.size);
    const l1 = fast.gradient(batch, w, g1);
    const l2 = plain.gradient(batch, w, g2);
    assert.ok(Math.abs(l1 - l2) < 1e-5 * Math.abs(l2), `loss ${l1} vs ${l2}`);
    let scale = 0;
    for (const v of g2) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < g1.length; i++) assert.ok(Math.abs(g1[i] - g2[i]) <= 1e-5 * scale, `grad[${i}] ${g1[i]} vs ${g2[i]}`);
    assert.equal(fast.evaluate(batch, w).correct, plain.evaluate(batch, w).correct);
  } finally {
    disableTfjsKernels();
  }
});
