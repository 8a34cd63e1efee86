/**
 * `cirrus bench kmeans`: Lloyd's k-means on Higgs-like rows, a plain in-process loop (the same
 * kernel, one core, no channel) against cirrus.train with W workers over the parameter server,
 * side by side: wall time of the iterations, and the final test SSE per row (equal up to float
 * rounding, since both start from the same k-means++ centroids).
 */
import { join } from 'node:path';
import { LloydAccumulator, centroidNorms, initialCentroids, moveCentroids, KMeans, type DenseBatch } from '../algorithms/index.js';
import { generateHiggsLike, openStore, preprocess, train } from '../client/index.js';
import { withScratchHome, writeResult } from './scratch.js';

interface KMeansBenchOptions {
  rows?: number;
  k?: number;
  iterations?: number;
  workers?: number[];
  log?: (line: string) => void;
}

interface Row {
  runner: string;
  workers: number;
  seconds: number;
  testSsePerRow: number;
}

export async function benchKMeans(opts: KMeansBenchOptions = {}): Promise<{ rows: Row[]; table: string; file: string }> {
  const log = opts.log ?? (() => {});
  const trainRows = opts.rows ?? 100_000;
  const k = opts.k ?? 1000;
  const iterations = opts.iterations ?? 5;
  const workers = opts.workers ?? [1, 2];
  return withScratchHome('kmeans', async (work) => {
    const file = join(work, 'higgs.csv');
    const total = Math.round(trainRows / 0.9);
    log(`bench kmeans: ${total} Higgs-like rows (90% train), z-scored`);
    await generateHiggsLike({ rows: total, seed: 1, file });
    const m = await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: 10_000, split: 0.9, seed: 1 });
    const out: Row[] = [];
    log(`bench kmeans: plain loop, k = ${k}, ${iterations} iterations`);
    out.push(await plainLloyd(m.features, k, iterations));
    for (const w of workers) {
      log(`bench kmeans: cirrus.train, W = ${w}`);
      const t0 = Date.now();
      const r = await train({ dataset: 'higgs', model: 'kmeans', clusters: k, workers: w, epochs: iterations, batchSize: 2048, seed: 0, channel: 'ps' });
      out.push({ runner: 'cirrus.train (lloyd, ps)', workers: w, seconds: (Date.now() - t0) / 1000, testSsePerRow: r.metrics.testLoss });
    }
    const base = out[0]!.seconds;
    const lines = [
      `k-means, k = ${k}, ${iterations} Lloyd iterations on ${m.trainRows} Higgs-like rows (${m.features} features); test rows ${m.testRows}`,
      'runner                      W   seconds   vs plain   test SSE/row',
      ...out.map((r) => `${r.runner.padEnd(26)} ${String(r.workers).padStart(2)} ${r.seconds.toFixed(1).padStart(9)} ${(r.seconds / base).toFixed(2).padStart(9)}x ${r.testSsePerRow.toFixed(4).padStart(13)}`),
    ];
    const json = writeResult('kmeans', { k, iterations, trainRows: m.trainRows, rows: out });
    return { rows: out, table: lines.join('\n'), file: json };
  });
}

/** The sequential loop: all train rows in memory, the workers' start (leading rows, k-means++, seed 0). */
async function plainLloyd(F: number, k: number, iterations: number): Promise<Row> {
  const handle = await openStore();
  try {
    const t0 = Date.now();
    const manifest = await handle.datasets.manifest('higgs');
    const shards: DenseBatch[] = [];
    for (const ref of manifest.train.shards) {
      const s = await handle.datasets.readShard(ref);
      if (s.kind !== 'dense') throw new Error('bench kmeans: expected dense shards');
      shards.push({ kind: 'dense', rows: s.rows, cols: s.cols, labels: s.labels, x: s.x });
    }
    const want = Math.max(4096, 10 * k);
    const sample = new Float32Array(want * F);
    let have = 0;
    for (const s of shards) {
      if (have >= want) break;
      const take = Math.min(s.rows, want - have);
      sample.set(s.x.subarray(0, take * F), have * F);
      have += take;
    }
    const c = initialCentroids(sample.subarray(0, have * F), have, F, k, 0, 'kmeans++');
    const acc = new LloydAccumulator(k, F);
    const sums = new Float64Array(k * F);
    const counts = new Float64Array(k);
    const cnorm = new Float64Array(k);
    for (let it = 0; it < iterations; it++) {
      sums.fill(0);
      counts.fill(0);
      centroidNorms(c, k, F, cnorm);
      for (const s of shards) acc.add(s, c, cnorm, sums, counts);
      moveCentroids(c, k, F, sums, counts);
    }
    const seconds = (Date.now() - t0) / 1000;
    const model = new KMeans({ type: 'kmeans', features: F, classes: 2, clusters: k });
    let sse = 0;
    let rows = 0;
    for (const ref of manifest.test.shards) {
      const s = await handle.datasets.readShard(ref);
      if (s.kind !== 'dense') continue;
      sse += model.evaluate(s, c).lossSum;
      rows += s.rows;
    }
    return { runner: 'plain loop (one process)', workers: 1, seconds, testSsePerRow: sse / rows };
  } finally {
    await handle.close();
  }
}
