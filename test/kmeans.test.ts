/**
 * k-means: the kernels against brute force, the empty-cluster rule, the seeded starts, and Lloyd's
 * as a collective (worker/train-lloyd.ts) with 1, 2 and 4 ranks over the real parameter server
 * against a plain sequential Lloyd's from the same initial centroids; then `cirrus.train` end to end
 * with real worker processes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { KMeans, centroidNorms, createModel, createRng, initialCentroids, lloydReference, moveCentroids, nearestCentroids } from '../algorithms/index.js';
import type { DatasetManifest } from '../channels/datasets/manifest.js';
import { DatasetStore } from '../channels/datasets/store.js';
import { finalModelKey } from '../channels/job-keys.js';
import { unpackMessage } from '../channels/messages.js';
import { openChannel } from '../channels/factory.js';
import { startParamServer, type ParamServer } from '../paramserver/index.js';
import { parseWorkerEvent, runTrain, type TrainEvent } from '../worker/index.js';
import { train } from '../client/index.js';
import { parseTrainParams } from '../client/train-params.js';
import { writeDataset } from './support/train-data.js';

const F = 5;
const K = 6;
const ITERATIONS = 4;

function randomPoints(rows: number, cols: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: rows * cols }, () => rng.normal());
}

describe('k-means kernels', () => {
  it('nearestCentroids picks the same centroid and distance as brute force', () => {
    for (const [rows, k] of [[37, 13], [64, 4], [5, 1], [9, 7]] as const) {
      const x = randomPoints(rows, 7, rows);
      const c = randomPoints(k, 7, 1000 + k);
      const idx = new Int32Array(rows);
      const dist = new Float64Array(rows);
      nearestCentroids(x, 0, rows, 7, c, k, centroidNorms(c, k, 7), idx, dist);
      for (let r = 0; r < rows; r++) {
        let best = Infinity;
        let arg = -1;
        for (let j = 0; j < k; j++) {
          let d = 0;
          for (let t = 0; t < 7; t++) d += (x[r * 7 + t]! - c[j * 7 + t]!) ** 2;
          if (d < best) {
            best = d;
            arg = j;
          }
        }
        assert.equal(idx[r], arg, `row ${r} of ${rows} with k ${k}`);
        assert.ok(Math.abs(dist[r]! - best) < 1e-9 * Math.max(1, best), `distance of row ${r}: ${dist[r]} vs ${best}`);
      }
    }
  });

  it('moveCentroids moves each centroid by its mean residual and leaves an empty cluster where it was', () => {
    const c = Float32Array.from([0, 0, 10, 10, -5, 5]);
    const empty = moveCentroids(c, 3, 2, [2, 4, 0, 0, 3, 3], [2, 0, 3]);
    assert.equal(empty, 1);
    assert.deepEqual([...c], [1, 2, 10, 10, -4, 6]);
  });

  it('initial centroids are rows of the sample, distinct, and the same for the same seed', () => {
    const x = randomPoints(200, 3, 5);
    for (const method of ['kmeans++', 'random'] as const) {
      const a = initialCentroids(x, 200, 3, 10, 42, method);
      assert.deepEqual(a, initialCentroids(x, 200, 3, 10, 42, method));
      assert.notDeepEqual(a, initialCentroids(x, 200, 3, 10, 43, method));
      const rows = new Set<string>();
      for (let j = 0; j < 10; j++) {
        const c = [...a.subarray(j * 3, j * 3 + 3)];
        let found = false;
        for (let r = 0; r < 200 && !found; r++) found = c.every((v, t) => v === x[r * 3 + t]);
        assert.ok(found, `${method} centroid ${j} is a row of the sample`);
        rows.add(c.join(','));
      }
      assert.equal(rows.size, 10, `${method}: ten distinct centroids`);
    }
    assert.throws(() => initialCentroids(x, 200, 3, 201, 1, 'random'), { code: 'MODEL_SPEC', message: /k = 201 clusters need at least 201 rows/ });
  });

  it('the model predicts cluster ids, reports the SSE as its loss, and rejects a bad k', () => {
    const m = new KMeans({ type: 'kmeans', features: 2, classes: 2, clusters: 2 });
    const w = Float32Array.from([0, 0, 10, 0]);
    const batch = { kind: 'dense' as const, rows: 3, cols: 2, labels: new Float32Array(3), x: Float32Array.from([1, 0, 9, 1, 0, 2]) };
    assert.deepEqual([...m.predict(batch, w)], [0, 1, 0]);
    const ev = m.evaluate(batch, w);
    assert.equal(ev.rows, 3);
    assert.equal(ev.lossSum, 1 + 2 + 4);
    assert.throws(() => createModel({ type: 'kmeans', features: 2, classes: 2 }), { code: 'MODEL_SPEC', message: /spec.clusters must be an integer/ });
  });
});

describe('Lloyd as a collective', () => {
  let dir: string;
  let storeUrl: string;
  let datasets: DatasetStore;
  let ps: ParamServer;
  let manifest: DatasetManifest;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cirrus-kmeans-'));
    storeUrl = pathToFileURL(dir).href;
    datasets = await DatasetStore.open(storeUrl);
    ps = await startParamServer({ port: 0 });
    manifest = await writeDataset(datasets, { name: 'blobs', kind: 'dense', features: F, train: [37, 50, 23, 61, 44, 30, 52, 41], test: [60] });
  });

  after(async () => {
    await datasets?.close();
    await ps?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function event(jobId: string, rank: number, world: number, init: 'kmeans++' | 'random', extra: Record<string, unknown> = {}, deadlineMs = Date.now() + 600_000): TrainEvent {
    return parseWorkerEvent({
      jobId,
      rank,
      world,
      attempt: 0,
      deadlineMs,
      task: {
        type: 'train',
        dataset: 'blobs',
        model: { type: 'kmeans', features: F, classes: 2, clusters: K, init },
        algorithm: 'lloyd',
        sync: 'bsp',
        collective: 'allreduce',
        epochs: ITERATIONS,
        batchSize: 16,
        optimizer: { type: 'sgd', lr: 1 },
        l2: 0,
        seed: 11,
        roundTimeoutMs: 60_000,
        ...extra,
      },
      endpoints: { store: storeUrl, channel: { kind: 'ps', address: ps.address } },
    }) as TrainEvent;
  }

  /** Every train row, in shard order. */
  async function allRows(): Promise<Float32Array> {
    const parts: Float32Array[] = [];
    for (const ref of manifest.train.shards) {
      const s = await datasets.readShard(ref);
      assert.equal(s.kind, 'dense');
      if (s.kind === 'dense') parts.push(s.x);
    }
    const x = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      x.set(p, o);
      o += p.length;
    }
    return x;
  }

  it('1, 2 and 4 workers end with the centroids and assignments of a sequential Lloyd from the same start', async () => {
    const x = await allRows();
    const rows = manifest.trainRows;
    for (const init of ['kmeans++', 'random'] as const) {
      // The workers draw the start from the leading shards' rows (all 338 here: fewer than the sample size).
      const start = initialCentroids(x, rows, F, K, 11, init);
      const ref = lloydReference(x, rows, F, start, ITERATIONS);
      for (const world of [1, 2, 4]) {
        const jobId = `lloyd-${init === 'random' ? 'r' : 'pp'}-${world}`;
        const results = await Promise.all(Array.from({ length: world }, (_, r) => runTrain(event(jobId, r, world, init))));
        assert.ok(results.every((r) => r.status === 'done' && r.steps === ITERATIONS), `${jobId}: every rank ran ${ITERATIONS} iterations`);
        const ch = await openChannel({ kind: 'ps', address: ps.address });
        const bytes = await ch.get(finalModelKey(jobId));
        await ch.close();
        assert.ok(bytes, `${jobId}: final centroids published`);
        const got = unpackMessage<{ weights: Float32Array }>(bytes).weights;
        let maxDiff = 0;
        for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref.centroids[i]!));
        assert.ok(maxDiff < 1e-5, `${jobId}: centroids within 1e-5 of the sequential run (max diff ${maxDiff})`);
        const assign = new KMeans({ type: 'kmeans', features: F, classes: 2, clusters: K }).predict({ kind: 'dense', rows, cols: F, labels: new Float32Array(rows), x }, got);
        assert.deepEqual([...assign], [...ref.assignments], `${jobId}: same assignments`);
        // The last iteration's training loss is the SSE per row of the sequential run's last iteration.
        const lastLoss = results[0]!.trainLoss;
        assert.ok(Math.abs(lastLoss - ref.sse[ITERATIONS - 1]! / rows) < 1e-4, `${jobId}: train loss ${lastLoss} vs ${ref.sse[ITERATIONS - 1]! / rows}`);
      }
      // Lloyd's never increases the SSE.
      for (let i = 1; i < ref.sse.length; i++) assert.ok(ref.sse[i]! <= ref.sse[i - 1]! + 1e-6, `SSE ${ref.sse.join(', ')} is non-increasing`);
    }
  });

  it('generations stopped by a passed deadline (one iteration each) resume from their checkpoints and end with the centroids of an uninterrupted run', async () => {
    const world = 2;
    const whole = await Promise.all(Array.from({ length: world }, (_, r) => runTrain(event('lloyd-whole', r, world, 'kmeans++'))));
    let resume: Array<number | undefined> = [];
    let generations = 0;
    for (let generation = 0; generation < 20; generation++) {
      const from = resume;
      const results = await Promise.all(
        Array.from({ length: world }, (_, r) => runTrain(event('lloyd-chain', r, world, 'kmeans++', { generation, ...(from[r] !== undefined ? { resumeFrom: from[r] } : {}) }, Date.now() + 1))),
      );
      generations++;
      if (results[0]!.status === 'done') break;
      assert.ok(results.every((r) => r.status === 'checkpointed'), 'all ranks stop together');
      resume = results.map((r) => r.checkpoint);
    }
    assert.equal(generations, ITERATIONS, 'one iteration per generation');
    const ch = await openChannel({ kind: 'ps', address: ps.address });
    try {
      const a = unpackMessage<{ weights: Float32Array }>((await ch.get(finalModelKey('lloyd-whole')))!).weights;
      const b = unpackMessage<{ weights: Float32Array }>((await ch.get(finalModelKey('lloyd-chain')))!).weights;
      assert.deepEqual(b, a);
    } finally {
      await ch.close();
    }
    assert.equal(whole[0]!.steps, ITERATIONS);
  });

  it('a ranks-only mismatch fails with one clear error: lloyd with another model', async () => {
    const e = event('lloyd-bad', 0, 1, 'random');
    e.task.model = { type: 'dense-lr', features: F, classes: 2 };
    await assert.rejects(runTrain(e), { code: 'TRAIN_MODEL_SPEC', message: /algorithm 'lloyd' trains kmeans models, not dense-lr/ });
  });

  it('params: kmeans defaults to lloyd and refuses other algorithms and sync modes', () => {
    assert.equal(parseTrainParams({ dataset: 'd', model: 'kmeans' }).algorithm, 'lloyd');
    assert.throws(() => parseTrainParams({ dataset: 'd', model: 'kmeans', algorithm: 'ga-sgd' }), { code: 'TRAIN_PARAMS', message: /kmeans trains with 'lloyd'/ });
    assert.throws(() => parseTrainParams({ dataset: 'd', model: 'kmeans', sync: 'asp' }), { code: 'TRAIN_PARAMS', message: /params.sync: 'lloyd' runs under 'bsp'/ });
  });

  it('cirrus.train with 2 worker processes reports the test SSE of its centroids and exports them', async () => {
    const result = await train({ dataset: 'blobs', store: storeUrl, model: 'kmeans', clusters: K, workers: 2, epochs: ITERATIONS, batchSize: 16, seed: 11, channel: 'ps' });
    const centroids = result.model.centroids();
    assert.equal(centroids.length, K);
    assert.ok(centroids.every((c) => c.length === F));
    let sse = 0;
    let rows = 0;
    for (const ref of manifest.test.shards) {
      const s = await datasets.readShard(ref);
      assert.equal(s.kind, 'dense');
      if (s.kind !== 'dense') continue;
      sse += result.model.evaluate(s).lossSum;
      rows += s.rows;
    }
    assert.ok(Math.abs(result.metrics.testLoss - sse / rows) < 1e-9, `testLoss ${result.metrics.testLoss} is the test SSE per row ${sse / rows}`);
    const x = await allRows();
    const ref = lloydReference(x, manifest.trainRows, F, initialCentroids(x, manifest.trainRows, F, K, 11, 'kmeans++'), ITERATIONS);
    let maxDiff = 0;
    result.model.weights.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - ref.centroids[i]!))));
    assert.ok(maxDiff < 1e-5, `centroids within 1e-5 of the sequential run (max diff ${maxDiff})`);
  });
});
