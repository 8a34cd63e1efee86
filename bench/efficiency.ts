/**
 * Scaling in CPU-seconds (`cirrus bench train --efficiency`, also used by `bench compare`): the
 * CPU-seconds a run spends to reach a target accuracy -- client, workers and servers, each from its
 * own process accounting (TrainCost.cpuSeconds) -- against the plain process's (train-plain.ts,
 * process.cpuUsage at the target), and the parallel efficiency plain CPU-s / run CPU-s for
 * W = 1, 2, 4, 8. Workloads: the Fashion-MNIST MLP with MA-SGD and Higgs-like dense LR (MA-SGD).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelSpec } from '../algorithms/index.js';
import { formatTable, generateHiggsLike, openStore, preprocess, train } from '../client/index.js';
import { FASHION_MNIST_DIR } from './data.js';
import type { PlainReport, PlainSpec } from './train-plain.js';

interface EfficiencyWorkload {
  name: string;
  dataset: string;
  model: 'mlp' | 'dense-lr';
  spec: ModelSpec;
  target: number;
  epochs: number;
  batchSize: number;
  lr: number;
}

export interface EfficiencyRow {
  workload: string;
  runner: string;
  workers: number;
  reached: boolean;
  wallSeconds: number;
  epochs: number;
  cpuSeconds: number;
  workerCpuSeconds?: number;
  clientCpuSeconds?: number;
  serverCpuSeconds?: number;
  /** Plain CPU-s / this row's CPU-s, every process counted (1 for the plain row). */
  efficiency: number;
  /** Plain CPU-s / the workers' CPU-s: what Lambda bills (the client runs on the user's machine, the servers on their own nodes). */
  workerEfficiency?: number;
}

/** The short workloads reach their targets within 1-2 plain epochs; the long ones run long enough for a worker's start-up to matter little. */
export type EfficiencySize = 'short' | 'long';

/**
 * How a run's batch relates to the plain process's: 'split' gives each of W workers 1/W of it (the
 * same global batch, so W times the optimizer steps over the model per epoch); 'per-worker' gives
 * every worker the whole batch (LambdaML's MA-SGD: each worker runs local SGD with the batch size,
 * the models are averaged at each exchange), so the steps per epoch stay the plain process's.
 */
export type EfficiencyBatch = 'split' | 'per-worker';

/** Prepares the datasets in the current CIRRUS_HOME store and returns the workloads. */
export async function efficiencyWorkloads(work: string, which: ReadonlyArray<'mlp' | 'higgs-lr'>, log: (l: string) => void, size: EfficiencySize = 'short'): Promise<EfficiencyWorkload[]> {
  const out: EfficiencyWorkload[] = [];
  const long = size === 'long';
  if (which.includes('mlp')) {
    if (!existsSync(FASHION_MNIST_DIR)) throw new Error(`bench efficiency: ${FASHION_MNIST_DIR} is missing`);
    log('bench efficiency: preprocessing Fashion-MNIST (z-score, 5,000-row shards)');
    await preprocess({ input: FASHION_MNIST_DIR, format: 'fashion-mnist', name: 'fmnist', normalize: 'zscore', rowsPerShard: 5_000, overwrite: true });
    out.push({ name: 'MLP-FMNIST (MA-SGD)', dataset: 'fmnist', model: 'mlp', spec: { type: 'mlp', features: 784, classes: 10, hidden: [128] }, target: long ? 0.87 : 0.85, epochs: 30, batchSize: 128, lr: 0.001 });
  }
  if (which.includes('higgs-lr')) {
    const file = join(work, 'higgs-eff.csv');
    const rows = long ? 1_000_000 : 100_000;
    log(`bench efficiency: ${rows.toLocaleString('en-US')} Higgs-like rows, z-scored, ${(rows / 10).toLocaleString('en-US')}-row shards`);
    await generateHiggsLike({ rows, seed: 1, file });
    const m = await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs-eff', normalize: 'zscore', rowsPerShard: rows / 10, split: 0.9, seed: 1, overwrite: true });
    out.push({ name: 'LR-Higgs (MA-SGD)', dataset: 'higgs-eff', model: 'dense-lr', spec: { type: 'dense-lr', features: m.features, classes: 2 }, target: 0.77, epochs: 30, batchSize: 128, lr: 0.001 });
  }
  return out;
}

/** The plain process's CPU-seconds to the target (or over all its epochs). */
async function plainCpu(w: EfficiencyWorkload): Promise<EfficiencyRow> {
  const handle = await openStore();
  try {
    const spec: PlainSpec = { store: handle.workerTarget, dataset: w.dataset, model: w.spec, batchSize: w.batchSize, lr: w.lr, seed: 0, epochs: w.epochs, target: w.target };
    const entry = fileURLToPath(new URL('./train-plain.js', import.meta.url));
    const t0 = Date.now();
    const child = spawn(process.execPath, [entry], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.end(JSON.stringify(spec));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const code = await new Promise<number | null>((resolve, reject) => child.on('error', reject).on('exit', resolve));
    if (code !== 0) throw new Error(`bench efficiency: the plain process exited with ${code}`);
    const report = JSON.parse(out.trim().split('\n').pop()!) as PlainReport;
    const last = report.epochs[report.epochs.length - 1];
    return { workload: w.name, runner: 'plain process', workers: 1, reached: (last?.accuracy ?? 0) >= w.target, wallSeconds: (Date.now() - t0) / 1000, epochs: last?.epoch ?? 0, cpuSeconds: report.cpuSeconds ?? NaN, efficiency: 1 };
  } finally {
    await handle.close();
  }
}

/** cirrus.train with MA-SGD (the batch split over W workers, or the whole batch on each: EfficiencyBatch), stopping at the target. */
async function runCpu(w: EfficiencyWorkload, workers: number, plainCpuSeconds: number, batch: EfficiencyBatch = 'split', averageEvery = 0): Promise<EfficiencyRow> {
  const r = await train({
    dataset: w.dataset,
    model: w.model,
    ...(w.spec.hidden ? { hidden: w.spec.hidden } : {}),
    algorithm: 'ma-sgd',
    averageEvery,
    workers,
    epochs: w.epochs,
    batchSize: batch === 'split' ? Math.max(1, Math.round(w.batchSize / workers)) : w.batchSize,
    optimizer: 'adam',
    learningRate: w.lr,
    seed: 0,
    channel: 'ps',
    stop: { targetAccuracy: w.target },
  });
  const cpu = r.cost.cpuSeconds ?? NaN;
  return {
    workload: w.name,
    runner: `${batch === 'split' ? 'split' : 'per-worker'}${averageEvery > 0 ? `, avg/${averageEvery}` : ''}`,
    workers,
    reached: r.metrics.testAccuracy >= w.target,
    wallSeconds: r.metrics.wallSeconds,
    epochs: r.metrics.epochs,
    cpuSeconds: cpu,
    ...(r.cost.workerCpuSeconds !== undefined ? { workerCpuSeconds: r.cost.workerCpuSeconds } : {}),
    ...(r.cost.clientCpuSeconds !== undefined ? { clientCpuSeconds: r.cost.clientCpuSeconds } : {}),
    ...(r.cost.serverCpuSeconds !== undefined ? { serverCpuSeconds: r.cost.serverCpuSeconds } : {}),
    efficiency: plainCpuSeconds / cpu,
    ...(r.cost.workerCpuSeconds !== undefined ? { workerEfficiency: plainCpuSeconds / r.cost.workerCpuSeconds } : {}),
  };
}

export async function measureEfficiency(workloads: EfficiencyWorkload[], workers: number[], log: (l: string) => void, batches: readonly EfficiencyBatch[] = ['split'], averageEvery = 0): Promise<EfficiencyRow[]> {
  const rows: EfficiencyRow[] = [];
  for (const w of workloads) {
    log(`bench efficiency: ${w.name}, plain process`);
    const plain = await plainCpu(w);
    rows.push(plain);
    for (const batch of batches) {
      for (const n of workers) {
        log(`bench efficiency: ${w.name}, W = ${n}, batch ${batch}`);
        rows.push(await runCpu(w, n, plain.cpuSeconds, batch, averageEvery));
      }
    }
  }
  return rows;
}

export function renderEfficiency(rows: EfficiencyRow[]): string {
  const headers = ['workload', 'runner', 'W', 'reached', 'epochs', 'wall s', 'CPU-s', 'workers/client/servers', 'efficiency', 'workers only'];
  return formatTable(
    headers,
    rows.map((r) => [
      r.workload,
      r.runner,
      String(r.workers),
      r.reached ? 'yes' : 'no',
      String(r.epochs),
      r.wallSeconds.toFixed(1),
      r.cpuSeconds.toFixed(1),
      r.workerCpuSeconds !== undefined ? `${r.workerCpuSeconds.toFixed(1)}/${(r.clientCpuSeconds ?? 0).toFixed(1)}/${(r.serverCpuSeconds ?? 0).toFixed(1)}` : '',
      r.efficiency.toFixed(2),
      (r.workerEfficiency ?? r.efficiency).toFixed(2),
    ]),
  );
}
