/**
 * Optimizers: three steps of each against hand-computed values. SGD and momentum use dyadic
 * numbers, so every intermediate is exact in float32 and the check is exact equality. Adagrad and
 * Adam involve square roots and divisions: their expected values are the same hand formulas in
 * float64, rounded to float32 after each step (as the weights are stored), and must agree to one
 * float32 ulp (2^-23 relative).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OptimizerError, createOptimizer, type OptimizerSpec } from '../algorithms/index.js';

const f = Math.fround;

function run(spec: OptimizerSpec, w0: number[], grads: number[][]): number[][] {
  const opt = createOptimizer(spec, w0.length);
  const w = Float32Array.from(w0);
  const out: number[][] = [];
  for (const g of grads) {
    opt.step(w, Float32Array.from(g));
    out.push([...w]);
  }
  assert.equal(opt.steps, grads.length);
  return out;
}

function close(actual: number[][], expected: number[][]): void {
  actual.forEach((row, s) =>
    row.forEach((v, i) => {
      const e = expected[s][i];
      assert.ok(Math.abs(v - e) <= 2 ** -23 * Math.max(1, Math.abs(e)), `step ${s + 1}, weight ${i}: ${v} vs ${e}`);
    }),
  );
}

const grads = [
  [1, 2],
  [0.5, -1],
  [-2, 4],
];

test('sgd: w -= lr g, exact', () => {
  // w0 = [1, -2], lr 0.5: [1 - 0.5, -2 - 1] = [0.5, -3]; [0.25, -2.5]; [1.25, -4.5].
  assert.deepEqual(run({ type: 'sgd', lr: 0.5 }, [1, -2], grads), [
    [0.5, -3],
    [0.25, -2.5],
    [1.25, -4.5],
  ]);
});

test('momentum (heavy ball): v = m v + g; w -= lr v, exact', () => {
  // m 0.5, lr 0.5. v1 = [1, 2] -> w1 = [0.5, -3]; v2 = [0.5, 1] + [0.5, -1] = [1, 0] -> w2 = [0, -3];
  // v3 = [0.5, 0] + [-2, 4] = [-1.5, 4] -> w3 = [0.75, -5].
  assert.deepEqual(run({ type: 'momentum', lr: 0.5, momentum: 0.5 }, [1, -2], grads), [
    [0.5, -3],
    [0, -3],
    [0.75, -5],
  ]);
  // The default coefficient is 0.9: v2 = 0.9 * 1 + 0.5 = 1.4 -> w2 = 1 - 0.5 - 0.7.
  const w = run({ type: 'momentum', lr: 0.5 }, [1], [[1], [0.5]]);
  assert.equal(w[1][0], f(f(1 - 0.5) - 0.5 * f(0.9 * 1 + 0.5)));
});

test('adagrad: acc += g^2; w -= lr g / (sqrt(acc) + eps)', () => {
  // g = [3, 4], [4, 3], [12, 0]: acc = [9, 16], [25, 25], [169, 25]; sqrt = [3, 4], [5, 5], [13, 5].
  const eps = 1e-8;
  const w1 = [f(0 - 3 / (3 + eps)), f(0 - 4 / (4 + eps))]; // ~[-1, -1]
  const w2 = [f(w1[0] - 4 / (5 + eps)), f(w1[1] - 3 / (5 + eps))]; // ~[-1.8, -1.6]
  const w3 = [f(w2[0] - 12 / (13 + eps)), f(w2[1] - 0)]; // ~[-2.7231, -1.6]
  const got = run({ type: 'adagrad', lr: 1 }, [0, 0], [
    [3, 4],
    [4, 3],
    [12, 0],
  ]);
  close(got, [w1, w2, w3]);
  assert.equal(got[0][0], -1);
});

test('adam: bias-corrected moments', () => {
  // beta1 0.5, beta2 0.75 keep the moments dyadic. g = 1, 2, -1; lr 0.25.
  // t1: m = 0.5, v = 0.25; mhat = 0.5 / 0.5 = 1, vhat = 0.25 / 0.25 = 1: step 0.25 / (1 + eps).
  // t2: m = 0.25 + 1 = 1.25, v = 0.1875 + 1 = 1.1875; mhat = 1.25 / 0.75 = 5/3, vhat = 1.1875 / 0.4375 = 19/7.
  // t3: m = 0.625 - 0.5 = 0.125, v = 0.890625 + 0.25 = 1.140625; mhat = 0.125 / 0.875 = 1/7,
  //     vhat = 1.140625 / 0.578125 = 73/37.
  const eps = 1e-8;
  const w1 = f(1 - 0.25 / (1 + eps));
  const w2 = f(w1 - (0.25 * (5 / 3)) / (Math.sqrt(19 / 7) + eps));
  const w3 = f(w2 - (0.25 * (1 / 7)) / (Math.sqrt(73 / 37) + eps));
  close(run({ type: 'adam', lr: 0.25, beta1: 0.5, beta2: 0.75 }, [1], [[1], [2], [-1]]), [[w1], [w2], [w3]]);
  // With a constant gradient the corrected moments are g and g^2 at every step: each step moves
  // every weight by lr * sign(g) (to eps), whatever the decay rates (defaults 0.9 / 0.999 here).
  const got = run({ type: 'adam', lr: 0.1 }, [0, 0], [
    [2, -3],
    [2, -3],
    [2, -3],
  ]);
  got.forEach((w, s) => {
    assert.ok(Math.abs(w[0] + 0.1 * (s + 1)) < 1e-6, `step ${s + 1}: ${w[0]}`);
    assert.ok(Math.abs(w[1] - 0.1 * (s + 1)) < 1e-6, `step ${s + 1}: ${w[1]}`);
  });
});

test('state()/load() round-trip exactly and state() is a snapshot', () => {
  const specs: OptimizerSpec[] = [
    { type: 'sgd', lr: 0.1 },
    { type: 'momentum', lr: 0.1, momentum: 0.7 },
    { type: 'adagrad', lr: 0.1 },
    { type: 'adam', lr: 0.01 },
  ];
  const g = (k: number) => Float32Array.from({ length: 5 }, (_, i) => Math.sin(k * 7 + i));
  for (const spec of specs) {
    const a = createOptimizer(spec, 5);
    const wa = Float32Array.from([1, 2, 3, 4, 5]);
    a.step(wa, g(1));
    a.step(wa, g(2));
    const snap = a.state();
    const copy = { steps: snap.steps, buffers: snap.buffers.map((b) => b.slice()) };
    const b = createOptimizer(spec, 5);
    b.load(snap);
    const wb = wa.slice();
    a.step(wa, g(3));
    b.step(wb, g(3));
    assert.deepEqual(wb, wa, spec.type);
    assert.deepEqual(b.state(), a.state(), spec.type);
    assert.equal(b.steps, 3);
    assert.deepEqual(snap, copy, `${spec.type}: a later step changed an earlier state()`);
    assert.equal(snap.buffers.length, { sgd: 0, momentum: 1, adagrad: 1, adam: 2 }[spec.type]);
  }
});

test('bad specs, sizes and states throw OptimizerError naming the field', () => {
  const is = (code: string, message: RegExp) => (e: unknown) => e instanceof OptimizerError && e.code === code && message.test(e.message);
  const cases: Array<[unknown, string, RegExp]> = [
    [{ type: 'sgd', lr: 0 }, 'OPTIMIZER_SPEC', /sgd: optimizer.lr must be a finite number > 0, got 0/],
    [{ type: 'adam', lr: -1 }, 'OPTIMIZER_SPEC', /optimizer.lr must be a finite number > 0, got -1/],
    [{ type: 'sgd', lr: Number.NaN }, 'OPTIMIZER_SPEC', /optimizer.lr must be/],
    [{ type: 'sgd' }, 'OPTIMIZER_SPEC', /sgd: optimizer.lr is required/],
    [{ type: 'momentum', lr: 0.1, momentum: 1 }, 'OPTIMIZER_SPEC', /momentum: optimizer.momentum must be in \[0, 1\), got 1/],
    [{ type: 'adam', lr: 0.1, beta1: -0.1 }, 'OPTIMIZER_SPEC', /optimizer.beta1 must be in \[0, 1\)/],
    [{ type: 'adam', lr: 0.1, beta2: 1.5 }, 'OPTIMIZER_SPEC', /optimizer.beta2 must be in \[0, 1\), got 1.5/],
    [{ type: 'adagrad', lr: 0.1, eps: 0 }, 'OPTIMIZER_SPEC', /adagrad: optimizer.eps must be a finite number > 0, got 0/],
    [{ type: 'rmsprop', lr: 0.1 }, 'OPTIMIZER_UNKNOWN_TYPE', /unknown optimizer.type "rmsprop": expected one of sgd, momentum, adagrad, adam/],
  ];
  for (const [spec, code, message] of cases) assert.throws(() => createOptimizer(spec as OptimizerSpec, 3), is(code, message), JSON.stringify(spec));
  assert.throws(() => createOptimizer({ type: 'sgd', lr: 1 }, -1), is('OPTIMIZER_SIZE', /size must be a non-negative integer/));
  const opt = createOptimizer({ type: 'adam', lr: 0.1 }, 3);
  assert.throws(() => opt.step(new Float32Array(3), new Float32Array(4)), is('OPTIMIZER_SIZE', /built for 3 weights got weights of 3 and a gradient of 4/));
  assert.throws(() => opt.load({ steps: 1, buffers: [new Float32Array(3)] }), is('OPTIMIZER_STATE', /state.buffers must hold 2 buffers, got 1/));
  assert.throws(() => opt.load({ steps: 1, buffers: [new Float32Array(3), new Float32Array(2)] }), is('OPTIMIZER_STATE', /state.buffers\[1\] must be a Float32Array of 3 entries/));
  assert.throws(() => opt.load({ steps: -1, buffers: [] }), is('OPTIMIZER_STATE', /state.steps must be a non-negative integer/));
  assert.equal(opt.steps, 0, 'a failed load changes nothing');
});
