/**
 * The deterministic random numbers of the algorithms room: mulberry32, a tiny 32-bit generator
 * that gives the same stream on every platform. The sharder draws splits and shuffles from it;
 * models draw their initial weights from createRng (the same generator plus normals).
 */
import { ModelError } from './models/base.js';

/** mulberry32 seeded with the low 32 bits of `seed`: uniform numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Rng {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal. */
  normal(): number;
}

/** A model's generator: mulberry32 over all the bits of a safe-integer seed, with Box-Muller normals. */
export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed)) throw new ModelError('MODEL_SEED', `seed must be a safe integer, got ${seed}`);
  // Fold the high bits in so seeds above 2^32 do not collide with small ones.
  const uniform = seededRandom((seed % 4294967296) ^ Math.imul(Math.floor(seed / 4294967296), 0x9e3779b9));
  let spare = NaN;
  const normal = (): number => {
    if (!Number.isNaN(spare)) {
      const v = spare;
      spare = NaN;
      return v;
    }
    const u1 = 1 - uniform(); // (0, 1]: log(0) would be -Infinity
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
  return { uniform, normal };
}
