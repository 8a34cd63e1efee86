/**
 * The local launcher's standby: a relaunch after kill -9 takes a warm spare instead of spawning
 * (BSP still ends bit-identical to the fault-free run), the spare gets the launch's limits, and no
 * spare outlives the launcher. Data: a small Higgs-like dataset in a temporary CIRRUS_HOME.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateHiggsLike } from '../client/datasets/higgs.js';
import { preprocess } from '../client/preprocess/preprocess.js';
import { train } from '../client/train.js';
import { ChaosLauncher } from '../client/launchers/chaos.js';
import { LocalLauncher, type LocalWorkerHandle } from '../client/launchers/local.js';
import { LauncherError } from '../client/launchers/types.js';

let home: string;
const oldHome = process.env.CIRRUS_HOME;

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'cirrus-standby-'));
  process.env.CIRRUS_HOME = join(home, '.cirrus');
  const file = join(home, 'higgs.csv');
  await generateHiggsLike({ rows: 6_000, seed: 3, file });
  await preprocess({ input: file, format: 'csv', labelColumn: 0, name: 'higgs', normalize: 'zscore', rowsPerShard: 1_000, seed: 1 });
});

after(() => {
  if (oldHome === undefined) delete process.env.CIRRUS_HOME;
  else process.env.CIRRUS_HOME = oldHome;
  rmSync(home, { recursive: true, force: true });
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('kill -9 under GA-SGD/BSP with a standby: the lost rank is relaunched in the warm spare, the weights equal the fault-free run, no spare is left', async () => {
  const params = { dataset: 'higgs', model: 'dense-lr', workers: 3, epochs: 8, batchSize: 64, optimizer: 'momentum', learningRate: 0.05, seed: 5, checkpointEvery: 0.2 } as const;
  const clean = await train(params);
  const launcher = new ChaosLauncher({ timeoutS: 300, memoryMb: 1024, concurrency: 8, standby: 1 });
  const spares = new Set<number>();
  let killedPid: number | undefined;
  const faulty = await train(params, {
    launcher: () => launcher,
    onEpochEnd: async (epoch) => {
      for (const pid of launcher.local.standbyPids) spares.add(pid);
      if (epoch !== 2 || killedPid !== undefined) return;
      // The spare is spawned once the first workers have started: wait for it (bounded).
      for (let i = 0; i < 600 && launcher.local.standbyPids.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      for (const pid of launcher.local.standbyPids) spares.add(pid);
      const w = launcher.live().filter((x) => x.launch.event.rank === 1).pop();
      assert.ok(w, 'a live worker of rank 1');
      killedPid = w.pid;
      process.kill(w.pid, 'SIGKILL');
    },
  });
  assert.ok(killedPid !== undefined);
  assert.equal(faulty.relaunches.length, 1);
  assert.deepEqual(faulty.relaunches[0]!.launched, [1]);
  assert.deepEqual(Array.from(faulty.model.weights), Array.from(clean.model.weights));
  const handles = launcher.launches.map((l) => l.handle as LocalWorkerHandle);
  assert.deepEqual(launcher.launches.map((l) => l.event.rank), [0, 1, 2, 1]);
  assert.deepEqual(handles.map((h) => h.warm), [false, false, false, true], 'the first launches spawn; the relaunch takes the spare');
  // The relaunch ran in a spare seen waiting; it and its replacement are gone with the launcher.
  assert.ok(spares.has(handles[3]!.pid!), `relaunch pid ${handles[3]!.pid} among the spares seen ${[...spares].join(', ')}`);
  assert.deepEqual(launcher.local.standbyPids, []);
  for (let i = 0; i < 50 && [...spares].some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual([...spares].filter(alive), []);
  assert.deepEqual(launcher.live(), []);
});

test('standby options: a negative count or a niceness outside 0-19 is refused with LAUNCHER_OPTIONS', () => {
  assert.throws(() => new LocalLauncher({ standby: -1 }), (e: unknown) => e instanceof LauncherError && e.code === 'LAUNCHER_OPTIONS' && /standby: expected an integer >= 0, got -1/.test(e.message));
  assert.throws(() => new LocalLauncher({ standby: 1, standbyNice: 20 }), (e: unknown) => e instanceof LauncherError && e.code === 'LAUNCHER_OPTIONS' && /standbyNice: expected an integer from 0 to 19, got 20/.test(e.message));
});
