/**
 * What the training loops share: the per-worker context, the resumable position, the typed error,
 * the epoch reader over a ShardIterator, the deadline watch and progress publishing.
 */
import { type Channel, type DatasetManifest, type ShardRef, type Shard, type DatasetStore, type ObjectStore, epochModelKey, finalModelKey, modelLatestKey, progressKey, packMessage } from '../channels/index.js';
import type { Model, ModelBatch, Optimizer } from '../algorithms/index.js';
import { CirrusError } from '../paramserver/index.js';
import type { TrainTask, WorkerEvent } from './event.js';
import { ShardIterator, type Batch as IteratorBatch } from './shard-iterator.js';

export type TrainEvent = WorkerEvent & { task: TrainTask };

export type WorkerTrainErrorCode =
  /** The model spec does not fit the dataset (features, classes, kind, task). */
  | 'TRAIN_MODEL_MISMATCH'
  /** world > 1 without event.endpoints.channel. */
  | 'TRAIN_NO_CHANNEL'
  /** The dataset cannot be trained on by this world (no rows, too few shards, a bad shard). */
  | 'TRAIN_DATASET'
  /** The previous generation's checkpoint is missing or does not match this run. */
  | 'TRAIN_CHECKPOINT'
  /** The model or optimizer spec is invalid on its own (the algorithms room rejected it). */
  | 'TRAIN_MODEL_SPEC'
  /** A channel request failed. */
  | 'TRAIN_CHANNEL'
  /** A copy that does not own its rank (a duplicate delivery, a superseded attempt); it wrote nothing of the run. */
  | 'TRAIN_DUPLICATE'
  /** A supervised copy whose claim no supervisor granted (the client is gone). */
  | 'TRAIN_NO_SUPERVISOR'
  /** A loop of a generation that the supervisor rolled back: it may not write (the copy goes on as the next generation). */
  | 'TRAIN_ROLLED_BACK'
  /** The loss or the weights stopped being finite numbers. */
  | 'TRAIN_DIVERGED'
  /** Other ranks did not arrive within roundTimeoutMs (missingRanks names them). */
  | 'COLLECTIVE_TIMEOUT'
  | 'TRAIN_FAILED';

/** Not named TrainError: that is the client's (client/train-params.ts), with other codes and arguments. */
export class WorkerTrainError extends CirrusError<WorkerTrainErrorCode> {
  readonly rank: number;
  /** The `code` of the underlying error, when it had one (e.g. 'DATASET_NOT_FOUND'). */
  readonly causeCode: string | undefined;
  /** COLLECTIVE_TIMEOUT: the ranks that never arrived. */
  readonly missingRanks: number[] | undefined;
  constructor(code: WorkerTrainErrorCode, rank: number, message: string, options?: { cause?: unknown; causeCode?: string; missingRanks?: number[] }) {
    super(code, `rank ${rank}: ${message}`, options);
    this.rank = rank;
    this.causeCode = options?.causeCode;
    this.missingRanks = options?.missingRanks;
  }
}

export interface Timings {
  /** Gradients, optimizer steps and the arithmetic around them. */
  computeMs: number;
  /** Collectives, ASP publish/poll, progress and checkpoint writes. */
  commMs: number;
  /** Time blocked on the shard iterator (fetches the prefetch did not hide). */
  dataWaitMs: number;
  totalMs: number;
  /** From the task's start to the end of its first gradient (the cold start's last part). */
  firstStepMs?: number;
}

/** Where job keys (progress, model, checkpoints) go: the channel, or the object store when a lone worker has none. */
export interface JobSink {
  put(key: string, value: Uint8Array): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
}

/** Everything a generation needs to continue where the previous one stopped. */
export interface TrainState {
  weights: Float32Array;
  /** Position: the epoch being run and the batch slots of it already done (0..roundsPerEpoch). */
  epoch: number;
  slot: number;
  /** Optimizer steps taken by this rank, over all generations. */
  step: number;
  /** Next collective round (BSP), so a resumed generation's round keys never collide with the last one's. */
  round: number;
  /** Loss sum and rows of the current epoch so far (GA/MA-SGD BSP: over all ranks; ASP: this rank). */
  epochLossSum: number;
  epochRows: number;
  /** Mean loss of the last completed epoch (NaN before the first). */
  lastTrainLoss: number;
  /** ASP: this rank's cumulative update and its clock (batch slots done over all epochs). */
  asp: { delta: Float32Array; clock: number } | undefined;
  /** ADMM: this rank's scaled dual u_i (the consensus model is `weights`). */
  admmDual?: Float32Array;
}

export interface TrainContext {
  readonly event: TrainEvent;
  readonly task: TrainTask;
  readonly jobId: string;
  readonly rank: number;
  readonly world: number;
  readonly manifest: DatasetManifest;
  readonly data: Pick<DatasetStore, 'readShard'>;
  readonly model: Model;
  readonly optimizer: Optimizer;
  readonly sink: JobSink;
  /** The object store: checkpoints live here, never only in the channel. */
  readonly objects: ObjectStore;
  /** Writes checkpoints when due (periodically, and before the deadline). */
  readonly checkpoints: CheckpointWriter;
  /** Undefined only for a lone worker without a channel. */
  readonly channel: Channel | undefined;
  /** Batches per epoch of every rank (the partition is fixed, so the same each epoch). */
  readonly batchesPerRank: readonly number[];
  /** Batch slots per epoch: the maximum over ranks, so every rank takes part in every round. */
  readonly roundsPerEpoch: number;
  readonly timings: Timings;
  /** Rows this rank computed gradients on in this generation. */
  rowsTrained: number;
  /** Bytes of updates this rank sent in this generation (pushes to the parameter server, vectors into a collective). */
  updateBytes: number;
}

/** What the loops need of worker/checkpoint.ts's Checkpointer. */
export interface CheckpointWriter {
  /** A periodic checkpoint is due (BSP: rank 0's clock decides for all ranks). */
  due(): boolean;
  /** Writes the state (unless this position is already written) and reports it; resolves with its id. */
  write(state: TrainState): Promise<number>;
  /** Like write, in the background: the loop goes on while it is written and reported. */
  writeBehind(state: TrainState): void;
}

/**
 * Throws TRAIN_DIVERGED when a loss (or, with `weights`, any weight) is not a finite number: a run
 * that diverged must end loudly, with where and what to change, not as a model of NaNs.
 */
export function checkFinite(ctx: TrainContext, state: TrainState, loss: number, weights?: Float32Array): void {
  let what: string | undefined;
  if (!Number.isFinite(loss)) what = `the training loss became ${loss}`;
  else if (weights) {
    for (let i = 0; i < weights.length; i++) {
      if (!Number.isFinite(weights[i]!)) {
        what = `weight ${i} became ${weights[i]}`;
        break;
      }
    }
  }
  if (what === undefined) return;
  const lr = ctx.task.optimizer.lr;
  throw new WorkerTrainError('TRAIN_DIVERGED', ctx.rank, `training diverged in epoch ${state.epoch + 1} (step ${state.step}): ${what}; lower the learning rate (now ${lr}, try ${lr / 10})`);
}

/** The loops end either having finished every epoch or because a stop was agreed. */
export type LoopOutcome = 'done' | 'stopped';

/**
 * Batches per epoch of each rank, from the manifest alone: shard i belongs to rank i % world and
 * yields ceil(rows / batchSize) batches (the iterator never merges shards).
 */
export function batchesPerRank(manifest: DatasetManifest, world: number, batchSize: number): number[] {
  const out = new Array<number>(world).fill(0);
  manifest.train.shards.forEach((ref, i) => {
    out[i % world]! += Math.ceil(ref.rows / batchSize);
  });
  return out;
}

/** Share of the worker's memory that decoded shards may keep between epochs. */
const SHARD_CACHE_SHARE = 0.25;

/**
 * The worker's memory in bytes as its launcher declared it (the local launcher's setting or
 * Lambda's), or 0 when nobody did (runTrain called in-process): then nothing is cached, since the
 * process may hold other things the budget knows nothing of.
 */
function declaredMemoryBytes(): number {
  const mb = Number(process.env.CIRRUS_WORKER_MEMORY_MB ?? process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  return Number.isFinite(mb) && mb > 0 ? mb * 1024 * 1024 : 0;
}

/**
 * Keeps decoded shards for the next epochs while they fit a share of the worker's declared
 * memory, so a rank whose partition fits fetches and decodes each shard once per generation, not
 * once per epoch (shards are immutable once their manifest is published). Shards past the budget are
 * fetched every time, as before.
 */
export class ShardCache implements Pick<DatasetStore, 'readShard'> {
  private readonly shards = new Map<string, Promise<Shard>>();
  private used = 0;
  /** Shards read from the store (cache misses): the GETs the cost estimate bills. */
  fetches = 0;

  constructor(
    private readonly source: Pick<DatasetStore, 'readShard'>,
    private readonly budgetBytes = declaredMemoryBytes() * SHARD_CACHE_SHARE,
  ) {}

  /** Starts reading the shards the cache can keep (a worker waiting for its grant may read ahead). */
  prefetch(refs: readonly ShardRef[]): void {
    for (const ref of refs) if (!this.shards.has(ref.key) && this.used + ref.bytes <= this.budgetBytes) this.readShard(ref).catch(() => undefined);
  }

  readShard(ref: ShardRef): Promise<Shard> {
    const hit = this.shards.get(ref.key);
    if (hit) return hit;
    this.fetches++;
    const p = this.source.readShard(ref);
    if (this.used + ref.bytes <= this.budgetBytes) {
      this.used += ref.bytes;
      this.shards.set(ref.key, p);
      // A failed read must be retried next time, not served from the cache.
      p.catch(() => {
        this.shards.delete(ref.key);
        this.used -= ref.bytes;
      });
    }
    return p;
  }
}

/** One epoch of this rank's batches, timing the waits; batches the previous generation did are skipped. */
export class EpochReader {
  private readonly it: AsyncGenerator<IteratorBatch, void, undefined>;
  constructor(
    private readonly ctx: TrainContext,
    private readonly epoch: number,
  ) {
    const { task } = ctx;
    this.it = new ShardIterator({
      store: ctx.data,
      manifest: ctx.manifest,
      rank: ctx.rank,
      world: ctx.world,
      epoch,
      seed: task.seed,
      readAhead: task.readAhead,
      order: task.order,
      batchSize: task.batchSize,
    }).batches();
  }

  async next(): Promise<ModelBatch> {
    const t0 = performance.now();
    const r = await this.it.next();
    this.ctx.timings.dataWaitMs += performance.now() - t0;
    if (r.done) {
      // The manifest promised more batches: the shards changed under us.
      throw new WorkerTrainError('TRAIN_DATASET', this.ctx.rank, `epoch ${this.epoch}: the shard iterator ended before the ${this.ctx.batchesPerRank[this.ctx.rank]} batches the manifest implies`);
    }
    const b = r.value;
    if ((b.kind === 'ratings') !== (this.ctx.task.model.type === 'mf')) throw new WorkerTrainError('TRAIN_MODEL_MISMATCH', this.ctx.rank, `model ${this.ctx.task.model.type} cannot train on ${b.kind} rows`);
    return b;
  }

  /** Iterator order is a function of (seed, rank, epoch), so skipping n batches lands exactly where the last generation stopped. */
  async skip(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.next();
  }

  async close(): Promise<void> {
    await this.it.return(undefined);
  }
}

/**
 * Decides when to stop for a checkpoint: when the time left is below the margin plus one more
 * interval (a BSP round, or the local steps up to the next model exchange) plus the time a
 * checkpoint write took (measured; a guess of one interval until the first one).
 */
export class DeadlineWatch {
  private last = performance.now();
  private ema: number | undefined;
  private lastInterval = 0;
  private checkpointMs: number | undefined;

  constructor(
    private readonly deadlineMs: number,
    private readonly marginMs: number,
  ) {}

  /** Marks the end of an interval. */
  lap(): void {
    const now = performance.now();
    const d = now - this.last;
    this.last = now;
    this.lastInterval = d;
    this.ema = this.ema === undefined ? d : 0.7 * this.ema + 0.3 * d;
  }

  /** Records how long a checkpoint write took. */
  noteCheckpoint(ms: number): void {
    this.checkpointMs = Math.max(ms, (this.checkpointMs ?? 0) * 0.7);
  }

  shouldStop(): boolean {
    // The larger of the trend and the latest interval: a slowing run must not overrun the margin.
    const estimate = Math.max(this.ema ?? 0, this.lastInterval);
    return this.deadlineMs - Date.now() < this.marginMs + estimate + (this.checkpointMs ?? estimate);
  }
}

async function timedPut(ctx: TrainContext, key: string, value: unknown): Promise<void> {
  const t0 = performance.now();
  await ctx.sink.put(key, packMessage(value));
  ctx.timings.commMs += performance.now() - t0;
}

export function epochMean(state: TrainState): number {
  return state.epochRows > 0 ? state.epochLossSum / state.epochRows : 0;
}

/** Every rank's progress record: the mean loss of the epoch so far and its position in it. */
export async function publishProgress(ctx: TrainContext, state: TrainState): Promise<void> {
  await timedPut(ctx, progressKey(ctx.jobId, ctx.rank), {
    epoch: state.epoch,
    batchInEpoch: state.slot,
    batchesInEpoch: ctx.roundsPerEpoch,
    step: state.step,
    trainLoss: epochMean(state),
    rows: state.epochRows,
    generation: ctx.task.generation,
    time: Date.now(),
  });
}

/** Rank 0 publishes its model for the client's evaluation. */
export async function publishModel(ctx: TrainContext, state: TrainState): Promise<void> {
  if (ctx.rank !== 0) return;
  await timedPut(ctx, modelLatestKey(ctx.jobId), { weights: state.weights, step: state.step, epoch: state.epoch, batchInEpoch: state.slot, time: Date.now() });
}

export async function publishFinal(ctx: TrainContext, state: TrainState): Promise<void> {
  if (ctx.rank !== 0) return;
  await timedPut(ctx, finalModelKey(ctx.jobId), { weights: state.weights, step: state.step, epoch: state.epoch });
}

/** Mid-epoch publishing every publishEvery batches (the epoch end publishes anyway). */
export async function maybePublishMidEpoch(ctx: TrainContext, state: TrainState): Promise<void> {
  const every = ctx.task.publishEvery;
  if (every > 0 && state.slot % every === 0 && state.slot < ctx.roundsPerEpoch) {
    await publishModel(ctx, state);
    await publishProgress(ctx, state);
  }
}

/**
 * The epoch loop every sync mode shares. Per epoch: opens the reader at the checkpointed slot and
 * runs `slots` (the mode's batch loop, resolving true to stop); closes the reader; runs
 * `beforeEnd(completed)` when given; ends a completed epoch. Resolves 'stopped' when a stop comes
 * before the last epoch is complete, 'done' otherwise (the caller may still have a final exchange).
 */
export async function runEpochs(
  ctx: TrainContext,
  state: TrainState,
  slots: (reader: EpochReader) => Promise<boolean>,
  beforeEnd?: (completed: boolean) => Promise<void>,
): Promise<LoopOutcome> {
  const own = ctx.batchesPerRank[ctx.rank]!;
  while (state.epoch < ctx.task.epochs) {
    const reader = new EpochReader(ctx, state.epoch);
    let stop: boolean;
    try {
      await reader.skip(Math.min(state.slot, own));
      stop = await slots(reader);
    } finally {
      await reader.close();
    }
    const completed = state.slot >= ctx.roundsPerEpoch;
    await beforeEnd?.(completed);
    if (completed) await endEpoch(ctx, state);
    if (stop && state.epoch < ctx.task.epochs) return 'stopped';
  }
  return 'done';
}

/** Publishes the finished epoch (loss over the whole epoch) and moves the position to the next one. */
async function endEpoch(ctx: TrainContext, state: TrainState): Promise<void> {
  checkFinite(ctx, state, 0, state.weights);
  await publishModel(ctx, state);
  await publishProgress(ctx, state);
  if (ctx.rank === 0) {
    // One key per epoch, so a client polling slower than epochs finish still sees every epoch.
    await timedPut(ctx, epochModelKey(ctx.jobId, state.epoch + 1), { weights: state.weights, step: state.step, epoch: state.epoch + 1, trainLoss: epochMean(state), time: Date.now() });
  }
  state.lastTrainLoss = epochMean(state);
  state.epochLossSum = 0;
  state.epochRows = 0;
  state.epoch++;
  state.slot = 0;
}

/** g = gradSum / rows + l2 * w: the mean gradient plus the L2 term, added once. */
export function meanGradient(out: Float32Array, gradSum: Float32Array, rows: number, l2: number, weights: Float32Array): void {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = gradSum[i]! / rows + l2 * weights[i]!;
}
