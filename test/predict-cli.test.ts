/**
 * From a raw file to predictions, as a user runs it: real `cirrus` child processes (preprocess,
 * train with worker processes, predict) under a temporary CIRRUS_HOME with the embedded S3 server.
 * The model carries its input pipeline, so `cirrus predict` and `load().predict` on the raw test
 * file reproduce the run's test accuracy exactly.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModel } from '../client/model-io.js';
import { openStore } from '../client/store.js';
import { seededRandom } from '../algorithms/index.js';
import { runCli, type CliRun } from './support/cli.js';
import * as tf from '@tensorflow/tfjs';
import { RowPreparer } from '../client/predict/prepare.js';
import { PREPROCESSING_FILE, preprocessForTfjs, type TfjsPreprocessing } from '../client/predict/tfjs-preprocessing.js';
import type { TfjsModelJson } from '../client/tfjs-export.js';

let home: string;

function cirrus(...args: string[]): Promise<CliRun> {
  return runCli(args, { cwd: home, env: { CIRRUS_HOME: join(home, '.cirrus') }, timeoutMs: 240_000 });
}

const SPECIES = ['setosa', 'versicolor', 'virginica'];
const HEADER = 'sepal_len,sepal_wid,petal_len,petal_wid,species';

/** Three overlapping Gaussian classes with string labels; a header line. */
function flowersCsv(rows: number, seed: number): string {
  const rand = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const lines = [HEADER];
  for (let i = 0; i < rows; i++) {
    const c = Math.floor(rand() * 3);
    const x = [0, 1, 2, 3].map((j) => (10 * j + 1.2 * c + gauss()).toFixed(3));
    lines.push(`${x.join(',')},${SPECIES[c]}`);
  }
  return lines.join('\n') + '\n';
}

interface TrainJson {
  metrics: { testAccuracy: number; testLoss: number };
}

before(() => {
  home = mkdtempSync(join(tmpdir(), 'cirrus-predict-'));
  writeFileSync(join(home, 'flowers.csv'), flowersCsv(1500, 11));
  writeFileSync(join(home, 'flowers-test.csv'), flowersCsv(400, 12));
});
after(() => {
  rmSync(home, { recursive: true, force: true });
});

test('string-label CSV + test CSV -> preprocess -> train (2 workers) -> save -> predict: the same accuracy, from the CLI and from load().predict', async () => {
  const pre = await cirrus('preprocess', 'flowers.csv', '--format', 'csv', '--name', 'flowers', '--test-file', 'flowers-test.csv', '--normalize', 'zscore');
  assert.equal(pre.code, 0, pre.stderr);
  assert.match(pre.stderr, /labels: 3 distinct strings \('setosa', 'versicolor', 'virginica'\), mapped to classes 0\.\.2 in sorted order -> multiclass, 3 classes/);
  assert.match(pre.stderr, /rows per shard: 188 \(so 1500 train rows make 8 shards/);
  assert.match(pre.stdout, /^flowers: dense multiclass, 4 features, 3 classes, 1500 train rows in 8 shards, 400 test rows in 3 shards, transforms: split -> shuffle -> zscore$/m);

  writeFileSync(join(home, 'flowers.json'), JSON.stringify({ dataset: 'flowers', model: 'softmax', workers: 2, epochs: 3, batchSize: 32, optimizer: 'adam', learningRate: 0.05, seed: 1 }));
  const tr = await cirrus('train', 'flowers.json', '--save', 'model', '--tfjs', 'tfjs', '--json');
  assert.equal(tr.code, 0, tr.stderr);
  const run = JSON.parse(tr.stdout) as TrainJson;
  assert.ok(run.metrics.testAccuracy > 0.6, `a learnable problem: test accuracy ${run.metrics.testAccuracy}`);

  const pr = await cirrus('predict', 'model', 'flowers-test.csv', '--json');
  assert.equal(pr.code, 0, pr.stderr);
  const got = JSON.parse(pr.stdout) as { rows: number; labeled: number; accuracy: number; logLoss: number };
  assert.equal(got.rows, 400);
  assert.equal(got.labeled, 400);
  assert.equal(got.accuracy, run.metrics.testAccuracy, 'predict on the raw test file must give the run\'s test accuracy exactly');
  assert.ok(Math.abs(got.logLoss - run.metrics.testLoss) < 1e-9, `log-loss ${got.logLoss} vs ${run.metrics.testLoss}`);

  // Predictions to a file, with probabilities; the human summary on stdout.
  const out = await cirrus('predict', 'model', 'flowers-test.csv', '--out', 'preds.csv', '--proba');
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, `400 rows predicted: accuracy ${(100 * run.metrics.testAccuracy).toFixed(2)}%, log-loss ${run.metrics.testLoss.toFixed(4)}; predictions in preds.csv\n`);
  const preds = readFileSync(join(home, 'preds.csv'), 'utf8').trim().split('\n');
  assert.equal(preds[0], 'label,p_setosa,p_versicolor,p_virginica');
  assert.equal(preds.length, 401);

  // load().predict on raw rows: objects keyed by column (label left out) and raw lines give the
  // labels the CLI wrote, and the same accuracy.
  const model = await loadModel(join(home, 'model'));
  assert.deepEqual(model.pipeline?.labelNames, SPECIES);
  const lines = readFileSync(join(home, 'flowers-test.csv'), 'utf8').trim().split('\n').slice(1);
  const objects = lines.map((l) => {
    const c = l.split(',');
    return { sepal_len: c[0]!, sepal_wid: c[1]!, petal_len: Number(c[2]), petal_wid: c[3]! };
  });
  const byObject = model.predict(objects);
  const byLine = model.predict(lines);
  assert.deepEqual(byObject.labels, preds.slice(1).map((p) => p.split(',')[0]));
  assert.deepEqual(byLine.labels, byObject.labels);
  const correct = byLine.labels.filter((l, i) => l === lines[i]!.split(',')[4]).length;
  assert.equal(correct / lines.length, run.metrics.testAccuracy);
  for (const p of byLine.probabilities) assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-5);
});

test('the tfjs export with its preprocessing.json gives the same predictions from the same raw rows', async () => {
  await tf.setBackend('cpu');
  const pre = JSON.parse(readFileSync(join(home, 'tfjs', PREPROCESSING_FILE), 'utf8')) as TfjsPreprocessing;
  assert.equal(pre.format, 'cirrus-preprocessing');
  assert.deepEqual(pre.pipeline.labelNames, SPECIES);
  const json = JSON.parse(readFileSync(join(home, 'tfjs', 'model.json'), 'utf8')) as TfjsModelJson;
  const bytes = readFileSync(join(home, 'tfjs', 'weights.bin'));
  const tfModel = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0]!.weights, weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }));
  const lines = readFileSync(join(home, 'flowers-test.csv'), 'utf8').trim().split('\n').slice(1);
  const input = preprocessForTfjs(pre, lines);
  // The helper's input is bit for bit what the model's own pipeline feeds it.
  const model = await loadModel(join(home, 'model'));
  const prepared = new RowPreparer(model.pipeline!).prepare(lines).batch;
  assert.deepEqual(input.x, (prepared as { x: Float32Array }).x);
  const t = tf.tensor2d(input.x, [input.rows, input.cols]);
  const out = tfModel.predict(t) as tf.Tensor;
  const probs = (await out.data()) as Float32Array;
  t.dispose();
  out.dispose();
  const ours = model.predict(lines);
  for (let i = 0; i < lines.length; i++) {
    const row = Array.from(probs.subarray(i * 3, i * 3 + 3));
    const best = row.indexOf(Math.max(...row));
    assert.equal(SPECIES[best], ours.labels[i], `row ${i}`);
    row.forEach((p, c) => assert.ok(Math.abs(p - ours.probabilities[i]![c]!) < 1e-5, `row ${i} class ${c}: tfjs ${p} vs ${ours.probabilities[i]![c]}`));
  }
});

test('predict refuses a file with the wrong columns, naming the file, the line and what was expected', async () => {
  writeFileSync(join(home, 'wrong-header.csv'), 'sepal_len,sepal_wid,petal_length,petal_wid\n1,2,3,4\n');
  const a = await cirrus('predict', 'model', 'wrong-header.csv');
  assert.equal(a.code, 1);
  assert.equal(
    a.stderr,
    "cirrus: INPUT_COLUMNS: wrong-header.csv:1: expected the columns the model was trained on (sepal_len,sepal_wid,petal_len,petal_wid,species; the label 'species' may be left out), found sepal_len,sepal_wid,petal_length,petal_wid: missing 'petal_len'; unknown 'petal_length'\n",
  );
  writeFileSync(join(home, 'short-row.csv'), `${HEADER}\n1,2,3,4,setosa\n1,2,3\n`);
  const b = await cirrus('predict', 'model', 'short-row.csv');
  assert.equal(b.code, 1);
  assert.match(b.stderr, /^cirrus: INPUT_COLUMNS: short-row\.csv:3: expected the 5 columns the model was trained on \(sepal_len,sepal_wid,petal_len,petal_wid,species\), or 4 without the label 'species'; found 3 columns\n$/);
  writeFileSync(join(home, 'unknown-label.csv'), `${HEADER}\n1,2,3,4,rose\n`);
  const c = await cirrus('predict', 'model', 'unknown-label.csv');
  assert.equal(c.code, 1);
  assert.match(c.stderr, /^cirrus: INPUT_LABEL: unknown-label\.csv:2: column 5 \('species'\): expected one of the training labels 'setosa', 'versicolor', 'virginica', found 'rose'\n$/);
});

test('predict with a truncated or corrupt model names the model file and what it expected', async () => {
  const copy = (name: string, edit: (dir: string) => void) => {
    const dir = join(home, name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    for (const f of ['model.json', 'weights.bin']) writeFileSync(join(dir, f), readFileSync(join(home, 'model', f)));
    edit(dir);
    return dir;
  };
  copy('truncated-weights', (dir) => {
    const w = readFileSync(join(dir, 'weights.bin'));
    writeFileSync(join(dir, 'weights.bin'), w.subarray(0, w.length - 7));
  });
  const a = await cirrus('predict', 'truncated-weights', 'flowers-test.csv');
  assert.equal(a.code, 1);
  assert.match(a.stderr, /^cirrus: MODEL_FORMAT: .*truncated-weights\/weights\.bin: .*\(expected the float32 tensor frame cirrus\.save writes; the file is truncated or corrupt\)\n$/);
  copy('truncated-json', (dir) => {
    const j = readFileSync(join(dir, 'model.json'), 'utf8');
    writeFileSync(join(dir, 'model.json'), j.slice(0, 100));
  });
  const b = await cirrus('predict', 'truncated-json', 'flowers-test.csv');
  assert.equal(b.code, 1);
  assert.match(b.stderr, /^cirrus: MODEL_FORMAT: .*truncated-json\/model\.json: line \d+, column \d+: not JSON: .*\(expected the JSON manifest cirrus\.save writes; the file is truncated or corrupt\)\n$/);
  copy('bad-pipeline', (dir) => {
    const j = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { pipeline: { csv: { columns: unknown } } };
    j.pipeline.csv.columns = 'five';
    writeFileSync(join(dir, 'model.json'), JSON.stringify(j));
  });
  const c = await cirrus('predict', 'bad-pipeline', 'flowers-test.csv');
  assert.equal(c.code, 1);
  assert.match(c.stderr, /^cirrus: MODEL_FORMAT: .*bad-pipeline\/model\.json: pipeline\.csv\.columns: .*number.*\n$/i);
});

test('integer labels 0..9 are 10 classes (printed); --task regression overrides; a misfit names --task', async () => {
  const rand = seededRandom(5);
  const rows = ['a,b,digit', ...Array.from({ length: 600 }, (_, i) => `${rand().toFixed(4)},${rand().toFixed(4)},${i % 10}`)];
  writeFileSync(join(home, 'digits.csv'), rows.join('\n') + '\n');
  const cls = await cirrus('preprocess', 'digits.csv', '--format', 'csv', '--name', 'digits');
  assert.equal(cls.code, 0, cls.stderr);
  assert.match(cls.stderr, /^labels: 10 distinct integers 0\.\.9 -> multiclass, 10 classes \(pass --task to choose otherwise\)$/m);
  assert.match(cls.stdout, /^digits: dense multiclass, 2 features, 10 classes/m);
  const reg = await cirrus('preprocess', 'digits.csv', '--format', 'csv', '--name', 'digits-reg', '--task', 'regression');
  assert.equal(reg.code, 0, reg.stderr);
  assert.match(reg.stderr, /^labels: 10 distinct integers, .* -> regression \(--task regression given; the labels alone would be classes\)$/m);
  assert.match(reg.stdout, /^digits-reg: dense regression, 2 features, \d+ train rows/m);
  writeFileSync(join(home, 'reg.json'), JSON.stringify({ dataset: 'digits-reg', model: 'softmax', workers: 1, epochs: 1 }));
  const misfit = await cirrus('train', 'reg.json');
  assert.equal(misfit.code, 1);
  assert.match(misfit.stderr, /TRAIN_MISFIT: .*--task multiclass/);
});

test('stratified split: every class keeps its share of the test split within one row', async () => {
  // Unbalanced classes, sorted by class so a split by file position would be badly off.
  const counts = [700, 200, 90, 10];
  const rows = ['x,y,kind'];
  counts.forEach((n, c) => {
    for (let i = 0; i < n; i++) rows.push(`${i},${c * 2 + (i % 3)},k${c}`);
  });
  writeFileSync(join(home, 'unbalanced.csv'), rows.join('\n') + '\n');
  const pre = await cirrus('preprocess', 'unbalanced.csv', '--format', 'csv', '--name', 'unbalanced', '--split', '0.8', '--seed', '3');
  assert.equal(pre.code, 0, pre.stderr);
  assert.match(pre.stderr, /^split: stratified by class, 80% train$/m);
  const store = await openStore(undefined, join(home, '.cirrus'));
  try {
    const m = await store.datasets.manifest('unbalanced');
    const test = new Map<number, number>();
    for (const ref of m.test.shards) {
      const shard = await store.datasets.readShard(ref);
      if (shard.kind === 'ratings') continue;
      for (const l of shard.labels) test.set(l, (test.get(l) ?? 0) + 1);
    }
    const total = counts.reduce((a, b) => a + b, 0);
    assert.equal(m.testRows, [...test.values()].reduce((a, b) => a + b, 0));
    counts.forEach((n, c) => {
      const share = (n * m.testRows) / total;
      const got = test.get(c) ?? 0;
      assert.ok(Math.abs(got - share) <= 1, `class k${c}: ${got} test rows, its share is ${share}`);
    });
  } finally {
    await store.close();
  }
});

test('a hashed Criteo-like model predicts raw TSV lines: the CLI on the raw test file and load().predict agree with the run', async () => {
  for (const [file, rows, seed] of [['clicks.tsv', 3000, 7], ['clicks-test.tsv', 800, 8]] as const) {
    const g = await cirrus('datasets', 'generate', 'criteo', file, '--rows', String(rows), '--seed', String(seed));
    assert.equal(g.code, 0, g.stderr);
  }
  const cats = Array.from({ length: 26 }, (_, i) => `C${i + 1}`).join(',');
  const pre = await cirrus('preprocess', 'clicks.tsv', '--format', 'criteo', '--name', 'clicks', '--hash', `${cats}:14`, '--test-file', 'clicks-test.tsv', '--shard-rows', '1500');
  assert.equal(pre.code, 0, pre.stderr);
  writeFileSync(join(home, 'clicks.json'), JSON.stringify({ dataset: 'clicks', model: 'sparse-lr', workers: 2, epochs: 2, batchSize: 100, optimizer: 'adagrad', learningRate: 0.05 }));
  const tr = await cirrus('train', 'clicks.json', '--save', 'clicks-model', '--tfjs', 'clicks-tfjs', '--json');
  assert.equal(tr.code, 0, tr.stderr);
  const run = JSON.parse(tr.stdout) as TrainJson;
  const pr = await cirrus('predict', 'clicks-model', 'clicks-test.tsv', '--json');
  assert.equal(pr.code, 0, pr.stderr);
  const got = JSON.parse(pr.stdout) as { rows: number; accuracy: number };
  assert.equal(got.rows, 800);
  assert.equal(got.accuracy, run.metrics.testAccuracy);
  // Raw lines in process, with and without their label column.
  const model = await loadModel(join(home, 'clicks-model'));
  const lines = readFileSync(join(home, 'clicks-test.tsv'), 'utf8').trim().split('\n');
  const withLabel = model.predict(lines);
  const withoutLabel = model.predict(lines.map((l) => l.slice(l.indexOf('\t') + 1)));
  assert.deepEqual(withoutLabel.probabilities, withLabel.probabilities);
  const correct = withLabel.classes.filter((c, i) => String(c) === lines[i]!.split('\t')[0]).length;
  assert.equal(correct / lines.length, run.metrics.testAccuracy);
  // The tfjs export hashes raw lines through preprocessing.json the same way.
  await tf.setBackend('cpu');
  const preJson = JSON.parse(readFileSync(join(home, 'clicks-tfjs', PREPROCESSING_FILE), 'utf8')) as TfjsPreprocessing;
  const json = JSON.parse(readFileSync(join(home, 'clicks-tfjs', 'model.json'), 'utf8')) as TfjsModelJson;
  const bytes = readFileSync(join(home, 'clicks-tfjs', 'weights.bin'));
  const tfModel = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0]!.weights, weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }));
  const some = lines.slice(0, 100);
  const input = preprocessForTfjs(preJson, some);
  const t = tf.tensor2d(input.x, [input.rows, input.cols]);
  const out = tfModel.predict(t) as tf.Tensor;
  const p1 = (await out.data()) as Float32Array;
  t.dispose();
  out.dispose();
  some.forEach((_, i) => {
    assert.ok(Math.abs(p1[i]! - withLabel.probabilities[i]![1]!) < 1e-5, `row ${i}: tfjs ${p1[i]} vs ${withLabel.probabilities[i]![1]}`);
    assert.equal(p1[i]! > 0.5 ? 1 : 0, withLabel.classes[i]);
  });
});
