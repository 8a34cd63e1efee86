/**
 * What the supervisor (supervise.ts) is given and gives back: the launch of one rank, the records
 * of its relaunches, its options and its result.
 */
import type { ObjectStore } from '../../channels/index.js';
import type { Launcher, WorkerEvent, WorkerHandle, WorkerResult } from '../launchers/types.js';

export interface RankLaunch {
  rank: number;
  generation: number;
  attempt: number;
  /** Checkpoint id to resume from; absent: from the seed. */
  resumeFrom?: number;
}

/** What a train worker returns (worker/train.ts). */
export interface WorkerValue {
  status: 'done' | 'checkpointed';
  checkpoint?: number;
  /** The generation the copy ended as (an in-place rollback moves a copy on). */
  generation?: number;
  [k: string]: unknown;
}

export interface RelaunchRecord {
  /** ISO time of the relaunch. */
  at: string;
  generation: number;
  /** The ranks that went back to a checkpoint (or the seed), as this generation. */
  ranks: number[];
  /** Of those, the ranks launched anew; the others rolled back in place. */
  launched: number[];
  /** Why: the lost attempt's cause, or 'time limit' for a generation that checkpointed at its deadline. */
  cause: string;
  resumeFrom?: number;
}

export interface SuperviseOptions {
  jobId: string;
  world: number;
  launcher: Launcher;
  /** The object store holding the control records and checkpoints. */
  store: ObjectStore;
  recovery: 'rollback' | 'rank';
  leaseMs: number;
  maxAttempts: number;
  /** The worker event of one launch. */
  event(l: RankLaunch): WorkerEvent;
  /** Called every POLL_MS; a returned reason stops every worker and ends supervision. */
  tick(): Promise<string | undefined>;
  /**
   * Called about once a second: a reason when the channel lost the job's state or cannot be
   * reached (every rank is relaunched once it answers again); undefined when it is fine.
   */
  channelHealth?(): Promise<string | undefined>;
  onGeneration?(generation: number): void;
  onRelaunch?(r: RelaunchRecord): void;
}

export interface SuperviseResult {
  /** Each rank's final value (status 'done'). */
  values: WorkerValue[];
  /** Every launcher result (every attempt, every generation), for the cost. */
  results: WorkerResult[];
  stopped?: string;
  generations: number;
  relaunches: RelaunchRecord[];
}

/** The supervisor's view of one rank's current launch (internal to the supervisor's modules). */
export interface Slot extends RankLaunch {
  handle: WorkerHandle | undefined;
  /** The launcher reported our copy a duplicate: an unseen twin holds the rank, watched through the store. */
  hidden: boolean;
  launchedAt: number;
  nonce: string | undefined;
  hbSeq: number;
  hbSeenAt: number;
  value: WorkerValue | undefined;
  over: boolean;
}
