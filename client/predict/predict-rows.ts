/**
 * Predictions from raw rows: prepare (the model's pipeline) -> class probabilities -> labels.
 * Binary models give P(class 1); the probabilities per row are always one per class. A k-means
 * model gives cluster ids instead (as labels and classes, with no probabilities).
 */
import type { Batch, EvalResult } from '../../algorithms/index.js';
import type { InputPipeline } from './pipeline.js';
import { RowPreparer, type RawRow } from './prepare.js';

/** What predict needs of a trained model (kept structural so this module does not import model-io). */
export interface PredictingModel {
  readonly spec: { type: string; classes: number };
  predictPrepared(batch: Batch): Float32Array;
  evaluate(batch: Batch): EvalResult;
}

export interface Prediction {
  /** Each row's predicted label: its class name when the labels had names, else the class index. */
  labels: Array<string | number>;
  /** Each row's predicted class index. */
  classes: number[];
  /** Each row's probability per class (binary: [P(0), P(1)]). */
  probabilities: number[][];
}

export function isBinaryModel(model: PredictingModel): boolean {
  return model.spec.type !== 'softmax' && model.spec.type !== 'mlp';
}

/** Whether the model assigns clusters (k-means) rather than classes. */
export function isClusterModel(model: PredictingModel): boolean {
  return model.spec.type === 'kmeans';
}

/** Probabilities (flat, as the model gives them) -> per-row classes and probabilities. */
export function toPrediction(model: PredictingModel, pipeline: InputPipeline, rows: number, flat: Float32Array): Prediction {
  const out: Prediction = { labels: [], classes: [], probabilities: [] };
  if (isClusterModel(model)) {
    // k-means gives each row its cluster id (0..k-1): no class names, no probabilities.
    for (let i = 0; i < rows; i++) {
      out.classes.push(flat[i]!);
      out.labels.push(flat[i]!);
      out.probabilities.push([]);
    }
    return out;
  }
  const binary = isBinaryModel(model);
  const C = binary ? 2 : model.spec.classes;
  for (let i = 0; i < rows; i++) {
    let probs: number[];
    let cls: number;
    if (binary) {
      const p = flat[i]!;
      probs = [1 - p, p];
      cls = p > 0.5 ? 1 : 0;
    } else {
      probs = Array.from(flat.subarray(i * C, (i + 1) * C));
      cls = 0;
      for (let c = 1; c < C; c++) if (probs[c]! > probs[cls]!) cls = c;
    }
    out.classes.push(cls);
    out.probabilities.push(probs);
    out.labels.push(pipeline.labelNames?.[cls] ?? cls);
  }
  return out;
}

export function predictRaw(model: PredictingModel, pipeline: InputPipeline, rows: readonly RawRow[]): Prediction {
  const { batch } = new RowPreparer(pipeline).prepare(rows);
  return toPrediction(model, pipeline, rows.length, model.predictPrepared(batch));
}
