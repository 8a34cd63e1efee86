/**
 * The supervisor with real worker processes: root-cause errors, relaunches after kill -9 (BSP rolls
 * back bit-identically, ASP relaunches one rank), a frozen worker replaced at its lease, maxAttempts,
 * and divergence. Data: a small Higgs-like dataset in a temporary CIRRUS_HOME.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateHiggsLike } from '../client/datasets/higgs.js';
import { readJobRecord } from '../client/job/record.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { openStore } from '../client/store.js';
import { train, type TrainResult } from '../client/train.js';
import type { TrainParamsInput } from '../client/train-params.js';
import { ChaosLauncher, type ChaosLauncherOptions } from '../client/launchers/chaos.js';
import { memcachedForTests } from './support/servers.js';
import { skipOrFail } from './support/skip-or-fail.js';

let home: string;
const oldHome = process.env.CIRRUS_HOME;

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'cirrus-supervise-'));
  process.env.CIRRUS_HOME = join(home, '.cirrus');
  const file = join(home, 'higgs.csv');
  await generateHiggsLike({ rows: 12_000, seed: 3, file });
  for (const name of ['higgs', 'higgsbad']) await preprocess({ input: file, format: 'csv', labelColumn: 0, name, normalize: 'zscore', rowsPerShard: 1_500, seed: 1 });
});

after(() => {
  if (oldHome === undefined) delete process.env.CIRRUS_HOME;
  else process.env.CIRRUS_HOME = oldHome;
  rmSync(home, { recursive: true, force: true });
});

const base = { dataset: 'higgs', model: 'dense-lr', epochs: 5, batchSize: 64, optimizer: 'momentum', learningRate: 0.05, seed: 5, checkpointEvery: 0.2 } as const;

function chaos(o: ChaosLauncherOptions = {}): { launcher: ChaosLauncher; factory: () => ChaosLauncher } {
  const launcher = new ChaosLauncher({ timeoutS: 300, memoryMb: 1024, concurrency: 8, ...o });
  return { launcher, factory: () => launcher };
}

/** Sends `signal` to the live worker of `rank` (the newest launch of it). */
function signalRank(l: ChaosLauncher, rank: number, signal: NodeJS.Signals): number {
  const w = l.live().filter((x) => x.launch.event.rank === rank).pop();
  assert.ok(w, `a live worker of rank ${rank}`);
  process.kill(w.pid, signal);
  return w.pid;
}

test('a worker that fails on rank 2 of 4: the error names rank 2 and its cause; the ranks stopped because of it are listed after it', async (t) => {
  const mc = await memcachedForTests();
  if (skipOrFail(t, mc.missing)) return;
  try {
    // Rank 2 reads train shards 2 and 6 (shard i belongs to rank i % 4): shard 2 is corrupt.
    const handle = await openStore();
    try {
      const m = await handle.datasets.manifest('higgsbad');
      await handle.datasets.store.put(m.train.shards[2]!.key, new TextEncoder().encode('not a shard at all'));
    } finally {
      await handle.close();
    }
    let jobId = '';
    const err = await train({ ...base, dataset: 'higgsbad', workers: 4, channel: `memcached://${mc.server!.address}` }, { onStart: (id) => (jobId = id) }).then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e as Error & { code: string; rank: number; collateral: number[] },
    );
    assert.equal(err.code, 'TRAIN_WORKER_FAILED');
    assert.equal(err.rank, 2);
    assert.deepEqual(err.collateral, [0, 1, 3]);
    assert.match(err.message, new RegExp(`^job ${jobId}: rank 2 \\(generation 0, attempt 0\\): TRAIN_DATASET: rank 2: .*; ranks 0, 1 and 3 were stopped because of it$`));
    assert.doesNotMatch(err.message, /KILLED/);
    const handle2 = await openStore();
    try {
      const rec = await readJobRecord(handle2.objects, jobId);
      assert.equal(rec?.status, 'failed');
      assert.equal(rec?.endReason, 'TRAIN_WORKER_FAILED');
      assert.equal(rec?.error, err.message);
    } finally {
      await handle2.close();
    }
  } finally {
    await mc.server?.stop();
  }
});

test('kill -9 of workers under GA-SGD/BSP: every rank rolls back to the committed checkpoint and the final weights equal the fault-free run', async () => {
  // Kills at epochs 1 and 3 of 12: the client hears of an epoch while workers are further on, and
  // the run must still be going when the second kill comes.
  const params: TrainParamsInput = { ...base, workers: 3, epochs: 12 };
  const clean = await train(params);
  assert.deepEqual(clean.relaunches, []);
  const { launcher, factory } = chaos();
  const killed: number[] = [];
  const faulty = await train(params, {
    launcher: factory,
    onEpochEnd: (epoch) => {
      // Each kill once: after a rollback the same epoch ends again.
      if ((epoch === 1 || epoch === 3) && killed.length < (epoch === 1 ? 1 : 2)) killed.push(signalRank(launcher, epoch === 1 ? 1 : 2, 'SIGKILL'));
    },
  });
  assert.equal(killed.length, 2);
  assert.equal(faulty.relaunches.length, 2);
  for (const [i, r] of faulty.relaunches.entries()) {
    assert.deepEqual(r.ranks, [0, 1, 2], 'BSP takes every rank back to the checkpoint');
    assert.deepEqual(r.launched, [i + 1], 'only the lost rank is launched anew; the others roll back in place');
    assert.equal(r.generation, i + 1);
    assert.match(r.cause, new RegExp(`^rank ${i + 1} \\(generation ${i}, attempt 0\\): WORKER_CRASHED: .*terminated by SIGKILL`));
  }
  // Each relaunch resumes from the newest committed checkpoint: never an older one than the last.
  assert.ok((faulty.relaunches[1]!.resumeFrom ?? -1) >= (faulty.relaunches[0]!.resumeFrom ?? -1));
  assert.equal(faulty.metrics.generations, 3);
  assert.deepEqual(Array.from(faulty.model.weights), Array.from(clean.model.weights));
  assert.deepEqual(faulty.history.map((h) => h.epoch), Array.from({ length: 12 }, (_, i) => i + 1));
  // Three first launches and one per kill: the surviving processes went on.
  assert.deepEqual(launcher.launches.map((l) => l.event.rank), [0, 1, 2, 1, 2]);
  // No process of the run is left.
  for (const pid of killed) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  assert.deepEqual(launcher.live(), []);
});

test('kill -9 under ASP relaunches only the lost rank, from its own checkpoint', async () => {
  const { launcher, factory } = chaos();
  let killed = false;
  const r: TrainResult = await train({ ...base, workers: 2, sync: 'asp', epochs: 4 }, {
    launcher: factory,
    onEpochEnd: (epoch) => {
      if (epoch === 1 && !killed) {
        killed = true;
        signalRank(launcher, 1, 'SIGKILL');
      }
    },
  });
  assert.ok(killed);
  assert.equal(r.relaunches.length, 1);
  assert.deepEqual(r.relaunches[0]!.ranks, [1]);
  assert.equal(r.relaunches[0]!.generation, 0);
  assert.equal(r.metrics.generations, 1);
  assert.ok(r.metrics.testAccuracy > 0.7, `accuracy ${r.metrics.testAccuracy}`);
  const rank1 = launcher.launches.filter((l) => l.event.rank === 1).map((l) => l.event.attempt);
  assert.deepEqual(rank1, [0, 1]);
});

test('a frozen worker (SIGSTOP) is replaced once its lease expires', async () => {
  const { launcher, factory } = chaos();
  let stoppedAt = 0;
  let pid = 0;
  const leaseSeconds = 2;
  const relaunchAt: number[] = [];
  const r = await train({ ...base, workers: 2, leaseSeconds }, {
    launcher: factory,
    onEpochEnd: (epoch) => {
      if (epoch === 1 && pid === 0) {
        pid = signalRank(launcher, 0, 'SIGSTOP');
        stoppedAt = Date.now();
      }
    },
    onGeneration: (g) => g > 0 && relaunchAt.push(Date.now()),
  });
  assert.ok(pid > 0);
  assert.equal(r.relaunches.length, 1);
  assert.match(r.relaunches[0]!.cause, /^rank 0 \(generation 0, attempt 0\): LEASE_EXPIRED: no heartbeat for \d+\.\d s \(lease 2 s\)/);
  const waited = relaunchAt[0]! - stoppedAt;
  // Replaced within its lease of the freeze (a tick of slack), and not at once: a lease without a
  // new heartbeat, less one heartbeat period and one heartbeat poll, has to pass.
  assert.ok(waited >= 500 && waited <= leaseSeconds * 1000 + 500, `replaced ${waited} ms after SIGSTOP`);
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the frozen worker was killed');
});

test('a rank that fails maxAttempts times without progress fails the run, naming every attempt', async () => {
  // Every launch of rank 1 is killed as soon as it is spawned.
  const { factory } = chaos({ onSpawn: (l) => l.event.rank === 1 && process.kill(l.handle.pid!, 'SIGKILL') });
  await assert.rejects(train({ ...base, workers: 2, maxAttempts: 2 }, { launcher: factory }), (e: Error & { code: string }) => {
    assert.equal(e.code, 'TRAIN_WORKER_FAILED');
    assert.match(e.message, /rank 1 failed 2 times in a row without progress \(maxAttempts 2\):\n  attempt 1: rank 1 \(generation 0, attempt 0\): WORKER_CRASHED: [^\n]*SIGKILL[^\n]*\n  attempt 2: rank 1 \(generation 1, attempt 0\): WORKER_CRASHED: [^\n]*SIGKILL/);
    assert.match(e.message, /; rank 0 was stopped because of it$/);
    return true;
  });
});

test('a diverging run ends with TRAIN_DIVERGED, the epoch and a hint; the record says diverged', async () => {
  let jobId = '';
  await assert.rejects(train({ ...base, workers: 2, learningRate: 1e38, epochs: 2 }, { onStart: (id) => (jobId = id) }), (e: Error & { code: string }) => {
    assert.equal(e.code, 'TRAIN_DIVERGED');
    assert.match(e.message, /training diverged in epoch 1 \(step \d+\): .*; lower the learning rate \(now 1e\+38, try 1e\+37\)/);
    return true;
  });
  const handle = await openStore();
  try {
    assert.equal((await readJobRecord(handle.objects, jobId))?.status, 'diverged');
  } finally {
    await handle.close();
  }
});
