/**
 * A supervised worker's lease and fencing (channels/control.ts has the records).
 *
 * acquire(): the copy reads its rank's owner record, claims the launch with a fresh nonce and waits
 * until the supervisor grants the launch to one nonce; any other copy (a duplicate delivery, a
 * superseded attempt) exits with TRAIN_DUPLICATE before writing anything else.
 *
 * Renewal: every heartbeatMs the worker re-reads its owner record and, while it still owns the
 * rank, writes its heartbeat. A write is allowed until half a lease after the start of the last
 * successful renewal (the supervisor replaces a worker only after a whole lease without a new
 * heartbeat); past that, guard() renews first. So a worker frozen (SIGSTOP, a stalled host) and
 * replaced meanwhile finds out that it lost the rank before its next write.
 *
 * In-place rollback (BSP): when another rank is lost, the supervisor may move this copy on to a new
 * generation instead of replacing it (an owner record with this copy's grant, a newer generation
 * and inPlace). A renewal that reads one adopts the new identity and resolves rollback(); the loop
 * of the old generation may no longer write (guard(generation) refuses it) and is abandoned.
 */
import { randomBytes } from 'node:crypto';
import { claimKey, heartbeatKey, ownerKey, packRecord, readRecord, resultKey, type HeartbeatRecord, type OwnerRecord, type ResultRecord, type ObjectStore } from '../channels/index.js';
import { WorkerTrainError } from './train-common.js';

interface LeaseSpec {
  /** The supervisor replaces a worker whose heartbeat has not changed for this long. */
  leaseMs: number;
  heartbeatMs: number;
  /** How long a copy waits for the supervisor to grant its claim. */
  claimTimeoutMs: number;
}

/** Where a copy rolled back in place goes on: a new generation, from a committed checkpoint (or the seed). */
interface RollbackDirective {
  generation: number;
  attempt: number;
  resumeFrom: number | undefined;
}

interface LeaseIdentity {
  jobId: string;
  rank: number;
  generation: number;
  attempt: number;
}

/** How long a claiming copy reads its owner record every 20 ms before it backs off. */
const CLAIM_FAST_MS = 2_000;

/** Checkpoint ids a heartbeat carries (the supervisor needs the newest few). */
const CHECKPOINTS_REPORTED = 4;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Lease {
  readonly nonce = randomBytes(8).toString('hex');
  /** Rejects once the rank is lost (superseded); never resolves. */
  readonly lost: Promise<never>;
  private reject!: (e: WorkerTrainError) => void;
  private error: WorkerTrainError | undefined;
  private seq = 0;
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private readonly checkpoints: number[] = [];
  /** The identity this copy runs as now: an in-place rollback moves it to a newer generation. */
  private id: LeaseIdentity;
  private directive: Promise<RollbackDirective>;
  private announce!: (d: RollbackDirective) => void;

  private constructor(
    private readonly store: ObjectStore,
    id: LeaseIdentity,
    private readonly spec: LeaseSpec,
  ) {
    this.id = { ...id };
    this.lost = new Promise<never>((_, reject) => (this.reject = reject));
    this.lost.catch(() => undefined);
    this.directive = new Promise((r) => (this.announce = r));
  }

  /** Resolves with the next in-place rollback this copy is given (each directive once). */
  rollback(): Promise<RollbackDirective> {
    return this.directive;
  }

  /**
   * Under BSP the supervisor may roll this copy back while it waits on a lost rank: reading the owner
   * record every `everyMs` (a small GET) lets it notice sooner than the next heartbeat.
   */
  watchRollbacks(everyMs: number): void {
    if (this.watchTimer || everyMs >= this.spec.heartbeatMs) return;
    this.watchTimer = setInterval(() => void this.checkDirective().catch(() => undefined), everyMs);
    this.watchTimer.unref();
  }

  private watchTimer: NodeJS.Timeout | undefined;

  private async checkDirective(): Promise<void> {
    if (this.error) return;
    const owner = await this.readOwner();
    if (owner?.inPlace && owner.grant === this.nonce && owner.generation > this.id.generation) this.adopt(owner);
  }

  get generation(): number {
    return this.id.generation;
  }

  /** Claims the launch; resolves once this copy was granted the rank, with heartbeats running. */
  static async acquire(store: ObjectStore, id: LeaseIdentity, spec: LeaseSpec): Promise<Lease> {
    const lease = new Lease(store, id, spec);
    const first = await lease.readOwner();
    const refusal = lease.refusal(first, false);
    if (refusal) throw refusal;
    const started = Date.now();
    await store.put(claimKey(id.jobId, id.rank, id.generation, id.attempt), packRecord({ nonce: lease.nonce }));
    let granted: OwnerRecord | undefined;
    // A supervisor grants within a poll or two (50 ms apart): look often at first, then back off.
    for (let delay = 20; ; delay = Date.now() - started < CLAIM_FAST_MS ? 20 : Math.min(200, delay * 1.5)) {
      const owner = await lease.readOwner();
      const r = lease.refusal(owner, true);
      if (r) throw r;
      if (owner?.grant === lease.nonce) {
        granted = owner;
        break;
      }
      if (Date.now() - started > spec.claimTimeoutMs) {
        throw new WorkerTrainError('TRAIN_NO_SUPERVISOR', id.rank, `${lease.who()} claimed the rank but no supervisor granted it within ${spec.claimTimeoutMs} ms (is the client gone?); this copy exits without writing`);
      }
      await sleep(delay);
    }
    // The owner record just read holds the grant: the first heartbeat need not read it again.
    await lease.renew(started, granted);
    lease.timer = setInterval(() => void lease.renewNow().catch(() => undefined), spec.heartbeatMs);
    lease.timer.unref();
    return lease;
  }

  /**
   * Resolves when this worker may write now: at once within the lease, else after a renewal. Throws
   * TRAIN_DUPLICATE once the rank is lost, and TRAIN_ROLLED_BACK to a loop of `generation` once the
   * copy was moved on to a newer one.
   */
  async guard(generation?: number): Promise<void> {
    this.checkGeneration(generation);
    if (this.error) throw this.error;
    if (Date.now() < this.validUntil) return;
    await this.renewNow();
    if (this.error) throw this.error;
    this.checkGeneration(generation);
  }

  private checkGeneration(generation: number | undefined): void {
    if (generation !== undefined && generation !== this.id.generation) {
      throw new WorkerTrainError('TRAIN_ROLLED_BACK', this.id.rank, `${this.who()}: the loop of generation ${generation} was rolled back and may not write`);
    }
  }

  /** Records a written checkpoint and reports it in a heartbeat at once (the supervisor commits from these). */
  async reportCheckpoint(ckptId: number): Promise<void> {
    if (this.checkpoints[this.checkpoints.length - 1] !== ckptId) this.checkpoints.push(ckptId);
    if (this.checkpoints.length > CHECKPOINTS_REPORTED) this.checkpoints.shift();
    await this.renewNow(true);
  }

  /** The worker's outcome, for a supervisor that cannot see this copy's launcher result. */
  async writeResult(r: Pick<ResultRecord, 'ok' | 'value' | 'error'>): Promise<void> {
    if (this.error) return;
    await this.guard();
    const rec: ResultRecord = { generation: this.id.generation, attempt: this.id.attempt, nonce: this.nonce, ...r };
    await this.store.put(resultKey(this.id.jobId, this.id.rank), packRecord(rec));
  }

  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.watchTimer);
  }

  private who(): string {
    const { jobId, rank, generation, attempt } = this.id;
    return `generation ${generation} attempt ${attempt} of rank ${rank} of job ${jobId}`;
  }

  /** Why this copy may not run (TRAIN_DUPLICATE), or undefined. `claimed`: whether it has claimed already. */
  private refusal(owner: OwnerRecord | undefined, claimed: boolean): WorkerTrainError | undefined {
    const { rank, generation, attempt } = this.id;
    const dup = (why: string) => new WorkerTrainError('TRAIN_DUPLICATE', rank, `${this.who()} ${why}; this copy exits without writing`);
    if (!owner) return dup('has no owner record (the job ended)');
    if (owner.generation !== generation || owner.attempt !== attempt) return dup(`was superseded by generation ${owner.generation} attempt ${owner.attempt}`);
    if (owner.grant !== undefined && owner.grant !== this.nonce) return dup(claimed ? 'was granted to another copy of the same launch (a duplicate delivery)' : 'is already running (a duplicate delivery)');
    return undefined;
  }

  private adopt(owner: OwnerRecord): void {
    this.id = { ...this.id, generation: owner.generation, attempt: owner.attempt };
    // Checkpoints of the abandoned generation are not progress of the new one.
    this.checkpoints.length = 0;
    const announce = this.announce;
    this.directive = new Promise((r) => (this.announce = r));
    announce({ generation: owner.generation, attempt: owner.attempt, resumeFrom: owner.resumeFrom });
  }

  private async readOwner(): Promise<OwnerRecord | undefined> {
    const key = ownerKey(this.id.jobId, this.id.rank);
    const rec = readRecord<OwnerRecord>(await this.store.get(key));
    if (rec) return rec;
    // A partial read of a non-atomic PUT decodes as nothing: look once more before concluding.
    await sleep(20);
    return readRecord<OwnerRecord>(await this.store.get(key));
  }

  /** One renewal at a time; `force` queues another after one in flight (a checkpoint report). */
  private renewNow(force = false): Promise<void> {
    if (this.renewing && !force) return this.renewing;
    const run = (this.renewing ?? Promise.resolve()).catch(() => undefined).then(() => this.renew(Date.now()));
    this.renewing = run;
    void run.catch(() => undefined).then(() => {
      if (this.renewing === run) this.renewing = undefined;
    });
    return run;
  }

  private async renew(started: number, justRead?: OwnerRecord): Promise<void> {
    if (this.error) return;
    const owner = justRead ?? (await this.readOwner());
    if (owner?.inPlace && owner.grant === this.nonce && owner.generation > this.id.generation) this.adopt(owner);
    const r = this.refusal(owner, true) ?? (owner?.grant === this.nonce ? undefined : new WorkerTrainError('TRAIN_DUPLICATE', this.id.rank, `${this.who()} lost its grant; this copy exits without writing`));
    if (r) {
      this.error = r;
      this.stop();
      this.reject(r);
      return;
    }
    const hb: HeartbeatRecord = { generation: this.id.generation, attempt: this.id.attempt, nonce: this.nonce, seq: ++this.seq, checkpoints: [...this.checkpoints] };
    await this.store.put(heartbeatKey(this.id.jobId, this.id.rank), packRecord(hb));
    this.validUntil = Math.max(this.validUntil, started + this.spec.leaseMs / 2);
  }
}

/** Wraps `inner` so that each of its `writes` methods waits for guard() first; everything else passes through. */
export function fenced<T extends object>(inner: T, guard: () => Promise<void>, writes: readonly string[]): T {
  return new Proxy(inner, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const f = v as (...args: unknown[]) => unknown;
      if (typeof prop === 'string' && writes.includes(prop)) {
        return async (...args: unknown[]) => {
          await guard();
          return f.apply(target, args);
        };
      }
      return f.bind(target);
    },
  });
}
