/**
 * What every model module shares without importing models.ts (so new model files stay free of
 * cycles): the typed model error and the deterministic PRNG.
 */
import { CirrusError } from '../../paramserver/index.js';

export type ModelErrorCode = 'MODEL_UNKNOWN_TYPE' | 'MODEL_SPEC' | 'MODEL_BATCH' | 'MODEL_WEIGHTS' | 'MODEL_LABEL' | 'MODEL_SEED' | 'MODEL_KERNELS' | 'MODEL_BACKEND';

export class ModelError extends CirrusError<ModelErrorCode> {}


// ---------------------------------------------------------------------------------------------
// Deterministic PRNG (mulberry32) with Box-Muller normals: tiny, fast, same stream on every platform.

export interface Rng {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal. */
  normal(): number;
}

export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed)) throw new ModelError('MODEL_SEED', `seed must be a safe integer, got ${seed}`);
  // Fold the high bits in so seeds above 2^32 do not collide with small ones.
  let s = ((seed % 4294967296) ^ Math.imul(Math.floor(seed / 4294967296), 0x9e3779b9)) >>> 0;
  const uniform = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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
