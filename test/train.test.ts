/**
 * cirrus.train end to end: real worker processes (local launcher), the embedded S3 server under a
 * temporary CIRRUS_HOME, and the parameter-server, memcached and s3 channels.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateHiggsLike } from '../client/datasets/generate.js';
import { loadModel, saveModel } from '../client/model-io.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { openStore } from '../client/store.js';
import { train } from '../client/train.js';
import { applyOverrides, parseTrainParams } from '../client/train-params.js';
import { findMemcachedBinary } from '../channels/memcached-server.js';
import { IN_CI } from './support/servers.js';

let home: string;
const oldHome = process.env.CIRRUS_HOME;

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'cirrus-train-'));
  process.env.CIRRUS_HOME = join(home, '.cirrus');
  const file = join(home, 'higgs.csv');
  await generateHiggsLike({ rows: 12_000, seed: 3, file });
  await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: 1_500, seed: 1 });
});

after(() => {
  if (oldHome === undefined) delete process.env.CIRRUS_HOME;
  else process.env.CIRRUS_HOME = oldHome;
  rmSync(home, { recursive: true, force: true });
});

const base = { dataset: 'higgs', model: 'dense-lr', epochs: 3, batchSize: 64, optimizer: 'momentum', learningRate: 0.05, seed: 5 } as const;

test('2 workers over the parameter server: history per epoch, metrics, cost, a usable model', async () => {
  const epochs: number[] = [];
  const r = await train({ ...base, workers: 2 }, { onEpochEnd: (e) => void epochs.push(e) });
  assert.deepEqual(epochs, [1, 2, 3]);
  assert.equal(r.history.length, 3);
  assert.deepEqual(r.history.map((h) => h.epoch), [1, 2, 3]);
  for (const h of r.history) {
    assert.ok(h.testAccuracy > 0.6 && h.testAccuracy <= 1, `accuracy ${h.testAccuracy}`);
    assert.ok(Number.isFinite(h.trainLoss) && h.trainLoss > 0);
    assert.ok(h.testAuc! > 0.6);
  }
  assert.ok(r.history[1]!.wallSeconds >= r.history[0]!.wallSeconds);
  assert.equal(r.metrics.epochs, 3);
  assert.equal(r.metrics.testAccuracy, r.history[2]!.testAccuracy);
  assert.ok(r.metrics.steps > 0);
  assert.ok(r.cost.usd > 0 && r.cost.workerGbSeconds > 0);
  assert.equal(r.cost.invocations, 2);
  assert.ok(r.cost.channelRequests > 0);
  const dir = join(home, 'model');
  await saveModel(r.model, dir);
  const loaded = await loadModel(dir);
  assert.deepEqual(Array.from(loaded.weights), Array.from(r.model.weights));
  const p = loaded.predictRows([Array.from({ length: 28 }, () => 0.5)]);
  assert.equal(p.length, 1);
  assert.ok(p[0]! > 0 && p[0]! < 1);
});

test('the same run over s3 and memcached gives bit-identical weights (GA-SGD/BSP is deterministic)', async (t) => {
  const ps = await train({ ...base, workers: 3 });
  const s3 = await train({ ...base, workers: 3, channel: 's3', collective: 'scatterreduce' });
  assert.deepEqual(Array.from(s3.model.weights), Array.from(ps.model.weights));
  // Nothing of either job is left in the store.
  const handle = await openStore();
  try {
    assert.deepEqual(await handle.datasets.store.list('job/'), []);
    assert.deepEqual(await handle.datasets.store.list('channel/'), []);
  } finally {
    await handle.close();
  }
  if (!findMemcachedBinary()) {
    if (IN_CI) assert.fail('memcached is required under CI=true');
    return t.skip('memcached is not installed');
  }
  const mc = await train({ ...base, workers: 3, channel: 'memcached' });
  assert.deepEqual(Array.from(mc.model.weights), Array.from(ps.model.weights));
});

test('a run cut by the local launcher time limit resumes in later generations and ends where an unlimited run ends', async () => {
  const params = { ...base, workers: 2, epochs: 20, batchSize: 4, optimizer: 'adam' as const, learningRate: 0.01 };
  const unlimited = await train(params);
  const generations: number[] = [];
  const limited = await train({ ...params, launcher: { type: 'local', timeoutS: 4 }, checkpointMarginMs: 1_500 }, { onGeneration: (g) => void generations.push(g) });
  assert.ok(limited.metrics.generations >= 2, `expected a relaunch, got ${limited.metrics.generations} generation(s)`);
  assert.deepEqual(generations, Array.from({ length: limited.metrics.generations }, (_, g) => g));
  assert.deepEqual(Array.from(limited.model.weights), Array.from(unlimited.model.weights));
  assert.equal(limited.metrics.testAccuracy, unlimited.metrics.testAccuracy);
});

test('ASP and MA-SGD converge', async () => {
  const asp = await train({ ...base, workers: 2, sync: 'asp' });
  assert.ok(asp.metrics.testAccuracy > 0.7, `ASP accuracy ${asp.metrics.testAccuracy}`);
  const ma = await train({ ...base, workers: 2, algorithm: 'ma-sgd', averageEvery: 10 });
  assert.ok(ma.metrics.testAccuracy > 0.7, `MA-SGD accuracy ${ma.metrics.testAccuracy}`);
});

test('bad params, misfits and unknown datasets fail before any worker starts, naming the field', async () => {
  assert.throws(() => parseTrainParams({ ...base, learningRate: -1 }), { code: 'TRAIN_PARAMS', message: 'params.learningRate: expected a learning rate > 0' });
  assert.throws(() => parseTrainParams({ ...base, workers: 0 }), { code: 'TRAIN_PARAMS', message: 'params.workers: expected at least 1 worker' });
  assert.throws(() => parseTrainParams({ ...base, model: 'forest' }), { code: 'TRAIN_PARAMS', message: /^params\.model: / });
  assert.throws(() => parseTrainParams({ ...base, lr: 0.1 }), { code: 'TRAIN_PARAMS', message: /^params: unknown parameter\(s\) 'lr'; allowed: / });
  await assert.rejects(train({ ...base, model: 'softmax' }), { code: 'TRAIN_MISFIT', message: /softmax does not fit dataset 'higgs' \(dense, binary\): it needs a multiclass dataset/ });
  await assert.rejects(train({ ...base, model: 'sparse-lr' }), { code: 'TRAIN_MISFIT', message: /sparse-lr takes sparse data/ });
  await assert.rejects(train({ ...base, dataset: 'nope' }), { code: 'DATASET_NOT_FOUND', message: /dataset 'nope' does not exist/ });
  await assert.rejects(train({ ...base, workers: 9 }), { code: 'TRAIN_PARAMS', message: /params\.workers: 9 workers but dataset 'higgs' has only 8 train shards/ });
  await assert.rejects(train({ ...base, channel: 'memory://' }), { code: 'TRAIN_CHANNEL' });
  assert.deepEqual(applyOverrides({ a: 1, launcher: { type: 'local' } }, ['a=2', 'launcher.timeoutS=30', 'model=softmax']), { a: 2, launcher: { type: 'local', timeoutS: 30 }, model: 'softmax' });
});

