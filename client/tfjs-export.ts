/**
 * Exports a TrainedModel as a tfjs Layers model (`model.json` + `weights.bin`) that
 * `tf.loadLayersModel` loads: a Sequential stack of Dense layers on a dense `features`-wide input.
 *
 * Layer mapping:
 * - dense-lr / sparse-lr: Dense(1, sigmoid): outputs P(y=1), same as TrainedModel.predict.
 * - svm: Dense(1, linear): outputs the MARGIN z = w.x + b. Our predict() returns sigmoid(z), a
 *   pseudo-probability only; the margin is the honest SVM output (z > 0 means positive).
 * - softmax: Dense(classes, softmax).
 * - mlp: Dense(hidden_i, relu) per hidden layer, then Dense(classes, softmax).
 *
 * Our layouts store each layer as [out, in] rows (row o = weights into unit o); tfjs Dense kernels
 * are [in, out], so kernels are transposed here. The linear binary models' [w.., bias] is already a
 * [F, 1] column followed by the bias.
 *
 * Size choice: every exported model takes DENSE input in tfjs, so models with more than
 * MAX_TFJS_FEATURES (2^22) input features (typically sparse-lr on hashed features) are refused
 * with TfjsExportError('TFJS_EXPORT_TOO_LARGE'): each predicted row would be a 16+ MB tensor.
 *
 * This module does not import tfjs: it only builds JSON and bytes, so the CLI can use it cheaply.
 */
import type { ModelSpec } from '../algorithms/index.js';
import { openObjectStore } from '../channels/index.js';
import { CirrusError } from '../paramserver/index.js';
import type { TrainedModel } from './model-io.js';
import { PREPROCESSING_FILE, preprocessingFor } from './predict/tfjs-preprocessing.js';

/** Widest dense input we export (see the header comment). */
export const MAX_TFJS_FEATURES = 2 ** 22;

export type TfjsExportErrorCode = 'TFJS_EXPORT_TOO_LARGE' | 'TFJS_EXPORT_UNSUPPORTED';

export class TfjsExportError extends CirrusError<TfjsExportErrorCode> {}

type TfjsActivation = 'linear' | 'sigmoid' | 'softmax' | 'relu';

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

interface TfjsDenseLayer {
  class_name: 'Dense';
  config: Record<string, unknown> & { name: string; units: number; activation: TfjsActivation };
}

export interface TfjsModelTopology {
  class_name: 'Sequential';
  config: { name: string; layers: TfjsDenseLayer[] };
  keras_version: string;
  backend: string;
}

export interface TfjsModelJson {
  format: 'layers-model';
  generatedBy: 'cirrus-ts';
  convertedBy: null;
  modelTopology: TfjsModelTopology;
  weightsManifest: { paths: string[]; weights: TfjsWeightSpec[] }[];
}

interface TfjsExport {
  modelJson: TfjsModelJson;
  /** Little-endian float32 tensors in weightsManifest order. */
  weightData: ArrayBuffer;
}

const TFJS_WEIGHTS_FILE = 'weights.bin';

/** One Dense layer: kernel [inDim, units] row-major, bias [units]. */
interface DenseParams {
  units: number;
  inDim: number;
  activation: TfjsActivation;
  kernel: Float32Array;
  bias: Float32Array;
}

/** Copies an [out, in] row-major block starting at `off` into an [in, out] kernel. */
function transposed(w: Float32Array, off: number, out: number, inDim: number): Float32Array {
  const k = new Float32Array(inDim * out);
  for (let o = 0; o < out; o++) {
    const row = off + o * inDim;
    for (let i = 0; i < inDim; i++) k[i * out + o] = w[row + i];
  }
  return k;
}

function denseLayers(spec: ModelSpec, w: Float32Array): DenseParams[] {
  const F = spec.features;
  switch (spec.type) {
    case 'dense-lr':
    case 'sparse-lr':
    case 'svm':
      // [w_0 .. w_{F-1}, bias]: the first F values already form the [F, 1] kernel.
      return [{ units: 1, inDim: F, activation: spec.type === 'svm' ? 'linear' : 'sigmoid', kernel: w.slice(0, F), bias: w.slice(F, F + 1) }];
    case 'softmax': {
      // Rows of (F + 1) with the bias last: the kernel is the transpose of the first F columns.
      const C = spec.classes, ld = F + 1;
      const kernel = new Float32Array(F * C);
      const bias = new Float32Array(C);
      for (let c = 0; c < C; c++) {
        for (let i = 0; i < F; i++) kernel[i * C + c] = w[c * ld + i];
        bias[c] = w[c * ld + F];
      }
      return [{ units: C, inDim: F, activation: 'softmax', kernel, bias }];
    }
    case 'mlp': {
      const dims = [F, ...(spec.hidden ?? []), spec.classes];
      const layers: DenseParams[] = [];
      let off = 0;
      for (let l = 0; l + 1 < dims.length; l++) {
        const inDim = dims[l], out = dims[l + 1];
        const kernel = transposed(w, off, out, inDim);
        off += out * inDim;
        const bias = w.slice(off, off + out);
        off += out;
        layers.push({ units: out, inDim, activation: l + 2 < dims.length ? 'relu' : 'softmax', kernel, bias });
      }
      return layers;
    }
    default:
      throw new TfjsExportError('TFJS_EXPORT_UNSUPPORTED', `cannot export model type ${JSON.stringify((spec as { type: unknown }).type)} to tfjs`);
  }
}

function layerConfig(p: DenseParams, name: string, first: boolean): TfjsDenseLayer {
  const config: TfjsDenseLayer['config'] = {
    name,
    trainable: true,
    dtype: 'float32',
    units: p.units,
    activation: p.activation,
    use_bias: true,
    // Initializers are required by the deserializer; the loaded weights overwrite them.
    kernel_initializer: { class_name: 'Zeros', config: {} },
    bias_initializer: { class_name: 'Zeros', config: {} },
    kernel_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    kernel_constraint: null,
    bias_constraint: null,
  };
  // Only the first layer declares the input; Sequential infers the rest.
  if (first) config.batch_input_shape = [null, p.inDim];
  return { class_name: 'Dense', config };
}

/** Builds model.json and the weight bytes in memory. */
export function exportTfjsModelJSON(model: TrainedModel): TfjsExport {
  const { spec } = model;
  if (spec.features > MAX_TFJS_FEATURES) {
    throw new TfjsExportError(
      'TFJS_EXPORT_TOO_LARGE',
      `${spec.type} has ${spec.features} features; tfjs Dense layers take dense input, so exports are limited to ${MAX_TFJS_FEATURES} features`,
    );
  }
  const params = denseLayers(spec, model.weights);
  const layers: TfjsDenseLayer[] = [];
  const weights: TfjsWeightSpec[] = [];
  params.forEach((p, i) => {
    const name = `dense_${i + 1}`;
    layers.push(layerConfig(p, name, i === 0));
    // Names are '<layer>/<weight>': tfjs matches them to the layer variables' original names.
    weights.push({ name: `${name}/kernel`, shape: [p.inDim, p.units], dtype: 'float32' });
    weights.push({ name: `${name}/bias`, shape: [p.units], dtype: 'float32' });
  });
  const total = params.reduce((n, p) => n + p.kernel.length + p.bias.length, 0);
  const buf = new ArrayBuffer(total * 4);
  const view = new DataView(buf);
  let at = 0;
  // DataView pins little-endian regardless of the host, as the tfjs format requires.
  for (const p of params) {
    for (const arr of [p.kernel, p.bias]) {
      for (let i = 0; i < arr.length; i++, at += 4) view.setFloat32(at, arr[i], true);
    }
  }
  return {
    modelJson: {
      format: 'layers-model',
      generatedBy: 'cirrus-ts',
      convertedBy: null,
      modelTopology: { class_name: 'Sequential', config: { name: 'sequential_1', layers }, keras_version: 'tfjs-layers', backend: 'tensor_flow.js' },
      weightsManifest: [{ paths: [TFJS_WEIGHTS_FILE], weights }],
    },
    weightData: buf,
  };
}

/**
 * Writes model.json + weights.bin to a directory or object store target (as saveModel does), and
 * preprocessing.json when the model carries its input pipeline: preprocessForTfjs
 * (client/predict/tfjs-preprocessing.ts) applies it to raw rows, giving the tfjs model the input
 * the cirrus model would see.
 */
export async function exportTfjs(model: TrainedModel, target: string): Promise<void> {
  const { modelJson, weightData } = exportTfjsModelJSON(model);
  const store = await openObjectStore(target);
  try {
    await store.put(TFJS_WEIGHTS_FILE, new Uint8Array(weightData));
    if (model.pipeline) await store.put(PREPROCESSING_FILE, new TextEncoder().encode(JSON.stringify(preprocessingFor(model.pipeline), null, 1) + '\n'));
    // model.json last: a reader never finds a manifest without its weights.
    await store.put('model.json', new TextEncoder().encode(JSON.stringify(modelJson) + '\n'));
  } finally {
    await store.close();
  }
}
