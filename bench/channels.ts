/**
 * `cirrus bench channels`: AllReduce and ScatterReduce on every channel, W worker processes, vector
 * sizes from 30 floats (LR on Higgs) to 4M floats (about MobileNet). For each configuration it
 * measures the collective's round time and, in the same run with the same processes, the time the
 * bare client takes to move the same requests and bytes; prints one table and writes JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addStats, emptyStats, totalBytes, totalRequests, type ChannelStats, type ChannelSpecInput } from '../channels/index.js';
import { findMemcachedBinary, startMemcached, s3SpecFor, startS3Server, channelCostUsd, formatTable, loadPrices } from '../client/index.js';
import { startParamServer } from '../paramserver/index.js';
import { percentile, roundTimes, runCollective } from './collective-runner.js';
import { machineInfo } from './machine.js';

type BenchChannel = 'memcached' | 's3' | 'ps';
import type { BenchPattern } from './collective-worker.js';

export interface ChannelBenchOptions {
  quick?: boolean;
  channels?: BenchChannel[];
  patterns?: BenchPattern[];
  workers?: number[];
  floats?: number[];
  rounds?: number;
  /** Print progress lines to stderr. */
  log?: (line: string) => void;
  resultsDir?: string;
}

export interface ChannelBenchRow {
  channel: string;
  pattern: string;
  workers: number;
  floats: number;
  medianMs: number;
  p95Ms: number;
  requests: number;
  bytes: number;
  costUsd: number;
  bareMs: number;
  ratio: number;
  /** CPU time (user + system) of all worker processes per round, collective and bare replay (diagnostic). */
  cpuMs?: number;
  bareCpuMs?: number;
  /** Set when the configuration failed (the numbers are then NaN). */
  error?: string;
}

/** LambdaML's best measured round times (W = 4, local memcached) the issue compares against. */
export const LAMBDAML_BEST_MS: Record<number, number> = { 30: 0.5, 1_000_000: 18, 4_000_000: 66 };

export const DEFAULT_RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

export async function benchChannels(opts: ChannelBenchOptions = {}): Promise<{ rows: ChannelBenchRow[]; file: string; table: string; comparison: string }> {
  const quick = opts.quick ?? false;
  const channels = opts.channels ?? ['memcached', 's3', 'ps'];
  const patterns = opts.patterns ?? (['allreduce', 'allgather', 'scatterreduce'] as BenchPattern[]);
  const workers = opts.workers ?? (quick ? [4] : [2, 4, 8]);
  const floats = opts.floats ?? (quick ? [30, 1_000_000] : [30, 10_000, 1_000_000, 4_000_000]);
  const log = opts.log ?? (() => {});
  const prices = loadPrices();
  const rows: ChannelBenchRow[] = [];

  for (const kind of channels) {
    const server = await startChannelServer(kind);
    try {
      for (const world of workers) {
        for (const n of floats) {
          for (const pattern of patterns) {
            const plan = roundPlan(kind, n, quick);
            const warmup = plan.warmup;
            const rounds = warmup + (opts.rounds ?? plan.measured);
            log(`bench channels: ${kind} ${pattern} W=${world} floats=${n} (${rounds - warmup} rounds after ${warmup} warm-up rounds)`);
            const jobId = `bench-${kind}-${pattern}-${world}-${n}-${process.pid}`;
            let result: Awaited<ReturnType<typeof runCollective>>;
            try {
              result = await runCollective(
                { channel: server.spec, jobId, world, pattern, op: 'mean', floats: n, rounds, seed: 1, varyPerRound: false, hashes: false, bare: true, timeoutMs: 120_000 },
                600_000,
              );
            } catch (e) {
              // One failed configuration must not lose the rest of a long run: record it and go on.
              const error = (e as Error).message.split('\n')[0]!;
              log(`bench channels: ${kind} ${pattern} W=${world} floats=${n} FAILED: ${error}`);
              rows.push({ channel: kind, pattern, workers: world, floats: n, medianMs: NaN, p95Ms: NaN, requests: NaN, bytes: NaN, costUsd: NaN, bareMs: NaN, ratio: NaN, error });
              continue;
            }
            const times = roundTimes(result.collective, warmup);
            const bare = roundTimes(result.bare!, warmup);
            // Traffic of one round: all ranks' counters, averaged over the measured rounds.
            let sum: ChannelStats = emptyStats();
            for (const rep of result.collective) for (const s of rep.stats.slice(warmup)) sum = addStats(sum, s);
            const measured = rounds - warmup;
            const perRound = scaleStats(sum, 1 / measured);
            const medianMs = percentile(times, 50);
            const bareMs = percentile(bare, 50);
            rows.push({
              channel: kind,
              pattern,
              workers: world,
              floats: n,
              medianMs,
              p95Ms: percentile(times, 95),
              requests: totalRequests(perRound),
              bytes: totalBytes(perRound),
              costUsd: channelCostUsd(kind, perRound, medianMs / 1000, prices),
              bareMs,
              ratio: medianMs / bareMs,
              cpuMs: result.collective.reduce((s, r) => s + r.cpuMs, 0) / rounds,
              bareCpuMs: result.bare!.reduce((s, r) => s + r.cpuMs, 0) / rounds,
            });
          }
        }
      }
    } finally {
      await server.stop();
    }
  }

  const table = formatTable(
    ['channel', 'pattern', 'W', 'floats', 'median ms', 'p95 ms', 'requests', 'bytes', 'cost $/round', 'bare ms', 'ratio'],
    rows.map((r) =>
      r.error
        ? [r.channel, r.pattern, r.workers, r.floats, 'FAILED', '-', '-', '-', '-', '-', '-']
        : [r.channel, r.pattern, r.workers, r.floats, r.medianMs, r.p95Ms, Math.round(r.requests), Math.round(r.bytes), r.costUsd, r.bareMs, r.ratio],
    ),
  ) + rows.filter((r) => r.error).map((r) => `\nFAILED ${r.channel} ${r.pattern} W=${r.workers} floats=${r.floats}: ${r.error}`).join('');
  const comparison = lambdaMlComparison(rows);
  const dir = opts.resultsDir ?? DEFAULT_RESULTS_DIR;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `channels-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: 'channels', quick, machine: machineInfo(), prices, rows }, null, 2) + '\n');
  return { rows, file, table, comparison };
}

/**
 * Warm-up rounds (dropped) and measured rounds per configuration. Small vectors get many warm-up
 * rounds: their round time is mostly per-request JavaScript, which takes long to reach its steady
 * speed (measured, memcached W = 4, 30 floats, AllGather: median 2.68 ms over rounds 300-400,
 * 0.75 ms over rounds 1500-1600), and a training job runs thousands of rounds.
 */
function roundPlan(kind: BenchChannel, floats: number, quick: boolean): { warmup: number; measured: number } {
  const heavy = floats >= 1_000_000;
  if (kind === 's3') return quick ? { warmup: 2, measured: heavy ? 6 : 15 } : { warmup: heavy ? 2 : 5, measured: heavy ? 10 : 30 };
  if (quick) return heavy ? { warmup: 3, measured: 8 } : { warmup: 100, measured: 40 };
  return heavy ? { warmup: 5, measured: 40 } : { warmup: 1500, measured: 100 };
}

function scaleStats(s: ChannelStats, f: number): ChannelStats {
  const out = emptyStats();
  for (const k of ['put', 'get', 'list', 'delete'] as const) {
    out[k].requests = s[k].requests * f;
    out[k].bytes = s[k].bytes * f;
  }
  return out;
}

/** Our faster memcached pattern at W = 4 against LambdaML's best figure, where those rows were run. */
export function lambdaMlComparison(rows: ChannelBenchRow[]): string {
  const table: Array<Array<string | number>> = [];
  for (const [n, best] of Object.entries(LAMBDAML_BEST_MS)) {
    const ours = rows.filter((r) => r.channel === 'memcached' && r.workers === 4 && r.floats === Number(n));
    if (ours.length === 0) continue;
    const fastest = ours.reduce((a, b) => (b.medianMs < a.medianMs ? b : a));
    table.push([`memcached W=4 ${n} floats`, fastest.pattern, fastest.medianMs, best, fastest.medianMs / best, fastest.medianMs < best ? 'beats' : 'MISSES']);
  }
  if (table.length === 0) return '';
  return formatTable(['vs LambdaML', 'our pattern', 'ours ms', 'LambdaML best ms', 'ratio', 'target'], table);
}

interface BenchServer {
  spec: ChannelSpecInput;
  stop(): Promise<void>;
}

async function startChannelServer(kind: BenchChannel): Promise<BenchServer> {
  switch (kind) {
    case 'memcached': {
      if (!findMemcachedBinary()) throw new Error('bench channels: memcached is not installed (apt-get install memcached), or leave it out with --channels s3,ps');
      // Room for W = 8 x 4M floats in flight plus slab fragmentation: an evicted chunk fails the round.
      const m = await startMemcached({ memoryMb: 4096 });
      return { spec: { kind: 'memcached', server: m.address }, stop: () => m.stop() };
    }
    case 's3': {
      const s = await startS3Server({ buckets: ['cirrus'] });
      return { spec: s3SpecFor(s, 'cirrus'), stop: () => s.stop() };
    }
    case 'ps': {
      const p = await startParamServer({ port: 0 });
      return { spec: { kind: 'ps', address: p.address }, stop: () => p.stop() };
    }
  }
}
