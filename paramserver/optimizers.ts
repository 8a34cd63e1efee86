/**
 * Per-coordinate optimizers of the parameter server. The server applies one coordinate at a time
 * (sparse pushes touch a few coordinates of a huge model), so each optimizer is a `step(w, i, g)`
 * over its own Float32Array state: no allocation per call, one monomorphic call site per model.
 * Arithmetic is done in float64 (JS numbers) and rounded once when stored.
 *
 *   sgd:      w -= lr g
 *   momentum: v = mu v + g;  w -= lr v                          (heavy ball, PyTorch convention)
 *   nesterov: v = mu v + g;  w -= lr (g + mu v)                  (PyTorch's nesterov form)
 *   adagrad:  a += g^2;      w -= lr g / (sqrt(a) + eps)
 *   adam:     t_i += 1; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *             w -= lr (m / (1 - b1^t_i)) / (sqrt(v / (1 - b2^t_i)) + eps)
 *
 * Adam keeps one step count per coordinate ("lazy" Adam): a coordinate first touched at global step
 * 1000 gets the bias correction of its own first step, not of step 1000, which would leave its
 * first moves ~10x too small (1 - b1^t ~ 1 while m is still ~ (1 - b1) g). Coordinates a push does
 * not touch keep their moments unchanged (no decay), as in sparse/lazy Adam implementations.
 *
 * L2 (weight decay as a gradient term) is added by the caller, ParamModel: g += l2 * w before the
 * step, and only for the coordinates being stepped.
 */
import type { OptimizerConfig } from './model-config.js';

/** Defaults for optional fields, applied when the optimizer is built (the config keeps what the user gave). */
export const OPTIMIZER_DEFAULTS = { momentum: 0.9, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, l2: 0 } as const;

export type StateArray = Float32Array | Uint32Array;

export interface CoordinateOptimizer {
  readonly type: OptimizerConfig['type'];
  /** Applies gradient value `g` (L2 already added) to coordinate `i` of `w`. */
  step(w: Float32Array, i: number, g: number): void;
  /** Steps coordinate indices[k] with grad[k] + l2 * w for every k; the indices must be distinct. */
  stepSparse(w: Float32Array, indices: Uint32Array, grad: Float32Array, l2: number): void;
  /** State buffers in a fixed order per type (serialized in this order); each has one entry per coordinate. */
  readonly state: readonly { readonly name: string; readonly array: StateArray }[];
}

/**
 * The sparse loop lives here rather than in ParamModel so that, within one model, `this.step` has
 * one receiver type and V8 inlines it: a push's cost is its random memory accesses, not calls.
 */
abstract class LoopingOptimizer {
  abstract step(w: Float32Array, i: number, g: number): void;
  stepSparse(w: Float32Array, indices: Uint32Array, grad: Float32Array, l2: number): void {
    const n = indices.length;
    if (l2 === 0) {
      for (let k = 0; k < n; k++) this.step(w, indices[k]!, grad[k]!);
    } else {
      for (let k = 0; k < n; k++) {
        const i = indices[k]!;
        this.step(w, i, grad[k]! + l2 * w[i]!);
      }
    }
  }
}

class Sgd extends LoopingOptimizer implements CoordinateOptimizer {
  readonly type = 'sgd' as const;
  readonly state = [] as const;
  constructor(private readonly lr: number) {
    super();
  }
  step(w: Float32Array, i: number, g: number): void {
    w[i] = w[i]! - this.lr * g;
  }
  /** Unrolled by four, loads first: the four random reads of w overlap (the indices are distinct). */
  override stepSparse(w: Float32Array, indices: Uint32Array, grad: Float32Array, l2: number): void {
    const lr = this.lr;
    const n = indices.length;
    // L2 is added only when set, exactly as step() is called by the generic loop.
    const g = (k: number, wi: number) => (l2 === 0 ? grad[k]! : grad[k]! + l2 * wi);
    let k = 0;
    for (; k + 4 <= n; k += 4) {
      const i0 = indices[k]!, i1 = indices[k + 1]!, i2 = indices[k + 2]!, i3 = indices[k + 3]!;
      const w0 = w[i0]!, w1 = w[i1]!, w2 = w[i2]!, w3 = w[i3]!;
      w[i0] = w0 - lr * g(k, w0);
      w[i1] = w1 - lr * g(k + 1, w1);
      w[i2] = w2 - lr * g(k + 2, w2);
      w[i3] = w3 - lr * g(k + 3, w3);
    }
    for (; k < n; k++) {
      const i = indices[k]!;
      w[i] = w[i]! - lr * g(k, w[i]!);
    }
  }
}

/** Momentum and Nesterov share their state: one velocity per coordinate. */
abstract class VelocityOptimizer extends LoopingOptimizer {
  readonly velocity: Float32Array;
  readonly state;
  constructor(protected readonly lr: number, protected readonly mu: number, size: number) {
    super();
    this.velocity = new Float32Array(size);
    this.state = [{ name: 'velocity', array: this.velocity }] as const;
  }
}

class Momentum extends VelocityOptimizer implements CoordinateOptimizer {
  readonly type = 'momentum' as const;
  step(w: Float32Array, i: number, g: number): void {
    const v = this.mu * this.velocity[i]! + g;
    this.velocity[i] = v;
    // Uses the unrounded v: the float32 store is for keeping, not for this step's arithmetic.
    w[i] = w[i]! - this.lr * v;
  }
}

class Nesterov extends VelocityOptimizer implements CoordinateOptimizer {
  readonly type = 'nesterov' as const;
  step(w: Float32Array, i: number, g: number): void {
    const v = this.mu * this.velocity[i]! + g;
    this.velocity[i] = v;
    w[i] = w[i]! - this.lr * (g + this.mu * v);
  }
}

class Adagrad extends LoopingOptimizer implements CoordinateOptimizer {
  readonly type = 'adagrad' as const;
  readonly accumulator: Float32Array;
  readonly state;
  constructor(private readonly lr: number, private readonly eps: number, size: number) {
    super();
    this.accumulator = new Float32Array(size);
    this.state = [{ name: 'accumulator', array: this.accumulator }] as const;
  }
  step(w: Float32Array, i: number, g: number): void {
    const a = this.accumulator[i]! + g * g;
    this.accumulator[i] = a;
    w[i] = w[i]! - (this.lr * g) / (Math.sqrt(a) + this.eps);
  }
}

/** Bias-correction tables cover step counts below this; later steps call Math.pow (same values). */
const ADAM_TABLE_LIMIT = 1 << 16;

class Adam extends LoopingOptimizer implements CoordinateOptimizer {
  readonly type = 'adam' as const;
  readonly m: Float32Array;
  readonly v: Float32Array;
  /** Per-coordinate step counts (see the header comment). */
  readonly t: Uint32Array;
  readonly state;
  /**
   * 1 / (1 - b^t) by step count, grown on demand: two Math.pow per coordinate made a dense step
   * ~25x slower than Adagrad's. Filled with the same Math.pow, so results are unchanged.
   */
  private inv1 = new Float64Array(0);
  private inv2 = new Float64Array(0);
  constructor(
    private readonly lr: number,
    private readonly b1: number,
    private readonly b2: number,
    private readonly eps: number,
    size: number,
  ) {
    super();
    this.m = new Float32Array(size);
    this.v = new Float32Array(size);
    this.t = new Uint32Array(size);
    this.state = [
      { name: 'm', array: this.m },
      { name: 'v', array: this.v },
      { name: 't', array: this.t },
    ] as const;
  }
  step(w: Float32Array, i: number, g: number): void {
    // Saturates instead of wrapping at 2^32 - 1 steps, where the correction is exactly 1 anyway.
    const t = this.t[i]! === 0xffffffff ? 0xffffffff : this.t[i]! + 1;
    this.t[i] = t;
    const m = this.b1 * this.m[i]! + (1 - this.b1) * g;
    const v = this.b2 * this.v[i]! + (1 - this.b2) * g * g;
    this.m[i] = m;
    this.v[i] = v;
    let c1: number;
    let c2: number;
    if (t < this.inv1.length) {
      c1 = this.inv1[t]!;
      c2 = this.inv2[t]!;
    } else if (t < ADAM_TABLE_LIMIT) {
      this.grow(t);
      c1 = this.inv1[t]!;
      c2 = this.inv2[t]!;
    } else {
      c1 = 1 / (1 - Math.pow(this.b1, t));
      c2 = 1 / (1 - Math.pow(this.b2, t));
    }
    w[i] = w[i]! - (this.lr * m * c1) / (Math.sqrt(v * c2) + this.eps);
  }
  private grow(t: number): void {
    const n = Math.min(ADAM_TABLE_LIMIT, Math.max(64, 2 ** Math.ceil(Math.log2(t + 1))));
    const inv1 = new Float64Array(n);
    const inv2 = new Float64Array(n);
    inv1.set(this.inv1);
    inv2.set(this.inv2);
    for (let k = Math.max(1, this.inv1.length); k < n; k++) {
      inv1[k] = 1 / (1 - Math.pow(this.b1, k));
      inv2[k] = 1 / (1 - Math.pow(this.b2, k));
    }
    this.inv1 = inv1;
    this.inv2 = inv2;
  }
}

/** Builds the optimizer for `size` coordinates, with zeroed state. The config must be validated already. */
export function createCoordinateOptimizer(config: OptimizerConfig, size: number): CoordinateOptimizer {
  const lr = config.learningRate;
  switch (config.type) {
    case 'sgd':
      return new Sgd(lr);
    case 'momentum':
      return new Momentum(lr, config.momentum ?? OPTIMIZER_DEFAULTS.momentum, size);
    case 'nesterov':
      return new Nesterov(lr, config.momentum ?? OPTIMIZER_DEFAULTS.momentum, size);
    case 'adagrad':
      return new Adagrad(lr, config.epsilon ?? OPTIMIZER_DEFAULTS.epsilon, size);
    case 'adam':
      return new Adam(lr, config.beta1 ?? OPTIMIZER_DEFAULTS.beta1, config.beta2 ?? OPTIMIZER_DEFAULTS.beta2, config.epsilon ?? OPTIMIZER_DEFAULTS.epsilon, size);
  }
}
