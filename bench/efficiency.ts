/**
 * Scaling in CPU-seconds (`cirrus bench train --efficiency`): the CPU-seconds a run spends to reach
 * a target accuracy against the plain process's (train-plain.ts), and the parallel efficiency
 * plain CPU-s / run CPU-s for W = 1, 2, 4, 8. Each run is a process of its own (the plain process,
 * or cirrus.train in efficiency-train-child.ts, as a user's `cirrus train`), and its CPU-s is what
 * the kernel accounts to it and to every process it started (reapedChildrenCpuSeconds): the client with its
 * start-up, the workers, servers and spares. Both sides read their shards from one object store in
 * a process of its own (store-process.ts), whose CPU-s is shown per row and counted on neither side.
 * Workloads: the Fashion-MNIST MLP and Higgs-like dense LR, both with MA-SGD.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModelSpec } from '../algorithms/index.js';
import { formatTable, generateHiggsLike, preprocess, reapedChildrenCpuSeconds, type TrainParamsInput } from '../client/index.js';
import { FASHION_MNIST_DIR } from './data.js';
import type { TrainChildReport } from './efficiency-train-child.js';
import type { StoreProcess } from './store-process.js';
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
  /** The object store's CPU-s while this row ran (serving its shards; AWS S3's in production): in neither side's CPU-s. */
  storeCpuSeconds: number;
  /** Plain CPU-s / this row's CPU-s, every process counted but the object store's (1 for the plain row). */
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
export async function efficiencyWorkloads(work: string, store: string, which: ReadonlyArray<'mlp' | 'higgs-lr'>, log: (l: string) => void, size: EfficiencySize = 'short', higgsRows?: number): Promise<EfficiencyWorkload[]> {
  const out: EfficiencyWorkload[] = [];
  const long = size === 'long';
  if (which.includes('mlp')) {
    if (!existsSync(FASHION_MNIST_DIR)) throw new Error(`bench efficiency: ${FASHION_MNIST_DIR} is missing`);
    log('bench efficiency: preprocessing Fashion-MNIST (z-score, 5,000-row shards)');
    await preprocess({ store, input: FASHION_MNIST_DIR, format: 'fashion-mnist', name: 'fmnist', normalize: 'zscore', rowsPerShard: 5_000, overwrite: true });
    out.push({ name: 'MLP-FMNIST (MA-SGD)', dataset: 'fmnist', model: 'mlp', spec: { type: 'mlp', features: 784, classes: 10, hidden: [128] }, target: long ? 0.87 : 0.85, epochs: 30, batchSize: 128, lr: 0.001 });
  }
  if (which.includes('higgs-lr')) {
    const file = join(work, 'higgs-eff.csv');
    const rows = higgsRows ?? (long ? 1_000_000 : 100_000);
    // Ten shards, at most 250,000 rows each (so W = 8 gets an even share of a large set).
    const rowsPerShard = Math.min(Math.ceil(rows / 10), 250_000);
    log(`bench efficiency: ${rows.toLocaleString('en-US')} Higgs-like rows, z-scored, ${rowsPerShard.toLocaleString('en-US')}-row shards`);
    await generateHiggsLike({ rows, seed: 1, file });
    const m = await preprocess({ store, input: file, format: 'csv', labelColumn: 0, name: 'higgs-eff', normalize: 'zscore', rowsPerShard, split: 0.9, seed: 1, overwrite: true });
    out.push({ name: 'LR-Higgs (MA-SGD)', dataset: 'higgs-eff', model: 'dense-lr', spec: { type: 'dense-lr', features: m.features, classes: 2 }, target: 0.77, epochs: 30, batchSize: 128, lr: 0.001 });
  }
  return out;
}

/**
 * Runs a bench child (its input as JSON on stdin) and returns its last stdout line, parsed, with
 * the CPU-seconds of the child and of every process it started (reaped children's accounting) and
 * the store's CPU-seconds over the same span.
 */
async function runChild<T>(entry: string, input: unknown, store: StoreProcess, what: string): Promise<{ report: T; cpuSeconds: number; storeCpuSeconds: number; wallSeconds: number }> {
  const t0 = Date.now();
  const storeAtStart = store.cpuSeconds();
  const cpuAtStart = reapedChildrenCpuSeconds();
  const child = spawn(process.execPath, [fileURLToPath(new URL(entry, import.meta.url))], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(JSON.stringify(input));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((resolve, reject) => child.on('error', reject).on('exit', resolve));
  if (code !== 0) throw new Error(`bench efficiency: ${what} exited with ${code}`);
  return { report: JSON.parse(out.trim().split('\n').pop()!) as T, cpuSeconds: reapedChildrenCpuSeconds() - cpuAtStart, storeCpuSeconds: store.cpuSeconds() - storeAtStart, wallSeconds: (Date.now() - t0) / 1000 };
}

/** The plain process's CPU-seconds to the target (or over all its epochs). */
async function plainCpu(w: EfficiencyWorkload, store: StoreProcess): Promise<EfficiencyRow> {
  const spec: PlainSpec = { store: store.target, dataset: w.dataset, model: w.spec, batchSize: w.batchSize, lr: w.lr, seed: 0, epochs: w.epochs, target: w.target };
  const { report, cpuSeconds, storeCpuSeconds, wallSeconds } = await runChild<PlainReport>('./train-plain.js', spec, store, 'the plain process');
  const last = report.epochs[report.epochs.length - 1];
  return { workload: w.name, runner: 'plain process', workers: 1, reached: (last?.accuracy ?? 0) >= w.target, wallSeconds, epochs: last?.epoch ?? 0, cpuSeconds, storeCpuSeconds, efficiency: 1 };
}

/** cirrus.train with MA-SGD (the batch split over W workers, or the whole batch on each: EfficiencyBatch), stopping at the target, in a process of its own. */
async function runCpu(w: EfficiencyWorkload, store: StoreProcess, workers: number, plainCpuSeconds: number, batch: EfficiencyBatch = 'split', averageEvery = 0): Promise<EfficiencyRow> {
  const params: TrainParamsInput = {
    store: store.target,
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
  };
  const { report: r, cpuSeconds, storeCpuSeconds, wallSeconds } = await runChild<TrainChildReport>('./efficiency-train-child.js', params, store, `cirrus.train (W = ${workers})`);
  const workerCpu = r.workerCpuSeconds ?? NaN;
  const serverCpu = r.serverCpuSeconds ?? 0;
  return {
    workload: w.name,
    runner: `${batch === 'split' ? 'split' : 'per-worker'}${averageEvery > 0 ? `, avg/${averageEvery}` : ''}`,
    workers,
    reached: r.testAccuracy >= w.target,
    wallSeconds,
    epochs: r.epochs,
    cpuSeconds,
    workerCpuSeconds: workerCpu,
    // Everything else the run's processes spent: the client process from its start (the in-process
    // parameter server and evaluation included) and the launcher's standby spare.
    clientCpuSeconds: cpuSeconds - workerCpu - serverCpu,
    serverCpuSeconds: serverCpu,
    storeCpuSeconds,
    efficiency: plainCpuSeconds / cpuSeconds,
    workerEfficiency: plainCpuSeconds / workerCpu,
  };
}

export async function measureEfficiency(workloads: EfficiencyWorkload[], store: StoreProcess, workers: number[], log: (l: string) => void, batches: readonly EfficiencyBatch[] = ['split'], averageEvery = 0): Promise<EfficiencyRow[]> {
  const rows: EfficiencyRow[] = [];
  for (const w of workloads) {
    log(`bench efficiency: ${w.name}, plain process`);
    const plain = await plainCpu(w, store);
    rows.push(plain);
    for (const batch of batches) {
      for (const n of workers) {
        log(`bench efficiency: ${w.name}, W = ${n}, batch ${batch}`);
        rows.push(await runCpu(w, store, n, plain.cpuSeconds, batch, averageEvery));
      }
    }
  }
  return rows;
}

export function renderEfficiency(rows: EfficiencyRow[]): string {
  const headers = ['workload', 'runner', 'W', 'reached', 'epochs', 'wall s', 'CPU-s', 'workers/client/servers', 'store CPU-s', 'efficiency', 'workers only'];
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
      r.storeCpuSeconds.toFixed(1),
      r.efficiency.toFixed(2),
      (r.workerEfficiency ?? r.efficiency).toFixed(2),
    ]),
  );
}
