/**
 * Hyperparameter search end to end: real worker processes (local launcher), the embedded S3
 * server under a temporary CIRRUS_HOME, a small Higgs-like dataset.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateHiggsLike } from '../client/datasets/higgs.js';
import { readJobRecord } from '../client/job/record.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { openStore } from '../client/store.js';
import { Writable } from 'node:stream';
import { parseTrainParams, type TrainMetrics } from '../client/index.js';
import { planGridSearch } from '../hpo/config.js';
import { createLiveView } from '../hpo/live-view.js';
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

/** Worker processes this process started (the local launcher's children running worker/main.js). */
function workerProcesses(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      // A warm spare of the local launcher waits at nice 10 and is not a worker until it is taken.
      const nice = Number(fields[16]);
      if (ppid === process.pid && nice === 0 && /worker\/main\.js|worker-bundle\/load\.cjs/.test(readFileSync(`/proc/${entry}/cmdline`, 'utf8'))) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

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

test('a trial that fails validation is recorded as failed while the others finish', async () => {
  const r = await cirrus.gridSearch({ base, grid: { model: ['dense-lr', 'softmax', 'svm'] } }).done;
  const byId = Object.fromEntries(r.trials.map((t) => [t.id, t]));
  assert.equal(byId.t000!.status, 'done');
  assert.equal(byId.t002!.status, 'done');
  assert.equal(byId.t001!.status, 'failed');
  assert.match(byId.t001!.error!, /^params\.model: softmax does not fit dataset 'higgs' \(dense, binary\): it needs a multiclass dataset/);
  assert.equal(r.trials[2]!.id, 't001');
});

test("a trial whose worker crashes after its first epoch (maxAttempts 1: no relaunch) is failed with the worker's error while the others finish", async () => {
  // One trial at a time, so the only worker processes alive at t001's first epoch are t001's.
  const search = cirrus.gridSearch({ base: { ...base, maxAttempts: 1 }, grid: { epochs: [2, 400, 3] }, maxConcurrentTrials: 1 });
  const crashed: number[] = [];
  search.on('update', (e: SearchEvent) => {
    if (e.type === 'epoch' && e.trial.id === 't001' && e.logs.epoch === 1) {
      for (const pid of workerProcesses()) {
        process.kill(pid, 'SIGKILL');
        crashed.push(pid);
      }
    }
  });
  const r = await search.done;
  assert.equal(crashed.length, 1, 'one worker process to crash');
  const byId = Object.fromEntries(r.trials.map((t) => [t.id, t]));
  assert.equal(r.status, 'done');
  assert.equal(byId.t000!.status, 'done');
  assert.equal(byId.t002!.status, 'done');
  assert.deepEqual([byId.t000!.metrics!.epochs, byId.t002!.metrics!.epochs], [2, 3]);
  const t1 = byId.t001!;
  assert.equal(t1.status, 'failed');
  // The client hears of epoch 1 while the worker is further on: it crashed after 1..399 epochs,
  // and the trial keeps the history the client evaluated up to then.
  assert.ok(t1.epoch! >= 1 && t1.epoch! < 400, `crashed at epoch ${t1.epoch}`);
  assert.deepEqual(t1.history.map((h) => h.epoch), Array.from({ length: t1.epoch! }, (_, i) => i + 1));
  assert.match(t1.error!, /rank 0 failed once without progress \(maxAttempts 1\):\n  attempt 1: rank 0 \(generation 0, attempt 0\): WORKER_CRASHED: worker \S+ \(rank 0\) was terminated by SIGKILL before reporting a result/);
  assert.equal(t1.metrics, undefined);
  assert.equal(r.trials[2]!.id, 't001', 'a failed trial ranks last');
  // Nothing of the failed trial is left in the store's job space.
  const store = await openStore();
  try {
    assert.deepEqual(await store.objects.list('job/'), []);
    assert.equal((await readJobRecord(store.objects, t1.jobId!))!.status, 'failed');
  } finally {
    await store.close();
  }
});

test('successive halving prunes by its documented rule (one trial at a time: deterministic)', async () => {
  const grid = { learningRate: [0.05, 0.00001, 0.000001, 0.03] };
  const r = await cirrus.gridSearch({ base: { ...base, epochs: 3 }, grid, maxConcurrentTrials: 1, earlyStopping: { successiveHalving: { minEpochs: 1, reduction: 2 } } }).done;
  const [t0, t1, t2, t3] = [...r.trials].sort((a, b) => a.id.localeCompare(b.id)) as [TrialState, TrialState, TrialState, TrialState];
  const acc = (t: TrialState, epoch: number) => t.history.find((h) => h.epoch === epoch)!.testAccuracy;
  // Rungs at epochs 1 and 2 (3 epochs, reduction 2); trials arrive in id order. The premise: the
  // two tiny learning rates end epoch 1 below t000 (0.05).
  assert.ok(acc(t1, 1) < acc(t0, 1) && acc(t2, 1) < acc(t0, 1), `epoch-1 accuracies ${[t0, t1, t2].map((t) => acc(t, 1))}`);
  // Rung 1. t000: 1 arrival < 2, goes on. t001: 2 arrivals, keep floor(2/2) = 1, t000 is better:
  // pruned. t002: 3 arrivals, keep 1, t000 is better: pruned.
  // t003: 4 arrivals, keep 2: goes on unless two of t000..t002 beat it (a tie goes to the earlier trial).
  const beats = (a: number, b: number) => a >= b;
  const aboveT3 = [t0, t1, t2].filter((t) => beats(acc(t, 1), acc(t3, 1))).length;
  // Rung 2: t000 arrives first (goes on); t003 second: keep 1, pruned if t000 beats it.
  const t3Fate = aboveT3 >= 2 ? 'pruned@1' : beats(acc(t0, 2), acc(t3, 2)) ? 'pruned@2' : 'done';
  assert.deepEqual(
    [t0, t1, t2, t3].map((t) => (t.status === 'pruned' ? `pruned@${t.epoch}` : t.status)),
    ['done', 'pruned@1', 'pruned@1', t3Fate],
  );
  for (const t of [t1, t2]) assert.deepEqual(t.history.map((h) => h.epoch), [1], `${t.id} stopped after its rung`);
  assert.deepEqual(t0.history.map((h) => h.epoch), [1, 2, 3]);
  assert.equal(r.best!.id, t3Fate === 'done' && acc(t3, 3) > acc(t0, 3) ? 't003' : 't000');
});

test('the halving rule on a fixed history, worked out by hand', () => {
  const sh = new SuccessiveHalving({ minEpochs: 1, reduction: 2 }, { metric: 'testAccuracy', mode: 'max' });
  assert.deepEqual(sh.rungsFor(4), [1, 2]);
  // Rung 1, in arrival order.
  assert.equal(sh.report('t000', 1, 0.6), 'continue'); // n=1 < 2
  assert.equal(sh.report('t001', 1, 0.7), 'continue'); // n=2, keep 1: nobody above 0.70
  assert.equal(sh.report('t002', 1, 0.65), 'prune'); // n=3, keep 1: t001 (0.70) above
  assert.equal(sh.report('t003', 1, 0.7), 'continue'); // n=4, keep 2: only t001 (a tie, earlier) above
  assert.equal(sh.report('t004', 1, NaN), 'prune'); // n=5, keep 2: a missing value ranks last
  assert.equal(sh.report('t003', 1, 0.1), 'continue'); // a trial reports a rung once; a repeat changes nothing
  // Rung 2, the survivors in a different order.
  assert.equal(sh.report('t001', 2, 0.72), 'continue'); // n=1
  assert.equal(sh.report('t000', 2, 0.74), 'continue'); // n=2, keep 1: nobody above 0.74
  assert.equal(sh.report('t003', 2, 0.74), 'prune'); // n=3, keep 1: t000 (0.74, a tie, earlier) above
  assert.deepEqual(sh.rung(1).map((e) => [e.trial, e.value]), [['t000', 0.6], ['t001', 0.7], ['t002', 0.65], ['t003', 0.7], ['t004', NaN]]);
  // Minimising a loss: lower is better.
  const loss = new SuccessiveHalving({ minEpochs: 1, reduction: 2 }, { metric: 'testLoss', mode: 'min' });
  assert.equal(loss.report('t000', 1, 0.3), 'continue'); // n=1
  assert.equal(loss.report('t001', 1, 0.4), 'prune'); // n=2, keep 1: t000 (0.3) below
  assert.equal(loss.report('t002', 1, 0.1), 'continue'); // n=3, keep 1: nobody below 0.1
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
  // k-means and MF have no accuracy (always 0): asking for it is refused, and their default is the test loss.
  const kmeans = { ...base, model: 'kmeans', clusters: 3 };
  assert.throws(bad({ base: kmeans, grid: { clusters: [2, 3] }, objective: { metric: 'testAccuracy' } }), {
    code: 'SEARCH_CONFIG',
    message: "search.objective.metric: 'testAccuracy' is not measured for kmeans (always 0: no labels to match); use 'testLoss' (k-means: the within-cluster sum of squares per row; mf: the mean squared error)",
  });
  assert.deepEqual(planGridSearch({ base: kmeans, grid: { clusters: [2, 3] } }).config.objective, { metric: 'testLoss', mode: 'min' });
  assert.deepEqual(planGridSearch({ base, grid: { learningRate: [0.1] } }).config.objective, { metric: 'testAccuracy', mode: 'max' });
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

test('the live view ranks finished trials by the search objective (lowest test loss here), and shows no accuracy for k-means', () => {
  let out = '';
  const stream = Object.assign(new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }), { isTTY: true, columns: 200, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true });
  const metrics = (testLoss: number, testAccuracy: number): TrainMetrics => ({ testAccuracy, testLoss, trainLoss: testLoss, epochs: 1, steps: 1, wallSeconds: 1, updatesPerSec: 1, generations: 1, updateBytes: 0 });
  const trials: TrialState[] = ['t000', 't001', 't002'].map((id) => ({ id, params: { clusters: 2 }, status: 'pending', history: [] }));
  const params = parseTrainParams({ dataset: 'd', model: 'kmeans', clusters: 2 });
  const view = createLiveView({ trials, paramsOf: () => params, objective: { metric: 'testLoss', mode: 'min' }, tty: true, write: () => undefined, stream });
  view.update({ type: 'trial', trial: { ...trials[0]!, status: 'done', metrics: metrics(2.5, 0.9) } });
  view.update({ type: 'trial', trial: { ...trials[1]!, status: 'done', metrics: metrics(1.25, 0.1) } });
  view.update({ type: 'trial', trial: { ...trials[2]!, status: 'done', metrics: metrics(3, 0.99) } });
  view.stop();
  const last = out.split(/\r|\n|\x1b\[[0-9;]*[A-Za-z]/).filter((l) => l.includes('trials finished')).pop() ?? '';
  assert.match(last, /3\/3 trials finished \| best testLoss t001 1\.2500$/);
  assert.doesNotMatch(out, /\d+\.\d\d%/, 'k-means rows show no accuracy');
});
