/**
 * The chaos suite: a subset of the real Fashion-MNIST, softmax, 4 real worker processes, real
 * servers, and faults injected by a seeded killer (the seed is in each test's name: a failure
 * replays). NumPyWren's test kills workers on a schedule and checks the result equals a reference;
 * here GA-SGD/BSP must end bit-identical to the fault-free run over memcached, s3 and the
 * parameter server, and ASP and async-sgd within 1 point of fault-free accuracy. Channel servers
 * are killed and restarted mid-run too.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startMemcached, type MemcachedServer } from '../client/servers/index.js';
import { openStore, type StoreHandle } from '../client/store.js';
import { train, type TrainResult } from '../client/train.js';
import type { TrainParamsInput } from '../client/train-params.js';
import { ChaosLauncher, Killer } from '../client/launchers/chaos.js';
import { startParamServer } from '../paramserver/index.js';
import { fashionMnistMissing, writeFashionSubset } from '../client/datasets/fashion-subset.js';
import { memcachedForTests } from './support/servers.js';
import { inCi, skipOrFail } from './support/skip-or-fail.js';

let home: string;
let store: StoreHandle;
const oldHome = process.env.CIRRUS_HOME;
const missing = fashionMnistMissing();

before(async () => {
  if (missing && inCi()) throw new Error(`${missing}: required under CI=${process.env.CI}`);
  home = mkdtempSync(join(tmpdir(), 'cirrus-chaos-'));
  process.env.CIRRUS_HOME = join(home, '.cirrus');
  store = await openStore();
  if (!missing) await writeFashionSubset(store.datasets, 'fm', { train: 12_000, test: 10_000, rowsPerShard: 1_500 });
});

after(async () => {
  await store?.close();
  if (oldHome === undefined) delete process.env.CIRRUS_HOME;
  else process.env.CIRRUS_HOME = oldHome;
  rmSync(home, { recursive: true, force: true });
});

/** The killer's default: every ~2 s, kill -9 with probability 0.5 (seeds chosen so the first draw kills). */
const KILL_PERIOD_MS = 2_000;
const KILL_PROBABILITY = 0.5;

const chaosParams: TrainParamsInput = { dataset: 'fm', model: 'softmax', workers: 4, epochs: 24, batchSize: 100, learningRate: 0.1, seed: 11, checkpointEvery: 1, maxAttempts: 6 };

async function underKiller(params: TrainParamsInput, seed: number): Promise<{ r: TrainResult; kills: number }> {
  const launcher = new ChaosLauncher({ timeoutS: 600, memoryMb: 1024, concurrency: 16 });
  const killer = new Killer(launcher, { seed, periodMs: KILL_PERIOD_MS, probability: KILL_PROBABILITY });
  try {
    const r = await train(params, { launcher: () => launcher, store });
    return { r, kills: killer.kills.length };
  } finally {
    await killer.stop();
  }
}

function assertRecovered(t: { diagnostic(m: string): void }, name: string, clean: TrainResult, faulty: TrainResult, kills: number): void {
  t.diagnostic(`${name}: ${kills} kills, ${faulty.relaunches.length} relaunches, ${faulty.metrics.generations} generations; ${faulty.metrics.wallSeconds.toFixed(1)} s vs ${clean.metrics.wallSeconds.toFixed(1)} s fault-free; accuracy ${faulty.metrics.testAccuracy} vs ${clean.metrics.testAccuracy}`);
  assert.ok(kills >= 1, 'the killer killed at least once');
  assert.ok(faulty.relaunches.length >= 1, 'workers were relaunched');
  // A relaunch is a killed worker's, or follows from one: a survivor that ended its generation (or
  // was rolled back) before it read the rollback the kill started is relaunched too. Nothing else.
  const killed = faulty.relaunches.filter((r) => /WORKER_CRASHED: .*terminated by SIGKILL/.test(r.cause));
  for (const r of faulty.relaunches) assert.match(r.cause, /WORKER_CRASHED: .*terminated by SIGKILL|ROLLBACK_MISSED: the copy ended generation \d+ before it read its rollback|TRAIN_ROLLED_BACK/);
  assert.ok(killed.length >= 1 && killed.length <= kills, `relaunches of killed workers: ${killed.length}, kills: ${kills}`);
}

describe('NumPyWren-style killer (kill -9 a random worker every ~2 s with p = 0.5)', () => {
  for (const [channel, seed] of [
    ['memcached', 7],
    ['ps', 8],
    ['s3', 9],
  ] as const) {
    test(`GA-SGD/BSP over ${channel} (seed ${seed}): the final weights are bit-identical to the fault-free run's`, async (t) => {
      if (skipOrFail(t, missing)) return;
      let params: TrainParamsInput = { ...chaosParams, channel };
      let mc: MemcachedServer | undefined;
      if (channel === 'memcached') {
        const m = await memcachedForTests();
        if (skipOrFail(t, m.missing)) return;
        mc = m.server!;
        params = { ...params, channel: `memcached://${mc.address}` };
      }
      if (channel === 's3') params = { ...params, epochs: 6 };
      try {
        const clean = await train(params, { store });
        const { r, kills } = await underKiller(params, seed);
        assertRecovered(t, channel, clean, r, kills);
        for (const rel of r.relaunches) assert.deepEqual(rel.ranks, [0, 1, 2, 3]);
        // Ranks alive at a kill roll back in place: not every rank is launched anew each time.
        assert.ok(r.relaunches.some((rel) => rel.launched.length < 4), `launched: ${r.relaunches.map((rel) => rel.launched.join('+')).join(', ')}`);
        assert.deepEqual(Array.from(r.model.weights), Array.from(clean.model.weights));
      } finally {
        await mc?.stop();
      }
    });
  }

  for (const [name, extra, seed] of [
    ['ASP', { sync: 'asp' }, 21],
    ['async-sgd', { algorithm: 'async-sgd', sync: 'async' }, 22],
  ] as const) {
    test(`${name} (seed ${seed}): only lost ranks are relaunched; accuracy within 1 point of fault-free`, async (t) => {
      if (skipOrFail(t, missing)) return;
      // A smaller step than BSP's: at 0.1 two fault-free ASP runs end 1.5 points apart (SGD noise).
      const params: TrainParamsInput = { ...chaosParams, learningRate: 0.03, ...extra };
      const clean = await train(params, { store });
      const { r, kills } = await underKiller(params, seed);
      assertRecovered(t, name, clean, r, kills);
      for (const rel of r.relaunches) assert.equal(rel.ranks.length, 1);
      assert.ok(Math.abs(r.metrics.testAccuracy - clean.metrics.testAccuracy) <= 0.01, `accuracy ${r.metrics.testAccuracy} vs ${clean.metrics.testAccuracy} fault-free`);
    });
  }

  test('async-sgd (seed 22): a relaunched rank does not push again what it pushed before it was lost', async (t) => {
    if (skipOrFail(t, missing)) return;
    // An external server, so its count of applied updates can be read after each run.
    const server = await startParamServer();
    try {
      const params: TrainParamsInput = { ...chaosParams, learningRate: 0.03, algorithm: 'async-sgd', sync: 'async', channel: `ps://${server.address}` };
      // 12,000 rows in 1,500-row shards, batch 100: 120 batches an epoch over the four ranks.
      const batches = 120 * (chaosParams.epochs as number);
      const before = server.stats().updatesApplied;
      await train(params, { store });
      const clean = server.stats().updatesApplied - before;
      assert.equal(clean, batches, 'a fault-free run applies each batch once');
      const { r, kills } = await underKiller(params, 22);
      const faulty = server.stats().updatesApplied - before - clean;
      t.diagnostic(`${kills} kills, ${r.relaunches.length} relaunches: ${faulty} updates applied for ${batches} batches`);
      assert.ok(kills >= 1 && r.relaunches.length >= 1, `expected a relaunch: ${kills} kills`);
      // Each loss may cost at most the one batch whose count had not reached the server yet; the
      // batches since the rank's last checkpoint (up to checkpointEvery, 1 s) are not pushed again.
      assert.ok(faulty >= batches && faulty <= batches + r.relaunches.length, `${faulty} updates for ${batches} batches and ${r.relaunches.length} relaunches`);
    } finally {
      await server.stop();
    }
  });
});

/** A fault-free run, then the same run with `restart` (a channel server killed and started again) at the end of epoch 3. */
async function restartAtEpoch3(params: TrainParamsInput, restart: () => Promise<void>): Promise<{ clean: TrainResult; r: TrainResult; restarted: boolean }> {
  const clean = await train(params, { store });
  let restarted = false;
  const r = await train(params, {
    store,
    onEpochEnd: async (epoch) => {
      if (epoch !== 3 || restarted) return;
      restarted = true;
      await restart();
    },
  });
  return { clean, r, restarted };
}

describe('frozen workers and channel servers that fail', () => {
  test('a worker stopped with SIGSTOP is replaced within its default lease (10 s)', async (t) => {
    if (skipOrFail(t, missing)) return;
    const launcher = new ChaosLauncher({ timeoutS: 600, memoryMb: 1024, concurrency: 16 });
    let stoppedAt = 0;
    const relaunchedAt: number[] = [];
    const r = await train({ ...chaosParams, epochs: 40 }, {
      store,
      launcher: () => launcher,
      onEpochEnd: (epoch) => {
        if (epoch !== 2 || stoppedAt) return;
        const w = launcher.live().find((x) => x.launch.event.rank === 3)!;
        process.kill(w.pid, 'SIGSTOP');
        stoppedAt = Date.now();
      },
      onGeneration: (g) => g > 0 && relaunchedAt.push(Date.now()),
    });
    const waited = relaunchedAt[0]! - stoppedAt;
    t.diagnostic(`replaced ${waited} ms after SIGSTOP`);
    assert.equal(r.relaunches.length, 1);
    assert.match(r.relaunches[0]!.cause, /^rank 3 \(generation 0, attempt 0\): LEASE_EXPIRED/);
    assert.ok(waited <= 10_000, `replaced ${waited} ms after SIGSTOP`);
  });

  test('memcached killed (kill -9) and restarted mid-run: the run rolls back and ends bit-identical', async (t) => {
    if (skipOrFail(t, missing)) return;
    const m = await memcachedForTests();
    if (skipOrFail(t, m.missing)) return;
    const port = m.server!.port;
    let server: MemcachedServer = m.server!;
    const params: TrainParamsInput = { ...chaosParams, channel: `memcached://${server.address}` };
    try {
      const { clean, r, restarted } = await restartAtEpoch3(params, async () => {
        process.kill(server.pid, 'SIGKILL');
        await server.stop();
        server = await startMemcached({ port });
      });
      t.diagnostic(`relaunches: ${r.relaunches.map((x) => x.cause).join(' | ')}`);
      assert.ok(restarted);
      assert.ok(r.relaunches.length >= 1);
      assert.ok(r.relaunches.every((x) => x.ranks.length === 4));
      assert.deepEqual(Array.from(r.model.weights), Array.from(clean.model.weights));
    } finally {
      await server.stop();
    }
  });

  test('the parameter server killed (kill -9) and restarted with --restore mid-run: async-sgd ends within 1 point of fault-free', async (t) => {
    if (skipOrFail(t, missing)) return;
    const snapshots = join(home, 'ps-snapshots');
    const main = fileURLToPath(new URL('../paramserver/main.js', import.meta.url));
    const startPs = async (port: number, restore: boolean): Promise<{ child: ChildProcess; address: string }> => {
      const args = [main, '--port', String(port), '--snapshot', `file://${snapshots}`, '--snapshot-every', '0.5', ...(restore ? ['--restore'] : [])];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stderr!.resume();
      const address = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.setEncoding('utf8');
        child.stdout!.on('data', (d: string) => {
          out += d;
          const m = /listening (\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.on('exit', (code) => reject(new Error(`parameter server exited with ${code}`)));
      });
      return { child, address };
    };
    let ps = await startPs(0, false);
    const port = Number(ps.address.split(':')[1]);
    const params: TrainParamsInput = { ...chaosParams, algorithm: 'async-sgd', sync: 'async', channel: `ps://${ps.address}` };
    try {
      const { clean, r, restarted } = await restartAtEpoch3(params, async () => {
        ps.child.kill('SIGKILL');
        await new Promise((res) => ps.child.once('exit', res));
        ps = await startPs(port, true);
      });
      t.diagnostic(`accuracy ${r.metrics.testAccuracy} vs ${clean.metrics.testAccuracy}; relaunches: ${r.relaunches.map((x) => x.cause).join(' | ')}`);
      assert.ok(restarted);
      assert.ok(r.relaunches.length >= 1);
      assert.ok(Math.abs(r.metrics.testAccuracy - clean.metrics.testAccuracy) <= 0.01, `accuracy ${r.metrics.testAccuracy} vs ${clean.metrics.testAccuracy}`);
    } finally {
      ps.child.kill('SIGKILL');
    }
  });
});
