/**
 * k-means by Lloyd's algorithm as a collective (algorithm 'lloyd', BSP only): one epoch is one
 * iteration. Each rank assigns the rows of its shards to the nearest centroid, summing per centroid
 * the residuals x - c_j and the counts; one all-reduce of [sums (k*F), counts (k), sse, rows,
 * stopFlag, checkpointFlag] per iteration; every rank then moves the centroids itself
 * (algorithms/models/kmeans.ts moveCentroids: empty clusters keep their place), so the ranks hold
 * identical centroids without another exchange.
 *
 * The first centroids come from the data: every rank reads the same leading train shards (up to
 * a sample of max(INIT_SAMPLE_MIN, INIT_SAMPLE_PER_CLUSTER * k) rows) and runs the same seeded
 * k-means++ (or random) pick, so they agree without communicating.
 *
 * Stops and checkpoints fall between iterations only (a partial iteration's sums are not worth
 * saving): the position is then always the start of an epoch, and a relaunched generation resumes
 * with the centroids of the last committed iteration.
 */
import { LloydAccumulator, centroidNorms, initialCentroids, moveCentroids, type KMeansInit, type DenseBatch } from '../algorithms/index.js';
import type { Reduce } from './sync-bsp.js';
import { DeadlineWatch, WorkerTrainError, checkFinite, runEpochs, type LoopOutcome, type TrainContext, type TrainState } from './train-common.js';

const INIT_SAMPLE_MIN = 4096;
const INIT_SAMPLE_PER_CLUSTER = 10;

/** The dense rows of the leading train shards, at most `want` of them (identical on every rank). */
async function sampleRows(ctx: TrainContext, want: number): Promise<{ x: Float32Array; rows: number }> {
  const F = ctx.model.spec.features;
  const parts: Float32Array[] = [];
  let rows = 0;
  for (const ref of ctx.manifest.train.shards) {
    if (rows >= want) break;
    const shard = await ctx.data.readShard(ref);
    if (shard.kind !== 'dense') throw new WorkerTrainError('TRAIN_MODEL_MISMATCH', ctx.rank, `kmeans takes dense rows, but a shard of '${ctx.manifest.name}' is ${shard.kind}`);
    const take = Math.min(shard.rows, want - rows);
    parts.push(shard.x.subarray(0, take * F));
    rows += take;
  }
  const x = new Float32Array(rows * F);
  let o = 0;
  for (const p of parts) {
    x.set(p, o);
    o += p.length;
  }
  return { x, rows };
}

/** The starting centroids from the data (see the file comment). */
async function lloydStart(ctx: TrainContext): Promise<Float32Array> {
  const spec = ctx.model.spec;
  const k = spec.clusters!;
  const F = spec.features;
  if (ctx.manifest.trainRows < k) throw new WorkerTrainError('TRAIN_DATASET', ctx.rank, `kmeans with k = ${k} needs at least ${k} training rows, dataset '${ctx.manifest.name}' has ${ctx.manifest.trainRows}`);
  const { x, rows } = await sampleRows(ctx, Math.max(INIT_SAMPLE_MIN, INIT_SAMPLE_PER_CLUSTER * k));
  const t0 = performance.now();
  const c = initialCentroids(x, rows, F, k, ctx.task.seed, (spec.init ?? 'kmeans++') as KMeansInit);
  ctx.timings.computeMs += performance.now() - t0;
  return c;
}

export async function runLloyd(ctx: TrainContext, state: TrainState, reduce: Reduce, watch: DeadlineWatch): Promise<LoopOutcome> {
  const { model, rank } = ctx;
  const k = model.spec.clusters!;
  const F = model.spec.features;
  const n = k * F;
  if (state.epoch === 0 && state.slot === 0 && state.step === 0 && ctx.task.resumeFrom === undefined) state.weights.set(await lloydStart(ctx));
  const vec = new Float32Array(n + k + 4);
  const sums = new Float64Array(n);
  const counts = new Float64Array(k);
  const cnorm = new Float64Array(k);
  const acc = new LloydAccumulator(k, F);
  const rounds = ctx.roundsPerEpoch;
  const own = ctx.batchesPerRank[rank]!;
  // Set when a periodic checkpoint was agreed: written at the start of the next iteration, whose
  // position (slot 0) is the one a relaunch resumes from without re-reading a finished epoch.
  let checkpointDue = false;

  return runEpochs(ctx, state, async (reader) => {
    if (checkpointDue) {
      checkpointDue = false;
      await ctx.checkpoints.write(state);
    }
    if (state.slot >= rounds) return false;
    sums.fill(0);
    counts.fill(0);
    centroidNorms(state.weights, k, F, cnorm);
    let sse = 0;
    let rows = 0;
    for (let b = state.slot; b < own; b++) {
      const batch = await reader.next();
      if (batch.kind !== 'dense') throw new WorkerTrainError('TRAIN_MODEL_MISMATCH', rank, `kmeans takes dense rows, got a ${batch.kind} batch`);
      const t0 = performance.now();
      sse += acc.add(batch as DenseBatch, state.weights, cnorm, sums, counts);
      rows += batch.rows;
      ctx.timings.computeMs += performance.now() - t0;
    }
    ctx.rowsTrained += rows;
    for (let i = 0; i < n; i++) vec[i] = sums[i]!;
    for (let j = 0; j < k; j++) vec[n + j] = counts[j]!;
    vec[n + k] = sse;
    vec[n + k + 1] = rows;
    vec[n + k + 2] = watch.shouldStop() ? 1 : 0;
    vec[n + k + 3] = rank === 0 && ctx.checkpoints.due() ? 1 : 0;
    const t0 = performance.now();
    const out = await reduce(vec, 'sum');
    ctx.timings.commMs += performance.now() - t0;
    ctx.updateBytes += vec.byteLength;
    checkFinite(ctx, state, out[n + k]!);
    const t1 = performance.now();
    moveCentroids(state.weights, k, F, out.subarray(0, n), out.subarray(n, n + k));
    ctx.timings.computeMs += performance.now() - t1;
    state.step++;
    state.epochLossSum += out[n + k]!;
    state.epochRows += out[n + k + 1]!;
    state.slot = rounds;
    const stop = out[n + k + 2]! > 0;
    checkpointDue = out[n + k + 3]! > 0 && !stop;
    watch.lap();
    return stop;
  });
}
