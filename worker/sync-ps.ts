/**
 * The `async-sgd` algorithm (Cirrus's path): the model lives on the parameter server, which runs
 * the optimizer. Per batch a worker pulls only the weights the batch touches (SupportFinder),
 * computes the mean gradient on them and pushes it back as a sparse update; the server applies
 * it per coordinate (with L2 on the touched coordinates).
 *
 * Sync modes (the server enforces them):
 *   async  Hogwild: every push applied at once, pulls never wait.
 *   asp    bounded staleness: a worker at clock c pulls with minClock c - staleness, so it waits
 *          until every rank pushed at least that many times.
 *   bsp    the server sums the W pushes of a round and applies them once; a pull for round r waits
 *          until round r - 1 was applied.
 * A rank's clock is its number of pushes over all generations. Under asp and bsp a rank with fewer
 * batches in an epoch pushes empty updates for its missing slots, so nobody waits for slots it will
 * never fill.
 *
 * Pipelining: pushes are not awaited one by one (a window of them is in flight); the next pull
 * goes out on the same connection right behind the push, and the server answers in order, so a
 * worker always reads its own previous update.
 *
 * Stopping for a checkpoint: a rank near its deadline sets the job's stop key for this generation;
 * every rank checks it every STOP_CHECK_EVERY steps and while it waits at the end, so all ranks of
 * a generation return 'checkpointed' together (the model itself stays on the server).
 */
import { psDoneKey, psModelName, psPushedKey, psStopKey, CollectiveTimeoutError } from '../channels/index.js';
import { SPARSE_GRADIENT_MODELS, SupportFinder } from '../algorithms/index.js';
import { decodeU32, encodeU32, type ModelConfig, type OptimizerConfig, type SyncConfig } from '../paramserver/index.js';
import { DeadlineWatch, WorkerTrainError, checkFinite, publishModel, runEpochs, type LoopOutcome, type TrainContext, type TrainState } from './train-common.js';
import type { TrainTask } from './event.js';
import { SignificanceFilter } from './significance-filter.js';

/** What the loop needs of a parameter-server client (ParamClient and ShardedParamClient both fit). */
export interface PsModelClient {
  createModel(name: string, config: ModelConfig, init?: Float32Array): Promise<void>;
  push(name: string, g: { rank: number; clock: number; indices?: Uint32Array; values: Float32Array }): Promise<void>;
  pullSparse(name: string, indices: Uint32Array, opts?: { minClock?: number; timeoutMs?: number }): Promise<{ values: Float32Array; clock: number }>;
  pullFull(name: string, opts?: { minClock?: number; timeoutMs?: number }): Promise<{ values: Float32Array; clock: number }>;
  set(key: string, value: Uint8Array): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  wait(key: string, timeoutMs: number): Promise<Uint8Array | undefined>;
}

/** Pushes in flight before the loop waits for the oldest. */
const PUSH_WINDOW = 8;
/** Steps between checks of the stop key. */
const STOP_CHECK_EVERY = 32;
/** One WAIT on another rank's done key before the stop key is checked again. */
const DONE_WAIT_SLICE_MS = 250;

const FLAG = new Uint8Array([1]);
const EMPTY_INDICES = new Uint32Array(0);
const EMPTY_VALUES = new Float32Array(0);

/** The server-side optimizer for the task's optimizer spec and L2. */
function psOptimizerConfig(task: Pick<TrainTask, 'optimizer' | 'l2'>): OptimizerConfig {
  const o = task.optimizer;
  return {
    type: o.type,
    learningRate: o.lr,
    ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
    ...(o.beta1 !== undefined ? { beta1: o.beta1 } : {}),
    ...(o.beta2 !== undefined ? { beta2: o.beta2 } : {}),
    ...(o.eps !== undefined ? { epsilon: o.eps } : {}),
    ...(task.l2 > 0 ? { l2: task.l2 } : {}),
  };
}

function psSyncConfig(task: Pick<TrainTask, 'sync' | 'staleness'>, world: number): SyncConfig {
  if (task.sync === 'async') return { mode: 'async' };
  if (task.sync === 'bsp') return { mode: 'bsp', workers: world, reduce: 'mean' };
  return { mode: 'ssp', workers: world, staleness: task.staleness };
}

function psModelConfig(task: TrainTask, size: number, world: number): ModelConfig {
  return { size, optimizer: psOptimizerConfig(task), sync: psSyncConfig(task, world) };
}

export async function runPsSgd(ctx: TrainContext, state: TrainState, watch: DeadlineWatch, ps: PsModelClient): Promise<LoopOutcome> {
  const { model, task, rank, world, jobId } = ctx;
  const name = psModelName(jobId);
  const finder = new SupportFinder(task.model);
  const rounds = ctx.roundsPerEpoch;
  const own = ctx.batchesPerRank[rank]!;
  const mode = psSyncConfig(task, world).mode;
  const grad = new Float32Array(model.size);
  const timeoutMs = task.roundTimeoutMs;
  const stopKey = psStopKey(jobId, task.generation);
  const inflight: Array<Promise<void>> = [];
  let clock = state.round;
  let stopMine = false;

  const timed = async <T>(f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await f();
    } finally {
      ctx.timings.commMs += performance.now() - t0;
    }
  };
  // async: each push is followed by the count of pushes sent, on the server. Sent right behind the
  // push (on the same connection unless the model is sharded), the count never runs ahead of the
  // pushes the server applied, and lags them by at most one when a worker dies between the two.
  const pushedKey = psPushedKey(jobId, rank);
  const countPushes = mode === 'async';
  const push = (indices: Uint32Array, values: Float32Array): void => {
    inflight.push(ps.push(name, { rank, clock, indices, values }));
    ctx.updateBytes += indices.byteLength + values.byteLength;
    clock++;
    if (countPushes) inflight.push(ps.set(pushedKey, encodeU32(clock)));
  };
  // MLLess's significance filter: only the coordinates whose accumulated update matters go out.
  const filter = task.filterThreshold > 0 ? new SignificanceFilter(model.size, task.filterThreshold, task.optimizer.lr) : undefined;
  const drain = async (keep: number): Promise<void> => {
    while (inflight.length > keep) await timed(() => inflight.shift()!);
  };
  const minClock = (): number => (mode === 'bsp' ? clock : mode === 'ssp' ? Math.max(0, clock - task.staleness) : 0);
  const stopRequested = async (): Promise<boolean> => (await timed(() => ps.get(stopKey))) !== undefined;
  /** Rank 0's view of the model for publishing: the server's current weights. */
  const refreshWeights = async (): Promise<void> => {
    if (rank !== 0) return;
    await drain(0);
    const { values } = await timed(() => ps.pullFull(name, { timeoutMs }));
    state.weights.set(values);
  };

  try {
    // Every rank creates the model with the same config and initial weights: the server keeps the
    // first and accepts identical repeats, so no rank has to go first.
    await timed(() => ps.createModel(name, psModelConfig(task, model.size, world), model.init(task.seed)));
    // A relaunched rank resumes from its checkpoint, but the pushes it sent after that checkpoint
    // were applied already: it passes over those batches (reading them, to keep its data order)
    // instead of applying them twice. Their loss is not in the epoch's train loss.
    let skipUntil = clock;
    if (countPushes) {
      const sent = await timed(() => ps.get(pushedKey));
      if (sent !== undefined && sent.byteLength === 4) skipUntil = Math.max(clock, decodeU32(sent, 'pushed count'));
    }

    const outcome = await runEpochs(
      ctx,
      state,
      async (reader) => {
        while (state.slot < rounds) {
          if (state.slot < own && clock < skipUntil) {
            await reader.next();
            clock++;
            state.step++;
          } else if (state.slot < own) {
            const batch = await reader.next();
            const indices = finder.find(batch).slice();
            const { values } = await timed(() => ps.pullSparse(name, indices, { minClock: minClock(), timeoutMs }));
            const t0 = performance.now();
            const w = state.weights;
            for (let k = 0; k < indices.length; k++) w[indices[k]!] = values[k]!;
            const loss = model.gradient(batch, w, grad);
            checkFinite(ctx, state, loss);
            state.epochLossSum += loss;
            state.epochRows += batch.rows;
            const g = new Float32Array(indices.length);
            const inv = 1 / batch.rows;
            for (let k = 0; k < indices.length; k++) {
              const i = indices[k]!;
              g[k] = grad[i]! * inv;
              grad[i] = 0; // keep grad all-zero between steps without clearing all of it
            }
            ctx.timings.computeMs += performance.now() - t0;
            if (filter) {
              const f = filter.offer(indices, g, w, state.epoch);
              // The rank's last batch of the run also carries everything still held back.
              if (state.slot === own - 1 && state.epoch === task.epochs - 1) push(...mergeSparse(f.indices, f.values, filter.flush()));
              else push(f.indices.slice(), f.values.slice());
            } else {
              push(indices, g);
            }
            state.step++;
            ctx.rowsTrained += batch.rows;
          } else if (mode !== 'async') {
            // BSP takes exactly one push per rank and round: wait for the previous round first.
            if (mode === 'bsp') await timed(() => ps.pullSparse(name, EMPTY_INDICES, { minClock: clock, timeoutMs }));
            push(EMPTY_INDICES, EMPTY_VALUES);
          }
          state.slot++;
          state.round = clock;
          await drain(countPushes ? 2 * PUSH_WINDOW : PUSH_WINDOW); // each push has its count behind it
          watch.lap();
          if (!stopMine && watch.shouldStop()) {
            stopMine = true;
            await timed(() => ps.set(stopKey, FLAG));
          }
          const stop = stopMine || (state.step % STOP_CHECK_EVERY === 0 && (await stopRequested()));
          // A rank's own checkpoint (its position; the model stays on the server): a relaunch of this rank resumes here.
          if (!stop && ctx.checkpoints.due()) await ctx.checkpoints.write(state);
          if (task.publishEvery > 0 && state.slot % task.publishEvery === 0 && state.slot < rounds) {
            await refreshWeights();
            await publishModel(ctx, state);
          }
          if (stop) return true;
        }
        return false;
      },
      async (completed) => {
        await drain(0);
        if (completed) await refreshWeights();
      },
    );
    if (outcome === 'stopped') return 'stopped';
    await drain(0);
    // Everyone marks itself done and waits for the others, so all ranks agree on the outcome.
    await timed(() => ps.set(psDoneKey(jobId, task.generation, rank), FLAG));
    if (await waitForOthers(ctx, ps, stopKey)) return 'stopped';
    await refreshWeights();
    return 'done';
  } finally {
    // A failed push must not surface as an unhandled rejection after the loop has thrown.
    await Promise.allSettled(inflight);
  }
}

/** The union of two sparse vectors with disjoint increasing indices, increasing. */
function mergeSparse(ai: Uint32Array, av: Float32Array, b: { indices: Uint32Array; values: Float32Array }): [Uint32Array, Float32Array] {
  const n = ai.length + b.indices.length;
  const idx = new Uint32Array(n);
  const val = new Float32Array(n);
  let i = 0, j = 0, k = 0;
  while (i < ai.length || j < b.indices.length) {
    if (j >= b.indices.length || (i < ai.length && ai[i]! < b.indices[j]!)) {
      idx[k] = ai[i]!;
      val[k++] = av[i++]!;
    } else {
      idx[k] = b.indices[j]!;
      val[k++] = b.values[j++]!;
    }
  }
  return [idx, val];
}

/** Waits until every rank set its done key; true when some rank asked to stop meanwhile. */
async function waitForOthers(ctx: TrainContext, ps: PsModelClient, stopKey: string): Promise<boolean> {
  const { jobId, rank, world, task } = ctx;
  const pending = Array.from({ length: world }, (_, r) => r).filter((r) => r !== rank);
  const started = Date.now();
  let deadline = started + task.roundTimeoutMs;
  const t0 = performance.now();
  try {
    while (pending.length > 0) {
      const r = pending[0]!;
      if ((await ps.wait(psDoneKey(jobId, task.generation, r), DONE_WAIT_SLICE_MS)) !== undefined) {
        pending.shift();
        deadline = Date.now() + task.roundTimeoutMs; // progress restarts the deadline
        continue;
      }
      if ((await ps.get(stopKey)) !== undefined) return true;
      if (Date.now() >= deadline) throw new CollectiveTimeoutError('async-sgd', task.epochs, rank, pending, Date.now() - started);
    }
    return false;
  } finally {
    ctx.timings.commMs += performance.now() - t0;
  }
}

export function checkPsTask(task: TrainTask, rank: number): void {
  if (!SPARSE_GRADIENT_MODELS.includes(task.model.type)) {
    throw new WorkerTrainError('TRAIN_MODEL_SPEC', rank, `async-sgd needs a model with a sparse gradient (sparse-lr, svm or softmax), not ${task.model.type}`);
  }
}
