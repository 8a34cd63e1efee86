/**
 * Bulk-synchronous training: every rank takes part in every round, so all ranks agree on the
 * weights (GA-SGD) or on the averaged model (MA-SGD) after each exchange.
 *
 * Rounds per epoch are the maximum over ranks of their batch counts; a rank that has run out of
 * data contributes zeros (rows 0, or its unchanged weights), so nobody blocks and no row is
 * dropped. Each exchange also carries a stop flag: a rank near its deadline sets it, the reduced
 * (summed) flag is then > 0 on every rank, and all ranks stop after the same round. A checkpoint
 * flag works the same way: rank 0 sets it when a periodic checkpoint is due, and every rank writes
 * its checkpoint after that round (BSP keeps the ranks in lockstep, so the ids agree).
 */
import type { ReduceOp } from '../channels/index.js';
import {
  DeadlineWatch,
  checkFinite,
  runEpochs,
  maybePublishMidEpoch,
  meanGradient,
  type LoopOutcome,
  type TrainContext,
  type TrainState,
} from './train-common.js';

/** The collective the loop reduces with (allReduce or scatterReduce, or a copy for a lone worker). The result is valid until the next call. */
export type Reduce = (vec: Float32Array, op: ReduceOp) => Promise<Float32Array>;

async function timedReduce(ctx: TrainContext, reduce: Reduce, vec: Float32Array): Promise<Float32Array> {
  const t0 = performance.now();
  const out = await reduce(vec, 'sum');
  ctx.timings.commMs += performance.now() - t0;
  ctx.updateBytes += vec.byteLength;
  return out;
}

/**
 * GA-SGD: each round every rank sums the gradient of its batch and the ranks all-reduce one vector
 * [gradSum (size) ..., lossSum, rows, stopFlag, checkpointFlag]. Every rank then applies
 * g = gradSum / totalRows + l2 * w, so W workers with batch B take the step one worker would take
 * with batch W*B on the union of their rows, and keep bit-identical weights.
 */
export async function runGaBsp(ctx: TrainContext, state: TrainState, reduce: Reduce, watch: DeadlineWatch): Promise<LoopOutcome> {
  const { model, optimizer, task } = ctx;
  const n = model.size;
  const vec = new Float32Array(n + 4);
  const gradSum = vec.subarray(0, n);
  const g = new Float32Array(n);
  const rounds = ctx.roundsPerEpoch;
  const own = ctx.batchesPerRank[ctx.rank]!;

  return runEpochs(ctx, state, async (reader) => {
    while (state.slot < rounds) {
      vec.fill(0);
      if (state.slot < own) {
        const batch = await reader.next();
        const t0 = performance.now();
        vec[n] = model.gradient(batch, state.weights, gradSum);
        vec[n + 1] = batch.rows;
        ctx.timings.computeMs += performance.now() - t0;
        ctx.rowsTrained += batch.rows;
      }
      vec[n + 2] = watch.shouldStop() ? 1 : 0;
      vec[n + 3] = ctx.rank === 0 && ctx.checkpoints.due() ? 1 : 0;
      const out = await timedReduce(ctx, reduce, vec);
      checkFinite(ctx, state, out[n]!);
      const rows = out[n + 1]!;
      // rows is 0 only if no rank had a batch, which the max-over-ranks rule rules out; guard anyway.
      if (rows > 0) {
        const t0 = performance.now();
        meanGradient(g, out.subarray(0, n), rows, task.l2, state.weights);
        optimizer.step(state.weights, g);
        state.step++;
        ctx.timings.computeMs += performance.now() - t0;
      }
      state.epochLossSum += out[n]!;
      state.epochRows += rows;
      state.slot++;
      const stop = out[n + 2]! > 0;
      if (out[n + 3]! > 0 && !stop) ctx.checkpoints.writeBehind(state);
      watch.lap();
      await maybePublishMidEpoch(ctx, state);
      if (stop) return true;
    }
    return false;
  });
}

/**
 * MA-SGD: local steps with the rank's own mean gradient; every `averageEvery` batch slots and at
 * the end of each epoch the ranks all-reduce [weights ..., lossSum, rows, stopFlag, checkpointFlag] with op 'sum'
 * (the flag must be summed, not averaged) and divide the weights by W themselves.
 */
export async function runMaBsp(ctx: TrainContext, state: TrainState, reduce: Reduce, watch: DeadlineWatch): Promise<LoopOutcome> {
  const { model, optimizer, task, world } = ctx;
  const n = model.size;
  const vec = new Float32Array(n + 4);
  const grad = new Float32Array(n);
  const g = new Float32Array(n);
  const rounds = ctx.roundsPerEpoch;
  const own = ctx.batchesPerRank[ctx.rank]!;
  // Loss and rows since the last exchange (checkpoints happen at exchanges, so these start at 0).
  let lossSum = 0;
  let rowsSum = 0;

  return runEpochs(ctx, state, async (reader) => {
    while (state.slot < rounds) {
      if (state.slot < own) {
        const batch = await reader.next();
        const t0 = performance.now();
        grad.fill(0);
        lossSum += model.gradient(batch, state.weights, grad);
        rowsSum += batch.rows;
        meanGradient(g, grad, batch.rows, task.l2, state.weights);
        optimizer.step(state.weights, g);
        state.step++;
        ctx.timings.computeMs += performance.now() - t0;
        ctx.rowsTrained += batch.rows;
      }
      state.slot++;
      let stop = false;
      const exchange = state.slot === rounds || (task.averageEvery > 0 && state.slot % task.averageEvery === 0);
      if (exchange) {
        vec.set(state.weights);
        vec[n] = lossSum;
        vec[n + 1] = rowsSum;
        vec[n + 2] = watch.shouldStop() ? 1 : 0;
        vec[n + 3] = ctx.rank === 0 && ctx.checkpoints.due() ? 1 : 0;
        const out = await timedReduce(ctx, reduce, vec);
        checkFinite(ctx, state, out[n]!);
        const t0 = performance.now();
        for (let i = 0; i < n; i++) state.weights[i] = out[i]! / world;
        ctx.timings.computeMs += performance.now() - t0;
        state.epochLossSum += out[n]!;
        state.epochRows += out[n + 1]!;
        lossSum = 0;
        rowsSum = 0;
        watch.lap();
        stop = out[n + 2]! > 0;
        if (out[n + 3]! > 0 && !stop) ctx.checkpoints.writeBehind(state);
      }
      await maybePublishMidEpoch(ctx, state);
      if (stop) return true;
    }
    return false;
  });
}
