/**
 * Prewarmed local workers: worker processes spawned before their events exist, so node's start-up
 * and the worker's module loading are done when an event comes. A prewarmed child waits on stdin;
 * the local launcher that next starts a worker with the same entry, memory and flags takes it
 * instead of spawning, and sends it the event with its deadline (a prewarmed child's clock starts
 * then, not at its spawn).
 *
 * Two users: `cirrus train` prewarms the run's first workers while the CLI loads the training
 * modules (prewarmWorkers, a pool of this process), and a local launcher with `standby` keeps warm
 * spares of its own for relaunches (a WarmPool it owns, released at its close()). Children nobody
 * takes are killed on release() or when this process exits; a waiting child also exits by itself
 * once its parent is gone (worker/child.ts watches its parent pid from its start).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { makeWorkerTmp, removeWhenGone } from './sandbox-tmp.js';

export interface PrewarmSpec {
  entry: string;
  memoryMb: number;
  nodeArgs?: string[];
  env?: Record<string, string>;
}

const pools = new Set<WarmPool>();
let hooked = false;

/** Kills the waiting children of every pool when this process exits ('exit' handlers are synchronous: kill is). */
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const p of pools) p.release();
  });
}

/** Sets the scheduling priority of every thread of `pid` (Linux: setpriority acts on one thread). */
function renice(pid: number, nice: number): void {
  let tids: number[] = [pid];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    // not Linux, or already gone: the main thread only
  }
  for (const tid of tids) {
    try {
      setPriority(tid, nice);
    } catch {
      // gone, or not allowed: it runs at the priority it has
    }
  }
}

/** Warm children of one spec. */
export class WarmPool {
  private readonly ready: ChildProcess[] = [];
  /** Children spawned at a lower priority, to be set back when taken. */
  private readonly niced = new WeakSet<ChildProcess>();

  constructor(readonly spec: PrewarmSpec) {
    pools.add(this);
    hookExit();
  }

  /** Waiting children alive now. */
  get size(): number {
    this.prune();
    return this.ready.length;
  }

  /**
   * Spawns `count` children now; they load their modules and wait for an event on stdin. `nice` > 0
   * lowers their priority while they wait (a spare must not slow the workers running), restored
   * when taken.
   */
  spawn(count: number, nice = 0): void {
    const s = this.spec;
    for (let i = 0; i < count; i++) {
      const tmp = makeWorkerTmp();
      const child = spawn(process.execPath, [...(s.nodeArgs ?? []), `--max-old-space-size=${s.memoryMb}`, s.entry], {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        env: { ...process.env, ...(s.env ?? {}), CIRRUS_WORKER_MEMORY_MB: String(s.memoryMb), CIRRUS_WORKER_PREWARMED: '1', TMPDIR: tmp },
      });
      removeWhenGone(child, tmp);
      child.on('error', () => undefined);
      child.stdin!.on('error', () => undefined);
      if (nice > 0 && child.pid !== undefined) {
        renice(child.pid, nice);
        this.niced.add(child);
      }
      // Waiting children must not keep a finished client alive.
      child.unref();
      this.ready.push(child);
    }
  }

  /** A live waiting child, removed from the pool (at normal priority); undefined when there is none. */
  take(): ChildProcess | undefined {
    this.prune();
    const child = this.ready.shift();
    if (!child) return undefined;
    if (this.niced.has(child)) renice(child.pid!, 0);
    child.ref();
    return child;
  }

  pids(): number[] {
    this.prune();
    return this.ready.map((c) => c.pid!);
  }

  /** Kills every child still waiting. */
  release(): void {
    for (const child of this.ready.splice(0)) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Releases the children and forgets the pool. */
  close(): void {
    this.release();
    pools.delete(this);
  }

  private prune(): void {
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const c = this.ready[i]!;
      if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) this.ready.splice(i, 1);
    }
  }
}

/** This process's pools for `cirrus train`'s first workers, by spec. */
const shared = new Map<string, WarmPool>();

function keyOf(s: PrewarmSpec): string {
  return JSON.stringify([s.entry, s.memoryMb, s.nodeArgs ?? [], s.env ?? {}]);
}

/** Spawns `count` children of `spec` now; they wait for an event on stdin. */
export function prewarmWorkers(count: number, spec: PrewarmSpec): void {
  const key = keyOf(spec);
  let pool = shared.get(key);
  if (!pool) shared.set(key, (pool = new WarmPool(spec)));
  pool.spawn(count);
}

/** A live prewarmed child for `spec`, removed from the pool; undefined when there is none. */
export function takePrewarmed(spec: PrewarmSpec): ChildProcess | undefined {
  return shared.get(keyOf(spec))?.take();
}

/** Kills every child still waiting in the shared pools. */
export function release(): void {
  for (const pool of shared.values()) pool.release();
}
