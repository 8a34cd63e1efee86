/**
 * A subset of the real Fashion-MNIST (the dataset-fashion-mnist package): the first `train` and
 * `test` images scaled to [0, 1], written as a dense 10-class dataset in shards of `rowsPerShard`.
 * Small enough that chaos runs relaunch workers many times in a test's or benchmark's time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { DenseShard, DatasetStore } from '../../channels/index.js';

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export function fashionMnistMissing(): string | undefined {
  return existsSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')) ? undefined : `${FASHION_MNIST_DIR} is missing (apt-get install dataset-fashion-mnist)`;
}

function read(prefix: 'train' | 't10k', rows: number): { x: Float32Array; labels: Float32Array } {
  const images = gunzipSync(readFileSync(join(FASHION_MNIST_DIR, `${prefix}-images-idx3-ubyte.gz`)));
  const labels = gunzipSync(readFileSync(join(FASHION_MNIST_DIR, `${prefix}-labels-idx1-ubyte.gz`)));
  // IDX: images have a 16-byte header (magic, count, rows, cols), labels an 8-byte one.
  const x = new Float32Array(rows * 784);
  for (let i = 0; i < x.length; i++) x[i] = images[16 + i]! / 255;
  return { x, labels: Float32Array.from(labels.subarray(8, 8 + rows)) };
}

function shards(d: { x: Float32Array; labels: Float32Array }, rows: number, per: number): DenseShard[] {
  const out: DenseShard[] = [];
  for (let s = 0; s < rows; s += per) {
    const e = Math.min(rows, s + per);
    out.push({ kind: 'dense', rows: e - s, cols: 784, labels: d.labels.slice(s, e), x: d.x.slice(s * 784, e * 784) });
  }
  return out;
}

export async function writeFashionSubset(store: DatasetStore, name: string, o: { train: number; test: number; rowsPerShard: number }): Promise<void> {
  const w = await store.createWriter(name, { overwrite: true });
  for (const sh of shards(read('train', o.train), o.train, o.rowsPerShard)) await w.addShard('train', sh);
  for (const sh of shards(read('t10k', o.test), o.test, o.rowsPerShard)) await w.addShard('test', sh);
  await w.commit({ kind: 'dense', task: 'multiclass', features: 784, classes: 10, rowsPerShard: o.rowsPerShard, stats: null, transforms: [] });
}
