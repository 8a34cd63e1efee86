/**
 * The "plain" side of `cirrus bench overhead`: what a user would write without cirrus, in one node
 * process: parse the CSV, z-score the features with the train rows' statistics, train the same
 * dense logistic regression (same optimizer, batch size and epochs) on the first 90% of the rows
 * and evaluate on the rest. Run as a child, timed from its spawn to its exit; prints one JSON line.
 */
import { Evaluator, createModel, createOptimizer, CsvParser } from '../algorithms/index.js';

export interface OverheadPlainSpec {
  file: string;
  labelColumn: number;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]!) as OverheadPlainSpec;
  const xs: number[][] = [];
  const ys: number[] = [];
  const parser = new CsvParser(spec.file, { labelColumn: spec.labelColumn });
  for await (const batch of parser.rowBatches()) for (const r of batch) (xs.push(Array.from(r.x)), ys.push(r.label));
  const F = xs[0]!.length;
  const nTrain = Math.round(xs.length * 0.9);
  const mean = new Float64Array(F);
  const std = new Float64Array(F);
  for (let i = 0; i < nTrain; i++) for (let j = 0; j < F; j++) mean[j] += xs[i]![j]! / nTrain;
  for (let i = 0; i < nTrain; i++) for (let j = 0; j < F; j++) std[j] += (xs[i]![j]! - mean[j]!) ** 2 / nTrain;
  const x = new Float32Array(xs.length * F);
  xs.forEach((row, i) => row.forEach((v, j) => (x[i * F + j] = std[j]! > 0 ? (v - mean[j]!) / Math.sqrt(std[j]!) : 0)));
  const labels = Float32Array.from(ys);
  const model = createModel({ type: 'dense-lr', features: F, classes: 2 });
  const optimizer = createOptimizer({ type: 'adam', lr: spec.lr }, model.size);
  const weights = model.init(spec.seed);
  const sum = new Float32Array(model.size);
  const g = new Float32Array(model.size);
  let accuracy = NaN;
  for (let epoch = 0; epoch < spec.epochs; epoch++) {
    for (let a = 0; a < nTrain; a += spec.batchSize) {
      const b = Math.min(nTrain, a + spec.batchSize);
      sum.fill(0);
      model.gradient({ kind: 'dense', rows: b - a, cols: F, labels: labels.subarray(a, b), x: x.subarray(a * F, b * F) }, weights, sum);
      for (let i = 0; i < g.length; i++) g[i] = sum[i]! / (b - a);
      optimizer.step(weights, g);
    }
    const ev = new Evaluator(false);
    ev.add(model.evaluate({ kind: 'dense', rows: xs.length - nTrain, cols: F, labels: labels.subarray(nTrain), x: x.subarray(nTrain * F) }, weights));
    accuracy = ev.result().accuracy;
  }
  process.stdout.write(JSON.stringify({ accuracy }) + '\n', () => process.exit(0));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) await main();
