/**
 * The checks every model shares: the spec's basics, weight-vector sizes, batch shapes and labels.
 * Sparse feature indices are trusted to be < batch.cols: shards are validated when decoded, and a
 * check per nonzero would cost a large part of the sparse kernel's time.
 */
import type { Batch, ModelSpec, ModelType } from '../model.js';
import { ModelError } from './base.js';

export const MODEL_TYPES: readonly ModelType[] = ['sparse-lr', 'dense-lr', 'svm', 'softmax', 'mlp', 'kmeans', 'mf'];

export function checkSpecBasics(spec: ModelSpec): void {
  if (spec === null || typeof spec !== 'object') throw new ModelError('MODEL_SPEC', `model spec must be an object, got ${String(spec)}`);
  if (!MODEL_TYPES.includes(spec.type)) {
    throw new ModelError('MODEL_UNKNOWN_TYPE', `unknown model type ${JSON.stringify(spec.type)}: expected one of ${MODEL_TYPES.join(', ')}`);
  }
  if (!Number.isSafeInteger(spec.features) || spec.features < 1) {
    throw new ModelError('MODEL_SPEC', `${spec.type}: spec.features must be a positive integer, got ${spec.features}`);
  }
  if (!Number.isSafeInteger(spec.classes)) throw new ModelError('MODEL_SPEC', `${spec.type}: spec.classes must be an integer, got ${spec.classes}`);
  if (spec.type !== 'mlp' && spec.hidden !== undefined && spec.hidden.length > 0) {
    throw new ModelError('MODEL_SPEC', `${spec.type}: spec.hidden (${JSON.stringify(spec.hidden)}) is only for mlp models`);
  }
}

/** Float32Array lengths are capped; a weight vector past this is a spec error, not an OOM later. */
const MAX_WEIGHTS = 2 ** 31 - 1;

export function checkSize(spec: ModelSpec, size: number): void {
  if (size > MAX_WEIGHTS) throw new ModelError('MODEL_SPEC', `${spec.type}: ${size} weights exceed the limit of ${MAX_WEIGHTS} for one Float32Array`);
}

export function checkWeights(name: string, size: number, weights: Float32Array, what = 'weights'): void {
  if (!(weights instanceof Float32Array) || weights.length !== size) {
    throw new ModelError('MODEL_WEIGHTS', `${name}: ${what} must be a Float32Array of ${size} entries, got ${weights instanceof Float32Array ? weights.length + ' entries' : typeof weights}`);
  }
}

export function checkBatch(name: string, batch: Batch, features: number, accepts: { dense: boolean; sparse: boolean }): void {
  const kind = (batch as { kind?: unknown }).kind;
  if (kind !== 'dense' && kind !== 'sparse') throw new ModelError('MODEL_BATCH', `${name}: unknown batch kind ${JSON.stringify(kind)}`);
  if (!accepts[kind]) {
    const want = accepts.dense ? 'dense' : 'sparse';
    throw new ModelError('MODEL_BATCH', `${name} expects ${want} batches, got a ${kind} batch`);
  }
  const { rows } = batch;
  if (!Number.isSafeInteger(rows) || rows < 0) throw new ModelError('MODEL_BATCH', `${name}: batch.rows must be a non-negative integer, got ${rows}`);
  if (batch.labels.length < rows) throw new ModelError('MODEL_BATCH', `${name}: ${batch.labels.length} labels for ${rows} rows`);
  if (batch.kind === 'dense') {
    if (batch.cols !== features) throw new ModelError('MODEL_BATCH', `${name}: dense batch has ${batch.cols} columns, the model has ${features} features`);
    if (batch.x.length < rows * batch.cols) throw new ModelError('MODEL_BATCH', `${name}: dense batch x has ${batch.x.length} values for ${rows} x ${batch.cols}`);
  } else {
    if (batch.cols > features) throw new ModelError('MODEL_BATCH', `${name}: sparse batch has ${batch.cols} feature columns, the model only ${features}`);
    if (batch.indptr.length < rows + 1) throw new ModelError('MODEL_BATCH', `${name}: indptr has ${batch.indptr.length} entries for ${rows} rows`);
    const end = rows > 0 ? batch.indptr[rows] : 0;
    if (end > batch.indices.length || end > batch.values.length) {
      throw new ModelError('MODEL_BATCH', `${name}: indptr ends at ${end} but there are ${batch.indices.length} indices and ${batch.values.length} values`);
    }
  }
}

export function badLabel(name: string, row: number, label: number, classes: number): ModelError {
  return new ModelError('MODEL_LABEL', `${name}: row ${row} has label ${label}; expected an integer class in [0, ${classes})`);
}

export function checkMulticlass(spec: ModelSpec): void {
  if (spec.classes < 2) throw new ModelError('MODEL_SPEC', `${spec.type}: spec.classes must be >= 2, got ${spec.classes}`);
}
