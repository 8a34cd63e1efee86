/** `cirrus train <config.json> [--set key=value ...] [--json]` */
import { readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { formatTable } from './cli/table.js';
import { jsonErrorAt } from './json-position.js';
import { defaultLocalEntry } from './launchers/local-bundle.js';
import { hasAccuracy } from './model-kinds.js';
import { applyOverrides, TrainError, type TrainParamsInput } from './train-params.js';

function readConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TrainError('TRAIN_PARAMS', `${file}: cannot read the config: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TrainError('TRAIN_PARAMS', `${file}: ${jsonErrorAt(text, e)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TrainError('TRAIN_PARAMS', `${file}: expected a JSON object of training params, found ${Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v}`);
  return v as Record<string, unknown>;
}

/**
 * Workers to prewarm for a run on the default local launcher, read from the raw params (before the
 * schema and the training modules load); undefined for other launchers or odd values.
 */
function prewarmPlan(params: Record<string, unknown>): { workers: number; spec: import('./launchers/prewarm.js').PrewarmSpec } | undefined {
  const launcher = (params.launcher ?? {}) as Record<string, unknown>;
  if (process.env.CIRRUS_PREWARM === '0' || (launcher.type !== undefined && launcher.type !== 'local')) return undefined;
  const workers = params.workers ?? 2;
  const memoryMb = launcher.memoryMb ?? 2048;
  if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1 || workers > 16 || typeof memoryMb !== 'number') return undefined;
  return { workers, spec: { entry: defaultLocalEntry(), memoryMb } };
}

/** An accuracy as a percentage; a dataset without test rows has none to show. */
function percent(accuracy: number): string {
  return Number.isNaN(accuracy) ? 'none (no test rows)' : `${(100 * accuracy).toFixed(2)}%`;
}

/**
 * How a run's quality reads: test accuracy for the classifiers, test RMSE for matrix factorization
 * (its test loss is the mean squared error), and nothing beyond the loss for k-means (its test loss
 * is the within-cluster sum of squares per row; it has no labels to be accurate about).
 */
function qualityOf(model: unknown): { label: string; format(testLoss: number, testAccuracy: number): string } | undefined {
  if (hasAccuracy(model)) return { label: 'test accuracy', format: (_loss, accuracy) => percent(accuracy) };
  if (model === 'mf') return { label: 'test RMSE', format: (loss) => (Number.isNaN(loss) ? 'none (no test rows)' : Math.sqrt(loss).toFixed(4)) };
  return undefined;
}

/** Exit codes of a run stopped by a signal (128 + its number, as shells report it). */
const SIGNAL_EXIT: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/**
 * SIGINT, SIGTERM and SIGHUP stop the run: workers stopped, keys deleted, servers stopped, record
 * 'stopped', then exit 128 + the signal. A second signal exits at once.
 */
function stopOnSignals(): { signal: AbortSignal; exitCode: number | undefined; dispose(): void } {
  const ac = new AbortController();
  const state = { signal: ac.signal, exitCode: undefined as number | undefined, dispose: () => undefined as void };
  const handler = (sig: NodeJS.Signals): void => {
    if (state.exitCode !== undefined) process.exit(state.exitCode);
    state.exitCode = SIGNAL_EXIT[sig]!;
    process.stderr.write(`\ncirrus: ${sig}: stopping the workers and cleaning up (again to exit at once)\n`);
    ac.abort(`received ${sig}`);
  };
  for (const sig of Object.keys(SIGNAL_EXIT)) process.on(sig, handler);
  state.dispose = () => {
    for (const sig of Object.keys(SIGNAL_EXIT)) process.off(sig, handler);
  };
  return state;
}

export function addTrainCommand(program: Command): void {
  program
    .command('train <config>')
    .description('train a model with stateless workers (config: a JSON file of cirrus.train params)')
    .option('--set <key=value>', 'override a param (repeatable), e.g. --set workers=4 --set launcher.timeoutS=60', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--save <target>', 'save the trained model to a directory or s3://bucket/prefix')
    .option('--tfjs <target>', 'also export the trained model as a tfjs Layers model (model.json + weights.bin) to a directory or s3://bucket/prefix')
    .option('--json', 'print one JSON object at the end')
    .action(async (config: string, o: { set: string[]; save?: string; tfjs?: string; json?: boolean }) => {
      const params = applyOverrides(readConfig(config), o.set);
      const epochs = typeof params.epochs === 'number' ? params.epochs : 5;
      const quality = qualityOf(params.model);
      const bar = o.json || !process.stderr.isTTY ? undefined : new cliProgress.SingleBar({ format: `train {bar} epoch {value}/{total} | loss {loss}${quality ? ` | ${quality.label.replace('test ', '')} {quality}` : ''} | {secs}s`, hideCursor: true }, cliProgress.Presets.shades_classic);
      bar?.start(epochs, 0, { loss: '-', quality: '-', secs: 0 });
      const progress = (epoch: number, l: { testLoss: number; testAccuracy: number; wallSeconds: number }) => {
        bar?.update(epoch, { loss: l.testLoss.toFixed(4), quality: quality?.format(l.testLoss, l.testAccuracy) ?? '', secs: l.wallSeconds.toFixed(1) });
        if (!bar && !o.json) process.stderr.write(`epoch ${epoch}: test loss ${l.testLoss.toFixed(4)}${quality ? `, ${quality.label} ${quality.format(l.testLoss, l.testAccuracy)}` : ''} (${l.wallSeconds.toFixed(1)} s)\n`);
      };
      // Local workers start while the training modules load (prewarm.ts); a config error kills them.
      const warm = prewarmPlan(params);
      if (warm) (await import('./launchers/prewarm.js')).prewarmWorkers(warm.workers, warm.spec);
      // Loaded when the command runs, so other commands do not pay for the training modules.
      const { train } = await import('./train.js');
      let result;
      const stop = stopOnSignals();
      try {
        result = await train(params as TrainParamsInput, {
          signal: stop.signal,
          onEpochEnd: progress,
          onGeneration: (g) => g > 0 && !o.json && process.stderr.write(`\ngeneration ${g}: workers relaunched from a checkpoint\n`),
        });
      } catch (e) {
        // Stopped before any model: the run cleaned up and its record says 'stopped'.
        if (stop.exitCode !== undefined) {
          process.stderr.write(`cirrus: ${(e as Error).message}\n`);
          process.exit(stop.exitCode);
        }
        throw e;
      } finally {
        bar?.stop();
        stop.dispose();
        if (warm) (await import('./launchers/prewarm.js')).release();
      }
      if (stop.exitCode !== undefined) process.exitCode = stop.exitCode;
      if (o.save) await (await import('./model-io.js')).saveModel(result.model, o.save);
      if (o.tfjs) await (await import('./tfjs-export.js')).exportTfjs(result.model, o.tfjs);
      const m = result.metrics;
      if (o.json) {
        process.stdout.write(JSON.stringify({ jobId: result.jobId, metrics: m, history: result.history, cost: result.cost, endReason: result.endReason, relaunches: result.relaunches, ...(o.save ? { saved: o.save } : {}) }) + '\n');
        return;
      }
      process.stdout.write(
        '\n' +
          formatTable(
            ['job', 'time s', ...(quality ? [quality.label] : []), 'test loss', 'train loss', 'epochs', 'updates/s', 'cost $'],
            [[result.jobId, m.wallSeconds, ...(quality ? [quality.format(m.testLoss, m.testAccuracy)] : []), m.testLoss, m.trainLoss, m.epochs, m.updatesPerSec, result.cost.usd]],
          ) +
          `\n${o.save ? `model saved to ${o.save}\n` : ''}`,
      );
    });
}
