/**
 * Child process of `cirrus bench data` (so its peak RSS and event loop are its own): either loads
 * a file into the store, or iterates a dataset with a simulated compute step. Prints one JSON line.
 */
import { openObjectStore, DatasetStore } from '../channels/index.js';
import { preprocessLocal, type PreprocessFormat } from '../algorithms/index.js';
import { ShardIterator } from '../worker/index.js';

export type DataChildTask =
  | { kind: 'load'; store: unknown; input: string; format: PreprocessFormat; name: string; rowsPerShard?: number }
  | { kind: 'iterate'; store: unknown; name: string; readAhead: number; batchSize: number; computeMsPerShard: number };

export interface LoadReport {
  seconds: number;
  inputBytes: number;
  rows: number;
  shards: number;
  peakRssMb: number;
}

export interface IterateReport {
  seconds: number;
  rows: number;
  shards: number;
  waitMs: number;
  /** Wait for the first shard, which no read-ahead can hide. */
  firstWaitMs: number;
  fetchMs: number;
}

/** Burns CPU like a real gradient step would: the event loop is blocked meanwhile. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* spin */
  }
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '') as DataChildTask;
  const datasets = new DatasetStore(await openObjectStore(task.store as string));
  try {
    if (task.kind === 'load') {
      const writer = await datasets.createWriter(task.name, { overwrite: true });
      let inputBytes = 0;
      const t0 = performance.now();
      const result = await preprocessLocal({
        input: task.input,
        format: task.format,
        name: task.name,
        writer,
        ...(task.rowsPerShard ? { rowsPerShard: task.rowsPerShard } : {}),
        onProgress: (_read, total) => (inputBytes = total),
      });
      const report: LoadReport = {
        seconds: (performance.now() - t0) / 1000,
        inputBytes,
        rows: result.trainRows + result.testRows,
        shards: result.manifest.train.shards.length + result.manifest.test.shards.length,
        peakRssMb: process.resourceUsage().maxRSS / 1024,
      };
      process.stdout.write(JSON.stringify(report) + '\n');
    } else {
      const manifest = await datasets.manifest(task.name);
      const it = new ShardIterator({ store: datasets, manifest, rank: 0, world: 1, epoch: 0, seed: 1, readAhead: task.readAhead, order: 'sequential', batchSize: task.batchSize });
      const batchesPerShard = Math.ceil(manifest.rowsPerShard / task.batchSize);
      const computePerBatch = task.computeMsPerShard / batchesPerShard;
      const t0 = performance.now();
      let rows = 0;
      for await (const batch of it.batches()) {
        rows += batch.rows;
        if (computePerBatch > 0) busy(computePerBatch);
      }
      const s = it.stats();
      const report: IterateReport = { seconds: (performance.now() - t0) / 1000, rows, shards: s.shardsRead, waitMs: s.waitMs, firstWaitMs: s.firstWaitMs, fetchMs: s.fetchMs };
      process.stdout.write(JSON.stringify(report) + '\n');
    }
  } finally {
    await datasets.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench data child failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
