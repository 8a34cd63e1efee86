/**
 * The supervisor's reads of the control records workers write to the object store
 * (channels/control.ts): claims (granted to the first one read, once), heartbeats (lease renewals
 * carrying the checkpoint ids a rank wrote), and the results of copies the launcher cannot show.
 */
import { claimKey, heartbeatKey, ownerKey, packRecord, readRecord, resultKey, type HeartbeatRecord, type ResultRecord, type ObjectStore } from '../../channels/index.js';
import type { WorkerResult } from '../launchers/types.js';
import type { Slot } from './supervise-types.js';

/** Where what the records tell goes. */
interface RecordSink {
  /** Whether `s` is still its rank's current launch. */
  current(s: Slot): boolean;
  /** A rank reported a checkpoint it wrote. */
  report(rank: number, checkpointId: number): void;
  /** A copy the launcher cannot show ended (its result record). */
  ended(s: Slot, result: WorkerResult): void;
}

export class ControlRecords {
  constructor(
    private readonly jobId: string,
    private readonly store: ObjectStore,
    private readonly sink: RecordSink,
  ) {}

  /** Grants each unclaimed launch to the first claim read; the grant is written once, never changed. */
  async grantClaims(slots: Slot[]): Promise<void> {
    const { jobId, store } = this;
    await Promise.all(
      slots.map(async (s) => {
        if (s.nonce !== undefined || s.over) return;
        const claim = readRecord<{ nonce: string }>(await store.get(claimKey(jobId, s.rank, s.generation, s.attempt)));
        if (!claim || typeof claim.nonce !== 'string' || !this.sink.current(s)) return;
        s.nonce = claim.nonce;
        s.hbSeenAt = Date.now();
        await store.put(ownerKey(jobId, s.rank), packRecord({ generation: s.generation, attempt: s.attempt, grant: claim.nonce }));
      }),
    );
  }

  /** Renewed leases (and their checkpoints); the end of a copy only the store shows. */
  async pollHeartbeats(slots: Slot[]): Promise<void> {
    const { jobId, store } = this;
    await Promise.all(
      slots.map(async (s) => {
        if (s.nonce === undefined || s.over) return;
        const hb = readRecord<HeartbeatRecord>(await store.get(heartbeatKey(jobId, s.rank)));
        if (hb && hb.nonce === s.nonce && hb.generation === s.generation && hb.attempt === s.attempt && hb.seq > s.hbSeq) {
          s.hbSeq = hb.seq;
          s.hbSeenAt = Date.now();
          for (const id of hb.checkpoints ?? []) this.sink.report(s.rank, id);
        }
        // A copy the launcher cannot show us reports its end in the store.
        if (s.hidden && !s.value) {
          const r = readRecord<ResultRecord>(await store.get(resultKey(jobId, s.rank)));
          if (r && r.nonce === s.nonce && r.generation === s.generation && r.attempt === s.attempt) {
            const result: WorkerResult = r.ok ? { status: 'ok', value: r.value, durationMs: 0, coldStartMs: 0 } : { status: 'error', error: r.error ?? { code: 'WORKER_ERROR', message: 'no message' }, durationMs: 0, coldStartMs: 0 };
            this.sink.ended(s, result);
          }
        }
      }),
    );
  }

  /**
   * Reads the newest heartbeat of every rank of `generation`, the lost one's too (its last record
   * outlives it): the newest checkpoint every rank wrote is then committed, not one a poll behind.
   */
  async refreshReports(slots: Slot[], generation: number): Promise<void> {
    const { jobId, store } = this;
    await Promise.all(
      slots.map(async (s) => {
        if (s.nonce === undefined || s.generation !== generation) return;
        const hb = readRecord<HeartbeatRecord>(await store.get(heartbeatKey(jobId, s.rank)).catch(() => undefined));
        if (hb && hb.nonce === s.nonce && hb.generation === s.generation && hb.attempt === s.attempt) for (const id of hb.checkpoints ?? []) this.sink.report(s.rank, id);
      }),
    );
  }
}
