/**
 * The `admm` algorithm (BSP only): consensus ADMM as in LambdaML (algorithms/admm.ts has the
 * arithmetic). One epoch is one ADMM round: the rank starts its local model from the consensus z,
 * runs task.admmPasses SGD passes over its shards on f_i(w) + (rho/2)|w - z + u_i|^2, then one
 * all-reduce of [w_i + u_i (size), lossSum, rows, stopFlag, checkpointFlag]; every rank computes the
 * same z (the run's published model, state.weights) and its own dual update.
 *
 * f_i is scaled by W * n_i / N (n_i: the rank's rows, N: all rows), so sum_i f_i is W times the mean
 * loss over all rows even when shards are uneven, and the consensus objective equals GA-SGD's.
 * Stops and checkpoints fall between rounds; a checkpoint carries the dual (TrainState.admmDual).
 */
import { admmConsensus, admmDualUpdate, admmLocalGradient } from '../algorithms/index.js';
import type { Reduce } from './sync-bsp.js';
import { DeadlineWatch, EpochReader, WorkerTrainError, checkFinite, runEpochs, type LoopOutcome, type TrainContext, type TrainState } from './train-common.js';

/** Models ADMM is offered for: convex linear models whose local solve is plain SGD. */
const ADMM_MODELS: readonly string[] = ['sparse-lr', 'dense-lr', 'svm', 'softmax'];

export async function runAdmm(ctx: TrainContext, state: TrainState, reduce: Reduce, watch: DeadlineWatch): Promise<LoopOutcome> {
  const { model, optimizer, task, rank, world } = ctx;
  if (!ADMM_MODELS.includes(task.model.type)) throw new WorkerTrainError('TRAIN_MODEL_SPEC', rank, `admm trains ${ADMM_MODELS.join(', ')}, not ${task.model.type}`);
  const n = model.size;
  const rho = task.rho;
  const passes = task.admmPasses;
  const u = (state.admmDual ??= new Float32Array(n));
  const w = new Float32Array(n);
  const grad = new Float32Array(n);
  const g = new Float32Array(n);
  const vec = new Float32Array(n + 4);
  const rounds = ctx.roundsPerEpoch;
  const own = ctx.batchesPerRank[rank]!;
  // This rank's rows per epoch (shard i belongs to rank i % world) and the scale of its loss share.
  let mine = 0;
  ctx.manifest.train.shards.forEach((ref, i) => {
    if (i % world === rank) mine += ref.rows;
  });
  const scale = (world * mine) / ctx.manifest.trainRows;
  let checkpointDue = false;

  return runEpochs(ctx, state, async (reader) => {
    if (checkpointDue) {
      checkpointDue = false;
      await ctx.checkpoints.write(state);
    }
    if (state.slot >= rounds) return false;
    const z = state.weights;
    w.set(z);
    let lossSum = 0;
    let rows = 0;
    for (let pass = 0; pass < passes; pass++) {
      // Later passes reread the rank's shards in another order (the shard cache keeps them when they fit).
      const r = pass === 0 ? reader : new EpochReader(ctx, state.epoch * passes + pass + 1_000_000);
      try {
        for (let b = 0; b < own; b++) {
          const batch = await r.next();
          const t0 = performance.now();
          grad.fill(0);
          const loss = model.gradient(batch, w, grad);
          if (pass === 0) {
            // The round's training loss: of the local models on their first pass.
            lossSum += loss;
            rows += batch.rows;
          }
          admmLocalGradient(g, grad, batch.rows, scale, rho, w, z, u);
          optimizer.step(w, g);
          state.step++;
          ctx.timings.computeMs += performance.now() - t0;
          ctx.rowsTrained += batch.rows;
        }
      } finally {
        if (r !== reader) await r.close();
      }
    }
    for (let i = 0; i < n; i++) vec[i] = w[i]! + u[i]!;
    vec[n] = lossSum;
    vec[n + 1] = rows;
    vec[n + 2] = watch.shouldStop() ? 1 : 0;
    vec[n + 3] = rank === 0 && ctx.checkpoints.due() ? 1 : 0;
    const t0 = performance.now();
    const out = await reduce(vec, 'sum');
    ctx.timings.commMs += performance.now() - t0;
    ctx.updateBytes += vec.byteLength;
    checkFinite(ctx, state, out[n]!, w);
    const t1 = performance.now();
    admmConsensus(z, out, world, rho, task.l2);
    admmDualUpdate(u, w, z);
    ctx.timings.computeMs += performance.now() - t1;
    state.epochLossSum += out[n]!;
    state.epochRows += out[n + 1]!;
    state.slot = rounds;
    const stop = out[n + 2]! > 0;
    checkpointDue = out[n + 3]! > 0 && !stop;
    watch.lap();
    return stop;
  });
}
