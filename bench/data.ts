/**
 * `cirrus bench data`: the data path, for Fashion-MNIST (real) and a Criteo-like dataset
 * (1M rows; 200k with --quick). Loader throughput and peak RSS, then iterator throughput with
 * readAhead 0 against 2 while a simulated compute step (CPU-bound, 1.5x the measured fetch time
 * per shard) runs. The store is the embedded S3 server, in this process; loaders and iterators run
 * in child processes so their RSS and event loops are their own.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { s3SpecFor, startS3Server, formatTable, generateCriteoLike } from '../client/index.js';
import type { PreprocessFormat } from '../algorithms/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import type { DataChildTask, IterateReport, LoadReport } from './data-child.js';
import { machineInfo } from './machine.js';
import { scratchDir } from './scratch.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./data-child.js', import.meta.url));
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

interface DataBenchRow {
  dataset: string;
  inputMB: number;
  rows: number;
  loadSeconds: number;
  loadMBps: number;
  loadRowsPerSec: number;
  peakRssMB: number;
  shards: number;
  fetchMsPerShard: number;
  computeMsPerShard: number;
  waitPctReadAhead0: number;
  waitPctReadAhead2: number;
  /** readAhead 2, without the first shard's wait (which no read-ahead can hide). */
  steadyWaitPctReadAhead2: number;
  rowsPerSecReadAhead0: number;
  rowsPerSecReadAhead2: number;
}

async function child<T>(task: DataChildTask): Promise<T> {
  const { stdout } = await run(process.execPath, [CHILD, JSON.stringify(task)], { maxBuffer: 1 << 20, timeout: 30 * 60_000 });
  const last = stdout.trim().split('\n').pop()!;
  return JSON.parse(last) as T;
}

export async function benchData(opts: { quick?: boolean; criteoRows?: number; log?: (l: string) => void } = {}): Promise<{ rows: DataBenchRow[]; table: string; file: string }> {
  const log = opts.log ?? (() => {});
  const criteoRows = opts.criteoRows ?? (opts.quick ? 200_000 : 1_000_000);
  const work = scratchDir('data');
  const server = await startS3Server({ directory: join(work, 's3'), buckets: ['cirrus'] });
  const store = s3SpecFor(server, 'cirrus');
  const rows: DataBenchRow[] = [];
  try {
    const inputs: Array<{ dataset: string; input: string; format: PreprocessFormat; rowsPerShard: number; inputBytes: () => number }> = [];
    if (existsSync(FASHION_MNIST_DIR)) {
      inputs.push({ dataset: 'fashion-mnist', input: FASHION_MNIST_DIR, format: 'fashion-mnist', rowsPerShard: 2_500, inputBytes: () => 0 });
    } else {
      log(`bench data: ${FASHION_MNIST_DIR} is missing (apt-get install dataset-fashion-mnist); skipping Fashion-MNIST`);
    }
    const criteoFile = join(work, 'criteo.tsv');
    log(`bench data: generating ${criteoRows} Criteo-like rows`);
    await generateCriteoLike({ rows: criteoRows, seed: 7, file: criteoFile });
    inputs.push({ dataset: `criteo-like ${criteoRows / 1000}k`, input: criteoFile, format: 'criteo', rowsPerShard: 10_000, inputBytes: () => statSync(criteoFile).size });

    for (const inp of inputs) {
      const name = inp.format === 'criteo' ? 'bench-criteo' : 'bench-fmnist';
      log(`bench data: loading ${inp.dataset}`);
      const load = await child<LoadReport>({ kind: 'load', store, input: inp.input, format: inp.format, name, rowsPerShard: inp.rowsPerShard });
      const inputBytes = load.inputBytes || inp.inputBytes();
      log(`bench data: iterating ${inp.dataset} (fetch only, then readAhead 0 and 2 with compute)`);
      const batchSize = 200;
      const fetchOnly = await child<IterateReport>({ kind: 'iterate', store, name, readAhead: 0, batchSize, computeMsPerShard: 0 });
      const fetchMsPerShard = fetchOnly.fetchMs / fetchOnly.shards;
      const computeMsPerShard = 1.5 * fetchMsPerShard;
      const ra0 = await child<IterateReport>({ kind: 'iterate', store, name, readAhead: 0, batchSize, computeMsPerShard });
      const ra2 = await child<IterateReport>({ kind: 'iterate', store, name, readAhead: 2, batchSize, computeMsPerShard });
      rows.push({
        dataset: inp.dataset,
        inputMB: inputBytes / 1e6,
        rows: load.rows,
        loadSeconds: load.seconds,
        loadMBps: inputBytes / 1e6 / load.seconds,
        loadRowsPerSec: load.rows / load.seconds,
        peakRssMB: load.peakRssMb,
        shards: fetchOnly.shards,
        fetchMsPerShard,
        computeMsPerShard,
        waitPctReadAhead0: (100 * ra0.waitMs) / (ra0.seconds * 1000),
        waitPctReadAhead2: (100 * ra2.waitMs) / (ra2.seconds * 1000),
        steadyWaitPctReadAhead2: (100 * (ra2.waitMs - ra2.firstWaitMs)) / (ra2.seconds * 1000 - ra2.firstWaitMs),
        rowsPerSecReadAhead0: ra0.rows / ra0.seconds,
        rowsPerSecReadAhead2: ra2.rows / ra2.seconds,
      });
    }
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const table = formatTable(
    ['dataset', 'input MB', 'rows', 'load MB/s', 'load rows/s', 'peak RSS MB', 'train shards', 'fetch ms/shard', 'compute ms/shard', 'wait% RA0', 'wait% RA2', 'steady wait% RA2', 'rows/s RA0', 'rows/s RA2'],
    rows.map((r) => [r.dataset, r.inputMB, r.rows, r.loadMBps, r.loadRowsPerSec, r.peakRssMB, r.shards, r.fetchMsPerShard, r.computeMsPerShard, r.waitPctReadAhead0, r.waitPctReadAhead2, r.steadyWaitPctReadAhead2, r.rowsPerSecReadAhead0, r.rowsPerSecReadAhead2]),
  );
  mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
  const file = join(DEFAULT_RESULTS_DIR, `data-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: 'data', quick: opts.quick ?? false, machine: machineInfo(), rows }, null, 2) + '\n');
  return { rows, table, file };
}
