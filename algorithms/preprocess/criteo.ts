/**
 * Criteo click logs (Kaggle display-advertising layout): 40 tab-separated columns per line:
 * label (0 or 1), I1..I13 integer counts (empty = missing; negatives occur and are kept),
 * C1..C26 categorical values (hex strings in the published data; empty = missing). Any string is
 * accepted as a categorical value, since it is only ever hashed. Blank lines carry no row and are
 * skipped.
 */
import { InputError, quote } from './errors.js';
import type { FeatureHasher } from './hashing.js';
import type { SparseRow } from './libsvm.js';
import { LineParser } from './line-parser.js';
import { isBlank } from './lines.js';

export const CRITEO_INT_COLUMNS = 13;
export const CRITEO_CAT_COLUMNS = 26;
export const CRITEO_COLUMNS = 1 + CRITEO_INT_COLUMNS + CRITEO_CAT_COLUMNS;
/** Column names as in the Criteo documentation: I1..I13, C1..C26. */
export const CRITEO_INT_NAMES: readonly string[] = Array.from({ length: CRITEO_INT_COLUMNS }, (_, i) => `I${i + 1}`);
export const CRITEO_CAT_NAMES: readonly string[] = Array.from({ length: CRITEO_CAT_COLUMNS }, (_, i) => `C${i + 1}`);

export interface CriteoRow {
  label: 0 | 1;
  /** I1..I13; null when missing. */
  ints: Array<number | null>;
  /** C1..C26; null when missing. */
  cats: Array<string | null>;
  line: number;
}

/** Largest magnitude kept exactly: beyond it an "integer" is no longer one in a double. */
const MAX_SAFE_DIGITS = 15;

export class CriteoParser extends LineParser<CriteoRow> {
  rowBatches(): AsyncGenerator<CriteoRow[]> {
    return this.parseLines((text, line) => (isBlank(text) ? null : this.parseLine(text, line)));
  }

  /**
   * Rows hashed straight out of each line, with no string per cell (the fast path of the
   * pipeline). `hashedCols[k]` is the hasher's column for C(k+1), or -1 to leave that column out;
   * the hasher's numeric columns are I1..I13.
   */
  hashedBatches(hasher: FeatureHasher, hashedCols: readonly number[]): AsyncGenerator<SparseRow[]> {
    return this.parseLines((text, line) => (isBlank(text) ? null : this.parseLineHashed(text, line, hasher, hashedCols)));
  }

  parseLineHashed(text: string, line: number, hasher: FeatureHasher, hashedCols: readonly number[]): SparseRow {
    hasher.begin();
    let label: 0 | 1 = 0;
    let pos = 0;
    for (let col = 0; col < CRITEO_COLUMNS; col++) {
      let end = text.indexOf('\t', pos);
      const last = col === CRITEO_COLUMNS - 1;
      if (end === -1 ? !last : last) {
        // Too few or too many tabs: the slow path reports it with the exact count.
        this.explain(text, line);
      }
      if (end === -1) end = text.length;
      if (col === 0) {
        const c = text.charCodeAt(pos);
        if (end - pos !== 1 || (c !== 48 && c !== 49)) this.explain(text, line);
        label = c === 49 ? 1 : 0;
      } else if (col <= CRITEO_INT_COLUMNS) {
        if (end > pos) {
          const v = parseInteger(text, pos, end);
          if (v === undefined) this.explain(text, line);
          hasher.addNumeric(col - 1, v);
        }
      } else if (end > pos) {
        const h = hashedCols[col - 1 - CRITEO_INT_COLUMNS]!;
        if (h >= 0) hasher.addHashed(h, text, pos, end);
      }
      pos = end + 1;
    }
    const { indices, values } = hasher.end();
    return { label, indices, values, line };
  }

  /** The fast path found a fault: the plain parser names it exactly. */
  private explain(text: string, line: number): never {
    this.parseLine(text, line);
    throw new Error(`CriteoParser: line ${line} failed the fast path but parsed (please report)`);
  }

  parseLine(text: string, line: number): CriteoRow {
    const cells = text.split('\t');
    if (cells.length !== CRITEO_COLUMNS) {
      throw new InputError('INPUT_COLUMNS', this.file, `expected ${CRITEO_COLUMNS} tab-separated columns (label, I1..I13, C1..C26), found ${cells.length}`, { line });
    }
    const labelText = cells[0]!;
    if (labelText !== '0' && labelText !== '1') {
      throw new InputError('INPUT_LABEL', this.file, `expected a click label 0 or 1, found ${quote(labelText)}`, { line, column: 1, columnName: 'label' });
    }
    const ints = new Array<number | null>(CRITEO_INT_COLUMNS);
    for (let k = 0; k < CRITEO_INT_COLUMNS; k++) {
      const cell = cells[1 + k]!;
      if (cell.length === 0) {
        ints[k] = null;
        continue;
      }
      const v = parseInteger(cell, 0, cell.length);
      if (v === undefined) {
        throw new InputError('INPUT_PARSE', this.file, `expected an integer or an empty cell, found ${quote(cell)}`, { line, column: 2 + k, columnName: CRITEO_INT_NAMES[k]! });
      }
      ints[k] = v;
    }
    const cats = new Array<string | null>(CRITEO_CAT_COLUMNS);
    for (let k = 0; k < CRITEO_CAT_COLUMNS; k++) {
      const cell = cells[1 + CRITEO_INT_COLUMNS + k]!;
      cats[k] = cell.length === 0 ? null : cell;
    }
    return { label: labelText === '0' ? 0 : 1, ints, cats, line };
  }
}

/** text[start, end) as an optional '-' and 1..15 digits; undefined for anything else. */
function parseInteger(text: string, start: number, end: number): number | undefined {
  let i = start;
  let negative = false;
  if (text.charCodeAt(i) === 45) {
    negative = true;
    i++;
  }
  if (i === end || end - i > MAX_SAFE_DIGITS) return undefined;
  let v = 0;
  for (; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  return negative ? -v : v;
}

/** Rows of a Criteo TSV file, one at a time. */
export function parseCriteo(file: string): AsyncGenerator<CriteoRow> {
  return new CriteoParser(file).rows();
}
