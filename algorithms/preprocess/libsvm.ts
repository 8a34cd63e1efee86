/**
 * libsvm / svmlight text: `label idx:val idx:val ... # comment`. Indices are 1-based unless
 * `zeroBased`, and must strictly increase within a line; a `qid:N` token right after the label is
 * accepted and ignored. Blank and comment-only lines carry no row and are skipped (they are not data).
 * Rows come out with 0-based indices.
 */
import { InputError, quote } from './errors.js';
import { LineParser } from './line-parser.js';
import { parseDecimal } from './lines.js';

export interface SparseRow {
  label: number;
  /** 0-based, strictly increasing. */
  indices: number[];
  values: number[];
  /** 1-based line of the input (for messages). */
  line: number;
}

export interface LibsvmOptions {
  /** Indices in the file start at 0 instead of svmlight's 1. */
  zeroBased?: boolean;
  /** Size of the feature space when known: an index at or beyond it is an error. */
  features?: number;
}

const MAX_INDEX = 0xfffffffe; // indices are stored as u32 and the feature count must fit too

export class LibsvmParser extends LineParser<SparseRow> {
  private readonly zeroBased: boolean;
  private readonly features: number | undefined;
  /** Largest 0-based feature index seen so far, -1 before any. */
  maxIndex = -1;

  constructor(file: string, options: LibsvmOptions = {}) {
    super(file);
    this.zeroBased = options.zeroBased ?? false;
    this.features = options.features;
  }

  rowBatches(): AsyncGenerator<SparseRow[]> {
    return this.parseLines((text, line) => this.parseLine(text, line));
  }

  /** Parses one line; null for blank and comment-only lines. */
  parseLine(text: string, line: number): SparseRow | null {
    let end = text.indexOf('#');
    if (end === -1) end = text.length;
    let i = skipSpace(text, 0, end);
    if (i >= end) return null;
    let tokEnd = tokenEnd(text, i, end);
    const label = parseDecimal(text, i, tokEnd);
    if (Number.isNaN(label)) throw this.fail(line, 1, 'label', `expected a numeric label, found ${quote(text.slice(i, tokEnd))}`);
    const indices: number[] = [];
    const values: number[] = [];
    const base = this.zeroBased ? 0 : 1;
    let prev = -1;
    let token = 1;
    for (i = skipSpace(text, tokEnd, end); i < end; i = skipSpace(text, tokEnd, end)) {
      token++;
      tokEnd = tokenEnd(text, i, end);
      const colon = text.indexOf(':', i);
      if (colon === -1 || colon >= tokEnd) {
        throw this.fail(line, token, undefined, `expected index:value, found ${quote(text.slice(i, tokEnd))}`);
      }
      // qid (ranking data) carries no feature; svmlight puts it right after the label.
      if (colon - i === 3 && text.startsWith('qid', i)) {
        if (token !== 2) throw this.fail(line, token, undefined, `expected qid:N only right after the label, found ${quote(text.slice(i, tokEnd))} after features`);
        continue;
      }
      // Digits only: a sign, a decimal point or an exponent is not an index.
      let idx = 0;
      for (let k = i; k < colon; k++) {
        const d = text.charCodeAt(k) - 48;
        if (d < 0 || d > 9) {
          idx = -1;
          break;
        }
        idx = idx * 10 + d;
      }
      if (colon === i || idx < 0 || idx > MAX_INDEX) {
        throw this.fail(line, token, undefined, `expected an integer feature index (${base}-based), found ${quote(text.slice(i, tokEnd))}`);
      }
      if (idx < base) {
        throw this.fail(line, token, undefined, `expected a feature index >= 1 (svmlight indices are 1-based; pass zeroBased for 0-based files), found ${quote(text.slice(i, tokEnd))}`);
      }
      const index = idx - base;
      if (index <= prev) {
        throw this.fail(line, token, undefined, `expected a feature index greater than ${prev + base} (indices must increase within a line), found ${idx}`);
      }
      if (this.features !== undefined && index >= this.features) {
        throw this.fail(line, token, undefined, `expected a feature index below ${this.features + base} (features = ${this.features}), found ${idx}`);
      }
      const value = parseDecimal(text, colon + 1, tokEnd);
      if (Number.isNaN(value)) throw this.fail(line, token, undefined, `expected a numeric value after ':', found ${quote(text.slice(i, tokEnd))}`);
      indices.push(index);
      values.push(value);
      prev = index;
    }
    if (prev > this.maxIndex) this.maxIndex = prev;
    return { label, indices, values, line };
  }

  private fail(line: number, token: number, where: string | undefined, detail: string): InputError {
    return new InputError('INPUT_PARSE', this.file, detail, { line, column: token, unit: 'token', ...(where !== undefined ? { where } : {}) });
  }
}

/** Rows of a libsvm file, one at a time. */
export function parseLibsvm(file: string, options: LibsvmOptions = {}): AsyncGenerator<SparseRow> {
  return new LibsvmParser(file, options).rows();
}

function skipSpace(text: string, i: number, end: number): number {
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9) break;
    i++;
  }
  return i;
}

function tokenEnd(text: string, i: number, end: number): number {
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9) break;
    i++;
  }
  return i;
}
