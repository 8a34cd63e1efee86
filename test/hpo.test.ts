/**
 * Hyperparameter search end to end: real worker processes (local launcher), the embedded S3
 * server under a temporary CIRRUS_HOME, a small Higgs-like dataset.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateHiggsLike } from '../client/datasets/generate.js';
import { readJobRecord } from '../client/job-record.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { openStore } from '../client/store.js';
import cirrus, { SuccessiveHalving, expandGrid, readSearchState, sampleSpace, type SearchEvent, type TrialState } from '../hpo/index.js';

let home: string;
const oldHome = process.env.CIRRUS_HOME;

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'cirrus-hpo-'));
  process.env.CIRRUS_HOME = join(home, '.cirrus');
  const file = join(home, 'higgs.csv');
  await generateHiggsLike({ rows: 1_500, seed: 3, file });
  await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: 300, seed: 1 });
});

after(() => {
  if (oldHome === undefined) delete process.env.CIRRUS_HOME;
  else process.env.CIRRUS_HOME = oldHome;
  rmSync(home, { recursive: true, force: true });
});

const base = { dataset: 'higgs', model: 'dense-lr', workers: 1, epochs: 2, batchSize: 32, optimizer: 'sgd', seed: 5 } as const;

test('a 2x2 grid runs 4 isolated trials, sorted by the objective, with top(k), saved state and job records', async () => {
  const search = cirrus.gridSearch({ base, grid: { learningRate: [0.05, 0.01], batchSize: [32, 64] }, maxConcurrentTrials: 2 });
  const statuses: string[] = [];
  search.on('update', (e: SearchEvent) => e.type === 'trial' && statuses.push(`${e.trial.id}:${e.trial.status}`));
  const r = await search.done;
  assert.equal(r.status, 'done');
  assert.deepEqual(r.trials.map((t) => t.status), ['done', 'done', 'done', 'done']);
  const byId = [...r.trials].sort((a, b) => a.id.localeCompare(b.id));
  assert.deepEqual(byId.map((t) => t.params), [
    { learningRate: 0.05, batchSize: 32 },
    { learningRate: 0.05, batchSize: 64 },
    { learningRate: 0.01, batchSize: 32 },
    { learningRate: 0.01, batchSize: 64 },
  ]);
  assert.equal(new Set(r.trials.map((t) => t.jobId)).size, 4);
  const accuracies = r.trials.map((t) => t.metrics!.testAccuracy);
  assert.deepEqual(accuracies, [...accuracies].sort((a, b) => b - a));
  assert.deepEqual(r.top(2), r.trials.slice(0, 2));
  assert.equal(r.best, r.trials[0]);
  for (const t of r.trials) {
    assert.equal(t.history.length, 2);
    assert.equal(t.epoch, 2);
    assert.ok(t.cost!.workerSeconds > 0);
  }
  for (const id of ['t000', 't001', 't002', 't003']) assert.ok(statuses.indexOf(`${id}:running`) < statuses.indexOf(`${id}:done`));

  const store = await openStore();
  try {
    const state = await readSearchState(store.objects, search.searchId);
    assert.equal(state.status, 'done');
    assert.equal(state.kind, 'grid');
    assert.deepEqual(state.objective, { metric: 'testAccuracy', mode: 'max' });
    assert.deepEqual(state.trials.map((t) => t.id), ['t000', 't001', 't002', 't003']);
    assert.deepEqual(state.trials.map((t) => t.jobId).sort(), r.trials.map((t) => t.jobId).sort());
    for (const t of r.trials) {
      const record = await readJobRecord(store.objects, t.jobId!);
      assert.equal(record!.status, 'done');
      assert.equal(record!.history.length, 2);
      assert.deepEqual(record!.metrics, t.metrics);
    }
    // Isolation: no trial left a key behind in the store's job space.
    assert.deepEqual(await store.objects.list('job/'), []);
  } finally {
    await store.close();
  }
});

test('kill(trialId) stops a running trial and frees its workers for the next pending trial', async () => {
  const search = cirrus.gridSearch({ base, grid: { epochs: [500, 2] }, workerBudget: 1 });
  search.on('update', (e: SearchEvent) => {
    if (e.type === 'epoch' && e.trial.id === 't000' && e.logs.epoch === 1) search.kill('t000');
  });
  const r = await search.done;
  const [t0, t1] = ['t000', 't001'].map((id) => r.trials.find((t) => t.id === id)!) as [TrialState, TrialState];
  assert.equal(t0.status, 'killed');
  assert.equal(t0.epoch, 1);
  assert.equal(t0.metrics!.epochs, 1);
  assert.equal(t1.status, 'done');
  // The budget holds one trial's workers: t001 could start only once t000's were gone.
  assert.ok(Date.parse(t1.startedAt!) >= Date.parse(t0.endedAt!));
  assert.equal(r.best!.id, 't001');
  assert.equal(search.kill('t000'), false);
});

test('a trial that fails at train time is recorded as failed while the others finish', async () => {
  const r = await cirrus.gridSearch({ base, grid: { model: ['dense-lr', 'softmax', 'svm'] } }).done;
  const byId = Object.fromEntries(r.trials.map((t) => [t.id, t]));
  assert.equal(byId.t000!.status, 'done');
  assert.equal(byId.t002!.status, 'done');
  assert.equal(byId.t001!.status, 'failed');
  assert.match(byId.t001!.error!, /^params\.model: softmax does not fit dataset 'higgs' \(dense, binary\): it needs a multiclass dataset/);
  assert.equal(r.trials[2]!.id, 't001');
});

test('successive halving prunes by its documented rule (one trial at a time: deterministic)', async () => {
  const grid = { learningRate: [0.05, 0.00001, 0.000001, 0.03] };
  const r = await cirrus.gridSearch({ base: { ...base, epochs: 3 }, grid, maxConcurrentTrials: 1, earlyStopping: { successiveHalving: { minEpochs: 1, reduction: 2 } } }).done;
  const byId = [...r.trials].sort((a, b) => a.id.localeCompare(b.id));
  // Replay the rule on the values each trial had at the rungs (epochs 1 and 2), in arrival order.
  const sh = new SuccessiveHalving({ minEpochs: 1, reduction: 2 }, r.objective);
  const expected = byId.map(() => 'done');
  for (const rung of [1, 2]) {
    byId.forEach((t, i) => {
      if (expected[i] !== 'done') return;
      const row = t.history.find((h) => h.epoch === rung)!;
      if (sh.report(t.id, rung, row.testAccuracy) === 'prune') expected[i] = `pruned@${rung}`;
    });
  }
  assert.deepEqual(byId.map((t) => (t.status === 'pruned' ? `pruned@${t.epoch}` : t.status)), expected);
  // t001 (learning rate 1e-5) reaches epoch 1 second, behind t000 (0.05): floor(2/2) = 1 kept.
  assert.equal(byId[1]!.status, 'pruned');
  assert.equal(byId[1]!.epoch, 1);
  assert.equal(byId[0]!.status, 'done');
  assert.equal(r.best!.id, 't000');
});

test('the halving rule: rungs, the first arrivals, top 1/reduction, ties to the earlier trial', () => {
  const sh = new SuccessiveHalving({ minEpochs: 2, reduction: 3 }, { metric: 'testAccuracy', mode: 'max' });
  assert.deepEqual(sh.rungsFor(20), [2, 6, 18]);
  assert.equal(sh.isRung(6, 20), true);
  assert.equal(sh.isRung(4, 20), false);
  assert.equal(sh.isRung(18, 18), false);
  const decisions = ['t000', 't001', 't002', 't003', 't004', 't005'].map((id, i) => sh.report(id, 2, [0.5, 0.9, 0.7, 0.95, 0.6, 0.9][i]!));
  assert.deepEqual(decisions, [
    'continue', // n=1 < reduction 3: goes on
    'continue', // n=2 < 3
    'prune', // n=3: keep floor(3/3) = 1; 0.9 ranks above 0.7
    'continue', // n=4: keep 1; 0.95 is the best so far
    'prune', // n=5: keep 1
    'prune', // n=6: keep 2; 0.95 and the earlier 0.9 (t001, a tie) rank above t005
  ]);
  const loss = new SuccessiveHalving({ minEpochs: 1, reduction: 2 }, { metric: 'testLoss', mode: 'min' });
  assert.equal(loss.report('t000', 1, 0.3), 'continue');
  assert.equal(loss.report('t001', 1, 0.2), 'continue');
  assert.equal(loss.report('t002', 1, NaN), 'prune');
});

test('bad input fails before anything starts, naming the field', () => {
  const bad = (options: unknown) => () => cirrus.gridSearch(options as never);
  assert.throws(bad({ base, grid: {} }), { name: 'SearchError', code: 'SEARCH_CONFIG', message: 'search.grid: expected at least one parameter to search over' });
  assert.throws(bad({ base, grid: { learningRate: [] } }), { code: 'SEARCH_CONFIG', message: 'search.grid.learningRate: expected a non-empty list of values' });
  assert.throws(bad({ base, grid: { learningRate: [0.1, -0.5] } }), { code: 'SEARCH_CONFIG', message: 'search.grid.learningRate[1]: expected a learning rate > 0' });
  assert.throws(bad({ base, grid: { workers: [1, 0] } }), { code: 'SEARCH_CONFIG', message: 'search.grid.workers[1]: expected at least 1 worker' });
  const sparse = { ...base, model: 'sparse-lr', algorithm: 'async-sgd', sync: 'async' };
  assert.throws(bad({ base: sparse, grid: { psShards: [2, ['127.0.0.1:7070', 'localhost']] } }), {
    code: 'SEARCH_CONFIG',
    message: "search.grid.psShards[1][1]: parameter server address 'localhost' is invalid: expected 'host:port' with a port of 1-65535",
  });
  assert.throws(bad({ base, grid: { lr: [0.1] } }), { code: 'SEARCH_CONFIG', message: /^search\.grid\.lr: 'lr' is not a train parameter; allowed: dataset, store, model, / });
  assert.throws(bad({ base: { ...base, workers: 0 }, grid: { learningRate: [0.1] } }), { code: 'SEARCH_CONFIG', message: 'search.base.workers: expected at least 1 worker (trial t000: learningRate=0.1)' });
  assert.throws(bad({ base, grid: { workers: [1, 3] }, workerBudget: 2 }), { code: 'SEARCH_BUDGET', message: 'search.workerBudget: a budget of 2 worker(s) is smaller than trial t001 needs (3 workers; workers=3)' });
  assert.throws(bad({ base, grid: { learningRate: [0.1] }, earlyStopping: { successiveHalving: { minEpochs: 1, reduction: 1 } } }), { code: 'SEARCH_CONFIG', message: 'search.earlyStopping.successiveHalving.reduction: expected an integer reduction factor >= 2' });
  assert.throws(() => cirrus.randomSearch({ base, space: { learningRate: { logUniform: [0, 1] } }, trials: 3, seed: 1 }), { code: 'SEARCH_CONFIG', message: 'search.space.learningRate.logUniform: expected bounds > 0' });
});

test('grids expand in key order and random spaces sample reproducibly', () => {
  assert.deepEqual(expandGrid({ a: [1, 2], b: ['x', 'y'] }), [
    { a: 1, b: 'x' },
    { a: 1, b: 'y' },
    { a: 2, b: 'x' },
    { a: 2, b: 'y' },
  ]);
  const space = { learningRate: { logUniform: [1e-4, 1e-1] as [number, number] }, batchSize: { choice: [32, 64, 128] }, epochs: { int: [1, 3] as [number, number] }, l2: { uniform: [0, 0.01] as [number, number] } };
  const a = sampleSpace(space, 20, 42);
  assert.deepEqual(sampleSpace(space, 20, 42), a);
  assert.notDeepEqual(sampleSpace(space, 20, 43), a);
  for (const t of a) {
    assert.ok((t.learningRate as number) >= 1e-4 && (t.learningRate as number) <= 1e-1);
    assert.ok([32, 64, 128].includes(t.batchSize as number));
    assert.ok([1, 2, 3].includes(t.epochs as number));
  }
  const search = cirrus.randomSearch({ base, space, trials: 5, seed: 42 });
  assert.deepEqual(search.trials().map((t) => t.params), a.slice(0, 5));
  search.killAll();
  return search.done.then((r) => {
    assert.equal(r.status, 'stopped');
    assert.deepEqual(r.trials.map((t) => t.status), ['killed', 'killed', 'killed', 'killed', 'killed']);
  });
});
