/**
 * Runs one collective configuration with W real worker processes and gathers their reports.
 * Used by the channel benchmark and by the multi-process collective tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BareReport, CollectiveReport, WorkerConfig } from './collective-worker.js';

const WORKER = fileURLToPath(new URL('./collective-worker.js', import.meta.url));
/** Extra node flags for the workers, e.g. CIRRUS_BENCH_NODE_ARGS='--cpu-prof' to profile them. */
const NODE_ARGS = (process.env.CIRRUS_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

export type RunConfig = Omit<WorkerConfig, 'rank'>;

export interface RunResult {
  collective: CollectiveReport[];
  bare: BareReport[] | undefined;
}

/**
 * Spawns `world` workers, starts them together, and returns their reports ordered by rank.
 * `ranks` starts only some of the ranks (tests use it to simulate a worker that never arrives).
 */
export async function runCollective(config: RunConfig, overallTimeoutMs = 120_000, ranks?: number[]): Promise<RunResult> {
  const children: ChildProcess[] = [];
  const stderr: string[] = [];
  const inbox: Array<Array<Record<string, unknown>>> = [];
  // Indexed by rank; only the started ranks have entries.
  let failure: Error | undefined;
  let notify: (() => void) | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    notify?.();
  };
  for (const rank of ranks ?? Array.from({ length: config.world }, (_, r) => r)) {
    const child = spawn(process.execPath, [...NODE_ARGS, WORKER, JSON.stringify({ ...config, rank })], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    inbox[rank] = [];
    stderr[rank] = '';
    createInterface({ input: child.stdout! }).on('line', (line) => {
      // Protocol lines are JSON objects; anything else (e.g. node's --trace-gc) is passed through.
      if (line.startsWith('{')) inbox[rank]!.push(JSON.parse(line) as Record<string, unknown>);
      else if (process.env.CIRRUS_BENCH_NODE_ARGS) process.stderr.write(`[worker ${rank}] ${line}\n`);
      notify?.();
    });
    child.stderr!.on('data', (d: Buffer) => {
      stderr[rank] += d.toString();
    });
    child.on('exit', (code, signal) => {
      if (code !== 0) fail(new Error(`worker ${rank} exited with ${signal ?? `code ${code}`}: ${stderr[rank]!.trim() || '(no output)'}`));
      notify?.();
    });
    child.on('error', (e) => fail(e));
  }
  const deadline = Date.now() + overallTimeoutMs;
  /** Waits until every worker has sent a message of `type`, then returns those messages. */
  const gather = async <T>(type: string): Promise<T[]> => {
    for (;;) {
      if (failure) throw failure;
      const started = inbox.flatMap((msgs, rank) => (msgs ? [{ rank, msg: msgs.find((m) => m.type === type) }] : []));
      if (started.every((s) => s.msg !== undefined)) return started.map((s) => s.msg) as T[];
      if (Date.now() > deadline) {
        const missing = started.filter((s) => !s.msg).map((s) => s.rank);
        throw new Error(`collective run timed out after ${overallTimeoutMs} ms waiting for '${type}' from worker(s) ${missing.join(', ')}`);
      }
      await new Promise<void>((r) => {
        notify = r;
        setTimeout(r, 100);
      });
    }
  };
  const tell = (word: string) => children.forEach((c) => c.stdin!.write(word + '\n'));
  try {
    await gather('ready');
    tell('go');
    const collective = await gather<CollectiveReport>('collective');
    let bare: BareReport[] | undefined;
    if (config.bare) {
      await gather('bare-ready');
      tell('bare');
      bare = await gather<BareReport>('bare');
    }
    await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    if (failure) throw failure;
    return { collective, bare };
  } catch (e) {
    // Let the other workers reach their own deadlines, so the error tells every rank's story.
    const grace = Date.now() + Math.min(10_000, config.timeoutMs * 2);
    while (children.some((c) => c.exitCode === null && c.signalCode === null) && Date.now() < grace) await new Promise((r) => setTimeout(r, 50));
    const failures = stderr.flatMap((text, rank) => (text && text.trim() ? [`worker ${rank}: ${text.trim()}`] : []));
    throw new Error([(e as Error).message, ...failures].join('\n'));
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

/** Per-round time = the slowest rank's time for that round; warm-up rounds are dropped. */
export function roundTimes(reports: Array<{ durationsMs: number[] }>, warmup: number): number[] {
  const rounds = reports[0]!.durationsMs.length;
  const out: number[] = [];
  for (let r = warmup; r < rounds; r++) out.push(Math.max(...reports.map((rep) => rep.durationsMs[r]!)));
  return out;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}
