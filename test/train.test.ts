/**
 * cirrus.train end to end: real worker processes (local launcher), the embedded S3 server under a
 * temporary CIRRUS_HOME, and the parameter-server, memcached and s3 channels.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateHiggsLike } from '../client/datasets/higgs.js';
import { loadModel, saveModel } from '../client/model-io.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { openStore } from '../client/store.js';
import { train } from '../client/train.js';
import { applyOverrides, parseTrainParams } from '../client/train-params.js';
import type { TrainCost } from '../client/cost.js';
import { LIST_PRICES, assertUsd } from './support/aws-prices.js';
import { memcachedMissing } from './support/servers.js';
import { skipOrFail } from './support/skip-or-fail.js';
import { burnerSource } from './support/burner.js';

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

/** The store's GETs at their list price, and the total as the sum of the three terms. */
function assertCostSums(c: TrainCost): void {
  assertUsd(c.storeUsd, (c.storeGets * LIST_PRICES.s3.getPer1000) / 1000, 'storeUsd');
  assertUsd(c.usd, c.workerUsd + c.channelUsd + c.storeUsd, 'usd');
}

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
  // Cost, term by term at the list prices: two Lambda invocations of 2048 MB billed in 1 ms steps,
  // the parameter server's instance for the run's wall time, and the dataset's shard reads.
  const c = r.cost;
  assert.equal(c.invocations, 2);
  assert.ok(Number.isInteger(c.workerBilledMs), `billed ms ${c.workerBilledMs}`);
  assert.ok(c.workerBilledMs >= c.workerSeconds * 1000 && c.workerBilledMs < c.workerSeconds * 1000 + 2, `billed ${c.workerBilledMs} ms for ${c.workerSeconds} s`);
  assertUsd(c.workerGbSeconds, (c.workerBilledMs / 1000) * 2, 'GB-seconds at 2 GB');
  assertUsd(c.workerUsd, c.workerGbSeconds * LIST_PRICES.lambda.gbSecond + (2 * LIST_PRICES.lambda.requestPer1M) / 1e6, 'workerUsd');
  assertUsd(c.channelUsd, (r.metrics.wallSeconds / 3600) * LIST_PRICES.ps.instanceHour, 'ps channelUsd');
  assert.ok(c.channelRequests > 0);
  // One generation whose shards fit the workers' cache: each of the 8 train shards is read once,
  // plus the client's read of the test split.
  const handle = await openStore();
  try {
    const m = await handle.datasets.manifest('higgs');
    assert.equal(m.train.shards.length, 8);
    assert.equal(c.storeGets, 8 + m.test.shards.length);
  } finally {
    await handle.close();
  }
  assertCostSums(c);
  const dir = join(home, 'model');
  await saveModel(r.model, dir);
  const loaded = await loadModel(dir);
  assert.deepEqual(Array.from(loaded.weights), Array.from(r.model.weights));
  const p = loaded.predictPreparedRows([Array.from({ length: 28 }, () => 0.5)]);
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
  // Each channel is billed its own way: S3 per request of each kind.
  const s3Requests = s3.cost.channelRequestsByKind;
  assert.ok(s3Requests.put > 0 && s3Requests.get > 0, JSON.stringify(s3Requests));
  assert.equal(s3.cost.channelRequests, s3Requests.put + s3Requests.get + s3Requests.list + s3Requests.delete);
  const { putPer1000, getPer1000, listPer1000, deletePer1000 } = LIST_PRICES.s3;
  assertUsd(s3.cost.channelUsd, (s3Requests.put * putPer1000 + s3Requests.get * getPer1000 + s3Requests.list * listPer1000 + s3Requests.delete * deletePer1000) / 1000, 's3 channelUsd');
  assertCostSums(s3.cost);
  if (skipOrFail(t, memcachedMissing())) return;
  const mc = await train({ ...base, workers: 3, channel: 'memcached' });
  assert.deepEqual(Array.from(mc.model.weights), Array.from(ps.model.weights));
  // memcached: the node's hourly price for the run's wall time.
  assertUsd(mc.cost.channelUsd, (mc.metrics.wallSeconds / 3600) * LIST_PRICES.elasticache.nodeHour, 'memcached channelUsd');
  assertCostSums(mc.cost);
});

test('a run cut by the local launcher time limit resumes in later generations and ends where an unlimited run ends, with both cores kept busy by another process', async () => {
  const params = { ...base, workers: 2, epochs: 10, batchSize: 4, optimizer: 'adam' as const, learningRate: 0.01 };
  const unlimited = await train(params);
  const generations: number[] = [];
  // Two spinning threads in another process: cold starts and steps slow down unpredictably, and a
  // generation may reach its time limit before its first checkpoint (it is then relaunched).
  const burner = spawn(process.execPath, ['-e', burnerSource()], { stdio: 'ignore' });
  let limited;
  try {
    limited = await train({ ...params, launcher: { type: 'local', timeoutS: 4 }, checkpointEvery: 1, maxAttempts: 10 }, { onGeneration: (g) => void generations.push(g) });
  } finally {
    burner.kill('SIGKILL');
  }
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

