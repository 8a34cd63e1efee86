/**
 * `npx cirrus bench reduce`: one collective reduction step in isolation, its three implementations
 * side by side in one process, interleaved: the JS float32 loops, WebAssembly SIMD with the
 * addends copied into wasm memory, and SIMD over addends already in the arena's receive slots (as
 * the memcached collectives read them). W vectors of n floats, mean, W - 1 from "other ranks" and
 * this rank's own. Every variant's result is checked bit for bit against the plain loop.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OrderedReducer, referenceReduce, SimdArena, simdAvailable } from '../channels/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { machineInfo } from './machine.js';
import { formatTable } from '../client/index.js';
import { makeVector } from './vectors.js';

interface ReduceBenchRow {
  floats: number;
  world: number;
  jsUs: number;
  simdCopyUs: number;
  simdSlotsUs: number;
  /** jsUs / simdSlotsUs */
  speedup: number;
}

type Variant = 'js' | 'simd-copy' | 'simd-slots';

/** Index of the first float whose bits differ (NaN payloads and -0 included), or -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return Math.min(x.length, y.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

export async function benchReduce(opts: { floats?: number[]; world?: number; repeat?: number; resultsDir?: string } = {}): Promise<{ rows: ReduceBenchRow[]; table: string; file: string }> {
  if (!simdAvailable) throw new Error('bench reduce: this runtime has no WebAssembly SIMD');
  const world = opts.world ?? 4;
  const repeat = opts.repeat ?? 200;
  const rows: ReduceBenchRow[] = [];
  for (const n of opts.floats ?? [10_000, 250_000, 1_000_000]) {
    const vectors = Array.from({ length: world }, (_, r) => makeVector(3, r, 0, n));
    const want = referenceReduce(vectors, 'mean');
    const arena = new SimdArena();
    arena.reserve(n, world - 1, 8 + 4 * n);
    // Ranks 1..W-1 arrive in receive slots (after an 8-byte head, as frames do); rank 0 is "ours".
    const inSlots = vectors.slice(1).map((_, i) => {
      const slot = arena.slot(i);
      return new Float32Array(slot.buffer, slot.byteOffset + 8, n);
    });
    const out = new Float32Array(n);
    const refill = (): void => inSlots.forEach((s, i) => s.set(vectors[i + 1]!));
    const run = (variant: Variant): void => {
      const others = variant === 'simd-slots' ? inSlots : vectors.slice(1);
      const r = new OrderedReducer(world, n, 'mean', 'bench', out, variant === 'js' ? false : variant === 'simd-slots' ? arena : true);
      r.offer(0, vectors[0]!);
      others.forEach((v, i) => r.offer(i + 1, v));
      r.result();
    };
    /** Mean time of `repeat` reductions, in us; the slots are refilled (as the channel would) outside the clock, since they are summed in place. */
    const timeUs = (variant: Variant): number => {
      let total = 0;
      for (let k = 0; k < repeat; k++) {
        if (variant === 'simd-slots') refill();
        const t = performance.now();
        run(variant);
        total += performance.now() - t;
      }
      return (total / repeat) * 1000;
    };
    const variants = ['js', 'simd-copy', 'simd-slots'] as const;
    const totals: Record<Variant, number> = { js: 0, 'simd-copy': 0, 'simd-slots': 0 };
    for (const v of variants) {
      for (let k = 0; k < 20; k++) {
        if (v === 'simd-slots') refill();
        run(v); // warm-up
      }
      const at = firstBitDifference(out, want);
      if (at >= 0) throw new Error(`bench reduce: ${v} differs from the plain loop at n = ${n}: float ${at} is ${out[at]}, expected ${want[at]}`);
    }
    // Interleaved passes, so a noisy neighbour hits every variant alike.
    for (let pass = 0; pass < 3; pass++) for (const v of variants) totals[v] += timeUs(v);
    const [js, copy, slots] = variants.map((v) => totals[v] / 3) as [number, number, number];
    rows.push({ floats: n, world, jsUs: js, simdCopyUs: copy, simdSlotsUs: slots, speedup: js / slots });
  }
  const table = formatTable(
    ['floats', 'W', 'JS loops us', 'SIMD, copied in us', 'SIMD, in slots us', 'JS / slots'],
    rows.map((r) => [r.floats, r.world, r.jsUs, r.simdCopyUs, r.simdSlotsUs, r.speedup]),
  );
  const dir = opts.resultsDir ?? DEFAULT_RESULTS_DIR;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `reduce-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: 'reduce', machine: machineInfo(), repeat, rows }, null, 2) + '\n');
  return { rows, table, file };
}
