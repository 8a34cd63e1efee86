/**
 * Trained models: a spec plus one flat weight vector. Saved as two objects, `model.json`
 * (format, spec, metadata) and `weights.bin` (a tensor frame), to a directory or an object store
 * prefix: cirrus.save(model, 'file:///dir' | 'dir' | 's3://bucket/prefix?endpoint=...').
 */
import { createModel, type Batch, type Model, type ModelSpec } from '../algorithms/index.js';
import { openObjectStore, decodeFloat32, encodeTensor } from '../channels/index.js';
import { CirrusError } from '../paramserver/index.js';
import { centroids, predictRatings, recommend } from './model-queries.js';
import { inputPipelineSchema, type InputPipeline } from './predict/pipeline.js';
import { predictRaw, type Prediction } from './predict/predict-rows.js';
import type { RawRow } from './predict/prepare.js';
import { jsonErrorAt } from './json-position.js';

const MODEL_FORMAT = 'cirrus-model';
const MODEL_FORMAT_VERSION = 1;

export type ModelIoErrorCode = 'MODEL_NOT_FOUND' | 'MODEL_FORMAT';

export class ModelIoError extends CirrusError<ModelIoErrorCode> {}

export class TrainedModel {
  private readonly impl: Model;
  constructor(
    readonly spec: ModelSpec,
    readonly weights: Float32Array,
    readonly meta: Record<string, unknown> = {},
    /** How raw rows become the model's input; absent for models of data with no raw form. */
    readonly pipeline?: InputPipeline,
  ) {
    this.impl = createModel(spec);
    if (weights.length !== this.impl.size) throw new ModelIoError('MODEL_FORMAT', `${spec.type} with ${spec.features} features and ${spec.classes} classes has ${this.impl.size} weights, got ${weights.length}`);
  }

  /**
   * Predicts raw rows, as the training file had them: lines of the file, arrays of cells in file
   * order, or objects keyed by column name (the label may be left out). The model's own pipeline
   * parses, hashes and scales them; returns each row's label (class name) and class probabilities.
   */
  predict(rows: readonly RawRow[]): Prediction {
    if (!this.pipeline) throw new ModelIoError('MODEL_FORMAT', `this ${this.spec.type} model carries no input pipeline (saved before models did, or trained on data with no raw form); use predictPrepared with preprocessed rows`);
    return predictRaw(this, this.pipeline, rows);
  }

  /** Class probabilities of an already preprocessed batch: binary models P(y=1) per row; multiclass rows x classes. */
  predictPrepared(batch: Batch): Float32Array {
    return this.impl.predict(batch, this.weights);
  }

  /** Predicts dense rows already preprocessed (normalized, hashed) like the training shards. */
  predictPreparedRows(rows: number[][]): Float32Array {
    const cols = this.spec.features;
    const x = new Float32Array(rows.length * cols);
    rows.forEach((r, i) => {
      if (r.length !== cols) throw new ModelIoError('MODEL_FORMAT', `row ${i} has ${r.length} values, the model takes ${cols}`);
      x.set(r, i * cols);
    });
    return this.predictPrepared({ kind: 'dense', rows: rows.length, cols, labels: new Float32Array(rows.length), x });
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
    const json = { format: MODEL_FORMAT, version: MODEL_FORMAT_VERSION, spec: model.spec, weights: 'weights.bin', meta: model.meta, ...(model.pipeline ? { pipeline: model.pipeline } : {}) };
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
    const where = `${store.url}/model.json`;
    let json: { format?: unknown; version?: unknown; spec?: ModelSpec; meta?: Record<string, unknown>; pipeline?: unknown };
    const text = new TextDecoder().decode(head);
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ModelIoError('MODEL_FORMAT', `${where}: ${jsonErrorAt(text, e)} (expected the JSON manifest cirrus.save writes; the file is truncated or corrupt)`);
    }
    if (typeof json !== 'object' || json === null || json.format !== MODEL_FORMAT || json.version !== MODEL_FORMAT_VERSION || !json.spec) {
      throw new ModelIoError('MODEL_FORMAT', `${where}: expected format '${MODEL_FORMAT}' version ${MODEL_FORMAT_VERSION} with a spec`);
    }
    let pipeline: InputPipeline | undefined;
    if (json.pipeline !== undefined) {
      const r = inputPipelineSchema.safeParse(json.pipeline);
      if (!r.success) {
        const issue = r.error.issues[0]!;
        throw new ModelIoError('MODEL_FORMAT', `${where}: pipeline.${issue.path.join('.')}: ${issue.message}`);
      }
      pipeline = r.data;
    }
    const bytes = await store.get('weights.bin');
    if (!bytes) throw new ModelIoError('MODEL_NOT_FOUND', `no weights.bin at ${store.url}`);
    let weights: Float32Array;
    try {
      weights = decodeFloat32(bytes, `${store.url}/weights.bin`).slice();
    } catch (e) {
      throw new ModelIoError('MODEL_FORMAT', `${(e as Error).message} (expected the float32 tensor frame cirrus.save writes; the file is truncated or corrupt)`);
    }
    try {
      return new TrainedModel(json.spec, weights, json.meta ?? {}, pipeline);
    } catch (e) {
      throw new ModelIoError('MODEL_FORMAT', `${store.url}/weights.bin: ${(e as Error).message}`);
    }
  } finally {
    await store.close();
  }
}
