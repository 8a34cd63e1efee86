/**
 * `cirrus grid-search <config.json> [--concurrency N] [--json] [--resume <searchId>]`, and (from
 * the report helper) `cirrus report`. bin/cirrus.js calls addSearchCommands when this room is built.
 * Only the options are declared here: what the commands run loads when they run, so other commands
 * (cirrus train, predict, ...) do not pay for the search's modules at start-up.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { GridSearchFlags } from './cli-run.js';

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name}: '${v}' is not a positive integer`);
    return n;
  };
}

export function addSearchCommands(program: Command): void {
  program
    .command('grid-search [config]')
    .description('hyperparameter search: a grid ({base, grid}) or random ({base, space, trials, seed}) over cirrus.train params, with optional successive halving')
    .option('--concurrency <n>', 'trials running at once', positiveInt('--concurrency'))
    .option('--json', 'print one JSON object at the end: {searchId, trials, best}')
    .option('--resume <searchId>', 'continue a stopped search: finished trials are kept, the others run again')
    .option('--store <url>', 'object store for the search state and trials (default: base.store, else the embedded store)')
    .action(async (config: string | undefined, o: GridSearchFlags) => (await import('./cli-run.js')).runGridSearch(config, o));
  program
    .command('report <id>')
    .description('write a self-contained HTML report (curves, cost vs accuracy, trial table) of a search or a job')
    .option('--out <file>', 'output file (default: cirrus-report-<id>.html in the current directory)')
    .option('--store <url>', 'object store: s3://bucket/prefix?endpoint=..., file:///dir (default: embedded S3 server under .cirrus/)')
    .action(async (id: string, o: { out?: string; store?: string }) => {
      const { writeReport } = await import('./report-cli.js');
      const { path } = await writeReport(id, { ...(o.out ? { out: o.out } : {}), ...(o.store ? { store: o.store } : {}) });
      process.stdout.write(`${path}\n`);
    });
}
