/**
 * Fault injection for resilience testing (the chaos suite, `cirrus bench chaos`): a local launcher
 * that shows its live workers' pids and can deliver each event twice (as Lambda may), and a killer
 * that sends signals on a schedule drawn from a seeded generator, so any failure can be replayed.
 */
import { LocalLauncher, type LocalLauncherOptions, type LocalWorkerHandle } from './local.js';
import type { Launcher, WorkerEvent, WorkerHandle, WorkerResult } from './types.js';

/** A small seeded generator (SplitMix32): the killer's schedule is a function of its seed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 0x100000000;
  };
}

export interface Launch {
  event: WorkerEvent;
  handle: LocalWorkerHandle;
  /** A copy the supervisor never sees (a duplicate delivery). */
  twin: boolean;
  /** Epoch ms of the launch call, and of the end the launcher saw (its exit). */
  launchedAt: number;
  endedAt?: number;
}

export interface ChaosLauncherOptions extends LocalLauncherOptions {
  /** Deliver every event twice: 'before' starts the unseen copy first, 'after' starts it once the seen one runs. */
  duplicate?: 'before' | 'after';
  /** Delay between the two copies, ms (default 300). */
  duplicateGapMs?: number;
  /** Called with each seen launch once it is spawned (its pid known). */
  onSpawn?(l: Launch): void;
  /**
   * Like Lambda, kill() cannot stop a running worker: its handle reports 'killed' at once while the
   * process runs on (a zombie that fencing must keep from writing). Its real end is in zombieResults.
   */
  killLeavesRunning?: boolean;
}

/** How long close waits for unseen copies to exit on their own before it kills them. */
const TWIN_DRAIN_MS = 60_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function pidOf(h: LocalWorkerHandle): Promise<number | undefined> {
  for (let i = 0; i < 500 && h.pid === undefined; i++) {
    const done = await Promise.race([h.result.then(() => true), sleep(10).then(() => false)]);
    if (done) break;
  }
  return h.pid;
}

export class ChaosLauncher implements Launcher {
  readonly local: LocalLauncher;
  readonly launches: Launch[] = [];
  /** Results of the unseen copies (each should be TRAIN_DUPLICATE). */
  readonly twinResults: Array<Promise<WorkerResult>> = [];
  /** With killLeavesRunning: how each worker 'killed' that way really ended. */
  readonly zombieResults: Array<{ rank: number; pid: number | undefined; result: Promise<WorkerResult> }> = [];

  constructor(private readonly o: ChaosLauncherOptions = {}) {
    this.local = new LocalLauncher(o);
  }

  async launch(event: WorkerEvent): Promise<WorkerHandle> {
    const gap = this.o.duplicateGapMs ?? 300;
    if (this.o.duplicate === 'before') {
      await this.start(event, true);
      await sleep(gap);
    }
    const real = await this.start(event, false);
    const handle = this.o.killLeavesRunning ? this.unkillable(real) : real;
    // The second copy arrives `gap` after the first one started (its process spawned).
    if (this.o.duplicate === 'after') this.deliveries.push(pidOf(real).then(() => sleep(gap)).then(() => this.start(event, true)));
    return handle;
  }

  private unkillable(real: LocalWorkerHandle): WorkerHandle {
    let markKilled!: (r: WorkerResult) => void;
    const killed = new Promise<WorkerResult>((r) => (markKilled = r));
    return {
      id: real.id,
      rank: real.rank,
      result: Promise.race([real.result, killed]),
      kill: (reason: string) => {
        this.zombieResults.push({ rank: real.rank, pid: real.pid, result: real.result });
        markKilled({ status: 'killed', error: { code: 'KILLED', message: `marked killed (it runs on, as on Lambda): ${reason}` }, durationMs: 0, coldStartMs: 0 });
      },
    };
  }

  /** Seen workers still running, with their pids. */
  live(): Array<{ launch: Launch; pid: number }> {
    return this.launches.filter((l) => !l.twin && l.handle.pid !== undefined && !settled.has(l.handle)).map((l) => ({ launch: l, pid: l.handle.pid! }));
  }

  /**
   * Lambda cannot stop an invocation, so the copies the supervisor never saw run on to their own end
   * (fenced, they exit at their claim, also when they arrive after the run ended): close lets every
   * due delivery start and waits for them (bounded) before stopping the rest.
   */
  async close(): Promise<void> {
    await Promise.allSettled(this.deliveries);
    const twins = this.launches.filter((l) => l.twin).map((l) => l.handle.result);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((r) => (timer = setTimeout(r, TWIN_DRAIN_MS)));
    await Promise.race([Promise.all(twins), deadline]);
    clearTimeout(timer);
    return this.local.close();
  }

  /** Second copies due ('after'): each starts once its first copy runs. */
  private readonly deliveries: Array<Promise<unknown>> = [];

  private async start(event: WorkerEvent, twin: boolean): Promise<LocalWorkerHandle> {
    const launchedAt = Date.now();
    const handle = await this.local.launch(structuredClone(event));
    const l: Launch = { event, handle, twin, launchedAt };
    void handle.result.then(() => {
      settled.add(handle);
      l.endedAt = Date.now();
    });
    this.launches.push(l);
    if (twin) this.twinResults.push(handle.result);
    else void pidOf(handle).then((pid) => pid !== undefined && this.o.onSpawn?.(l));
    return handle;
  }
}

const settled = new WeakSet<WorkerHandle>();

interface KillerOptions {
  seed: number;
  /** Mean period between draws, ms (each draw waits period * (0.5..1.5)). */
  periodMs: number;
  /** Chance that a draw kills. */
  probability: number;
  signal?: NodeJS.Signals;
}

/** Sends `signal` to a random live worker every ~periodMs with `probability`, until stopped. */
export class Killer {
  readonly kills: Array<{ at: number; rank: number; pid: number; generation: number; attempt: number }> = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly launcher: ChaosLauncher,
    private readonly o: KillerOptions,
  ) {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async loop(): Promise<void> {
    const unit = seeded(this.o.seed);
    while (!this.stopped) {
      await sleep(this.o.periodMs * (0.5 + unit()));
      if (this.stopped) return;
      const hit = unit() < this.o.probability;
      const live = this.launcher.live();
      const pick = Math.floor(unit() * Math.max(1, live.length));
      if (!hit || live.length === 0) continue;
      const { launch, pid } = live[pick]!;
      try {
        process.kill(pid, this.o.signal ?? 'SIGKILL');
        const task = launch.event.task as { generation?: number };
        this.kills.push({ at: Date.now(), rank: launch.event.rank, pid, generation: task.generation ?? 0, attempt: launch.event.attempt });
      } catch {
        // it ended meanwhile
      }
    }
  }
}
