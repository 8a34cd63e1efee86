/**
 * The `cirrus` command line: the client's own commands. bin/cirrus.js adds the bench and hpo rooms'
 * commands through `main(argv, extensions)`. Each subcommand loads its module only when it runs.
 */
import { Command, InvalidArgumentError } from 'commander';
import { addDatasetCommands } from './cli-datasets.js';
import { addDeployCommand } from './cli-deploy.js';
import { addPredictCommand } from './cli-predict.js';
import { addTrainCommand } from './cli-train.js';

export function buildProgram(): Command {
  const program = new Command('cirrus').description('Serverless ML training: stateless workers, pluggable channels, collectives').showHelpAfterError();

  addTrainCommand(program);
  addDatasetCommands(program);
  addPredictCommand(program);
  addDeployCommand(program);

  program
    .command('ps')
    .description('run a parameter server in the foreground (--shards N: N server processes for a ShardedParamClient)')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port; shard i uses port + i (0 picks free ones)', (v) => positiveIntOrZero(v, '--port'), 0)
    .option('--shards <n>', 'number of server processes (1 runs in this process)', (v) => shardCount(v), 1)
    .option('--token <secret>', 'shared secret clients must prove (default: $CIRRUS_PS_TOKEN)')
    .option('--snapshot <url>', 'snapshot store: file:///abs/dir or s3://bucket/prefix?endpoint=..; shard i uses <url>/shard-i')
    .option('--snapshot-every <s>', 'seconds between snapshots', (v) => positiveSeconds(v))
    .option('--restore', 'load the newest snapshot at start')
    .action(async (o: PsCommandOptions) => {
      const token = o.token ?? process.env.CIRRUS_PS_TOKEN;
      if (o.shards === 1) {
        const { runParamServerCli, shardArgs } = await import('../paramserver/index.js');
        // Same flags a cluster shard gets; runParamServerCli prints the address and handles signals.
        const env = { ...process.env };
        delete env.CIRRUS_PS_TOKEN;
        if (token !== undefined) env.CIRRUS_PS_TOKEN = token;
        await runParamServerCli(shardArgs(clusterOptions(o, token), 0), env);
        return;
      }
      const { startParamServerCluster } = await import('../paramserver/index.js');
      const cluster = await startParamServerCluster({ ...clusterOptions(o, token), stderr: 'inherit' });
      process.stdout.write(`listening ${cluster.addresses.join(',')}\n`);
      const stop = (code: number) => {
        void cluster.stop().then(() => process.exit(code));
      };
      process.once('SIGINT', () => stop(0));
      process.once('SIGTERM', () => stop(0));
      void cluster.whenShardExits.then(({ shard, code, signal }) => {
        process.stderr.write(`cirrus: parameter-server shard ${shard} exited (${signal ?? `code ${code}`}); stopping the others\n`);
        stop(1);
      });
    });

  program
    .command('clean [jobId]')
    .description("remove what a training job left when its client died: keys, objects, its private servers; marks its record 'stopped'")
    .option('--stale', 'clean every job whose record says running but whose client process on this host is gone')
    .option('--store <url>', 'object store URL (default: the embedded store under .cirrus/)')
    .action(async (jobId: string | undefined, o: { stale?: boolean; store?: string }) => {
      if ((jobId === undefined) === !o.stale) throw new InvalidArgumentError('clean: give a job id or --stale (not both)');
      const { openStore } = await import('./store.js');
      const { cleanJob, staleJobs } = await import('./job/clean.js');
      const store = await openStore(o.store);
      try {
        const ids = jobId !== undefined ? [jobId] : await staleJobs(store.objects);
        if (ids.length === 0) process.stdout.write('no stale jobs\n');
        for (const id of ids) {
          const r = await cleanJob(store, id);
          process.stdout.write(`${id}: ${r.objects} objects, ${r.channelKeys} channel keys deleted${r.servers.length ? `, servers stopped (pids ${r.servers.join(', ')})` : ''}\n`);
          for (const p of r.problems) process.stderr.write(`cirrus: ${id}: ${p}\n`);
        }
      } finally {
        await store.close();
      }
    });

  return program;
}

interface PsCommandOptions {
  host: string;
  port: number;
  shards: number;
  token?: string;
  snapshot?: string;
  snapshotEvery?: number;
  restore?: boolean;
}

function clusterOptions(o: PsCommandOptions, token: string | undefined): import('../paramserver/index.js').ClusterOptions {
  return {
    shards: o.shards,
    host: o.host,
    port: o.port,
    ...(token !== undefined ? { token } : {}),
    ...(o.snapshot !== undefined ? { snapshotUrl: o.snapshot } : {}),
    ...(o.snapshotEvery !== undefined ? { snapshotEverySeconds: o.snapshotEvery } : {}),
    ...(o.restore ? { restore: true } : {}),
  };
}

function shardCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError(`--shards: '${v}' is not a shard count (1-256)`);
  return n;
}

function positiveSeconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`--snapshot-every: '${v}' is not a number of seconds > 0`);
  return n;
}

function positiveIntOrZero(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`${name}: '${v}' is not a port number (0-65535)`);
  return n;
}

/** Adds commands from rooms above the client (bench, hpo), which the client must not import. */
export type CommandExtension = (program: Command) => void;

export async function main(argv: string[], extensions: readonly CommandExtension[] = []): Promise<void> {
  try {
    const program = buildProgram();
    for (const extend of extensions) extend(program);
    await program.parseAsync(argv);
  } catch (e) {
    const err = e as Error & { code?: string };
    process.stderr.write(`cirrus: ${err.code ? `${err.code}: ` : ''}${cliSpelling(err.message)}\n`);
    process.exitCode = 1;
  }
}

/** Library messages name options as the API spells them; on the command line they are flags. */
export function cliSpelling(message: string): string {
  return message.replace(/pass overwrite: true/g, 'pass --overwrite');
}
