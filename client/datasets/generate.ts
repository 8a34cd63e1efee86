/**
 * Synthetic stand-ins for the Criteo (click logs) and HIGGS (particle physics) data sets, with a
 * known ground truth so training results can be judged against the best achievable.
 *
 * Both generators stream rows to `<file>` in batches (memory bounded by the per-column tables,
 * never by the row count), write to a temp file and rename at the end (no half-written file under
 * the final name), and are deterministic: the same seed gives the same bytes.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { CRITEO_CAT_COLUMNS, CRITEO_INT_COLUMNS } from '../../algorithms/index.js';
import { CirrusError } from '../../paramserver/index.js';

export class GenerateError extends CirrusError<'GENERATE_ARGUMENT'> {
  constructor(message: string) {
    super('GENERATE_ARGUMENT', message);
  }
}

// ---------------------------------------------------------------------------------------------
// PRNG

/**
 * xoshiro128** (Blackman & Vigna): 128 bits of state in four uint32 words, so everything runs in
 * 32-bit integer arithmetic (Math.imul) without BigInt. Seeded through splitmix32 so nearby seeds
 * give unrelated streams.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | undefined;

  constructor(seed: number) {
    let s = seed >>> 0;
    // Fold in the high bits of large integer seeds too.
    s = (s ^ Math.floor(seed / 4294967296)) >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1; // the all-zero state is a fixed point
  }

  /** A uniform uint32. */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.u32() >>> 5; // 27 bits
    const lo = this.u32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** An independent stream for one purpose (weights, calibration, rows) of one seed. */
export function subRng(seed: number, stream: number): Rng {
  return new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca77) ^ Math.floor(seed / 4294967296)) >>> 0);
}

// ---------------------------------------------------------------------------------------------
// Zipf

/** P(rank k) proportional to 1 / (k+1)^exponent over n ranks; sampled by binary search in the CDF. */
export class ZipfSampler {
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
const CALIBRATION_ROWS = 20_000;

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

// ---------------------------------------------------------------------------------------------
// HIGGS-like

export interface HiggsOptions {
  rows: number;
  seed: number;
  file: string;
}

export interface HiggsTruth {
  rows: number;
  seed: number;
  /** Observed fraction of positive labels in the file. */
  positiveRate: number;
}

export const HIGGS_LOW_LEVEL = 21;
export const HIGGS_HIGH_LEVEL = 7;
const HIGGS_TARGET_POSITIVE = 0.53;

/** pT, eta, phi of one object (lepton, missing energy or jet). */
interface Obj {
  pt: number;
  eta: number;
  phi: number;
}

/** Invariant mass of massless objects: m^2 = sum over pairs of 2 pT_i pT_j (cosh(d eta) - cos(d phi)). */
function mass(objs: Obj[]): number {
  let m2 = 0;
  for (let i = 0; i < objs.length; i++) {
    for (let k = i + 1; k < objs.length; k++) {
      const a = objs[i]!;
      const b = objs[k]!;
      m2 += 2 * a.pt * b.pt * (Math.cosh(a.eta - b.eta) - Math.cos(a.phi - b.phi));
    }
  }
  return Math.sqrt(Math.max(0, m2));
}

/**
 * One row: 21 low-level features (lepton pT/eta/phi, missing energy magnitude/phi, 4 jets x
 * pT/eta/phi/b-tag), 7 high-level masses, and the label score before thresholding.
 */
function drawHiggsRow(rng: Rng, out: Float64Array): number {
  const obj = (etaScale: number): Obj => ({
    pt: Math.exp(0.45 * rng.normal()) * 0.9,
    eta: etaScale * rng.normal(),
    phi: Math.PI * (2 * rng.float() - 1),
  });
  const lepton = obj(1);
  const met: Obj = { pt: Math.exp(0.5 * rng.normal()) * 0.8, eta: 0, phi: Math.PI * (2 * rng.float() - 1) };
  const jets = [obj(1), obj(1), obj(1), obj(1)];
  const btag = jets.map(() => [0, 1.1, 2.2][rng.int(3)]!);
  let i = 0;
  out[i++] = lepton.pt;
  out[i++] = lepton.eta;
  out[i++] = lepton.phi;
  out[i++] = met.pt;
  out[i++] = met.phi;
  jets.forEach((j, k) => {
    out[i++] = j.pt;
    out[i++] = j.eta;
    out[i++] = j.phi;
    out[i++] = btag[k]!;
  });
  const [j1, j2, j3, j4] = jets as [Obj, Obj, Obj, Obj];
  const mjj = mass([j1, j2]);
  const mjjj = mass([j1, j2, j3]);
  const mlv = mass([lepton, met]);
  const mjlv = mass([j3, lepton, met]);
  const mbb = mass([j3, j4]);
  const mwbb = mass([j1, j2, j3, j4]);
  const mwwbb = mass([j1, j2, j3, j4, lepton, met]);
  out[i++] = mjj;
  out[i++] = mjjj;
  out[i++] = mlv;
  out[i++] = mjlv;
  out[i++] = mbb;
  out[i++] = mwbb;
  out[i++] = mwwbb;
  // Non-linear rule: a mass window (radial in log-mass space), a b-tag interaction, central
  // leptons, plus Gaussian noise so the classes overlap like real signal and background.
  const r2 = (Math.log(mbb + 1e-9) - 0.4) ** 2 + (Math.log(mwwbb + 1e-9) - 1.3) ** 2;
  return -1.5 * r2 + 0.35 * btag[2]! * btag[3]! / 2.2 - 0.3 * lepton.eta * lepton.eta + 0.4 * rng.normal();
}

/** The threshold leaving HIGGS_TARGET_POSITIVE of a calibration sample's scores above it. */
function calibrateHiggs(seed: number): number {
  const rng = subRng(seed, 12);
  const row = new Float64Array(HIGGS_LOW_LEVEL + HIGGS_HIGH_LEVEL);
  // A quantile needs more samples than a mean for the same precision: 5x the Criteo sample.
  const n = 5 * CALIBRATION_ROWS;
  const scores = new Float64Array(n);
  for (let r = 0; r < n; r++) scores[r] = drawHiggsRow(rng, row);
  scores.sort();
  return scores[Math.floor((1 - HIGGS_TARGET_POSITIVE) * n)]!;
}

function fmt(v: number): string {
  // Fixed precision keeps lines short and the bytes identical across runs.
  return v.toPrecision(7);
}

/** HIGGS-like CSV: label (1/0) then 28 float features; `<file>.truth.json` records the positive rate. */
export async function generateHiggsLike(options: HiggsOptions): Promise<HiggsTruth> {
  const { rows, seed, file } = options;
  checkCommon(rows, seed, file, 'generateHiggsLike');
  const threshold = calibrateHiggs(seed);
  const rng = subRng(seed, 11);
  const row = new Float64Array(HIGGS_LOW_LEVEL + HIGGS_HIGH_LEVEL);
  let positives = 0;
  await streamRows(file, rows, (n) => {
    const lines: string[] = new Array(n);
    const fields: string[] = new Array(1 + row.length);
    for (let r = 0; r < n; r++) {
      const label = drawHiggsRow(rng, row) > threshold ? 1 : 0;
      positives += label;
      fields[0] = label === 1 ? '1' : '0';
      for (let j = 0; j < row.length; j++) fields[1 + j] = fmt(row[j]!);
      lines[r] = fields.join(',');
    }
    return lines.join('\n') + '\n';
  });
  const truth: HiggsTruth = { rows, seed, positiveRate: rows ? positives / rows : 0 };
  await writeTruth(file, truth);
  return truth;
}
