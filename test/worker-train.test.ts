/**
 * The worker's training loop (worker/train.ts), in-process with real stores: datasets in a
 * directory object store, ranks exchanging over an in-process TCP parameter server, W ranks as
 * concurrent runTrain calls. Models and optimizers are the algorithms room's; one test injects the
 * test-only logistic regression of test/support/linear-model.ts to pin the loop on its own.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createModel, createOptimizer, trainReference, type Batch, type DenseBatch, type ModelSpec, type SparseBatch } from '../algorithms/index.js';
import type { Channel } from '../channels/channel.js';
import type { DatasetManifest } from '../channels/datasets/manifest.js';
import type { Shard } from '../channels/datasets/shard.js';
import { DatasetStore } from '../channels/datasets/store.js';
import { openChannel } from '../channels/factory.js';
import { MemoryChannel, MemoryStore } from '../channels/adapters/memory/index.js';
import { checkpointKey, finalModelKey, modelLatestKey, progressKey } from '../channels/job-keys.js';
import { unpackMessage } from '../channels/messages.js';
import { referenceReduce } from '../channels/reduce.js';
import { startParamServer, type ParamServer } from '../paramserver/index.js';
import type { TrainTask } from '../worker/event.js';
import { handler } from '../worker/handler.js';
import { ShardIterator, WorkerTrainError, parseWorkerEvent, runTrain, type TrainDeps, type TrainEvent, type TrainResult } from '../worker/index.js';
import { createTestModel, createTestOptimizer } from './support/linear-model.js';
import { writeDataset, type DatasetPlan } from './support/train-data.js';

// ---- events and runs ------------------------------------------------------------------------

let dir: string;
let storeUrl: string;
let datasets: DatasetStore;
let ps: ParamServer;
const manifests = new Map<string, DatasetManifest>();

/** The test-only model and optimizer, injected (everything else uses the algorithms room's). */
const testDeps: TrainDeps = { createModel: createTestModel, createOptimizer: createTestOptimizer };

type TaskOverrides = Record<string, unknown>;

function trainEvent(jobId: string, rank: number, world: number, task: TaskOverrides, opts: { deadlineMs?: number; channel?: boolean } = {}): TrainEvent {
  const e = parseWorkerEvent({
    jobId,
    rank,
    world,
    attempt: 0,
    deadlineMs: opts.deadlineMs ?? Date.now() + 600_000,
    task: {
      type: 'train',
      dataset: 'dense-uneven',
      model: { type: 'dense-lr', features: 4, classes: 2 },
      algorithm: 'ga-sgd',
      sync: 'bsp',
      collective: 'allreduce',
      epochs: 2,
      batchSize: 4,
      optimizer: { type: 'sgd', lr: 0.5 },
      l2: 0.001,
      seed: 7,
      order: 'sequential',
      roundTimeoutMs: 30_000,
      ...task,
    },
    endpoints: opts.channel === false ? { store: storeUrl } : { store: storeUrl, channel: { kind: 'ps', address: ps.address } },
  });
  assert.equal(e.task.type, 'train');
  return e as TrainEvent;
}

async function runWorld(jobId: string, world: number, task: TaskOverrides | ((rank: number) => TaskOverrides), opts: { deadlineMs?: number } = {}): Promise<TrainResult[]> {
  return Promise.all(Array.from({ length: world }, (_, r) => runTrain(trainEvent(jobId, r, world, typeof task === 'function' ? task(r) : task, opts))));
}

async function withChannel<T>(f: (ch: Channel) => Promise<T>): Promise<T> {
  const ch = await openChannel({ kind: 'ps', address: ps.address });
  try {
    return await f(ch);
  } finally {
    await ch.close();
  }
}

async function readMessage<T>(key: string): Promise<T> {
  return withChannel(async (ch) => {
    const bytes = await ch.get(key);
    assert.ok(bytes, `key ${key} should exist`);
    return unpackMessage<T>(bytes);
  });
}

const finalWeights = async (jobId: string): Promise<Float32Array> => (await readMessage<{ weights: Float32Array }>(finalModelKey(jobId))).weights;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Fraction of the dataset's test rows the weights classify correctly. */
async function testAccuracy(manifest: DatasetManifest, spec: ModelSpec, weights: Float32Array): Promise<number> {
  const model = createModel(spec);
  let rows = 0;
  let correct = 0;
  for (const ref of manifest.test.shards) {
    const shard = await datasets.readShard(ref);
    assert.notEqual(shard.kind, 'ratings');
    if (shard.kind === 'ratings') continue;
    const r = model.evaluate(shard, weights);
    rows += r.rows;
    correct += r.correct;
  }
  return correct / rows;
}

// ---- reference loops ------------------------------------------------------------------------

type Task = TrainTask;

/** This rank's batches of every epoch, in the ShardIterator's order (the data source both loops share). */
async function epochBatches(task: Task, manifest: DatasetManifest): Promise<Batch[][]> {
  const out: Batch[][] = [];
  for (let epoch = 0; epoch < task.epochs; epoch++) {
    const it = new ShardIterator({ store: datasets, manifest, rank: 0, world: 1, epoch, seed: task.seed, order: task.order, batchSize: task.batchSize, readAhead: 0 });
    const list: Batch[] = [];
    for await (const b of it.batches()) {
      assert.notEqual(b.kind, 'ratings');
      if (b.kind !== 'ratings') list.push(b);
    }
    out.push(list);
  }
  return out;
}

/** A plain loop for the injected test model: mean gradient plus L2, one optimizer step per batch. */
async function referenceSingle(task: Task, manifest: DatasetManifest): Promise<Float32Array> {
  const model = createTestModel(task.model);
  const opt = createTestOptimizer(task.optimizer);
  const w = model.init(task.seed);
  const grad = new Float32Array(model.size);
  const g = new Float32Array(model.size);
  for (const batches of await epochBatches(task, manifest)) {
    for (const b of batches) {
      grad.fill(0);
      model.gradient(b, w, grad);
      for (let i = 0; i < g.length; i++) g[i] = grad[i]! / b.rows + task.l2 * w[i]!;
      opt.step(w, g);
    }
  }
  return w;
}

/** Rows [start, end) of a shard as a batch (independent of the ShardIterator). */
function sliceShard(shard: Shard, start: number, end: number): Batch {
  if (shard.kind === 'dense') return { kind: 'dense', rows: end - start, cols: shard.cols, labels: shard.labels.subarray(start, end), x: shard.x.subarray(start * shard.cols, end * shard.cols) };
  if (shard.kind === 'sparse') {
    return { kind: 'sparse', rows: end - start, cols: shard.cols, labels: shard.labels.subarray(start, end), indptr: shard.indptr.subarray(start, end + 1), indices: shard.indices, values: shard.values };
  }
  throw new Error('ratings shard');
}

/** One batch holding the rows of all the given batches, in order. */
function concatBatches(batches: Batch[]): Batch {
  const rows = batches.reduce((s, b) => s + b.rows, 0);
  const labels = new Float32Array(rows);
  let at = 0;
  for (const b of batches) {
    labels.set(b.labels, at);
    at += b.rows;
  }
  const first = batches[0]!;
  if (first.kind === 'dense') {
    const x = new Float32Array(rows * first.cols);
    let off = 0;
    for (const b of batches as DenseBatch[]) {
      x.set(b.x, off);
      off += b.x.length;
    }
    return { kind: 'dense', rows, cols: first.cols, labels, x };
  }
  const indptr = new Uint32Array(rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  let r = 0;
  for (const b of batches as SparseBatch[]) {
    for (let k = 0; k < b.rows; k++) {
      for (let p = b.indptr[k]!; p < b.indptr[k + 1]!; p++) {
        indices.push(b.indices[p]!);
        values.push(b.values[p]!);
      }
      indptr[++r] = indices.length;
    }
  }
  return { kind: 'sparse', rows, cols: first.cols, labels, indptr, indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}

/**
 * One worker with batch W*B on the union of the W ranks' i-th batches (sequential order; shard i
 * belongs to rank i % W; ranks out of data add nothing). Two variants of the same steps:
 * `union` computes one gradient over the concatenated rows; `rankSums` sums per-rank gradient
 * sums in rank order, the grouping the collectives use (so it must match bit for bit).
 */
async function referenceUnion(task: Task, manifest: DatasetManifest, world: number): Promise<{ union: Float32Array; rankSums: Float32Array }> {
  const shards = await Promise.all(manifest.train.shards.map((ref) => datasets.readShard(ref)));
  const perRank: Batch[][] = Array.from({ length: world }, () => []);
  shards.forEach((s, i) => {
    for (let start = 0; start < s.rows; start += task.batchSize) perRank[i % world]!.push(sliceShard(s, start, Math.min(s.rows, start + task.batchSize)));
  });
  const rounds = Math.max(...perRank.map((b) => b.length));
  const model = createModel(task.model);
  const n = model.size;
  const wU = model.init(task.seed);
  const wR = model.init(task.seed);
  const optU = createOptimizer(task.optimizer, n);
  const optR = createOptimizer(task.optimizer, n);
  const g = new Float32Array(n);
  for (let epoch = 0; epoch < task.epochs; epoch++) {
    for (let k = 0; k < rounds; k++) {
      const present = perRank.map((list) => list[k]).filter((b): b is Batch => b !== undefined);
      const union = concatBatches(present);
      const grad = new Float32Array(n);
      model.gradient(union, wU, grad);
      for (let i = 0; i < n; i++) g[i] = grad[i]! / union.rows + task.l2 * wU[i]!;
      optU.step(wU, g);

      const vecs = perRank.map((list) => {
        const v = new Float32Array(n + 3);
        const b = list[k];
        if (b) {
          v[n] = model.gradient(b, wR, v.subarray(0, n));
          v[n + 1] = b.rows;
        }
        return v;
      });
      const sum = referenceReduce(vecs, 'sum');
      const rows = sum[n + 1]!;
      for (let i = 0; i < n; i++) g[i] = sum[i]! / rows + task.l2 * wR[i]!;
      optR.step(wR, g);
    }
  }
  return { union: wU, rankSums: wR };
}

function trainError(code: string, ...includes: string[]) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof WorkerTrainError, `expected a WorkerTrainError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const s of includes) assert.ok(err.message.includes(s), `message '${err.message}' should include '${s}'`);
    return true;
  };
}

// ---- tests ----------------------------------------------------------------------------------

describe('worker train loop', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cirrus-train-'));
    storeUrl = pathToFileURL(dir).href;
    datasets = await DatasetStore.open(storeUrl);
    ps = await startParamServer({ port: 0 });
    const plans: DatasetPlan[] = [
      // Uneven shards (not a multiple of the batch size, nor of the world): ranks run out at different rounds.
      { name: 'dense-uneven', kind: 'dense', features: 4, train: [13, 8, 11, 5, 9, 7, 3] },
      { name: 'sparse-uneven', kind: 'sparse', features: 20, train: [10, 17, 6, 12, 9, 4, 15, 2, 8] },
      { name: 'dense-separable', kind: 'dense', features: 5, train: [130, 110, 120, 90, 100, 140], test: [200] },
      { name: 'sparse-separable', kind: 'sparse', features: 12, train: [150, 120, 130, 100, 140, 160], test: [300] },
      { name: 'dense-3class', kind: 'dense', features: 4, train: [9, 14, 6, 11, 5], task: 'multiclass', classes: 3 },
    ];
    for (const p of plans) manifests.set(p.name, await writeDataset(datasets, p));
  });

  after(async () => {
    await datasets?.close();
    await ps?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('one worker without a channel, through the handler, equals trainReference bit for bit (random order, L2)', async () => {
    const cases: Array<{ dataset: string; model: ModelSpec; optimizer: Record<string, unknown> }> = [
      { dataset: 'dense-uneven', model: { type: 'dense-lr', features: 4, classes: 2 }, optimizer: { type: 'momentum', lr: 0.2, momentum: 0.8 } },
      { dataset: 'sparse-uneven', model: { type: 'sparse-lr', features: 20, classes: 2 }, optimizer: { type: 'adam', lr: 0.05 } },
      { dataset: 'dense-3class', model: { type: 'softmax', features: 4, classes: 3 }, optimizer: { type: 'adagrad', lr: 0.3 } },
    ];
    for (const c of cases) {
      const jobId = `single-${c.dataset}`;
      const ev = trainEvent(jobId, 0, 1, { dataset: c.dataset, model: c.model, order: 'random', epochs: 3, optimizer: c.optimizer, l2: 0.01 }, { channel: false });
      const res = (await handler(ev)) as TrainResult;
      assert.equal(res.status, 'done');
      assert.equal(res.epoch, 3);
      assert.equal(res.batchInEpoch, 0);
      const manifest = manifests.get(c.dataset)!;
      const perEpoch = manifest.train.shards.reduce((s, r) => s + Math.ceil(r.rows / 4), 0);
      assert.equal(res.steps, 3 * perEpoch);
      assert.equal(res.rows, 3 * manifest.trainRows);
      // Without a channel the job keys land in the object store.
      const bytes = await datasets.store.get(finalModelKey(jobId));
      assert.ok(bytes, 'final model in the object store');
      const got = unpackMessage<{ weights: Float32Array; step: number; epoch: number }>(bytes);
      assert.equal(got.step, res.steps);
      const epochs = await epochBatches(ev.task, manifest);
      let epoch = 0;
      const ref = trainReference({ model: createModel(c.model), optimizer: ev.task.optimizer, batches: () => epochs[epoch++]!, epochs: 3, l2: 0.01, seed: ev.task.seed });
      assert.deepEqual(got.weights, ref.weights);
      assert.equal(res.steps, ref.steps);
      // The reported loss is the last epoch's mean over its rows (float32 sums in the worker, float64 in the reference).
      assert.ok(Math.abs(res.trainLoss - ref.epochLoss[2]!) <= 1e-5 * ref.epochLoss[2]!, `trainLoss ${res.trainLoss} vs ${ref.epochLoss[2]}`);
    }
  });

  it('an injected model and optimizer (deps) drive the same loop: one worker equals a plain loop bit for bit', async () => {
    const ev = trainEvent('single-injected', 0, 1, { dataset: 'sparse-uneven', model: { type: 'sparse-lr', features: 20, classes: 2 }, order: 'random', epochs: 3, optimizer: { type: 'momentum', lr: 0.2, momentum: 0.8 }, l2: 0.01 }, { channel: false });
    const res = await runTrain(ev, testDeps);
    assert.equal(res.status, 'done');
    const got = unpackMessage<{ weights: Float32Array }>((await datasets.store.get(finalModelKey('single-injected')))!);
    assert.deepEqual(got.weights, await referenceSingle(ev.task, manifests.get('sparse-uneven')!));
  });

  for (const world of [2, 4]) {
    it(`GA-SGD/BSP: ${world} workers with batch B equal one worker with batch ${world}*B on the union of their rows`, async () => {
      for (const [dataset, model, collective] of [
        ['dense-uneven', { type: 'dense-lr', features: 4, classes: 2 }, 'allreduce'],
        ['sparse-uneven', { type: 'sparse-lr', features: 20, classes: 2 }, 'scatterreduce'],
        ['dense-3class', { type: 'softmax', features: 4, classes: 3 }, 'allreduce'],
      ] as const) {
        const jobId = `ga-${world}-${dataset}`;
        const task = { dataset, model, collective, epochs: 3, batchSize: 3, optimizer: { type: 'momentum', lr: 0.3, momentum: 0.5 }, l2: 0.01 };
        const results = await runWorld(jobId, world, task);
        const manifest = manifests.get(dataset)!;
        for (const r of results) {
          assert.equal(r.status, 'done');
          assert.equal(r.steps, results[0]!.steps);
          assert.equal(r.trainLoss, results[0]!.trainLoss, 'the reduced loss is the same on every rank');
        }
        // Every row is used once per epoch: the ranks' rows add up to the dataset.
        assert.equal(results.reduce((s, r) => s + r.rows, 0), 3 * manifest.trainRows);
        const got = await finalWeights(jobId);
        const ref = await referenceUnion(trainEvent(jobId, 0, world, task).task, manifest, world);
        // Same grouping of the sums as the collectives: bit for bit.
        assert.deepEqual(got, ref.rankSums);
        // One gradient over the concatenated rows: float32 sums in another order, so within 1e-5.
        const diff = maxAbsDiff(got, ref.union);
        assert.ok(diff <= 1e-5, `max |w_dist - w_union| = ${diff} (tolerance 1e-5)`);
      }
    });
  }

  it('injected channels (one in-process memory store shared by the ranks) give the same weights as the parameter server', async () => {
    const task = { dataset: 'sparse-uneven', model: { type: 'sparse-lr', features: 20, classes: 2 }, collective: 'scatterreduce', order: 'random', epochs: 2, optimizer: { type: 'adam', lr: 0.05 } };
    await runWorld('inject-ps', 3, task);
    const shared = new MemoryStore();
    const channels = [0, 1, 2].map(() => new MemoryChannel(shared));
    const results = await Promise.all(channels.map((channel, r) => runTrain(trainEvent('inject-mem', r, 3, task), { channel, datasets })));
    for (const r of results) {
      assert.equal(r.status, 'done');
      assert.ok(r.channelStats.put.requests > 0, 'stats come from the injected channel');
    }
    const bytes = await channels[0]!.get(finalModelKey('inject-mem'));
    assert.ok(bytes);
    assert.deepEqual(unpackMessage<{ weights: Float32Array }>(bytes).weights, await finalWeights('inject-ps'));
    // The collectives left nothing behind: only the job's outputs remain.
    // The collectives left nothing; what remains is what the client reads (and then deletes): the
    // final and latest models, one model per finished epoch, and each rank's progress.
    const epochKeys = Array.from({ length: task.epochs ?? 0 }, (_, e) => `model/epoch/${e + 1}`);
    assert.deepEqual([...shared.values.keys()].sort(), ['final', ...epochKeys, 'model/latest', 'progress/0', 'progress/1', 'progress/2'].map((k) => `job/inject-mem/${k}`).sort());
    // The caller owns injected channels and stores: still open.
    await channels[1]!.put(progressKey('inject-mem', 9), new Uint8Array(1));
    assert.ok((await datasets.manifest('sparse-uneven')).trainRows > 0);
  });

  it('publishes progress and the latest model while training', async () => {
    const jobId = 'progress';
    const results = await runWorld(jobId, 2, { epochs: 2, publishEvery: 2 });
    const latest = await readMessage<{ weights: Float32Array; step: number; epoch: number; batchInEpoch: number }>(modelLatestKey(jobId));
    assert.equal(latest.step, results[0]!.steps);
    assert.equal(latest.epoch, 1);
    assert.deepEqual(latest.weights, await finalWeights(jobId));
    for (let r = 0; r < 2; r++) {
      const p = await readMessage<{ epoch: number; batchInEpoch: number; batchesInEpoch: number; step: number; trainLoss: number; rows: number }>(progressKey(jobId, r));
      assert.equal(p.epoch, 1);
      assert.equal(p.batchInEpoch, p.batchesInEpoch);
      assert.equal(p.rows, manifests.get('dense-uneven')!.trainRows);
      assert.equal(p.trainLoss, results[r]!.trainLoss);
    }
  });

  describe('convergence on a separable problem (test accuracy > 90%)', () => {
    const cases: Array<{ name: string; task: TaskOverrides }> = [
      { name: 'MA-SGD/BSP, averaging every 2 batches', task: { algorithm: 'ma-sgd', sync: 'bsp', averageEvery: 2 } },
      { name: 'MA-SGD/BSP, averaging once per epoch', task: { algorithm: 'ma-sgd', sync: 'bsp', averageEvery: 0, collective: 'scatterreduce' } },
      { name: 'GA-SGD/ASP, staleness 2', task: { algorithm: 'ga-sgd', sync: 'asp', staleness: 2 } },
      { name: 'MA-SGD/ASP, exchanging every 3 batches', task: { algorithm: 'ma-sgd', sync: 'asp', averageEvery: 3, staleness: 3 } },
    ];
    for (const c of cases) {
      for (const dataset of ['dense-separable', 'sparse-separable'] as const) {
        it(`${c.name} on ${dataset}`, async () => {
          const manifest = manifests.get(dataset)!;
          const model: ModelSpec = dataset === 'dense-separable' ? { type: 'dense-lr', features: 5, classes: 2 } : { type: 'sparse-lr', features: 12, classes: 2 };
          const jobId = `conv-${c.task['algorithm']}-${c.task['sync']}-${c.task['averageEvery'] ?? 'x'}-${dataset}`;
          const results = await runWorld(jobId, 3, { dataset, model, epochs: 12, batchSize: 10, order: 'random', optimizer: { type: 'sgd', lr: 1 }, l2: 0, ...c.task });
          for (const r of results) assert.equal(r.status, 'done');
          const acc = await testAccuracy(manifest, model, await finalWeights(jobId));
          assert.ok(acc > 0.9, `test accuracy ${acc} should exceed 0.9`);
        });
      }
    }
  });

  describe('stop and resume across generations', () => {
    /** Runs generations with an already-passed deadline (each stops after one exchange) until done. */
    async function runGenerations(jobId: string, world: number, task: TaskOverrides): Promise<{ generations: number; last: TrainResult[] }> {
      let resume: Array<number | undefined> = [];
      for (let generation = 0; ; generation++) {
        assert.ok(generation < 200, 'too many generations');
        const from = resume;
        const results = await runWorld(jobId, world, (r) => ({ ...task, generation, ...(from[r] !== undefined ? { resumeFrom: from[r] } : {}) }), { deadlineMs: Date.now() + 1 });
        const statuses = new Set(results.map((r) => r.status));
        assert.equal(statuses.size, 1, `all ranks end generation ${generation} alike: ${[...statuses].join(', ')}`);
        for (const r of results) assert.equal(r.generation, generation);
        if (results[0]!.status === 'done') return { generations: generation + 1, last: results };
        // A checkpoint of every rank exists in the object store for the next generation.
        resume = results.map((r) => r.checkpoint);
        for (let r = 0; r < world; r++) assert.ok(await datasets.store.get(checkpointKey(jobId, resume[r]!, r)), `checkpoint ${resume[r]} of rank ${r}`);
      }
    }

    it('GA-SGD/BSP: generations stopped by an early deadline end with exactly the weights of an uninterrupted run', async () => {
      const task = { dataset: 'sparse-uneven', model: { type: 'sparse-lr', features: 20, classes: 2 }, order: 'random', epochs: 2, batchSize: 3, optimizer: { type: 'adam', lr: 0.05 }, l2: 0.01 };
      const whole = await runWorld('resume-ga-whole', 2, task);
      const chained = await runGenerations('resume-ga-chain', 2, task);
      // One round per generation: the last one finishes without a checkpoint.
      const roundsPerEpoch = Math.max(...[0, 1].map((r) => manifests.get('sparse-uneven')!.train.shards.filter((_, i) => i % 2 === r).reduce((s, ref) => s + Math.ceil(ref.rows / 3), 0)));
      assert.equal(chained.generations, 2 * roundsPerEpoch);
      assert.deepEqual(await finalWeights('resume-ga-chain'), await finalWeights('resume-ga-whole'));
      assert.equal(chained.last[0]!.steps, whole[0]!.steps);
      assert.equal(chained.last[0]!.trainLoss, whole[0]!.trainLoss);
    });

    it('MA-SGD/BSP: resumed generations end with exactly the weights of an uninterrupted run', async () => {
      const task = { algorithm: 'ma-sgd', averageEvery: 2, order: 'random', epochs: 2, optimizer: { type: 'momentum', lr: 0.3, momentum: 0.9 } };
      await runWorld('resume-ma-whole', 3, task);
      const chained = await runGenerations('resume-ma-chain', 3, task);
      assert.ok(chained.generations > 2);
      assert.deepEqual(await finalWeights('resume-ma-chain'), await finalWeights('resume-ma-whole'));
    });

    it('ASP: stopped generations resume and still converge', async () => {
      const model: ModelSpec = { type: 'dense-lr', features: 5, classes: 2 };
      const chained = await runGenerations('resume-asp', 2, { dataset: 'dense-separable', model, algorithm: 'ga-sgd', sync: 'asp', epochs: 2, batchSize: 25, order: 'random', optimizer: { type: 'sgd', lr: 1 }, l2: 0 });
      assert.ok(chained.generations > 1);
      const acc = await testAccuracy(manifests.get('dense-separable')!, model, await finalWeights('resume-asp'));
      assert.ok(acc > 0.9, `test accuracy ${acc} should exceed 0.9`);
    });

    it('a generation without the checkpoint it resumes from fails with TRAIN_CHECKPOINT', async () => {
      await assert.rejects(runTrain(trainEvent('no-ckpt', 0, 1, { generation: 3, resumeFrom: 2 }, { channel: false })), trainError('TRAIN_CHECKPOINT', 'rank 0:', 'ckpt/2/0', 'does not exist in the object store'));
    });
  });

  describe('errors', () => {
    it('a model that does not fit the dataset gives one WorkerTrainError naming each mismatch', async () => {
      await assert.rejects(
        runTrain(trainEvent('fit-1', 0, 1, { model: { type: 'softmax', features: 4, classes: 3 } }, { channel: false })),
        trainError('TRAIN_MODEL_MISMATCH', 'rank 0:', "dataset 'dense-uneven'", 'softmax needs a multiclass dataset', 'model.classes is 3, but the dataset has 2 classes'),
      );
      await assert.rejects(
        runTrain(trainEvent('fit-2', 0, 1, { model: { type: 'sparse-lr', features: 9, classes: 2 } }, { channel: false })),
        trainError('TRAIN_MODEL_MISMATCH', 'sparse-lr needs a sparse dataset', 'model.features is 9, but the dataset has 4 features'),
      );
      await assert.rejects(
        runTrain(trainEvent('fit-2b', 0, 1, { dataset: 'sparse-uneven', model: { type: 'svm', features: 19, classes: 2 } }, { channel: false })),
        trainError('TRAIN_MODEL_MISMATCH', "model.features is 19, but the dataset's sparse feature space has 20 features"),
      );
      await assert.rejects(
        runTrain(trainEvent('fit-3', 0, 1, { dataset: 'dense-3class', model: { type: 'dense-lr', features: 4, classes: 2 } }, { channel: false })),
        trainError('TRAIN_MODEL_MISMATCH', 'dense-lr is a binary classifier, but the dataset is multiclass with 3 classes'),
      );
      // Through the handler too (the fit check comes before any model is built).
      await assert.rejects(handler(trainEvent('fit-4', 0, 1, { model: { type: 'svm', features: 4, classes: 3 } }, { channel: false })), trainError('TRAIN_MODEL_MISMATCH', 'model.classes is 3'));
    });

    it('more than one worker without a channel is a typed error', async () => {
      await assert.rejects(runTrain(trainEvent('no-channel', 1, 2, {}, { channel: false })), trainError('TRAIN_NO_CHANNEL', 'rank 1:', 'event.endpoints.channel'));
    });

    it('a missing dataset is a typed error naming it', async () => {
      await assert.rejects(runTrain(trainEvent('no-data', 0, 1, { dataset: 'nope' }, { channel: false })), (err: unknown) => {
        assert.ok(err instanceof WorkerTrainError);
        assert.equal(err.code, 'TRAIN_DATASET');
        assert.equal(err.causeCode, 'DATASET_NOT_FOUND');
        assert.match(err.message, /^rank 0: dataset 'nope' does not exist/);
        return true;
      });
    });

    it('BSP: a missing rank makes the others fail with the collective timeout naming it', async () => {
      const task = { roundTimeoutMs: 400 };
      // Settle both before asserting: the second rejection must not go unhandled meanwhile.
      const settled = await Promise.allSettled([0, 2].map((r) => runTrain(trainEvent('missing-bsp', r, 3, task))));
      for (const [i, s] of settled.entries()) {
        await assert.rejects(s.status === 'rejected' ? Promise.reject(s.reason) : Promise.resolve(s.value), (err: unknown) => {
          assert.ok(err instanceof WorkerTrainError, String(err));
          assert.equal(err.code, 'COLLECTIVE_TIMEOUT');
          assert.deepEqual(err.missingRanks, [1]);
          assert.ok(err.message.startsWith(`rank ${[0, 2][i]}: `), err.message);
          assert.ok(err.message.includes('rank 1 never arrived'), err.message);
          return true;
        });
      }
    });

    it('ASP: a missing rank makes the others fail with the timeout naming it', async () => {
      const task = { sync: 'asp', staleness: 1, roundTimeoutMs: 400 };
      await assert.rejects(runTrain(trainEvent('missing-asp', 0, 2, task)), (err: unknown) => {
        assert.ok(err instanceof WorkerTrainError, String(err));
        assert.equal(err.code, 'COLLECTIVE_TIMEOUT');
        assert.deepEqual(err.missingRanks, [1]);
        assert.ok(err.message.includes('rank 1 never arrived'), err.message);
        return true;
      });
    });
  });
});
