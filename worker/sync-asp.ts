/**
 * Asynchronous training (ASP): no barrier per round.
 *
 * Scheme. Every rank starts from the same w0 = model.init(seed) and keeps D_r, the sum of every
 * update its optimizer ever applied (w_after - w_before, over all steps and generations). Any rank's
 * view of the model is
 *
 *     GA-SGD:  w = w0 + sum_r D_r          (each rank's step counts in full, as on a parameter server)
 *     MA-SGD:  w = w0 + (1/W) sum_r D_r    (model averaging written with deltas)
 *
 * At each exchange point (GA: after every step; MA: every averageEvery batch slots and at epoch
 * ends) rank r publishes {clock, D_r} at aspKey(jobId, r) and reads every other rank's latest
 * message (getMany) to rebuild w. Because D_r is cumulative, a message replaces the previous one
 * without losing anything: this is not last-writer-wins on the model, every update of every rank
 * stays in the sum. The sum runs in rank order, so ranks that see the same messages hold the
 * same weights bit for bit.
 *
 * Clock: batch slots done over all epochs (epoch * roundsPerEpoch + slot). A rank that runs out of
 * data in an epoch jumps its clock to the epoch's end, so uneven partitions do not hold others
 * back. Bounded staleness: before its step at clock t a rank polls (back-off, deadline
 * roundTimeoutMs) until every other rank's published clock is >= t - staleness; a rank that
 * stopped in this generation is not waited for. At the end every rank publishes its final
 * clock and waits until all ranks reached it, so all return the same final model.
 *
 * Stopping: a rank near its deadline publishes stop = true; every rank that sees a stop flag of
 * this generation stops at its next exchange and checkpoints its D_r (a rank already finished
 * checkpoints too, so the next generation has every rank). Flags of earlier generations are ignored.
 */
import { aspKey, packMessage, unpackMessage, CollectiveTimeoutError, Backoff, type PollPolicy, type Channel } from '../channels/index.js';
import { DeadlineWatch, checkFinite, maybePublishMidEpoch, meanGradient, runEpochs, WorkerTrainError, type LoopOutcome, type TrainContext, type TrainState } from './train-common.js';

interface AspMessage {
  generation: number;
  clock: number;
  delta: Float32Array;
  stop: boolean;
}

/** Polls for other ranks' progress: back to back at first, then up to 20 ms apart. */
const ASP_POLL: PollPolicy = { eagerMs: 2, initialDelayMs: 1, factor: 1.5, maxDelayMs: 20, jitter: 0.5 };

export async function runAsp(ctx: TrainContext, state: TrainState, watch: DeadlineWatch): Promise<LoopOutcome> {
  const { model, optimizer, task, rank, world } = ctx;
  const n = model.size;
  const rounds = ctx.roundsPerEpoch;
  const own = ctx.batchesPerRank[rank]!;
  const total = task.epochs * rounds;
  const scale = task.algorithm === 'ga-sgd' ? 1 : 1 / world;
  const w0 = model.init(task.seed);
  const asp = (state.asp ??= { delta: new Float32Array(n), clock: state.epoch * rounds + state.slot });
  const grad = new Float32Array(n);
  const g = new Float32Array(n);
  const before = new Float32Array(n);
  const exchanger = world > 1 ? new AspExchanger(ctx, ctx.channel!, w0, scale, total) : undefined;
  let stopMine = false;

  // A resumed rank picks up what the others published since its checkpoint.
  if (exchanger && task.resumeFrom !== undefined) await exchanger.refresh(state, asp.delta);

  /** Publishes, waits for laggards, rebuilds w; true when some rank stopped in this generation. */
  const exchange = async (final: boolean): Promise<boolean> => {
    // A finished rank has nothing left to save time for.
    if (!final && !stopMine && watch.shouldStop()) stopMine = true;
    if (!exchanger) return false;
    const othersStopped = await exchanger.exchange(state, asp, stopMine, final ? total : asp.clock - task.staleness);
    watch.lap();
    return othersStopped;
  };

  const outcome = await runEpochs(ctx, state, async (reader) => {
    while (state.slot < rounds) {
      if (state.slot < own) {
        const batch = await reader.next();
        const t0 = performance.now();
        grad.fill(0);
        const loss = model.gradient(batch, state.weights, grad);
        checkFinite(ctx, state, loss);
        state.epochLossSum += loss;
        state.epochRows += batch.rows;
        meanGradient(g, grad, batch.rows, task.l2, state.weights);
        before.set(state.weights);
        optimizer.step(state.weights, g);
        const d = asp.delta;
        for (let i = 0; i < n; i++) d[i]! += state.weights[i]! - before[i]!;
        state.step++;
        ctx.timings.computeMs += performance.now() - t0;
        ctx.rowsTrained += batch.rows;
        state.slot++;
      } else {
        // Out of data this epoch: jump to its end so nobody waits for slots this rank will never fill.
        state.slot = rounds;
      }
      asp.clock = state.epoch * rounds + state.slot;
      let stop = false;
      const point = task.algorithm === 'ga-sgd' || state.slot === rounds || (task.averageEvery > 0 && state.slot % task.averageEvery === 0);
      if (point) {
        const othersStopped = await exchange(false);
        stop = stopMine || othersStopped;
        // A rank's own checkpoint: a relaunch of this rank alone resumes here.
        if (!stop && ctx.checkpoints.due()) await ctx.checkpoints.write(state);
      }
      await maybePublishMidEpoch(ctx, state);
      if (stop) return true;
    }
    return false;
  });
  if (outcome === 'stopped') return 'stopped';
  // Everyone publishes the final clock and waits for everyone: all ranks end on the same model.
  asp.clock = total;
  const othersStopped = await exchange(true);
  return othersStopped ? 'stopped' : 'done';
}

class AspExchanger {
  private readonly others: number[];
  private readonly keys: string[];
  private readonly myKey: string;
  /** Latest delta of each rank (own slot unused). */
  private readonly latest: Array<Float32Array | undefined>;

  constructor(
    private readonly ctx: TrainContext,
    private readonly channel: Channel,
    private readonly w0: Float32Array,
    private readonly scale: number,
    private readonly total: number,
  ) {
    this.others = Array.from({ length: ctx.world }, (_, r) => r).filter((r) => r !== ctx.rank);
    this.keys = this.others.map((r) => aspKey(ctx.jobId, r));
    this.myKey = aspKey(ctx.jobId, ctx.rank);
    this.latest = new Array(ctx.world);
  }

  /** Reads the others once, without waiting, and rebuilds w. */
  async refresh(state: TrainState, ownDelta: Float32Array): Promise<void> {
    const t0 = performance.now();
    this.absorb(await this.channel.getMany(this.keys));
    this.ctx.timings.commMs += performance.now() - t0;
    this.rebuild(state.weights, ownDelta);
  }

  /**
   * Publishes this rank's clock and delta, then polls until every other rank has a clock >= need
   * (or stopped in this generation), and rebuilds w. Returns whether some other rank stopped.
   */
  async exchange(state: TrainState, asp: { delta: Float32Array; clock: number }, stop: boolean, need: number): Promise<boolean> {
    const { ctx } = this;
    const t0 = performance.now();
    const msg: AspMessage = { generation: ctx.task.generation, clock: asp.clock, delta: asp.delta, stop };
    await this.channel.put(this.myKey, packMessage(msg));
    const started = Date.now();
    let deadline = started + ctx.task.roundTimeoutMs;
    let backoff = new Backoff(ASP_POLL);
    let anyStopped = false;
    let seen = -Infinity;
    for (;;) {
      const status = this.absorb(await this.channel.getMany(this.keys));
      anyStopped = status.some((s) => s.stopped);
      const missing = this.others.filter((_, i) => !status[i]!.stopped && status[i]!.clock < need);
      if (missing.length === 0) break;
      // The deadline bounds a wait without progress: a laggard that is still stepping (e.g. the
      // longest partition at the end of an epoch) restarts it.
      const progress = status.reduce((s, x) => s + (Number.isFinite(x.clock) ? x.clock : 0), 0);
      if (progress > seen) {
        if (seen !== -Infinity) {
          deadline = Date.now() + ctx.task.roundTimeoutMs;
          backoff = new Backoff(ASP_POLL);
        }
        seen = progress;
      }
      if (Date.now() >= deadline) {
        ctx.timings.commMs += performance.now() - t0;
        throw new CollectiveTimeoutError('asp', asp.clock, ctx.rank, missing, Date.now() - started);
      }
      await backoff.pause(deadline);
    }
    ctx.timings.commMs += performance.now() - t0;
    const t1 = performance.now();
    this.rebuild(state.weights, asp.delta);
    ctx.timings.computeMs += performance.now() - t1;
    return anyStopped;
  }

  /** Decodes the others' messages, keeps their deltas, returns each one's clock and stop flag. */
  private absorb(values: Array<Uint8Array | undefined>): Array<{ clock: number; stopped: boolean }> {
    const { ctx } = this;
    return values.map((bytes, i) => {
      const r = this.others[i]!;
      if (bytes === undefined) return { clock: -Infinity, stopped: false };
      let m: AspMessage;
      try {
        m = unpackMessage<AspMessage>(bytes);
      } catch (err) {
        throw new WorkerTrainError('TRAIN_CHANNEL', ctx.rank, `ASP message of rank ${r} at '${this.keys[i]}' is not msgpack: ${(err as Error).message}`, { cause: err });
      }
      if (!(m?.delta instanceof Float32Array) || m.delta.length !== ctx.model.size || typeof m.clock !== 'number') {
        throw new WorkerTrainError('TRAIN_CHANNEL', ctx.rank, `ASP message of rank ${r} at '${this.keys[i]}' is not {clock, delta: Float32Array of ${ctx.model.size}}`);
      }
      this.latest[r] = m.delta;
      // A stop of an earlier generation is history, and a rank at the final clock has nothing left to stop.
      return { clock: m.clock, stopped: m.stop === true && m.generation === ctx.task.generation && m.clock < this.total };
    });
  }

  /** w = w0 + scale * sum_r D_r, summed in rank order. */
  private rebuild(weights: Float32Array, ownDelta: Float32Array): void {
    const n = weights.length;
    const deltas: Array<Float32Array | undefined> = [];
    for (let r = 0; r < this.ctx.world; r++) deltas.push(r === this.ctx.rank ? ownDelta : this.latest[r]);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (const d of deltas) if (d) s += d[i]!;
      weights[i] = this.w0[i]! + this.scale * s;
    }
  }
}
