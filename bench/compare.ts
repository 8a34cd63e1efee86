/**
 * `cirrus bench compare`: LambdaML's channel table (SIGMOD'21, Table "communication channel"),
 * measured here. Every workload trains W workers over each channel (s3, memcached, ps) to a fixed
 * target test loss; the table gives wall time and cost at list prices, and both relative to S3 as
 * LambdaML defines them: cost = cost(X) / cost(S3), slowdown = time(X) / time(S3) (so > 1 means S3
 * is cheaper / faster). The BSP algorithms compute the same steps on every channel (the collectives
 * are bit-identical), so the target is the S3 run's final loss and the others reach it at the same
 * epoch. A second table compares the algorithms (GA-SGD, MA-SGD, ADMM, async-sgd where they apply)
 * on the ps channel: time to a loss target shared by the workload's algorithms, CPU-seconds, cost.
 */
import { mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateCriteoLike, generateHiggsLike, generateRatings, preprocess, train, type TrainParamsInput, type TrainResult } from '../client/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { FASHION_MNIST_DIR } from './data.js';
import { machineInfo } from './machine.js';
import { scratchDir } from './scratch.js';

type Channel = 's3' | 'memcached' | 'ps';
const CHANNELS: readonly Channel[] = ['s3', 'memcached', 'ps'];

interface Workload {
  name: string;
  params: TrainParamsInput;
  /** Algorithms compared on the ps channel (the first is the channel table's). */
  algorithms: Array<{ label: string; params: Partial<TrainParamsInput> }>;
  inQuick: boolean;
}

interface ChannelRow {
  workload: string;
  channel: Channel;
  workers: number;
  target: number;
  reached: boolean;
  seconds: number;
  usd: number;
  cpuSeconds: number;
  finalLoss: number;
  /** Relative to S3: cost(X)/cost(S3) and time(X)/time(S3). */
  cost: number;
  slowdown: number;
}

interface AlgorithmRow {
  workload: string;
  algorithm: string;
  target: number;
  /** Wall seconds to the target (from the evaluation history), null when not reached. */
  secondsToTarget: number | null;
  wallSeconds: number;
  finalLoss: number;
  usd: number;
  cpuSeconds: number;
}

/** LambdaML's published ratios (Table: communication channels; cost, slowdown vs S3). */
const LAMBDAML_PUBLISHED: ReadonlyArray<{ workload: string; memcached: [number, number]; ps: [number, number] }> = [
  { workload: 'LR,Higgs,W=10', memcached: [5, 4.17], ps: [4.7, 3.85] },
  { workload: 'LR,Higgs,W=50', memcached: [4.5, 3.7], ps: [4.47, 3.7] },
  { workload: 'KMeans,Higgs,W=50,k=10', memcached: [1.58, 1.32], ps: [1.48, 1.23] },
  { workload: 'KMeans,Higgs,W=50,k=1K', memcached: [1.43, 1.19], ps: [1.52, 1.27] },
  { workload: 'MobileNet,Cifar10,W=10', memcached: [0.9, 0.77], ps: [4.8, 4.01] },
  { workload: 'MobileNet,Cifar10,W=50', memcached: [0.89, 0.75], ps: [4.85, 4.03] },
];

interface CompareOptions {
  quick?: boolean;
  workers?: number;
  log?: (line: string) => void;
}

async function prepare(work: string, quick: boolean, log: (l: string) => void): Promise<{ fmnist: boolean }> {
  const higgsRows = quick ? 40_000 : 200_000;
  const higgs = join(work, 'higgs.csv');
  log(`bench compare: ${higgsRows} Higgs-like rows`);
  await generateHiggsLike({ rows: higgsRows, seed: 1, file: higgs });
  await preprocess({ input: higgs, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: Math.ceil(higgsRows / 16), split: 0.9, seed: 1 });
  const ratings = join(work, 'ratings.csv');
  const ratingRows = quick ? 40_000 : 120_000;
  log(`bench compare: ${ratingRows} generated ratings`);
  await generateRatings({ rows: ratingRows, seed: 1, file: ratings });
  await preprocess({ input: ratings, format: 'ratings', name: 'ratings', rowsPerShard: Math.ceil(ratingRows / 12), split: 0.85, seed: 1 });
  const criteoRows = quick ? 30_000 : 100_000;
  const criteo = join(work, 'criteo.tsv');
  log(`bench compare: ${criteoRows} Criteo-like rows, 2^18 hashed features`);
  await generateCriteoLike({ rows: criteoRows, seed: 5, file: criteo });
  await preprocess({ input: criteo, format: 'criteo', name: 'criteo', rowsPerShard: Math.ceil(criteoRows / 12), split: 0.9, seed: 3, hash: { columns: Array.from({ length: 26 }, (_, i) => `C${i + 1}`), bits: 18 } });
  const fmnist = !quick && existsSync(FASHION_MNIST_DIR);
  if (fmnist) {
    log('bench compare: Fashion-MNIST');
    await preprocess({ input: FASHION_MNIST_DIR, format: 'fashion-mnist', name: 'fmnist', normalize: 'zscore', rowsPerShard: 5_000 });
  }
  return { fmnist };
}

function workloads(W: number, quick: boolean, fmnist: boolean): Workload[] {
  const linear = (model: 'dense-lr' | 'svm'): Workload => ({
    name: `${model === 'svm' ? 'SVM' : 'LR'}-Higgs`,
    params: { dataset: 'higgs', model, algorithm: 'ga-sgd', workers: W, epochs: quick ? 3 : 5, batchSize: 256, optimizer: 'adam', learningRate: 0.003, l2: 0.001, seed: 0 },
    algorithms: [
      { label: 'GA-SGD', params: {} },
      { label: 'MA-SGD', params: { algorithm: 'ma-sgd' } },
      { label: 'ADMM', params: { algorithm: 'admm', optimizer: 'sgd', learningRate: 0.1, rho: 0.03, admmPasses: 3 } },
      // async-sgd pushes sparse gradients: the SVM has them, dense LR does not.
      ...(model === 'svm' ? [{ label: 'async-sgd', params: { algorithm: 'async-sgd', sync: 'async' } as Partial<TrainParamsInput> }] : []),
    ],
    inQuick: true,
  });
  const kmeans = (k: number): Workload => ({
    name: `KMeans-Higgs k=${k}`,
    params: { dataset: 'higgs', model: 'kmeans', clusters: k, workers: W, epochs: quick ? 3 : 5, batchSize: 4096, seed: 0 },
    algorithms: [{ label: 'Lloyd (BSP)', params: {} }],
    inQuick: true,
  });
  const list: Workload[] = [linear('dense-lr'), linear('svm'), kmeans(10), kmeans(1000)];
  if (fmnist) {
    list.push({
      name: 'MLP-FMNIST',
      params: { dataset: 'fmnist', model: 'mlp', hidden: [128], algorithm: 'ma-sgd', workers: W, epochs: 2, batchSize: 32, optimizer: 'adam', learningRate: 0.001, seed: 0 },
      algorithms: [
        { label: 'MA-SGD', params: {} },
        { label: 'GA-SGD', params: { algorithm: 'ga-sgd' } },
      ],
      inQuick: false,
    });
  }
  list.push({
    name: 'MF-ratings',
    params: { dataset: 'ratings', model: 'mf', factors: 5, algorithm: 'ga-sgd', workers: W, epochs: quick ? 8 : 20, batchSize: 250, optimizer: 'adam', learningRate: 0.01, l2: 0.01, seed: 0 },
    algorithms: [
      { label: 'GA-SGD', params: {} },
      { label: 'MA-SGD', params: { algorithm: 'ma-sgd' } },
      { label: 'async-sgd', params: { algorithm: 'async-sgd', sync: 'async', batchSize: 100, optimizer: 'adagrad', learningRate: 0.1, l2: 0.005 } },
    ],
    inQuick: true,
  });
  list.push({
    name: 'sparse-LR-Criteo',
    params: { dataset: 'criteo', model: 'sparse-lr', algorithm: 'ga-sgd', workers: W, epochs: 2, batchSize: 1000, optimizer: 'adagrad', learningRate: 0.05, seed: 1 },
    algorithms: [
      { label: 'GA-SGD', params: {} },
      { label: 'MA-SGD', params: { algorithm: 'ma-sgd' } },
      { label: 'ADMM', params: { algorithm: 'admm', optimizer: 'adagrad', rho: 0.03, admmPasses: 2 } },
      { label: 'async-sgd', params: { algorithm: 'async-sgd', sync: 'async', batchSize: 200 } },
    ],
    inQuick: true,
  });
  return quick ? list.filter((w) => w.inQuick) : list;
}

/** Seconds from the run's start to the first evaluation at or below `target`. */
function secondsTo(r: TrainResult, target: number): number | null {
  const hit = r.history.find((h) => h.testLoss <= target);
  return hit ? hit.wallSeconds : null;
}

export async function benchCompare(opts: CompareOptions = {}): Promise<{ channels: ChannelRow[]; algorithms: AlgorithmRow[]; table: string; file: string }> {
  const log = opts.log ?? (() => {});
  const quick = opts.quick ?? false;
  const W = opts.workers ?? 4;
  const started = Date.now();
  const work = scratchDir('compare');
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(work, '.cirrus');
  try {
    const { fmnist } = await prepare(work, quick, log);
    const list = workloads(W, quick, fmnist);
    const channelRows: ChannelRow[] = [];
    const algorithmRows: AlgorithmRow[] = [];
    for (const w of list) {
      // Channel table: the workload's first algorithm on each channel, to the S3 run's final loss.
      let target = Infinity;
      let base: { seconds: number; usd: number } | undefined;
      for (const channel of CHANNELS) {
        log(`bench compare: ${w.name} over ${channel}, W = ${W}`);
        const r = await train({ ...w.params, channel, ...(Number.isFinite(target) ? { stop: { targetLoss: target } } : {}) });
        if (!Number.isFinite(target)) target = r.metrics.testLoss * (1 + 1e-6);
        const seconds = secondsTo(r, target) ?? r.metrics.wallSeconds;
        base ??= { seconds, usd: r.cost.usd };
        channelRows.push({
          workload: w.name,
          channel,
          workers: W,
          target,
          reached: secondsTo(r, target) !== null,
          seconds,
          usd: r.cost.usd,
          cpuSeconds: r.cost.cpuSeconds ?? NaN,
          finalLoss: r.metrics.testLoss,
          cost: r.cost.usd / base.usd,
          slowdown: seconds / base.seconds,
        });
      }
      // Algorithm table on ps: every algorithm to the first one's final loss plus 1% (it is their shared target).
      const algTarget = target * 1.01;
      for (const a of w.algorithms) {
        log(`bench compare: ${w.name}, ${a.label} over ps`);
        const r = await train({ ...w.params, ...a.params, channel: 'ps' });
        algorithmRows.push({
          workload: w.name,
          algorithm: a.label,
          target: algTarget,
          secondsToTarget: secondsTo(r, algTarget),
          wallSeconds: r.metrics.wallSeconds,
          finalLoss: r.metrics.testLoss,
          usd: r.cost.usd,
          cpuSeconds: r.cost.cpuSeconds ?? NaN,
        });
      }
    }
    const table = render(channelRows, algorithmRows, W, quick);
    mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
    const file = join(DEFAULT_RESULTS_DIR, `compare${quick ? '-quick' : ''}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    const totalSeconds = (Date.now() - started) / 1000;
    writeFileSync(file, JSON.stringify({ benchmark: 'compare', quick, machine: machineInfo(), workers: W, totalSeconds, channels: channelRows, algorithms: algorithmRows, lambdaml: LAMBDAML_PUBLISHED }, null, 2) + '\n');
    return { channels: channelRows, algorithms: algorithmRows, table: `${table}\n\nbench compare took ${totalSeconds.toFixed(0)} s`, file };
  } finally {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(work, { recursive: true, force: true });
  }
}

function render(ch: ChannelRow[], alg: AlgorithmRow[], W: number, quick: boolean): string {
  const out: string[] = [];
  out.push(`Channels (W = ${W}${quick ? ', --quick' : ''}): time and cost to the S3 run's final test loss; cost = cost(X)/cost(S3), slowdown = time(X)/time(S3)`);
  out.push('workload              channel    target     reached  seconds   cost $      CPU-s   cost  slowdown');
  for (const r of ch) {
    out.push(`${r.workload.padEnd(21)} ${r.channel.padEnd(9)} ${r.target.toPrecision(5).padStart(9)} ${(r.reached ? 'yes' : 'no').padStart(8)} ${r.seconds.toFixed(1).padStart(8)} ${r.usd.toExponential(2).padStart(9)} ${r.cpuSeconds.toFixed(1).padStart(8)} ${r.cost.toFixed(2).padStart(6)} ${r.slowdown.toFixed(2).padStart(9)}`);
  }
  out.push('');
  out.push('LambdaML published (cost, slowdown vs S3; their channels include the ElastiCache / VM start-up):');
  for (const p of LAMBDAML_PUBLISHED) out.push(`  ${p.workload.padEnd(24)} memcached ${p.memcached[0]}, ${p.memcached[1]}   VM-PS ${p.ps[0]}, ${p.ps[1]}`);
  out.push('');
  out.push('Algorithms on the ps channel: wall seconds to a shared loss target (the channel table\'s target + 1%)');
  out.push('workload              algorithm      target   s to target  wall s  final loss   cost $      CPU-s');
  for (const r of alg) {
    out.push(`${r.workload.padEnd(21)} ${r.algorithm.padEnd(12)} ${r.target.toPrecision(5).padStart(9)} ${(r.secondsToTarget === null ? '-' : r.secondsToTarget.toFixed(1)).padStart(12)} ${r.wallSeconds.toFixed(1).padStart(7)} ${r.finalLoss.toPrecision(5).padStart(11)} ${r.usd.toExponential(2).padStart(9)} ${r.cpuSeconds.toFixed(1).padStart(8)}`);
  }
  return out.join('\n');
}
