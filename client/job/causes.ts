/**
 * Why a worker attempt ended without a result, as the supervisor reports it: one line per cause,
 * and whether trying again can help (a bad dataset or a diverged model fails the same way every time).
 */
import type { WorkerResult } from '../launchers/types.js';

export interface Cause {
  /** -1 when no rank caused it (the channel lost the job's state). */
  rank: number;
  generation: number;
  attempt: number;
  /** The worker's or the launcher's code ('WORKER_CRASHED', 'LEASE_EXPIRED', 'TRAIN_DATASET', ...). */
  code: string;
  message: string;
}

/** Errors that another attempt would repeat: the run fails at once on these. */
const PERMANENT = new Set(['TRAIN_MODEL_MISMATCH', 'TRAIN_MODEL_SPEC', 'TRAIN_NO_CHANNEL', 'TRAIN_DATASET', 'TRAIN_DIVERGED', 'EVENT_INVALID', 'TRAIN_CHECKPOINT']);

export function isPermanent(code: string): boolean {
  return PERMANENT.has(code);
}

export function causeOf(rank: number, generation: number, attempt: number, r: WorkerResult): Cause {
  const code = r.error?.code ?? r.status.toUpperCase();
  let message = r.error?.message ?? `the worker ended with status ${r.status}`;
  if (r.status === 'timeout') message += ' (before the generation could checkpoint)';
  const stderr = r.error?.stderr?.trim().split('\n').slice(-3).join(' | ');
  if (stderr && r.status !== 'ok' && code !== 'KILLED') message += ` [stderr: ${stderr}]`;
  return { rank, generation, attempt, code, message };
}

export function describe(c: Cause): string {
  // rank -1: a cause that is no rank's (the channel lost the job's state).
  if (c.rank < 0) return `all ranks (generation ${c.generation}): ${c.code}: ${c.message}`;
  return `rank ${c.rank} (generation ${c.generation}, attempt ${c.attempt}): ${c.code}: ${c.message}`;
}

/** "ranks 0, 1 and 3" */
export function rankList(ranks: readonly number[]): string {
  if (ranks.length === 1) return `rank ${ranks[0]}`;
  return `ranks ${ranks.slice(0, -1).join(', ')} and ${ranks[ranks.length - 1]}`;
}
