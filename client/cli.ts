/**
 * The `cirrus` command line: the client's own commands. bin/cirrus.js adds the bench and hpo rooms'
 * commands through `main(argv, extensions)`. Each subcommand loads its module only when it runs.
 */
import { Command, InvalidArgumentError } from 'commander';
import { addDatasetCommands } from './cli-datasets.js';
import { addTrainCommand } from './cli-train.js';

export function buildProgram(): Command {
  const program = new Command('cirrus').description('Serverless ML training: stateless workers, pluggable channels, collectives').showHelpAfterError();

  addTrainCommand(program);
  addDatasetCommands(program);

  program
    .command('ps')
    .description('run a parameter server in the foreground')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port (0 picks a free one)', (v) => positiveIntOrZero(v, '--port'), 0)
    .action(async (o: { host: string; port: number }) => {
      const { startParamServer } = await import('../paramserver/index.js');
      const server = await startParamServer({ host: o.host, port: o.port });
      process.stdout.write(`listening ${server.address}\n`);
      const stop = async () => {
        await server.stop();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  return program;
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
    process.stderr.write(`cirrus: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
    process.exitCode = 1;
  }
}
