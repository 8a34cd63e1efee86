/**
 * The `train` task: the training loop of one stateless worker.
 *
 * Opens the dataset store and the channel, checks the model fits the dataset, initialises the
 * weights from the seed (identical on every rank) or restores the previous generation's
 * checkpoint, then runs one of the loops: GA-SGD or MA-SGD under BSP (sync-bsp.ts), or either
 * under ASP (sync-asp.ts), or async-sgd against the parameter server (sync-ps.ts). Near event.deadlineMs the ranks agree to stop, checkpoint
 * (checkpoint.ts) and return 'checkpointed'; the client relaunches them as generation + 1.
 */
import { ObjectStoreError, type Channel, type ChannelStats, emptyStats, Communicator, DatasetError, type DatasetManifest, ShardFormatError, DatasetStore, ChannelError, CollectiveError, CollectiveTimeoutError, openChannel, type ObjectStore } from '../channels/index.js';
import { ModelError, OptimizerError, createModel, createOptimizer, enableTfjsKernels, type Model, type ModelSpec, type Optimizer, type OptimizerSpec } from '../algorithms/index.js';
import { Checkpointer, loadCheckpoint } from './checkpoint.js';
import { Lease, fenced } from './lease.js';
import { runAsp } from './sync-asp.js';
import { openPsModelClient } from './ps-client.js';
import { PsError } from '../paramserver/index.js';
import { checkPsTask, runPsSgd } from './sync-ps.js';
import { runGaBsp, runMaBsp, type Reduce } from './sync-bsp.js';
import { runLloyd } from './train-lloyd.js';
import { runAdmm } from './train-admm.js';
import { runGaBspFiltered, type Gather } from './sync-ga-filter.js';
import {
  DeadlineWatch,
  ShardCache,
  WorkerTrainError,
  batchesPerRank,
  epochMean,
  publishFinal,
  publishProgress,
  type LoopOutcome,
  type Timings,
  type TrainContext,
  type TrainEvent,
  type TrainState,
} from './train-common.js';

export { WorkerTrainError, batchesPerRank, type WorkerTrainErrorCode, type TrainEvent, type Timings } from './train-common.js';

/**
 * Recovery timeline marks (CIRRUS_TIMELINE=1, set by `cirrus bench chaos`): one log line per step a
 * relaunch goes through, so the bench can tell where the time after a kill goes.
 */
function mark(what: 'entered' | 'granted' | 'adopted' | 'ready' | 'first-round', rank: number, generation: number, attempt: number): void {
  if (process.env.CIRRUS_TIMELINE === '1') console.log(`cirrus timeline ${what} rank ${rank} generation ${generation} attempt ${attempt} at ${Date.now()}`);
}

export interface TrainDeps {
  /** Model factory; default: the algorithms room's createModel. */
  createModel?: (spec: ModelSpec) => Model;
  /** Optimizer factory for `size` weights; default: the algorithms room's createOptimizer. */
  createOptimizer?: (spec: OptimizerSpec, size: number) => Optimizer;
  /** Use this channel instead of opening event.endpoints.channel. The caller owns it: it is not closed. */
  channel?: Channel;
  /** Use this dataset store instead of opening event.endpoints.store. Not closed either. */
  datasets?: DatasetStore;
}

export interface TrainResult {
  status: 'done' | 'checkpointed';
  generation: number;
  /** 'checkpointed': the id of the checkpoint the next generation resumes from. */
  checkpoint?: number;
  /** Where the next generation continues (done: epoch = epochs, batchInEpoch = 0). */
  epoch: number;
  batchInEpoch: number;
  /** Optimizer steps of this rank over all generations. */
  steps: number;
  /** Mean training loss of the last completed epoch (of the epoch so far if none completed). */
  trainLoss: number;
  /** Rows this rank computed gradients on in this generation. */
  rows: number;
  /** Bytes of updates this rank sent in this generation (see TrainContext.updateBytes). */
  updateBytes: number;
  channelStats: ChannelStats;
  /** Shards this generation read from the dataset store. */
  shardReads: number;
  timings: Timings;
}

const BINARY_MODELS: ReadonlySet<string> = new Set(['sparse-lr', 'dense-lr', 'svm']);

/**
 * Everything about the model spec that does not fit the dataset, as one typed error listing each
 * mismatch (so a user fixes them all at once).
 */
export function checkModelFits(spec: ModelSpec, manifest: DatasetManifest, rank = 0): void {
  const problems: string[] = [];
  if (spec.type === 'mf' || manifest.kind === 'ratings') {
    if (spec.type !== 'mf') problems.push(`the dataset holds ratings, but ${spec.type} trains on sparse or dense rows (use mf)`);
    else if (manifest.kind !== 'ratings') problems.push(`mf trains on ratings, but the dataset is ${manifest.kind}`);
    else {
      if ((spec.users ?? 0) < (manifest.users ?? 0)) problems.push(`model.users is ${spec.users}, but the dataset has ${manifest.users} users`);
      if ((spec.items ?? 0) < (manifest.items ?? 0)) problems.push(`model.items is ${spec.items}, but the dataset has ${manifest.items} items`);
    }
    if (problems.length > 0) throw new WorkerTrainError('TRAIN_MODEL_MISMATCH', rank, `model ${spec.type} does not fit dataset '${manifest.name}': ${problems.join('; ')}`);
    return;
  }
  if (spec.type === 'sparse-lr' && manifest.kind === 'dense') problems.push(`sparse-lr needs a sparse dataset, this one is dense (use dense-lr)`);
  if (spec.type === 'dense-lr' && manifest.kind === 'sparse') problems.push(`dense-lr needs a dense dataset, this one is sparse (use sparse-lr)`);
  // Dense rows must match column for column; a sparse feature space may sit inside a larger model.
  if (manifest.kind === 'dense' && spec.features !== manifest.features) problems.push(`model.features is ${spec.features}, but the dataset has ${manifest.features} features`);
  if (manifest.kind === 'sparse' && spec.features < manifest.features) problems.push(`model.features is ${spec.features}, but the dataset's sparse feature space has ${manifest.features} features`);
  if (spec.type === 'kmeans') {
    // Clustering ignores the labels: any task will do, but the rows must be dense.
    if (manifest.kind !== 'dense') problems.push(`kmeans needs a dense dataset, this one is ${manifest.kind}`);
  } else if (manifest.task === 'regression') {
    problems.push(`the dataset is a regression dataset, but ${spec.type} is a classifier`);
  } else if (BINARY_MODELS.has(spec.type)) {
    if (manifest.task !== 'binary') problems.push(`${spec.type} is a binary classifier, but the dataset is ${manifest.task} with ${manifest.classes} classes (use softmax)`);
    if (spec.classes !== 2) problems.push(`${spec.type} is a binary classifier, but model.classes is ${spec.classes}`);
  } else {
    if (spec.type === 'softmax' && manifest.task !== 'multiclass') problems.push(`softmax needs a multiclass dataset, this one is ${manifest.task} (use a binary model)`);
    if (spec.classes !== manifest.classes) problems.push(`model.classes is ${spec.classes}, but the dataset has ${manifest.classes} classes`);
  }
  if (problems.length > 0) {
    throw new WorkerTrainError('TRAIN_MODEL_MISMATCH', rank, `model ${spec.type} does not fit dataset '${manifest.name}': ${problems.join('; ')}`);
  }
}

function freshState(weights: Float32Array): TrainState {
  return { weights, epoch: 0, slot: 0, step: 0, round: 0, epochLossSum: 0, epochRows: 0, lastTrainLoss: NaN, asp: undefined };
}

/** Turns any failure into a WorkerTrainError that names the rank, keeping the cause's code. */
function asWorkerTrainError(err: unknown, rank: number): WorkerTrainError {
  if (err instanceof WorkerTrainError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const causeCode = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  if (err instanceof CollectiveTimeoutError) return new WorkerTrainError('COLLECTIVE_TIMEOUT', rank, message, { cause: err, causeCode, missingRanks: err.missingRanks });
  if (err instanceof DatasetError || err instanceof ObjectStoreError || err instanceof ShardFormatError) return new WorkerTrainError('TRAIN_DATASET', rank, message, { cause: err, causeCode });
  if (err instanceof ModelError) {
    // Bad labels or batch shapes come from the data; anything else is the spec.
    const fromData = err.code === 'MODEL_LABEL' || err.code === 'MODEL_BATCH';
    return new WorkerTrainError(fromData ? 'TRAIN_DATASET' : 'TRAIN_MODEL_SPEC', rank, message, { cause: err, causeCode });
  }
  if (err instanceof OptimizerError) return new WorkerTrainError('TRAIN_MODEL_SPEC', rank, message, { cause: err, causeCode });
  if (err instanceof ChannelError || err instanceof CollectiveError || err instanceof PsError) return new WorkerTrainError('TRAIN_CHANNEL', rank, message, { cause: err, causeCode });
  return new WorkerTrainError('TRAIN_FAILED', rank, message, { cause: err, causeCode });
}

export async function runTrain(event: TrainEvent, deps: TrainDeps = {}): Promise<TrainResult> {
  const { rank } = event;
  let datasets: DatasetStore | undefined;
  let lease: Lease | undefined;
  const owned: Array<{ close(): Promise<void> }> = [];
  if (event.task.lease) mark('entered', rank, event.task.generation, event.attempt);
  try {
    if (deps.datasets) datasets = deps.datasets;
    else owned.push((datasets = await DatasetStore.open(event.endpoints.store)));
    const spec = event.task.lease;
    const data = new ShardCache(datasets);
    // Reads are not fenced: this rank's shards load while its claim waits for the grant.
    if (spec) void datasets.manifest(event.task.dataset).then((m) => data.prefetch(m.train.shards.filter((_, i) => i % event.world === rank)), () => undefined);
    if (spec) lease = await Lease.acquire(datasets.store, { jobId: event.jobId, rank, generation: event.task.generation, attempt: event.attempt }, spec);
    if (lease) mark('granted', rank, event.task.generation, event.attempt);
    const result = lease ? await trainSupervised(event, deps, datasets, data, lease) : await trainOwned(event, deps, datasets, data, undefined, undefined);
    await lease?.writeResult({ ok: true, value: result });
    return result;
  } catch (err) {
    const e = asWorkerTrainError(err, rank);
    if (lease && e.code !== 'TRAIN_DUPLICATE') await lease.writeResult({ ok: false, error: { code: e.code, message: e.message } }).catch(() => undefined);
    throw e;
  } finally {
    lease?.stop();
    // Close what this call opened, whatever happened; a close failure must not mask the result or the error.
    await Promise.allSettled(owned.map((o) => o.close()));
  }
}

/** How often a BSP worker looks for an in-place rollback between heartbeats. */
const ROLLBACK_WATCH_MS = 250;

/** How long an abandoned loop may take to notice that its channel was closed. */
const ABANDON_WAIT_MS = 5_000;

/**
 * A supervised worker writes only while it owns its rank; losing it ends the run at once. An
 * in-place rollback (BSP) abandons the loop (its channel closes, its writes are refused) and starts
 * again in this process as the new generation from the committed checkpoint: no new cold start.
 */
async function trainSupervised(event: TrainEvent, deps: TrainDeps, datasets: DatasetStore, data: ShardCache, lease: Lease): Promise<TrainResult> {
  let ev = event;
  if (event.task.sync === 'bsp' && event.task.algorithm !== 'async-sgd') lease.watchRollbacks(ROLLBACK_WATCH_MS);
  for (;;) {
    const abandon = new AbortController();
    const loop = trainOwned(ev, deps, datasets, data, lease, abandon.signal);
    loop.catch(() => undefined);
    const next = await Promise.race([loop.then((result) => ({ result })), lease.lost, lease.rollback().then((directive) => ({ directive }))]);
    if ('result' in next) return next.result;
    abandon.abort();
    await Promise.race([loop.catch(() => undefined), sleep(ABANDON_WAIT_MS)]);
    const { generation, attempt, resumeFrom } = next.directive;
    mark('adopted', ev.rank, generation, attempt);
    const { resumeFrom: _old, ...task } = ev.task;
    ev = { ...ev, attempt, task: { ...task, generation, ...(resumeFrom !== undefined ? { resumeFrom } : {}) } };
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

const CHANNEL_WRITES = ['put', 'putParts', 'delete'] as const;
const PS_WRITES = ['createModel', 'push', 'set', 'register'] as const;

async function trainOwned(event: TrainEvent, deps: TrainDeps, datasets: DatasetStore, data: ShardCache, lease: Lease | undefined, abandoned: AbortSignal | undefined): Promise<TrainResult> {
  // What this loop opens closes with it; abandoning the loop closes it at once, so waits end.
  const owned: Array<{ close(): Promise<void> }> = [];
  // Each closes once, also one opened after an abandon began.
  const closeOwned = () => Promise.allSettled(owned.splice(0).map((o) => o.close()));
  abandoned?.addEventListener('abort', () => void closeOwned(), { once: true });
  try {
    return await trainLoop(event, deps, datasets, data, lease, owned);
  } finally {
    await closeOwned();
  }
}

async function trainLoop(event: TrainEvent, deps: TrainDeps, datasets: DatasetStore, data: ShardCache, lease: Lease | undefined, owned: Array<{ close(): Promise<void> }>): Promise<TrainResult> {
  const started = performance.now();
  const { rank, world, jobId, task } = event;
  const timings: Timings = { computeMs: 0, commMs: 0, dataWaitMs: 0, totalMs: 0 };
  // Writes of this loop are allowed while the copy owns the rank as this loop's generation.
  const guard = lease ? () => lease.guard(task.generation) : undefined;
  const fence = <T extends object>(x: T, writes: readonly string[]): T => (guard ? fenced(x, guard, writes) : x);
  // The MLP's matmuls run 4-5x faster on tfjs-wasm. Loading tfjs and compiling its WASM takes a few
  // hundred ms, so it starts now and overlaps the store, channel and manifest round trips.
  const tfjsReady = task.model.type === 'mlp' && !deps.createModel ? enableTfjsKernels() : undefined;
  tfjsReady?.catch(() => undefined); // awaited below; an earlier failure must not leave it unhandled
  let channel: Channel | undefined;
  if (deps.channel) channel = deps.channel;
  else if (event.endpoints.channel !== undefined) owned.push((channel = await openChannel(event.endpoints.channel, 'event.endpoints.channel')));
  else if (world > 1) throw new WorkerTrainError('TRAIN_NO_CHANNEL', rank, `${world} workers exchange over a channel, but event.endpoints.channel is not set`);
  const stats = channel;
  if (channel) channel = fence(channel, CHANNEL_WRITES);
  const objects: ObjectStore = fence(datasets.store, ['put', 'delete']);

  const manifest = await datasets.manifest(task.dataset);
  checkModelFits(task.model, manifest, rank);
  if ((task.algorithm === 'lloyd') !== (task.model.type === 'kmeans')) {
    throw new WorkerTrainError('TRAIN_MODEL_SPEC', rank, task.algorithm === 'lloyd' ? `algorithm 'lloyd' trains kmeans models, not ${task.model.type}` : `kmeans trains with algorithm 'lloyd', not ${task.algorithm}`);
  }
  if (manifest.trainRows === 0) throw new WorkerTrainError('TRAIN_DATASET', rank, `dataset '${manifest.name}' has no training rows`);
  if (manifest.train.shards.length < world) {
    throw new WorkerTrainError('TRAIN_DATASET', rank, `dataset '${manifest.name}' has ${manifest.train.shards.length} train shards; ${world} workers need at least ${world} (re-shard with smaller shards)`);
  }
  const perRank = batchesPerRank(manifest, world, task.batchSize);
  const roundsPerEpoch = Math.max(...perRank);

  await tfjsReady;
  const model = timeFirstGradient((deps.createModel ?? createModel)(task.model), () => (timings.firstStepMs ??= performance.now() - started));
  const optimizer = (deps.createOptimizer ?? createOptimizer)(task.optimizer, model.size);
  const sink = channel ?? objects;
  const watch = new DeadlineWatch(event.deadlineMs, task.checkpointMarginMs);
  const checkpoints = new Checkpointer(task.checkpointEveryMs, lease, watch);
  const base = { event, task, jobId, rank, world, manifest, data, model, optimizer, sink, objects, checkpoints, channel, timings };

  let state: TrainState;
  if (task.resumeFrom !== undefined) {
    state = await loadCheckpoint(base, task.resumeFrom);
    if (state.slot > roundsPerEpoch) {
      throw new WorkerTrainError('TRAIN_CHECKPOINT', rank, `checkpoint position batch ${state.slot} is beyond the ${roundsPerEpoch} batches per epoch of dataset '${manifest.name}' (was it rewritten?)`);
    }
  } else {
    state = freshState(model.init(task.seed));
    if (state.weights.length !== model.size) throw new WorkerTrainError('TRAIN_FAILED', rank, `model.init returned ${state.weights.length} weights, expected ${model.size}`);
  }
  const ctx: TrainContext = { ...base, batchesPerRank: perRank, roundsPerEpoch, rowsTrained: 0, updateBytes: 0 };
  checkpoints.bind(ctx);
  if (lease) mark('ready', rank, task.generation, event.attempt);

  let outcome: LoopOutcome;
  let comm: Communicator | undefined;
  if (task.algorithm === 'async-sgd') {
    checkPsTask(task, rank);
    const ps = await openPsModelClient(event, rank);
    owned.push(ps);
    const fencedPs = fence(ps, PS_WRITES);
    // Each launch registers under its own number: a relaunch is not a duplicate, a second delivery is.
    await fencedPs.register(jobId, rank, task.generation * MAX_ATTEMPTS_PER_GENERATION + event.attempt);
    outcome = await runPsSgd(ctx, state, watch, fencedPs);
  } else if (task.sync === 'async') {
    throw new WorkerTrainError('TRAIN_MODEL_SPEC', rank, `sync 'async' needs algorithm 'async-sgd' (the parameter server applies the updates); ${task.algorithm} runs under 'bsp' or 'asp'`);
  } else if (task.sync === 'bsp') {
    // Each generation has its own stream (keys), so a rolled-back generation never reads what a
    // lost one left; rounds continue the numbering.
    comm = world > 1 ? new Communicator(channel!, { jobId, rank, world, stream: `train-g${task.generation}`, timeoutMs: task.roundTimeoutMs, startRound: state.round }) : undefined;
    const c = comm;
    // The loops consume each result before the next round, so one result buffer serves them all.
    let out = new Float32Array(0);
    let firstRound = lease !== undefined;
    const reduce: Reduce = c
      ? (v, op) => {
          if (out.length !== v.length) out = new Float32Array(v.length);
          const r = task.collective === 'allreduce' ? c.allReduce(v, op, undefined, out) : c.scatterReduce(v, op, out);
          state.round = c.round; // a checkpoint taken after this round resumes at the next one
          if (firstRound) {
            firstRound = false;
            void r.then(() => mark('first-round', rank, task.generation, event.attempt), () => undefined);
          }
          return r;
        }
      : async (v) => v.slice();
    outcome =
      task.algorithm === 'lloyd'
        ? await runLloyd(ctx, state, reduce, watch)
        : task.algorithm === 'admm'
          ? await runAdmm(ctx, state, reduce, watch)
          : task.algorithm === 'ga-sgd' && task.filterThreshold > 0
            ? await runGaBspFiltered(ctx, state, gatherWith(c, state), watch)
            : task.algorithm === 'ga-sgd' ? await runGaBsp(ctx, state, reduce, watch) : await runMaBsp(ctx, state, reduce, watch);
    if (c) state.round = c.round;
  } else if (task.algorithm === 'lloyd' || task.algorithm === 'admm') {
    throw new WorkerTrainError('TRAIN_MODEL_SPEC', rank, `algorithm '${task.algorithm}' runs under sync 'bsp' (every round needs every rank's contribution), not '${task.sync}'`);
  } else {
    outcome = await runAsp(ctx, state, watch);
  }

  let checkpoint: number | undefined;
  if (outcome === 'stopped') {
    checkpoint = await checkpoints.write(state);
    await publishProgress(ctx, state);
  } else {
    await publishFinal(ctx, state);
  }
  if (comm) {
    const t0 = performance.now();
    await comm.close();
    timings.commMs += performance.now() - t0;
  }
  timings.totalMs = performance.now() - started;
  return {
    status: outcome === 'stopped' ? 'checkpointed' : 'done',
    generation: task.generation,
    ...(checkpoint !== undefined ? { checkpoint } : {}),
    epoch: state.epoch,
    batchInEpoch: state.slot,
    steps: state.step,
    trainLoss: lastLoss(state),
    rows: ctx.rowsTrained,
    updateBytes: ctx.updateBytes,
    channelStats: stats ? stats.stats() : emptyStats(),
    shardReads: data.fetches,
    timings,
  };
}

/** The all-gather the filtered GA-SGD loop exchanges its sparse updates with (a copy for a lone worker). */
function gatherWith(c: Communicator | undefined, state: TrainState): Gather {
  if (!c) return async (v) => [v.slice()];
  return async (v) => {
    const all = await c.allGather(v);
    state.round = c.round;
    return all;
  };
}

/** Registration numbers on the parameter server: generation * this + attempt. */
const MAX_ATTEMPTS_PER_GENERATION = 1000;

function lastLoss(state: TrainState): number {
  return Number.isNaN(state.lastTrainLoss) ? epochMean(state) : state.lastTrainLoss;
}


/** The model, with a hook on its first gradient: when a worker's first training step happens. */
function timeFirstGradient(model: Model, onFirst: () => void): Model {
  let seen = false;
  const timed = Object.create(model) as Model;
  timed.gradient = (batch, weights, grad) => {
    const loss = model.gradient(batch, weights, grad);
    if (!seen) {
      seen = true;
      onFirst();
    }
    return loss;
  };
  return timed;
}
