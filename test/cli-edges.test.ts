/**
 * Rough edges a new user hits on the command line, through real `cirrus` processes: --set of a
 * nested key, malformed config JSON, a dataset name clash, a dataset without test rows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModel } from '../client/model-io.js';
import { applyOverrides, parseTrainParams } from '../client/train-params.js';
import { runCli, type CliRun } from './support/cli.js';

let home: string;

function cirrus(...args: string[]): Promise<CliRun> {
  return runCli(args, { cwd: home, env: { CIRRUS_HOME: join(home, '.cirrus') }, timeoutMs: 180_000 });
}

before(() => {
  home = mkdtempSync(join(tmpdir(), 'cirrus-edges-'));
  const rows = ['a,b,y', ...Array.from({ length: 400 }, (_, i) => `${(i % 17) / 17},${(i % 5) / 5},${(i % 17) / 17 + (i % 5) / 5 > 1 ? 1 : 0}`)];
  writeFileSync(join(home, 'small.csv'), rows.join('\n') + '\n');
});
after(() => {
  rmSync(home, { recursive: true, force: true });
});

test('--set launcher.timeoutS=60 keeps the launcher\'s other defaults (its type and memory)', async () => {
  const params = parseTrainParams(applyOverrides({ dataset: 'd', model: 'dense-lr' }, ['launcher.timeoutS=60']));
  assert.deepEqual(params.launcher, { type: 'local', memoryMb: 2048, timeoutS: 60 });
  // A launcher the config gives is changed in place, not replaced.
  const given = parseTrainParams(applyOverrides({ dataset: 'd', model: 'dense-lr', launcher: { type: 'local', memoryMb: 1024 } }, ['launcher.timeoutS=30']));
  assert.deepEqual(given.launcher, { type: 'local', memoryMb: 1024, timeoutS: 30 });

  const pre = await cirrus('preprocess', 'small.csv', '--format', 'csv', '--name', 'small');
  assert.equal(pre.code, 0, pre.stderr);
  writeFileSync(join(home, 'small.json'), JSON.stringify({ dataset: 'small', model: 'dense-lr', workers: 2, epochs: 1 }));
  const tr = await cirrus('train', 'small.json', '--set', 'launcher.timeoutS=60', '--set', 'workers=2', '--json');
  assert.equal(tr.code, 0, tr.stderr);
  assert.equal((JSON.parse(tr.stdout) as { metrics: { epochs: number } }).metrics.epochs, 1);
});

test('a malformed config names its line and column', async () => {
  writeFileSync(join(home, 'bad.json'), '{\n  "dataset": "small",\n  "model" "dense-lr"\n}\n');
  const r = await cirrus('train', 'bad.json');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^cirrus: TRAIN_PARAMS: bad\.json: line 3, column 11: not JSON: /);
  writeFileSync(join(home, 'list.json'), '[1, 2]\n');
  const l = await cirrus('train', 'list.json');
  assert.equal(l.stderr, 'cirrus: TRAIN_PARAMS: list.json: expected a JSON object of training params, found an array\n');
});

test('a name clash says --overwrite, as the command line spells it', async () => {
  const again = await cirrus('preprocess', 'small.csv', '--format', 'csv', '--name', 'small');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists in .*; pass --overwrite to replace it/);
  assert.doesNotMatch(again.stderr, /overwrite: true/);
});

test('no test rows: a warning at preprocess, an error for a run with a target accuracy', async () => {
  const pre = await cirrus('preprocess', 'small.csv', '--format', 'csv', '--name', 'all-train', '--split', '1');
  assert.equal(pre.code, 0, pre.stderr);
  assert.match(pre.stderr, /^warning: 'all-train' has no test rows, so runs report no test accuracy and cannot stop at a target accuracy or loss \(use --split below 1 or --test-file\)$/m);
  writeFileSync(join(home, 'target.json'), JSON.stringify({ dataset: 'all-train', model: 'dense-lr', workers: 1, epochs: 1, stop: { targetAccuracy: 0.9 } }));
  const tr = await cirrus('train', 'target.json');
  assert.equal(tr.code, 1);
  assert.match(tr.stderr, /^cirrus: TRAIN_PARAMS: params\.stop\.targetAccuracy: dataset 'all-train' has no test rows, so the target is never measured; /);
  // Without a target it trains and says there is no accuracy rather than NaN%.
  const plain = await cirrus('train', 'target.json', '--set', 'stop={}');
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /none \(no test rows\)/);
  assert.doesNotMatch(plain.stdout + plain.stderr, /NaN%/);
});

test('k-means and MF runs report what they measure: no accuracy for k-means (its predictions are clusters), the test RMSE for MF', async () => {
  const pre = await cirrus('preprocess', 'small.csv', '--format', 'csv', '--name', 'km', '--shard-rows', '100');
  assert.equal(pre.code, 0, pre.stderr);
  writeFileSync(join(home, 'km.json'), JSON.stringify({ dataset: 'km', model: 'kmeans', clusters: 3, workers: 2, epochs: 2 }));
  const km = await cirrus('train', 'km.json', '--save', 'km-model');
  assert.equal(km.code, 0, km.stderr);
  assert.match(km.stderr, /^epoch 2: test loss \d+\.\d{4} \(\d+\.\d s\)$/m);
  assert.match(km.stdout, /^job +time s +test loss +train loss +epochs/m);
  assert.doesNotMatch(km.stdout + km.stderr, /accuracy/);

  // Predicting with it gives each row its nearest centroid and the mean squared distance, as
  // computed here from the saved centroids; not labels, accuracy or probabilities.
  const pr = await cirrus('predict', 'km-model', 'small.csv', '--out', 'clusters.csv', '--json');
  assert.equal(pr.code, 0, pr.stderr);
  const report = JSON.parse(pr.stdout) as { rows: number; ssePerRow: number; accuracy?: number };
  const centroids = (await loadModel(join(home, 'km-model'))).centroids();
  const rows = readFileSync(join(home, 'small.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').slice(0, 2).map(Number));
  let sse = 0;
  const nearest = rows.map((x) => {
    const d = centroids.map((c) => (x[0]! - c[0]!) ** 2 + (x[1]! - c[1]!) ** 2);
    const j = d.indexOf(Math.min(...d));
    sse += d[j]!;
    return j;
  });
  assert.equal(report.rows, 400);
  assert.equal(report.accuracy, undefined);
  assert.ok(Math.abs(report.ssePerRow - sse / rows.length) < 1e-4, `${report.ssePerRow} vs ${sse / rows.length}`);
  assert.deepEqual(readFileSync(join(home, 'clusters.csv'), 'utf8').trim().split('\n'), ['cluster', ...nearest.map(String)]);
  const proba = await cirrus('predict', 'km-model', 'small.csv', '--proba');
  assert.equal(proba.code, 1);
  assert.match(proba.stderr, /^cirrus: MODEL_QUERY: --proba: a k-means model assigns each row a cluster id; it has no class probabilities$/m);

  const gen = await cirrus('datasets', 'generate', 'ratings', 'r.csv', '--rows', '3000');
  assert.equal(gen.code, 0, gen.stderr);
  const preR = await cirrus('preprocess', 'r.csv', '--format', 'ratings', '--name', 'r', '--shard-rows', '1000');
  assert.equal(preR.code, 0, preR.stderr);
  writeFileSync(join(home, 'mf.json'), JSON.stringify({ dataset: 'r', model: 'mf', factors: 2, workers: 2, epochs: 2 }));
  const mf = await cirrus('train', 'mf.json');
  assert.equal(mf.code, 0, mf.stderr);
  const line = /^epoch 2: test loss (\d+\.\d{4}), test RMSE (\d+\.\d{4}) \(/m.exec(mf.stderr);
  assert.ok(line, mf.stderr);
  // The RMSE is the root of the test loss (the mean squared error), both as printed.
  assert.ok(Math.abs(Math.sqrt(Number(line[1])) - Number(line[2])) < 1e-3, line[0]);
  assert.match(mf.stdout, /^job +time s +test RMSE +test loss/m);
  assert.doesNotMatch(mf.stdout + mf.stderr, /accuracy/);
});
