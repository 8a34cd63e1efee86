/**
 * One model held by the parameter server: a flat Float32Array of weights, its optimizer state and
 * the config it was created with. Gradients arrive dense or sparse (indices + values) and are
 * applied at once by the server-side optimizer.
 *
 * Sparse pushes: all indices and values are checked before anything changes, so a bad push never
 * leaves a half-applied update. Duplicate indices within one push are summed first and the
 * optimizer steps each distinct coordinate once (so Adam/Adagrad see one step per push, the same
 * as a dense push of the summed gradient). Coordinates are stepped in order of first appearance.
 */
import { Buffer } from 'node:buffer';
import { z } from 'zod';
import type { ModelConfig } from './model-config.js';
import { CirrusError } from './cirrus-error.js';
import { createCoordinateOptimizer, type CoordinateOptimizer } from './optimizers.js';

/** The config types live in model-config.ts (shared with optimizers.ts); re-exported for importers of this module. */
export type { ModelConfig, OptimizerConfig, SyncConfig } from './model-config.js';

export type PsModelErrorCode =
  /** An index outside [0, size). */
  | 'PS_RANGE'
  /** Wrong lengths, non-finite values, a bad config or threshold. */
  | 'PS_ARGUMENT'
  /** Serialized bytes or a stored snapshot that cannot be decoded. */
  | 'PS_SNAPSHOT';

export class PsModelError extends CirrusError<PsModelErrorCode> {}

/** Largest model: 2^30 weights (4 GiB of float32), well past what one server process holds. */
export const MAX_MODEL_SIZE = 2 ** 30;

const positive = () => z.number({ error: 'expected a number > 0' }).refine((v) => v > 0, { message: 'expected a number > 0' });
const unit = () => z.number({ error: 'expected a number in [0, 1)' }).refine((v) => v >= 0 && v < 1, { message: 'expected a number in [0, 1)' });
const count = (min: number) => z.number({ error: `expected an integer >= ${min}` }).refine((v) => Number.isSafeInteger(v) && v >= min, { message: `expected an integer >= ${min}` });

const optimizerSchema = z.strictObject(
  {
  type: z.enum(['sgd', 'momentum', 'nesterov', 'adagrad', 'adam'], { error: "expected one of 'sgd', 'momentum', 'nesterov', 'adagrad', 'adam'" }),
  learningRate: positive(),
  momentum: unit().optional(),
  beta1: unit().optional(),
  beta2: unit().optional(),
  epsilon: positive().optional(),
  l2: z.number({ error: 'expected a number >= 0' }).refine((v) => v >= 0, { message: 'expected a number >= 0' }).optional(),
  },
  { error: 'expected an object' },
);

const syncSchema = z.discriminatedUnion(
  'mode',
  [
    z.strictObject({ mode: z.literal('async') }),
    z.strictObject({ mode: z.literal('ssp'), workers: count(1), staleness: count(0) }),
    z.strictObject({ mode: z.literal('bsp'), workers: count(1), reduce: z.enum(['sum', 'mean'], { error: "expected 'sum' or 'mean'" }).optional() }),
  ],
  { error: "expected 'async', 'ssp' or 'bsp'" },
);

const modelConfigSchema = z.strictObject({
  size: z.number({ error: `expected an integer in [1, ${MAX_MODEL_SIZE}]` }).refine((v) => Number.isSafeInteger(v) && v >= 1 && v <= MAX_MODEL_SIZE, {
    message: `expected an integer in [1, ${MAX_MODEL_SIZE}]`,
  }),
  optimizer: optimizerSchema,
  sync: syncSchema,
}, { error: 'expected an object' });

/**
 * Checks an untrusted model config (from the wire or a snapshot). The error names the first bad
 * field, e.g. 'config.optimizer.learningRate: expected a number > 0'.
 */
export function validateModelConfig(input: unknown): ModelConfig {
  const parsed = modelConfigSchema.safeParse(input);
  if (parsed.success) return parsed.data as ModelConfig;
  const issue = parsed.error.issues[0]!;
  const path = ['config', ...issue.path.map(String)].join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  // A discriminated union reports a bad 'mode' at the object; name the field itself.
  const where = issue.code === 'invalid_union' && issue.path.at(-1) === 'sync' ? `${path}.mode` : path;
  throw new PsModelError('PS_ARGUMENT', `${where}: ${message}`);
}

const MAGIC = 0x4d535043; // 'CPSM' little-endian
const FORMAT_VERSION = 1;
/** magic u32, version u16, reserved u16, configBytes u32, reserved u32, updates f64. */
const FIXED_HEADER = 24;

export class ParamModel {
  readonly config: ModelConfig;
  readonly size: number;
  readonly weights: Float32Array;
  /** Gradient pushes applied (dense or sparse), carried through snapshots. */
  updates = 0;
  private readonly optimizer: CoordinateOptimizer;
  private readonly l2: number;
  /** Sparse-push scratch, allocated on the first sparse push: summed gradient and a 'touched' mark per coordinate. */
  private sum: Float32Array | undefined;
  private mark: Uint8Array | undefined;

  constructor(config: ModelConfig, init?: Float32Array) {
    this.config = validateModelConfig(config);
    this.size = this.config.size;
    if (init !== undefined && init.length !== this.size) {
      throw new PsModelError('PS_ARGUMENT', `initial weights have ${init.length} values, the model size is ${this.size}`);
    }
    this.weights = init ? Float32Array.from(init) : new Float32Array(this.size);
    this.optimizer = createCoordinateOptimizer(this.config.optimizer, this.size);
    this.l2 = this.config.optimizer.l2 ?? 0;
  }

  /** Applies a sparse gradient; duplicates are summed (see the module comment). Nothing changes if any entry is bad. */
  applySparse(indices: Uint32Array, grad: Float32Array): void {
    const n = indices.length;
    if (grad.length !== n) throw new PsModelError('PS_ARGUMENT', `sparse gradient has ${n} indices but ${grad.length} values`);
    const size = this.size;
    // A sequential pass validates everything and notes whether the indices strictly increase.
    // Random accesses into a large model dominate a push's cost: increasing indices (what clients
    // send) cannot repeat, so they skip the duplicate marks and go straight to the step.
    let increasing = true;
    let previous = -1;
    for (let k = 0; k < n; k++) {
      const i = indices[k]!;
      if (i >= size) throw new PsModelError('PS_RANGE', `index ${i} at position ${k} is out of range for a model of size ${size}`);
      if (!Number.isFinite(grad[k]!)) throw new PsModelError('PS_ARGUMENT', `gradient value at position ${k} (index ${i}) is ${grad[k]}`);
      if (i <= previous) increasing = false;
      previous = i;
    }
    const w = this.weights;
    const opt = this.optimizer;
    const l2 = this.l2;
    if (increasing) {
      opt.stepSparse(w, indices, grad, l2);
      this.updates++;
      return;
    }
    const mark = (this.mark ??= new Uint8Array(size));
    let duplicates = false;
    for (let k = 0; k < n; k++) {
      const i = indices[k]!;
      if (mark[i] === 1) duplicates = true;
      else mark[i] = 1;
    }
    if (!duplicates) {
      for (let k = 0; k < n; k++) mark[indices[k]!] = 0;
      opt.stepSparse(w, indices, grad, l2);
    } else {
      const sum = (this.sum ??= new Float32Array(size));
      for (let k = 0; k < n; k++) {
        const i = indices[k]!;
        sum[i] = sum[i]! + grad[k]!;
      }
      for (let k = 0; k < n; k++) {
        const i = indices[k]!;
        if (mark[i] === 0) continue; // a later duplicate: already stepped
        mark[i] = 0;
        const g = sum[i]!;
        sum[i] = 0;
        opt.step(w, i, l2 === 0 ? g : g + l2 * w[i]!);
      }
    }
    this.updates++;
  }

  /** Applies a gradient for every coordinate. */
  applyDense(grad: Float32Array): void {
    if (grad.length !== this.size) throw new PsModelError('PS_ARGUMENT', `dense gradient has ${grad.length} values, the model size is ${this.size}`);
    for (let i = 0; i < grad.length; i++) {
      if (!Number.isFinite(grad[i]!)) throw new PsModelError('PS_ARGUMENT', `gradient value at index ${i} is ${grad[i]}`);
    }
    const w = this.weights;
    const opt = this.optimizer;
    const l2 = this.l2;
    for (let i = 0; i < grad.length; i++) opt.step(w, i, l2 === 0 ? grad[i]! : grad[i]! + l2 * w[i]!);
    this.updates++;
  }

  /** Weights at `indices`, in request order, into `out` (allocated when absent). */
  gather(indices: Uint32Array, out?: Float32Array): Float32Array {
    const n = indices.length;
    if (out !== undefined && out.length !== n) throw new PsModelError('PS_ARGUMENT', `gather output has ${out.length} slots for ${n} indices`);
    for (let k = 0; k < n; k++) {
      if (indices[k]! >= this.size) throw new PsModelError('PS_RANGE', `index ${indices[k]} at position ${k} is out of range for a model of size ${this.size}`);
    }
    // Unzeroed: every slot is written below.
    const dest = out ?? new Float32Array(Buffer.allocUnsafeSlow(4 * n).buffer, 0, n);
    const w = this.weights;
    for (let k = 0; k < n; k++) dest[k] = w[indices[k]!]!;
    return dest;
  }

  /**
   * Weights, optimizer state, config and update count as one buffer (little-endian):
   *   u32 magic 'CPSM', u16 version, u16 0, u32 configBytes, u32 0, f64 updates,
   *   config JSON (UTF-8), zero padding to a multiple of 4,
   *   weights (size x f32), then each optimizer state buffer (size x 4 bytes) in the optimizer's order.
   * The state layout follows from the config, so it needs no description of its own; the total
   * length is checked exactly on decode.
   */
  serialize(): Uint8Array {
    const configBytes = new TextEncoder().encode(JSON.stringify(this.config));
    const configPadded = align4(configBytes.byteLength);
    const arrays = [this.weights, ...this.optimizer.state.map((s) => s.array)];
    const total = FIXED_HEADER + configPadded + arrays.length * this.size * 4;
    const out = new Uint8Array(total);
    const view = new DataView(out.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint16(4, FORMAT_VERSION, true);
    view.setUint32(8, configBytes.byteLength, true);
    view.setFloat64(16, this.updates, true);
    out.set(configBytes, FIXED_HEADER);
    let at = FIXED_HEADER + configPadded;
    // Typed arrays are in platform order; every platform Node supports here is little-endian.
    for (const a of arrays) {
      out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
      at += a.byteLength;
    }
    return out;
  }

  static deserialize(bytes: Uint8Array): ParamModel {
    const fail = (what: string): never => {
      throw new PsModelError('PS_SNAPSHOT', `serialized model is invalid: ${what}`);
    };
    if (bytes.byteLength < FIXED_HEADER) fail(`${bytes.byteLength} bytes is shorter than the ${FIXED_HEADER}-byte header`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0, true) !== MAGIC) fail('bad magic (not a Cirrus parameter-server model)');
    const version = view.getUint16(4, true);
    if (version !== FORMAT_VERSION) fail(`unsupported format version ${version} (expected ${FORMAT_VERSION})`);
    const configLength = view.getUint32(8, true);
    const updates = view.getFloat64(16, true);
    if (!Number.isSafeInteger(updates) || updates < 0) fail(`update count ${updates} is not a non-negative integer`);
    if (FIXED_HEADER + configLength > bytes.byteLength) fail(`config of ${configLength} bytes runs past the end (${bytes.byteLength} bytes)`);
    let configJson: unknown;
    try {
      configJson = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(FIXED_HEADER, FIXED_HEADER + configLength)));
    } catch (err) {
      fail(`config is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    let config: ModelConfig;
    try {
      config = validateModelConfig(configJson);
    } catch (err) {
      return fail(`${(err as Error).message}`);
    }
    const model = new ParamModel(config);
    const arrays = [model.weights, ...model.optimizer.state.map((s) => s.array)];
    const start = FIXED_HEADER + align4(configLength);
    const expected = start + arrays.length * model.size * 4;
    if (bytes.byteLength !== expected) {
      fail(`expected ${expected} bytes for a ${config.optimizer.type} model of size ${model.size}, got ${bytes.byteLength}`);
    }
    let at = start;
    for (const a of arrays) {
      // Copy through bytes: the input may sit at any alignment.
      new Uint8Array(a.buffer, a.byteOffset, a.byteLength).set(bytes.subarray(at, at + a.byteLength));
      at += a.byteLength;
    }
    model.updates = updates;
    return model;
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Client-side sparsification: keeps the entries with |g| >= threshold (a NaN is kept, so the server
 * rejects it loudly instead of it vanishing). With `indices` undefined, `grad` is dense and the
 * kept positions become the indices.
 */
export function thresholdGradient(indices: Uint32Array | undefined, grad: Float32Array, threshold: number): { indices: Uint32Array; values: Float32Array } {
  if (!Number.isFinite(threshold) || threshold < 0) throw new PsModelError('PS_ARGUMENT', `threshold must be a finite number >= 0, got ${threshold}`);
  if (indices !== undefined && indices.length !== grad.length) {
    throw new PsModelError('PS_ARGUMENT', `sparse gradient has ${indices.length} indices but ${grad.length} values`);
  }
  let kept = 0;
  for (let k = 0; k < grad.length; k++) if (!(Math.abs(grad[k]!) < threshold)) kept++;
  const outIndices = new Uint32Array(kept);
  const outValues = new Float32Array(kept);
  let j = 0;
  for (let k = 0; k < grad.length; k++) {
    if (Math.abs(grad[k]!) < threshold) continue;
    outIndices[j] = indices === undefined ? k : indices[k]!;
    outValues[j] = grad[k]!;
    j++;
  }
  return { indices: outIndices, values: outValues };
}
