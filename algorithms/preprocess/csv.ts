/**
 * Dense CSV: one row per line, the same number of columns on every line, every cell numeric except
 * the header and the columns named as categorical (kept as strings for feature hashing).
 *
 * - Header: detected when the first row has any non-numeric cell (override with `header`). A
 *   header of numbers only (e.g. "1,2,3") is therefore read as data unless `header: true`.
 * - Label: `labelColumn` by header name or 0-based index (negative counts from the end); default
 *   the last column. The label must be numeric.
 * - Quoting: a field may be enclosed in double quotes ("" inside is a quote), so a header name may
 *   hold the delimiter; a quoted field cannot span lines.
 * - Blank lines carry no row and are skipped; a UTF-8 byte order mark is dropped.
 */
import { InputError, quote } from './errors.js';
import { LineParser } from './line-parser.js';
import { isBlank, parseDecimal, parseNumber } from './lines.js';

export interface DenseRow {
  label: number;
  /** Numeric features, in column order, label (and categorical columns) left out. */
  x: ArrayLike<number>;
  /** Cells of the categorical columns, in the order they were asked for. */
  cats?: string[];
  /** 1-based line of the input (IDX: 1-based item), for messages. */
  line: number;
}

export interface CsvOptions {
  /** Field delimiter, default ','. */
  delimiter?: string;
  /** Force (true) or forbid (false) a header row; default: detect. */
  header?: boolean;
  /** Label column by header name, or 0-based index (negative from the end). Default: the last column. */
  labelColumn?: string | number;
  /** Columns (header names) whose cells are strings to be hashed, not numbers. */
  categorical?: string[];
  /**
   * Maps a label cell to the stored label (e.g. class names to class indices); undefined means
   * the cell is not a label this dataset knows, reported with `labelExpected`. Default: the number.
   */
  labelOf?: (text: string) => number | undefined;
  /** What `labelOf` accepts, for the error message (e.g. "one of the training labels 'cat', 'dog'"). */
  labelExpected?: string;
}

export class CsvParser extends LineParser<DenseRow> {
  private readonly delimiter: string;
  private readonly options: CsvOptions;
  /** Known after the first row: columns per line, whether line 1 was a header, its names. */
  columns = 0;
  hasHeader = false;
  header: string[] | undefined;
  /** 0-based column of the label. */
  labelIndex = -1;
  /** Names of the numeric feature columns in x order (header files only). */
  featureNames: string[] | undefined;
  /** 0-based columns of the numeric features and of the categorical columns. */
  private featureCols: number[] = [];
  private catCols: number[] = [];

  constructor(file: string, options: CsvOptions = {}) {
    super(file);
    this.options = options;
    this.delimiter = options.delimiter ?? ',';
    if (this.delimiter.length === 0 || this.delimiter.includes('"') || this.delimiter.includes('\n')) {
      throw new InputError('INPUT_FORMAT', file, `expected a delimiter that is not empty, '"' or a newline, found ${quote(this.delimiter)}`);
    }
  }

  /** Number of numeric features per row. */
  get features(): number {
    return this.featureCols.length;
  }

  rowBatches(): AsyncGenerator<DenseRow[]> {
    let first = true;
    let firstLine = 0;
    return this.parseLines((text, line) => {
      if (isBlank(text)) return null;
      const cells = this.split(text, line);
      if (first) {
        first = false;
        firstLine = line;
        if (this.setup(cells, line)) return null;
      } else if (cells.length !== this.columns) {
        const origin = this.hasHeader ? `as in the header on line ${firstLine}` : `as on line ${firstLine}`;
        throw new InputError('INPUT_COLUMNS', this.file, `expected ${this.columns} columns (${origin}), found ${cells.length}`, { line });
      }
      return this.toRow(cells, line);
    });
  }

  /** Reads the first row's shape; returns true when it is a header (no data). */
  private setup(cells: string[], line: number): boolean {
    this.columns = cells.length;
    this.hasHeader = this.options.header ?? cells.some((c) => Number.isNaN(parseNumber(c)));
    if (this.hasHeader) this.header = cells.map((c) => c.trim());
    const header = this.header;
    const resolve = (col: string | number, role: string): number => {
      if (typeof col === 'number') {
        const idx = col < 0 ? this.columns + col : col;
        if (!Number.isInteger(col) || idx < 0 || idx >= this.columns) {
          throw new InputError('INPUT_COLUMNS', this.file, `expected a ${role} column index in [${-this.columns}, ${this.columns}) for ${this.columns} columns, found ${col}`, { line });
        }
        return idx;
      }
      if (!header) {
        throw new InputError('INPUT_COLUMNS', this.file, `expected a header row to find the ${role} column ${quote(col)} by name, found a row of numbers (pass header: true if it is a header)`, { line });
      }
      const idx = header.indexOf(col);
      if (idx === -1) {
        const shown = header.slice(0, 20).map((h) => quote(h)).join(', ') + (header.length > 20 ? ', ...' : '');
        throw new InputError('INPUT_COLUMNS', this.file, `expected a ${role} column named ${quote(col)} in the header, found only ${shown}`, { line });
      }
      return idx;
    };
    this.labelIndex = resolve(this.options.labelColumn ?? -1, 'label');
    this.catCols = (this.options.categorical ?? []).map((c) => resolve(c, 'categorical'));
    if (this.catCols.includes(this.labelIndex)) {
      throw new InputError('INPUT_COLUMNS', this.file, `expected the label column ${quote(header?.[this.labelIndex] ?? String(this.labelIndex))} not to be categorical too`, { line });
    }
    this.featureCols = [];
    for (let c = 0; c < this.columns; c++) if (c !== this.labelIndex && !this.catCols.includes(c)) this.featureCols.push(c);
    if (header) this.featureNames = this.featureCols.map((c) => header[c]!);
    return this.hasHeader;
  }

  private toRow(cells: string[], line: number): DenseRow {
    const labelText = cells[this.labelIndex]!;
    const labelOf = this.options.labelOf;
    const label = labelOf ? labelOf(labelText.trim()) : parseNumber(labelText);
    if (label === undefined || Number.isNaN(label)) {
      const expected = labelOf ? (this.options.labelExpected ?? 'a known label') : 'a numeric label';
      throw new InputError('INPUT_LABEL', this.file, `expected ${expected}, found ${quote(labelText)}`, this.at(line, this.labelIndex));
    }
    const cols = this.featureCols;
    const x = new Array<number>(cols.length);
    for (let k = 0; k < cols.length; k++) {
      const c = cols[k]!;
      const cell = cells[c]!;
      const v = parseDecimal(cell, 0, cell.length);
      if (Number.isNaN(v)) throw new InputError('INPUT_PARSE', this.file, `expected a number, found ${quote(cell)}`, this.at(line, c));
      x[k] = v;
    }
    if (this.catCols.length === 0) return { label, x, line };
    return { label, x, cats: this.catCols.map((c) => cells[c]!.trim()), line };
  }

  private at(line: number, col: number): { line: number; column: number; columnName?: string } {
    const name = this.header?.[col];
    return name !== undefined ? { line, column: col + 1, columnName: name } : { line, column: col + 1 };
  }

  /** Splits a line on the delimiter, honouring double-quoted fields. */
  split(text: string, line: number): string[] {
    if (!text.includes('"')) return text.split(this.delimiter);
    const cells: string[] = [];
    const d = this.delimiter;
    let i = 0;
    for (;;) {
      let cell = '';
      // Leading spaces before a quote are tolerated, as many writers emit `a, "b"`.
      let j = i;
      while (text.charCodeAt(j) === 32) j++;
      if (text[j] === '"') {
        j++;
        for (;;) {
          const q = text.indexOf('"', j);
          if (q === -1) {
            throw new InputError('INPUT_PARSE', this.file, 'expected a closing \'"\' before the end of the line (quoted fields cannot span lines)', { line, column: cells.length + 1 });
          }
          cell += text.slice(j, q);
          if (text[q + 1] === '"') {
            cell += '"';
            j = q + 2;
          } else {
            j = q + 1;
            break;
          }
        }
        while (text.charCodeAt(j) === 32) j++;
        cells.push(cell);
        if (j >= text.length) return cells;
        if (!text.startsWith(d, j)) {
          throw new InputError('INPUT_PARSE', this.file, `expected ${quote(d)} after a quoted field, found ${quote(text.slice(j))}`, { line, column: cells.length });
        }
        i = j + d.length;
      } else {
        const next = text.indexOf(d, i);
        if (next === -1) {
          cells.push(text.slice(i));
          return cells;
        }
        cells.push(text.slice(i, next));
        i = next + d.length;
      }
    }
  }
}

/** Rows of a dense CSV file, one at a time. */
export function parseCsv(file: string, options: CsvOptions = {}): AsyncGenerator<DenseRow> {
  return new CsvParser(file, options).rows();
}
