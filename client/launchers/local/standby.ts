/**
 * A local launcher's standby: warm worker processes kept ready for the next launch (a relaunch
 * after a lost worker), so it skips node's start-up and the worker's module loading, as a warm
 * Lambda container does. A spare is spawned only while no launch is starting (it must not
 * slow the workers' own start), at a lower priority while it waits, and replaced once taken.
 * A taken spare gets its event, deadline and memory watchdog like any other launch; the launcher's
 * close() kills the spares (and worker/child.ts makes a waiting child exit when its parent dies).
 */
import type { ChildProcess } from 'node:child_process';
import { WarmPool, type PrewarmSpec } from '../prewarm.js';

export class Standby {
  private readonly pool: WarmPool;
  /** Launches between their process's start and their handler's. */
  private pending = 0;
  private closed = false;

  constructor(
    spec: PrewarmSpec,
    /** Spares to keep. */
    private readonly count: number,
    /** Their niceness while they wait (0: none). */
    private readonly nice: number,
  ) {
    this.pool = new WarmPool(spec);
  }

  /** A warm spare, or undefined; its replacement comes once no launch is starting. */
  take(): ChildProcess | undefined {
    return this.closed ? undefined : this.pool.take();
  }

  /** A launch began its process (spawned or taken): spares wait until it has started. */
  starting(): void {
    this.pending++;
  }

  /** A launch reached its handler, or ended before. */
  started(): void {
    this.pending = Math.max(0, this.pending - 1);
    this.fill();
  }

  /** Spawns spares up to the count when no launch is starting. */
  private fill(): void {
    if (this.closed || this.pending > 0) return;
    const missing = this.count - this.pool.size;
    if (missing > 0) this.pool.spawn(missing, this.nice);
  }

  pids(): number[] {
    return this.pool.pids();
  }

  close(): void {
    this.closed = true;
    this.pool.close();
  }
}
