/**
 * Ratings CSV: `user,item,rating` per line, with an optional header (detected when the first
 * row's rating cell is not a number). Ids are non-negative integers (they index the factor
 * matrices, so [0, max id] becomes the id range); ratings are any finite number. Exactly three
 * columns: a fourth (such as MovieLens' timestamp) is reported rather than dropped unseen.
 * Blank lines carry no row and are skipped.
 */
import { InputError, quote } from './errors.js';
import { LineParser } from './line-parser.js';
import { isBlank, parseNumber } from './lines.js';

export interface RatingRow {
  user: number;
  item: number;
  rating: number;
  line: number;
}

export interface RatingsOptions {
  /** Field delimiter, default ','. */
  delimiter?: string;
}

const MAX_ID = 0xfffffffe; // ids are stored as u32 and the id count must fit too
const NAMES = ['user', 'item', 'rating'];

export class RatingsParser extends LineParser<RatingRow> {
  private readonly delimiter: string;
  /** Largest user and item ids seen so far, -1 before any. */
  maxUser = -1;
  maxItem = -1;
  hasHeader = false;

  constructor(file: string, options: RatingsOptions = {}) {
    super(file);
    this.delimiter = options.delimiter ?? ',';
    if (this.delimiter.length === 0) throw new InputError('INPUT_FORMAT', file, 'expected a non-empty delimiter, found an empty one');
  }

  rowBatches(): AsyncGenerator<RatingRow[]> {
    let first = true;
    return this.parseLines((text, line) => {
      if (isBlank(text)) return null;
      const cells = text.split(this.delimiter);
      if (cells.length !== 3) {
        throw new InputError('INPUT_COLUMNS', this.file, `expected 3 columns (user${this.delimiter}item${this.delimiter}rating), found ${cells.length}`, { line });
      }
      if (first) {
        first = false;
        // A header is a first row whose rating is not a number; ids are checked on data rows.
        if (Number.isNaN(parseNumber(cells[2]!))) {
          this.hasHeader = true;
          return null;
        }
      }
      const user = this.id(cells[0]!, line, 0);
      const item = this.id(cells[1]!, line, 1);
      const rating = parseNumber(cells[2]!);
      if (Number.isNaN(rating)) throw this.fail(line, 2, `expected a numeric rating, found ${quote(cells[2]!)}`);
      if (user > this.maxUser) this.maxUser = user;
      if (item > this.maxItem) this.maxItem = item;
      return { user, item, rating, line };
    });
  }

  private id(cell: string, line: number, col: number): number {
    const text = cell.trim();
    let v = 0;
    for (let k = 0; k < text.length; k++) {
      const d = text.charCodeAt(k) - 48;
      if (d < 0 || d > 9) {
        v = -1;
        break;
      }
      v = v * 10 + d;
    }
    if (text.length === 0 || v < 0 || v > MAX_ID) {
      throw this.fail(line, col, `expected a non-negative integer ${NAMES[col]} id below ${MAX_ID + 1}, found ${quote(cell)}`);
    }
    return v;
  }

  private fail(line: number, col: number, detail: string): InputError {
    return new InputError('INPUT_PARSE', this.file, detail, { line, column: col + 1, columnName: NAMES[col]! });
  }
}

/** Rows of a ratings file, one at a time. */
export function parseRatings(file: string, options: RatingsOptions = {}): AsyncGenerator<RatingRow> {
  return new RatingsParser(file, options).rows();
}
