/**
 * `cirrus grid-search` as a user runs it (bin/cirrus.js in a child process): --json output, bad
 * config errors, and resume after the client itself was killed. A `file://` store lets the test
 * read the search state while the CLI runs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { generateHiggsLike } from '../client/datasets/higgs.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { openObjectStore } from '../channels/object-stores/index.js';
import { readSearchState, type SearchState } from '../hpo/index.js';
import { CLI, cliEnv, runCli } from './support/cli.js';

let work: string;
let storeUrl: string;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'cirrus-hpo-cli-'));
  storeUrl = pathToFileURL(join(work, 'store')).href;
  const file = join(work, 'higgs.csv');
  await generateHiggsLike({ rows: 1_500, seed: 3, file });
  await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: 300, seed: 1, store: storeUrl });
});

after(() => rmSync(work, { recursive: true, force: true }));

const base = () => ({ dataset: 'higgs', store: storeUrl, model: 'dense-lr', workers: 1, epochs: 2, batchSize: 32, seed: 5 });

function writeConfig(name: string, config: unknown): string {
  const file = join(work, name);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

async function readState(searchId: string): Promise<SearchState> {
  const store = await openObjectStore(storeUrl);
  try {
    return await readSearchState(store, searchId);
  } finally {
    await store.close();
  }
}

test('--json prints one object {searchId, trials: [{id, params, status, metrics}], best} and results go to JSON and CSV files', async () => {
  const cfg = writeConfig('grid.json', { base: base(), grid: { learningRate: [0.05, 0.01] } });
  const r = await runCli(['grid-search', cfg, '--json', '--concurrency', '1'], { cwd: work, timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { searchId: string; trials: Array<Record<string, unknown>>; best: Record<string, unknown> };
  assert.deepEqual(Object.keys(out), ['searchId', 'trials', 'best']);
  assert.equal(out.trials.length, 2);
  for (const t of out.trials) {
    assert.deepEqual(Object.keys(t), ['id', 'params', 'status', 'metrics']);
    assert.equal(t.status, 'done');
  }
  assert.deepEqual(out.trials.map((t) => t.id).sort(), ['t000', 't001']);
  assert.deepEqual(out.best, out.trials[0]);
  const acc = out.trials.map((t) => (t.metrics as { testAccuracy: number }).testAccuracy);
  assert.ok(acc[0]! >= acc[1]!);
  const csv = readFileSync(join(work, `cirrus-search-${out.searchId}.csv`), 'utf8').trim().split('\n');
  assert.equal(csv.length, 3);
  assert.match(csv[0]!, /^id,learningRate,status,testAccuracy,testLoss,/);
  const saved = JSON.parse(readFileSync(join(work, `cirrus-search-${out.searchId}.json`), 'utf8')) as { status: string; trials: unknown[] };
  assert.equal(saved.status, 'done');
  assert.equal((await readState(out.searchId)).status, 'done');
});

test('a bad config fails before anything starts, naming the file and the field', async () => {
  const cfg = writeConfig('bad.json', { base: base(), grid: { learningRate: [0.1, -1] } });
  const r = await runCli(['grid-search', cfg], { cwd: work });
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `cirrus: SEARCH_CONFIG: ${cfg}: search.grid.learningRate[1]: expected a learning rate > 0\n`);
  const missing = await runCli(['grid-search', '--resume', 'search-nope', '--store', storeUrl], { cwd: work });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^cirrus: SEARCH_NOT_FOUND: search 'search-nope': no state at searches\/search-nope\/state\.json in file:/);
});

async function waitForSavedDone(searchId: string): Promise<void> {
  for (;;) {
    if ((await readState(searchId)).trials[0]!.status === 'done') return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('resume after the client is killed re-runs only the unfinished trials; finished ones keep their job ids', async () => {
  const cfg = writeConfig('resume.json', { base: { ...base(), epochs: 3 }, grid: { learningRate: [0.05, 0.03, 0.02, 0.01] } });
  const child = spawn(process.execPath, [CLI, 'grid-search', cfg, '--concurrency', '1'], { cwd: work, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const searchId = await new Promise<string>((resolve, reject) => {
    let id: string | undefined;
    let polling = false;
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      id ??= /^search (\S+): 4 trials/m.exec(out)?.[1];
      // Killed once a trial is done in the saved state (and the next one is under way).
      if (id && !polling && /^t001 running/m.test(out)) {
        polling = true;
        void waitForSavedDone(id).then(() => {
          child.kill('SIGKILL');
          resolve(id!);
        }, reject);
      }
    });
    child.on('exit', (_code, signal) => signal !== 'SIGKILL' && reject(new Error(`the CLI ended before the kill:\n${out}`)));
  });
  await new Promise((r) => child.once('exit', r));
  const before = await readState(searchId);
  assert.equal(before.status, 'running');
  const finished = before.trials.filter((t) => t.status === 'done');
  assert.ok(finished.length >= 1 && finished.length < 4, JSON.stringify(before.trials.map((t) => t.status)));
  assert.equal(finished[0]!.id, 't000');

  const r = await runCli(['grid-search', '--resume', searchId, '--store', storeUrl, '--json'], { cwd: work, timeoutMs: 300_000 });
  assert.equal(r.code, 0, r.stderr);
  const after = await readState(searchId);
  assert.equal(after.status, 'done');
  assert.deepEqual(after.trials.map((t) => t.status), ['done', 'done', 'done', 'done']);
  for (const t of finished) {
    const now = after.trials.find((x) => x.id === t.id)!;
    assert.equal(now.jobId, t.jobId);
    assert.equal(now.startedAt, t.startedAt);
  }
  // Only the unfinished trials ran again: the resumed run reported starting exactly those.
  const started = [...r.stderr.matchAll(/^(t\d{3}) running/gm)].map((m) => m[1]);
  assert.deepEqual([...new Set(started)], before.trials.filter((t) => t.status !== 'done').map((t) => t.id));
  const interrupted = before.trials.find((t) => t.status === 'running');
  if (interrupted?.jobId) assert.notEqual(after.trials.find((t) => t.id === interrupted.id)!.jobId, interrupted.jobId);
  assert.ok(existsSync(join(work, `cirrus-search-${searchId}.json`)));
});

test('Ctrl-C (SIGINT) stops the search cleanly: exit code 130, state saved as stopped, the interrupted trial left to resume', async () => {
  const cfg = writeConfig('sigint.json', { base: { ...base(), epochs: 400 }, grid: { learningRate: [0.05, 0.01] } });
  const child = spawn(process.execPath, [CLI, 'grid-search', cfg, '--concurrency', '1'], { cwd: work, env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let sent = false;
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    if (!sent && /^t000 epoch 1:/m.test(out)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 130, out);
  const searchId = /^search (\S+): 2 trials/m.exec(out)![1]!;
  const state = await readState(searchId);
  assert.equal(state.status, 'stopped');
  assert.deepEqual(state.trials.map((t) => t.status), ['pending', 'pending']);
  assert.match(out, new RegExp(`^resume with: cirrus grid-search --resume ${searchId}$`, 'm'));
  // The interrupted job cleaned up after itself: its record says so.
  const store = await openObjectStore(storeUrl);
  try {
    const records = (await store.list('jobs/')).filter((k) => k.endsWith('/record.json'));
    const statuses = await Promise.all(records.map(async (k) => (JSON.parse(Buffer.from((await store.get(k))!).toString()) as { status: string; params: { epochs: number } })));
    assert.ok(statuses.some((r) => r.params.epochs === 400 && r.status === 'stopped'));
  } finally {
    await store.close();
  }
});
