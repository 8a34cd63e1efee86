/**
 * Worker checkpoints: everything a successor needs to continue this rank at the same epoch and
 * batch, in the object store at job/<id>/ckpt/<ckptId>/<rank> (msgpack), never only in the channel.
 * A checkpoint's id is its position (epoch * batches per epoch + batch), so BSP ranks, which move in
 * lockstep, write the same ids, and the supervisor commits an id once every rank reported it.
 * Written periodically (task.checkpointEveryMs) and before the deadline. There is no running RNG
 * to save: the batch order is a function of (seed, rank, epoch).
 */
import { checkpointKey, packMessage, unpackMessage } from '../channels/index.js';
import type { Lease } from './lease.js';
import { WorkerTrainError, type CheckpointWriter, type TrainContext, type TrainState } from './train-common.js';

const FORMAT = 'cirrus-train-checkpoint';
const VERSION = 1;

interface CheckpointMessage {
  format: typeof FORMAT;
  version: typeof VERSION;
  jobId: string;
  id: number;
  rank: number;
  world: number;
  algorithm: string;
  sync: string;
  modelType: string;
  modelSize: number;
  weights: Float32Array;
  optimizer: { steps: number; buffers: Float32Array[] };
  epoch: number;
  batchInEpoch: number;
  step: number;
  round: number;
  epochLossSum: number;
  epochRows: number;
  /** null when no epoch has completed (msgpack keeps NaN, but null reads better to other tools). */
  lastTrainLoss: number | null;
  asp: { delta: Float32Array; clock: number } | null;
  /** ADMM: the rank's dual (null for the other algorithms). */
  admmDual?: Float32Array | null;
  /** Always null: no PRNG state survives between batches (see the file comment). */
  rng: null;
  time: number;
}

/** The checkpoint id of a position. */
function checkpointId(ctx: Pick<TrainContext, 'roundsPerEpoch'>, state: Pick<TrainState, 'epoch' | 'slot'>): number {
  return state.epoch * ctx.roundsPerEpoch + state.slot;
}

async function writeCheckpoint(ctx: TrainContext, state: TrainState, id: number): Promise<string> {
  return putCheckpoint(ctx, id, packCheckpoint(ctx, state, id));
}

/** The checkpoint message of `state`, encoded now (the state may change once this returns). */
function packCheckpoint(ctx: TrainContext, state: TrainState, id: number): Uint8Array {
  const msg: CheckpointMessage = {
    format: FORMAT,
    version: VERSION,
    jobId: ctx.jobId,
    id,
    rank: ctx.rank,
    world: ctx.world,
    algorithm: ctx.task.algorithm,
    sync: ctx.task.sync,
    modelType: ctx.task.model.type,
    modelSize: ctx.model.size,
    weights: state.weights,
    optimizer: ctx.optimizer.state(),
    epoch: state.epoch,
    batchInEpoch: state.slot,
    step: state.step,
    round: state.round,
    epochLossSum: state.epochLossSum,
    epochRows: state.epochRows,
    lastTrainLoss: Number.isNaN(state.lastTrainLoss) ? null : state.lastTrainLoss,
    asp: state.asp ? { delta: state.asp.delta, clock: state.asp.clock } : null,
    admmDual: state.admmDual ?? null,
    rng: null,
    time: Date.now(),
  };
  return packMessage(msg);
}

async function putCheckpoint(ctx: TrainContext, id: number, bytes: Uint8Array): Promise<string> {
  const key = checkpointKey(ctx.jobId, id, ctx.rank);
  const t0 = performance.now();
  await ctx.objects.put(key, bytes);
  ctx.timings.commMs += performance.now() - t0;
  return key;
}

/** Writes checkpoints when due and reports each to the lease (so the supervisor can commit it). */
export class Checkpointer implements CheckpointWriter {
  private last = performance.now();
  private lastId: number | undefined;
  private ctx: TrainContext | undefined;
  /** The write-behind in flight (writeBehind), and how it failed. */
  private pending: Promise<void> = Promise.resolve();
  private failed: unknown;

  constructor(
    private readonly everyMs: number,
    private readonly lease: Lease | undefined,
    private readonly watch?: { noteCheckpoint(ms: number): void },
  ) {}

  /** The context is built after the checkpointer; the loops only call write() once it is bound. */
  bind(ctx: TrainContext): void {
    this.ctx = ctx;
  }

  due(): boolean {
    return this.everyMs > 0 && performance.now() - this.last >= this.everyMs;
  }

  async write(state: TrainState): Promise<number> {
    await this.flush();
    const ctx = this.ctx!;
    const id = checkpointId(ctx, state);
    this.last = performance.now();
    if (id !== this.lastId) {
      const t0 = performance.now();
      await writeCheckpoint(ctx, state, id);
      this.lastId = id;
      await this.lease?.reportCheckpoint(id);
      this.watch?.noteCheckpoint(performance.now() - t0);
    }
    return id;
  }

  /**
   * A periodic checkpoint that does not stall the loop: the state is encoded now, then written and
   * reported in the background (one at a time, in order). The supervisor commits only what was
   * reported, so a rank lost meanwhile rolls back to the one before. A failure surfaces at the next
   * write or flush.
   */
  writeBehind(state: TrainState): void {
    if (this.failed !== undefined) throw this.failed;
    const ctx = this.ctx!;
    const id = checkpointId(ctx, state);
    this.last = performance.now();
    if (id === this.lastId) return;
    this.lastId = id;
    const bytes = packCheckpoint(ctx, state, id);
    this.pending = this.pending.then(async () => {
      if (this.failed !== undefined) return;
      try {
        const t0 = performance.now();
        await putCheckpoint(ctx, id, bytes);
        await this.lease?.reportCheckpoint(id);
        this.watch?.noteCheckpoint(performance.now() - t0);
      } catch (e) {
        this.failed = e;
      }
    });
  }

  /** Waits for the write-behind in flight; throws how it failed. */
  async flush(): Promise<void> {
    await this.pending;
    if (this.failed !== undefined) throw this.failed;
  }
}

/**
 * Loads checkpoint `id` of this rank, checks it belongs to this run, restores the optimizer and
 * returns the state to continue from.
 */
export async function loadCheckpoint(ctx: Pick<TrainContext, 'rank' | 'task' | 'jobId' | 'world' | 'model' | 'optimizer' | 'objects' | 'timings'>, id: number): Promise<TrainState> {
  const { rank, task } = ctx;
  const key = checkpointKey(ctx.jobId, id, rank);
  const fail = (why: string): never => {
    throw new WorkerTrainError('TRAIN_CHECKPOINT', rank, `generation ${task.generation} cannot resume from checkpoint '${key}': ${why}`);
  };
  const t0 = performance.now();
  const bytes = await ctx.objects.get(key);
  ctx.timings.commMs += performance.now() - t0;
  if (bytes === undefined) return fail('it does not exist in the object store');
  let m: Partial<CheckpointMessage>;
  try {
    m = unpackMessage<Partial<CheckpointMessage>>(bytes);
  } catch (err) {
    return fail(`it is not a msgpack message (${(err as Error).message})`);
  }
  if (typeof m !== 'object' || m === null || m.format !== FORMAT) return fail(`field 'format' is not '${FORMAT}'`);
  if (m.version !== VERSION) return fail(`field 'version' is ${String(m.version)}, expected ${VERSION}`);
  const expect = <K extends keyof CheckpointMessage>(field: K, want: CheckpointMessage[K]): void => {
    if (m[field] !== want) fail(`field '${field}' is ${JSON.stringify(m[field])}, but this run has ${JSON.stringify(want)}`);
  };
  expect('jobId', ctx.jobId);
  expect('id', id);
  expect('rank', rank);
  expect('world', ctx.world);
  expect('algorithm', task.algorithm);
  expect('sync', task.sync);
  expect('modelType', task.model.type);
  expect('modelSize', ctx.model.size);
  const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  for (const f of ['epoch', 'batchInEpoch', 'step', 'round', 'epochRows'] as const) {
    if (!isCount(m[f])) fail(`field '${f}' is ${JSON.stringify(m[f])}, expected a non-negative integer`);
  }
  if (typeof m.epochLossSum !== 'number') fail(`field 'epochLossSum' is not a number`);
  if (!(m.weights instanceof Float32Array) || m.weights.length !== ctx.model.size) fail(`field 'weights' is not a Float32Array of ${ctx.model.size} floats`);
  const opt = m.optimizer;
  if (!opt || !isCount(opt.steps) || !Array.isArray(opt.buffers) || !opt.buffers.every((b) => b instanceof Float32Array)) {
    fail(`field 'optimizer' is not {steps, buffers: Float32Array[]}`);
  }
  let asp: TrainState['asp'];
  // async-sgd keeps its model and optimizer state on the parameter server: no ASP delta here.
  if (task.sync === 'asp' && task.algorithm !== 'async-sgd') {
    const a = m.asp;
    if (!a || !(a.delta instanceof Float32Array) || a.delta.length !== ctx.model.size || !isCount(a.clock)) fail(`field 'asp' is not {delta: Float32Array of ${ctx.model.size} floats, clock}`);
    asp = { delta: m.asp!.delta.slice(), clock: m.asp!.clock };
  }
  let admmDual: Float32Array | undefined;
  if (task.algorithm === 'admm') {
    if (!(m.admmDual instanceof Float32Array) || m.admmDual.length !== ctx.model.size) fail(`field 'admmDual' is not a Float32Array of ${ctx.model.size} floats`);
    admmDual = m.admmDual!.slice();
  }
  ctx.optimizer.load({ steps: opt!.steps, buffers: opt!.buffers.map((b) => b.slice()) });
  return {
    weights: m.weights!.slice(),
    epoch: m.epoch!,
    slot: m.batchInEpoch!,
    step: m.step!,
    round: m.round!,
    epochLossSum: m.epochLossSum!,
    epochRows: m.epochRows!,
    lastTrainLoss: typeof m.lastTrainLoss === 'number' ? m.lastTrainLoss : NaN,
    asp,
    ...(admmDual ? { admmDual } : {}),
  };
}
