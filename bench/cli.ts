/** The `cirrus bench ...` commands; bin/cirrus.js adds them to the client's program. */
import { type Command, InvalidArgumentError } from 'commander';

function list<T extends string>(allowed: readonly T[], name: string) {
  return (value: string): T[] => {
    const items = value.split(',').map((s) => s.trim()).filter(Boolean);
    for (const it of items) {
      if (!(allowed as readonly string[]).includes(it)) throw new InvalidArgumentError(`${name}: '${it}' is not one of ${allowed.join(', ')}`);
    }
    return items as T[];
  };
}

function positiveInts(name: string) {
  return (value: string): number[] =>
    value.split(',').map((s) => {
      const n = Number(s.replace(/_/g, '').trim());
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name}: '${s}' is not a positive integer`);
      return n;
    });
}

function positiveSeconds(name: string, value: string): number {
  const n = Number(value.trim());
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name}: '${value}' is not a positive number of seconds`);
  return n;
}

/** The options the user gave (commander leaves the others undefined), to spread into a bench's options. */
function given<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const toStderr = (line: string): void => void process.stderr.write(line + '\n');

function printResult(r: { table: string; file: string }): void {
  process.stdout.write(`${r.table}\n\nresults written to ${r.file}\n`);
}

export function addBenchCommands(program: Command): void {
  const bench = program.command('bench').description('benchmarks (each prints a table and writes JSON to bench/results/)');
  bench
    .command('channels')
    .description('AllReduce/ScatterReduce round times on memcached, s3 and the parameter server, against the bare clients')
    .option('--quick', 'a reduced grid that finishes in under 2 minutes')
    .option('--json', 'print the rows as one JSON array on stdout')
    .option('--channels <list>', 'channels to run (memcached,s3,ps)', list(['memcached', 's3', 'ps'] as const, '--channels'))
    .option('--patterns <list>', 'patterns to run (allreduce,allgather,scatterreduce)', list(['allreduce', 'allgather', 'scatterreduce'] as const, '--patterns'))
    .option('--workers <list>', 'worker counts, e.g. 2,4,8', positiveInts('--workers'))
    .option('--floats <list>', 'vector lengths, e.g. 30,1000000', positiveInts('--floats'))
    .option('--rounds <n>', 'measured rounds per configuration (warm-up rounds come first and are dropped)', (v) => positiveInts('--rounds')(v)[0]!)
    .action(async (o: { quick?: boolean; json?: boolean; channels?: Array<'memcached' | 's3' | 'ps'>; patterns?: Array<'allreduce' | 'allgather' | 'scatterreduce'>; workers?: number[]; floats?: number[]; rounds?: number }) => {
      const { benchChannels } = await import('./channels.js');
      const result = await benchChannels({
        quick: o.quick ?? false,
        ...(o.channels ? { channels: o.channels } : {}),
        ...(o.patterns ? { patterns: o.patterns } : {}),
        ...(o.workers ? { workers: o.workers } : {}),
        ...(o.floats ? { floats: o.floats } : {}),
        ...(o.rounds ? { rounds: o.rounds } : {}),
        log: (l) => process.stderr.write(l + '\n'),
      });
      if (o.json) {
        process.stdout.write(JSON.stringify(result.rows) + '\n');
      } else {
        process.stdout.write(result.table + '\n\n');
        if (result.comparison) process.stdout.write(result.comparison + '\n\n');
        process.stdout.write(`ratio = round time / bare client time for the same requests and bytes\nresults written to ${result.file}\n`);
      }
    });

  bench
    .command('overhead')
    .description("where a small run's time goes before its first step (store, worker start, module loading, shard fetch, first evaluation), and `cirrus train` against a plain in-process training, side by side")
    .option('--rows <n>', 'CSV rows (default 2000)', (v) => positiveInts('--rows')(v)[0]!)
    .option('--runs <n>', 'interleaved runs of each side (default 5)', (v) => positiveInts('--runs')(v)[0]!)
    .option('--json', 'print the result as JSON')
    .action(async (o: { rows?: number; runs?: number; json?: boolean }) => {
      const { benchOverhead } = await import('./overhead.js');
      const r = await benchOverhead({ ...(o.rows ? { rows: o.rows } : {}), ...(o.runs ? { runs: o.runs } : {}), log: (l) => process.stderr.write(l + '\n') });
      if (o.json) {
        process.stdout.write(JSON.stringify({ cliMs: r.cliMs, plainMs: r.plainMs, targetMs: r.targetMs, met: r.met, file: r.file }) + '\n');
        return;
      }
      process.stdout.write(`${r.table}\n\ntarget: cirrus <= 2 x plain + 1 s = ${r.targetMs.toFixed(0)} ms: ${r.met ? 'met' : 'NOT met'}\n\n${r.breakdown}\n\nresults written to ${r.file}\n`);
    });

  bench
    .command('lambda')
    .description("the Lambda package's size and the cold start of a packaged worker (emulated Lambda runtime, own network namespace) against the local launcher")
    .option('--runs <n>', 'invocations per launcher and model (interleaved)', (v) => positiveInts('--runs')(v)[0]!)
    .option('--json', 'print the rows as one JSON array on stdout')
    .action(async (o: { runs?: number; json?: boolean }) => {
      const { benchLambda } = await import('./lambda.js');
      const r = await benchLambda({ ...(o.runs ? { runs: o.runs } : {}), log: (l) => process.stderr.write(l + '\n') });
      if (o.json) {
        process.stdout.write(JSON.stringify({ package: r.packageBytes, rows: r.rows }) + '\n');
        return;
      }
      const mib = (b: number) => (b / 1048576).toFixed(2);
      process.stdout.write(`package: ${mib(r.packageBytes.zipped)} MiB zipped, ${mib(r.packageBytes.unzipped)} MiB unzipped, ${r.packageBytes.files} files (Lambda's limits: 50 MiB / 250 MiB), sha256 ${r.packageBytes.sha256}\n${r.network}\n\n${r.table}\n\n`);
      process.stdout.write(`ready = the handler's module loaded (Lambda's init phase); 1st step = the end of the worker's first gradient; medians; vs local = spawn->1st step / the local launcher's\nresults written to ${r.file}\n`);
    });

  bench
    .command('data')
    .description('loader throughput and peak RSS, and iterator throughput with readAhead 0 vs 2, on Fashion-MNIST and a Criteo-like dataset')
    .option('--quick', '200k Criteo-like rows instead of 1M')
    .option('--json', 'print the rows as one JSON array on stdout')
    .action(async (o: { quick?: boolean; json?: boolean }) => {
      const { benchData } = await import('./data.js');
      const result = await benchData({ quick: o.quick ?? false, log: (l) => process.stderr.write(l + '\n') });
      if (o.json) process.stdout.write(JSON.stringify(result.rows) + '\n');
      else process.stdout.write(`${result.table}\n\nRA = readAhead; wait% = time the iterator was blocked on a shard fetch / its wall time (steady: without the first shard, which no read-ahead can hide); compute per shard = 1.5x the fetch time\nresults written to ${result.file}\n`);
    });

  bench
    .command('ps')
    .description('sparse push+pull pairs per second and latency for W = 1, 2, 4, 8 clients against the parameter server and a bare TCP echo server')
    .option('--json', 'print the rows as one JSON array on stdout')
    .option('--clients <list>', 'client counts, e.g. 1,2,4,8', positiveInts('--clients'))
    .option('--seconds <n>', 'seconds per measurement', (v) => positiveInts('--seconds')(v)[0]!)
    .option('--train-rows <n>', 'Criteo-like rows for the async-sgd vs ga-sgd/bsp training comparison (0 skips it)', (v) => (v === '0' ? 0 : positiveInts('--train-rows')(v)[0]!))
    .option('--quick', '1 s per measurement and 50,000 training rows')
    .action(async (o: { json?: boolean; clients?: number[]; seconds?: number; trainRows?: number; quick?: boolean }) => {
      const { benchPs } = await import('./ps.js');
      const r = await benchPs({
        ...(o.clients ? { clients: o.clients } : {}),
        durationMs: (o.seconds ?? (o.quick ? 1 : 3)) * 1000,
        trainRows: o.trainRows ?? (o.quick ? 50_000 : 200_000),
        log: (l) => process.stderr.write(l + '\n'),
      });
      if (o.json) process.stdout.write(JSON.stringify(r.rows) + '\n');
      else process.stdout.write(`${r.table}\n\npair = one sparse push + one sparse pull of the same weights (${r.indicesPerPair} on average: a Criteo-like minibatch of 200 rows, ${r.nnzPerRow.toFixed(0)} nonzeros each, hashed to 2^20 features), closed loop per client\nratio = parameter server pairs/s / echo server pairs/s for the same bytes\n${r.trainingTable ? `\n${r.trainingTable}\n` : ''}results written to ${r.file}\n`);
    });

  bench
    .command('compare')
    .description("LambdaML's channel table measured here (LR/SVM/KMeans on Higgs-like, MLP on Fashion-MNIST, MF on ratings, sparse LR on Criteo-like over s3, memcached, ps: time and cost to a target loss, relative to S3) and the algorithm comparison (GA-SGD, MA-SGD, ADMM, async-sgd)")
    .option('--quick', 'smaller datasets and without the MLP (under 10 minutes)')
    .option('--workers <n>', 'workers per run (default 4)', (v) => positiveInts('--workers')(v)[0]!)
    .option('--json', 'print the rows as JSON on stdout')
    .action(async (o: { quick?: boolean; workers?: number; json?: boolean }) => {
      const { benchCompare } = await import('./compare.js');
      const r = await benchCompare({ quick: o.quick ?? false, ...(o.workers ? { workers: o.workers } : {}), log: (l) => process.stderr.write(l + '\n') });
      if (o.json) process.stdout.write(JSON.stringify({ channels: r.channels, algorithms: r.algorithms }) + '\n');
      else process.stdout.write(`${r.table}\n\nresults written to ${r.file}\n`);
    });

  bench
    .command('filter')
    .description("MLLess's significance filter on sparse LR over Criteo-like data: bytes sent, updates/s, wall time and test log-loss with and without it (async-sgd on the parameter server, GA-SGD)")
    .option('--rows <n>', 'Criteo-like rows', (v) => positiveInts('--rows')(v)[0]!)
    .option('--epochs <n>', 'epochs', (v) => positiveInts('--epochs')(v)[0]!)
    .option('--workers <n>', 'workers', (v) => positiveInts('--workers')(v)[0]!)
    .option('--thresholds <list>', 'filter thresholds to compare with 0, e.g. 0.01,0.03', (v) => v.split(',').map(Number))
    .action(async (o: { rows?: number; epochs?: number; workers?: number; thresholds?: number[] }) => {
      const { benchFilter } = await import('./filter.js');
      printResult(await benchFilter({ ...given(o), log: toStderr }));
    });

  bench
    .command('kmeans')
    .description("Lloyd's k-means on Higgs-like rows (k = 1,000 on 100,000 rows by default): a plain loop against cirrus.train with W workers")
    .option('--rows <n>', 'training rows', (v) => positiveInts('--rows')(v)[0]!)
    .option('--k <n>', 'clusters', (v) => positiveInts('--k')(v)[0]!)
    .option('--iterations <n>', 'Lloyd iterations', (v) => positiveInts('--iterations')(v)[0]!)
    .option('--workers <list>', 'worker counts, e.g. 1,2', positiveInts('--workers'))
    .action(async (o: { rows?: number; k?: number; iterations?: number; workers?: number[] }) => {
      const { benchKMeans } = await import('./kmeans.js');
      printResult(await benchKMeans({ ...given(o), log: toStderr }));
    });

  bench
    .command('train')
    .description('time to a target accuracy for a plain process and W = 1, 2, 4 workers (Fashion-MNIST MLP to 87% by default); sparse-LR kernel against C++ -O2; PyTorch on one thread')
    .option('--json', 'print the result as JSON on stdout')
    .option('--model <name>', 'workload: mlp (784-128-10 to 87%) or softmax (to 83%)', (v) => list(['mlp', 'softmax'] as const, '--model')(v)[0]!)
    .option('--workers <list>', 'GA-SGD/BSP worker counts, e.g. 1,2,4', positiveInts('--workers'))
    .option('--ma-workers <list>', "MA-SGD worker counts for extra rows, e.g. 2 ('0' for none)", (v) => (v === '0' ? [] : positiveInts('--ma-workers')(v)))
    .option('--repeat <n>', 'runs of every row, interleaved; the table shows medians', (v) => positiveInts('--repeat')(v)[0]!)
    .option('--skip-pytorch', 'do not run the PyTorch comparison')
    .option('--efficiency', 'instead: CPU-seconds to the target (client, workers, servers) and parallel efficiency against the plain process, W = 1,2,4,8 (or --workers), for the Fashion-MNIST MLP and Higgs-like dense LR with MA-SGD')
    .option('--workloads <list>', 'with --efficiency: mlp,higgs-lr', list(['mlp', 'higgs-lr'] as const, '--workloads'))
    .option('--batch <list>', "with --efficiency: split (the plain batch split over W workers, default), per-worker (each worker the whole batch, LambdaML's MA-SGD), or both", list(['split', 'per-worker'] as const, '--batch'))
    .option('--average-every <n>', 'with --efficiency: MA-SGD averages the models every n local steps (default 0: once per epoch)', (v) => positiveInts('--average-every')(v)[0]!)
    .option('--long', 'with --efficiency: the long workloads (MLP to 87%, 1,000,000 Higgs-like rows) instead of the short ones (85%, 100,000 rows)')
    .option('--higgs-rows <n>', 'with --efficiency: Higgs-like rows for the dense-LR workload (LambdaML\'s Higgs has 11,000,000)', (v) => positiveInts('--higgs-rows')(v)[0]!)
    .action(async (o: { json?: boolean; higgsRows?: number; model?: 'mlp' | 'softmax'; workers?: number[]; maWorkers?: number[]; repeat?: number; skipPytorch?: boolean; efficiency?: boolean; workloads?: Array<'mlp' | 'higgs-lr'>; long?: boolean; batch?: Array<'split' | 'per-worker'>; averageEvery?: number }) => {
      if (o.efficiency) {
        const { benchEfficiency } = await import('./efficiency-run.js');
        const r = await benchEfficiency({ workers: o.workers ?? [1, 2, 4, 8], workloads: o.workloads ?? ['mlp', 'higgs-lr'], size: o.long ? 'long' : 'short', batches: o.batch ?? ['split'], ...(o.averageEvery ? { averageEvery: o.averageEvery } : {}), ...(o.higgsRows ? { higgsRows: o.higgsRows } : {}), log: (l) => process.stderr.write(l + '\n') });
        if (o.json) process.stdout.write(JSON.stringify(r.rows) + '\n');
        else process.stdout.write(`${r.table}\n\nresults written to ${r.file}\n`);
        return;
      }
      const { benchTrain } = await import('./train.js');
      const r = await benchTrain({
        ...(o.model ? { model: o.model } : {}),
        ...(o.workers ? { workers: o.workers } : {}),
        ...(o.maWorkers ? { maWorkers: o.maWorkers } : {}),
        ...(o.repeat ? { repeat: o.repeat } : {}),
        noPytorch: o.skipPytorch ?? false,
        log: (l) => process.stderr.write(l + '\n'),
      });
      if (o.json) process.stdout.write(JSON.stringify({ dataset: r.dataset, model: r.model, target: r.target, batchSize: r.batchSize, repeat: r.repeat, timeToTarget: r.timeToTarget, sparse: r.sparse, pytorch: r.pytorch }) + '\n');
      else process.stdout.write(`${r.table}\n\nresults written to ${r.file}\n`);
    });

  bench
    .command('reduce')
    .description('one reduction step of the collectives (W vectors, mean): JS loops, WebAssembly SIMD with copies, SIMD in receive slots; side by side')
    .option('--json', 'print the rows as one JSON array on stdout')
    .option('--floats <list>', 'vector lengths, e.g. 250000,1000000', positiveInts('--floats'))
    .option('--workers <n>', 'vectors per reduction (W)', (v) => positiveInts('--workers')(v)[0]!)
    .action(async (o: { json?: boolean; floats?: number[]; workers?: number }) => {
      const { benchReduce } = await import('./reduce.js');
      const r = await benchReduce({ ...(o.floats ? { floats: o.floats } : {}), ...(o.workers ? { world: o.workers } : {}) });
      if (o.json) process.stdout.write(JSON.stringify(r.rows) + '\n');
      else process.stdout.write(`${r.table}\n\nresults written to ${r.file}\n`);
    });

  bench
    .command('hpo')
    .description('Fashion-MNIST softmax: a full grid against successive halving (best accuracy, worker-seconds, side by side)')
    .option('--quick', 'a 12,000-row subset and a 4-configuration grid')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (o: { quick?: boolean; json?: boolean }) => {
      const { benchHpo } = await import('./hpo.js');
      const r = await benchHpo({ quick: o.quick ?? false, log: (l) => process.stderr.write(l + '\n') });
      if (o.json) process.stdout.write(JSON.stringify({ quick: r.quick, grid: r.grid, rows: r.rows, accuracyDiffPoints: r.accuracyDiffPoints, workerSecondsRatio: r.workerSecondsRatio, targetMet: r.targetMet }) + '\n');
      else process.stdout.write(`${r.table}\n\nresults written to ${r.file}\n`);
    });

  bench
    .command('chaos')
    .description('4-worker Fashion-MNIST softmax, fault-free and under a seeded killer (kill -9 every ~2 s, p 0.5): wall time, cost, relaunches, accuracy, side by side')
    .option('--quick', '12 epochs instead of 40')
    .option('--seed <n>', "the killer's seed", (v) => positiveInts('--seed')(v)[0]!)
    .option('--checkpoint-every <s>', 'seconds between committed checkpoints (default 0.5)', (v) => positiveSeconds('--checkpoint-every', v))
    .option('--json', 'print the rows as one JSON array on stdout')
    .action(async (o: { quick?: boolean; seed?: number; checkpointEvery?: number; json?: boolean }) => {
      const { benchChaos } = await import('./chaos.js');
      const r = await benchChaos({ quick: o.quick ?? false, ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.checkpointEvery !== undefined ? { checkpointEvery: o.checkpointEvery } : {}), log: (l) => process.stderr.write(l + '\n') });
      if (o.json) process.stdout.write(JSON.stringify(r.rows) + '\n');
      else process.stdout.write(`${r.table}\n\nresults written to ${r.file}\n`);
    });
}
