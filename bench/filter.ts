/**
 * `cirrus bench filter`: MLLess's significance filter on sparse LR over a Criteo-like dataset, with
 * and without it, side by side, for async-sgd on the parameter server and for GA-SGD (sparse
 * all-gather): bytes of updates sent, updates/s, wall time, and the final test log-loss (the
 * time-to-loss view: each filtered run's wall time to the unfiltered run's final loss, from its
 * per-epoch history).
 */
import { join } from 'node:path';
import { generateCriteoLike, preprocess, train, type TrainParamsInput } from '../client/index.js';
import { withScratchHome, writeResult } from './scratch.js';

/** A threshold no real update stays under: the filtered GA-SGD path sending every touched coordinate. */
const SEND_ALL = 1e-12;

interface FilterRow {
  algorithm: string;
  filterThreshold: number;
  testLogLoss: number;
  updateBytes: number;
  updatesPerSec: number;
  wallSeconds: number;
  /** Wall seconds until the test loss first reached the unfiltered run's final loss (+0.001), null if never. */
  secondsToLoss: number | null;
}

interface FilterBenchOptions {
  rows?: number;
  epochs?: number;
  workers?: number;
  thresholds?: number[];
  log?: (line: string) => void;
}

export async function benchFilter(opts: FilterBenchOptions = {}): Promise<{ rows: FilterRow[]; table: string; file: string }> {
  const log = opts.log ?? (() => {});
  const nRows = opts.rows ?? 100_000;
  const epochs = opts.epochs ?? 5;
  const workers = opts.workers ?? 2;
  const thresholds = opts.thresholds ?? [0.01, 0.03];
  return withScratchHome('filter', async (work) => {
    const file = join(work, 'criteo.tsv');
    log(`bench filter: generating ${nRows} Criteo-like rows`);
    await generateCriteoLike({ rows: nRows, seed: 5, file });
    await preprocess({ input: file, format: 'criteo', name: 'criteo', rowsPerShard: Math.ceil(nRows / 16), split: 0.9, seed: 3 });
    const base: TrainParamsInput = { dataset: 'criteo', model: 'sparse-lr', workers, epochs, batchSize: 200, optimizer: 'adagrad', learningRate: 0.05, channel: 'ps', seed: 1, evaluateEvery: 1 };
    const rows: FilterRow[] = [];
    for (const algorithm of ['async-sgd', 'ga-sgd'] as const) {
      let reference: number | undefined;
      // GA-SGD's baseline is the same sparse all-gather with a threshold that keeps nothing back
      // (the dense all-reduce of a 2^20-weight gradient would compare the sparsity, not the filter).
      for (const threshold of [algorithm === 'ga-sgd' ? SEND_ALL : 0, ...thresholds]) {
        log(`bench filter: ${algorithm}, filterThreshold ${threshold}`);
        const r = await train({ ...base, algorithm, sync: algorithm === 'async-sgd' ? 'async' : 'bsp', filterThreshold: threshold });
        reference ??= r.metrics.testLoss;
        const hit = r.history.find((h) => h.testLoss <= reference! + 0.001);
        rows.push({
          algorithm,
          filterThreshold: threshold,
          testLogLoss: r.metrics.testLoss,
          updateBytes: r.metrics.updateBytes,
          updatesPerSec: r.metrics.updatesPerSec,
          wallSeconds: r.metrics.wallSeconds,
          secondsToLoss: hit ? hit.wallSeconds : null,
        });
      }
    }
    const lines = [
      `significance filter: sparse LR on ${nRows} Criteo-like rows, ${workers} workers, ${epochs} epochs, Adagrad lr 0.05, batch 200; GA-SGD's baseline is its sparse all-gather without holding back (threshold ${SEND_ALL})`,
      'algorithm   threshold  test log-loss  Δ loss    update MB  bytes ratio  updates/s  wall s  s to loss',
    ];
    for (const r of rows) {
      const ref = rows.find((x) => x.algorithm === r.algorithm && (x.filterThreshold === 0 || x.filterThreshold === SEND_ALL))!;
      lines.push(
        `${r.algorithm.padEnd(11)} ${(r.filterThreshold === SEND_ALL ? 'none' : String(r.filterThreshold)).padStart(9)} ${r.testLogLoss.toFixed(5).padStart(14)} ${(r.testLogLoss - ref.testLogLoss >= 0 ? '+' : '') + (r.testLogLoss - ref.testLogLoss).toFixed(4).padStart(7)} ${(r.updateBytes / 1e6).toFixed(2).padStart(11)} ${(ref.updateBytes / r.updateBytes).toFixed(1).padStart(11)}x ${r.updatesPerSec.toFixed(0).padStart(10)} ${r.wallSeconds.toFixed(1).padStart(7)} ${r.secondsToLoss === null ? '-' : r.secondsToLoss.toFixed(1).padStart(9)}`,
      );
    }
    const json = writeResult('filter', { rows: nRows, workers, epochs, results: rows });
    return { rows, table: lines.join('\n'), file: json };
  });
}
