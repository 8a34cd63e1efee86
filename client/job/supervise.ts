/**
 * The supervisor of a training run: launches every rank, holds each to its lease, relaunches what is
 * lost and reports the root cause when it gives up.
 *
 * It sees only what works across networks (workers may be Lambda functions): its launcher's
 * results, and the control records workers write to the object store (channels/control.ts):
 * claims, heartbeats, results. Before each launch it writes the rank's owner record; it grants each
 * launch to the first claim it reads, so a second copy of one event exits with TRAIN_DUPLICATE.
 *
 * A rank is lost when its attempt ends without a result (crash, kill, out of memory, time limit,
 * an error), or when its heartbeat has not changed for a lease (a hang, a frozen host). Recovery:
 *   rollback  (BSP) every rank goes back to the job's last committed checkpoint (the newest id
 *             every rank reported) as a new generation: the lost rank is relaunched, the ranks
 *             still alive roll back in place (their owner record moves them on; no cold start).
 *             BSP is deterministic, so the run ends with the weights a fault-free run has, bit
 *             for bit. When the channel lost the job's state, every rank is relaunched.
 *   rank      (ASP, async-sgd) only the lost rank is relaunched, from its own newest checkpoint.
 * A rank may fail maxAttempts times without progress (a newer checkpoint) before the run fails;
 * errors another attempt would repeat (a bad dataset, divergence) fail it at once. Either way the
 * error names the first failure and its cause; ranks stopped because of it are listed as such.
 */
import { heartbeatKey, ownerKey, claimKey, packRecord, readRecord, resultKey, type HeartbeatRecord, type OwnerRecord, type ResultRecord } from '../../channels/control.js';
import { checkpointKey } from '../../channels/job-keys.js';
import type { ObjectStore } from '../../channels/datasets/types.js';
import type { Launcher, WorkerEvent, WorkerHandle, WorkerResult } from '../launchers/types.js';
import { TrainError } from '../train-params.js';
import { causeOf, describe, isPermanent, rankList, type Cause } from './causes.js';

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

const POLL_MS = 200;
const CLAIM_POLL_MS = 50;
/** Heartbeats are read this often (at most; a quarter of the lease when that is shorter). */
const HEARTBEAT_POLL_MS = 1_000;
/** How long an unclaimed launch may take to claim its rank (cold start, a concurrency queue). */
const START_GRACE_MS = 60_000;
/** How long a channel that failed may take to answer again before the run fails. */
const CHANNEL_RECOVERY_MS = 30_000;

interface Slot extends RankLaunch {
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));


export class Supervisor {
  private readonly slots: Slot[] = [];
  private readonly results: WorkerResult[] = [];
  private readonly relaunches: RelaunchRecord[] = [];
  /** Failures of each rank since the job (rollback) or the rank (rank mode) last made progress. */
  private readonly failures: Cause[][];
  /** Checkpoint ids each rank reported in the current generation (rollback) or ever (rank). */
  private readonly reported: Array<Set<number>>;
  private committed: number | undefined;
  private generation = 0;
  private wake: (() => void) | undefined;
  private readonly ended: Array<{ slot: Slot; result: WorkerResult }> = [];
  private lastHeartbeatPoll = 0;
  private lastTick = 0;
  private storeFailingSince: number | undefined;
  private lastHealthCheck = Date.now();

  constructor(private readonly o: SuperviseOptions) {
    this.failures = Array.from({ length: o.world }, () => []);
    this.reported = Array.from({ length: o.world }, () => new Set<number>());
  }

  async run(): Promise<SuperviseResult> {
    const { world } = this.o;
    this.o.onGeneration?.(0);
    for (let rank = 0; rank < world; rank++) await this.launch({ rank, generation: 0, attempt: 0 });
    try {
      for (;;) {
        // Launches waiting for their grant are served sooner: a relaunch waits on them.
        const claiming = this.slots.some((s) => s.nonce === undefined && !s.over);
        // A worker that ended while the loop was busy is acted on now, not after another sleep.
        if (this.ended.length === 0) await Promise.race([sleep(claiming ? CLAIM_POLL_MS : POLL_MS), new Promise<void>((r) => (this.wake = r))]);
        // Ends first (a lost rank stalls every BSP rank): before the tick and the store reads.
        await this.drainEnded();
        if (claiming && Date.now() - this.lastTick < POLL_MS) {
          await this.readControlRecords();
          continue;
        }
        this.lastTick = Date.now();
        const stop = await this.o.tick();
        if (stop) return await this.finish(stop);
        await this.readControlRecords();
        // Results before leases: a worker that ended must not also count as a lease that expired.
        await this.drainEnded();
        await this.checkLeases();
        await this.checkChannel();
        if (this.slots.every((s) => s.value)) {
          if (this.slots.every((s) => s.value!.status === 'done')) return await this.finish(undefined);
          await this.nextGeneration();
        }
      }
    } catch (e) {
      this.killAll('the run failed');
      await this.settle();
      throw e;
    }
  }

  private async drainEnded(): Promise<void> {
    while (this.ended.length > 0) {
      const { slot, result } = this.ended.shift()!;
      if (this.slots[slot.rank] === slot && !slot.over) await this.onResult(slot, result);
    }
  }

  private async launch(l: RankLaunch): Promise<void> {
    const { jobId, store, launcher } = this.o;
    const owner: OwnerRecord = { generation: l.generation, attempt: l.attempt };
    await store.put(ownerKey(jobId, l.rank), packRecord(owner));
    const slot: Slot = { ...l, handle: undefined, hidden: false, launchedAt: Date.now(), nonce: undefined, hbSeq: -1, hbSeenAt: Date.now(), value: undefined, over: false };
    this.slots[l.rank] = slot;
    const handle = await launcher.launch(this.o.event(l));
    slot.handle = handle;
    void handle.result.then((result) => {
      this.results.push(result);
      this.ended.push({ slot, result });
      this.wake?.();
    });
  }

  /**
   * Claims and heartbeats. A store that fails for a moment does not fail the run (its failures
   * only delay what the records tell); one that keeps failing for a lease does.
   */
  private async readControlRecords(): Promise<void> {
    try {
      await this.grantClaims();
      if (Date.now() - this.lastHeartbeatPoll >= this.heartbeatPollMs()) await this.pollHeartbeats();
      this.storeFailingSince = undefined;
    } catch (e) {
      this.storeFailingSince ??= Date.now();
      if (Date.now() - this.storeFailingSince > this.o.leaseMs) {
        const cause: Cause = { rank: -1, generation: this.generation, attempt: 0, code: 'STORE_UNREACHABLE', message: `the object store (control records, checkpoints) kept failing for ${this.o.leaseMs / 1000} s: ${e instanceof Error ? e.message : String(e)}` };
        throw this.failure(cause, describe(cause));
      }
    }
  }

  /** Grants each unclaimed launch to the first claim read; the grant is written once, never changed. */
  private async grantClaims(): Promise<void> {
    const { jobId, store } = this.o;
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.nonce !== undefined || s.over) return;
        const claim = readRecord<{ nonce: string }>(await store.get(claimKey(jobId, s.rank, s.generation, s.attempt)));
        if (!claim || typeof claim.nonce !== 'string' || this.slots[s.rank] !== s) return;
        s.nonce = claim.nonce;
        s.hbSeenAt = Date.now();
        await store.put(ownerKey(jobId, s.rank), packRecord({ generation: s.generation, attempt: s.attempt, grant: claim.nonce }));
      }),
    );
  }

  private async pollHeartbeats(): Promise<void> {
    const { jobId, store } = this.o;
    this.lastHeartbeatPoll = Date.now();
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.nonce === undefined || s.over) return;
        const hb = readRecord<HeartbeatRecord>(await store.get(heartbeatKey(jobId, s.rank)));
        if (hb && hb.nonce === s.nonce && hb.generation === s.generation && hb.attempt === s.attempt && hb.seq > s.hbSeq) {
          s.hbSeq = hb.seq;
          s.hbSeenAt = Date.now();
          for (const id of hb.checkpoints ?? []) this.report(s.rank, id);
        }
        // A copy the launcher cannot show us reports its end in the store.
        if (s.hidden && !s.value) {
          const r = readRecord<ResultRecord>(await store.get(resultKey(jobId, s.rank)));
          if (r && r.nonce === s.nonce && r.generation === s.generation && r.attempt === s.attempt) {
            const result: WorkerResult = r.ok ? { status: 'ok', value: r.value, durationMs: 0, coldStartMs: 0 } : { status: 'error', error: r.error ?? { code: 'WORKER_ERROR', message: 'no message' }, durationMs: 0, coldStartMs: 0 };
            this.ended.push({ slot: s, result });
          }
        }
      }),
    );
  }

  /**
   * Reads the newest heartbeat of every rank of this generation, the lost one's too (its last record
   * outlives it): the newest checkpoint every rank wrote is then committed, not one a poll behind.
   */
  private async refreshReports(): Promise<void> {
    const { jobId, store } = this.o;
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.nonce === undefined || s.generation !== this.generation) return;
        const hb = readRecord<HeartbeatRecord>(await store.get(heartbeatKey(jobId, s.rank)).catch(() => undefined));
        if (hb && hb.nonce === s.nonce && hb.generation === s.generation && hb.attempt === s.attempt) for (const id of hb.checkpoints ?? []) this.report(s.rank, id);
      }),
    );
  }

  private async onResult(s: Slot, r: WorkerResult): Promise<void> {
    if (r.status === 'ok' && typeof (r.value as WorkerValue).generation === 'number' && (r.value as WorkerValue).generation !== s.generation) {
      // It finished the generation it was moved on from before it read its rollback: run the rank again.
      const v = r.value as WorkerValue;
      await this.lost(s, { rank: s.rank, generation: s.generation, attempt: s.attempt, code: 'ROLLBACK_MISSED', message: `the copy ended generation ${String(v.generation)} before it read its rollback to generation ${s.generation}` });
      return;
    }
    if (r.status === 'ok') {
      const v = r.value as WorkerValue;
      s.value = v;
      s.over = true;
      if (v.checkpoint !== undefined) this.report(s.rank, v.checkpoint);
      return;
    }
    if (r.error?.code === 'TRAIN_DUPLICATE' && !s.hidden) {
      // Our copy lost the claim to a twin delivery of the same event: watch the twin instead.
      s.hidden = true;
      return;
    }
    await this.lost(s, causeOf(s.rank, s.generation, s.attempt, r));
  }

  private heartbeatPollMs(): number {
    return Math.min(HEARTBEAT_POLL_MS, this.o.leaseMs / 4);
  }

  private async checkLeases(): Promise<void> {
    const now = Date.now();
    for (const s of [...this.slots]) {
      if (s.over || this.slots[s.rank] !== s) continue;
      // hbSeenAt is when a heartbeat was seen, up to one heartbeat poll after it was written (and a
      // tick more may pass): expiring that much early replaces a frozen worker within its lease.
      if (s.nonce !== undefined && now - s.hbSeenAt > this.o.leaseMs - this.heartbeatPollMs() - 2 * POLL_MS) {
        const secs = ((now - s.hbSeenAt) / 1000).toFixed(1);
        await this.lost(s, { rank: s.rank, generation: s.generation, attempt: s.attempt, code: 'LEASE_EXPIRED', message: `no heartbeat for ${secs} s (lease ${this.o.leaseMs / 1000} s): the worker hangs, is frozen or cannot reach the store` });
      } else if (s.nonce === undefined && !s.hidden && now - s.launchedAt > START_GRACE_MS + this.o.leaseMs) {
        await this.lost(s, { rank: s.rank, generation: s.generation, attempt: s.attempt, code: 'START_TIMEOUT', message: `the worker did not claim its rank within ${(START_GRACE_MS + this.o.leaseMs) / 1000} s of its launch` });
      }
    }
  }

  private async checkChannel(): Promise<void> {
    if (!this.o.channelHealth || Date.now() - this.lastHealthCheck < 1_000) return;
    this.lastHealthCheck = Date.now();
    const problem = await this.o.channelHealth();
    if (!problem) return;
    // Every rank lost its exchange state: all of them go back to the last checkpoint.
    const cause: Cause = { rank: -1, generation: this.generation, attempt: 0, code: 'CHANNEL_LOST', message: problem };
    await this.awaitChannel(cause);
    this.count(cause, [...Array(this.o.world).keys()]);
    await this.relaunchAll(cause);
  }

  /** Stops every rank and waits (bounded) until the channel answers again, so relaunches do not fail on it. */
  private async awaitChannel(cause: Cause): Promise<boolean> {
    const health = this.o.channelHealth;
    if (!health) return false;
    const deadline = Date.now() + CHANNEL_RECOVERY_MS;
    let problem = await health();
    if (!problem) return false;
    this.killAll(`the channel failed: ${problem}`);
    while (problem) {
      if (Date.now() > deadline) throw this.failure(cause, `the channel did not recover within ${CHANNEL_RECOVERY_MS / 1000} s after ${describe(cause)}: ${problem}`);
      await sleep(500);
      problem = await health();
    }
    this.lastHealthCheck = Date.now();
    return true;
  }

  /** A lost attempt: fail the run, or relaunch as the recovery mode says. */
  private async lost(s: Slot, cause: Cause): Promise<void> {
    s.over = true;
    s.handle?.kill(`${cause.code}: lost`);
    if (isPermanent(cause.code)) throw this.failure(cause, `${describe(cause)}`);
    // A worker that failed on the channel: relaunching before the channel is back would fail again.
    const stoppedAll = cause.code === 'TRAIN_CHANNEL' && (await this.awaitChannel(cause));
    this.count(cause, [s.rank]);
    if (stoppedAll) {
      await this.relaunchAll(cause);
    } else if (this.o.recovery === 'rollback') {
      await this.rollbackInPlace(cause);
    } else {
      const resumeFrom = this.newest(s.rank);
      const l: RankLaunch = { rank: s.rank, generation: s.generation, attempt: s.attempt + 1, ...(resumeFrom !== undefined ? { resumeFrom } : {}) };
      this.record({ at: new Date().toISOString(), generation: s.generation, ranks: [s.rank], launched: [s.rank], cause: describe(cause), ...(resumeFrom !== undefined ? { resumeFrom } : {}) });
      await this.launch(l);
    }
  }

  /** Counts a failure against the ranks; throws once one failed maxAttempts times without progress. */
  private count(cause: Cause, ranks: number[]): void {
    for (const r of ranks) {
      const f = this.failures[r]!;
      f.push(cause);
      if (f.length >= this.o.maxAttempts) {
        // The same cause every time (a missing file, a bad deployment) is said once.
        const same = f.length > 1 && f.every((c) => c.code === f[0]!.code && c.message === f[0]!.message);
        const all = same ? `  attempts 1-${f.length}, each: ${describe(f[0]!)}` : f.map((c, i) => `  attempt ${i + 1}: ${describe(c)}`).join('\n');
        const times = f.length === 1 ? 'once' : `${f.length} times in a row`;
        throw this.failure(cause, `rank ${r} failed ${times} without progress (maxAttempts ${this.o.maxAttempts}):\n${all}`);
      }
    }
  }

  /** The run's error: the root cause first, then the ranks stopped because of it. */
  private failure(root: Cause, what: string): TrainError {
    const collateral = this.slots.filter((s) => !s.over && s.rank !== root.rank).map((s) => s.rank);
    this.killAll(`rank ${root.rank} failed`);
    const tail = collateral.length > 0 ? `; ${rankList(collateral)} ${collateral.length === 1 ? 'was' : 'were'} stopped because of it` : '';
    const code = root.code === 'TRAIN_DIVERGED' ? 'TRAIN_DIVERGED' : 'TRAIN_WORKER_FAILED';
    const err = new TrainError(code, `job ${this.o.jobId}: ${what}${tail}`);
    Object.assign(err, { rank: root.rank, cause: root, collateral });
    return err;
  }

  /** Stops every rank and launches them all as the next generation from the committed checkpoint. */
  private async relaunchAll(cause: Cause): Promise<void> {
    this.killAll(`relaunching every rank after ${cause.code}`);
    const resumeFrom = this.o.recovery === 'rollback' ? this.committed : undefined;
    const gen = ++this.generation;
    const all = [...Array(this.o.world).keys()];
    this.record({ at: new Date().toISOString(), generation: gen, ranks: all, launched: all, cause: describe(cause), ...(resumeFrom !== undefined ? { resumeFrom } : {}) });
    this.o.onGeneration?.(gen);
    for (let rank = 0; rank < this.o.world; rank++) {
      const from = this.o.recovery === 'rollback' ? resumeFrom : this.newest(rank);
      if (this.o.recovery === 'rollback') this.reported[rank]!.clear();
      await this.launch({ rank, generation: gen, attempt: 0, ...(from !== undefined ? { resumeFrom: from } : {}) });
    }
  }

  /**
   * BSP after a lost rank: every rank goes on as the next generation from the committed checkpoint.
   * A rank whose copy holds its grant and runs is moved on in place (its owner record says so; it
   * reads it within a heartbeat and restarts its loop without a cold start); the others are
   * launched anew.
   */
  private async rollbackInPlace(cause: Cause): Promise<void> {
    await this.refreshReports();
    const resumeFrom = this.committed;
    const gen = ++this.generation;
    const live = this.slots.filter((s) => !s.over && s.nonce !== undefined);
    const launched = this.slots.filter((s) => !live.includes(s)).map((s) => s.rank);
    this.record({ at: new Date().toISOString(), generation: gen, ranks: [...Array(this.o.world).keys()], launched, cause: describe(cause), ...(resumeFrom !== undefined ? { resumeFrom } : {}) });
    this.o.onGeneration?.(gen);
    for (const set of this.reported) set.clear();
    for (const s of live) {
      s.generation = gen;
      s.attempt = 0;
      // A full lease to read the directive and heartbeat as the new generation.
      s.hbSeenAt = Date.now();
    }
    // The lost ranks first: their start is the longest step of the recovery.
    await Promise.all(
      launched.map(async (rank) => {
        const old = this.slots[rank]!;
        if (!old.over) {
          old.over = true;
          old.handle?.kill(`relaunching rank ${rank} after ${cause.code}`);
        }
        await this.launch({ rank, generation: gen, attempt: 0, ...(resumeFrom !== undefined ? { resumeFrom } : {}) });
      }),
    );
    await Promise.all(live.map((s) => this.o.store.put(ownerKey(this.o.jobId, s.rank), packRecord({ generation: gen, attempt: 0, grant: s.nonce!, inPlace: true, ...(resumeFrom !== undefined ? { resumeFrom } : {}) }))));
  }

  /** Every rank checkpointed at its deadline: the next generation continues from those checkpoints. */
  private async nextGeneration(): Promise<void> {
    const gen = ++this.generation;
    const ids = this.slots.map((s) => s.value!.checkpoint ?? this.newest(s.rank));
    const all = [...Array(this.o.world).keys()];
    this.record({ at: new Date().toISOString(), generation: gen, ranks: all, launched: all, cause: 'the generation checkpointed before its time limit' });
    this.o.onGeneration?.(gen);
    for (let rank = 0; rank < this.o.world; rank++) {
      const from = ids[rank];
      if (this.o.recovery === 'rollback') this.reported[rank]!.clear();
      await this.launch({ rank, generation: gen, attempt: 0, ...(from !== undefined ? { resumeFrom: from } : {}) });
    }
  }

  /** Records a checkpoint a rank wrote; commits (and prunes) when that is progress. */
  private report(rank: number, id: number): void {
    const before = this.newest(rank);
    this.reported[rank]!.add(id);
    if (this.o.recovery === 'rank') {
      if (before === undefined || id > before) this.failures[rank]!.length = 0;
      return;
    }
    const common = [...this.reported[0]!].filter((c) => this.reported.every((set) => set.has(c)));
    const newest = common.length > 0 ? Math.max(...common) : undefined;
    if (newest !== undefined && (this.committed === undefined || newest > this.committed)) {
      const old = this.committed;
      this.committed = newest;
      for (const f of this.failures) f.length = 0;
      if (old !== undefined) void this.o.store.delete([...Array(this.o.world).keys()].map((r) => checkpointKey(this.o.jobId, old, r))).catch(() => undefined);
    }
  }

  private newest(rank: number): number | undefined {
    const ids = [...this.reported[rank]!];
    return ids.length > 0 ? Math.max(...ids) : undefined;
  }

  private record(r: RelaunchRecord): void {
    this.relaunches.push(r);
    this.o.onRelaunch?.(r);
  }

  private killAll(reason: string): void {
    for (const s of this.slots) {
      if (s.over) continue;
      s.over = true;
      s.handle?.kill(reason);
    }
  }

  /** Waits for the launcher results of every launch (killed ones settle at once). */
  private async settle(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.handle?.result));
  }

  private async finish(stopped: string | undefined): Promise<SuperviseResult> {
    if (stopped) this.killAll(stopped);
    await this.settle();
    // Let the result callbacks of the last launches run, so `results` holds every attempt.
    await sleep(0);
    return {
      values: this.slots.map((s) => s.value!),
      results: this.results,
      ...(stopped ? { stopped } : {}),
      generations: this.generation + 1,
      relaunches: this.relaunches,
    };
  }
}
