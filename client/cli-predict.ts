/** `cirrus predict <model> <input> [--format f] [--out preds.csv] [--proba] [--json]` */
import { Option, type Command } from 'commander';
import { PREPROCESS_FORMATS } from '../algorithms/index.js';

export function addPredictCommand(program: Command): void {
  program
    .command('predict <model> <input>')
    .description('predict a raw file (any format preprocess reads, as the model was trained from) with a saved model; prints accuracy and log-loss when the rows have labels (k-means: cluster ids and the sum of squares)')
    .addOption(new Option('--format <format>', 'input format (default: the one the model was trained from)').choices(PREPROCESS_FORMATS as string[]))
    .option('--out <file>', 'write the predictions as CSV (label, and p_<class> columns with --proba); default: to stdout unless --json')
    .option('--proba', 'add each class probability to the predictions')
    .option('--json', 'print one JSON object with the counts and metrics')
    .action(async (modelTarget: string, input: string, o: { format?: string; out?: string; proba?: boolean; json?: boolean }) => {
      const { loadModel, ModelIoError } = await import('./model-io.js');
      const { predictFile } = await import('./predict/predict-file.js');
      const model = await loadModel(modelTarget);
      if (!model.pipeline) throw new ModelIoError('MODEL_FORMAT', `${modelTarget}/model.json: expected a model that carries its input pipeline (saved by this version of cirrus from a preprocessed csv or criteo file), found none`);
      const out = o.out ?? (o.json ? undefined : process.stdout);
      const r = await predictFile(model, model.pipeline, input, { ...(o.format ? { format: o.format } : {}), ...(out ? { out } : {}), ...(o.proba ? { proba: true } : {}) });
      if (o.json) {
        process.stdout.write(JSON.stringify({ input, rows: r.rows, labeled: r.labeled, ...(r.accuracy !== undefined ? { accuracy: r.accuracy, logLoss: r.logLoss } : {}), ...(r.ssePerRow !== undefined ? { ssePerRow: r.ssePerRow } : {}), ...(o.out ? { out: o.out } : {}) }) + '\n');
        return;
      }
      // The summary goes where it does not mix with predictions written to stdout.
      const say = o.out ? process.stdout : process.stderr;
      if (r.ssePerRow !== undefined) {
        say.write(`${r.rows} rows assigned to clusters: within-cluster sum of squares ${r.ssePerRow.toFixed(4)} per row${o.out ? `; cluster ids in ${o.out}` : ''}\n`);
        return;
      }
      const metrics = r.accuracy !== undefined ? `: accuracy ${(100 * r.accuracy).toFixed(2)}%, log-loss ${r.logLoss!.toFixed(4)}` : r.labeled > 0 ? ` (${r.labeled} with labels; metrics need every row labeled)` : ' (no labels)';
      say.write(`${r.rows} rows predicted${metrics}${o.out ? `; predictions in ${o.out}` : ''}\n`);
    });
}
