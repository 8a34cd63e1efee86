/**
 * The training half of `cirrus bench ps`: sparse LR on a Criteo-like dataset with 4 workers, once
 * with async-sgd on the parameter server and once with GA-SGD/BSP (all-reducing the full gradient
 * every batch over the ps channel), same data, epochs, batch size and optimizer. Reports test
 * log-loss, wall time and model updates per second for each.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { generateCriteoLike, preprocess, train, type TrainParamsInput } from '../client/index.js';
import { scratchDir } from './scratch.js';

export interface PsTrainRow {
  algorithm: string;
  sync: string;
  workers: number;
  epochs: number;
  testLogLoss: number;
  testAuc: number | null;
  wallSeconds: number;
  updatesPerSec: number;
}

interface PsTrainOptions {
  rows: number;
  epochs: number;
  log: (line: string) => void;
}

export async function benchPsTraining(opts: PsTrainOptions): Promise<{ rows: PsTrainRow[]; bayesLogLoss: number }> {
  const work = scratchDir('ps');
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(work, '.cirrus');
  try {
    const file = join(work, 'criteo.tsv');
    opts.log(`bench ps: generating ${opts.rows} Criteo-like rows`);
    const truth = await generateCriteoLike({ rows: opts.rows, seed: 5, file });
    await preprocess({ input: file, format: 'criteo', name: 'criteo', rowsPerShard: Math.ceil(opts.rows / 16), split: 0.9, seed: 3 });
    const base: TrainParamsInput = { dataset: 'criteo', model: 'sparse-lr', workers: 4, epochs: opts.epochs, batchSize: 200, optimizer: 'adagrad', learningRate: 0.05, channel: 'ps', seed: 1 };
    const runs: Array<Pick<PsTrainRow, 'algorithm' | 'sync'>> = [
      { algorithm: 'ga-sgd', sync: 'bsp' },
      { algorithm: 'async-sgd', sync: 'async' },
      { algorithm: 'async-sgd', sync: 'asp' },
    ];
    const rows: PsTrainRow[] = [];
    for (const run of runs) {
      opts.log(`bench ps: training ${run.algorithm}/${run.sync}, 4 workers, ${opts.epochs} epochs`);
      const r = await train({ ...base, algorithm: run.algorithm as 'ga-sgd', sync: run.sync as 'bsp' });
      rows.push({
        ...run,
        workers: 4,
        epochs: r.metrics.epochs,
        testLogLoss: r.metrics.testLoss,
        testAuc: r.metrics.testAuc ?? null,
        wallSeconds: r.metrics.wallSeconds,
        updatesPerSec: r.metrics.updatesPerSec,
      });
    }
    return { rows, bayesLogLoss: truth.bayesLogLoss };
  } finally {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(work, { recursive: true, force: true });
  }
}
