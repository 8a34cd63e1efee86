/**
 * Step 5 of a run, account: what the run cost at the list prices (client/cost.ts, the one cost
 * formula) from what the workers measured (durations, channel traffic, shard reads), plus its
 * CPU-seconds from the processes' own accounting.
 */
import { addStats, emptyStats, type DatasetManifest } from '../../channels/index.js';
import { loadPrices, trainCost, type Prices, type TrainCost } from '../cost.js';
import { ownCpuSeconds, processCpuSeconds } from '../cpu.js';
import type { WorkerResult } from '../launchers/types.js';
import { launcherLimits, type TrainParams } from '../train-params.js';
import type { TrainWorkerValue } from './types.js';

interface AccountInputs {
  params: TrainParams;
  manifest: Pick<DatasetManifest, 'test'>;
  /** Every launcher result (every rank, attempt and generation). */
  results: readonly WorkerResult[];
  wallSeconds: number;
  channelKind: string;
  /** ownCpuSeconds() when train() began. */
  cpuAtStart: number;
  /** Server processes the run started (memcached): their CPU counts in the run's. */
  serverPids: readonly number[];
}

/** The run's bill and CPU-seconds. */
export function accountCost(a: AccountInputs, prices: Prices = loadPrices()): TrainCost {
  return { ...estimateCost(a, prices), ...cpuAccount(a.results, a.cpuAtStart, a.serverPids) };
}

/** The bill: worker invocations, the channel traffic the workers counted, the dataset reads. */
export function estimateCost(a: Omit<AccountInputs, 'cpuAtStart' | 'serverPids'>, prices: Prices): TrainCost {
  let stats = emptyStats();
  let shardReads = 0;
  for (const r of a.results) {
    const v = r.value as Partial<TrainWorkerValue> | undefined;
    if (v?.channelStats) stats = addStats(stats, v.channelStats);
    shardReads += v?.shardReads ?? 0;
  }
  // Dataset reads: the shards the workers fetched (they cache what fits), and the client's test split.
  const storeGets = shardReads + a.manifest.test.shards.length;
  return trainCost(
    { workerDurationsMs: a.results.map((r) => r.durationMs), memoryMb: launcherLimits(a.params).memoryMb, channelKind: a.channelKind, channelStats: stats, wallSeconds: a.wallSeconds, storeGets },
    prices,
  );
}

/**
 * The run's CPU-seconds: the workers' own reports, this process since train() began (it hosts the
 * embedded parameter server and S3 server and evaluates the model), and server processes it started.
 */
export function cpuAccount(
  results: readonly WorkerResult[],
  cpuAtStart: number,
  serverPids: readonly number[],
  clock: { own(): number; of(pid: number): number | undefined } = { own: ownCpuSeconds, of: processCpuSeconds },
): Pick<TrainCost, 'workerCpuSeconds' | 'clientCpuSeconds' | 'serverCpuSeconds' | 'cpuSeconds'> {
  const workerCpuSeconds = results.reduce((s, r) => s + (r.cpuSeconds ?? 0), 0);
  const clientCpuSeconds = clock.own() - cpuAtStart;
  const serverCpuSeconds = serverPids.reduce((s, pid) => s + (clock.of(pid) ?? 0), 0);
  return { workerCpuSeconds, clientCpuSeconds, serverCpuSeconds, cpuSeconds: workerCpuSeconds + clientCpuSeconds + serverCpuSeconds };
}
