/**
 * A synthetic stand-in for the HIGGS data set (particle physics): 21 low-level features of a
 * lepton, missing energy and four jets, and 7 high-level invariant masses, with the label from a
 * known score so results can be judged against the best achievable. Streamed and deterministic
 * like the Criteo-like generator (generate.ts).
 */
import { CALIBRATION_ROWS, checkCommon, streamRows, writeTruth } from './generate.js';
import { subRng, type Rng } from './random.js';

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

const HIGGS_LOW_LEVEL = 21;
const HIGGS_HIGH_LEVEL = 7;
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
