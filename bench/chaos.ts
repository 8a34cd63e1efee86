/**
 * `cirrus bench chaos`: the same 4-worker Fashion-MNIST softmax run (a 12,000-image subset), fault
 * free and under the killer (kill -9 of a random worker every ~2 s with probability 0.5, seeded),
 * side by side: wall time, worker-seconds, cost, kills and relaunches, accuracy, and whether the
 * final weights are bit-identical (BSP). Under the killer each run goes twice, with the same seed:
 * lost ranks relaunched in new processes (cold) and in the launcher's warm spare (standby, what
 * train() does). Per kill, the JSON has the recovery's timeline (KillTimeline) from the workers'
 * timeline marks; the table has their medians. Target: under the killer (standby) at most 1.5x
 * the fault-free time.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FASHION_MNIST_DIR, fashionMnistMissing, writeFashionSubset, ChaosLauncher, Killer, openStore, train, formatTable, type Launch, type TrainResult, type TrainParamsInput } from '../client/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { machineInfo } from './machine.js';
import { scratchDir } from './scratch.js';

interface ChaosBenchRow {
  run: string;
  faults: 'none' | 'killer';
  /** How a lost rank's process starts: spawned anew (cold) or taken from the launcher's standby. */
  relaunch: 'cold' | 'standby' | '-';
  wallSeconds: number;
  /** Wall time / the fault-free run's. */
  ratio: number;
  workerSeconds: number;
  usd: number;
  kills: number;
  relaunches: number;
  testAccuracy: number;
  /** BSP: final weights equal the fault-free run's, bit for bit. */
  bitIdentical: boolean | null;
  /** Under the killer: where the time after each kill went. */
  timeline?: KillTimeline[];
}

/**
 * One kill's recovery, in ms after the kill: the launcher saw the process end (exit), the
 * supervisor recorded the relaunch (decided), launched the lost rank (relaunched), the new copy
 * was granted its rank (granted), the last survivor adopted the rollback (adopted), and the last
 * rank finished the new generation's first round (firstRound). Absent: that step did not happen
 * (the run ended, or another kill came first).
 */
interface KillTimeline {
  rank: number;
  generation: number;
  exit?: number;
  decided?: number;
  relaunched?: number;
  /** The new copy entered its handler, was granted its rank, and had loaded its checkpoint. */
  entered?: number;
  granted?: number;
  ready?: number;
  adopted?: number;
  firstRound?: number;
  /** The generation the rank was relaunched as. */
  relaunchedAs?: number;
}

interface Mark {
  what: string;
  rank: number;
  generation: number;
  attempt: number;
  at: number;
}

const MARK = /^cirrus timeline (entered|granted|adopted|ready|first-round) rank (\d+) generation (\d+) attempt (\d+) at (\d+)$/;

interface ChaosBenchOptions {
  quick?: boolean;
  seed?: number;
  periodMs?: number;
  probability?: number;
  /** Seconds between committed checkpoints: the most work a BSP rollback redoes (default 0.5). */
  checkpointEvery?: number;
  log?: (line: string) => void;
}

const CONFIGS: Array<{ run: string; params: Partial<TrainParamsInput>; bsp: boolean }> = [
  { run: 'GA-SGD/BSP over ps', params: {}, bsp: true },
  { run: 'async-sgd over ps', params: { algorithm: 'async-sgd', sync: 'async' }, bsp: false },
];

/** Each config runs under the killer once per relaunch kind, the same seed each time. */
const RELAUNCHES = ['cold', 'standby'] as const;

export async function benchChaos(o: ChaosBenchOptions = {}): Promise<{ rows: ChaosBenchRow[]; table: string; file: string; targetMet: boolean }> {
  const missing = fashionMnistMissing();
  if (missing) throw new Error(`bench chaos: ${missing}`);
  const log = o.log ?? (() => {});
  const seed = o.seed ?? 7;
  const periodMs = o.periodMs ?? 2_000;
  const probability = o.probability ?? 0.5;
  const work = scratchDir('chaos');
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(work, '.cirrus');
  const rows: ChaosBenchRow[] = [];
  try {
    const store = await openStore();
    try {
      log(`bench chaos: ${FASHION_MNIST_DIR}, the first 12,000 training and 2,000 test images`);
      await writeFashionSubset(store.datasets, 'fm', { train: 12_000, test: 2_000, rowsPerShard: 1_500 });
      const base: TrainParamsInput = { dataset: 'fm', model: 'softmax', workers: 4, epochs: o.quick ? 12 : 40, batchSize: 100, learningRate: 0.1, seed: 11, checkpointEvery: o.checkpointEvery ?? 0.5, maxAttempts: 10 };
      for (const c of CONFIGS) {
        const params = { ...base, ...c.params };
        log(`bench chaos: ${c.run}, fault-free`);
        const clean = await train(params, { store });
        rows.push(row(c.run, 'none', clean, clean, 0, c.bsp, '-'));
        for (const relaunch of RELAUNCHES) {
          log(`bench chaos: ${c.run}, under the killer (seed ${seed}, every ~${periodMs} ms, p ${probability}), ${relaunch} relaunches`);
          const marks: Mark[] = [];
          const onLog = (line: string): void => {
            const m = MARK.exec(line);
            if (m) marks.push({ what: m[1]!, rank: Number(m[2]), generation: Number(m[3]), attempt: Number(m[4]), at: Number(m[5]) });
          };
          const launcher = new ChaosLauncher({ timeoutS: 900, memoryMb: 2048, concurrency: 16, standby: relaunch === 'standby' ? 1 : 0, onLog, env: { CIRRUS_TIMELINE: '1' } });
          const killer = new Killer(launcher, { seed, periodMs, probability });
          let faulty: TrainResult;
          try {
            faulty = await train(params, { store, launcher: () => launcher });
          } finally {
            await killer.stop();
          }
          const r = row(c.run, 'killer', faulty, clean, killer.kills.length, c.bsp, relaunch);
          r.timeline = killer.kills.map((k) => killTimeline(k, launcher.launches, faulty, marks));
          rows.push(r);
        }
      }
    } finally {
      await store.close();
    }
  } finally {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(work, { recursive: true, force: true });
  }
  // The target is the product's: relaunches as train() makes them (with a standby).
  const targetMet = rows.filter((r) => r.faults === 'killer' && r.relaunch !== 'cold').every((r) => r.ratio <= 1.5);
  const table =
    formatTable(
      ['run', 'faults', 'relaunch', 'wall s', 'x fault-free', 'worker-s', 'cost $', 'kills', 'relaunches', 'accuracy', 'bit-identical'],
      rows.map((r) => [r.run, r.faults, r.relaunch, r.wallSeconds, r.ratio, r.workerSeconds, r.usd, r.kills, r.relaunches, `${(100 * r.testAccuracy).toFixed(2)}%`, r.bitIdentical === null ? '-' : r.bitIdentical ? 'yes' : 'NO']),
    ) +
    `\n\n${timelineTable(rows)}` +
    `\n\ntarget (under the killer at most 1.5x the fault-free wall time): ${targetMet ? 'met' : 'not met'}`;
  mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
  const file = join(DEFAULT_RESULTS_DIR, `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: 'chaos', machine: machineInfo(), seed, periodMs, probability, quick: o.quick ?? false, rows, targetMet }, null, 2) + '\n');
  return { rows, table, file, targetMet };
}

/** Lines up one kill with what followed it (see KillTimeline). */
function killTimeline(k: Killer['kills'][number], launches: Launch[], r: TrainResult, marks: Mark[]): KillTimeline {
  const t: KillTimeline = { rank: k.rank, generation: k.generation };
  const since = (at: number | undefined): number | undefined => (at === undefined ? undefined : at - k.at);
  const killed = launches.find((l) => !l.twin && l.handle.pid === k.pid);
  t.exit = since(killed?.endedAt);
  const rec = r.relaunches.find((x) => Date.parse(x.at) >= k.at - 5 && x.launched.includes(k.rank));
  if (!rec) return t;
  const gen = rec.generation;
  t.relaunchedAs = gen;
  t.decided = since(Date.parse(rec.at));
  const next = launches.find((l) => !l.twin && l.event.rank === k.rank && (l.event.task as { generation?: number }).generation === gen && l.launchedAt >= k.at);
  t.relaunched = since(next?.launchedAt);
  const own = (what: string) => since(marks.find((m) => m.what === what && m.rank === k.rank && m.generation === gen && m.attempt === next?.event.attempt)?.at);
  t.entered = own('entered');
  t.granted = own('granted');
  t.ready = own('ready');
  const last = (what: string): number | undefined => {
    const ats = marks.filter((m) => m.what === what && m.generation === gen).map((m) => m.at);
    return ats.length > 0 ? Math.max(...ats) : undefined;
  };
  t.adopted = since(last('adopted'));
  t.firstRound = since(last('first-round'));
  return t;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Medians of each recovery step over a run's kills (ms after the kill). */
function timelineTable(rows: ChaosBenchRow[]): string {
  const steps = ['exit', 'decided', 'relaunched', 'entered', 'granted', 'ready', 'adopted', 'firstRound'] as const;
  const body = rows
    .filter((r) => r.timeline && r.timeline.length > 0)
    .map((r) => [`${r.run}, ${r.relaunch}`, r.timeline!.length, ...steps.map((s) => {
      const xs = r.timeline!.map((t) => t[s]).filter((x): x is number => x !== undefined);
      return xs.length > 0 ? Math.round(median(xs)) : '-';
    })]);
  return formatTable(['run (median ms after a kill)', 'kills', ...steps], body);
}

function row(run: string, faults: ChaosBenchRow['faults'], r: TrainResult, clean: TrainResult, kills: number, bsp: boolean, relaunch: ChaosBenchRow['relaunch']): ChaosBenchRow {
  return {
    run,
    faults,
    relaunch,
    wallSeconds: r.metrics.wallSeconds,
    ratio: r.metrics.wallSeconds / clean.metrics.wallSeconds,
    workerSeconds: r.cost.workerSeconds,
    usd: r.cost.usd,
    kills,
    relaunches: r.relaunches.length,
    testAccuracy: r.metrics.testAccuracy,
    bitIdentical: bsp ? r.model.weights.every((w, i) => Object.is(w, clean.model.weights[i])) : null,
  };
}
