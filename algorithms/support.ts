/**
 * Gradient support: which weights a batch's gradient can touch. A worker of the `async-sgd`
 * algorithm pulls only these from the parameter server and pushes only these back, which is what
 * makes sparse models cheap to train there (a Criteo batch of 200 rows touches a few thousand of
 * a million weights).
 *
 * Layouts are those of algorithms/models.ts: linear binary models [w_0 .. w_{F-1}, bias];
 * softmax: classes rows of (F + 1). The MLP's first layer is dense in its inputs, so it has no
 * useful sparse support and is not handled here.
 */
import { CirrusError } from '../paramserver/index.js';
import type { ModelBatch, ModelSpec, ModelType } from './model.js';
import { mfLayout, mfSupport, type MfLayout } from './models/mf.js';

/** Models whose gradient on a sparse batch touches only the weights of the batch's features. */
export const SPARSE_GRADIENT_MODELS: readonly ModelType[] = ['sparse-lr', 'svm', 'softmax', 'mf'];

export class SupportError extends CirrusError<'SUPPORT_MODEL'> {
  constructor(message: string) {
    super('SUPPORT_MODEL', message);
  }
}

/**
 * Finds the support of batches for one model. Reuses its buffers: the returned array is valid until
 * the next call. Indices come out each once, in increasing order.
 */
export class SupportFinder {
  private readonly features: number;
  private readonly classes: number;
  private readonly stride: number;
  /** seen[f] === tag marks feature f as already collected in the current call. */
  private readonly seen: Uint32Array;
  private tag = 0;
  /** mf: the weight layout and scratch marks of users and items. */
  private readonly mf: MfLayout | undefined;
  private readonly seenUsers = new Uint8Array(0);
  private readonly seenItems = new Uint8Array(0);
  private features_ = new Uint32Array(1024);
  private out = new Uint32Array(1024);

  constructor(readonly spec: ModelSpec) {
    if (!SPARSE_GRADIENT_MODELS.includes(spec.type)) {
      throw new SupportError(`model ${spec.type} has no sparse gradient; sparse updates work for ${SPARSE_GRADIENT_MODELS.join(', ')}`);
    }
    if (spec.type === 'mf') {
      this.mf = mfLayout(spec);
      this.seenUsers = new Uint8Array(this.mf.users);
      this.seenItems = new Uint8Array(this.mf.items);
    }
    this.features = spec.features;
    this.classes = spec.type === 'softmax' ? spec.classes : 1;
    this.stride = spec.features + 1;
    this.seen = new Uint32Array(spec.type === 'mf' ? 0 : spec.features);
  }

  /** Number of weights of the model. */
  get size(): number {
    if (this.mf) return this.mf.size;
    return this.classes * this.stride;
  }

  /** Weight indices the gradient of `batch` can make nonzero (all of them for a dense batch). */
  find(batch: ModelBatch): Uint32Array {
    if (batch.kind === 'ratings' || this.mf) {
      if (batch.kind !== 'ratings' || !this.mf) throw new SupportError(`a ${batch.kind} batch for a ${this.spec.type} model`);
      return mfSupport(this.mf, batch, this.seenUsers, this.seenItems);
    }
    const nFeatures = batch.kind === 'dense' ? this.allFeatures() : this.batchFeatures(batch.indptr, batch.indices, batch.rows);
    const C = this.classes;
    const need = C * (nFeatures + 1);
    if (this.out.length < need) this.out = new Uint32Array(Math.max(need, this.out.length * 2));
    const out = this.out;
    const feats = this.features_;
    let k = 0;
    for (let c = 0; c < C; c++) {
      const base = c * this.stride;
      for (let i = 0; i < nFeatures; i++) out[k++] = base + feats[i]!;
      out[k++] = base + this.features; // the bias of this class row
    }
    return out.subarray(0, k);
  }

  private allFeatures(): number {
    const F = this.features;
    if (this.features_.length < F) this.features_ = new Uint32Array(F);
    for (let f = 0; f < F; f++) this.features_[f] = f;
    return F;
  }

  private batchFeatures(indptr: Uint32Array, indices: Uint32Array, rows: number): number {
    // A fresh tag per call makes clearing `seen` unnecessary; on wrap-around it is cleared once.
    if (++this.tag === 0xffffffff) {
      this.seen.fill(0);
      this.tag = 1;
    }
    const tag = this.tag;
    const seen = this.seen;
    const start = indptr[0]!;
    const end = indptr[rows]!;
    if (this.features_.length < end - start) this.features_ = new Uint32Array(Math.max(end - start, this.features_.length * 2));
    const feats = this.features_;
    let n = 0;
    for (let p = start; p < end; p++) {
      const f = indices[p]!;
      if (seen[f] !== tag) {
        seen[f] = tag;
        feats[n++] = f;
      }
    }
    // Increasing order: the parameter server then needs no duplicate check (see ParamModel.applySparse).
    feats.subarray(0, n).sort();
    return n;
  }
}
