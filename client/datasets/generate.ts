/**
 * Synthetic stand-ins for the Criteo (click logs) and HIGGS (particle physics, in higgs.ts) data
 * sets, with a known ground truth so training results can be judged against the best achievable.
 *
 * Both generators stream rows to `<file>` in batches (memory bounded by the per-column tables,
 * never by the row count), write to a temp file and rename at the end (no half-written file under
 * the final name), and are deterministic: the same seed gives the same bytes.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { CRITEO_CAT_COLUMNS, CRITEO_INT_COLUMNS } from '../../algorithms/index.js';
import { subRng, type Rng } from './random.js';
export { subRng } from './random.js';
import { CirrusError } from '../../paramserver/index.js';

export class GenerateError extends CirrusError<'GENERATE_ARGUMENT'> {
  constructor(message: string) {
    super('GENERATE_ARGUMENT', message);
  }
}

// ---------------------------------------------------------------------------------------------
// Skewed categories

/** P(rank k) proportional to 1 / (k+1)^exponent over n ranks; sampled by binary search in the CDF. */
class ZipfSampler {
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly exponent: number,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new GenerateError(`Zipf: expected a positive integer n, got ${n}`);
    this.cdf = new Float64Array(n);
    let total = 0;
    for (let k = 0; k < n; k++) {
      total += 1 / Math.pow(k + 1, exponent);
      this.cdf[k] = total;
    }
    for (let k = 0; k < n; k++) this.cdf[k] = this.cdf[k]! / total;
    this.cdf[n - 1] = 1; // guard against rounding leaving the last bucket short of 1
  }

  /** The rank for a uniform u in [0, 1): the first k with cdf[k] > u. */
  sample(u: number): number {
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

const BATCH_ROWS = 2048;

export function checkCommon(rows: number, seed: number, file: string, what: string): void {
  if (!Number.isSafeInteger(rows) || rows < 0) throw new GenerateError(`${what}: rows must be a non-negative integer, got ${rows}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new GenerateError(`${what}: seed must be a non-negative integer, got ${seed}`);
  if (typeof file !== 'string' || file === '') throw new GenerateError(`${what}: file must be a non-empty path`);
}

/**
 * Writes rows produced by `batch(n)` (n rows -> their text) to `file` via a temp file, respecting
 * the stream's backpressure so memory stays bounded.
 */
export async function streamRows(file: string, rows: number, batch: (n: number) => string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  const out = createWriteStream(temp);
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  try {
    for (let done = 0; done < rows; ) {
      const n = Math.min(BATCH_ROWS, rows - done);
      if (!out.write(batch(n))) await Promise.race([once(out, 'drain'), failed]);
      done += n;
    }
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
    await rename(temp, file);
  } catch (err) {
    out.destroy();
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

export async function writeTruth(file: string, truth: object): Promise<void> {
  const temp = `${file}.truth.json.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(truth, null, 2) + '\n');
  await rename(temp, `${file}.truth.json`);
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Binary entropy in nats: the expected log-loss of predicting p when the label is Bernoulli(p). */
function entropy(p: number): number {
  return (p > 0 ? -p * Math.log(p) : 0) + (p < 1 ? -(1 - p) * Math.log(1 - p) : 0);
}

// ---------------------------------------------------------------------------------------------
// Criteo-like

export interface CriteoOptions {
  rows: number;
  seed: number;
  file: string;
  /**
   * log2 of the largest categorical vocabulary: the 26 columns get vocabularies spaced
   * log-uniformly from 10 to min(100000, 2^bits) values. Default 17 (10 .. 100k, like Criteo).
   * Small values make small test files whose categories repeat often. 4 <= bits <= 20.
   */
  bits?: number;
}

export interface CriteoTruth {
  rows: number;
  seed: number;
  /** Observed fraction of clicks in the file. */
  ctr: number;
  /** Mean binary entropy (nats) of each row's true click probability: the best expected log-loss. */
  bayesLogLoss: number;
}

const CRITEO_ZIPF_EXPONENT = 1.1;
const CRITEO_TARGET_CTR = 0.25;
/** Rows drawn to calibrate a generator's bias or threshold. */
export const CALIBRATION_ROWS = 20_000;

interface IntColumn {
  mu: number;
  sigma: number;
  zeroRate: number;
  missingRate: number;
  weight: number;
}

interface CatColumn {
  zipf: ZipfSampler;
  missingRate: number;
  /** Weight per Zipf rank. */
  weights: Float64Array;
  missingWeight: number;
  /** Makes the (column, rank) -> hex mapping seed-specific. */
  salt: number;
}

interface CriteoModel {
  ints: IntColumn[];
  cats: CatColumn[];
  bias: number;
}

/**
 * A bijective mix of 32-bit integers (xor-shift-multiply rounds with odd multipliers are
 * invertible), so distinct (column, rank) pairs never share a hex string.
 */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

function hex8(column: number, rank: number, salt: number): string {
  // column < 32 and rank < 2^20 fit in 25 bits; xor with a salt is a bijection too.
  return mix32((((column << 20) | rank) ^ salt) >>> 0)
    .toString(16)
    .padStart(8, '0');
}

function buildCriteoModel(seed: number, bits: number): CriteoModel {
  const rng = subRng(seed, 1);
  const maxVocab = Math.min(100_000, 2 ** bits);
  // Log-spaced vocabulary sizes, shuffled over the columns so big and small ones mix like in Criteo.
  const sizes = Array.from({ length: CRITEO_CAT_COLUMNS }, (_, i) => Math.max(2, Math.round(10 * Math.pow(maxVocab / 10, i / (CRITEO_CAT_COLUMNS - 1)))));
  for (let i = sizes.length - 1; i > 0; i--) {
    const k = rng.int(i + 1);
    [sizes[i], sizes[k]] = [sizes[k]!, sizes[i]!];
  }
  const ints: IntColumn[] = Array.from({ length: CRITEO_INT_COLUMNS }, () => ({
    mu: 4 * rng.float(),
    sigma: 0.5 + 1.3 * rng.float(),
    zeroRate: 0.3 * rng.float(),
    missingRate: rng.float() < 0.4 ? 0.05 + 0.4 * rng.float() : 0,
    weight: 0.25 * rng.normal(),
  }));
  const cats: CatColumn[] = sizes.map((size) => {
    const sigma = 0.3;
    const weights = new Float64Array(size);
    for (let k = 0; k < size; k++) weights[k] = sigma * rng.normal();
    return {
      zipf: new ZipfSampler(size, CRITEO_ZIPF_EXPONENT),
      missingRate: rng.float() < 0.3 ? 0.05 + 0.4 * rng.float() : 0,
      weights,
      missingWeight: sigma * rng.normal(),
      salt: rng.u32() & 0x1ffffff,
    };
  });
  const model: CriteoModel = { ints, cats, bias: 0 };
  model.bias = calibrateBias(model, subRng(seed, 2));
  return model;
}

/** One row: the integer values (-1 = missing), category ranks (-1 = missing), and the logit without bias. */
function drawCriteoRow(model: CriteoModel, rng: Rng, intOut: Float64Array, catOut: Int32Array): number {
  let z = 0;
  for (let j = 0; j < CRITEO_INT_COLUMNS; j++) {
    const c = model.ints[j]!;
    if (c.missingRate > 0 && rng.float() < c.missingRate) {
      intOut[j] = -1;
      continue;
    }
    const zero = rng.float() < c.zeroRate;
    const g = rng.normal();
    // Lognormal: non-negative with a heavy right tail, like Criteo's counters.
    const v = zero ? 0 : Math.floor(Math.exp(c.mu + c.sigma * g));
    intOut[j] = v;
    z += c.weight * Math.log1p(v);
  }
  for (let j = 0; j < CRITEO_CAT_COLUMNS; j++) {
    const c = model.cats[j]!;
    const u = rng.float();
    if (c.missingRate > 0 && rng.float() < c.missingRate) {
      catOut[j] = -1;
      z += c.missingWeight;
      continue;
    }
    const k = c.zipf.sample(u);
    catOut[j] = k;
    z += c.weights[k]!;
  }
  return z;
}

/** The bias that makes the mean click probability CRITEO_TARGET_CTR on a calibration sample. */
function calibrateBias(model: CriteoModel, rng: Rng): number {
  const ints = new Float64Array(CRITEO_INT_COLUMNS);
  const cats = new Int32Array(CRITEO_CAT_COLUMNS);
  const logits = new Float64Array(CALIBRATION_ROWS);
  for (let i = 0; i < CALIBRATION_ROWS; i++) logits[i] = drawCriteoRow(model, rng, ints, cats);
  const meanP = (b: number): number => {
    let s = 0;
    for (let i = 0; i < logits.length; i++) s += sigmoid(b + logits[i]!);
    return s / logits.length;
  };
  // meanP is increasing in b: bisect.
  let lo = -50;
  let hi = 50;
  for (let it = 0; it < 100; it++) {
    const mid = (lo + hi) / 2;
    if (meanP(mid) < CRITEO_TARGET_CTR) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Criteo-like TSV: label, 13 integer columns (I1..I13, empty = missing), 26 categorical columns
 * (C1..C26, 8 hex digits, empty = missing). The label is drawn from a planted logistic model;
 * `<file>.truth.json` records the observed CTR and the Bayes log-loss.
 */
export async function generateCriteoLike(options: CriteoOptions): Promise<CriteoTruth> {
  const { rows, seed, file } = options;
  const bits = options.bits ?? 17;
  checkCommon(rows, seed, file, 'generateCriteoLike');
  if (!Number.isInteger(bits) || bits < 4 || bits > 20) throw new GenerateError(`generateCriteoLike: bits must be an integer in [4, 20], got ${bits}`);
  const model = buildCriteoModel(seed, bits);
  const rng = subRng(seed, 3);
  const ints = new Float64Array(CRITEO_INT_COLUMNS);
  const cats = new Int32Array(CRITEO_CAT_COLUMNS);
  let clicks = 0;
  let entropySum = 0;
  await streamRows(file, rows, (n) => {
    const lines: string[] = new Array(n);
    const fields: string[] = new Array(1 + CRITEO_INT_COLUMNS + CRITEO_CAT_COLUMNS);
    for (let r = 0; r < n; r++) {
      const p = sigmoid(model.bias + drawCriteoRow(model, rng, ints, cats));
      const label = rng.float() < p ? 1 : 0;
      clicks += label;
      entropySum += entropy(p);
      fields[0] = label === 1 ? '1' : '0';
      for (let j = 0; j < CRITEO_INT_COLUMNS; j++) fields[1 + j] = ints[j]! < 0 ? '' : String(ints[j]);
      for (let j = 0; j < CRITEO_CAT_COLUMNS; j++) fields[1 + CRITEO_INT_COLUMNS + j] = cats[j]! < 0 ? '' : hex8(j, cats[j]!, model.cats[j]!.salt);
      lines[r] = fields.join('\t');
    }
    return lines.join('\n') + '\n';
  });
  const truth: CriteoTruth = { rows, seed, ctr: rows ? clicks / rows : 0, bayesLogLoss: rows ? entropySum / rows : 0 };
  await writeTruth(file, truth);
  return truth;
}
