/**
 * The control plane of a supervised training job: small msgpack records in the object store (not
 * the channel, so they outlive a channel server that restarts, and reach workers in any network:
 * the client sees only what workers write there plus its launcher's results).
 *
 *   job/<id>/owner/<rank>      written by the supervisor before each launch: the (generation,
 *                              attempt) that owns the rank, and once granted, the nonce of the
 *                              one copy of that launch allowed to run; an in-place rollback moves
 *                              the granted copy on to a new generation
 *   job/<id>/claim/<rank>/<g>-<a>  a copy's claim (its nonce); the supervisor grants the first it reads
 *   job/<id>/hb/<rank>         a worker's heartbeat: its lease, renewed every heartbeatMs
 *   job/<id>/result/<rank>     a worker's result, written before it returns
 *   job/<id>/ckpt/<id>/<rank>  checkpoints (worker/checkpoint.ts)
 *
 * Fencing without conditional writes: the supervisor is the only writer of owner records and
 * writes each grant once, so of two copies of one event exactly one sees its own nonce granted.
 */
import { jobKey } from './keys.js';
import { packMessage, unpackMessage } from './messages.js';

export const ownerKey = (jobId: string, rank: number) => jobKey(jobId, 'owner', rank);
export const claimKey = (jobId: string, rank: number, generation: number, attempt: number) => jobKey(jobId, 'claim', rank, `${generation}-${attempt}`);
export const heartbeatKey = (jobId: string, rank: number) => jobKey(jobId, 'hb', rank);
export const resultKey = (jobId: string, rank: number) => jobKey(jobId, 'result', rank);

export interface OwnerRecord {
  generation: number;
  attempt: number;
  /** The nonce of the granted copy; absent until the supervisor granted one. */
  grant?: string;
  /**
   * An in-place rollback (BSP): the granted copy of an earlier generation goes on as this one,
   * from checkpoint `resumeFrom` (absent: from the seed), without a new launch.
   */
  inPlace?: boolean;
  resumeFrom?: number;
}

export interface HeartbeatRecord {
  generation: number;
  attempt: number;
  nonce: string;
  /** Increases with every renewal: the supervisor watches it change, never compares clocks. */
  seq: number;
  /** Checkpoint ids this attempt wrote, newest last (at most a few). */
  checkpoints: number[];
}

export interface ResultRecord {
  generation: number;
  attempt: number;
  nonce: string;
  ok: boolean;
  value?: unknown;
  error?: { code: string; message: string };
}

/** Decodes a control record, or undefined when absent or unreadable (a store whose PUT is not atomic may show a partial one). */
export function readRecord<T>(bytes: Uint8Array | undefined): T | undefined {
  if (bytes === undefined) return undefined;
  try {
    const v = unpackMessage<T>(bytes);
    return typeof v === 'object' && v !== null ? v : undefined;
  } catch {
    return undefined;
  }
}

export const packRecord = (r: OwnerRecord | HeartbeatRecord | ResultRecord | { nonce: string }): Uint8Array => packMessage(r);
