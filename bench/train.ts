/**
 * `cirrus bench train`, in one run:
 * 1. Time to a target test accuracy on Fashion-MNIST softmax (z-scored) for W = 1, 2, 4 workers
 *    and for one plain process running the same kernel in a loop without the framework. The
 *    global batch is the same everywhere (each of W workers takes batch / W rows), so GA-SGD/BSP
 *    follows the same trajectory and only the time per epoch differs. Needs the Debian package
 *    dataset-fashion-mnist; without it, a Higgs-like dataset and dense LR are used instead.
 * 2. Sparse-LR gradient throughput (nonzeros/s) of our kernel against a C++ reference compiled
 *    at bench time with g++ -O2, on the same batches.
 * 3. PyTorch on one thread training the MLP, when python3-torch is installed (reported as absent
 *    otherwise).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Evaluator } from '../algorithms/metrics.js';
import type { Batch, DenseBatch, SparseBatch } from '../algorithms/model.js';
import { createModel } from '../algorithms/models.js';
import { createOptimizer } from '../algorithms/optimizers.js';
import type { Shard } from '../channels/datasets/shard.js';
import { generateHiggsLike } from '../client/datasets/generate.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { openStore } from '../client/store.js';
import { train } from '../client/train.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { FASHION_MNIST_DIR } from './data.js';
import { machineInfo } from './machine.js';
import { formatTable } from './table.js';

export interface TimeToTargetRow {
  runner: string;
  workers: number;
  seconds: number | null;
  epochs: number | null;
  finalAccuracy: number;
  vsPlain: number | null;
}

export interface TrainBenchResult {
  dataset: string;
  model: string;
  target: number;
  timeToTarget: TimeToTargetRow[];
  sparse: { jsNnzPerSec: number; cppNnzPerSec: number | null; ratio: number | null; note?: string };
  pytorch: string;
  table: string;
  file: string;
}

interface Setup {
  dataset: string;
  model: 'softmax' | 'dense-lr';
  target: number;
  epochs: number;
  batchSize: number;
  lr: number;
}

export async function benchTrain(opts: { log?: (l: string) => void } = {}): Promise<TrainBenchResult> {
  const log = opts.log ?? (() => {});
  const work = mkdtempSync(join(tmpdir(), 'cirrus-bench-train-'));
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(work, '.cirrus');
  try {
    const setup = await prepare(work, log);
    const rows: TimeToTargetRow[] = [];
    log(`bench train: plain process (${setup.model}, batch ${setup.batchSize})`);
    const plain = await plainTimeToTarget(setup);
    rows.push({ runner: 'plain process', workers: 1, ...plain, vsPlain: 1 });
    for (const w of [1, 2, 4]) {
      log(`bench train: cirrus.train with ${w} worker(s)`);
      const r = await train({
        dataset: setup.dataset,
        model: setup.model,
        workers: w,
        epochs: setup.epochs,
        batchSize: setup.batchSize / w,
        optimizer: 'adam',
        learningRate: setup.lr,
        stop: { targetAccuracy: setup.target },
      });
      const hit = r.history.find((h) => h.testAccuracy >= setup.target);
      rows.push({
        runner: 'cirrus.train',
        workers: w,
        seconds: hit ? hit.wallSeconds : null,
        epochs: hit ? hit.epoch : null,
        finalAccuracy: r.metrics.testAccuracy,
        vsPlain: hit && plain.seconds ? hit.wallSeconds / plain.seconds : null,
      });
    }
    log('bench train: sparse-LR gradient throughput against g++ -O2');
    const sparse = sparseThroughput(work);
    const pytorch = pytorchStatus();
    const table =
      formatTable(
        ['runner', 'workers', `s to ${(100 * setup.target).toFixed(0)}%`, 'epochs', 'final accuracy', 'time / plain'],
        rows.map((r) => [r.runner, r.workers, r.seconds ?? 'not reached', r.epochs ?? '-', `${(100 * r.finalAccuracy).toFixed(2)}%`, r.vsPlain ?? '-']),
      ) +
      '\n\n' +
      formatTable(
        ['sparse-LR gradient', 'nonzeros/s', 'vs C++ -O2'],
        [
          ['cirrus (JS kernel)', sparse.jsNnzPerSec, sparse.ratio ?? '-'],
          ['C++ reference', sparse.cppNnzPerSec ?? (sparse.note ?? 'unavailable'), 1],
        ],
      ) +
      `\n\nPyTorch: ${pytorch}`;
    mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
    const file = join(DEFAULT_RESULTS_DIR, `train-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const result = { dataset: setup.dataset, model: setup.model, target: setup.target, timeToTarget: rows, sparse, pytorch };
    writeFileSync(file, JSON.stringify({ benchmark: 'train', machine: machineInfo(), ...result }, null, 2) + '\n');
    return { ...result, table, file };
  } finally {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(work, { recursive: true, force: true });
  }
}

async function prepare(work: string, log: (l: string) => void): Promise<Setup> {
  if (existsSync(FASHION_MNIST_DIR)) {
    log('bench train: preprocessing Fashion-MNIST (z-score, 5,000-row shards)');
    await preprocess({ input: FASHION_MNIST_DIR, format: 'fashion-mnist', name: 'fmnist', normalize: 'zscore', rowsPerShard: 5_000 });
    return { dataset: 'fmnist', model: 'softmax', target: 0.83, epochs: 30, batchSize: 128, lr: 0.001 };
  }
  log(`bench train: ${FASHION_MNIST_DIR} is missing; using 200,000 Higgs-like rows and dense LR`);
  const file = join(work, 'higgs.csv');
  await generateHiggsLike({ rows: 200_000, seed: 1, file });
  await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: 20_000 });
  return { dataset: 'higgs', model: 'dense-lr', target: 0.78, epochs: 30, batchSize: 128, lr: 0.001 };
}

/** The same model, optimizer and batch size in one process: no workers, channel or store. */
async function plainTimeToTarget(s: Setup): Promise<{ seconds: number | null; epochs: number | null; finalAccuracy: number }> {
  const handle = await openStore();
  let trainShards: Shard[];
  let testShards: Shard[];
  let features: number;
  let classes: number;
  try {
    const m = await handle.datasets.manifest(s.dataset);
    trainShards = await Promise.all(m.train.shards.map((r) => handle.datasets.readShard(r)));
    testShards = await Promise.all(m.test.shards.map((r) => handle.datasets.readShard(r)));
    features = m.features;
    classes = Math.max(2, m.classes);
  } finally {
    await handle.close();
  }
  const model = createModel({ type: s.model, features, classes });
  const optimizer = createOptimizer({ type: 'adam', lr: s.lr }, model.size);
  const weights = model.init(0);
  const grad = new Float32Array(model.size);
  const started = performance.now();
  let accuracy = 0;
  let seed = 7;
  const next = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296);
  for (let epoch = 1; epoch <= s.epochs; epoch++) {
    // Random shard order and row order each epoch, as the workers' iterators do.
    for (const shard of shuffled(trainShards, next)) {
      const order = shuffled(Array.from({ length: shard.rows }, (_, i) => i), next);
      for (let start = 0; start < shard.rows; start += s.batchSize) {
        const batch = gatherRows(shard, order.slice(start, Math.min(shard.rows, start + s.batchSize)));
        grad.fill(0);
        model.gradient(batch, weights, grad);
        for (let i = 0; i < grad.length; i++) grad[i] = grad[i]! / batch.rows;
        optimizer.step(weights, grad);
      }
    }
    const ev = new Evaluator(false);
    for (const shard of testShards) ev.add(model.evaluate(slice(shard, 0, shard.rows), weights), undefined);
    accuracy = ev.result().accuracy;
    if (accuracy >= s.target) return { seconds: (performance.now() - started) / 1000, epochs: epoch, finalAccuracy: accuracy };
  }
  return { seconds: null, epochs: null, finalAccuracy: accuracy };
}

function shuffled<T>(items: T[], next: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** A dense batch of the given rows (copied: a random row order cannot be a view). */
function gatherRows(shard: Shard, rows: number[]): Batch {
  if (shard.kind !== 'dense') throw new Error('bench train: the plain loop handles dense data');
  const cols = shard.cols;
  const x = new Float32Array(rows.length * cols);
  const labels = new Float32Array(rows.length);
  rows.forEach((r, i) => {
    x.set(shard.x.subarray(r * cols, (r + 1) * cols), i * cols);
    labels[i] = shard.labels[r]!;
  });
  return { kind: 'dense', rows: rows.length, cols, labels, x };
}

function slice(shard: Shard, start: number, end: number): Batch {
  if (shard.kind === 'dense') return { kind: 'dense', rows: end - start, cols: shard.cols, labels: shard.labels.subarray(start, end), x: shard.x.subarray(start * shard.cols, end * shard.cols) } satisfies DenseBatch;
  if (shard.kind === 'sparse') return { kind: 'sparse', rows: end - start, cols: shard.cols, labels: shard.labels.subarray(start, end), indptr: shard.indptr.subarray(start, end + 1), indices: shard.indices, values: shard.values } satisfies SparseBatch;
  throw new Error('bench train: ratings shards are not trainable here');
}

const CPP_SPARSE_LR = `
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <vector>
#include <chrono>
// Reads batches written by the benchmark and times the logistic-regression gradient, as the JS kernel does.
int main(int argc, char** argv) {
  FILE* f = fopen(argv[1], "rb");
  uint32_t rows, nnz, features, reps;
  if (fread(&rows, 4, 1, f) != 1 || fread(&nnz, 4, 1, f) != 1 || fread(&features, 4, 1, f) != 1 || fread(&reps, 4, 1, f) != 1) return 1;
  std::vector<float> labels(rows), values(nnz), w(features + 1), g(features + 1);
  std::vector<uint32_t> indptr(rows + 1), indices(nnz);
  if (fread(labels.data(), 4, rows, f) != rows || fread(indptr.data(), 4, rows + 1, f) != rows + 1 || fread(indices.data(), 4, nnz, f) != nnz || fread(values.data(), 4, nnz, f) != nnz) return 1;
  for (uint32_t i = 0; i <= features; i++) w[i] = 0.001f * (float)(i % 7);
  double loss = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t rep = 0; rep < reps; rep++) {
    for (uint32_t r = 0; r < rows; r++) {
      float z = w[features];
      for (uint32_t k = indptr[r]; k < indptr[r + 1]; k++) z += w[indices[k]] * values[k];
      float p = 1.0f / (1.0f + std::exp(-z));
      float d = p - labels[r];
      loss += z > 0 ? std::log1p(std::exp(-z)) + (1 - labels[r]) * z : std::log1p(std::exp(z)) - labels[r] * z;
      for (uint32_t k = indptr[r]; k < indptr[r + 1]; k++) g[indices[k]] += d * values[k];
      g[features] += d;
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("%.1f %g\\n", (double)nnz * reps / s, loss + g[0]);
  return 0;
}
`;

/** 200-row batches of ~40 nonzeros over 2^20 features, the same bytes for both kernels. */
function sparseThroughput(work: string): TrainBenchResult['sparse'] {
  const rows = 200;
  const features = 1 << 20;
  let s = 12345;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const indptr = new Uint32Array(rows + 1);
  const idx: number[] = [];
  for (let r = 0; r < rows; r++) {
    const set = new Set<number>();
    while (set.size < 40) set.add(Math.floor(next() * features));
    idx.push(...[...set].sort((a, b) => a - b));
    indptr[r + 1] = idx.length;
  }
  const indices = Uint32Array.from(idx);
  const values = Float32Array.from(idx, () => 1);
  const labels = Float32Array.from({ length: rows }, () => (next() < 0.3 ? 1 : 0));
  const batch: SparseBatch = { kind: 'sparse', rows, cols: features, labels, indptr, indices, values };
  const model = createModel({ type: 'sparse-lr', features, classes: 2 });
  const w = model.init(0);
  for (let i = 0; i < w.length; i++) w[i] = 0.001 * (i % 7);
  const grad = new Float32Array(model.size);
  const reps = 5_000;
  for (let i = 0; i < 200; i++) model.gradient(batch, w, grad); // warm up the JIT
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) model.gradient(batch, w, grad);
  const jsNnzPerSec = (indices.length * reps) / ((performance.now() - t0) / 1000);

  const src = join(work, 'sparse_lr.cc');
  const bin = join(work, 'sparse_lr');
  const data = join(work, 'batch.bin');
  writeFileSync(src, CPP_SPARSE_LR);
  const head = Uint32Array.of(rows, indices.length, features, reps);
  writeFileSync(data, Buffer.concat([head, labels, indptr, indices, values].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))));
  try {
    execFileSync('g++', ['-O2', '-o', bin, src], { stdio: 'pipe' });
  } catch (e) {
    return { jsNnzPerSec, cppNnzPerSec: null, ratio: null, note: `g++ failed: ${(e as Error).message.split('\n')[0]}` };
  }
  const out = execFileSync(bin, [data], { encoding: 'utf8' });
  const cppNnzPerSec = Number(out.trim().split(' ')[0]);
  return { jsNnzPerSec, cppNnzPerSec, ratio: jsNnzPerSec / cppNnzPerSec };
}

function pytorchStatus(): string {
  const r = spawnSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (r.status !== 0) return 'not installed (apt-get install python3-torch to add the comparison); not measured';
  return `torch ${r.stdout.trim()} is installed, but the PyTorch MLP comparison is not implemented yet`;
}
