/**
 * The supervisor's account of progress: the checkpoint ids each rank reported, the job's committed
 * checkpoint (rollback: the newest id every rank reported; older ones are deleted from the store),
 * and each rank's failures since it last made progress (a newer checkpoint), against maxAttempts.
 */
import { checkpointKey, type ObjectStore } from '../../channels/index.js';
import { describe, type Cause } from './causes.js';

interface ProgressOptions {
  jobId: string;
  world: number;
  store: ObjectStore;
  recovery: 'rollback' | 'rank';
  maxAttempts: number;
}

export class Progress {
  /** Failures of each rank since the job (rollback) or the rank (rank mode) last made progress. */
  private readonly failures: Cause[][];
  /** Checkpoint ids each rank reported in the current generation (rollback) or ever (rank). */
  private readonly reported: Array<Set<number>>;
  private committedId: number | undefined;

  constructor(private readonly o: ProgressOptions) {
    this.failures = Array.from({ length: o.world }, () => []);
    this.reported = Array.from({ length: o.world }, () => new Set<number>());
  }

  /** The job's committed checkpoint (rollback mode), the one every rank goes back to. */
  get committed(): number | undefined {
    return this.committedId;
  }

  /** Records a checkpoint a rank wrote; commits (and prunes the older one) when that is progress. */
  report(rank: number, id: number): void {
    const before = this.newest(rank);
    this.reported[rank]!.add(id);
    if (this.o.recovery === 'rank') {
      if (before === undefined || id > before) this.failures[rank]!.length = 0;
      return;
    }
    const common = [...this.reported[0]!].filter((c) => this.reported.every((set) => set.has(c)));
    const newest = common.length > 0 ? Math.max(...common) : undefined;
    if (newest !== undefined && (this.committedId === undefined || newest > this.committedId)) {
      const old = this.committedId;
      this.committedId = newest;
      for (const f of this.failures) f.length = 0;
      if (old !== undefined) void this.o.store.delete([...Array(this.o.world).keys()].map((r) => checkpointKey(this.o.jobId, old, r))).catch(() => undefined);
    }
  }

  /** The newest checkpoint `rank` reported. */
  newest(rank: number): number | undefined {
    const ids = [...this.reported[rank]!];
    return ids.length > 0 ? Math.max(...ids) : undefined;
  }

  /** A new generation (rollback): what ranks reported before is not its progress. */
  forgetReports(rank?: number): void {
    for (const [r, set] of this.reported.entries()) if (rank === undefined || r === rank) set.clear();
  }

  /**
   * Counts a failure against the ranks. Returns why the run must fail once one of them failed
   * maxAttempts times without progress; undefined while it may go on.
   */
  count(cause: Cause, ranks: number[]): { rank: number; why: string } | undefined {
    for (const r of ranks) {
      const f = this.failures[r]!;
      f.push(cause);
      if (f.length >= this.o.maxAttempts) {
        // The same cause every time (a missing file, a bad deployment) is said once.
        const same = f.length > 1 && f.every((c) => c.code === f[0]!.code && c.message === f[0]!.message);
        const all = same ? `  attempts 1-${f.length}, each: ${describe(f[0]!)}` : f.map((c, i) => `  attempt ${i + 1}: ${describe(c)}`).join('\n');
        const times = f.length === 1 ? 'once' : `${f.length} times in a row`;
        return { rank: r, why: `rank ${r} failed ${times} without progress (maxAttempts ${this.o.maxAttempts}):\n${all}` };
      }
    }
    return undefined;
  }
}
