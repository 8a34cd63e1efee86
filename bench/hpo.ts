/**
 * `cirrus bench hpo`: the same grid of Fashion-MNIST softmax configurations (z-scored), run once
 * in full and once with successive halving, side by side: the best test accuracy each finds, the
 * difference in points, and the worker-seconds each spent (and their ratio). Target: halving
 * within 0.5 points of the full grid's best for at most half its worker-seconds.
 * `--quick`: a 12,000-row subset and a 4-configuration grid, to show the pipeline works.
 */
import { gunzipSync } from 'node:zlib';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { formatTable, openStore, preprocess } from '../client/index.js';
import { gridSearch, type SearchResult } from '../hpo/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { FASHION_MNIST_DIR } from './data.js';
import { machineInfo } from './machine.js';
import { scratchDir } from './scratch.js';

interface HpoBenchRow {
  search: 'full grid' | 'successive halving';
  trials: number;
  completed: number;
  pruned: number;
  bestTrial: string | null;
  bestParams: Record<string, unknown> | null;
  bestAccuracy: number | null;
  workerSeconds: number;
  wallSeconds: number;
}

interface HpoBenchResult {
  quick: boolean;
  grid: Record<string, unknown[]>;
  base: Record<string, unknown>;
  halving: { minEpochs: number; reduction: number };
  rows: HpoBenchRow[];
  accuracyDiffPoints: number | null;
  workerSecondsRatio: number | null;
  targetMet: boolean;
  table: string;
  file: string;
}

/** The first `rows` training images as CSV (label first), for the quick run. */
async function fashionMnistSubsetCsv(file: string, rows: number): Promise<void> {
  const images = gunzipSync(readFileSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')));
  const labels = gunzipSync(readFileSync(join(FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz')));
  const pixels = 28 * 28;
  const out = createWriteStream(file);
  for (let r = 0; r < rows; r++) {
    const row = [labels[8 + r]!, ...images.subarray(16 + r * pixels, 16 + (r + 1) * pixels)].join(',');
    if (!out.write(row + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

function summarize(search: HpoBenchRow['search'], r: SearchResult, wallSeconds: number): HpoBenchRow {
  const b = r.best;
  return {
    search,
    trials: r.trials.length,
    completed: r.trials.filter((t) => t.status === 'done').length,
    pruned: r.trials.filter((t) => t.status === 'pruned').length,
    bestTrial: b?.id ?? null,
    bestParams: b?.params ?? null,
    bestAccuracy: b?.metrics?.testAccuracy ?? null,
    workerSeconds: r.trials.reduce((s, t) => s + (t.cost?.workerSeconds ?? 0), 0),
    wallSeconds,
  };
}

export async function benchHpo(opts: { quick?: boolean; log?: (l: string) => void } = {}): Promise<HpoBenchResult> {
  const quick = opts.quick ?? false;
  const log = opts.log ?? (() => {});
  if (!existsSync(FASHION_MNIST_DIR)) throw new Error(`bench hpo: ${FASHION_MNIST_DIR} is missing (apt-get install dataset-fashion-mnist)`);
  const work = scratchDir('hpo');
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(work, '.cirrus');
  try {
    if (quick) {
      log('bench hpo: 12,000 Fashion-MNIST rows (z-score, 2,000-row shards)');
      const csv = join(work, 'fmnist-12k.csv');
      await fashionMnistSubsetCsv(csv, 12_000);
      await preprocess({ input: csv, format: 'csv', labelColumn: 0, task: 'multiclass', classes: 10, name: 'fmnist', normalize: 'zscore', rowsPerShard: 2_000, seed: 1 });
    } else {
      log('bench hpo: preprocessing Fashion-MNIST (z-score, 5,000-row shards)');
      await preprocess({ input: FASHION_MNIST_DIR, format: 'fashion-mnist', name: 'fmnist', normalize: 'zscore', rowsPerShard: 5_000 });
    }
    const base = { dataset: 'fmnist', model: 'softmax' as const, workers: 1, epochs: 8, seed: 1 };
    const grid: Record<string, unknown[]> = quick
      ? { learningRate: [0.001, 0.0001], optimizer: ['adam', 'sgd'] }
      : { learningRate: [0.0003, 0.001, 0.003, 0.01], batchSize: [64, 256], optimizer: ['adam', 'sgd'] };
    const halving = { minEpochs: 1, reduction: quick ? 2 : 3 };
    const store = await openStore();
    const rows: HpoBenchRow[] = [];
    try {
      for (const mode of ['full grid', 'successive halving'] as const) {
        log(`bench hpo: ${mode}`);
        const t0 = performance.now();
        const search = gridSearch({ base, grid, store, maxConcurrentTrials: 2, ...(mode === 'successive halving' ? { earlyStopping: { successiveHalving: halving } } : {}) });
        search.on('update', (e) => e.type === 'trial' && e.trial.status !== 'running' && e.trial.status !== 'pending' && log(`  ${e.trial.id} ${e.trial.status}${e.trial.metrics ? ` ${(100 * e.trial.metrics.testAccuracy).toFixed(2)}% after ${e.trial.metrics.epochs} epoch(s)` : ''}`));
        const r = await search.done;
        rows.push(summarize(mode, r, (performance.now() - t0) / 1000));
      }
    } finally {
      await store.close();
    }
    const [full, sh] = rows as [HpoBenchRow, HpoBenchRow];
    const accuracyDiffPoints = full.bestAccuracy !== null && sh.bestAccuracy !== null ? 100 * (full.bestAccuracy - sh.bestAccuracy) : null;
    const workerSecondsRatio = full.workerSeconds > 0 ? sh.workerSeconds / full.workerSeconds : null;
    const targetMet = accuracyDiffPoints !== null && workerSecondsRatio !== null && accuracyDiffPoints <= 0.5 && workerSecondsRatio <= 0.5;
    const table =
      formatTable(
        ['search', 'trials', 'completed', 'pruned', 'best trial', 'best accuracy', 'worker-seconds', 'wall s'],
        rows.map((r) => [r.search, r.trials, r.completed, r.pruned, r.bestTrial ? `${r.bestTrial} ${JSON.stringify(r.bestParams)}` : '-', r.bestAccuracy !== null ? `${(100 * r.bestAccuracy).toFixed(2)}%` : '-', r.workerSeconds, r.wallSeconds]),
      ) +
      `\n\naccuracy difference (full - halving): ${accuracyDiffPoints !== null ? accuracyDiffPoints.toFixed(2) : '-'} points; worker-seconds ratio (halving / full): ${workerSecondsRatio !== null ? workerSecondsRatio.toFixed(2) : '-'}` +
      `\ntarget (within 0.5 points, at most half the worker-seconds): ${targetMet ? 'met' : 'not met'}`;
    mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
    const file = join(DEFAULT_RESULTS_DIR, `hpo-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const result = { quick, grid, base, halving, rows, accuracyDiffPoints, workerSecondsRatio, targetMet };
    writeFileSync(file, JSON.stringify({ benchmark: 'hpo', machine: machineInfo(), ...result }, null, 2) + '\n');
    return { ...result, table, file };
  } finally {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(work, { recursive: true, force: true });
  }
}
