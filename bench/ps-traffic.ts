/**
 * The parameter-server benchmark's traffic: minibatches of 200 rows with ~40 nonzeros each over a
 * hashed feature space, as in Criteo-style sparse LR. Each batch becomes one sparse push (its
 * unique indices and one gradient value each) and one sparse pull (the same indices).
 */
export interface TrafficOptions {
  features: number;
  rows: number;
  nnzPerRow: number;
  batches: number;
  seed: number;
}

export const DEFAULT_TRAFFIC: TrafficOptions = { features: 1 << 20, rows: 200, nnzPerRow: 40, batches: 64, seed: 1 };

export interface TrafficBatch {
  indices: Uint32Array;
  values: Float32Array;
}

/** Deterministic batches: the same seed gives the same indices in every process. */
export function makeTraffic(opts: TrafficOptions): TrafficBatch[] {
  let s = opts.seed >>> 0 || 1;
  const next = (): number => {
    // xorshift32: cheap and reproducible across processes.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const out: TrafficBatch[] = [];
  for (let b = 0; b < opts.batches; b++) {
    const seen = new Set<number>();
    for (let r = 0; r < opts.rows; r++) {
      for (let j = 0; j < opts.nnzPerRow; j++) {
        // Skewed towards low indices like hashed categorical features (a few are very common).
        const u = next() / 0x100000000;
        seen.add(Math.floor(opts.features * u * u * u) % opts.features);
      }
    }
    const indices = Uint32Array.from(seen);
    const values = new Float32Array(indices.length);
    for (let i = 0; i < values.length; i++) values[i] = (next() / 0x100000000 - 0.5) * 1e-3;
    out.push({ indices, values });
  }
  return out;
}
