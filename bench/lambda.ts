/**
 * `npx cirrus bench lambda`: the deployment package's size, and the cold start of a worker run the
 * way Lambda runs it against the local launcher's, side by side and interleaved in one run.
 *
 * - packaged: the package `deploy` uploads, unzipped in an empty directory with no node_modules,
 *   started by the emulated Lambda runtime (a fresh process per invocation, Lambda's environment,
 *   a context), inside a network namespace of its own when this machine allows one (root), so the
 *   store is reached over a veth link by its advertised address;
 * - local: the local launcher's child process (`node dist/worker/main.js`, modules loaded from
 *   node_modules one file at a time), store on loopback.
 *
 * Each invocation is a one-worker, one-epoch training task on a small Higgs-like dataset, dense LR
 * and an MLP (whose first step includes starting the tfjs WASM backend). Measured per invocation:
 * spawn to handler ready (module loading: Lambda's init phase), handler ready to the end of the
 * first gradient, and their sum (invoke to first step).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { buildWorkerPackage, createWorkerNetwork, formatTable, generateHiggsLike, lambdaEnvironment, LocalLauncher, openStore, preprocess, runSandbox, unpackPackage, type WorkerNetwork } from '../client/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { machineInfo } from './machine.js';

interface LambdaBenchRow {
  model: string;
  launcher: 'packaged' | 'local';
  runs: number;
  /** Medians in ms. */
  readyMs: number;
  readyP90Ms: number;
  readyToFirstStepMs: number;
  firstStepMs: number;
}

interface LambdaBenchResult {
  rows: LambdaBenchRow[];
  packageBytes: { zipped: number; unzipped: number; files: number; sha256: string };
  network: string;
  table: string;
  file: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.9 * s.length) - 1)] ?? NaN;
}

interface Sample {
  readyMs: number;
  firstStepMs: number;
}

export async function benchLambda(opts: { runs?: number; resultsDir?: string; log?: (line: string) => void } = {}): Promise<LambdaBenchResult> {
  const runs = opts.runs ?? 8;
  const log = opts.log ?? (() => undefined);
  const pkg = await buildWorkerPackage();
  log(`package: ${pkg.zippedBytes} bytes zipped, ${pkg.unzippedBytes} unzipped`);
  const home = await mkdtemp(join(tmpdir(), 'cirrus-bench-lambda-'));
  let network: WorkerNetwork | undefined;
  let networkNote: string;
  try {
    network = await createWorkerNetwork();
    networkNote = `packaged workers in network namespace ${network.name}, store at ${network.hostAddress} over a veth link`;
  } catch (err) {
    networkNote = `no network namespace (${(err as Error).message.split('\n')[0]}): packaged workers on this host's network`;
  }
  log(networkNote);
  const unpacked = await unpackPackage(pkg.zip);
  const local = new LocalLauncher({ timeoutS: 120, memoryMb: 1024, concurrency: 1 });
  try {
    const csv = join(home, 'higgs.csv');
    await generateHiggsLike({ rows: 8_000, seed: 3, file: csv });
    // preprocess writes to the embedded store of CIRRUS_HOME: point it at this run's directory.
    const savedHome = process.env.CIRRUS_HOME;
    process.env.CIRRUS_HOME = home;
    try {
      await preprocess({ input: csv, format: 'csv', labelColumn: 0, name: 'higgs', rowsPerShard: 2_000 });
    } finally {
      if (savedHome === undefined) delete process.env.CIRRUS_HOME;
      else process.env.CIRRUS_HOME = savedHome;
    }
    const advertised = network ? await openStore(undefined, home, { host: network.hostAddress }) : undefined;
    const localStore = await openStore(undefined, home);
    try {
      const manifest = await localStore.datasets.manifest('higgs');
      const task = (model: string) => ({
        type: 'train',
        dataset: 'higgs',
        model: model === 'mlp' ? { type: 'mlp', features: manifest.features, classes: 2, hidden: [32] } : { type: 'dense-lr', features: manifest.features, classes: 2 },
        algorithm: 'ga-sgd',
        sync: 'bsp',
        collective: 'allreduce',
        epochs: 1,
        batchSize: 128,
        optimizer: { type: 'sgd', lr: 0.05 },
        l2: 0,
        seed: 1,
      });
      const event = (model: string, store: unknown) => ({ jobId: `bench-lambda-${randomUUID().slice(0, 8)}`, rank: 0, world: 1, attempt: 0, deadlineMs: Date.now() + 120_000, task: task(model), params: {}, endpoints: { store } });
      const samples = new Map<string, Sample[]>();
      const add = (key: string, s: Sample) => samples.set(key, [...(samples.get(key) ?? []), s]);
      for (let i = 0; i < runs; i++) {
        for (const model of ['dense-lr', 'mlp']) {
          // Interleaved: both launchers see the same machine state.
          const r = await runSandbox({
            requestId: randomUUID(),
            codeDir: unpacked.dir,
            handler: pkg.handler,
            timeoutS: 120,
            memoryMb: 1024,
            env: lambdaEnvironment(unpacked.dir, { functionName: 'cirrus-bench', memoryMb: 1024, timeoutS: 120 }),
            event: event(model, (advertised ?? localStore).workerTarget),
            functionName: 'cirrus-bench',
            functionVersion: '$LATEST',
            invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:cirrus-bench',
            ...(network ? { execPrefix: network.execPrefix } : {}),
          });
          if (!r.outcome.ok) throw new Error(`bench lambda: the packaged worker failed: ${r.outcome.errorType}: ${r.outcome.errorMessage}`);
          const value = JSON.parse(r.outcome.payload) as { timings: { firstStepMs?: number } };
          add(`${model}/packaged`, { readyMs: r.readyAfterMs ?? NaN, firstStepMs: value.timings.firstStepMs ?? NaN });

          const h = await local.launch(event(model, localStore.workerTarget) as never);
          const lr = await h.result;
          if (lr.status !== 'ok') throw new Error(`bench lambda: the local worker failed: ${lr.error?.code}: ${lr.error?.message}`);
          add(`${model}/local`, { readyMs: lr.coldStartMs, firstStepMs: (lr.value as { timings: { firstStepMs?: number } }).timings.firstStepMs ?? NaN });
          log(`run ${i + 1}/${runs} ${model}: packaged ready ${r.readyAfterMs?.toFixed(0)} ms, local ready ${lr.coldStartMs.toFixed(0)} ms`);
        }
      }
      const rows: LambdaBenchRow[] = [];
      for (const [key, s] of samples) {
        const [model, launcher] = key.split('/') as [string, 'packaged' | 'local'];
        const ready = s.map((x) => x.readyMs);
        rows.push({
          model,
          launcher,
          runs: s.length,
          readyMs: median(ready),
          readyP90Ms: p90(ready),
          readyToFirstStepMs: median(s.map((x) => x.firstStepMs)),
          firstStepMs: median(s.map((x) => x.readyMs + x.firstStepMs)),
        });
      }
      const localOf = (model: string) => rows.find((r) => r.model === model && r.launcher === 'local')!;
      const table = formatTable(
        ['model', 'launcher', 'runs', 'spawn->ready ms', 'p90', 'ready->1st step ms', 'spawn->1st step ms', 'vs local'],
        rows.map((r) => [r.model, r.launcher, String(r.runs), r.readyMs.toFixed(0), r.readyP90Ms.toFixed(0), r.readyToFirstStepMs.toFixed(0), r.firstStepMs.toFixed(0), (r.firstStepMs / localOf(r.model).firstStepMs).toFixed(2)]),
      );
      const dir = opts.resultsDir ?? DEFAULT_RESULTS_DIR;
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `lambda-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      const packageBytes = { zipped: pkg.zippedBytes, unzipped: pkg.unzippedBytes, files: pkg.files.length, sha256: pkg.sha256 };
      writeFileSync(file, JSON.stringify({ machine: machineInfo(), network: networkNote, package: packageBytes, rows }, null, 2));
      return { rows, packageBytes, network: networkNote, table, file };
    } finally {
      await advertised?.close();
      await localStore.close();
    }
  } finally {
    await local.close();
    await unpacked.remove();
    await network?.close();
    await rm(home, { recursive: true, force: true });
  }
}
