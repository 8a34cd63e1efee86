/**
 * `cirrus bench train`, in one run:
 * 1. Time to a target test accuracy on Fashion-MNIST for one plain process and for cirrus.train
 *    with W = 1, 2, 4 workers, every row timed from its start (process spawn or the train() call)
 *    to the evaluation that first reaches the target, start-up included. Default workload: the
 *    MLP 784-128-10, Adam lr 0.001, global batch 128, target 87% (`model: 'softmax'` gives the
 *    softmax / 83% workload). The plain process (train-plain.ts) runs the same kernels, initial
 *    weights, optimizer, batch size and data order as one worker; GA-SGD/BSP workers split each
 *    global batch (128 / W rows each), so all GA-SGD rows follow the same trajectory. Extra
 *    MA-SGD rows (models averaged every epoch, 128 / W rows per local step) are labelled as such.
 *    Without the Debian package dataset-fashion-mnist, Higgs-like rows and dense LR are used.
 * 2. Sparse-LR gradient throughput against a C++ reference compiled with g++ -O2 (train-sparse.ts).
 * 3. PyTorch on one thread training the same MLP to the same target (train-pytorch.ts), when
 *    python3-torch is installed, with the ratio of our single worker's time to PyTorch's.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createModel, enableTfjsKernels, type ModelSpec } from '../algorithms/index.js';
import { formatTable, generateHiggsLike, openStore, preprocess, train } from '../client/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { FASHION_MNIST_DIR } from './data.js';
import { machineInfo } from './machine.js';
import type { PlainReport, PlainSpec } from './train-plain.js';
import { findTorchPython, runPytorch } from './train-pytorch.js';
import { sparseThroughput, type SparseThroughput } from './train-sparse.js';

interface TimeToTargetRow {
  runner: string;
  algorithm: string;
  workers: number;
  /** Rows per worker per step. */
  batchPerWorker: number;
  /** Median over the repeats (null when any repeat missed the target). */
  seconds: number | null;
  runs: Array<number | null>;
  epochs: number | null;
  finalAccuracy: number;
  vsPlain: number | null;
}

interface PytorchResult {
  status: string;
  /** From the script's spawn (python and torch start-up included), median over the repeats. */
  seconds?: number | null;
  /** From the data being in memory to the target. */
  trainingSeconds?: number | null;
  epochs?: number | null;
  finalAccuracy?: number;
  /** Our single worker's time / PyTorch's (both from their start). */
  ratio?: number | null;
  /** Training seconds per epoch (data in memory, evaluation included): our plain process / PyTorch. */
  perEpochRatio?: number | null;
}

interface TrainBenchResult {
  dataset: string;
  model: string;
  target: number;
  batchSize: number;
  repeat: number;
  timeToTarget: TimeToTargetRow[];
  sparse: SparseThroughput;
  pytorch: PytorchResult;
  table: string;
  file: string;
}

interface TrainBenchOptions {
  log?: (l: string) => void;
  /** 'mlp' (default) or 'softmax'. */
  model?: 'mlp' | 'softmax';
  /** GA-SGD/BSP worker counts. Default 1, 2, 4. */
  workers?: number[];
  /** MA-SGD worker counts (extra rows). Default 2. */
  maWorkers?: number[];
  /** Runs of every row, interleaved; the table shows medians. Default 1. */
  repeat?: number;
  /** Skip the PyTorch comparison. */
  noPytorch?: boolean;
}

interface Setup {
  dataset: string;
  model: 'mlp' | 'softmax' | 'dense-lr';
  spec: ModelSpec;
  target: number;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
}

interface Outcome {
  seconds: number | null;
  epochs: number | null;
  finalAccuracy: number;
  trainingSeconds?: number | null;
}

interface Runner {
  runner: string;
  algorithm: string;
  workers: number;
  batchPerWorker: number;
  run(): Promise<Outcome>;
}

export async function benchTrain(opts: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const log = opts.log ?? (() => {});
  const repeat = opts.repeat ?? 1;
  const work = mkdtempSync(join(tmpdir(), 'cirrus-bench-train-'));
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(work, '.cirrus');
  try {
    const setup = await prepare(work, opts.model ?? 'mlp', log);
    // The client evaluates in this process: give it the tfjs matmuls the workers and the plain process use.
    if (setup.model === 'mlp') await enableTfjsKernels();
    const runners = makeRunners(setup, opts.workers ?? [1, 2, 4], opts.maWorkers ?? [2]);
    const outcomes = runners.map(() => [] as Outcome[]);
    const torch = opts.noPytorch || setup.model !== 'mlp' ? null : findTorchPython();
    const torchOutcomes: Outcome[] = [];
    let torchVersion = '';
    for (let rep = 1; rep <= repeat; rep++) {
      for (const [i, r] of runners.entries()) {
        log(`bench train (${rep}/${repeat}): ${r.runner}, ${r.algorithm}, W = ${r.workers}`);
        outcomes[i]!.push(await r.run());
      }
      if (torch) {
        log(`bench train (${rep}/${repeat}): PyTorch ${torch.version} on one thread`);
        const p = pytorchOnce(torch.python, work, setup);
        log(`bench train: PyTorch ${p.version}`);
        torchVersion = p.version;
        torchOutcomes.push(p.outcome);
      }
    }
    const rows = summarize(runners, outcomes);
    log('bench train: sparse-LR gradient throughput against g++ -O2');
    const sparse = sparseThroughput(work);
    const pytorch = pytorchSummary(setup, torch, torchVersion, torchOutcomes, rows, outcomes[0]!);
    const table = render(setup, rows, sparse, pytorch, repeat);
    mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
    const file = join(DEFAULT_RESULTS_DIR, `train-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const result = { dataset: setup.dataset, model: describeModel(setup), target: setup.target, batchSize: setup.batchSize, repeat, timeToTarget: rows, sparse, pytorch };
    writeFileSync(file, JSON.stringify({ benchmark: 'train', machine: machineInfo(), ...result }, null, 2) + '\n');
    return { ...result, table, file };
  } finally {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(work, { recursive: true, force: true });
  }
}

async function prepare(work: string, model: 'mlp' | 'softmax', log: (l: string) => void): Promise<Setup> {
  if (existsSync(FASHION_MNIST_DIR)) {
    log('bench train: preprocessing Fashion-MNIST (z-score, 5,000-row shards)');
    await preprocess({ input: FASHION_MNIST_DIR, format: 'fashion-mnist', name: 'fmnist', normalize: 'zscore', rowsPerShard: 5_000 });
    if (model === 'softmax') return { dataset: 'fmnist', model, spec: { type: 'softmax', features: 784, classes: 10 }, target: 0.83, epochs: 30, batchSize: 128, lr: 0.001, seed: 0 };
    return { dataset: 'fmnist', model, spec: { type: 'mlp', features: 784, classes: 10, hidden: [128] }, target: 0.87, epochs: 10, batchSize: 128, lr: 0.001, seed: 0 };
  }
  log(`bench train: ${FASHION_MNIST_DIR} is missing; using 200,000 Higgs-like rows and dense LR`);
  const file = join(work, 'higgs.csv');
  await generateHiggsLike({ rows: 200_000, seed: 1, file });
  const m = await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: 20_000 });
  return { dataset: 'higgs', model: 'dense-lr', spec: { type: 'dense-lr', features: m.features, classes: 2 }, target: 0.78, epochs: 30, batchSize: 128, lr: 0.001, seed: 0 };
}

function describeModel(s: Setup): string {
  return s.model === 'mlp' ? `mlp ${s.spec.features}-${(s.spec.hidden ?? []).join('-')}-${s.spec.classes}` : s.model;
}

function makeRunners(s: Setup, gaWorkers: number[], maWorkers: number[]): Runner[] {
  const cirrus = (algorithm: 'ga-sgd' | 'ma-sgd', w: number): Runner => ({
    runner: 'cirrus.train',
    algorithm: algorithm === 'ga-sgd' ? 'GA-SGD/BSP' : 'MA-SGD/BSP, average per epoch',
    workers: w,
    batchPerWorker: s.batchSize / w,
    run: () => cirrusOnce(s, algorithm, w),
  });
  for (const w of [...gaWorkers, ...maWorkers]) {
    if (s.batchSize % w !== 0) throw new Error(`bench train: ${w} workers do not divide the global batch ${s.batchSize}`);
  }
  return [
    { runner: 'plain process', algorithm: 'SGD loop', workers: 1, batchPerWorker: s.batchSize, run: () => plainOnce(s) },
    ...gaWorkers.map((w) => cirrus('ga-sgd', w)),
    ...maWorkers.map((w) => cirrus('ma-sgd', w)),
  ];
}

async function cirrusOnce(s: Setup, algorithm: 'ga-sgd' | 'ma-sgd', w: number): Promise<Outcome> {
  const r = await train({
    dataset: s.dataset,
    model: s.model,
    ...(s.spec.hidden ? { hidden: s.spec.hidden } : {}),
    algorithm,
    workers: w,
    epochs: s.epochs,
    batchSize: s.batchSize / w,
    optimizer: 'adam',
    learningRate: s.lr,
    seed: s.seed,
    stop: { targetAccuracy: s.target },
  });
  const hit = r.history.find((h) => h.testAccuracy >= s.target);
  return { seconds: hit ? hit.wallSeconds : null, epochs: hit ? hit.epoch : null, finalAccuracy: r.metrics.testAccuracy };
}

/** One plain process (train-plain.ts), timed from its spawn to the evaluation that reached the target. */
async function plainOnce(s: Setup): Promise<Outcome> {
  const handle = await openStore();
  try {
    const spec: PlainSpec = { store: handle.workerTarget, dataset: s.dataset, model: s.spec, batchSize: s.batchSize, lr: s.lr, seed: s.seed, epochs: s.epochs, target: s.target };
    const entry = fileURLToPath(new URL('./train-plain.js', import.meta.url));
    const spawnedAt = Date.now();
    const child = spawn(process.execPath, [entry], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.end(JSON.stringify(spec));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const code = await new Promise<number | null>((resolve, reject) => child.on('error', reject).on('exit', resolve));
    if (code !== 0) throw new Error(`bench train: the plain process exited with ${code}`);
    const report = JSON.parse(out.trim().split('\n').pop()!) as PlainReport;
    return fromEpochs(report.epochs, spawnedAt, report.trainingStartedAt, s.target);
  } finally {
    await handle.close();
  }
}

function fromEpochs(epochs: Array<{ epoch: number; accuracy: number; at: number }>, startedAt: number, readyAt: number, target: number): Outcome {
  const hit = epochs.find((e) => e.accuracy >= target);
  const last = epochs[epochs.length - 1];
  return {
    seconds: hit ? (hit.at - startedAt) / 1000 : null,
    trainingSeconds: hit ? (hit.at - readyAt) / 1000 : null,
    epochs: hit ? hit.epoch : null,
    finalAccuracy: last ? last.accuracy : 0,
  };
}

function pytorchOnce(python: string, work: string, s: Setup): { version: string; outcome: Outcome } {
  const weightsFile = join(work, 'mlp-init.f32');
  // The same initial weights as ours; the MLP's layout is torch's Linear layout.
  const w = createModel(s.spec, { kernels: 'js' }).init(s.seed);
  writeFileSync(weightsFile, Buffer.from(w.buffer, w.byteOffset, w.byteLength));
  const { spawnedAt, report } = runPytorch(python, work, {
    dataDir: FASHION_MNIST_DIR,
    weightsFile,
    hidden: s.spec.hidden![0]!,
    batchSize: s.batchSize,
    lr: s.lr,
    epochs: s.epochs,
    target: s.target,
    seed: s.seed,
  });
  return { version: `${report.torch}, BLAS ${report.blas}`, outcome: fromEpochs(report.epochs, spawnedAt, report.readyAt, s.target) };
}

function median(xs: Array<number | null>): number | null {
  if (xs.length === 0 || xs.some((x) => x === null)) return null;
  const a = (xs as number[]).slice().sort((p, q) => p - q);
  const m = a.length >> 1;
  return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
}

function summarize(runners: Runner[], outcomes: Outcome[][]): TimeToTargetRow[] {
  const plain = median(outcomes[0]!.map((o) => o.seconds));
  return runners.map((r, i) => {
    const os = outcomes[i]!;
    const seconds = median(os.map((o) => o.seconds));
    return {
      runner: r.runner,
      algorithm: r.algorithm,
      workers: r.workers,
      batchPerWorker: r.batchPerWorker,
      seconds,
      runs: os.map((o) => o.seconds),
      epochs: os[0]!.epochs,
      finalAccuracy: os[os.length - 1]!.finalAccuracy,
      vsPlain: seconds !== null && plain ? seconds / plain : null,
    };
  });
}

/** Median training seconds per epoch (from the data being in memory to the target). */
function perEpoch(os: Outcome[]): number | null {
  return median(os.map((o) => (o.trainingSeconds != null && o.epochs ? o.trainingSeconds / o.epochs : null)));
}

function pytorchSummary(s: Setup, torch: { version: string } | null, version: string, os: Outcome[], rows: TimeToTargetRow[], plain: Outcome[]): PytorchResult {
  if (s.model !== 'mlp') return { status: 'not measured: the PyTorch comparison trains the MLP (run with --model mlp)' };
  if (!torch) return { status: 'not measured: python3-torch is not installed (apt-get install python3-torch adds the comparison)' };
  const seconds = median(os.map((o) => o.seconds));
  const single = rows.find((r) => r.runner === 'cirrus.train' && r.workers === 1)?.seconds ?? null;
  return {
    status: `torch ${version}, torch.set_num_threads(1)`,
    seconds,
    trainingSeconds: median(os.map((o) => o.trainingSeconds ?? null)),
    epochs: os[0]!.epochs,
    finalAccuracy: os[os.length - 1]!.finalAccuracy,
    ratio: seconds !== null && single !== null ? single / seconds : null,
    perEpochRatio: ((a, b) => (a !== null && b !== null ? a / b : null))(perEpoch(plain), perEpoch(os)),
  };
}

function render(s: Setup, rows: TimeToTargetRow[], sparse: SparseThroughput, pt: PytorchResult, repeat: number): string {
  const pct = `${(100 * s.target).toFixed(0)}%`;
  const runs = (r: TimeToTargetRow) => (repeat > 1 ? ` (${r.runs.map((x) => (x === null ? '-' : x.toFixed(2))).join(', ')})` : '');
  const parts = [
    `${s.dataset} ${describeModel(s)}, Adam lr ${s.lr}, global batch ${s.batchSize}, seed ${s.seed}; time from each run's start (spawn or train() call, start-up included) to the evaluation that reached ${pct}${repeat > 1 ? `; median of ${repeat} interleaved runs, each run in brackets` : ''}`,
    formatTable(
      ['runner', 'algorithm', 'workers', 'rows/worker/step', `s to ${pct}`, 'epochs', 'final accuracy', 'time / plain'],
      rows.map((r) => [r.runner, r.algorithm, r.workers, r.batchPerWorker, r.seconds === null ? 'not reached' : `${r.seconds.toFixed(2)}${runs(r)}`, r.epochs ?? '-', `${(100 * r.finalAccuracy).toFixed(2)}%`, r.vsPlain ?? '-']),
    ),
    formatTable(
      ['sparse-LR gradient (200 rows x 40 nonzeros, 2^20 features; median of 5 alternating trials)', 'nonzeros/s', 'vs C++ -O2'],
      [
        ['cirrus (JS kernel)', sparse.jsNnzPerSec, sparse.ratio ?? '-'],
        ['C++ reference (g++ -O2, compiled at bench time)', sparse.cppNnzPerSec ?? (sparse.note ?? 'unavailable'), 1],
      ],
    ),
  ];
  if (pt.seconds === undefined) parts.push(`PyTorch: ${pt.status}`);
  else {
    parts.push(
      `PyTorch (${pt.status}), same MLP, initial weights, optimizer and batch, its own shuffling; timed from the python3 spawn:\n` +
        formatTable(
          ['runner', `s to ${pct}`, 'training only', 'epochs', 'final accuracy', 'cirrus W=1 / PyTorch'],
          [['PyTorch, 1 thread', pt.seconds ?? 'not reached', pt.trainingSeconds ?? '-', pt.epochs ?? '-', `${(100 * (pt.finalAccuracy ?? 0)).toFixed(2)}%`, pt.ratio ?? '-']],
        ) +
        `\ntraining time per epoch (data in memory, evaluation included), our plain process / PyTorch: ${pt.perEpochRatio == null ? '-' : pt.perEpochRatio.toFixed(2)}`,
    );
  }
  return parts.join('\n\n');
}
