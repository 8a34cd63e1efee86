/**
 * Trained models: a spec plus one flat weight vector. Saved as two objects, `model.json`
 * (format, spec, metadata) and `weights.bin` (a tensor frame), to a directory or an object store
 * prefix: cirrus.save(model, 'file:///dir' | 'dir' | 's3://bucket/prefix?endpoint=...').
 */
import { createModel } from '../algorithms/models.js';
import type { Batch, Model, ModelSpec } from '../algorithms/model.js';
import { decodeFloat32, encodeTensor } from '../channels/codec.js';
import { openObjectStore } from '../channels/object-store.js';
import { centroids, predictRatings, recommend } from './model-queries.js';

export const MODEL_FORMAT = 'cirrus-model';
export const MODEL_FORMAT_VERSION = 1;

export class ModelIoError extends Error {
  readonly code: 'MODEL_NOT_FOUND' | 'MODEL_FORMAT';
  constructor(code: ModelIoError['code'], message: string) {
    super(message);
    this.name = 'ModelIoError';
    this.code = code;
  }
}

export class TrainedModel {
  private readonly impl: Model;
  constructor(
    readonly spec: ModelSpec,
    readonly weights: Float32Array,
    readonly meta: Record<string, unknown> = {},
  ) {
    this.impl = createModel(spec);
    if (weights.length !== this.impl.size) throw new ModelIoError('MODEL_FORMAT', `${spec.type} with ${spec.features} features and ${spec.classes} classes has ${this.impl.size} weights, got ${weights.length}`);
  }

  /** Class probabilities: binary models P(y=1) per row; multiclass rows x classes. */
  predict(batch: Batch): Float32Array {
    return this.impl.predict(batch, this.weights);
  }

  /** Predicts dense rows given as arrays of numbers. */
  predictRows(rows: number[][]): Float32Array {
    const cols = this.spec.features;
    const x = new Float32Array(rows.length * cols);
    rows.forEach((r, i) => {
      if (r.length !== cols) throw new ModelIoError('MODEL_FORMAT', `row ${i} has ${r.length} values, the model takes ${cols}`);
      x.set(r, i * cols);
    });
    return this.predict({ kind: 'dense', rows: rows.length, cols, labels: new Float32Array(rows.length), x });
  }

  /** kmeans: the k centroids, F numbers each (the weights, row by row). */
  centroids(): number[][] {
    return centroids(this.spec, this.weights);
  }

  /** mf: the predicted rating of each [user, item] pair. */
  predictRatings(pairs: ReadonlyArray<readonly [number, number]>): Float32Array {
    return predictRatings(this.spec, this.weights, pairs);
  }

  /** mf: the k items with the highest predicted rating for `user`, leaving out `exclude`. */
  recommend(user: number, k: number, exclude: Iterable<number> = []): Array<{ item: number; score: number }> {
    return recommend(this.spec, this.weights, user, k, exclude);
  }

  evaluate(batch: Batch) {
    return this.impl.evaluate(batch, this.weights);
  }
}

export async function saveModel(model: TrainedModel, target: string): Promise<void> {
  const store = await openObjectStore(target);
  try {
    await store.put('weights.bin', encodeTensor(model.weights));
    // model.json last: a reader never finds a manifest without its weights.
    const json = { format: MODEL_FORMAT, version: MODEL_FORMAT_VERSION, spec: model.spec, weights: 'weights.bin', meta: model.meta };
    await store.put('model.json', new TextEncoder().encode(JSON.stringify(json, null, 2) + '\n'));
  } finally {
    await store.close();
  }
}

export async function loadModel(target: string): Promise<TrainedModel> {
  const store = await openObjectStore(target);
  try {
    const head = await store.get('model.json');
    if (!head) throw new ModelIoError('MODEL_NOT_FOUND', `no model.json at ${store.url}`);
    let json: { format?: unknown; version?: unknown; spec?: ModelSpec; meta?: Record<string, unknown> };
    try {
      json = JSON.parse(new TextDecoder().decode(head));
    } catch (e) {
      throw new ModelIoError('MODEL_FORMAT', `${store.url}/model.json is not JSON: ${(e as Error).message}`);
    }
    if (json.format !== MODEL_FORMAT || json.version !== MODEL_FORMAT_VERSION || !json.spec) {
      throw new ModelIoError('MODEL_FORMAT', `${store.url}/model.json: expected format '${MODEL_FORMAT}' version ${MODEL_FORMAT_VERSION} with a spec`);
    }
    const bytes = await store.get('weights.bin');
    if (!bytes) throw new ModelIoError('MODEL_NOT_FOUND', `no weights.bin at ${store.url}`);
    return new TrainedModel(json.spec, decodeFloat32(bytes, `${store.url}/weights.bin`).slice(), json.meta ?? {});
  } finally {
    await store.close();
  }
}
