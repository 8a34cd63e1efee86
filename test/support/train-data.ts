/**
 * Small synthetic training datasets with a hidden linear truth, written to a DatasetStore: dense or
 * sparse, binary or multiclass, with uneven shard sizes when asked (for the worker-loop tests).
 */
import type { DatasetManifest } from '../../channels/datasets/manifest.js';
import type { DenseShard, Shard, SparseShard } from '../../channels/datasets/shard.js';
import type { DatasetStore } from '../../channels/datasets/store.js';
import type { ManifestFields } from '../../channels/datasets/types.js';
import { SplitMix32 } from '../../worker/index.js';

const uniform = (rng: SplitMix32): number => (rng.next() / 0x100000000) * 2 - 1;

/** Hidden separating hyperplanes, one per class (binary: one). */
function hidden(features: number, planes: number): Float64Array[] {
  const rng = new SplitMix32(12345);
  return Array.from({ length: planes }, () => Float64Array.from({ length: features }, () => uniform(rng)));
}

/** Binary: 1 when plane . x + 0.1 > 0. Multiclass: the class whose plane scores highest. */
function labelOf(z: number[]): number {
  if (z.length === 1) return z[0]! + 0.1 > 0 ? 1 : 0;
  return z.indexOf(Math.max(...z));
}

function denseShard(rows: number, features: number, rng: SplitMix32, truth: Float64Array[]): DenseShard {
  const x = new Float32Array(rows * features);
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < features; j++) x[r * features + j] = uniform(rng);
    labels[r] = labelOf(truth.map((t) => t.reduce((s, tj, j) => s + tj * x[r * features + j]!, 0)));
  }
  return { kind: 'dense', rows, cols: features, labels, x };
}

/** 1-4 nonzeros per row at distinct indices. */
function sparseShard(rows: number, features: number, rng: SplitMix32, truth: Float64Array[]): SparseShard {
  const indptr = new Uint32Array(rows + 1);
  const indices: number[] = [];
  const values: number[] = [];
  const labels = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const nnz = 1 + rng.below(4);
    const picked = new Set<number>();
    while (picked.size < nnz) picked.add(rng.below(features));
    const z = truth.map(() => 0);
    for (const j of [...picked].sort((a, b) => a - b)) {
      const v = Math.fround(uniform(rng));
      indices.push(j);
      values.push(v);
      truth.forEach((t, c) => (z[c]! += t[j]! * v));
    }
    indptr[r + 1] = indices.length;
    labels[r] = labelOf(z);
  }
  return { kind: 'sparse', rows, cols: features, labels, indptr, indices: Uint32Array.from(indices), values: Float32Array.from(values) };
}

export interface DatasetPlan {
  name: string;
  kind: 'sparse' | 'dense';
  features: number;
  train: number[];
  test?: number[];
  task?: 'binary' | 'multiclass';
  classes?: number;
}

export async function writeDataset(store: DatasetStore, plan: DatasetPlan): Promise<DatasetManifest> {
  const rng = new SplitMix32(plan.train.length * 7919 + plan.features);
  const classes = plan.classes ?? 2;
  const truth = hidden(plan.features, classes === 2 ? 1 : classes);
  const make = (rows: number): Shard => (plan.kind === 'dense' ? denseShard(rows, plan.features, rng, truth) : sparseShard(rows, plan.features, rng, truth));
  const w = await store.createWriter(plan.name);
  for (const rows of plan.train) await w.addShard('train', make(rows));
  for (const rows of plan.test ?? []) await w.addShard('test', make(rows));
  const fields: ManifestFields = {
    kind: plan.kind,
    task: plan.task ?? 'binary',
    features: plan.features,
    classes,
    rowsPerShard: Math.max(...plan.train),
    stats: null,
    transforms: [],
  };
  return w.commit(fields);
}

