/**
 * Raw rows -> the batch a model takes, through a model's input pipeline, with the same code and the
 * same float32 rounding as preprocessing: cells parse with the CSV parser's number reader, Criteo
 * lines go through the Criteo parser's hashing path, rows are stored as float32 like the shards,
 * and scaling is the very transform the preprocess workers applied. So a raw row predicts exactly
 * as its preprocessed twin does.
 */
import { CRITEO_CAT_NAMES, CRITEO_INT_NAMES, CriteoParser, CsvParser, InputError, quote, FeatureHasher, parseDecimal, parseNumber, minMaxScale, zScore, type Batch } from '../../algorithms/index.js';
import type { DenseShard, SparseShard } from '../../channels/index.js';
import type { InputPipeline } from './pipeline.js';

/** A raw row: a line of the input file, its cells in file order, or an object keyed by column name. */
export type RawCell = string | number | null | undefined;
export type RawRow = string | readonly RawCell[] | Readonly<Record<string, RawCell>>;

interface PreparedRows {
  batch: Batch;
  /** Per row: whether it carried a label (then batch.labels holds it as a class index). */
  labeled: boolean[];
}

const CRITEO_NAMES = ['label', ...CRITEO_INT_NAMES, ...CRITEO_CAT_NAMES];

export class RowPreparer {
  private readonly csvSplitter: CsvParser | undefined;
  private readonly hasher: FeatureHasher | undefined;
  /** CSV: columns of the numeric features and of the hashed columns, in the order the parser used. */
  private readonly featureCols: number[] = [];
  private readonly catCols: number[] = [];
  private readonly labelIndex: Map<string, number> | undefined;
  private readonly hashedCriteoCols: number[] = [];

  constructor(
    readonly pipeline: InputPipeline,
    /** The file (or 'rows') errors name. */
    readonly source = 'rows',
  ) {
    const p = pipeline;
    if (p.format !== 'csv' && p.format !== 'criteo') {
      throw new InputError('INPUT_FORMAT', source, `expected a model trained from csv or criteo input to predict raw rows, this one was trained from ${p.format} data (use predictPrepared with preprocessed rows)`);
    }
    if (p.hash) {
      this.hasher = new FeatureHasher({ bits: p.hash.bits, hashed: p.hash.columns, numeric: p.hash.numeric, numericTransform: p.hash.numericTransform, bias: p.hash.bias, seed: p.hash.seed });
    }
    if (p.format === 'csv') {
      const csv = p.csv;
      if (!csv) throw new InputError('INPUT_FORMAT', source, 'expected the model to describe its CSV columns (it was saved before models carried their input pipeline)');
      this.csvSplitter = new CsvParser(source, { delimiter: csv.delimiter });
      const cats = p.hash?.columns ?? [];
      for (const name of cats) this.catCols.push(csv.header ? csv.header.indexOf(name) : -1);
      for (let c = 0; c < csv.columns; c++) if (c !== csv.labelColumn && !this.catCols.includes(c)) this.featureCols.push(c);
    } else {
      const hashed = p.hash?.columns ?? [];
      this.hashedCriteoCols = CRITEO_CAT_NAMES.map((n) => hashed.indexOf(n));
    }
    if (p.labelNames) this.labelIndex = new Map(p.labelNames.map((n, i) => [n, i]));
  }

  /** Names of the raw columns, label included, in file order (undefined for a CSV without header). */
  get columnNames(): string[] | undefined {
    return this.pipeline.format === 'criteo' ? CRITEO_NAMES : (this.pipeline.csv?.header ?? undefined);
  }

  /** Prepares rows; `firstLine` numbers them in messages (line numbers of a file). */
  prepare(rows: readonly RawRow[], firstLine = 1, lines?: readonly number[]): PreparedRows {
    const lineOf = (i: number) => lines?.[i] ?? firstLine + i;
    return this.pipeline.format === 'criteo' ? this.prepareCriteo(rows, lineOf) : this.prepareCsv(rows, lineOf);
  }

  private prepareCsv(rows: readonly RawRow[], lineOf: (i: number) => number): PreparedRows {
    const p = this.pipeline;
    const csv = p.csv!;
    const n = rows.length;
    const labels = new Float32Array(n);
    const labeled: boolean[] = [];
    const dense = !this.hasher;
    const x = dense ? new Float32Array(n * p.features) : undefined;
    const indptr = new Uint32Array(n + 1);
    const idx: number[] = [];
    const val: number[] = [];
    const nums = new Array<number>(this.featureCols.length);
    for (let i = 0; i < n; i++) {
      const line = lineOf(i);
      const cells = this.csvCells(rows[i]!, line);
      const hasLabel = cells.length === csv.columns;
      // Without its label, every column after the label's moves one to the left.
      const at = (c: number) => cells[hasLabel || c < csv.labelColumn ? c : c - 1];
      labeled.push(hasLabel);
      if (hasLabel) labels[i] = this.label(cells[csv.labelColumn], line, csv.labelColumn);
      for (let k = 0; k < this.featureCols.length; k++) nums[k] = this.number(at(this.featureCols[k]!), line, this.featureCols[k]!);
      if (x) {
        x.set(nums, i * p.features);
      } else {
        const cats = this.catCols.map((c) => {
          const v = at(c);
          return v === null || v === undefined ? null : String(v).trim();
        });
        const h = this.hasher!.hashRow(cats, nums);
        for (let k = 0; k < h.indices.length; k++) {
          idx.push(h.indices[k]!);
          val.push(h.values[k]!);
        }
      }
      indptr[i + 1] = idx.length;
    }
    const shard: DenseShard | SparseShard = x
      ? { kind: 'dense', rows: n, cols: p.features, labels, x }
      : { kind: 'sparse', rows: n, cols: p.features, labels, indptr, indices: Uint32Array.from(idx), values: Float32Array.from(val) };
    return { batch: this.scale(shard), labeled };
  }

  private prepareCriteo(rows: readonly RawRow[], lineOf: (i: number) => number): PreparedRows {
    const parser = new CriteoParser(this.source);
    const n = rows.length;
    const labels = new Float32Array(n);
    const labeled: boolean[] = [];
    const indptr = new Uint32Array(n + 1);
    const idx: number[] = [];
    const val: number[] = [];
    for (let i = 0; i < n; i++) {
      let text = this.criteoLine(rows[i]!);
      const tabs = countTabs(text);
      // A line of 39 columns has no label: parse it with a placeholder one.
      const hasLabel = tabs !== CRITEO_NAMES.length - 2;
      if (!hasLabel) text = `0\t${text}`;
      const r = parser.parseLineHashed(text, lineOf(i), this.hasher!, this.hashedCriteoCols);
      labeled.push(hasLabel);
      labels[i] = r.label;
      for (let k = 0; k < r.indices.length; k++) {
        idx.push(r.indices[k]!);
        val.push(r.values[k]!);
      }
      indptr[i + 1] = idx.length;
    }
    const shard: SparseShard = { kind: 'sparse', rows: n, cols: this.pipeline.features, labels, indptr, indices: Uint32Array.from(idx), values: Float32Array.from(val) };
    return { batch: this.scale(shard), labeled };
  }

  private criteoLine(row: RawRow): string {
    if (typeof row === 'string') return row;
    if (Array.isArray(row)) return (row as RawCell[]).map((c) => (c === null || c === undefined ? '' : String(c))).join('\t');
    const obj = row as Record<string, RawCell>;
    const names = 'label' in obj ? CRITEO_NAMES : CRITEO_NAMES.slice(1);
    return names.map((k) => (obj[k] === null || obj[k] === undefined ? '' : String(obj[k]))).join('\t');
  }

  /** The row's cells in file order: with the label (csv.columns cells) or without it (one fewer). */
  private csvCells(row: RawRow, line: number): RawCell[] {
    const csv = this.pipeline.csv!;
    let cells: RawCell[];
    if (typeof row === 'string') cells = this.csvSplitter!.split(row, line);
    else if (Array.isArray(row)) cells = row as RawCell[];
    else {
      const header = csv.header;
      if (!header) throw new InputError('INPUT_COLUMNS', this.source, 'expected rows as arrays: the training file had no header, so columns have no names', { line });
      const obj = row as Record<string, RawCell>;
      const label = header[csv.labelColumn]!;
      const missing = header.filter((h) => h !== label && !(h in obj));
      if (missing.length > 0) throw this.columnsError(line, `no column ${missing.map((m) => quote(m)).join(', ')} (found ${Object.keys(obj).map((k) => quote(k)).join(', ') || 'no keys'})`);
      cells = header.filter((h, c) => c !== csv.labelColumn || h in obj).map((h) => obj[h]);
    }
    if (cells.length !== csv.columns && cells.length !== csv.columns - 1) throw this.columnsError(line, `${cells.length} columns`);
    return cells;
  }

  private columnsError(line: number, found: string): InputError {
    const csv = this.pipeline.csv!;
    const names = csv.header ? ` (${csv.header.join(csv.delimiter)})` : '';
    const label = csv.header ? quote(csv.header[csv.labelColumn]!) : `column ${csv.labelColumn + 1}`;
    return new InputError('INPUT_COLUMNS', this.source, `expected the ${csv.columns} columns the model was trained on${names}, or ${csv.columns - 1} without the label ${label}; found ${found}`, { line });
  }

  private number(cell: RawCell, line: number, col: number): number {
    if (typeof cell === 'number') return cell;
    const text = cell ?? '';
    const v = parseDecimal(text, 0, text.length);
    if (Number.isNaN(v)) throw new InputError('INPUT_PARSE', this.source, `expected a number, found ${quote(text)}`, this.at(line, col));
    return v;
  }

  private label(cell: RawCell, line: number, col: number): number {
    const text = cell === null || cell === undefined ? '' : String(cell).trim();
    const v = this.labelIndex ? this.labelIndex.get(text) : parseNumber(text);
    if (v === undefined || Number.isNaN(v)) {
      const expected = this.labelIndex ? `one of the training labels ${[...this.labelIndex.keys()].slice(0, 10).map((k) => quote(k)).join(', ')}` : 'a numeric label';
      throw new InputError('INPUT_LABEL', this.source, `expected ${expected}, found ${quote(text)}`, this.at(line, col));
    }
    return v;
  }

  private at(line: number, col: number): { line: number; column: number; columnName?: string } {
    const name = this.pipeline.csv?.header?.[col];
    return name !== undefined ? { line, column: col + 1, columnName: name } : { line, column: col + 1 };
  }

  private scale(shard: DenseShard | SparseShard): Batch {
    const s = this.pipeline.scale;
    if (!s) return shard;
    const out = s.type === 'zscore' ? zScore(shard, s.stats) : minMaxScale(shard, s.stats, s.lo ?? 0, s.hi ?? 1);
    return out as DenseShard | SparseShard;
  }
}

function countTabs(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\t'); i !== -1; i = text.indexOf('\t', i + 1)) n++;
  return n;
}
