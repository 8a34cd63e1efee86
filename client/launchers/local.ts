/**
 * Local launcher: each worker is a `node dist/worker/main.js` child process that emulates Lambda's
 * limits, so code that passes here behaves the same when deployed:
 *
 * - time limit: SIGKILL at `timeoutS` after spawn (status 'timeout'); the event's deadlineMs is
 *   lowered to that instant so the worker's own waits know the real limit;
 * - memory: --max-old-space-size=memoryMb caps the V8 heap, and on Linux a watchdog polls the
 *   child's resident set and kills it above memoryMb (off-heap Buffers escape the heap cap);
 *   either way the status is 'error' with code 'OUT_OF_MEMORY';
 * - concurrency: at most `concurrency` children at once, further launches queue in order;
 * - cold start: spawn to handler entry, as the worker reports it;
 * - warm start: with `standby`, spare processes wait with their modules loaded (local/standby.ts),
 *   and a launch takes one when there is one, as Lambda reuses a warm container.
 *
 * No child outlives the launcher: close() kills them all, a process 'exit' hook kills whatever is
 * left if the parent exits without closing, and the worker itself exits when its parent dies.
 */
import { processCpuSeconds } from '../cpu.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { LauncherError, type Launcher, type WorkerError, type WorkerEvent, type WorkerHandle, type WorkerResult } from './types.js';
import { StartQueue } from './start-queue.js';
import { defaultLocalEntry } from './local-bundle.js';
import { takePrewarmed } from './prewarm.js';
import { Standby } from './local/standby.js';
import { makeWorkerTmp, removeWhenGone } from './sandbox-tmp.js';

export interface LocalLauncherOptions {
  /** Time limit per worker in seconds. Default 900 (Lambda's maximum). */
  timeoutS?: number;
  /** Memory per worker in MB. Default 2048. */
  memoryMb?: number;
  /** Workers running at once. Default: the number of cores. */
  concurrency?: number;
  /** Extra node flags (before the script). */
  nodeArgs?: string[];
  /** Receives the workers' log lines (stdout lines other than the protocol's). */
  onLog?: (line: string, worker: { id: string; rank: number }) => void;
  /** Worker entry script. Default: worker/main.js of this build (dist/worker/main.js). */
  entry?: string;
  /** Resident-set watchdog period in ms (Linux); 0 turns it off. Default 100. */
  rssPollMs?: number;
  /** Extra environment variables for the workers. */
  env?: Record<string, string>;
  /**
   * Warm spare processes to keep for launches (relaunches after a lost worker skip node's start-up
   * and module loading). Default 0.
   */
  standby?: number;
  /** Niceness of a spare while it waits (restored when taken). Default 10. */
  standbyNice?: number;
}

/** Lines of the worker protocol start with this (see worker/main.ts). */
const PROTOCOL_PREFIX = '{"cirrusWorker":';
/** stderr kept per worker (the tail). */
const STDERR_KEEP = 16 * 1024;
/** stderr attached to a failure. */
const STDERR_REPORT = 4 * 1024;
const HEAP_OOM = /heap out of memory|Reached heap limit|Allocation failed - JavaScript heap/i;

// Every live child of every launcher, for the exit hook.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: a plain kill is.
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

interface ResolvedOptions {
  timeoutMs: number;
  memoryMb: number;
  concurrency: number;
  nodeArgs: string[];
  onLog: LocalLauncherOptions['onLog'];
  entry: string;
  rssPollMs: number;
  env: Record<string, string>;
}

export class LocalLauncher implements Launcher {
  private readonly opts: ResolvedOptions;
  private readonly queue: StartQueue<LocalWorker>;
  private readonly workers = new Set<LocalWorker>();
  private closed = false;
  private seq = 0;
  private readonly standby: Standby | undefined;

  constructor(options: LocalLauncherOptions = {}) {
    const timeoutS = options.timeoutS ?? 900;
    const memoryMb = options.memoryMb ?? 2048;
    const concurrency = options.concurrency ?? availableParallelism();
    if (!(timeoutS > 0) || !Number.isFinite(timeoutS)) throw new LauncherError('LAUNCHER_OPTIONS', `timeoutS: expected a positive number of seconds, got ${timeoutS}`);
    if (!Number.isInteger(memoryMb) || memoryMb < 16) throw new LauncherError('LAUNCHER_OPTIONS', `memoryMb: expected an integer >= 16, got ${memoryMb}`);
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new LauncherError('LAUNCHER_OPTIONS', `concurrency: expected an integer >= 1, got ${concurrency}`);
    const standby = options.standby ?? 0;
    const nice = options.standbyNice ?? 10;
    if (!Number.isInteger(standby) || standby < 0) throw new LauncherError('LAUNCHER_OPTIONS', `standby: expected an integer >= 0, got ${standby}`);
    if (!Number.isInteger(nice) || nice < 0 || nice > 19) throw new LauncherError('LAUNCHER_OPTIONS', `standbyNice: expected an integer from 0 to 19, got ${nice}`);
    this.opts = {
      timeoutMs: Math.round(timeoutS * 1000),
      memoryMb,
      concurrency,
      nodeArgs: options.nodeArgs ?? [],
      onLog: options.onLog,
      // The bundle with its code cache starts faster (local-bundle.ts); without it, the ES modules.
      entry: options.entry ?? defaultLocalEntry(),
      rssPollMs: options.rssPollMs ?? 100,
      env: options.env ?? {},
    };
    const o = this.opts;
    this.standby = standby > 0 ? new Standby({ entry: o.entry, memoryMb: o.memoryMb, nodeArgs: o.nodeArgs, env: o.env }, standby, nice) : undefined;
    // A worker holds its slot until its process ends.
    this.queue = new StartQueue(concurrency, (worker) => worker.start());
    installExitHook();
  }

  /** Pids of the standby's waiting spares (tests check none outlives the launcher). */
  get standbyPids(): number[] {
    return this.standby?.pids() ?? [];
  }

  /** Workers running now (not counting queued ones). */
  get active(): number {
    return this.queue.active;
  }

  async launch(event: WorkerEvent): Promise<LocalWorkerHandle> {
    if (this.closed) throw new LauncherError('LAUNCHER_CLOSED', 'launch() after close()');
    const rank = typeof (event as { rank?: unknown }).rank === 'number' ? (event as { rank: number }).rank : -1;
    const worker = new LocalWorker(`local-${process.pid}-${++this.seq}`, rank, event, this.opts, (w) => this.queue.remove(w), this.standby);
    this.workers.add(worker);
    void worker.result.then(() => this.workers.delete(worker));
    this.queue.push(worker);
    return worker;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.standby?.close();
    const stopping = this.queue.stop();
    const all = [...this.workers];
    for (const w of all) w.kill('launcher closed');
    await Promise.all(all.map((w) => w.result));
    await stopping;
  }
}

/** A local worker's handle also tells its process id (tests check that no process is left). */
export interface LocalWorkerHandle extends WorkerHandle {
  /** Set once the child is spawned. */
  readonly pid: number | undefined;
  /** Whether its process was prewarmed (a standby spare or a prewarmed child) rather than spawned for it. */
  readonly warm: boolean;
}

type Protocol = { cirrusWorker: 'start'; t: number; pid: number } | { cirrusWorker: 'result'; ok: boolean; value?: unknown; error?: { code?: string; message?: string }; maxRssKb?: number; cpuUs?: number };

class LocalWorker implements LocalWorkerHandle {
  readonly result: Promise<WorkerResult>;
  /** The child's pid once spawned. */
  pid: number | undefined;
  warm = false;
  private settle!: (r: WorkerResult) => void;
  private state: 'queued' | 'running' | 'done' = 'queued';
  private child: ChildProcess | undefined;
  private cpuAtKill: number | undefined;
  private killReason: string | undefined;
  private timedOut = false;
  private overMemory = false;
  /** Between its process's start and its handler's start line (see Standby). */
  private starting = false;
  private peakRssKb = 0;
  private startedAt: number | undefined;
  private report: Extract<Protocol, { cirrusWorker: 'result' }> | undefined;
  private stderr = '';
  private limitTimer: NodeJS.Timeout | undefined;
  private rssTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly rank: number,
    private readonly event: WorkerEvent,
    private readonly opts: ResolvedOptions,
    private readonly dequeue: (w: LocalWorker) => void,
    private readonly standby: Standby | undefined,
  ) {
    this.result = new Promise((resolve) => (this.settle = resolve));
  }

  kill(reason: string): void {
    if (this.state === 'done' || this.report || this.killReason !== undefined) return;
    this.killReason = reason;
    if (this.state === 'queued') {
      this.dequeue(this);
      this.finish({ status: 'killed', error: { code: 'KILLED', message: `worker ${this.id} (rank ${this.rank}) was killed before it started: ${reason}` }, durationMs: 0, coldStartMs: 0 });
    } else {
      this.sampleCpu();
      this.child?.kill('SIGKILL');
    }
  }

  /** A killed worker prints no result line: its CPU time is read from /proc just before the kill. */
  private sampleCpu(): void {
    const pid = this.child?.pid;
    if (pid !== undefined) this.cpuAtKill = processCpuSeconds(pid) ?? this.cpuAtKill;
  }

  private isDone(): boolean {
    return this.state === 'done';
  }

  /** Tells the standby this launch's process has started (or ended): spares may be spawned now. */
  private doneStarting(): void {
    if (!this.starting) return;
    this.starting = false;
    this.standby?.started();
  }

  private finish(r: WorkerResult): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.doneStarting();
    clearTimeout(this.limitTimer);
    clearTimeout(this.rssTimer);
    this.settle(r);
  }

  /** Runs the worker; resolves when its process is gone (which frees the concurrency slot). */
  start(): Promise<void> {
    if (this.state !== 'queued') return Promise.resolve();
    this.state = 'running';
    const spawnAt = Date.now();
    const t0 = performance.now();
    const deadline = spawnAt + this.opts.timeoutMs;
    const event = { ...this.event };
    // Lambda's remaining time is what counts; a later deadline in the event would mislead the worker.
    if (typeof event.deadlineMs === 'number') event.deadlineMs = Math.min(event.deadlineMs, deadline);

    let child: ChildProcess;
    // A prewarmed child (prewarm.ts) has started node and loaded its modules already; it gets its
    // deadline with the event. Its time limit counts from here, as a spawned child's does.
    // So is a spare of the launcher's standby.
    const warm = takePrewarmed({ entry: this.opts.entry, memoryMb: this.opts.memoryMb, nodeArgs: this.opts.nodeArgs, env: this.opts.env }) ?? this.standby?.take();
    try {
      if (warm) child = warm;
      else {
        const tmp = makeWorkerTmp();
        child = spawn(process.execPath, [...this.opts.nodeArgs, `--max-old-space-size=${this.opts.memoryMb}`, this.opts.entry], {
          stdio: ['pipe', 'pipe', 'pipe'],
          // Its own process group, like a Lambda function: a Ctrl-C to the client reaches the client
          // alone, which stops the workers itself; a dead client is noticed by the worker (ppid).
          detached: true,
          env: { ...process.env, ...this.opts.env, CIRRUS_WORKER_MEMORY_MB: String(this.opts.memoryMb), CIRRUS_WORKER_TIMEOUT_MS: String(this.opts.timeoutMs), CIRRUS_WORKER_DEADLINE_MS: String(deadline), TMPDIR: tmp },
        });
        removeWhenGone(child, tmp);
      }
    } catch (err) {
      this.finish({ status: 'error', error: { code: 'SPAWN_FAILED', message: `could not start worker ${this.id}: ${(err as Error).message}` }, durationMs: 0, coldStartMs: 0 });
      return Promise.resolve();
    }
    this.child = child;
    this.pid = child.pid;
    this.warm = warm !== undefined;
    liveChildren.add(child);
    this.standby?.starting();
    this.starting = true;

    return new Promise<void>((done) => {
      let spawnError: Error | undefined;
      child.on('error', (err) => {
        spawnError = err;
        // A child that never started emits no 'close'.
        if (child.pid === undefined) {
          liveChildren.delete(child);
          this.finish({ status: 'error', error: { code: 'SPAWN_FAILED', message: `could not start worker ${this.id}: ${err.message}` }, durationMs: performance.now() - t0, coldStartMs: 0 });
          done();
        }
      });
      child.stdin!.on('error', () => undefined); // EPIPE when the child dies before reading its event
      child.stdin!.end(JSON.stringify(warm ? { cirrusPrewarmed: { deadlineMs: deadline, timeoutMs: this.opts.timeoutMs }, event } : event));

      let pending = '';
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          this.line(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        this.stderr = (this.stderr + chunk).slice(-STDERR_KEEP);
      });

      this.limitTimer = setTimeout(() => {
        if (this.report || this.killReason !== undefined) return;
        this.timedOut = true;
        this.sampleCpu();
        child.kill('SIGKILL');
      }, this.opts.timeoutMs);
      if (this.opts.rssPollMs > 0 && process.platform === 'linux' && child.pid !== undefined) this.watchRss(child, child.pid);

      child.on('close', (code, signal) => {
        if (pending) this.line(pending);
        liveChildren.delete(child);
        const durationMs = performance.now() - t0;
        const coldStartMs = this.startedAt !== undefined ? Math.max(0, this.startedAt - spawnAt) : 0;
        const peakKb = Math.max(this.peakRssKb, this.report?.maxRssKb ?? 0);
        const cpuUs = this.report?.cpuUs;
        const cpuSeconds = typeof cpuUs === 'number' ? cpuUs / 1e6 : this.cpuAtKill;
        const base = { durationMs, coldStartMs, ...(peakKb > 0 ? { peakRssMb: Math.round(peakKb / 102.4) / 10 } : {}), ...(cpuSeconds !== undefined ? { cpuSeconds } : {}) };
        this.finish({ ...base, ...this.outcome(code, signal, spawnError, peakKb) });
        done();
      });
    });
  }

  private outcome(code: number | null, signal: NodeJS.Signals | null, spawnError: Error | undefined, peakKb: number): Pick<WorkerResult, 'status' | 'value' | 'error'> {
    const who = `worker ${this.id} (rank ${this.rank})`;
    const withStderr = (e: WorkerError): WorkerError => {
      const tail = this.stderr.trim().slice(-STDERR_REPORT);
      return tail ? { ...e, stderr: tail } : e;
    };
    if (this.report) {
      if (this.report.ok) return { status: 'ok', value: this.report.value };
      const e = this.report.error ?? {};
      return { status: 'error', error: withStderr({ code: e.code ?? 'WORKER_ERROR', message: e.message ?? 'the worker reported an error without a message' }) };
    }
    if (this.killReason !== undefined) return { status: 'killed', error: withStderr({ code: 'KILLED', message: `${who} was killed: ${this.killReason}` }) };
    if (this.timedOut) return { status: 'timeout', error: withStderr({ code: 'TIMEOUT', message: `${who} exceeded its time limit of ${this.opts.timeoutMs / 1000} s and was killed` }) };
    if (this.overMemory || HEAP_OOM.test(this.stderr)) {
      const peak = peakKb > 0 ? ` (peak resident memory ${Math.round(peakKb / 1024)} MB)` : '';
      return { status: 'error', error: withStderr({ code: 'OUT_OF_MEMORY', message: `${who} ran out of memory: its limit is ${this.opts.memoryMb} MB${peak}` }) };
    }
    const how = signal ? `was terminated by ${signal}` : `exited with code ${code}`;
    const why = spawnError ? ` (${spawnError.message})` : '';
    return { status: 'error', error: withStderr({ code: 'WORKER_CRASHED', message: `${who} ${how} before reporting a result${why}` }) };
  }

  private line(text: string): void {
    if (text.startsWith(PROTOCOL_PREFIX)) {
      let msg: Protocol | undefined;
      try {
        msg = JSON.parse(text) as Protocol;
      } catch {
        msg = undefined; // not ours after all: a log line
      }
      if (msg?.cirrusWorker === 'start') {
        this.startedAt = typeof msg.t === 'number' ? msg.t : Date.now();
        this.doneStarting();
        return;
      }
      if (msg?.cirrusWorker === 'result') {
        // A result that arrives after a kill or the time limit does not count: the work was cut off.
        if (this.killReason === undefined && !this.timedOut && !this.overMemory) this.report = msg;
        return;
      }
    }
    this.opts.onLog?.(text, { id: this.id, rank: this.rank });
  }

  /** Polls /proc/<pid>/status for the resident set; kills the child above the memory limit. */
  private watchRss(child: ChildProcess, pid: number): void {
    const limitKb = this.opts.memoryMb * 1024;
    const poll = async (): Promise<void> => {
      if (this.isDone() || child.exitCode !== null || child.signalCode !== null) return;
      try {
        const status = await readFile(`/proc/${pid}/status`, 'utf8');
        const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
        if (m) {
          const kb = Number(m[1]);
          if (kb > this.peakRssKb) this.peakRssKb = kb;
          if (kb > limitKb && !this.report && this.killReason === undefined && !this.timedOut) {
            this.overMemory = true;
            this.sampleCpu();
            child.kill('SIGKILL');
            return;
          }
        }
      } catch {
        return; // the process is gone
      }
      if (!this.isDone()) this.rssTimer = setTimeout(() => void poll(), this.opts.rssPollMs);
    };
    this.rssTimer = setTimeout(() => void poll(), this.opts.rssPollMs);
  }
}

