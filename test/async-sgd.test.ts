/**
 * The async-sgd algorithm: the model on the parameter server, workers pulling and pushing only the
 * weights their batch touches. Worker loops in-process against a real in-process server (W ranks as
 * concurrent runTrain calls), and cirrus.train end to end with real worker processes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { DatasetManifest } from '../channels/datasets/manifest.js';
import { DatasetStore } from '../channels/datasets/store.js';
import { finalModelKey, psModelName } from '../channels/job-keys.js';
import { unpackMessage } from '../channels/messages.js';
import { openChannel } from '../channels/factory.js';
import { createModel, type ModelSpec } from '../algorithms/index.js';
import { ParamClient, startParamServer, type ParamServer } from '../paramserver/index.js';
import { parseWorkerEvent, runTrain, WorkerTrainError, type TrainEvent, type TrainResult } from '../worker/index.js';
import { train } from '../client/train.js';
import { parseTrainParams } from '../client/train-params.js';
import { criteoHome, type CriteoHome } from './support/criteo-home.js';
import { writeDataset } from './support/train-data.js';

let dir: string;
let storeUrl: string;
let datasets: DatasetStore;
let ps: ParamServer;
const manifests = new Map<string, DatasetManifest>();

function event(jobId: string, rank: number, world: number, task: Record<string, unknown>, opts: { deadlineMs?: number; generation?: number; channel?: unknown } = {}): TrainEvent {
  return parseWorkerEvent({
    jobId,
    rank,
    world,
    attempt: opts.generation ?? 0,
    deadlineMs: opts.deadlineMs ?? Date.now() + 600_000,
    task: {
      type: 'train',
      dataset: 'sparse-uneven',
      model: { type: 'sparse-lr', features: 20, classes: 2 },
      algorithm: 'async-sgd',
      sync: 'async',
      collective: 'allreduce',
      epochs: 2,
      batchSize: 4,
      optimizer: { type: 'sgd', lr: 0.5 },
      l2: 0,
      seed: 7,
      order: 'sequential',
      roundTimeoutMs: 30_000,
      generation: opts.generation ?? 0,
      ...task,
    },
    endpoints: { store: storeUrl, channel: opts.channel ?? { kind: 'ps', address: ps.address } },
  }) as TrainEvent;
}

const runWorld = (jobId: string, world: number, task: Record<string, unknown>, opts: { deadlineMs?: number; generation?: number } = {}): Promise<TrainResult[]> =>
  Promise.all(Array.from({ length: world }, (_, r) => runTrain(event(jobId, r, world, task, opts))));

async function finalWeights(jobId: string): Promise<Float32Array> {
  const ch = await openChannel({ kind: 'ps', address: ps.address });
  try {
    const bytes = await ch.get(finalModelKey(jobId));
    assert.ok(bytes, `final model of ${jobId}`);
    return unpackMessage<{ weights: Float32Array }>(bytes).weights;
  } finally {
    await ch.close();
  }
}

async function testAccuracy(name: string, spec: ModelSpec, weights: Float32Array): Promise<number> {
  const model = createModel(spec);
  let rows = 0;
  let correct = 0;
  for (const ref of manifests.get(name)!.test.shards) {
    const shard = await datasets.readShard(ref);
    if (shard.kind === 'ratings') throw new Error('unexpected ratings shard');
    const r = model.evaluate(shard, weights);
    rows += r.rows;
    correct += r.correct;
  }
  return correct / rows;
}

describe('async-sgd worker loop', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cirrus-async-'));
    storeUrl = pathToFileURL(dir).href;
    datasets = await DatasetStore.open(storeUrl);
    ps = await startParamServer({ port: 0 });
    for (const p of [
      { name: 'sparse-uneven', kind: 'sparse' as const, features: 20, train: [10, 17, 6, 12, 9, 4, 15, 2, 8] },
      { name: 'sparse-separable', kind: 'sparse' as const, features: 12, train: [150, 120, 130, 100, 140, 160], test: [300] },
      { name: 'sparse-3class', kind: 'sparse' as const, features: 16, train: [120, 90, 150, 110], test: [200], task: 'multiclass' as const, classes: 3 },
    ]) {
      manifests.set(p.name, await writeDataset(datasets, p));
    }
  });

  after(async () => {
    await datasets?.close();
    await ps?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('one worker with plain SGD equals GA-SGD on one worker bit for bit (the server applies the same step)', async () => {
    const [a] = await runWorld('one-async', 1, {});
    const [g] = await runWorld('one-ga', 1, { algorithm: 'ga-sgd', sync: 'bsp' });
    assert.equal(a!.status, 'done');
    assert.equal(a!.steps, g!.steps);
    const wa = await finalWeights('one-async');
    const wg = await finalWeights('one-ga');
    assert.deepEqual(Array.from(wa), Array.from(wg));
    // The model lives on the server too, identical to the published final model.
    const c = await ParamClient.connect(ps.address);
    try {
      assert.deepEqual(Array.from((await c.pullFull(psModelName('one-async'))).values), Array.from(wa));
    } finally {
      await c.close();
    }
  });

  for (const sync of ['async', 'asp', 'bsp'] as const) {
    it(`3 workers under ${sync} learn the separable task; every batch is pushed once`, async () => {
      const jobId = `sep-${sync}`;
      const results = await runWorld(jobId, 3, { dataset: 'sparse-separable', model: { type: 'sparse-lr', features: 12, classes: 2 }, sync, staleness: 2, epochs: 3, batchSize: 10, optimizer: { type: 'adagrad', lr: 0.5 }, l2: 0.0001, order: 'random' });
      assert.deepEqual(results.map((r) => r.status), ['done', 'done', 'done']);
      const manifest = manifests.get('sparse-separable')!;
      const batches = manifest.train.shards.reduce((s, r) => s + Math.ceil(r.rows / 10), 0);
      assert.equal(results.reduce((s, r) => s + r.steps, 0), 3 * batches);
      const acc = await testAccuracy('sparse-separable', { type: 'sparse-lr', features: 12, classes: 2 }, await finalWeights(jobId));
      assert.ok(acc >= 0.9, `test accuracy ${acc}`);
    });
  }

  it('softmax on sparse rows trains too (its support spans every class row)', async () => {
    const spec = { type: 'softmax', features: 16, classes: 3 } as const;
    const results = await runWorld('softmax-async', 2, { dataset: 'sparse-3class', model: spec, sync: 'asp', staleness: 1, epochs: 4, batchSize: 8, optimizer: { type: 'adam', lr: 0.05 } });
    assert.deepEqual(results.map((r) => r.status), ['done', 'done']);
    const acc = await testAccuracy('sparse-3class', spec, await finalWeights('softmax-async'));
    assert.ok(acc >= 0.75, `test accuracy ${acc}`);
  });

  it('a run cut by its deadline checkpoints on every rank and the next generation finishes the epochs', async () => {
    const jobId = 'cut-async';
    const task = { dataset: 'sparse-separable', model: { type: 'sparse-lr', features: 12, classes: 2 }, sync: 'asp', staleness: 2, epochs: 3, batchSize: 5, checkpointMarginMs: 601_000 };
    const first = await runWorld(jobId, 2, task);
    assert.deepEqual(first.map((r) => r.status), ['checkpointed', 'checkpointed']);
    const second = await Promise.all(first.map((r, rank) => runTrain(event(jobId, rank, 2, { ...task, checkpointMarginMs: 0, resumeFrom: r.checkpoint }, { generation: 1 }))));
    assert.deepEqual(second.map((r) => r.status), ['done', 'done']);
    assert.deepEqual(second.map((r) => r.epoch), [3, 3]);
    const batches = manifests.get('sparse-separable')!.train.shards.reduce((s, r) => s + Math.ceil(r.rows / 5), 0);
    assert.equal(second.reduce((s, r) => s + r.steps, 0), 3 * batches, 'steps over both generations');
  });

  it('a second invocation of the same rank and generation is refused as a duplicate', async () => {
    const c = await ParamClient.connect(ps.address);
    try {
      await c.register('dup-async', 0, 0); // generation 0, attempt 0
    } finally {
      await c.close();
    }
    await assert.rejects(runTrain(event('dup-async', 0, 1, {})), (err: unknown) => {
      assert.ok(err instanceof WorkerTrainError);
      assert.equal(err.code, 'TRAIN_DUPLICATE');
      assert.equal(err.message, 'rank 0: launch 0 of rank 0 of job dup-async is already running (a duplicate invocation); this one exits');
      return true;
    });
  });

  it('refuses models without a sparse gradient, channels other than ps, and sync async without async-sgd', async () => {
    await assert.rejects(runTrain(event('mlp-async', 0, 1, { model: { type: 'mlp', features: 20, classes: 2, hidden: [4] } })), {
      name: 'WorkerTrainError',
      message: 'rank 0: async-sgd needs a model with a sparse gradient (sparse-lr, svm or softmax), not mlp',
    });
    await assert.rejects(runTrain(event('mem-async', 0, 1, {}, { channel: { kind: 'memory' } })), {
      name: 'WorkerTrainError',
      message: "rank 0: async-sgd keeps the model on a parameter server: the channel must be 'ps', not 'memory'",
    });
    await assert.rejects(runTrain(event('ga-async', 0, 1, { algorithm: 'ga-sgd', sync: 'async' })), {
      name: 'WorkerTrainError',
      message: "rank 0: sync 'async' needs algorithm 'async-sgd' (the parameter server applies the updates); ga-sgd runs under 'bsp' or 'asp'",
    });
  });
});

describe('async-sgd through cirrus.train', () => {
  let data: CriteoHome;

  before(async () => {
    data = await criteoHome('cirrus-async-train-');
  });

  after(() => data.restore());

  it('reaches the test log-loss of GA-SGD/BSP within 0.01 with 2 workers', async () => {
    const base = { dataset: 'criteo', model: 'sparse-lr', workers: 2, epochs: 2, batchSize: 100, optimizer: 'adagrad', learningRate: 0.05, seed: 4 } as const;
    const bsp = await train({ ...base, algorithm: 'ga-sgd', sync: 'bsp' });
    const asy = await train({ ...base, algorithm: 'async-sgd', sync: 'async' });
    assert.equal(asy.history.length, 2);
    assert.ok(Number.isFinite(asy.metrics.testLoss));
    assert.ok(Math.abs(asy.metrics.testLoss - bsp.metrics.testLoss) <= 0.01, `async ${asy.metrics.testLoss} vs bsp ${bsp.metrics.testLoss}`);
    assert.ok(asy.metrics.testAuc! > 0.6, `auc ${asy.metrics.testAuc}`);
  });

  it('parameter errors name the field', () => {
    assert.throws(() => parseTrainParams({ dataset: 'd', model: 'mlp', algorithm: 'async-sgd' }), {
      message: 'params.algorithm: async-sgd pushes sparse gradients, which mlp does not have; use sparse-lr, svm or softmax, or algorithm ga-sgd',
    });
    assert.throws(() => parseTrainParams({ dataset: 'd', model: 'sparse-lr', algorithm: 'async-sgd', channel: 'memcached' }), {
      message: "params.channel: async-sgd keeps the model on a parameter server, so the channel must be 'ps' or a ps:// URL, not 'memcached'",
    });
    assert.throws(() => parseTrainParams({ dataset: 'd', model: 'sparse-lr', sync: 'async' }), {
      message: "params.sync: 'async' needs algorithm 'async-sgd' (the parameter server applies the updates); ga-sgd runs under 'bsp' or 'asp'",
    });
  });
});
