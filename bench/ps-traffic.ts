/**
 * The parameter-server benchmark's traffic: the batches an async-sgd worker really sends for sparse
 * LR on Criteo-like data (200 rows of ~40 nonzeros each, hashed to 2^20 features). Each batch becomes
 * one sparse push (its unique weight indices, found by the workers' SupportFinder, and one gradient
 * value each) and one sparse pull of the same indices. Written once to a file that every client
 * process reads: u32 batch count, then per batch u32 n, u32[n] indices, f32[n] values.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SupportFinder, type SparseBatch } from '../algorithms/index.js';
import { DatasetStore } from '../channels/index.js';
import { generateCriteoLike, preprocess } from '../client/index.js';
import { pathToFileURL } from 'node:url';

interface TrafficBatch {
  indices: Uint32Array;
  values: Float32Array;
}

export interface TrafficInfo {
  file: string;
  batches: number;
  rowsPerBatch: number;
  nnzPerRow: number;
  indicesPerBatch: number;
  features: number;
}

/** Generates Criteo-like rows, preprocesses them like `cirrus preprocess`, and writes the batches' pushes. */
export async function writeCriteoTraffic(work: string, opts: { rows: number; rowsPerBatch: number; seed: number }): Promise<TrafficInfo> {
  const tsv = join(work, 'traffic.tsv');
  await generateCriteoLike({ rows: opts.rows, seed: opts.seed, file: tsv });
  const storeUrl = pathToFileURL(join(work, 'traffic-store')).href;
  await preprocess({ input: tsv, format: 'criteo', name: 'traffic', store: storeUrl, split: 1, rowsPerShard: opts.rows, seed: opts.seed });
  const store = await DatasetStore.open(storeUrl);
  try {
    const m = await store.manifest('traffic');
    const finder = new SupportFinder({ type: 'sparse-lr', features: m.features, classes: 2 });
    const parts: Uint8Array[] = [];
    let batches = 0;
    let nnz = 0;
    let rows = 0;
    let indicesTotal = 0;
    let x = opts.seed >>> 0 || 1;
    for (const ref of m.train.shards) {
      const shard = await store.readShard(ref);
      if (shard.kind !== 'sparse') throw new Error(`bench ps: expected sparse shards, got ${shard.kind}`);
      for (let start = 0; start + opts.rowsPerBatch <= shard.rows; start += opts.rowsPerBatch) {
        const batch: SparseBatch = { ...shard, rows: opts.rowsPerBatch, labels: shard.labels.subarray(start, start + opts.rowsPerBatch), indptr: shard.indptr.subarray(start, start + opts.rowsPerBatch + 1) };
        const indices = finder.find(batch).slice();
        const values = new Float32Array(indices.length);
        for (let k = 0; k < values.length; k++) {
          x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
          values[k] = (x / 0x100000000 - 0.5) * 1e-3;
        }
        parts.push(new Uint8Array(Uint32Array.of(indices.length).buffer), new Uint8Array(indices.buffer), new Uint8Array(values.buffer));
        batches++;
        rows += opts.rowsPerBatch;
        nnz += batch.indptr[opts.rowsPerBatch]! - batch.indptr[0]!;
        indicesTotal += indices.length;
      }
    }
    const file = join(work, 'traffic.bin');
    writeFileSync(file, Buffer.concat([new Uint8Array(Uint32Array.of(batches).buffer), ...parts]));
    return { file, batches, rowsPerBatch: opts.rowsPerBatch, nnzPerRow: nnz / rows, indicesPerBatch: indicesTotal / batches, features: m.features + 1 };
  } finally {
    await store.close();
  }
}

export function readTraffic(file: string): TrafficBatch[] {
  const buf = readFileSync(file);
  // Copy into an aligned buffer so the typed-array views below are valid.
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  const u32 = new Uint32Array(bytes.buffer);
  const out: TrafficBatch[] = [];
  let p = 1;
  for (let b = 0; b < u32[0]!; b++) {
    const n = u32[p++]!;
    out.push({ indices: u32.subarray(p, p + n), values: new Float32Array(bytes.buffer, (p + n) * 4, n) });
    p += 2 * n;
  }
  return out;
}
