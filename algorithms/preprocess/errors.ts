/**
 * Typed errors of preprocessing. Every message names the file, the line (1-based) and the column
 * where they apply, and says what was expected and what was found, e.g.
 *   data.csv:17: column 3 ('age'): expected a number, found 'abc'
 */
import { CirrusError } from '../../paramserver/index.js';

export type InputErrorCode =
  | 'INPUT_PARSE' // a value or token does not parse
  | 'INPUT_EMPTY' // no data rows at all
  | 'INPUT_COLUMNS' // wrong number of columns, unknown column name
  | 'INPUT_LABEL' // label outside what the task allows
  | 'INPUT_FORMAT' // binary layout / container problems (IDX magic, sizes, gzip, overlong line)
  | 'INPUT_MISSING'; // the input file or directory (or one of its expected files) does not exist

export interface InputLocation {
  /** 1-based line of a text file (for IDX files: not set; use `where` = 'item N'). */
  line?: number;
  /** 1-based column (CSV/TSV column, libsvm token) when the problem sits in one. */
  column?: number;
  /** Header name of the column, shown in quotes after its number. */
  columnName?: string;
  /**
   * What the column number counts, default 'column'. libsvm uses 'token' because its fields are
   * whitespace-separated tokens, not fixed columns.
   */
  unit?: 'column' | 'token';
  /** A locator that replaces the column part, e.g. 'label' or 'item 17'. */
  where?: string;
}

export class InputError extends CirrusError<InputErrorCode> {
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(code: InputErrorCode, file: string, detail: string, at: InputLocation = {}, options?: { cause?: unknown }) {
    super(code, formatInputMessage(file, detail, at), options);
    this.file = file;
    this.line = at.line;
    this.column = at.column;
  }
}

/** Options that make no sense together (e.g. hashing a libsvm file); not a problem of the input data. */
export class PreprocessOptionsError extends CirrusError<'PREPROCESS_OPTIONS'> {
  constructor(message: string) {
    super('PREPROCESS_OPTIONS', message);
  }
}

const SHOWN_CHARS = 40;

/** Quotes a found value for a message, cut short so a 10 MB line does not become a 10 MB message. */
export function quote(found: string): string {
  const cut = found.length > SHOWN_CHARS ? `${found.slice(0, SHOWN_CHARS)}...` : found;
  return `'${cut}'`;
}

function formatInputMessage(file: string, detail: string, at: InputLocation): string {
  let head = at.line !== undefined ? `${file}:${at.line}` : file;
  let where = at.where;
  if (where === undefined && at.column !== undefined) {
    where = `${at.unit ?? 'column'} ${at.column}${at.columnName !== undefined ? ` (${quote(at.columnName)})` : ''}`;
  }
  if (where !== undefined) head += `: ${where}`;
  return `${head}: ${detail}`;
}
