/**
 * The "plain process" row of `cirrus bench train`: one node process that trains the same model
 * with the same kernels, optimizer, batch size and data order as a single cirrus worker, but with
 * no client, launcher, channel or checkpointing. Run as a child process (so node's own start-up
 * counts, as it does for a worker): it reads a PlainSpec as JSON on stdin and prints one JSON
 * PlainReport line on stdout.
 */
import { Evaluator, createModel, enableTfjsKernels, createOptimizer, type Batch, type ModelSpec } from '../algorithms/index.js';
import { DatasetStore, type ShardRef, type Shard, type S3Spec } from '../channels/index.js';
import { ShardIterator } from '../worker/index.js';

export interface PlainSpec {
  store: string | S3Spec;
  dataset: string;
  model: ModelSpec;
  batchSize: number;
  lr: number;
  seed: number;
  epochs: number;
  target: number;
}

export interface PlainReport {
  /** Date.now() of each epoch's evaluation, with its test accuracy. */
  epochs: Array<{ epoch: number; accuracy: number; at: number }>;
  /** Date.now() when the data was in memory and training began. */
  trainingStartedAt: number;
  /** This process's CPU-seconds (user + system, start-up included) when it stopped: at the target or after the last epoch. */
  cpuSeconds?: number;
}

/** The workers' evaluation: the whole test split in slices of 8,192 rows. */
function accuracy(model: ReturnType<typeof createModel>, weights: Float32Array, test: Shard[]): number {
  const ev = new Evaluator(false);
  for (const s of test) {
    if (s.kind !== 'dense') throw new Error('bench train: the plain process handles dense data');
    for (let a = 0; a < s.rows; a += 8192) {
      const b = Math.min(s.rows, a + 8192);
      const batch: Batch = { kind: 'dense', rows: b - a, cols: s.cols, labels: s.labels.subarray(a, b), x: s.x.subarray(a * s.cols, b * s.cols) };
      ev.add(model.evaluate(batch, weights));
    }
  }
  return ev.result().accuracy;
}

export async function runPlain(spec: PlainSpec): Promise<PlainReport> {
  // The worker enables the same tfjs matmuls for the MLP (worker/train.ts).
  if (spec.model.type === 'mlp') await enableTfjsKernels();
  const store = await DatasetStore.open(spec.store);
  const shards = new Map<string, Shard>();
  let test: Shard[];
  let manifest;
  try {
    manifest = await store.manifest(spec.dataset);
    const m = manifest;
    await Promise.all(m.train.shards.map(async (r) => shards.set(r.key, await store.readShard(r))));
    test = await Promise.all(m.test.shards.map((r) => store.readShard(r)));
  } finally {
    await store.close();
  }
  const memory = { readShard: async (r: ShardRef): Promise<Shard> => shards.get(r.key)! };
  const model = createModel(spec.model);
  const optimizer = createOptimizer({ type: 'adam', lr: spec.lr }, model.size);
  const weights = model.init(spec.seed);
  const sum = new Float32Array(model.size);
  const g = new Float32Array(model.size);
  const report: PlainReport = { epochs: [], trainingStartedAt: Date.now() };
  for (let epoch = 0; epoch < spec.epochs; epoch++) {
    // The iterator a lone worker uses (rank 0 of 1, same seed): the same batches in the same order.
    const it = new ShardIterator({ store: memory, manifest, rank: 0, world: 1, epoch, seed: spec.seed, readAhead: 0, order: 'random', batchSize: spec.batchSize });
    for await (const batch of it.batches()) {
      if (batch.kind === 'ratings') throw new Error('bench train: ratings data');
      sum.fill(0);
      model.gradient(batch, weights, sum);
      // The worker's meanGradient with l2 = 0.
      for (let i = 0; i < g.length; i++) g[i] = sum[i]! / batch.rows;
      optimizer.step(weights, g);
    }
    const acc = accuracy(model, weights, test);
    report.epochs.push({ epoch: epoch + 1, accuracy: acc, at: Date.now() });
    if (acc >= spec.target) break;
  }
  const cpu = process.cpuUsage();
  report.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return report;
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const report = await runPlain(JSON.parse(Buffer.concat(chunks).toString('utf8')) as PlainSpec);
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) await main();
