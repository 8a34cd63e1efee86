/**
 * Consensus ADMM: the penalty term, the local gradient, the consensus and dual updates against hand
 * computations; then on Higgs-like data with real worker processes, ADMM's objective (mean training
 * log-loss + (l2/2)|w|^2) against GA-SGD's converged one.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { admmConsensus, admmDualUpdate, admmLocalGradient, admmPenalty, createModel } from '../algorithms/index.js';
import { generateHiggsLike, openStore, preprocess, train } from '../client/index.js';
import { parseTrainParams } from '../client/train-params.js';
import type { Shard } from '../channels/datasets/shard.js';
import { DatasetStore } from '../channels/datasets/store.js';
import { openChannel } from '../channels/factory.js';
import { finalModelKey } from '../channels/job-keys.js';
import { unpackMessage } from '../channels/messages.js';
import { startParamServer, type ParamServer } from '../paramserver/index.js';
import { parseWorkerEvent, runTrain, type TrainEvent } from '../worker/index.js';
import { writeDataset } from './support/train-data.js';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-6): void => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `entry ${i}: ${a[i]} vs ${b[i]}`);
};

describe('ADMM arithmetic', () => {
  it('the penalty (rho/2)|w - z + u|^2 matches a hand computation, and its gradient is rho (w - z + u)', () => {
    const w = Float32Array.from([1, 2, -1]);
    const z = Float32Array.from([0.5, 1, 0]);
    const u = Float32Array.from([0.1, -0.5, 0.25]);
    // w - z + u = [0.6, 0.5, -0.75]; squares 0.36 + 0.25 + 0.5625 = 1.1725; times rho/2 = 1.
    assert.ok(Math.abs(admmPenalty(w, z, u, 2) - 1.1725) < 1e-6, `penalty ${admmPenalty(w, z, u, 2)}`);
    assert.ok(Math.abs(admmPenalty(w, z, u, 0.5) - 0.293125) < 1e-6);
    // Local gradient: scale * gradSum / rows + rho (w - z + u) = 1.5 * [2, 4, 6] / 2 + 2 * [0.6, 0.5, -0.75].
    const g = new Float32Array(3);
    admmLocalGradient(g, Float32Array.from([2, 4, 6]), 2, 1.5, 2, w, z, u);
    close(g, [2.7, 4, 3]);
    // The penalty part of it is the penalty's derivative (central differences).
    admmLocalGradient(g, new Float32Array(3), 1, 1, 2, w, z, u);
    for (let i = 0; i < 3; i++) {
      const up = Float64Array.from(w), down = Float64Array.from(w);
      up[i] = up[i]! + 1e-3;
      down[i] = down[i]! - 1e-3;
      const numeric = (admmPenalty(up, z, u, 2) - admmPenalty(down, z, u, 2)) / 2e-3;
      assert.ok(Math.abs(numeric - g[i]!) < 1e-4, `coordinate ${i}: ${numeric} vs ${g[i]}`);
    }
  });

  it('consensus z = rho sum(w_i + u_i) / (W (l2 + rho)) and the dual u + w - z', () => {
    const z = new Float32Array(2);
    admmConsensus(z, [2, 4, 99], 2, 1, 1); // entries past z's length (the loss and flags) are ignored
    close(z, [0.5, 1]);
    admmConsensus(z, [2, 4], 2, 1, 0); // no L2: the mean of w_i + u_i
    close(z, [1, 2]);
    const u = Float32Array.from([0, 1]);
    admmDualUpdate(u, Float32Array.from([1, 1]), Float32Array.from([0.5, 1]));
    close(u, [0.5, 1]);
  });

  it('params: admm is for the linear models under BSP', () => {
    assert.equal(parseTrainParams({ dataset: 'd', model: 'svm', algorithm: 'admm', rho: 0.5 }).rho, 0.5);
    assert.throws(() => parseTrainParams({ dataset: 'd', model: 'mlp', algorithm: 'admm' }), { code: 'TRAIN_PARAMS', message: /admm trains the linear models .* not mlp/ });
    assert.throws(() => parseTrainParams({ dataset: 'd', model: 'svm', algorithm: 'admm', sync: 'asp' }), { code: 'TRAIN_PARAMS', message: /params.sync: 'admm' runs under 'bsp'/ });
    assert.throws(() => parseTrainParams({ dataset: 'd', model: 'svm', algorithm: 'admm', rho: 0 }), { code: 'TRAIN_PARAMS', message: /params.rho: expected rho > 0/ });
  });
});

describe('ADMM across generations', () => {
  let dir: string;
  let storeUrl: string;
  let ps: ParamServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cirrus-admm-resume-'));
    storeUrl = pathToFileURL(dir).href;
    ps = await startParamServer({ port: 0 });
    const ds = await DatasetStore.open(storeUrl);
    try {
      await writeDataset(ds, { name: 'dense', kind: 'dense', features: 5, train: [40, 30, 50, 20] });
    } finally {
      await ds.close();
    }
  });

  after(async () => {
    await ps?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const event = (jobId: string, rank: number, extra: Record<string, unknown>, deadlineMs: number): TrainEvent =>
    parseWorkerEvent({
      jobId,
      rank,
      world: 2,
      attempt: 0,
      deadlineMs,
      task: {
        type: 'train',
        dataset: 'dense',
        model: { type: 'dense-lr', features: 5, classes: 2 },
        algorithm: 'admm',
        sync: 'bsp',
        collective: 'allreduce',
        epochs: 4,
        batchSize: 8,
        optimizer: { type: 'sgd', lr: 0.2 },
        l2: 0.01,
        seed: 3,
        rho: 0.5,
        admmPasses: 2,
        roundTimeoutMs: 30_000,
        ...extra,
      },
      endpoints: { store: storeUrl, channel: { kind: 'ps', address: ps.address } },
    }) as TrainEvent;

  it('generations stopped after each round resume with their dual and end with the consensus of an uninterrupted run', async () => {
    await Promise.all([0, 1].map((r) => runTrain(event('admm-whole', r, {}, Date.now() + 600_000))));
    let resume: Array<number | undefined> = [];
    let generations = 0;
    for (let generation = 0; generation < 20; generation++) {
      const from = resume;
      const results = await Promise.all([0, 1].map((r) => runTrain(event('admm-chain', r, { generation, ...(from[r] !== undefined ? { resumeFrom: from[r] } : {}) }, Date.now() + 1))));
      generations++;
      if (results[0]!.status === 'done') break;
      assert.ok(results.every((r) => r.status === 'checkpointed'));
      resume = results.map((r) => r.checkpoint);
    }
    assert.equal(generations, 4, 'one round per generation');
    const ch = await openChannel({ kind: 'ps', address: ps.address });
    try {
      const a = unpackMessage<{ weights: Float32Array }>((await ch.get(finalModelKey('admm-whole')))!).weights;
      const b = unpackMessage<{ weights: Float32Array }>((await ch.get(finalModelKey('admm-chain')))!).weights;
      assert.deepEqual(b, a);
    } finally {
      await ch.close();
    }
  });
});

describe('ADMM on Higgs-like LR', () => {
  let dir: string;
  let store: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cirrus-admm-'));
    store = pathToFileURL(join(dir, 'store')).href;
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reaches an objective within 1e-3 of GA-SGD converged, with 2 workers', async () => {
    const file = join(dir, 'higgs.csv');
    await generateHiggsLike({ rows: 30_000, seed: 2, file });
    await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: 3_000, split: 0.9, seed: 1, store });
    const l2 = 0.001;
    const common = { dataset: 'higgs', store, model: 'dense-lr' as const, workers: 2, channel: 'ps', l2, seed: 0 };
    const ga = await train({ ...common, algorithm: 'ga-sgd', epochs: 40, batchSize: 128, optimizer: 'adam', learningRate: 0.003 });
    const admm = await train({ ...common, algorithm: 'admm', epochs: 30, batchSize: 128, optimizer: 'sgd', learningRate: 0.1, rho: 0.03, admmPasses: 3 });
    const handle = await openStore(store);
    const shards: Shard[] = [];
    try {
      const m = await handle.datasets.manifest('higgs');
      for (const ref of m.train.shards) shards.push(await handle.datasets.readShard(ref));
    } finally {
      await handle.close();
    }
    const objective = (w: Float32Array): number => {
      const model = createModel(ga.model.spec);
      let loss = 0;
      let rows = 0;
      for (const s of shards) {
        assert.notEqual(s.kind, 'ratings');
        if (s.kind === 'ratings') continue;
        const e = model.evaluate(s, w);
        loss += e.lossSum;
        rows += e.rows;
      }
      let sq = 0;
      for (const v of w) sq += v * v;
      return loss / rows + (l2 / 2) * sq;
    };
    const fGa = objective(ga.model.weights);
    const fAdmm = objective(admm.model.weights);
    assert.ok(Math.abs(fAdmm - fGa) < 1e-3, `ADMM objective ${fAdmm} within 1e-3 of GA-SGD's ${fGa}`);
    assert.equal(admm.metrics.epochs, 30);
  });
});
