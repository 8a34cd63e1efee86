/**
 * `cirrus bench chaos`: the same 4-worker Fashion-MNIST softmax run (a 12,000-image subset), fault
 * free and under the killer (kill -9 of a random worker every ~2 s with probability 0.5, seeded),
 * side by side: wall time, worker-seconds, cost, kills and relaunches, accuracy, and whether the
 * final weights are bit-identical (BSP). Target: under the killer at most 1.5x the fault-free time.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChaosLauncher, FASHION_MNIST_DIR, fashionMnistMissing, formatTable, Killer, openStore, train, type TrainParamsInput, type TrainResult, writeFashionSubset } from '../client/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { machineInfo } from './machine.js';

export interface ChaosBenchRow {
  run: string;
  faults: 'none' | 'killer';
  wallSeconds: number;
  /** Wall time / the fault-free run's. */
  ratio: number;
  workerSeconds: number;
  usd: number;
  kills: number;
  relaunches: number;
  testAccuracy: number;
  /** BSP: final weights equal the fault-free run's, bit for bit. */
  bitIdentical: boolean | null;
}

export interface ChaosBenchOptions {
  quick?: boolean;
  seed?: number;
  periodMs?: number;
  probability?: number;
  log?: (line: string) => void;
}

const CONFIGS: Array<{ run: string; params: Partial<TrainParamsInput>; bsp: boolean }> = [
  { run: 'GA-SGD/BSP over ps', params: {}, bsp: true },
  { run: 'async-sgd over ps', params: { algorithm: 'async-sgd', sync: 'async' }, bsp: false },
];

export async function benchChaos(o: ChaosBenchOptions = {}): Promise<{ rows: ChaosBenchRow[]; table: string; file: string; targetMet: boolean }> {
  const missing = fashionMnistMissing();
  if (missing) throw new Error(`bench chaos: ${missing}`);
  const log = o.log ?? (() => {});
  const seed = o.seed ?? 7;
  const periodMs = o.periodMs ?? 2_000;
  const probability = o.probability ?? 0.5;
  const work = mkdtempSync(join(tmpdir(), 'cirrus-bench-chaos-'));
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(work, '.cirrus');
  const rows: ChaosBenchRow[] = [];
  try {
    const store = await openStore();
    try {
      log(`bench chaos: ${FASHION_MNIST_DIR}, the first 12,000 training and 2,000 test images`);
      await writeFashionSubset(store.datasets, 'fm', { train: 12_000, test: 2_000, rowsPerShard: 1_500 });
      const base: TrainParamsInput = { dataset: 'fm', model: 'softmax', workers: 4, epochs: o.quick ? 12 : 40, batchSize: 100, learningRate: 0.1, seed: 11, checkpointEvery: 1, maxAttempts: 10 };
      for (const c of CONFIGS) {
        const params = { ...base, ...c.params };
        log(`bench chaos: ${c.run}, fault-free`);
        const clean = await train(params, { store });
        rows.push(row(c.run, 'none', clean, clean, 0, c.bsp));
        log(`bench chaos: ${c.run}, under the killer (seed ${seed}, every ~${periodMs} ms, p ${probability})`);
        const launcher = new ChaosLauncher({ timeoutS: 900, memoryMb: 2048, concurrency: 16 });
        const killer = new Killer(launcher, { seed, periodMs, probability });
        let faulty: TrainResult;
        try {
          faulty = await train(params, { store, launcher: () => launcher });
        } finally {
          await killer.stop();
        }
        rows.push(row(c.run, 'killer', faulty, clean, killer.kills.length, c.bsp));
      }
    } finally {
      await store.close();
    }
  } finally {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(work, { recursive: true, force: true });
  }
  const targetMet = rows.filter((r) => r.faults === 'killer').every((r) => r.ratio <= 1.5);
  const table =
    formatTable(
      ['run', 'faults', 'wall s', 'x fault-free', 'worker-s', 'cost $', 'kills', 'relaunches', 'accuracy', 'bit-identical'],
      rows.map((r) => [r.run, r.faults, r.wallSeconds, r.ratio, r.workerSeconds, r.usd, r.kills, r.relaunches, `${(100 * r.testAccuracy).toFixed(2)}%`, r.bitIdentical === null ? '-' : r.bitIdentical ? 'yes' : 'NO']),
    ) + `\n\ntarget (under the killer at most 1.5x the fault-free wall time): ${targetMet ? 'met' : 'not met'}`;
  mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
  const file = join(DEFAULT_RESULTS_DIR, `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: 'chaos', machine: machineInfo(), seed, periodMs, probability, quick: o.quick ?? false, rows, targetMet }, null, 2) + '\n');
  return { rows, table, file, targetMet };
}

function row(run: string, faults: ChaosBenchRow['faults'], r: TrainResult, clean: TrainResult, kills: number, bsp: boolean): ChaosBenchRow {
  return {
    run,
    faults,
    wallSeconds: r.metrics.wallSeconds,
    ratio: r.metrics.wallSeconds / clean.metrics.wallSeconds,
    workerSeconds: r.cost.workerSeconds,
    usd: r.cost.usd,
    kills,
    relaunches: r.relaunches.length,
    testAccuracy: r.metrics.testAccuracy,
    bitIdentical: bsp ? r.model.weights.every((w, i) => Object.is(w, clean.model.weights[i])) : null,
  };
}
