/**
 * The preprocessing CLI end to end, as a user runs it: real child processes, the embedded S3
 * server under a temporary CIRRUS_HOME, and the local launcher's worker processes for normalize.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openStore } from '../client/store.js';
import { newRunId } from '../channels/datasets/store.js';
import { CLI, cliEnv, runCli, type CliRun } from './support/cli.js';

let home: string;

function cirrus(...args: string[]): Promise<CliRun> {
  return runCli(args, { cwd: home, env: { CIRRUS_HOME: join(home, '.cirrus') } });
}

before(() => {
  home = mkdtempSync(join(tmpdir(), 'cirrus-cli-'));
});
after(() => {
  rmSync(home, { recursive: true, force: true });
});

test('generate, preprocess with distributed z-score, show --json, list, rm', async () => {
  const gen = await cirrus('datasets', 'generate', 'higgs', 'higgs.csv', '--rows', '3000', '--seed', '4');
  assert.equal(gen.code, 0, gen.stderr);
  const pre = await cirrus('preprocess', 'higgs.csv', '--format', 'csv', '--name', 'higgs', '--label-column', '0', '--normalize', 'zscore', '--shard-rows', '500', '--split', '0.8', '--seed', '2');
  assert.equal(pre.code, 0, pre.stderr);
  assert.match(pre.stdout, /^higgs: dense binary, 28 features, 2 classes, \d+ train rows in \d+ shards, \d+ test rows in \d+ shards, transforms: split -> shuffle -> zscore$/m);
  const show = await cirrus('datasets', 'show', 'higgs', '--json');
  assert.equal(show.code, 0, show.stderr);
  const m = JSON.parse(show.stdout) as { trainRows: number; testRows: number; stats: { mean: number[]; std: number[] }; train: { shards: unknown[] } };
  assert.equal(m.trainRows + m.testRows, 3000);
  assert.ok(m.trainRows > 2200 && m.trainRows < 2600, `train rows ${m.trainRows} for split 0.8`);
  // After z-score the training features have mean 0 and std 1.
  for (const mean of m.stats.mean) assert.ok(Math.abs(mean) < 1e-5, `mean ${mean}`);
  for (const std of m.stats.std) assert.ok(Math.abs(std - 1) < 1e-4, `std ${std}`);
  const list = await cirrus('datasets', 'list');
  assert.match(list.stdout, /^higgs: dense binary/m);
  assert.doesNotMatch(list.stdout, /load-/, 'the intermediate dataset of the normalize run must be gone');
  const rm = await cirrus('datasets', 'rm', 'higgs');
  assert.equal(rm.code, 0, rm.stderr);
  const gone = await cirrus('datasets', 'show', 'higgs');
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^cirrus: DATASET_NOT_FOUND: dataset 'higgs' does not exist in /);
});

test('a bad CSV cell fails with file, line and column, and leaves no dataset and no shards', async () => {
  const rows = ['label,a,b', ...Array.from({ length: 50 }, (_, i) => `${i % 2},${i},${i * 2}`)];
  rows[31] = '1,7,seven';
  writeFileSync(join(home, 'bad.csv'), rows.join('\n') + '\n');
  const r = await cirrus('preprocess', 'bad.csv', '--format', 'csv', '--name', 'bad', '--label-column', 'label', '--shard-rows', '10');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.csv:32: column 3 \('b'\): expected a number, found 'seven'/);
  const handle = await openStore(undefined, join(home, '.cirrus'));
  try {
    assert.deepEqual(await handle.datasets.store.list('datasets/bad'), []);
  } finally {
    await handle.close();
  }
});

test('bad options give one clear error', async () => {
  const noFormat = await cirrus('preprocess', 'x.csv', '--name', 'x');
  assert.notEqual(noFormat.code, 0);
  assert.match(noFormat.stderr, /required option '--format <format>' not specified/);
  const badHash = await cirrus('preprocess', 'x.csv', '--format', 'csv', '--name', 'x', '--hash', 'C1');
  assert.notEqual(badHash.code, 0);
  assert.match(badHash.stderr, /--hash: 'C1' is not 'col,col,...:bits\[:bias\]'/);
  const missing = await cirrus('preprocess', 'nope.csv', '--format', 'csv', '--name', 'x');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nope\.csv/);
});

test('Ctrl-C during preprocess stops the run, publishes nothing and removes the partial shards', async () => {
  const gen = await cirrus('datasets', 'generate', 'criteo', 'big.tsv', '--rows', '400000', '--seed', '9');
  assert.equal(gen.code, 0, gen.stderr);
  const child = spawn(process.execPath, [CLI, 'preprocess', 'big.tsv', '--format', 'criteo', '--name', 'big', '--shard-rows', '5000'], { cwd: home, env: cliEnv({ CIRRUS_HOME: join(home, '.cirrus') }) });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Interrupt once the first shards are in the store.
  const handleDir = join(home, '.cirrus', 's3');
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > deadline) assert.fail('no shard appeared within 60 s');
    if (existsSync(handleDir) && readdirSync(handleDir, { recursive: true }).some((f) => String(f).includes('big') && String(f).includes('.shard'))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGINT');
  const code = await exited;
  assert.equal(code, 1, stderr);
  assert.match(stderr, /interrupted: removing partial shards/);
  assert.match(stderr, /PREPROCESS_ABORTED: preprocessing 'big' was interrupted; nothing was published/);
  const handle = await openStore(undefined, join(home, '.cirrus'));
  try {
    assert.deepEqual(await handle.datasets.store.list('datasets/big/'), []);
  } finally {
    await handle.close();
  }
});

test("a killed run's leftovers are swept by the next run of the same name once they are stale", async () => {
  const handle = await openStore(undefined, join(home, '.cirrus'));
  const old = newRunId(new Date(Date.now() - 3_600_000));
  try {
    await handle.datasets.store.put(`datasets/sweep/${old}/train/00000.shard`, new Uint8Array(8));
  } finally {
    await handle.close();
  }
  writeFileSync(join(home, 'small.csv'), ['y,a', ...Array.from({ length: 40 }, (_, i) => `${i % 2},${i}`)].join('\n') + '\n');
  const r = await cirrus('preprocess', 'small.csv', '--format', 'csv', '--name', 'sweep', '--label-column', 'y');
  assert.equal(r.code, 0, r.stderr);
  const after = await openStore(undefined, join(home, '.cirrus'));
  try {
    const keys = await after.datasets.store.list('datasets/sweep/');
    assert.ok(!keys.some((k) => k.includes(old)), `stale shard still there: ${keys.join(', ')}`);
    assert.ok(keys.includes('datasets/sweep/manifest.json'));
  } finally {
    await after.close();
  }
});
