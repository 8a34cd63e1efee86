/**
 * The shapes a training job hands around: what the user passes in (callbacks), what a run reports
 * (history rows, metrics, the result) and what workers publish. A module of their own so the job's
 * steps, its record and train() can share them without importing each other.
 */
import type { ChannelStats } from '../../channels/index.js';
import type { TrainCost } from '../cost.js';
import type { Launcher } from '../launchers/types.js';
import type { TrainedModel } from '../model-io.js';
import type { StoreHandle } from '../store.js';
import type { TrainParams } from '../train-params.js';
import type { RelaunchRecord } from './supervise.js';

export type { TrainCost } from '../cost.js';

export interface EpochLogs {
  epoch: number;
  step: number;
  wallSeconds: number;
  trainLoss: number;
  testLoss: number;
  testAccuracy: number;
  testAuc?: number;
}

export type HistoryRow = EpochLogs;

export interface TrainCallbacks {
  /** After each evaluation of a model published at the end of an epoch (epochs count from 1). */
  onEpochEnd?(epoch: number, logs: EpochLogs): void | Promise<void>;
  /** After each evaluation of a model published mid-epoch (publishEvery / evaluateEvery). */
  onEvaluate?(logs: EpochLogs): void | Promise<void>;
  /** Workers launched (generation 0) or relaunched (generation > 0). */
  onGeneration?(generation: number): void;
  /** A launcher factory, e.g. for the Lambda launcher; default from params.launcher. */
  launcher?: (params: TrainParams) => Promise<Launcher> | Launcher;
  /**
   * Aborting stops the workers at once, like a stop condition: the result carries the newest
   * evaluated model and `model.meta.stopped`; with no model published yet, train throws
   * TrainError 'TRAIN_STOPPED'.
   */
  signal?: AbortSignal;
  /** The job id, before anything is launched. */
  onStart?(jobId: string): void;
  /** An already-open store to use (and leave open) instead of opening params.store. */
  store?: StoreHandle;
  /**
   * async-sgd with psShards: the 'host:port' of each shard holding the model, in shard order, once
   * they listen (e.g. to watch their STATS while the run goes).
   */
  onPsShards?(addresses: readonly string[]): void;
}

export interface TrainMetrics {
  testAccuracy: number;
  /** The mean test loss: log-loss, hinge or cross-entropy; kmeans: SSE per row; mf: the MSE. */
  testLoss: number;
  /** mf: the test RMSE (the square root of testLoss). */
  testRmse?: number;
  testAuc?: number;
  trainLoss: number;
  epochs: number;
  steps: number;
  wallSeconds: number;
  updatesPerSec: number;
  generations: number;
  /** Bytes of updates the workers sent (pushes to the parameter server, vectors into collectives). */
  updateBytes: number;
}

export interface TrainResult {
  jobId: string;
  model: TrainedModel;
  history: HistoryRow[];
  metrics: TrainMetrics;
  cost: TrainCost;
  /** Every relaunch of workers, with its cause (empty for a run without faults or time limits). */
  relaunches: RelaunchRecord[];
  /** Why the run ended: all epochs done, a stop condition reached, or an abort. */
  endReason: string;
}

/** What a train worker returns (see worker/train.ts), as far as the client reads it. */
export interface TrainWorkerValue {
  status: 'done' | 'checkpointed';
  epoch: number;
  steps: number;
  trainLoss: number;
  channelStats?: ChannelStats;
  shardReads?: number;
  updateBytes?: number;
}

/** A model rank 0 published on the channel (each epoch's, the newest, the final one). */
export interface PublishedModel {
  weights: Float32Array;
  step: number;
  epoch: number;
}
