/**
 * No orphans, no leaks: `cirrus train` as a user runs it, stopped by kill -9 (every process of the
 * run ends within 5 s; `cirrus clean --stale` removes what it left), and by Ctrl-C to its pid alone
 * or to its process group (exit 130, no key left on memcached or in the store, record 'stopped').
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { openChannel } from '../channels/factory.js';
import type { MemcachedServer } from '../client/servers/index.js';
import { generateHiggsLike } from '../client/datasets/higgs.js';
import { readJobRecord } from '../client/job/record.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { openStore } from '../client/store.js';
import { CLI, cliEnv, runCli } from './support/cli.js';
import { memcachedForTests } from './support/servers.js';
import { skipOrFail } from './support/skip-or-fail.js';

let home: string;
let config: string;
let mc: { server?: MemcachedServer; missing?: string };
const oldHome = process.env.CIRRUS_HOME;

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'cirrus-orphans-'));
  process.env.CIRRUS_HOME = join(home, '.cirrus');
  const file = join(home, 'higgs.csv');
  await generateHiggsLike({ rows: 12_000, seed: 3, file });
  await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: 1_500, seed: 1 });
  config = join(home, 'train.json');
  // Long enough to be stopped in the middle.
  writeFileSync(config, JSON.stringify({ dataset: 'higgs', model: 'dense-lr', workers: 2, epochs: 400, batchSize: 64, learningRate: 0.05 }));
  mc = await memcachedForTests();
});

after(async () => {
  await mc.server?.stop();
  if (oldHome === undefined) delete process.env.CIRRUS_HOME;
  else process.env.CIRRUS_HOME = oldHome;
  rmSync(home, { recursive: true, force: true });
});

/** Every process below `pid` (Linux /proc). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) if (pp === p) (out.push(c), walk(c));
  };
  walk(pid);
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface Run {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Starts `cirrus train` in its own process group; resolves once epoch 1 was reported. */
async function startTrain(sets: string[]): Promise<Run> {
  const child = spawn(process.execPath, [CLI, 'train', config, ...sets.flatMap((s) => ['--set', s])], { cwd: home, env: cliEnv({ CIRRUS_HOME: join(home, '.cirrus') }), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (err += d));
  child.stdout!.resume();
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  const deadline = Date.now() + 120_000;
  while (!/epoch 1:/.test(err)) {
    if (Date.now() > deadline || child.exitCode !== null) assert.fail(`cirrus train did not report epoch 1: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, stderr: () => err, exit };
}

async function jobIds(): Promise<string[]> {
  const store = await openStore();
  try {
    return (await store.objects.list('jobs/')).map((k) => k.split('/')[1]!);
  } finally {
    await store.close();
  }
}

test('kill -9 of the client: within 5 s no process of the run is left; `cirrus clean --stale` removes its objects and marks it stopped', async (t) => {
  const before = new Set(await jobIds());
  const run = await startTrain(['channel=memcached']);
  const procs = descendants(run.child.pid!);
  // Two workers, the private memcached and its watchdog at least.
  assert.ok(procs.length >= 4, `processes of the run: ${procs.join(', ')}`);
  const killedAt = Date.now();
  process.kill(run.child.pid!, 'SIGKILL');
  await run.exit;
  while (procs.some(alive) && Date.now() - killedAt < 5_000) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(procs.filter(alive), [], `left ${Date.now() - killedAt} ms after kill -9`);
  t.diagnostic(`all ${procs.length} processes of the run gone ${Date.now() - killedAt} ms after kill -9 of the client`);
  const jobId = (await jobIds()).find((id) => !before.has(id))!;
  assert.ok(jobId);
  const clean = await runCli(['clean', '--stale'], { cwd: home, env: { CIRRUS_HOME: join(home, '.cirrus') } });
  assert.equal(clean.code, 0, clean.stderr);
  assert.match(clean.stdout, new RegExp(`^${jobId}: [1-9]\\d* objects, 0 channel keys deleted\\n$`));
  const store = await openStore();
  try {
    assert.deepEqual(await store.objects.list(`job/${jobId}/`), []);
    const rec = await readJobRecord(store.objects, jobId);
    assert.equal(rec?.status, 'stopped');
    assert.match(rec!.endReason!, /cirrus clean/);
  } finally {
    await store.close();
  }
});

for (const target of ['pid', 'group'] as const) {
  test(`Ctrl-C to the client's ${target === 'pid' ? 'pid alone' : 'process group'}: exit 130, no key left on memcached or in the store, record 'stopped'`, async (t) => {
    if (skipOrFail(t, mc.missing)) return;
    const before = new Set(await jobIds());
    const run = await startTrain([`channel=memcached://${mc.server!.address}`]);
    const procs = descendants(run.child.pid!);
    process.kill(target === 'pid' ? run.child.pid! : -run.child.pid!, 'SIGINT');
    assert.equal(await run.exit, 130, run.stderr());
    assert.deepEqual(procs.filter(alive), []);
    const jobId = (await jobIds()).find((id) => !before.has(id))!;
    const ch = await openChannel({ kind: 'memcached', server: mc.server!.address });
    try {
      assert.deepEqual(await ch.list!(`job/${jobId}/`), []);
    } finally {
      await ch.close();
    }
    const store = await openStore();
    try {
      assert.deepEqual(await store.objects.list(`job/${jobId}/`), []);
      const rec = await readJobRecord(store.objects, jobId);
      assert.equal(rec?.status, 'stopped');
      assert.equal(rec?.endReason, 'aborted: received SIGINT');
    } finally {
      await store.close();
    }
  });
}

test('Ctrl-C to the group over the s3 channel leaves no object of the run in the store', async () => {
  const before = new Set(await jobIds());
  const run = await startTrain(['channel=s3', 'epochs=30']);
  process.kill(-run.child.pid!, 'SIGINT');
  assert.equal(await run.exit, 130, run.stderr());
  const jobId = (await jobIds()).find((id) => !before.has(id))!;
  const store = await openStore();
  try {
    assert.deepEqual(await store.objects.list(`channel/job/${jobId}/`), []);
    assert.deepEqual(await store.objects.list(`job/${jobId}/`), []);
    assert.equal((await readJobRecord(store.objects, jobId))?.status, 'stopped');
  } finally {
    await store.close();
  }
});
