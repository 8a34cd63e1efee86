/**
 * The trials of a search: the Cartesian product of a grid, or reproducible samples of a space.
 * A trial's params are the overrides it applies to the base train params.
 */
import { z } from 'zod';

export type TrialOverrides = Record<string, unknown>;

/**
 * Every combination of the grid's values. Keys vary in the grid's key order, the last key
 * fastest: `{a: [1, 2], b: [x, y]}` -> (1,x), (1,y), (2,x), (2,y), i.e. t000..t003.
 */
export function expandGrid(grid: Record<string, readonly unknown[]>): TrialOverrides[] {
  let combos: TrialOverrides[] = [{}];
  for (const [key, values] of Object.entries(grid)) {
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [key]: v })));
  }
  return combos;
}

const finite = z.number().refine(Number.isFinite, { message: 'expected a finite number' });
const bounds = z.tuple([finite, finite]).refine(([a, b]) => a <= b, { message: 'expected [low, high] with low <= high' });

export const distributionSchema = z.union([
  z.object({ uniform: bounds }).strict(),
  z.object({ logUniform: bounds.refine(([a]) => a > 0, { message: 'expected bounds > 0' }) }).strict(),
  z.object({ int: z.tuple([z.number().int(), z.number().int()]).refine(([a, b]) => a <= b, { message: 'expected [low, high] with low <= high' }) }).strict(),
  z.object({ choice: z.array(z.unknown()).min(1, { message: 'expected a non-empty list of choices' }) }).strict(),
]);

export type Distribution = z.infer<typeof distributionSchema>;

/** mulberry32: a small, fast PRNG; the same seed gives the same trials on every machine. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sample(d: Distribution, u: number): unknown {
  if ('uniform' in d) return d.uniform[0] + (d.uniform[1] - d.uniform[0]) * u;
  if ('logUniform' in d) {
    const [lo, hi] = d.logUniform.map(Math.log) as [number, number];
    return Math.exp(lo + (hi - lo) * u);
  }
  if ('int' in d) return d.int[0] + Math.min(d.int[1] - d.int[0], Math.floor(u * (d.int[1] - d.int[0] + 1)));
  return d.choice[Math.min(d.choice.length - 1, Math.floor(u * d.choice.length))];
}

/** `trials` samples of the space, drawing one number per key per trial, keys in the space's order. */
export function sampleSpace(space: Record<string, Distribution>, trials: number, seed: number): TrialOverrides[] {
  const next = seededRandom(seed);
  return Array.from({ length: trials }, () => Object.fromEntries(Object.entries(space).map(([key, d]) => [key, sample(d, next())])));
}

/** Sets a (possibly dotted) key, e.g. 'launcher.timeoutS', on a copy of `params`. */
export function applyTrialOverrides(params: Record<string, unknown>, overrides: TrialOverrides): Record<string, unknown> {
  const out = structuredClone(params);
  for (const [key, value] of Object.entries(overrides)) {
    const path = key.split('.');
    let node = out;
    for (const p of path.slice(0, -1)) {
      if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return out;
}

/** t000, t001, ...: stable ids in grid (or sample) order. */
export function trialId(index: number): string {
  return `t${String(index).padStart(3, '0')}`;
}
