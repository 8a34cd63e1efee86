/**
 * preprocessing.json, written beside a tfjs export, and the helper that applies it: raw rows ->
 * the dense float32 input tensor the exported Layers model takes. It imports nothing that needs
 * Node (the feature hasher is plain code), so it runs in a browser too.
 *
 * preprocessing.json:
 *   { "format": "cirrus-preprocessing", "version": 1,
 *     "inputWidth": <columns of the tfjs input>,
 *     "pipeline": { ...the model's input pipeline: format, kind, task, classes, features,
 *                   featureNames, labelNames, csv {delimiter, header, columns, labelColumn},
 *                   hash {columns, bits, seed, bias, numeric, numericTransform},
 *                   scale {type: 'zscore'|'minmax', lo, hi, stats {count, min, max, mean, std}} } }
 *
 * Applying it (what preprocessForTfjs does, in this order, per row):
 * 1. Cells: a CSV line split on csv.delimiter, an array in file order, or an object by header
 *    name; the label column (csv.labelColumn) is dropped if present. Criteo: the TSV line, with or
 *    without its leading label.
 * 2. Numbers are stored as float32 (Math.fround), as the shards hold them.
 * 3. hash: each hashed column's value goes to bucket murmur3_x86_32(column + '=' + value, seed)
 *    mod 2^bits (count 1 per occurrence); numeric columns sit at 2^bits (+1 with a bias feature)
 *    + k, log1p'd (sign kept) when numericTransform is 'log1p'; the bias feature is 1.
 * 4. scale: zscore: (x - mean) / std per column (hashed data: x / std, no centering); minmax:
 *    lo + (x - min) * (hi - lo) / (max - min) (hashed data: x * hi / max|x|); a column with std 0
 *    (or max = min) becomes 0 (minmax: lo). Computed in float64, stored as float32.
 * 5. Class names: the output's column c is the class pipeline.labelNames[c] (or c).
 */
import { FeatureHasher } from '../../algorithms/index.js';
import type { InputPipeline } from './pipeline.js';

export const PREPROCESSING_FORMAT = 'cirrus-preprocessing';
export const PREPROCESSING_FILE = 'preprocessing.json';

export interface TfjsPreprocessing {
  format: typeof PREPROCESSING_FORMAT;
  version: 1;
  inputWidth: number;
  pipeline: InputPipeline;
}

export type TfjsRawRow = string | ReadonlyArray<string | number | null | undefined> | Readonly<Record<string, string | number | null | undefined>>;

export function preprocessingFor(pipeline: InputPipeline): TfjsPreprocessing {
  return { format: PREPROCESSING_FORMAT, version: 1, inputWidth: pipeline.features, pipeline };
}

const CRITEO_INTS = 13;
const CRITEO_CATS = 26;

/** Raw rows -> a row-major [rows, inputWidth] float32 array for tf.tensor2d(x, [rows, inputWidth]). */
export function preprocessForTfjs(pre: TfjsPreprocessing, rows: readonly TfjsRawRow[]): { x: Float32Array; rows: number; cols: number } {
  if (pre.format !== PREPROCESSING_FORMAT || pre.version !== 1) throw new Error(`preprocessing.json: expected format '${PREPROCESSING_FORMAT}' version 1`);
  const p = pre.pipeline;
  const cols = pre.inputWidth;
  const x = new Float32Array(rows.length * cols);
  const hasher = p.hash ? new FeatureHasher({ bits: p.hash.bits, hashed: p.hash.columns, numeric: p.hash.numeric, numericTransform: p.hash.numericTransform, bias: p.hash.bias, seed: p.hash.seed }) : undefined;
  rows.forEach((row, r) => {
    const base = r * cols;
    if (p.format === 'criteo') {
      const cells = criteoCells(row);
      const nums = cells.slice(0, CRITEO_INTS).map((c) => (c === '' ? null : Number(c)));
      const cats = cells.slice(CRITEO_INTS).map((c) => (c === '' ? null : c));
      const picked = p.hash!.columns.map((name) => cats[Number(name.slice(1)) - 1] ?? null);
      scatter(x, base, hasher!.hashRow(picked, nums));
    } else {
      const cells = csvCells(p, row);
      const csv = p.csv!;
      const catCols = (p.hash?.columns ?? []).map((n) => csv.header!.indexOf(n));
      const nums: number[] = [];
      for (let c = 0; c < csv.columns; c++) if (c !== csv.labelColumn && !catCols.includes(c)) nums.push(toNumber(cells[c], r, c));
      if (hasher) scatter(x, base, hasher.hashRow(catCols.map((c) => (cells[c] === null || cells[c] === undefined ? null : String(cells[c]).trim())), nums));
      else nums.forEach((v, k) => (x[base + k] = v));
    }
  });
  if (p.scale) scaleInPlace(x, rows.length, cols, p);
  return { x, rows: rows.length, cols };
}

function scatter(x: Float32Array, base: number, h: { indices: number[]; values: number[] }): void {
  for (let k = 0; k < h.indices.length; k++) x[base + h.indices[k]!] = h.values[k]!;
}

function toNumber(cell: unknown, row: number, col: number): number {
  const v = typeof cell === 'number' ? cell : typeof cell === 'string' && cell.trim() !== '' ? Number(cell) : NaN;
  if (!Number.isFinite(v)) throw new Error(`row ${row}: column ${col + 1}: expected a number, found ${JSON.stringify(cell)}`);
  return v;
}

/** Cells in file order with the label in its place (undefined when the row leaves it out). */
function csvCells(p: InputPipeline, row: TfjsRawRow): unknown[] {
  const csv = p.csv!;
  let cells: unknown[];
  if (typeof row === 'string') cells = splitCsv(row, csv.delimiter);
  else if (Array.isArray(row)) cells = [...(row as unknown[])];
  else return csv.header!.map((h) => (row as Record<string, unknown>)[h]);
  if (cells.length === csv.columns - 1) cells.splice(csv.labelColumn, 0, undefined);
  if (cells.length !== csv.columns) throw new Error(`expected ${csv.columns} columns (or ${csv.columns - 1} without the label), found ${cells.length}`);
  return cells;
}

/** Splits a CSV line, honouring double-quoted fields ("" is a quote). */
function splitCsv(text: string, d: string): string[] {
  if (!text.includes('"')) return text.split(d);
  const out: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (text.startsWith(d, i)) {
      out.push(cell);
      cell = '';
      i += d.length - 1;
    } else cell += ch;
  }
  out.push(cell);
  return out;
}

function criteoCells(row: TfjsRawRow): string[] {
  const all = typeof row === 'string' ? row.split('\t') : Array.isArray(row) ? row.map((c) => (c === null || c === undefined ? '' : String(c))) : [];
  if (all.length === CRITEO_INTS + CRITEO_CATS + 1) return all.slice(1);
  if (all.length !== CRITEO_INTS + CRITEO_CATS) throw new Error(`expected ${CRITEO_INTS + CRITEO_CATS + 1} tab-separated columns (label, I1..I13, C1..C26) or ${CRITEO_INTS + CRITEO_CATS} without the label, found ${all.length}`);
  return all;
}

/** Step 4 of the module comment, with the preprocess workers' arithmetic. */
function scaleInPlace(x: Float32Array, rows: number, cols: number, p: InputPipeline): void {
  const s = p.scale!;
  const sparse = p.kind === 'sparse';
  const scale = new Float64Array(cols);
  const center = new Float64Array(cols);
  const offset = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    if (s.type === 'zscore') {
      const std = s.stats.std[j]!;
      if (!(std > 0)) continue;
      scale[j] = 1 / std;
      if (!sparse) center[j] = s.stats.mean[j]!;
    } else if (sparse) {
      const maxAbs = Math.max(Math.abs(s.stats.min[j]!), Math.abs(s.stats.max[j]!));
      scale[j] = s.stats.count[j]! > 0 && maxAbs > 0 ? (s.hi ?? 1) / maxAbs : 0;
    } else {
      const lo = s.lo ?? 0;
      const range = s.stats.max[j]! - s.stats.min[j]!;
      offset[j] = lo;
      if (s.stats.count[j]! > 0 && range > 0) {
        scale[j] = ((s.hi ?? 1) - lo) / range;
        center[j] = s.stats.min[j]!;
      }
    }
  }
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < cols; j++) {
      // Hashed data keeps its zeros: only stored values are scaled, as on the shards.
      if (sparse) x[base + j] = scale[j]! * x[base + j]!;
      else x[base + j] = (x[base + j]! - center[j]!) * scale[j]! + offset[j]!;
    }
  }
}
