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
    .option('--rounds <n>', 'rounds per configuration', (v) => positiveInts('--rounds')(v)[0]!)
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
    .command('train')
    .description('time to a target accuracy for W = 1, 2, 4 workers against a plain process; sparse-LR kernel against C++ -O2')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (o: { json?: boolean }) => {
      const { benchTrain } = await import('./train.js');
      const r = await benchTrain({ log: (l) => process.stderr.write(l + '\n') });
      if (o.json) process.stdout.write(JSON.stringify({ dataset: r.dataset, model: r.model, target: r.target, timeToTarget: r.timeToTarget, sparse: r.sparse, pytorch: r.pytorch }) + '\n');
      else process.stdout.write(`${r.dataset} ${r.model}, target ${(100 * r.target).toFixed(0)}% test accuracy, same global batch for every W\n\n${r.table}\n\nresults written to ${r.file}\n`);
    });

}
