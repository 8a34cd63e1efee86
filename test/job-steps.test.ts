/**
 * The steps train() is made of (client/job/), each on its own: the plan refuses what cannot run
 * naming the field, the evaluator over test shards matches one whole-batch evaluation, the model
 * watch evaluates published models in order and settles on the final one, the account sums its
 * terms, the cleanup undoes in reverse order past failures, and a failure maps to a record status.
 * Real parts: a file:// object store with a preprocessed dataset, the in-process memory channel.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createModel } from '../algorithms/index.js';
import { Evaluator } from '../algorithms/metrics.js';
import { evaluateShards, shardRows } from '../algorithms/shard-evaluation.js';
import { MemoryChannel, emptyStats, packMessage, type DatasetManifest, type DenseShard } from '../channels/index.js';
import { epochModelKey, finalModelKey, modelLatestKey, progressKey } from '../channels/job-keys.js';
import { loadPrices, trainCost } from '../client/cost.js';
import { generateHiggsLike } from '../client/datasets/higgs.js';
import { accountCost, cpuAccount, estimateCost } from '../client/job/account.js';
import { Cleanup } from '../client/job/cleanup.js';
import { loadTestShards, ModelWatch, type WatchContext } from '../client/job/evaluate.js';
import { checkTestSplit, checkWorkers, modelSpecFor, planJob } from '../client/job/plan.js';
import { failureUpdate } from '../client/job/record.js';
import { abortReason } from '../client/job/run.js';
import type { WorkerResult } from '../client/launchers/types.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { openStore, type StoreHandle } from '../client/store.js';
import { TrainError, parseTrainParams } from '../client/train-params.js';

let dir: string;
let store: StoreHandle;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cirrus-job-steps-'));
  const file = join(dir, 'higgs.csv');
  await generateHiggsLike({ rows: 1_000, seed: 7, file });
  const url = `file://${join(dir, 'store')}`;
  await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', rowsPerShard: 200, split: 0.8, seed: 1, store: url });
  store = await openStore(url);
});

after(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const params = (over: Record<string, unknown> = {}) => parseTrainParams({ dataset: 'higgs', model: 'dense-lr', workers: 2, epochs: 2, ...over });

test('plan: a dataset that fits gives the spec and model; misfits and too many workers are refused naming the field', async () => {
  const plan = await planJob(params(), store);
  assert.equal(plan.manifest.name, 'higgs');
  assert.equal(plan.manifest.train.shards.length, 4);
  assert.deepEqual(plan.spec, { type: 'dense-lr', features: plan.manifest.features, classes: 2 });
  assert.equal(plan.model.size, plan.manifest.features + 1);
  await assert.rejects(planJob(params({ model: 'softmax' }), store), (e: unknown) => {
    assert.ok(e instanceof TrainError);
    assert.equal(e.code, 'TRAIN_MISFIT');
    assert.match(e.message, /^params\.model: softmax does not fit dataset 'higgs' \(dense, binary\): it needs a multiclass dataset/);
    return true;
  });
  await assert.rejects(planJob(params({ workers: 5 }), store), {
    code: 'TRAIN_PARAMS',
    message: "params.workers: 5 workers but dataset 'higgs' has only 4 train shards; use at most 4 workers or re-shard with a smaller --shard-rows",
  });
  await assert.rejects(planJob(params({ dataset: 'absent' }), store), { code: 'DATASET_NOT_FOUND' });
});

test('plan: the checks that need the manifest, one by one', () => {
  const m = { name: 'd', kind: 'sparse', task: 'binary', features: 10, classes: 2, trainRows: 3, train: { rows: 3, shards: [{}, {}] }, testRows: 0 } as unknown as DatasetManifest;
  assert.throws(() => modelSpecFor(params({ model: 'dense-lr' }), m), { code: 'TRAIN_MISFIT', message: /^params\.model: dense-lr does not fit dataset 'd' \(sparse, binary\): dense-lr takes dense data/ });
  assert.throws(() => modelSpecFor(params({ model: 'mf' }), m), { code: 'TRAIN_MISFIT', message: /matrix factorization takes a ratings dataset/ });
  assert.deepEqual(modelSpecFor(params({ model: 'svm' }), m), { type: 'svm', features: 10, classes: 2 });
  const ratings = { ...m, kind: 'ratings', task: 'regression', users: 4, items: 6 } as DatasetManifest;
  assert.deepEqual(modelSpecFor(params({ model: 'mf', factors: 3, l2: 0.01 }), ratings), { type: 'mf', features: 10, classes: 2, users: 4, items: 6, rank: 3, reg: 0.01 });
  assert.throws(() => modelSpecFor(params({ model: 'svm' }), ratings), { code: 'TRAIN_MISFIT', message: /ratings datasets need the matrix-factorization model 'mf'/ });
  assert.throws(() => checkWorkers(params({ workers: 2, launcher: { type: 'local', concurrency: 1 } }), m), {
    code: 'TRAIN_PARAMS',
    message: 'params.launcher.concurrency: BSP needs all 2 workers running at once, but concurrency is 1',
  });
  assert.doesNotThrow(() => checkWorkers(params({ workers: 2, sync: 'asp', launcher: { type: 'local', concurrency: 1 } }), m));
  assert.throws(() => checkTestSplit(params({ stop: { targetAccuracy: 0.9 } }), m), { code: 'TRAIN_PARAMS', message: /^params\.stop\.targetAccuracy: dataset 'd' has no test rows/ });
  assert.doesNotThrow(() => checkTestSplit(params({ stop: { targetAccuracy: 0.9 } }), { ...m, testRows: 1 }));
});

/** A dense shard of `rows` rows and 3 columns with labels alternating 0/1. */
function denseShard(rows: number): DenseShard {
  const x = Float32Array.from({ length: rows * 3 }, (_, i) => Math.sin(i * 0.37));
  const labels = Float32Array.from({ length: rows }, (_, i) => i % 2);
  return { kind: 'dense', rows, cols: 3, labels, x } as DenseShard;
}

test('evaluate: over shards in slices gives what one whole-batch evaluation gives; the test split is read whole', async () => {
  const model = createModel({ type: 'dense-lr', features: 3, classes: 2 });
  const weights = Float32Array.from([0.5, -1, 0.25, 0.1]);
  const shards = [denseShard(10_000), denseShard(7)];
  const whole = new Evaluator();
  for (const s of shards) whole.addBatch(model, shardRows(s, 0, s.rows), weights);
  const expected = whole.report();
  const sliced = evaluateShards(model, weights, shards);
  const small = evaluateShards(model, weights, shards, 333);
  assert.equal(sliced.rows, 10_007);
  assert.equal(sliced.accuracy, expected.accuracy);
  assert.ok(Math.abs(sliced.loss - expected.loss) < 1e-9, `${sliced.loss} vs ${expected.loss}`);
  assert.equal(sliced.auc, expected.auc);
  assert.equal(small.accuracy, expected.accuracy);
  assert.ok(Math.abs(small.loss - expected.loss) < 1e-9);
  // A slice is a view of its rows.
  const b = shardRows(shards[0]!, 5, 8);
  assert.equal(b.rows, 3);
  assert.deepEqual(Array.from(b.labels), [1, 0, 1]);
  assert.equal(b.kind === 'dense' && b.x[0], shards[0]!.x[15]);

  const manifest = await store.datasets.manifest('higgs');
  const test = await loadTestShards(store, manifest);
  assert.equal(test.length, manifest.test.shards.length);
  assert.equal(test.reduce((s, t) => s + t.rows, 0), manifest.testRows);
});

function watchOn(channel: MemoryChannel, over: Partial<WatchContext> = {}) {
  const saves: Array<{ status: string; history?: unknown[] }> = [];
  const epochEnds: number[] = [];
  const model = createModel({ type: 'dense-lr', features: 3, classes: 2 });
  const watch = new ModelWatch({
    params: params({ stop: { targetAccuracy: 0.99 } }),
    jobId: 'watch-job',
    channel,
    model,
    testShards: [denseShard(50)],
    started: Date.now(),
    record: { save: (u) => void saves.push(u) },
    callbacks: { onEpochEnd: (e) => void epochEnds.push(e) },
    aborted: () => undefined,
    ...over,
  });
  return { watch, saves, epochEnds, model };
}

test('evaluate: the watch evaluates published epochs in order, deletes them, and settles on the final model', async () => {
  const channel = new MemoryChannel();
  const { watch, saves, epochEnds, model } = watchOn(channel);
  const w1 = new Float32Array(model.size);
  const w2 = Float32Array.from([0.5, -1, 0.25, 0.1]);
  await channel.put(epochModelKey('watch-job', 2), packMessage({ weights: w2, step: 20, epoch: 2, trainLoss: 0.4 }));
  await watch.epochs();
  assert.equal(watch.history.length, 0, 'epoch 2 waits for epoch 1');
  await channel.put(epochModelKey('watch-job', 1), packMessage({ weights: w1, step: 10, epoch: 1, trainLoss: 0.7 }));
  await watch.epochs();
  assert.deepEqual(watch.history.map((h) => [h.epoch, h.step, h.trainLoss]), [[1, 10, 0.7], [2, 20, 0.4]]);
  assert.deepEqual(epochEnds, [1, 2]);
  assert.equal(saves.length, 2);
  assert.equal(await channel.get(epochModelKey('watch-job', 1)), undefined);
  // All-zero weights score 0.5 for every row: log-loss ln 2, and half the alternating labels right.
  assert.ok(Math.abs(watch.history[0]!.testLoss - Math.LN2) < 1e-6);
  assert.equal(watch.history[0]!.testAccuracy, 0.5);
  assert.equal(watch.stopReason, undefined);

  // The final model rank 0 wrote wins; its evaluation ends the history with the ranks' mean train loss.
  await channel.put(finalModelKey('watch-job'), packMessage({ weights: w2, step: 25, epoch: 2 }));
  await channel.put(progressKey('watch-job', 0), packMessage({ trainLoss: 0.3 }));
  await channel.put(progressKey('watch-job', 1), packMessage({ trainLoss: 0.5 }));
  const final = await watch.settle(undefined);
  assert.equal(final.step, 25);
  const metrics = await watch.metrics(final, [{ status: 'ok', durationMs: 1, coldStartMs: 0, value: { updateBytes: 100 } }, { status: 'ok', durationMs: 1, coldStartMs: 0, value: { updateBytes: 28 } }], 3);
  assert.equal(watch.history.length, 3);
  assert.ok(Math.abs(watch.history[2]!.trainLoss - 0.4) < 1e-12);
  assert.equal(metrics.trainLoss, watch.history[2]!.trainLoss);
  assert.equal(metrics.steps, 25);
  assert.equal(metrics.epochs, 2);
  assert.equal(metrics.generations, 3);
  assert.equal(metrics.updateBytes, 128);
  assert.equal(metrics.testAccuracy, watch.history[2]!.testAccuracy);
  await channel.close();
});

test('evaluate: a stop target fires on the evaluation that reaches it; no model at all fails, an abort stops', async () => {
  const channel = new MemoryChannel();
  const { watch, model } = watchOn(channel, { params: params({ stop: { targetLoss: 0.7 }, evaluateEvery: 0.001 }) });
  await channel.put(modelLatestKey('watch-job'), packMessage({ weights: new Float32Array(model.size), step: 3, epoch: 0 }));
  await new Promise((r) => setTimeout(r, 5));
  await watch.latest(false);
  assert.equal(watch.history.length, 1);
  assert.equal(watch.stopReason, 'reached the target loss 0.7');
  await watch.latest(true);
  assert.equal(watch.history.length, 1, 'the same step is not evaluated twice');
  await channel.close();

  const empty = new MemoryChannel();
  await assert.rejects(watchOn(empty).watch.settle(undefined), { code: 'TRAIN_WORKER_FAILED', message: 'job watch-job: the workers ended without publishing a model' });
  await assert.rejects(watchOn(empty).watch.settle('aborted: enough'), { code: 'TRAIN_STOPPED', message: 'job watch-job: aborted: enough before any model was published' });
  await empty.close();
  const ac = new AbortController();
  assert.equal(abortReason(ac.signal), undefined);
  ac.abort(new Error('user pressed stop'));
  assert.equal(abortReason(ac.signal), 'aborted: user pressed stop');
});

test('account: the bill sums workers, channel and dataset reads; the CPU-seconds sum workers, client and servers', () => {
  const prices = loadPrices();
  const stats = emptyStats();
  stats.put = { requests: 30, bytes: 3000 };
  stats.get = { requests: 50, bytes: 5000 };
  const results: WorkerResult[] = [
    { status: 'ok', durationMs: 1200.5, coldStartMs: 0, cpuSeconds: 1.5, value: { status: 'done', epoch: 1, steps: 4, trainLoss: 1, channelStats: stats, shardReads: 3 } },
    { status: 'ok', durationMs: 800, coldStartMs: 0, cpuSeconds: 0.5, value: { status: 'done', epoch: 1, steps: 4, trainLoss: 1, channelStats: stats, shardReads: 2 } },
    { status: 'killed', durationMs: 10, coldStartMs: 0 },
  ];
  const p = params({ channel: 's3', launcher: { type: 'local', memoryMb: 1024 } });
  const manifest = { test: { rows: 10, shards: [{}, {}] } } as unknown as DatasetManifest;
  const cost = estimateCost({ params: p, manifest, results, wallSeconds: 4, channelKind: 's3' }, prices);
  const doubled = emptyStats();
  doubled.put = { requests: 60, bytes: 6000 };
  doubled.get = { requests: 100, bytes: 10000 };
  assert.deepEqual(cost, trainCost({ workerDurationsMs: [1200.5, 800, 10], memoryMb: 1024, channelKind: 's3', channelStats: doubled, wallSeconds: 4, storeGets: 3 + 2 + 2 }, prices));
  assert.equal(cost.storeGets, 7);
  assert.equal(cost.invocations, 3);
  assert.equal(cost.channelRequests, 160);
  assert.ok(Math.abs(cost.usd - (cost.workerUsd + cost.channelUsd + cost.storeUsd)) < 1e-15);

  const cpu = cpuAccount(results, 10, [41, 42, 43], { own: () => 12.25, of: (pid) => (pid === 43 ? undefined : pid / 10) });
  assert.deepEqual(cpu, { workerCpuSeconds: 2, clientCpuSeconds: 2.25, serverCpuSeconds: 4.1 + 4.2, cpuSeconds: 2 + 2.25 + 4.1 + 4.2 });
  const all = accountCost({ params: p, manifest, results, wallSeconds: 4, channelKind: 's3', cpuAtStart: 0, serverPids: [] }, prices);
  assert.equal(all.usd, cost.usd);
  assert.equal(all.workerCpuSeconds, 2);
  assert.equal(all.serverCpuSeconds, 0);
  assert.ok(all.clientCpuSeconds! > 0);
});

test('clean up: undos run newest first, each once, past one that fails; a failure maps to a record status', async () => {
  const order: string[] = [];
  const cleanup = new Cleanup();
  cleanup.add(async () => void order.push('store'));
  cleanup.add(async () => {
    order.push('channel');
    throw new Error('already closed');
  });
  cleanup.add(() => {
    order.push('launcher');
    throw new Error('thrown before any promise');
  });
  await cleanup.run();
  await cleanup.run();
  assert.deepEqual(order, ['launcher', 'channel', 'store']);

  assert.deepEqual(failureUpdate(new TrainError('TRAIN_STOPPED', 'stopped')), { status: 'stopped', error: 'stopped', endReason: 'TRAIN_STOPPED' });
  assert.deepEqual(failureUpdate(new TrainError('TRAIN_DIVERGED', 'nan')), { status: 'diverged', error: 'nan', endReason: 'TRAIN_DIVERGED' });
  assert.deepEqual(failureUpdate(Object.assign(new Error('gone'), { code: 'DATASET_NOT_FOUND' })), { status: 'failed', error: 'gone', endReason: 'DATASET_NOT_FOUND' });
  assert.deepEqual(failureUpdate(new Error('plain')), { status: 'failed', error: 'plain', endReason: 'error' });
});
