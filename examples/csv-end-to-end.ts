/**
 * From a raw file to predictions: a CSV with a header and string labels, plus a test CSV of its
 * own -> preprocess (labels inferred and printed, z-score fitted on the train file only) -> train
 * with 2 workers -> save -> load -> predict on the raw test rows -> the run's test accuracy again.
 *
 *   npm run build && node dist/examples/csv-end-to-end.js
 *
 * The model carries its input pipeline (columns, class names, the z-score statistics), so
 * `predict` takes rows as they are in the file: lines, arrays of cells, or objects by column name.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import cirrus, { cirrusHome } from '../client/index.js';

const SPECIES = ['setosa', 'versicolor', 'virginica'];

/** A seeded Iris-like CSV: four measurements, the species as a string label. */
function writeCsv(file: string, rows: number, seed: number): void {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const lines = ['sepal_length,sepal_width,petal_length,petal_width,species'];
  for (let i = 0; i < rows; i++) {
    const c = Math.floor(rand() * 3);
    const x = [5 + 0.8 * c, 3.4 - 0.3 * c, 1.5 + 2.2 * c, 0.3 + 0.9 * c].map((m) => (m + 0.9 * gauss()).toFixed(2));
    lines.push(`${x.join(',')},${SPECIES[c]}`);
  }
  writeFileSync(file, lines.join('\n') + '\n');
}

async function main(): Promise<void> {
  const dir = join(cirrusHome(), 'examples');
  mkdirSync(dir, { recursive: true });
  const trainFile = join(dir, 'flowers-train.csv');
  const testFile = join(dir, 'flowers-test.csv');
  writeCsv(trainFile, 3000, 7);
  writeCsv(testFile, 600, 8);
  console.log(`wrote ${trainFile} and ${testFile}`);

  const manifest = await cirrus.preprocess({
    input: trainFile,
    testFile,
    format: 'csv',
    name: 'flowers',
    normalize: 'zscore',
    overwrite: true,
    onNote: (note) => console.log(`  ${note}`),
  });
  console.log(`preprocessed: ${manifest.task}, classes ${manifest.labelNames?.join(', ')}; ${manifest.trainRows} train rows in ${manifest.train.shards.length} shards, ${manifest.testRows} test rows`);

  const result = await cirrus.train({ dataset: 'flowers', model: 'softmax', workers: 2, epochs: 4, batchSize: 32, optimizer: 'adam', learningRate: 0.05, seed: 1 });
  console.log(`trained: test accuracy ${(100 * result.metrics.testAccuracy).toFixed(2)}% in ${result.metrics.wallSeconds.toFixed(1)} s`);

  const modelDir = join(dir, 'flowers-model');
  await cirrus.save(result.model, modelDir);
  const model = await cirrus.load(modelDir);

  // Raw rows, as the test file has them: objects keyed by column (the label is left out here).
  const lines = readFileSync(testFile, 'utf8').trim().split('\n');
  const header = lines[0]!.split(',');
  const rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').slice(0, 4).map((v, i) => [header[i]!, v])));
  const truth = lines.slice(1).map((l) => l.split(',')[4]);
  const predicted = model.predict(rows);
  const correct = predicted.labels.filter((label, i) => label === truth[i]).length;
  const accuracy = correct / rows.length;
  console.log(`first row: ${JSON.stringify(rows[0])} -> ${predicted.labels[0]} (p = ${predicted.probabilities[0]!.map((p) => p.toFixed(3)).join(', ')})`);
  console.log(`loaded model on the raw test rows: accuracy ${(100 * accuracy).toFixed(2)}% (${correct}/${rows.length})`);
  if (accuracy !== result.metrics.testAccuracy) throw new Error(`expected the run's test accuracy ${result.metrics.testAccuracy}, got ${accuracy}`);
  console.log('the same accuracy as the run reported');
}

main().catch((e: unknown) => {
  const err = e as Error & { code?: string };
  console.error(`${err.code ? `${err.code}: ` : ''}${err.message}`);
  process.exit(1);
});
