/** The worker event of one launch of one rank of a training job (small JSON: keys, not data). */
import type { ModelSpec } from '../../algorithms/index.js';
import type { ChannelSpec } from '../../channels/index.js';
import type { WorkerEvent } from '../launchers/types.js';
import type { StoreHandle } from '../store.js';
import { launcherLimits, type TrainParams } from '../train-params.js';
import type { RankLaunch } from './supervise.js';

export interface JobEndpoints {
  store: StoreHandle;
  channel: ChannelSpec;
  psShards: string[] | undefined;
}

/** Heartbeats per lease: a worker may miss a few renewals (a slow store) before it is replaced. */
const HEARTBEATS_PER_LEASE = 5;
/** How long a copy waits for its grant: a supervisor alive polls every 200 ms. */
const CLAIM_TIMEOUT_MS = 30_000;

/** The margin before the time limit at which a worker stops to checkpoint, besides its measured step and checkpoint times. */
function checkpointMarginMs(params: TrainParams): number {
  return params.checkpointMarginMs ?? Math.min(2_000, Math.round(launcherLimits(params).timeoutS * 50));
}

export function trainEvent(params: TrainParams, spec: ModelSpec, jobId: string, at: JobEndpoints, l: RankLaunch): WorkerEvent {
  const leaseMs = Math.round(params.leaseSeconds * 1000);
  return {
    jobId,
    rank: l.rank,
    world: params.workers,
    attempt: l.attempt,
    deadlineMs: Date.now() + launcherLimits(params).timeoutS * 1000,
    task: {
      type: 'train',
      dataset: params.dataset,
      model: spec,
      algorithm: params.algorithm,
      sync: params.sync,
      collective: params.collective,
      epochs: params.epochs,
      batchSize: params.batchSize,
      optimizer: { type: params.optimizer, lr: params.learningRate, ...(params.momentum !== undefined ? { momentum: params.momentum } : {}) },
      // mf carries its regularization in the model spec (per rating), not as weight decay.
      l2: spec.type === 'mf' ? 0 : params.l2,
      seed: params.seed,
      averageEvery: params.averageEvery,
      rho: params.rho,
      filterThreshold: params.filterThreshold,
      admmPasses: params.admmPasses,
      staleness: params.staleness,
      readAhead: params.readAhead,
      publishEvery: params.publishEvery,
      checkpointMarginMs: checkpointMarginMs(params),
      checkpointEveryMs: Math.round(params.checkpointEvery * 1000),
      generation: l.generation,
      ...(l.resumeFrom !== undefined ? { resumeFrom: l.resumeFrom } : {}),
      lease: { leaseMs, heartbeatMs: Math.max(100, Math.round(leaseMs / HEARTBEATS_PER_LEASE)), claimTimeoutMs: CLAIM_TIMEOUT_MS },
      ...(at.psShards ? { psShards: at.psShards } : {}),
    },
    params: {},
    endpoints: { store: at.store.workerTarget, channel: at.channel },
  };
}
