/** `cirrus preprocess` and `cirrus datasets list|show|rm|generate`. */
import { statSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { DatasetManifest } from '../channels/index.js';
import { PREPROCESS_FORMATS, type HashOptions, type PreprocessFormat } from '../algorithms/index.js';

// What the commands run loads when they run: `cirrus train` and others do not pay for it at start-up.
const loadStore = () => import('./store.js');

function number(name: string, check: (n: number) => boolean, expected: string) {
  return (v: string): number => {
    const n = Number(v.replace(/_/g, ''));
    if (!Number.isFinite(n) || !check(n)) throw new InvalidArgumentError(`${name}: '${v}' is not ${expected}`);
    return n;
  };
}

/** '--hash C1,C2:20' or '--hash C1,C2:20:bias' */
function parseHash(v: string): HashOptions {
  const m = /^([^:]+):(\d+)(:bias)?$/.exec(v);
  if (!m) throw new InvalidArgumentError(`--hash: '${v}' is not 'col,col,...:bits[:bias]' (e.g. C1,C2,C3:20)`);
  const bits = Number(m[2]);
  if (bits < 1 || bits > 31) throw new InvalidArgumentError(`--hash: bits must be 1-31, got ${bits}`);
  return { columns: m[1]!.split(',').map((s) => s.trim()).filter(Boolean), bits, ...(m[3] ? { bias: true } : {}) };
}

function parseRange(v: string): [number, number] {
  const parts = v.split(',').map(Number);
  if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x)) || parts[0]! >= parts[1]!) throw new InvalidArgumentError(`--range: '${v}' is not 'lo,hi' with lo < hi`);
  return [parts[0]!, parts[1]!];
}

function summary(m: DatasetManifest): string {
  return `${m.name}: ${m.kind} ${m.task}, ${m.features} features${m.classes ? `, ${m.classes} classes` : ''}, ${m.trainRows} train rows in ${m.train.shards.length} shards, ${m.testRows} test rows in ${m.test.shards.length} shards${m.transforms.length ? `, transforms: ${m.transforms.filter((t) => t.type !== 'input').map((t) => t.type).join(' -> ')}` : ''}`;
}

export function addDatasetCommands(program: Command): void {
  program
    .command('preprocess <input>')
    .description('load a local file into a sharded dataset in the object store (optionally normalized by a fan-out of workers)')
    .addOption(new Option('--format <format>', 'input format').choices(PREPROCESS_FORMATS as string[]).makeOptionMandatory())
    .requiredOption('--name <name>', 'dataset name')
    .option('--store <url>', 'object store: s3://bucket/prefix?endpoint=..., file:///dir (default: embedded S3 server under .cirrus/)')
    .addOption(new Option('--normalize <how>', 'normalize features with statistics reduced over all shards').choices(['minmax', 'zscore']))
    .option('--range <lo,hi>', 'min-max target range (default 0,1)', parseRange)
    .option('--hash <cols:bits>', "feature-hash the named columns into 2^bits buckets, e.g. 'C1,C2:20' (':bias' adds a bias feature)", parseHash)
    .option('--test-file <path>', 'csv/criteo: a test file of the same columns (transformed with the train file\'s statistics, never fitted on); --split is then not used')
    .option('--split <fraction>', 'train fraction, the rest is test (default 0.9; stratified by class for classification)', number('--split', (n) => n > 0 && n <= 1, 'a fraction in (0, 1]'))
    .option('--shard-rows <n>', 'rows per shard', number('--shard-rows', (n) => Number.isInteger(n) && n > 0, 'a positive integer'))
    .option('--seed <n>', 'seed of the split and the shuffle (default 0)', number('--seed', Number.isInteger, 'an integer'))
    .addOption(new Option('--task <task>', 'learning task (default: from the format and labels)').choices(['binary', 'multiclass', 'regression']))
    .option('--classes <n>', 'number of classes (multiclass)', number('--classes', (n) => Number.isInteger(n) && n >= 2, 'an integer >= 2'))
    .option('--label-column <col>', 'CSV label column: header name or 0-based index (default: last)')
    .option('--overwrite', 'replace an existing dataset of that name')
    .option('--workers <n>', 'csv/criteo/libsvm: parse and hash with a fan-out of n workers over chunks of the file', number('--workers', (n) => Number.isInteger(n) && n > 0, 'a positive integer'))
    .option('--json', 'print the manifest as JSON')
    .action(async (input: string, o: Record<string, unknown>) => {
      const total = (() => {
        try {
          return statSync(input).size;
        } catch {
          return 0;
        }
      })();
      const bar = o.json || !process.stderr.isTTY ? undefined : new cliProgress.SingleBar({ format: 'preprocess {bar} {percentage}% | {value}/{total} MB | {stage}', hideCursor: true }, cliProgress.Presets.shades_classic);
      bar?.start(Math.max(1, Math.round(total / 1e6)), 0, { stage: 'load' });
      // Ctrl-C: stop at the next chunk of input and remove the partial shards; a second one exits at once.
      const abort = new AbortController();
      const onSignal = () => {
        if (abort.signal.aborted) process.exit(130);
        bar?.stop();
        process.stderr.write('interrupted: removing partial shards (Ctrl-C again to quit at once)\n');
        abort.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const labelColumn = o.labelColumn === undefined ? undefined : /^-?\d+$/.test(String(o.labelColumn)) ? Number(o.labelColumn) : String(o.labelColumn);
        const { preprocess } = await import('./preprocess/preprocess.js');
        const manifest = await preprocess({
          input,
          format: o.format as PreprocessFormat,
          name: o.name as string,
          ...(o.store ? { store: o.store as string } : {}),
          ...(o.normalize ? { normalize: o.normalize as 'minmax' | 'zscore' } : {}),
          ...(o.range ? { range: o.range as [number, number] } : {}),
          ...(o.hash ? { hash: o.hash as HashOptions } : {}),
          ...(o.split !== undefined ? { split: o.split as number } : {}),
          ...(o.shardRows ? { rowsPerShard: o.shardRows as number } : {}),
          ...(o.seed !== undefined ? { seed: o.seed as number } : {}),
          ...(o.task ? { task: o.task as 'binary' | 'multiclass' | 'regression' } : {}),
          ...(o.classes ? { classes: o.classes as number } : {}),
          ...(labelColumn !== undefined ? { labelColumn } : {}),
          ...(o.workers ? { workers: o.workers as number } : {}),
          ...(o.testFile ? { testFile: o.testFile as string } : {}),
          onNote: (note) => {
            process.stderr.write(`${note}\n`);
          },
          overwrite: Boolean(o.overwrite),
          onProgress: (read, all) => {
            bar?.setTotal(Math.max(1, Math.round(all / 1e6)));
            bar?.update(Math.round(read / 1e6));
          },
          onStage: (stage) => bar?.update({ stage }),
          signal: abort.signal,
        });
        bar?.stop();
        process.stdout.write(o.json ? JSON.stringify(manifest, null, 2) + '\n' : summary(manifest) + '\n');
      } catch (e) {
        bar?.stop();
        throw e;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  const datasets = program.command('datasets').description('datasets in the object store');
  const storeOption = () => new Option('--store <url>', 'object store URL (default: embedded S3 server under .cirrus/)');

  datasets
    .command('list')
    .description('list the datasets')
    .addOption(storeOption())
    .option('--json', 'print the manifests as a JSON array')
    .action(async (o: { store?: string; json?: boolean }) => {
      const { openStore } = await loadStore();
      const handle = await openStore(o.store);
      try {
        const all = await handle.datasets.list();
        if (o.json) process.stdout.write(JSON.stringify(all, null, 2) + '\n');
        else if (all.length === 0) process.stdout.write(`no datasets in ${handle.url}\n`);
        else for (const m of all) process.stdout.write(summary(m) + '\n');
      } finally {
        await handle.close();
      }
    });

  datasets
    .command('show <name>')
    .description("show a dataset's manifest")
    .addOption(storeOption())
    .option('--json', 'print the manifest as JSON')
    .action(async (name: string, o: { store?: string; json?: boolean }) => {
      const { openStore } = await loadStore();
      const handle = await openStore(o.store);
      try {
        const m = await handle.datasets.manifest(name);
        if (o.json) process.stdout.write(JSON.stringify(m, null, 2) + '\n');
        else {
          process.stdout.write(summary(m) + '\n');
          process.stdout.write(`rows per shard ${m.rowsPerShard}; created ${m.createdAt}${m.source ? `; from ${m.source.file} (${m.source.format}, ${m.source.bytes} bytes)` : ''}\n`);
        }
      } finally {
        await handle.close();
      }
    });

  datasets
    .command('rm <name>')
    .description('delete a dataset (its manifest first, then its shards)')
    .addOption(storeOption())
    .action(async (name: string, o: { store?: string }) => {
      const { openStore } = await loadStore();
      const handle = await openStore(o.store);
      try {
        await handle.datasets.remove(name);
        process.stdout.write(`removed ${name}\n`);
      } finally {
        await handle.close();
      }
    });

  datasets
    .command('generate <kind> <file>')
    .description("write a synthetic dataset file: 'criteo' (TSV, planted logistic model), 'higgs' (CSV, non-linear boundary) or 'ratings' (MovieLens-format CSV, planted low-rank factors plus noise: the floor RMSE is the noise)")
    .requiredOption('--rows <n>', 'row count', number('--rows', (n) => Number.isInteger(n) && n > 0, 'a positive integer'))
    .option('--seed <n>', 'seed (default 1)', number('--seed', Number.isInteger, 'an integer'), 1)
    .option('--users <n>', 'ratings: users (default rows/200)', number('--users', (n) => Number.isInteger(n) && n > 0, 'a positive integer'))
    .option('--items <n>', 'ratings: items (default rows/330)', number('--items', (n) => Number.isInteger(n) && n > 0, 'a positive integer'))
    .option('--rank <n>', 'ratings: rank of the planted factors (default 5)', number('--rank', (n) => Number.isInteger(n) && n > 0, 'a positive integer'))
    .option('--noise <sd>', 'ratings: noise standard deviation, the floor RMSE (default 0.5)', number('--noise', (n) => n >= 0, 'a number >= 0'))
    .action(async (kind: string, file: string, o: { rows: number; seed: number; users?: number; items?: number; rank?: number; noise?: number }) => {
      if (kind !== 'criteo' && kind !== 'higgs' && kind !== 'ratings') throw new InvalidArgumentError(`generate: unknown kind '${kind}'; expected criteo, higgs or ratings`);
      const { generateCriteoLike } = await import('./datasets/generate.js');
      const { generateHiggsLike } = await import('./datasets/higgs.js');
      const { generateRatings } = await import('./datasets/ratings.js');
      const truth =
        kind === 'criteo'
          ? await generateCriteoLike({ rows: o.rows, seed: o.seed, file })
          : kind === 'higgs'
            ? await generateHiggsLike({ rows: o.rows, seed: o.seed, file })
            : await generateRatings({ rows: o.rows, seed: o.seed, file, ...(o.users ? { users: o.users } : {}), ...(o.items ? { items: o.items } : {}), ...(o.rank ? { rank: o.rank } : {}), ...(o.noise !== undefined ? { noise: o.noise } : {}) });
      process.stdout.write(`${file}: ${JSON.stringify(truth)}\n`);
    });
}
