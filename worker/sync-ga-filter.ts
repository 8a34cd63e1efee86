/**
 * GA-SGD under BSP with MLLess's significance filter (task.filterThreshold > 0): instead of
 * all-reducing the whole gradient, each rank offers its share of the mean gradient
 * (gradSum / (rows * W)) to its SignificanceFilter and all-gathers only the significant
 * coordinates as a sparse message; every rank adds the W messages in rank order, so all ranks
 * take the same step. What a rank holds back goes out when it grows, or with its last batch of
 * the run. Held-back updates are not checkpointed: a rolled-back run continues without them.
 *
 * Message (one Float32Array; indices travel as their uint32 bits):
 *   [lossSum, rows, stopFlag, checkpointFlag, k, index_1 .. index_k, value_1 .. value_k]
 */
import { checkFinite, maybePublishMidEpoch, runEpochs, type DeadlineWatch, type LoopOutcome, type TrainContext, type TrainState } from './train-common.js';
import { SignificanceFilter } from './significance-filter.js';

/** All-gathers one vector per rank (rank order). */
export type Gather = (vec: Float32Array) => Promise<Float32Array[]>;

const HEAD = 5;

export async function runGaBspFiltered(ctx: TrainContext, state: TrainState, gather: Gather, watch: DeadlineWatch): Promise<LoopOutcome> {
  const { model, optimizer, task, world } = ctx;
  const n = model.size;
  const grad = new Float32Array(n);
  const g = new Float32Array(n);
  const filter = new SignificanceFilter(n, task.filterThreshold, task.optimizer.lr);
  const rounds = ctx.roundsPerEpoch;
  const own = ctx.batchesPerRank[ctx.rank]!;
  let touched = new Uint32Array(1024);
  let shares = new Float32Array(1024);

  const message = (lossSum: number, rows: number, idx: Uint32Array, val: Float32Array): Float32Array => {
    const buf = new ArrayBuffer((HEAD + 2 * idx.length) * 4);
    const f = new Float32Array(buf);
    const u = new Uint32Array(buf);
    f[0] = lossSum;
    f[1] = rows;
    f[2] = watch.shouldStop() ? 1 : 0;
    f[3] = ctx.rank === 0 && ctx.checkpoints.due() ? 1 : 0;
    u[4] = idx.length;
    u.set(idx, HEAD);
    f.set(val, HEAD + idx.length);
    return f;
  };

  return runEpochs(ctx, state, async (reader) => {
    while (state.slot < rounds) {
      let lossSum = 0;
      let rows = 0;
      let idx: Uint32Array = new Uint32Array(0);
      let val: Float32Array = new Float32Array(0);
      if (state.slot < own) {
        const batch = await reader.next();
        const t0 = performance.now();
        grad.fill(0);
        lossSum = model.gradient(batch, state.weights, grad);
        rows = batch.rows;
        // The coordinates this batch touched, with this rank's share of the mean gradient.
        let k = 0;
        const scale = 1 / (rows * world);
        for (let i = 0; i < n; i++) {
          if (grad[i] !== 0) {
            if (k === touched.length) {
              const t = new Uint32Array(k * 2);
              t.set(touched);
              touched = t;
              const s = new Float32Array(k * 2);
              s.set(shares);
              shares = s;
            }
            touched[k] = i;
            shares[k++] = grad[i]! * scale;
          }
        }
        const f = filter.offer(touched.subarray(0, k), shares.subarray(0, k), state.weights, state.epoch);
        idx = f.indices.slice();
        val = f.values.slice();
        if (state.slot === own - 1 && state.epoch === task.epochs - 1) {
          const rest = filter.flush();
          [idx, val] = merge(idx, val, rest.indices, rest.values);
        }
        ctx.timings.computeMs += performance.now() - t0;
        ctx.rowsTrained += rows;
      }
      const msg = message(lossSum, rows, idx, val);
      const t1 = performance.now();
      const all = await gather(msg);
      ctx.timings.commMs += performance.now() - t1;
      ctx.updateBytes += msg.byteLength;
      let totalLoss = 0;
      let totalRows = 0;
      let stop = false;
      let checkpoint = false;
      const t2 = performance.now();
      g.fill(0);
      for (const m of all) {
        const u = new Uint32Array(m.buffer, m.byteOffset, m.length);
        totalLoss += m[0]!;
        totalRows += m[1]!;
        stop ||= m[2]! > 0;
        checkpoint ||= m[3]! > 0;
        const k = u[4]!;
        for (let j = 0; j < k; j++) g[u[HEAD + j]!]! += m[HEAD + k + j]!;
      }
      checkFinite(ctx, state, totalLoss);
      if (totalRows > 0) {
        const w = state.weights;
        for (let i = 0; i < n; i++) g[i] = g[i]! + task.l2 * w[i]!;
        optimizer.step(w, g);
        state.step++;
      }
      ctx.timings.computeMs += performance.now() - t2;
      state.epochLossSum += totalLoss;
      state.epochRows += totalRows;
      state.slot++;
      if (checkpoint && !stop) await ctx.checkpoints.write(state);
      watch.lap();
      await maybePublishMidEpoch(ctx, state);
      if (stop) return true;
    }
    return false;
  });
}

/** The union of two sparse vectors with disjoint increasing indices. */
function merge(ai: Uint32Array, av: Float32Array, bi: Uint32Array, bv: Float32Array): [Uint32Array, Float32Array] {
  const idx = new Uint32Array(ai.length + bi.length);
  const val = new Float32Array(idx.length);
  let i = 0, j = 0, k = 0;
  while (i < ai.length || j < bi.length) {
    if (j >= bi.length || (i < ai.length && ai[i]! < bi[j]!)) {
      idx[k] = ai[i]!;
      val[k++] = av[i++]!;
    } else {
      idx[k] = bi[j]!;
      val[k++] = bv[j++]!;
    }
  }
  return [idx, val];
}
