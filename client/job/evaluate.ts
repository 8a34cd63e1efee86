/**
 * Step 4 of a run, evaluate: the client's error task (as in Cirrus). While the workers train it
 * reads the models rank 0 publishes on the channel (each epoch's, and the newest one every
 * evaluateEvery seconds), evaluates them on the test split through algorithms/, keeps the history,
 * saves it in the job record, calls the user's callbacks and notes when a stop target is reached.
 * After the run it settles on the final model and its metrics.
 */
import { evaluateShards, type Model } from '../../algorithms/index.js';
import { unpackMessage, epochModelKey, finalModelKey, modelLatestKey, progressKey, type Channel, type DatasetManifest, type Shard } from '../../channels/index.js';
import type { WorkerResult } from '../launchers/types.js';
import type { StoreHandle } from '../store.js';
import { TrainError, type TrainParams } from '../train-params.js';
import type { JobRecordWriter } from './record.js';
import type { EpochLogs, HistoryRow, PublishedModel, TrainCallbacks, TrainMetrics } from './types.js';

/** Every shard of the dataset's test split, read once before the workers start. */
export async function loadTestShards(store: StoreHandle, m: DatasetManifest): Promise<Shard[]> {
  const shards: Shard[] = [];
  for (const ref of m.test.shards) shards.push(await store.datasets.readShard(ref));
  return shards;
}

export interface WatchContext {
  params: TrainParams;
  jobId: string;
  channel: Channel;
  model: Model;
  testShards: readonly Shard[];
  /** When the run started (Date.now()), for wallSeconds. */
  started: number;
  record: Pick<JobRecordWriter, 'save'>;
  callbacks: Pick<TrainCallbacks, 'onEpochEnd' | 'onEvaluate'>;
  /** The abort reason once the user aborted, else undefined. */
  aborted(): string | undefined;
}

/** Watches the models a job publishes and evaluates them. */
export class ModelWatch {
  readonly history: HistoryRow[] = [];
  /** The newest model (evaluated, or the final one the workers wrote). */
  newest: PublishedModel | undefined;
  /** Why the run should stop (a target reached, a time limit, an abort), once it should. */
  stopReason: string | undefined;
  private nextEpoch = 1;
  private lastStep = -1;
  private lastEvalAt = Date.now();

  constructor(private readonly ctx: WatchContext) {}

  /** Evaluates every epoch model rank 0 has published since the last call, in order. */
  async epochs(): Promise<void> {
    for (;;) {
      // An abort stops at once: epochs published meanwhile are not evaluated.
      if (this.ctx.aborted()) return;
      const key = epochModelKey(this.ctx.jobId, this.nextEpoch);
      const bytes = await this.ctx.channel.get(key);
      if (!bytes) return;
      await this.evaluate(unpackMessage<PublishedModel & { trainLoss: number }>(bytes), true);
      await this.ctx.channel.delete([key]);
      this.nextEpoch++;
    }
  }

  /** Mid-epoch evaluation of the newest model, every evaluateEvery seconds (or now, when forced). */
  async latest(force: boolean): Promise<void> {
    const every = this.ctx.params.evaluateEvery;
    const due = every !== undefined && Date.now() - this.lastEvalAt >= every * 1000;
    if (!due && !force) return;
    const bytes = await this.ctx.channel.get(modelLatestKey(this.ctx.jobId));
    if (!bytes) return;
    const m = unpackMessage<PublishedModel>(bytes);
    if (m.step !== this.lastStep) await this.evaluate(m, false);
  }

  /**
   * After the workers ended: the final model. After an abort, the newest evaluated one (an abort
   * never waits for more evaluations); otherwise what rank 0 wrote at the end, or the newest
   * published one after a stop. Throws when there is none. `aborted`: the abort reason, once
   * the user aborted.
   */
  async settle(aborted: string | undefined): Promise<PublishedModel> {
    const { jobId } = this.ctx;
    if (aborted) {
      if (!this.newest) await this.latest(true);
      if (!this.newest) throw new TrainError('TRAIN_STOPPED', `job ${jobId}: ${aborted} before any model was published`);
    } else {
      await this.epochs();
      const finalBytes = await this.ctx.channel.get(finalModelKey(jobId));
      if (finalBytes) this.newest = pick(unpackMessage<PublishedModel>(finalBytes));
      else await this.latest(true);
    }
    if (!this.newest) throw new TrainError('TRAIN_WORKER_FAILED', `job ${jobId}: the workers ended without publishing a model`);
    return this.newest;
  }

  /** The final model's metrics; its evaluation ends the history unless the last row is already its. */
  async metrics(final: PublishedModel, results: readonly WorkerResult[], generations: number): Promise<TrainMetrics> {
    const ev = evaluateShards(this.ctx.model, final.weights, this.ctx.testShards);
    const last = this.history[this.history.length - 1];
    if (last === undefined || last.step !== final.step) this.history.push(await this.logs(final, ev));
    const wallSeconds = (Date.now() - this.ctx.started) / 1000;
    return {
      testAccuracy: ev.accuracy,
      testLoss: ev.loss,
      ...(this.ctx.model.spec.type === 'mf' ? { testRmse: Math.sqrt(ev.loss) } : {}),
      ...(ev.auc !== undefined ? { testAuc: ev.auc } : {}),
      trainLoss: this.history[this.history.length - 1]!.trainLoss,
      epochs: final.epoch,
      steps: final.step,
      wallSeconds,
      updatesPerSec: final.step / wallSeconds,
      generations,
      updateBytes: results.reduce((s, r) => s + ((r.value as { updateBytes?: number } | undefined)?.updateBytes ?? 0), 0),
    };
  }

  private async evaluate(m: PublishedModel & { trainLoss?: number }, epochEnd: boolean): Promise<void> {
    this.lastStep = m.step;
    this.lastEvalAt = Date.now();
    const logs = await this.logs(m, evaluateShards(this.ctx.model, m.weights, this.ctx.testShards));
    this.history.push(logs);
    this.newest = pick(m);
    this.ctx.record.save({ status: 'running', history: this.history });
    if (epochEnd) await this.ctx.callbacks.onEpochEnd?.(m.epoch, logs);
    else await this.ctx.callbacks.onEvaluate?.(logs);
    const st = this.ctx.params.stop;
    if (st.targetAccuracy !== undefined && logs.testAccuracy >= st.targetAccuracy) this.stopReason = `reached the target accuracy ${st.targetAccuracy}`;
    if (st.targetLoss !== undefined && logs.testLoss <= st.targetLoss) this.stopReason = `reached the target loss ${st.targetLoss}`;
  }

  private async logs(m: PublishedModel & { trainLoss?: number }, ev: { loss: number; accuracy: number; auc?: number }): Promise<EpochLogs> {
    return {
      epoch: m.epoch,
      step: m.step,
      wallSeconds: (Date.now() - this.ctx.started) / 1000,
      trainLoss: m.trainLoss ?? (await meanTrainLoss(this.ctx.channel, this.ctx.jobId, this.ctx.params.workers)),
      testLoss: ev.loss,
      testAccuracy: ev.accuracy,
      ...(ev.auc !== undefined ? { testAuc: ev.auc } : {}),
    };
  }
}

function pick(m: PublishedModel): PublishedModel {
  return { weights: m.weights, step: m.step, epoch: m.epoch };
}

/** The mean of the train losses the ranks last reported (NaN when none has). */
async function meanTrainLoss(channel: Channel, jobId: string, workers: number): Promise<number> {
  const records = await channel.getMany(Array.from({ length: workers }, (_, r) => progressKey(jobId, r)));
  const losses = records.flatMap((b) => (b ? [unpackMessage<{ trainLoss: number }>(b).trainLoss] : [])).filter(Number.isFinite);
  return losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : NaN;
}
