import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { ModelSpec, SparseBatch } from '../algorithms/model.js';
import { createModel, createRng } from '../algorithms/index.js';
import { TrainedModel } from '../client/model-io.js';
import { exportTfjs, exportTfjsModelJSON, MAX_TFJS_FEATURES, TfjsExportError, type TfjsModelJson } from '../client/tfjs-export.js';

let dir = '';

before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'cirrus-tfjs-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** init(seed) plus noise, so no weight (LR / softmax start at zero) is trivially zero. */
function randomModel(spec: ModelSpec, seed: number): TrainedModel {
  const w = createModel(spec, { kernels: 'js' }).init(seed);
  const rng = createRng(seed + 1);
  for (let i = 0; i < w.length; i++) w[i] += 0.1 * rng.normal();
  return new TrainedModel(spec, w);
}

function randomRows(rows: number, cols: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < x.length; i++) x[i] = rng.uniform();
  return x;
}

async function tfPredict(m: tf.LayersModel, x: Float32Array, rows: number, cols: number): Promise<Float32Array> {
  const input = tf.tensor2d(x, [rows, cols]);
  const out = m.predict(input) as tf.Tensor;
  const data = (await out.data()) as Float32Array;
  input.dispose();
  out.dispose();
  return data;
}

function assertClose(actual: Float32Array, expected: Float32Array, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: tfjs ${actual[i]} vs ours ${expected[i]}`);
  }
}

function loadFromMemory(model: TrainedModel): Promise<tf.LayersModel> {
  const { modelJson, weightData } = exportTfjsModelJSON(model);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0].weights, weightData }));
}

/** A minimal IOHandler reading the two files exportTfjs wrote, as a server would serve them. */
function fileHandler(target: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(await readFile(join(target, 'model.json'), 'utf8')) as TfjsModelJson;
      assert.equal(json.weightsManifest.length, 1);
      const bytes = await readFile(join(target, json.weightsManifest[0].paths[0]));
      const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
      return { modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData, format: json.format, generatedBy: json.generatedBy, convertedBy: json.convertedBy };
    },
  };
}

const ROWS = 7;

test('dense-lr: Dense(1, sigmoid) predicts P(y=1) like ours', async () => {
  const spec: ModelSpec = { type: 'dense-lr', features: 20, classes: 2 };
  const model = randomModel(spec, 1);
  const x = randomRows(ROWS, 20, 2);
  const ours = model.predictPrepared({ kind: 'dense', rows: ROWS, cols: 20, labels: new Float32Array(ROWS), x });
  const m = await loadFromMemory(model);
  assert.deepEqual(m.outputs[0].shape, [null, 1]);
  assertClose(await tfPredict(m, x, ROWS, 20), ours, 1e-5, 'dense-lr');
  m.dispose();
});

test('softmax: transposed kernel and per-class bias', async () => {
  const spec: ModelSpec = { type: 'softmax', features: 30, classes: 5 };
  const model = randomModel(spec, 3);
  const x = randomRows(ROWS, 30, 4);
  const ours = model.predictPrepared({ kind: 'dense', rows: ROWS, cols: 30, labels: new Float32Array(ROWS), x });
  const m = await loadFromMemory(model);
  assertClose(await tfPredict(m, x, ROWS, 30), ours, 1e-5, 'softmax');
  m.dispose();
});

test('mlp 784-16-10: manifest order and shapes, in-memory and on-disk predictions', async () => {
  const spec: ModelSpec = { type: 'mlp', features: 784, classes: 10, hidden: [16] };
  const model = randomModel(spec, 5);
  const { modelJson, weightData } = exportTfjsModelJSON(model);
  assert.equal(modelJson.format, 'layers-model');
  assert.equal(modelJson.generatedBy, 'cirrus-ts');
  assert.equal(modelJson.convertedBy, null);
  assert.deepEqual(
    modelJson.modelTopology.config.layers.map((l) => [l.config.units, l.config.activation]),
    [[16, 'relu'], [10, 'softmax']],
  );
  assert.deepEqual(modelJson.weightsManifest[0].paths, ['weights.bin']);
  assert.deepEqual(
    modelJson.weightsManifest[0].weights.map((w) => [w.name, w.shape, w.dtype]),
    [['dense_1/kernel', [784, 16], 'float32'], ['dense_1/bias', [16], 'float32'], ['dense_2/kernel', [16, 10], 'float32'], ['dense_2/bias', [10], 'float32']],
  );
  // Same parameter count as ours, 4 bytes each.
  assert.equal(weightData.byteLength, 4 * model.weights.length);

  const x = randomRows(ROWS, 784, 6);
  const ours = model.predictPrepared({ kind: 'dense', rows: ROWS, cols: 784, labels: new Float32Array(ROWS), x });
  const mem = await loadFromMemory(model);
  assertClose(await tfPredict(mem, x, ROWS, 784), ours, 1e-5, 'mlp in memory');
  mem.dispose();

  const target = join(dir, 'mlp');
  await exportTfjs(model, target);
  const disk = await tf.loadLayersModel(fileHandler(target));
  assertClose(await tfPredict(disk, x, ROWS, 784), ours, 1e-5, 'mlp from files');
  // The loaded kernel is exactly our W_0 transposed: [in, out][i][o] = W_0[o][i].
  const k0 = (await disk.layers[0].getWeights()[0].data()) as Float32Array;
  assert.equal(k0[3 * 16 + 5], model.weights[5 * 784 + 3]);
  disk.dispose();
});

test('mlp with two hidden layers loads from files', async () => {
  const spec: ModelSpec = { type: 'mlp', features: 12, classes: 3, hidden: [8, 6] };
  const model = randomModel(spec, 7);
  const target = join(dir, 'mlp2');
  await exportTfjs(model, target);
  const x = randomRows(ROWS, 12, 8);
  const ours = model.predictPrepared({ kind: 'dense', rows: ROWS, cols: 12, labels: new Float32Array(ROWS), x });
  const m = await tf.loadLayersModel(fileHandler(target));
  assertClose(await tfPredict(m, x, ROWS, 12), ours, 1e-5, 'mlp2');
  m.dispose();
});

test('svm exports the margin: sigmoid(tfjs output) equals our pseudo-probability', async () => {
  const spec: ModelSpec = { type: 'svm', features: 10, classes: 2 };
  const model = randomModel(spec, 9);
  const { modelJson } = exportTfjsModelJSON(model);
  assert.equal(modelJson.modelTopology.config.layers[0].config.activation, 'linear');
  const x = randomRows(ROWS, 10, 10);
  const ours = model.predictPrepared({ kind: 'dense', rows: ROWS, cols: 10, labels: new Float32Array(ROWS), x });
  const m = await loadFromMemory(model);
  const margin = await tfPredict(m, x, ROWS, 10);
  assertClose(margin.map((z) => 1 / (1 + Math.exp(-z))), ours, 1e-5, 'svm');
  m.dispose();
});

test('sparse-lr exports a dense-input model equal to ours on the same rows', async () => {
  const F = 16;
  const spec: ModelSpec = { type: 'sparse-lr', features: F, classes: 2 };
  const model = randomModel(spec, 11);
  const x = randomRows(ROWS, F, 12);
  const indptr = new Uint32Array(ROWS + 1);
  const indices = new Uint32Array(ROWS * F);
  for (let r = 0; r < ROWS; r++) {
    indptr[r + 1] = (r + 1) * F;
    for (let i = 0; i < F; i++) indices[r * F + i] = i;
  }
  const batch: SparseBatch = { kind: 'sparse', rows: ROWS, cols: F, labels: new Float32Array(ROWS), indptr, indices, values: x };
  const m = await loadFromMemory(model);
  assertClose(await tfPredict(m, x, ROWS, F), model.predictPrepared(batch), 1e-5, 'sparse-lr');
  m.dispose();
});

test('too many features for a dense tfjs input is a typed error', () => {
  const spec: ModelSpec = { type: 'sparse-lr', features: MAX_TFJS_FEATURES + 1, classes: 2 };
  const model = new TrainedModel(spec, new Float32Array(MAX_TFJS_FEATURES + 2));
  assert.throws(() => exportTfjsModelJSON(model), (e: unknown) => e instanceof TfjsExportError && e.code === 'TFJS_EXPORT_TOO_LARGE');
});
