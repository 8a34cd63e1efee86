/**
 * `cirrus bench overhead`: where a small run's time goes before its first step, and the whole
 * command against plain training, side by side in one run.
 *
 * 1. Side by side (interleaved, median of `runs`): `cirrus train` of a 2-worker dense-LR run on a
 *    2,000-row CSV (preprocessed once beforehand), timed from the command's spawn to its exit;
 *    and a plain node process (overhead-plain.ts) that parses the same CSV, z-scores it and trains
 *    the same model for the same epochs, spawn to exit. Target: cirrus <= 2 x plain + 1 s.
 * 2. Breakdown, measured inside one instrumented run (train() in this process with its own store
 *    and a launcher that records each worker): node start-up, the CLI's module loading, store
 *    start, the client's set-up before the first launch, worker start (spawn -> handler entry)
 *    split into node start-up and module loading, handler entry -> first gradient step (event,
 *    channel, shard fetch), one shard fetch, and the first evaluation.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Evaluator } from '../algorithms/index.js';
import { formatTable, generateHiggsLike, type Launcher, launcherLimits, LocalLauncher, openStore, preprocess, train, type TrainParamsInput, type WorkerEvent, type WorkerResult } from '../client/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { machineInfo } from './machine.js';
import { scratchDir } from './scratch.js';

interface OverheadOptions {
  rows?: number;
  runs?: number;
  resultsDir?: string;
  log?: (line: string) => void;
}

interface OverheadResult {
  table: string;
  breakdown: string;
  cliMs: number;
  plainMs: number;
  targetMs: number;
  met: boolean;
  file: string;
}

const CLI = fileURLToPath(new URL('../../bin/cirrus.js', import.meta.url));
const PLAIN = fileURLToPath(new URL('./overhead-plain.js', import.meta.url));
const CLI_MODULE = pathToFileURL(fileURLToPath(new URL('../client/cli.js', import.meta.url))).href;
const TRAIN_MODULE = pathToFileURL(fileURLToPath(new URL('../client/train.js', import.meta.url))).href;

/** Spawns a process and resolves with its wall time and stdout; rejects on a non-zero exit. */
function timed(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ ms: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      if (code === 0) resolve({ ms, stdout: out });
      else reject(new Error(`${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`));
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function benchOverhead(opts: OverheadOptions = {}): Promise<OverheadResult> {
  const rows = opts.rows ?? 2000;
  const runs = opts.runs ?? 5;
  const log = opts.log ?? (() => undefined);
  const home = scratchDir('overhead');
  const cirrusHome = join(home, '.cirrus');
  const env = { ...process.env, CIRRUS_HOME: cirrusHome };
  const savedHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = cirrusHome;
  try {
    const csv = join(home, 'higgs.csv');
    await generateHiggsLike({ rows, seed: 1, file: csv });
    await preprocess({ input: csv, format: 'csv', name: 'overhead', labelColumn: 0, normalize: 'zscore' });
    const params: TrainParamsInput = { dataset: 'overhead', model: 'dense-lr', workers: 2, epochs: 3, batchSize: 50, optimizer: 'adam', learningRate: 0.01, seed: 1 };
    writeFileSync(join(home, 'train.json'), JSON.stringify(params));
    const plainSpec = JSON.stringify({ file: csv, labelColumn: 0, epochs: 3, batchSize: 50, lr: 0.01, seed: 1 });

    // 1. Side by side, interleaved.
    const cli: number[] = [];
    const unbundled: number[] = [];
    const cold: number[] = [];
    const plain: number[] = [];
    const boot: number[] = [];
    const cliImport: number[] = [];
    for (let r = 0; r < runs; r++) {
      log(`run ${r + 1}/${runs}`);
      plain.push((await timed([PLAIN, plainSpec], env, home)).ms);
      cli.push((await timed([CLI, 'train', 'train.json', '--json'], env, home)).ms);
      // The same command with the workers' ES modules instead of the bundle: what the cut saves.
      unbundled.push((await timed([CLI, 'train', 'train.json', '--json'], { ...env, CIRRUS_WORKER_BUNDLE: '0' }, home)).ms);
      // ...and without prewarmed workers (spawned only when the run launches them).
      cold.push((await timed([CLI, 'train', 'train.json', '--json'], { ...env, CIRRUS_PREWARM: '0' }, home)).ms);
      boot.push((await timed(['-e', '0'], env, home)).ms);
      const imp = await timed(['--input-type=module', '-e', `const t = performance.now(); await import(${JSON.stringify(CLI_MODULE)}); await import(${JSON.stringify(TRAIN_MODULE)}); console.log(performance.now() - t)`], env, home);
      cliImport.push(Number(imp.stdout.trim()));
    }

    // 2. One instrumented run in this process.
    const t0 = performance.now();
    const store = await openStore();
    const storeStartMs = performance.now() - t0;
    const launches: number[] = [];
    const results: WorkerResult[] = [];
    let firstEpochAt = NaN;
    let trainStart = NaN;
    let trainEnd = NaN;
    let shardMs = NaN;
    let evalMs = NaN;
    try {
      const recording = (p: Parameters<typeof launcherLimits>[0]): Launcher => {
        const inner = new LocalLauncher({ ...launcherLimits(p), concurrency: p.workers });
        return {
          async launch(event: WorkerEvent) {
            launches.push(performance.now());
            const h = await inner.launch(event);
            void h.result.then((res) => results.push(res));
            return h;
          },
          close: () => inner.close(),
        };
      };
      trainStart = performance.now();
      const result = await train(params, { store, launcher: recording, onEpochEnd: (e) => void (e === 1 && (firstEpochAt = performance.now())) });
      trainEnd = performance.now();
      const manifest = await store.datasets.manifest('overhead');
      const s0 = performance.now();
      await store.datasets.readShard(manifest.train.shards[0]!);
      shardMs = performance.now() - s0;
      const e0 = performance.now();
      const ev = new Evaluator(false);
      for (const ref of manifest.test.shards) {
        const shard = await store.datasets.readShard(ref);
        if (shard.kind === 'dense') ev.add(result.model.evaluate(shard));
      }
      ev.result();
      evalMs = performance.now() - e0;
    } finally {
      await store.close();
    }
    const bootMs = median(boot);
    const coldStart = median(results.map((r) => r.coldStartMs));
    const firstStep = median(results.map((r) => ((r.value as { timings?: { firstStepMs?: number } } | undefined)?.timings?.firstStepMs ?? NaN)));
    const setupMs = launches[0]! - trainStart;
    const phases: Array<[string, number, string]> = [
      ['node start-up', bootMs, 'spawn -> exit of `node -e 0`'],
      ['CLI module loading', median(cliImport), 'import of client/cli.js and client/train.js (what `cirrus train` loads)'],
      ['store start', storeStartMs, 'embedded S3 server on .cirrus/'],
      ['client set-up', setupMs, 'train() call -> first worker launched (sweep, job record, manifest, test split, channel)'],
      ['worker start', coldStart, 'spawn -> handler entry, median of the workers (not prewarmed: train() in this process)'],
      ['  of which node start-up', bootMs, ''],
      ['  of which module loading', coldStart - bootMs, ''],
      ['handler -> first step', firstStep, 'event, channel, shard fetch, first gradient'],
      ['  shard fetch', shardMs, 'one train shard from the store (client side)'],
      ['first evaluation', evalMs, 'read the test split + evaluate (client side)'],
      ['first launch -> epoch 1 evaluated', firstEpochAt - launches[0]!, ''],
      ['train() total', trainEnd - trainStart, `${params.epochs} epochs`],
    ];
    const breakdown = formatTable(['phase', 'ms', 'what'], phases.map(([p, ms, w]) => [p, ms.toFixed(0), w]));
    const cliMs = median(cli);
    const plainMs = median(plain);
    const targetMs = 2 * plainMs + 1000;
    const table = formatTable(
      ['run', 'median ms', 'runs (ms)', 'vs plain'],
      [
        ['plain node process (parse, z-score, train, evaluate)', plainMs.toFixed(0), plain.map((x) => x.toFixed(0)).join(' '), '1.00'],
        ['cirrus train, 2 workers (spawn -> exit)', cliMs.toFixed(0), cli.map((x) => x.toFixed(0)).join(' '), (cliMs / plainMs).toFixed(2)],
        ['  the same, workers without the bundle', median(unbundled).toFixed(0), unbundled.map((x) => x.toFixed(0)).join(' '), (median(unbundled) / plainMs).toFixed(2)],
        ['  the same, workers not prewarmed', median(cold).toFixed(0), cold.map((x) => x.toFixed(0)).join(' '), (median(cold) / plainMs).toFixed(2)],
      ],
    );
    const dir = opts.resultsDir ?? DEFAULT_RESULTS_DIR;
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `overhead-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ machine: machineInfo(), load: loadavg(), rows, params, cli, unbundled, notPrewarmed: cold, plain, boot, cliImport, phases: phases.map(([phase, ms, what]) => ({ phase, ms, what })), targetMs, met: cliMs <= targetMs }, null, 2));
    return { table, breakdown, cliMs, plainMs, targetMs, met: cliMs <= targetMs, file };
  } finally {
    if (savedHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = savedHome;
    rmSync(home, { recursive: true, force: true });
  }
}
