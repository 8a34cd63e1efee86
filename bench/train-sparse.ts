/**
 * Sparse-LR gradient throughput for `cirrus bench train`: our JS kernel against a C++ reference
 * compiled at bench time with g++ -O2, on the same batches (the same bytes for both).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SparseThroughput {
  jsNnzPerSec: number;
  cppNnzPerSec: number | null;
  ratio: number | null;
  note?: string;
}

const CPP_SPARSE_LR = `
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <vector>
#include <chrono>
// Reads batches written by the benchmark and times the logistic-regression gradient, as the JS kernel does.
int main(int argc, char** argv) {
  FILE* f = fopen(argv[1], "rb");
  uint32_t rows, nnz, features, reps;
  if (fread(&rows, 4, 1, f) != 1 || fread(&nnz, 4, 1, f) != 1 || fread(&features, 4, 1, f) != 1 || fread(&reps, 4, 1, f) != 1) return 1;
  std::vector<float> labels(rows), values(nnz), w(features + 1), g(features + 1);
  std::vector<uint32_t> indptr(rows + 1), indices(nnz);
  if (fread(labels.data(), 4, rows, f) != rows || fread(indptr.data(), 4, rows + 1, f) != rows + 1 || fread(indices.data(), 4, nnz, f) != nnz || fread(values.data(), 4, nnz, f) != nnz) return 1;
  for (uint32_t i = 0; i <= features; i++) w[i] = 0.001f * (float)(i % 7);
  double loss = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t rep = 0; rep < reps; rep++) {
    for (uint32_t r = 0; r < rows; r++) {
      float z = w[features];
      for (uint32_t k = indptr[r]; k < indptr[r + 1]; k++) z += w[indices[k]] * values[k];
      float p = 1.0f / (1.0f + std::exp(-z));
      float d = p - labels[r];
      loss += z > 0 ? std::log1p(std::exp(-z)) + (1 - labels[r]) * z : std::log1p(std::exp(z)) - labels[r] * z;
      for (uint32_t k = indptr[r]; k < indptr[r + 1]; k++) g[indices[k]] += d * values[k];
      g[features] += d;
    }
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("%.1f %g\\n", (double)nnz * reps / s, loss + g[0]);
  return 0;
}
`;

/**
 * 200-row batches of ~40 nonzeros over 2^20 features, the same bytes for both kernels. Each kernel
 * runs in a fresh process of its own reading the same file (the JS one in train-sparse-child.js),
 * as a worker would: a long benchmark process's JIT and heap state would otherwise colour the result.
 */
export function sparseThroughput(work: string): SparseThroughput {
  const rows = 200;
  const features = 1 << 20;
  let s = 12345;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const indptr = new Uint32Array(rows + 1);
  const idx: number[] = [];
  for (let r = 0; r < rows; r++) {
    const set = new Set<number>();
    while (set.size < 40) set.add(Math.floor(next() * features));
    idx.push(...[...set].sort((a, b) => a - b));
    indptr[r + 1] = idx.length;
  }
  const indices = Uint32Array.from(idx);
  const values = Float32Array.from(idx, () => 1);
  const labels = Float32Array.from({ length: rows }, () => (next() < 0.3 ? 1 : 0));
  const reps = 5_000;

  const src = join(work, 'sparse_lr.cc');
  const bin = join(work, 'sparse_lr');
  const data = join(work, 'batch.bin');
  writeFileSync(src, CPP_SPARSE_LR);
  const head = Uint32Array.of(rows, indices.length, features, reps);
  writeFileSync(data, Buffer.concat([head, labels, indptr, indices, values].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))));
  const timeJs = (): number => Number(execFileSync(process.execPath, [JS_CHILD, data], { encoding: 'utf8' }).trim());
  try {
    execFileSync('g++', ['-O2', '-o', bin, src], { stdio: 'pipe' });
  } catch (e) {
    return { jsNnzPerSec: timeJs(), cppNnzPerSec: null, ratio: null, note: `g++ failed: ${(e as Error).message.split('\n')[0]}` };
  }
  const timeCpp = (): number => Number(execFileSync(bin, [data], { encoding: 'utf8' }).trim().split(' ')[0]);
  // Other work shares this machine: alternate the two kernels and keep each one's median.
  const js: number[] = [];
  const cpp: number[] = [];
  for (let i = 0; i < SPARSE_TRIALS; i++) {
    js.push(timeJs());
    cpp.push(timeCpp());
  }
  const jsNnzPerSec = middle(js);
  const cppNnzPerSec = middle(cpp);
  return { jsNnzPerSec, cppNnzPerSec, ratio: jsNnzPerSec / cppNnzPerSec };
}

const JS_CHILD = fileURLToPath(new URL('./train-sparse-child.js', import.meta.url));
const SPARSE_TRIALS = 5;

function middle(xs: number[]): number {
  return xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;
}
