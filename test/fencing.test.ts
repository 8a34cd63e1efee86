/**
 * Fencing: every worker event delivered twice (the unseen copy starting before or after its twin),
 * on every channel and sync mode. Exactly one copy of each launch runs; the other exits with
 * TRAIN_DUPLICATE before writing; no run fails or stalls, and BSP ends bit-identical. A copy due
 * 1.5 s after its twin starts once the twin holds the rank, so that copy is always the duplicate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { train, type TrainResult } from '../client/train.js';
import type { TrainParamsInput } from '../client/train-params.js';
import type { WorkerResult } from '../client/launchers/types.js';
import { ChaosLauncher } from '../client/launchers/chaos.js';
import { criteoHome, type CriteoHome } from './support/criteo-home.js';
import { memcachedForTests } from './support/servers.js';
import { skipOrFail } from './support/skip-or-fail.js';
import type { MemcachedServer } from '../client/servers/index.js';

let home: CriteoHome;
let mc: { server?: MemcachedServer; missing?: string };

before(async () => {
  home = await criteoHome('cirrus-fencing-');
  mc = await memcachedForTests();
});

after(async () => {
  await mc.server?.stop();
  home.restore();
});

const base = { dataset: 'criteo', model: 'sparse-lr', workers: 2, epochs: 4, batchSize: 32, learningRate: 0.1, seed: 3 } as const;

async function twice(params: TrainParamsInput, order: 'before' | 'after'): Promise<{ r: TrainResult; launcher: ChaosLauncher; twins: WorkerResult[] }> {
  const launcher = new ChaosLauncher({ timeoutS: 300, memoryMb: 1024, concurrency: 8, duplicate: order, duplicateGapMs: 300 });
  const r = await train(params, { launcher: () => launcher });
  return { r, launcher, twins: await Promise.all(launcher.twinResults) };
}

/**
 * Of the copies of each launch at most one ran ('ok'); every other one exited with TRAIN_DUPLICATE,
 * or was stopped by the launcher's close at the end of the run before it claimed anything (a copy
 * due after the run ended). At least one copy of the run exited with TRAIN_DUPLICATE.
 */
async function assertOneCopyEach(launcher: ChaosLauncher): Promise<void> {
  const byLaunch = new Map<string, string[]>();
  for (const l of launcher.launches) {
    const res = await l.handle.result;
    const id = `${l.event.rank}/${(l.event.task as { generation: number }).generation}/${l.event.attempt}`;
    byLaunch.set(id, [...(byLaunch.get(id) ?? []), res.error?.code ?? res.status]);
  }
  for (const [id, codes] of byLaunch) {
    assert.equal(codes.filter((c) => c === 'ok').length, 1, `launch ${id}: ${codes.join(', ')}`);
    assert.ok(codes.every((c) => ['ok', 'TRAIN_DUPLICATE', 'KILLED'].includes(c)), `launch ${id}: ${codes.join(', ')}`);
  }
  assert.ok([...byLaunch.values()].flat().includes('TRAIN_DUPLICATE'), `some copy exited with TRAIN_DUPLICATE: ${[...byLaunch].map(([id, codes]) => `${id}: ${codes.join(', ')}`).join('; ')}`);
}

/** Copies started after their twin held the rank: TRAIN_DUPLICATE (or stopped by the launcher's close before they claimed). */
function assertTwinsDuplicates(twins: WorkerResult[]): void {
  const dups = twins.filter((tw) => tw.error?.code === 'TRAIN_DUPLICATE');
  assert.ok(dups.length >= 1, 'some later copy started and exited with TRAIN_DUPLICATE');
  for (const tw of twins) assert.ok(tw.error?.code === 'TRAIN_DUPLICATE' || tw.error?.code === 'KILLED', `${tw.error?.code}: ${tw.error?.message}`);
  for (const tw of dups) {
    assert.match(tw.error!.message, /^rank \d: generation 0 attempt 0 of rank \d of job train-\S+ ((is already running|was granted to another copy of the same launch) \(a duplicate delivery\)|has no owner record \(the job ended\)); this copy exits without writing$/);
  }
}

describe('GA-SGD/BSP: bit-identical with every event delivered twice', () => {
  const channels = ['ps', 's3', 'memcached'] as const;
  for (const channel of channels) {
    test(`over ${channel}`, async (t) => {
      if (channel === 'memcached' && skipOrFail(t, mc.missing)) return;
      const params: TrainParamsInput = { ...base, channel: channel === 'memcached' ? `memcached://${mc.server!.address}` : channel };
      const clean = await train(params);
      for (const order of ['before', 'after'] as const) {
        const { r, launcher, twins } = await twice(params, order);
        assert.deepEqual(Array.from(r.model.weights), Array.from(clean.model.weights), `${order}: weights`);
        assert.deepEqual(r.relaunches, [], `${order}: no relaunch`);
        await assertOneCopyEach(launcher);
        if (order === 'after') assertTwinsDuplicates(twins);
      }
    });
  }
});

for (const [name, extra] of [
  ['ASP', { sync: 'asp' }],
  ['async-sgd', { algorithm: 'async-sgd', sync: 'async' }],
] as const) {
  test(`${name}: a twin of each event changes nothing; every twin started after its copy exits with TRAIN_DUPLICATE`, async () => {
    for (const order of ['before', 'after'] as const) {
      const { r, launcher, twins } = await twice({ ...base, epochs: 12, ...extra }, order);
      assert.deepEqual(r.relaunches, []);
      assert.ok(r.metrics.testAccuracy > 0.6, `${order}: accuracy ${r.metrics.testAccuracy}`);
      await assertOneCopyEach(launcher);
      if (order === 'after') assertTwinsDuplicates(twins);
    }
  });
}

test('a superseded attempt that comes back to life (SIGSTOP, replaced, SIGCONT; kill cannot stop it, as on Lambda) exits with TRAIN_DUPLICATE and changes nothing', async () => {
  const params: TrainParamsInput = { ...base, epochs: 6, leaseSeconds: 2, checkpointEvery: 0.3 };
  const clean = await train(params);
  const launcher = new ChaosLauncher({ timeoutS: 300, memoryMb: 1024, concurrency: 8, killLeavesRunning: true });
  let frozen = 0;
  const r = await train(params, {
    launcher: () => launcher,
    onEpochEnd: (epoch) => {
      if (epoch !== 1 || frozen) return;
      frozen = launcher.live().find((w) => w.launch.event.rank === 0)!.pid;
      process.kill(frozen, 'SIGSTOP');
    },
    // Once its replacement runs, the frozen worker resumes where it stopped.
    onGeneration: (g) => void (g === 1 && setTimeout(() => process.kill(frozen, 'SIGCONT'), 500)),
  });
  assert.ok(frozen > 0);
  assert.equal(r.relaunches.length, 1);
  assert.match(r.relaunches[0]!.cause, /LEASE_EXPIRED/);
  assert.deepEqual(Array.from(r.model.weights), Array.from(clean.model.weights));
  const zombies = await Promise.all(launcher.zombieResults.map(async (z) => ({ rank: z.rank, pid: z.pid, result: await z.result })));
  const revived = zombies.find((z) => z.pid === frozen);
  assert.ok(revived, 'the frozen worker was marked killed but kept running');
  assert.equal(revived.result.error?.code, 'TRAIN_DUPLICATE', revived.result.error?.message);
  assert.match(revived.result.error!.message, /^rank 0: generation 0 attempt 0 of rank 0 of job \S+ was superseded by generation 1 attempt 0; this copy exits without writing$/);
  for (const z of zombies) assert.ok(['TRAIN_DUPLICATE', 'KILLED'].includes(z.result.error?.code ?? 'ok'), `rank ${z.rank}: ${z.result.error?.code ?? 'ok'}`);
});
