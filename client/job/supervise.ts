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
 *
 * Its parts: control-records.ts reads what workers write to the store, progress.ts keeps the
 * commits and counts the attempts, supervise-types.ts has the shapes it is given and returns.
 */
import { ownerKey, packRecord, type OwnerRecord } from '../../channels/index.js';
import type { WorkerResult } from '../launchers/types.js';
import { TrainError } from '../train-params.js';
import { causeOf, describe, isPermanent, rankList, type Cause } from './causes.js';
import { ControlRecords } from './control-records.js';
import { Progress } from './progress.js';
import type { RankLaunch, RelaunchRecord, SuperviseOptions, SuperviseResult, Slot, WorkerValue } from './supervise-types.js';

export type { RankLaunch, RelaunchRecord, SuperviseResult } from './supervise-types.js';

const POLL_MS = 200;
/** While a launch waits for its grant (a relaunch stalls every BSP rank until it is granted). */
const CLAIM_POLL_MS = 25;
/** Heartbeats are read this often (at most; a quarter of the lease when that is shorter). */
const HEARTBEAT_POLL_MS = 1_000;
/** How long an unclaimed launch may take to claim its rank (cold start, a concurrency queue). */
const START_GRACE_MS = 60_000;
/** How long a channel that failed may take to answer again before the run fails. */
const CHANNEL_RECOVERY_MS = 30_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Supervisor {
  private readonly slots: Slot[] = [];
  private readonly results: WorkerResult[] = [];
  private readonly relaunches: RelaunchRecord[] = [];
  private readonly progress: Progress;
  private readonly records: ControlRecords;
  private generation = 0;
  private wake: (() => void) | undefined;
  private readonly ended: Array<{ slot: Slot; result: WorkerResult }> = [];
  private lastHeartbeatPoll = 0;
  private lastTick = 0;
  private storeFailingSince: number | undefined;
  private lastHealthCheck = Date.now();

  constructor(private readonly o: SuperviseOptions) {
    this.progress = new Progress(o);
    this.records = new ControlRecords(o.jobId, o.store, {
      current: (s) => this.slots[s.rank] === s,
      report: (rank, id) => this.progress.report(rank, id),
      ended: (slot, result) => this.ended.push({ slot, result }),
    });
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
      await this.records.grantClaims(this.slots);
      if (Date.now() - this.lastHeartbeatPoll >= this.heartbeatPollMs()) {
        this.lastHeartbeatPoll = Date.now();
        await this.records.pollHeartbeats(this.slots);
      }
      this.storeFailingSince = undefined;
    } catch (e) {
      this.storeFailingSince ??= Date.now();
      if (Date.now() - this.storeFailingSince > this.o.leaseMs) {
        const cause: Cause = { rank: -1, generation: this.generation, attempt: 0, code: 'STORE_UNREACHABLE', message: `the object store (control records, checkpoints) kept failing for ${this.o.leaseMs / 1000} s: ${e instanceof Error ? e.message : String(e)}` };
        throw this.failure(cause, describe(cause));
      }
    }
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
      if (v.checkpoint !== undefined) this.progress.report(s.rank, v.checkpoint);
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
      const resumeFrom = this.progress.newest(s.rank);
      const l: RankLaunch = { rank: s.rank, generation: s.generation, attempt: s.attempt + 1, ...(resumeFrom !== undefined ? { resumeFrom } : {}) };
      this.record({ at: new Date().toISOString(), generation: s.generation, ranks: [s.rank], launched: [s.rank], cause: describe(cause), ...(resumeFrom !== undefined ? { resumeFrom } : {}) });
      await this.launch(l);
    }
  }

  /** Counts a failure against the ranks; throws once one failed maxAttempts times without progress. */
  private count(cause: Cause, ranks: number[]): void {
    const over = this.progress.count(cause, ranks);
    if (over) throw this.failure(cause, over.why);
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
    const resumeFrom = this.o.recovery === 'rollback' ? this.progress.committed : undefined;
    const gen = ++this.generation;
    const all = [...Array(this.o.world).keys()];
    this.record({ at: new Date().toISOString(), generation: gen, ranks: all, launched: all, cause: describe(cause), ...(resumeFrom !== undefined ? { resumeFrom } : {}) });
    this.o.onGeneration?.(gen);
    for (let rank = 0; rank < this.o.world; rank++) {
      const from = this.o.recovery === 'rollback' ? resumeFrom : this.progress.newest(rank);
      if (this.o.recovery === 'rollback') this.progress.forgetReports(rank);
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
    await this.records.refreshReports(this.slots, this.generation);
    const resumeFrom = this.progress.committed;
    const gen = ++this.generation;
    const live = this.slots.filter((s) => !s.over && s.nonce !== undefined);
    const launched = this.slots.filter((s) => !live.includes(s)).map((s) => s.rank);
    this.record({ at: new Date().toISOString(), generation: gen, ranks: [...Array(this.o.world).keys()], launched, cause: describe(cause), ...(resumeFrom !== undefined ? { resumeFrom } : {}) });
    this.o.onGeneration?.(gen);
    this.progress.forgetReports();
    for (const s of live) {
      s.generation = gen;
      s.attempt = 0;
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
    // A full lease from the directive to read it and heartbeat as the new generation.
    for (const s of live) s.hbSeenAt = Date.now();
  }

  /** Every rank checkpointed at its deadline: the next generation continues from those checkpoints. */
  private async nextGeneration(): Promise<void> {
    const gen = ++this.generation;
    const ids = this.slots.map((s) => s.value!.checkpoint ?? this.progress.newest(s.rank));
    const all = [...Array(this.o.world).keys()];
    this.record({ at: new Date().toISOString(), generation: gen, ranks: all, launched: all, cause: 'the generation checkpointed before its time limit' });
    this.o.onGeneration?.(gen);
    for (let rank = 0; rank < this.o.world; rank++) {
      const from = ids[rank];
      if (this.o.recovery === 'rollback') this.progress.forgetReports(rank);
      await this.launch({ rank, generation: gen, attempt: 0, ...(from !== undefined ? { resumeFrom: from } : {}) });
    }
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
