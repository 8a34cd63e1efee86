/**
 * The JS side of the sparse-LR throughput benchmark, in a process of its own: reads the batch file
 * the C++ reference reads (u32 rows, nnz, features, reps; f32 labels; u32 indptr; u32 indices; f32
 * values), times `reps` gradients of our kernel after a warm-up, and prints nonzeros per second.
 */
import { readFileSync } from 'node:fs';
import { createModel, type SparseBatch } from '../algorithms/index.js';

const bytes = readFileSync(process.argv[2]!);
const u32 = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const [rows, nnz, features, reps] = [u32[0]!, u32[1]!, u32[2]!, u32[3]!];
let at = 4;
const take = <T>(make: (start: number, n: number) => T, n: number): T => {
  const out = make(at, n);
  at += n;
  return out;
};
const f32 = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const labels = take((s, n) => f32.slice(s, s + n), rows);
const indptr = take((s, n) => u32.slice(s, s + n), rows + 1);
const indices = take((s, n) => u32.slice(s, s + n), nnz);
const values = take((s, n) => f32.slice(s, s + n), nnz);
const batch: SparseBatch = { kind: 'sparse', rows, cols: features, labels, indptr, indices, values };
const model = createModel({ type: 'sparse-lr', features, classes: 2 });
// The same weights as the C++ reference: 0.001 * (i % 7).
const w = model.init(0);
for (let i = 0; i < w.length; i++) w[i] = 0.001 * (i % 7);
const grad = new Float32Array(model.size);
for (let i = 0; i < 200; i++) model.gradient(batch, w, grad); // warm up the JIT
const t0 = performance.now();
for (let i = 0; i < reps; i++) model.gradient(batch, w, grad);
process.stdout.write(`${(nnz * reps) / ((performance.now() - t0) / 1000)}\n`);
