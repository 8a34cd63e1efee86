/**
 * ParamModel and its per-coordinate optimizers against float64 reference implementations written
 * here from the textbook formulas. Tolerance: |got - want| <= 1e-5 * |want| + 1e-7 (the model keeps
 * float32 weights and state, the reference float64; the gap is float32 rounding accumulated over
 * the steps, well under 1e-5 relative for these magnitudes).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ModelConfig, type OptimizerConfig, ParamModel, PsModelError, thresholdGradient, validateModelConfig } from '../paramserver/model.js';
import { createCoordinateOptimizer } from '../paramserver/optimizers.js';

const REL = 1e-5;
const ABS = 1e-7;

/** Deterministic pseudo-random numbers in [-1, 1) (xorshift32). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 31 - 1;
  };
}

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * scale);
}

/** Float64 reference: one optimizer, stepping a set of coordinates with given gradients. */
class Reference {
  readonly w: Float64Array;
  readonly a: Float64Array;
  readonly b: Float64Array;
  readonly t: Float64Array;
  constructor(private readonly o: OptimizerConfig, init: Float32Array) {
    this.w = Float64Array.from(init);
    this.a = new Float64Array(init.length);
    this.b = new Float64Array(init.length);
    this.t = new Float64Array(init.length);
  }
  step(i: number, grad: number): void {
    const o = this.o;
    const lr = o.learningRate;
    const g = grad + (o.l2 ?? 0) * this.w[i]!;
    const mu = o.momentum ?? 0.9;
    const eps = o.epsilon ?? 1e-8;
    switch (o.type) {
      case 'sgd':
        this.w[i] = this.w[i]! - lr * g;
        break;
      case 'momentum':
        this.a[i] = mu * this.a[i]! + g;
        this.w[i] = this.w[i]! - lr * this.a[i]!;
        break;
      case 'nesterov':
        this.a[i] = mu * this.a[i]! + g;
        this.w[i] = this.w[i]! - lr * (g + mu * this.a[i]!);
        break;
      case 'adagrad':
        this.a[i] = this.a[i]! + g * g;
        this.w[i] = this.w[i]! - (lr * g) / (Math.sqrt(this.a[i]!) + eps);
        break;
      case 'adam': {
        const b1 = o.beta1 ?? 0.9;
        const b2 = o.beta2 ?? 0.999;
        this.t[i] = this.t[i]! + 1;
        this.a[i] = b1 * this.a[i]! + (1 - b1) * g;
        this.b[i] = b2 * this.b[i]! + (1 - b2) * g * g;
        const mHat = this.a[i]! / (1 - b1 ** this.t[i]!);
        const vHat = this.b[i]! / (1 - b2 ** this.t[i]!);
        this.w[i] = this.w[i]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
        break;
      }
    }
  }
}

function assertClose(got: Float32Array, want: Float64Array, what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    assert.ok(err <= REL * Math.abs(want[i]!) + ABS, `${what}: weight ${i} is ${got[i]}, reference ${want[i]} (error ${err})`);
  }
}

function config(optimizer: OptimizerConfig, size: number): ModelConfig {
  return { size, optimizer, sync: { mode: 'async' } };
}

const OPTIMIZERS: OptimizerConfig[] = [
  { type: 'sgd', learningRate: 0.1 },
  { type: 'momentum', learningRate: 0.05, momentum: 0.8 },
  { type: 'nesterov', learningRate: 0.05, momentum: 0.9 },
  { type: 'adagrad', learningRate: 0.5, epsilon: 1e-6 },
  { type: 'adam', learningRate: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 1e-8 },
  { type: 'adam', learningRate: 0.01, l2: 0.1 },
  { type: 'momentum', learningRate: 0.05, l2: 0.01 },
];

const SIZE = 16;
const STEPS = 8;

describe('ParamModel optimizers against a float64 reference', () => {
  for (const opt of OPTIMIZERS) {
    const label = `${opt.type}${opt.l2 ? ` with l2=${opt.l2}` : ''}`;

    it(`${label}: ${STEPS} dense steps`, () => {
      const init = randomArray(SIZE, 7);
      const model = new ParamModel(config(opt, SIZE), init);
      const ref = new Reference(opt, init);
      for (let s = 0; s < STEPS; s++) {
        const g = randomArray(SIZE, 100 + s);
        model.applyDense(g);
        for (let i = 0; i < SIZE; i++) ref.step(i, g[i]!);
      }
      assertClose(model.weights, ref.w, label);
      assert.equal(model.updates, STEPS);
    });

    it(`${label}: ${STEPS} sparse steps on changing subsets (per-coordinate state)`, () => {
      const init = randomArray(SIZE, 8);
      const model = new ParamModel(config(opt, SIZE), init);
      const ref = new Reference(opt, init);
      const r = rng(99);
      for (let s = 0; s < STEPS; s++) {
        // Every (s+1)-th coordinate from a moving start: coordinates see different step counts.
        const idx: number[] = [];
        for (let i = s % 3; i < SIZE; i += 1 + (s % 4)) idx.push(i);
        const indices = Uint32Array.from(idx);
        const g = Float32Array.from(idx, () => r());
        model.applySparse(indices, g);
        for (let k = 0; k < idx.length; k++) ref.step(idx[k]!, g[k]!);
      }
      assertClose(model.weights, ref.w, label);
    });

    it(`${label}: a sparse push of every index equals a dense push bit for bit`, () => {
      const init = randomArray(SIZE, 9);
      const dense = new ParamModel(config(opt, SIZE), init);
      const sparse = new ParamModel(config(opt, SIZE), init);
      // Shuffled order: the order of distinct coordinates must not matter.
      const order = Uint32Array.from({ length: SIZE }, (_, i) => (i * 5 + 3) % SIZE);
      for (let s = 0; s < STEPS; s++) {
        const g = randomArray(SIZE, 200 + s);
        dense.applyDense(g);
        sparse.applySparse(order, Float32Array.from(order, (i) => g[i]!));
      }
      assert.deepEqual(sparse.serialize(), dense.serialize());
    });
  }
});

describe('sparse steps', () => {
  it('every optimizer: stepSparse equals step() coordinate by coordinate, for 0..9 indices, with and without L2', () => {
    for (const type of ['sgd', 'momentum', 'nesterov', 'adagrad', 'adam'] as const) {
      for (const l2 of [0, 0.3]) {
        for (let n = 0; n <= 9; n++) {
          const spec: OptimizerConfig = { type, learningRate: 0.05 };
          const fast = createCoordinateOptimizer(spec, 32);
          const slow = createCoordinateOptimizer(spec, 32);
          const w1 = randomArray(32, 11);
          const w2 = w1.slice();
          const indices = Uint32Array.from({ length: n }, (_, k) => 3 * k + 1);
          const grad = randomArray(n, 12 + n);
          for (let rep = 0; rep < 2; rep++) {
            fast.stepSparse(w1, indices, grad, l2);
            for (let k = 0; k < n; k++) slow.step(w2, indices[k]!, l2 === 0 ? grad[k]! : grad[k]! + l2 * w2[indices[k]!]!);
          }
          assert.deepEqual(w1, w2, `${type} l2=${l2} n=${n}`);
        }
      }
    }
  });
});

describe('ParamModel semantics', () => {
  it('L2 pulls weights toward zero: with a zero gradient, sgd gives w * (1 - lr * l2)', () => {
    const init = Float32Array.of(2, -4, 0.5, 0);
    const model = new ParamModel(config({ type: 'sgd', learningRate: 0.1, l2: 0.5 }, 4), init);
    model.applyDense(new Float32Array(4));
    assert.deepEqual(Array.from(model.weights), Array.from(init, (w) => Math.fround(w * (1 - 0.1 * 0.5))));
    assert.deepEqual(Array.from(model.weights), [1.899999976158142, -3.799999952316284, 0.4749999940395355, 0]);
  });

  it('L2 on a sparse push touches only the pushed coordinates', () => {
    const model = new ParamModel(config({ type: 'sgd', learningRate: 0.1, l2: 0.5 }, 4), Float32Array.of(2, 2, 2, 2));
    model.applySparse(Uint32Array.of(1), Float32Array.of(0));
    assert.deepEqual(Array.from(model.weights), [2, Math.fround(1.9), 2, 2]);
  });

  it('duplicate indices in one push are summed and stepped once', () => {
    const opt: OptimizerConfig = { type: 'adam', learningRate: 0.01 };
    const dup = new ParamModel(config(opt, 4));
    const once = new ParamModel(config(opt, 4));
    dup.applySparse(Uint32Array.of(2, 0, 2, 2), Float32Array.of(0.25, 1, 0.5, -1.5));
    once.applySparse(Uint32Array.of(2, 0), Float32Array.of(-0.75, 1));
    assert.deepEqual(dup.serialize(), once.serialize());
    // One Adam step of any nonzero gradient moves a fresh coordinate by lr (up to eps): sign only.
    assert.ok(Math.abs(dup.weights[2]! - 0.01) < 1e-6, `weight 2 is ${dup.weights[2]}`);
    assert.ok(Math.abs(dup.weights[0]! + 0.01) < 1e-6, `weight 0 is ${dup.weights[0]}`);
    // The scratch buffers are clean afterwards: a second push behaves like on a fresh pair.
    dup.applySparse(Uint32Array.of(1, 1), Float32Array.of(1, 1));
    once.applySparse(Uint32Array.of(1), Float32Array.of(2));
    assert.deepEqual(dup.serialize(), once.serialize());
  });

  it('increasing indices (no duplicate check) give the same model as the same push shuffled', () => {
    const opt: OptimizerConfig = { type: 'adam', learningRate: 0.01, l2: 0.1 };
    const sorted = new ParamModel(config(opt, 16), randomArray(16, 8));
    const shuffled = new ParamModel(config(opt, 16), randomArray(16, 8));
    sorted.applySparse(Uint32Array.of(1, 4, 9, 15), Float32Array.of(0.5, -2, 0.25, 1));
    shuffled.applySparse(Uint32Array.of(9, 1, 15, 4), Float32Array.of(0.25, 0.5, 1, -2));
    assert.deepEqual(sorted.serialize(), shuffled.serialize());
    // Equal neighbours are not increasing: they take the summing path.
    sorted.applySparse(Uint32Array.of(2, 3, 3), Float32Array.of(1, 1, 1));
    shuffled.applySparse(Uint32Array.of(2, 3), Float32Array.of(1, 2));
    assert.deepEqual(sorted.serialize(), shuffled.serialize());
  });

  it('rejects an out-of-range index naming it and the size, with nothing changed', () => {
    const model = new ParamModel(config({ type: 'momentum', learningRate: 0.1 }, 8), randomArray(8, 3));
    model.applyDense(randomArray(8, 4));
    const before = model.serialize();
    assert.throws(
      () => model.applySparse(Uint32Array.of(0, 7, 8, 9), Float32Array.of(1, 1, 1, 1)),
      (err: unknown) => err instanceof PsModelError && err.code === 'PS_RANGE' && err.message === 'index 8 at position 2 is out of range for a model of size 8',
    );
    assert.deepEqual(model.serialize(), before);
    assert.throws(() => model.gather(Uint32Array.of(1, 4294967295)), { code: 'PS_RANGE', message: 'index 4294967295 at position 1 is out of range for a model of size 8' });
  });

  it('rejects mismatched lengths and non-finite gradients with nothing changed', () => {
    const model = new ParamModel(config({ type: 'adagrad', learningRate: 0.1 }, 4));
    const before = model.serialize();
    assert.throws(() => model.applySparse(Uint32Array.of(0, 1), Float32Array.of(1)), { code: 'PS_ARGUMENT', message: 'sparse gradient has 2 indices but 1 values' });
    assert.throws(() => model.applySparse(Uint32Array.of(0, 1), Float32Array.of(1, NaN)), { code: 'PS_ARGUMENT', message: 'gradient value at position 1 (index 1) is NaN' });
    assert.throws(() => model.applyDense(Float32Array.of(1, 2, 3)), { code: 'PS_ARGUMENT', message: 'dense gradient has 3 values, the model size is 4' });
    assert.throws(() => model.applyDense(Float32Array.of(1, 2, Infinity, 3)), { code: 'PS_ARGUMENT', message: 'gradient value at index 2 is Infinity' });
    assert.throws(() => new ParamModel(config({ type: 'sgd', learningRate: 1 }, 4), new Float32Array(3)), {
      code: 'PS_ARGUMENT',
      message: 'initial weights have 3 values, the model size is 4',
    });
    assert.deepEqual(model.serialize(), before);
    assert.equal(model.updates, 0);
  });

  it('gather returns weights in request order, into a given buffer', () => {
    const model = new ParamModel(config({ type: 'sgd', learningRate: 1 }, 5), Float32Array.of(10, 11, 12, 13, 14));
    assert.deepEqual(Array.from(model.gather(Uint32Array.of(4, 0, 4, 2))), [14, 10, 14, 12]);
    const out = new Float32Array(2);
    assert.equal(model.gather(Uint32Array.of(3, 1), out), out);
    assert.deepEqual(Array.from(out), [13, 11]);
    assert.throws(() => model.gather(Uint32Array.of(1), out), { code: 'PS_ARGUMENT', message: 'gather output has 2 slots for 1 indices' });
  });

  it('the initial weights are copied, not aliased', () => {
    const init = Float32Array.of(1, 2);
    const model = new ParamModel(config({ type: 'sgd', learningRate: 1 }, 2), init);
    model.applyDense(Float32Array.of(1, 1));
    assert.deepEqual(Array.from(init), [1, 2]);
    assert.deepEqual(Array.from(model.weights), [0, 1]);
  });
});

describe('ParamModel serialize / deserialize', () => {
  for (const opt of OPTIMIZERS) {
    it(`${opt.type}: mid-training round trip is bit-exact and continues identically`, () => {
      const cfg: ModelConfig = { size: 11, optimizer: opt, sync: { mode: 'ssp', workers: 3, staleness: 2 } };
      const model = new ParamModel(cfg, randomArray(11, 5));
      for (let s = 0; s < 5; s++) model.applySparse(Uint32Array.of(s, 10 - s, 3), randomArray(3, 50 + s));
      const bytes = model.serialize();
      const copy = ParamModel.deserialize(bytes);
      assert.deepEqual(copy.config, cfg);
      assert.equal(copy.updates, 5);
      assert.deepEqual(copy.weights, model.weights);
      assert.deepEqual(copy.serialize(), bytes);
      // Identical optimizer state shows in identical futures.
      for (const m of [model, copy]) m.applyDense(randomArray(11, 77));
      assert.deepEqual(copy.serialize(), model.serialize());
    });
  }

  it('adam bias correction is right on both sides of its lookup table (step 10 and step 70000)', () => {
    const opt: OptimizerConfig = { type: 'adam', learningRate: 0.01, beta1: 0.9, beta2: 0.999 };
    const bytes = new ParamModel(config(opt, 2), Float32Array.of(1, 1)).serialize();
    // State layout after the weights: m[2], v[2], t[2] (f32, f32, u32).
    const state = bytes.byteLength - 3 * 2 * 4;
    const view = new DataView(bytes.buffer);
    for (const k of [0, 1]) {
      view.setFloat32(state + 4 * k, 0.05, true);
      view.setFloat32(state + 8 + 4 * k, 0.002, true);
    }
    view.setUint32(state + 16, 9, true);
    view.setUint32(state + 20, 69_999, true);
    const model = ParamModel.deserialize(bytes);
    model.applyDense(Float32Array.of(0.3, 0.3));
    const m = 0.9 * Math.fround(0.05) + 0.1 * 0.3;
    const v = 0.999 * Math.fround(0.002) + 0.001 * 0.09;
    const want = (t: number) => 1 - (0.01 * (m / (1 - 0.9 ** t))) / (Math.sqrt(v / (1 - 0.999 ** t)) + 1e-8);
    assertClose(model.weights, Float64Array.of(want(10), want(70_000)), 'adam');
    assert.notEqual(model.weights[0], model.weights[1]);
  });

  it('round trips from an unaligned view', () => {
    const model = new ParamModel(config({ type: 'adam', learningRate: 0.1 }, 3), Float32Array.of(1, 2, 3));
    model.applyDense(Float32Array.of(1, -1, 0.5));
    const bytes = model.serialize();
    const padded = new Uint8Array(bytes.byteLength + 1);
    padded.set(bytes, 1);
    assert.deepEqual(ParamModel.deserialize(padded.subarray(1)).serialize(), bytes);
  });

  it('names what is wrong with bad bytes', () => {
    const bytes = new ParamModel(config({ type: 'momentum', learningRate: 0.1 }, 4)).serialize();
    const bad = (b: Uint8Array, message: string) =>
      assert.throws(() => ParamModel.deserialize(b), (err: unknown) => err instanceof PsModelError && err.code === 'PS_SNAPSHOT' && err.message === `serialized model is invalid: ${message}`);
    bad(bytes.subarray(0, 10), '10 bytes is shorter than the 24-byte header');
    const magic = bytes.slice();
    magic[0] = 0;
    bad(magic, 'bad magic (not a Cirrus parameter-server model)');
    const version = bytes.slice();
    version[4] = 9;
    bad(version, 'unsupported format version 9 (expected 1)');
    bad(bytes.subarray(0, bytes.byteLength - 4), `expected ${bytes.byteLength} bytes for a momentum model of size 4, got ${bytes.byteLength - 4}`);
    const json = bytes.slice();
    json[24] = 0x5b; // '[' instead of '{'
    assert.throws(() => ParamModel.deserialize(json), /serialized model is invalid: config is not valid JSON/);
    // A valid-JSON config with a bad field: the field is named.
    const m = new ParamModel({ size: 2, optimizer: { type: 'sgd', learningRate: 0.5 }, sync: { mode: 'async' } });
    const text = new TextDecoder().decode(m.serialize());
    const forged = new TextEncoder().encode(text.replace('"learningRate":0.5', '"learningRate":"x"'));
    bad(forged, 'config.optimizer.learningRate: expected a number > 0');
  });
});

describe('validateModelConfig', () => {
  const base = { size: 10, optimizer: { type: 'adam', learningRate: 0.1 }, sync: { mode: 'async' } };
  const cases: Array<[string, unknown, string]> = [
    ['learningRate zero', { ...base, optimizer: { type: 'sgd', learningRate: 0 } }, 'config.optimizer.learningRate: expected a number > 0'],
    ['learningRate missing', { ...base, optimizer: { type: 'sgd' } }, 'config.optimizer.learningRate: expected a number > 0'],
    ['unknown type', { ...base, optimizer: { type: 'rmsprop', learningRate: 1 } }, "config.optimizer.type: expected one of 'sgd', 'momentum', 'nesterov', 'adagrad', 'adam'"],
    ['misspelt field', { ...base, optimizer: { type: 'sgd', learningRate: 1, lr: 2 } }, "config.optimizer: unknown field 'lr'"],
    ['beta2 = 1', { ...base, optimizer: { type: 'adam', learningRate: 1, beta2: 1 } }, 'config.optimizer.beta2: expected a number in [0, 1)'],
    ['negative l2', { ...base, optimizer: { type: 'sgd', learningRate: 1, l2: -0.1 } }, 'config.optimizer.l2: expected a number >= 0'],
    ['bad sync mode', { ...base, sync: { mode: 'lockstep' } }, "config.sync.mode: expected 'async', 'ssp' or 'bsp'"],
    ['ssp without staleness', { ...base, sync: { mode: 'ssp', workers: 2 } }, 'config.sync.staleness: expected an integer >= 0'],
    ['bsp with 0 workers', { ...base, sync: { mode: 'bsp', workers: 0 } }, 'config.sync.workers: expected an integer >= 1'],
    ['bad reduce', { ...base, sync: { mode: 'bsp', workers: 2, reduce: 'max' } }, "config.sync.reduce: expected 'sum' or 'mean'"],
    ['fractional size', { ...base, size: 2.5 }, 'config.size: expected an integer in [1, 1073741824]'],
    ['not an object', 'adam', 'config: expected an object'],
  ];
  for (const [name, input, message] of cases) {
    it(`rejects ${name}`, () => {
      assert.throws(() => validateModelConfig(input), (err: unknown) => err instanceof PsModelError && err.code === 'PS_ARGUMENT' && err.message === message);
    });
  }
  it('accepts and returns a valid config unchanged', () => {
    const cfg = { size: 3, optimizer: { type: 'nesterov', learningRate: 0.1, momentum: 0.5, l2: 0 }, sync: { mode: 'bsp', workers: 4, reduce: 'mean' } };
    assert.deepEqual(validateModelConfig(cfg), cfg);
  });
});

describe('thresholdGradient', () => {
  it('keeps |g| >= threshold from a dense gradient, with positions as indices', () => {
    const out = thresholdGradient(undefined, Float32Array.of(0.5, -0.01, 0, -2, 0.1), 0.1);
    assert.deepEqual(Array.from(out.indices), [0, 3, 4]);
    assert.deepEqual(Array.from(out.values), [0.5, -2, Math.fround(0.1)]);
  });
  it('keeps the given indices of a sparse gradient', () => {
    const out = thresholdGradient(Uint32Array.of(9, 4, 7), Float32Array.of(-3, 0.001, 3), 1);
    assert.deepEqual(Array.from(out.indices), [9, 7]);
    assert.deepEqual(Array.from(out.values), [-3, 3]);
  });
  it('threshold 0 keeps everything; bad input is rejected', () => {
    assert.deepEqual(Array.from(thresholdGradient(undefined, Float32Array.of(0, 1), 0).indices), [0, 1]);
    assert.throws(() => thresholdGradient(undefined, Float32Array.of(1), -1), { code: 'PS_ARGUMENT', message: 'threshold must be a finite number >= 0, got -1' });
    assert.throws(() => thresholdGradient(Uint32Array.of(1), Float32Array.of(1, 2), 0), { code: 'PS_ARGUMENT', message: 'sparse gradient has 1 indices but 2 values' });
  });
});
