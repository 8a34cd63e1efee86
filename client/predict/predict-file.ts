/**
 * Predictions for a raw file, streamed: one chunk of lines at a time is prepared (the model's
 * pipeline), predicted and written, so memory is bounded by a chunk, never by the file. When every
 * row carries its label, the file's accuracy and log-loss come out too, counted exactly as a
 * training run evaluates its test split (same model code, same evaluator).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { Evaluator, InputError, quote, isBlank, parseNumber, readLineBatches, CsvParser } from '../../algorithms/index.js';
import type { InputPipeline } from './pipeline.js';
import { RowPreparer, type RawRow } from './prepare.js';
import { ModelQueryError } from '../model-queries.js';
import { isBinaryModel, isClusterModel, toPrediction, type PredictingModel } from './predict-rows.js';

export interface PredictFileOptions {
  /** Input format; default the one the model was trained from. */
  format?: string;
  /** Where predictions go (CSV: label, then probabilities with `proba`); undefined writes none. */
  out?: NodeJS.WritableStream | string;
  proba?: boolean;
}

export interface PredictFileResult {
  rows: number;
  /** Rows that carried a label. */
  labeled: number;
  /** k-means: the within-cluster sum of squares per row, over every row (labels play no part). */
  ssePerRow?: number;
  /** Over the labeled rows, when every row had its label. */
  accuracy?: number;
  logLoss?: number;
  auc?: number;
}

export async function predictFile(model: PredictingModel, pipeline: InputPipeline, file: string, options: PredictFileOptions = {}): Promise<PredictFileResult> {
  const format = options.format ?? pipeline.format;
  if (format !== pipeline.format) {
    throw new InputError('INPUT_FORMAT', file, `expected ${pipeline.format} input (the format the model was trained from), found --format ${format}`);
  }
  const clusters = isClusterModel(model);
  if (clusters && options.proba) throw new ModelQueryError('--proba: a k-means model assigns each row a cluster id; it has no class probabilities');
  const preparer = new RowPreparer(pipeline, file);
  const header = format === 'csv' ? new CsvHeader(pipeline, file) : undefined;
  const ev = new Evaluator(false);
  let rows = 0;
  let labeled = 0;
  const out = typeof options.out === 'string' ? createWriteStream(options.out) : options.out;
  const names = Array.from({ length: isBinaryModel(model) ? 2 : model.spec.classes }, (_, c) => String(pipeline.labelNames?.[c] ?? c));
  try {
    if (out) await write(out, [clusters ? 'cluster' : 'label', ...(options.proba ? names.map((n) => `p_${n}`) : [])].map(csvCell).join(',') + '\n');
    for await (const batch of readLineBatches(file)) {
      const raw: RawRow[] = [];
      const lines: number[] = [];
      for (let i = 0; i < batch.lines.length; i++) {
        const text = batch.lines[i]!;
        if (isBlank(text)) continue;
        const line = batch.firstNumber + i;
        const row = header ? header.row(text, line) : text;
        if (row !== undefined) {
          raw.push(row);
          lines.push(line);
        }
      }
      if (raw.length === 0) continue;
      const prepared = preparer.prepare(raw, lines[0], lines);
      const probs = model.predictPrepared(prepared.batch);
      const pred = toPrediction(model, pipeline, raw.length, probs);
      rows += raw.length;
      const withLabel = prepared.labeled.filter(Boolean).length;
      labeled += withLabel;
      if (clusters || withLabel === raw.length) ev.add(model.evaluate(prepared.batch), prepared.batch.labels);
      if (out) {
        let text = '';
        for (let i = 0; i < raw.length; i++) {
          text += csvCell(String(pred.labels[i]));
          if (options.proba) for (const p of pred.probabilities[i]!) text += `,${p}`;
          text += '\n';
        }
        await write(out, text);
      }
    }
  } finally {
    if (out && typeof options.out === 'string') await new Promise<void>((resolve, reject) => (out as WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));
  }
  if (rows === 0) throw new InputError('INPUT_EMPTY', file, 'expected at least one data row to predict, found none');
  const result: PredictFileResult = { rows, labeled };
  if (clusters) {
    result.ssePerRow = ev.result().loss;
  } else if (labeled === rows) {
    const r = ev.result();
    result.accuracy = r.accuracy;
    result.logLoss = r.loss;
  }
  return result;
}

/**
 * The first line of a CSV: the header of the training file (with or without its label column) is
 * skipped; a header of other names is refused naming what was expected; a file trained without a
 * header starts with data.
 */
class CsvHeader {
  private seen = false;
  private readonly splitter: CsvParser;
  /** When the file's header orders the columns differently: its names, to key each row by. */
  private keys: string[] | undefined;

  constructor(
    private readonly pipeline: InputPipeline,
    private readonly file: string,
  ) {
    this.splitter = new CsvParser(file, { delimiter: pipeline.csv!.delimiter });
  }

  row(text: string, line: number): RawRow | undefined {
    const cells = this.splitter.split(text, line);
    if (!this.seen) {
      this.seen = true;
      if (cells.some((c) => Number.isNaN(parseNumber(c)))) {
        if (this.looksLikeHeader(cells)) {
          this.checkHeader(cells.map((c) => c.trim()), line);
          return undefined;
        }
      }
    }
    if (!this.keys) return cells;
    const obj: Record<string, string> = {};
    this.keys.forEach((k, i) => (obj[k] = cells[i]!));
    return obj;
  }

  /** A first line whose cells include a training column name is a header; otherwise it is data (and fails as such). */
  private looksLikeHeader(cells: string[]): boolean {
    const header = this.pipeline.csv!.header;
    if (!header) return false;
    return cells.some((c) => header.includes(c.trim()));
  }

  private checkHeader(names: string[], line: number): void {
    const csv = this.pipeline.csv!;
    const header = csv.header!;
    const label = header[csv.labelColumn]!;
    const withoutLabel = header.filter((_, c) => c !== csv.labelColumn);
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    if (same(names, header) || same(names, withoutLabel)) return;
    const missing = withoutLabel.filter((n) => !names.includes(n));
    const extra = names.filter((n) => !header.includes(n));
    if (missing.length > 0 || extra.length > 0) {
      const parts = [missing.length ? `missing ${missing.map((m) => quote(m)).join(', ')}` : '', extra.length ? `unknown ${extra.map((m) => quote(m)).join(', ')}` : ''].filter(Boolean);
      throw new InputError('INPUT_COLUMNS', this.file, `expected the columns the model was trained on (${header.join(csv.delimiter)}; the label ${quote(label)} may be left out), found ${names.join(csv.delimiter)}: ${parts.join('; ')}`, { line });
    }
    // Same columns in another order: rows are keyed by name.
    this.keys = names;
  }
}

function csvCell(v: string): string {
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function write(out: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = out.write(text, (e) => (e ? reject(e) : undefined));
    if (ok) resolve();
    else out.once('drain', () => resolve());
  });
}
