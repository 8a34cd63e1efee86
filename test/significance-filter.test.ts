/**
 * MLLess's significance filter: which coordinates go out (hand-computed thresholds), that nothing
 * offered is lost (sent + held = offered), the sparse all-gather it rides on over the real
 * parameter server, and GA-SGD and async-sgd with it end to end with real worker processes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Communicator } from '../channels/collectives.js';
import { DatasetStore } from '../channels/datasets/store.js';
import { openChannel } from '../channels/factory.js';
import { startParamServer, type ParamServer } from '../paramserver/index.js';
import { SignificanceFilter, WEIGHT_FLOOR } from '../worker/significance-filter.js';
import { train } from '../client/index.js';
import { parseTrainParams } from '../client/train-params.js';
import { writeDataset } from './support/train-data.js';

describe('significance filter', () => {
  it('sends a coordinate once lr * its accumulated update exceeds threshold / sqrt(1 + epoch) times max(|w|, floor)', () => {
    const f = new SignificanceFilter(3, 0.1, 1);
    const w = Float32Array.from([1, 0, 0.5]);
    // Thresholds at epoch 0: 0.1 * 1, 0.1 * WEIGHT_FLOOR, 0.1 * 0.5.
    assert.equal(WEIGHT_FLOOR, 0.01);
    let out = f.offer(Uint32Array.from([0, 1, 2]), Float32Array.from([0.05, 0.002, 0.06]), w, 0);
    assert.deepEqual([...out.indices], [1, 2]);
    assert.deepEqual([...out.values], [Math.fround(0.002), Math.fround(0.06)]);
    out = f.offer(Uint32Array.from([0]), Float32Array.from([0.04]), w, 0);
    assert.deepEqual([...out.indices], [], 'held: 0.09 is not above 0.1');
    // At epoch 3 the threshold halves (0.1 / sqrt(4) = 0.05): the held 0.09 plus 0.001 goes out whole.
    out = f.offer(Uint32Array.from([0]), Float32Array.from([0.001]), w, 3);
    assert.deepEqual([...out.indices], [0]);
    assert.ok(Math.abs(out.values[0]! - 0.091) < 1e-6);
    assert.deepEqual(f.flush(), { indices: new Uint32Array(0), values: new Float32Array(0) });
  });

  it('sent plus held equals offered, coordinate by coordinate', () => {
    const f = new SignificanceFilter(50, 0.05, 0.1);
    const w = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const offered = new Float64Array(50);
    const sent = new Float64Array(50);
    let seed = 1;
    const rand = (): number => ((seed = (seed * 48271) % 2147483647) / 2147483647) - 0.5;
    for (let step = 0; step < 200; step++) {
      const idx = Uint32Array.from(new Set(Array.from({ length: 10 }, () => Math.floor((rand() + 0.5) * 50)))).sort();
      const val = Float32Array.from(idx, () => rand() * 0.01);
      idx.forEach((i, k) => (offered[i]! += val[k]!));
      const out = f.offer(idx, val, w, Math.floor(step / 50));
      for (let k = 1; k < out.indices.length; k++) assert.ok(out.indices[k]! > out.indices[k - 1]!, 'increasing indices');
      out.indices.forEach((i, k) => (sent[i]! += out.values[k]!));
    }
    assert.ok(f.sent < f.offered, `something was held back (${f.sent} of ${f.offered})`);
    const rest = f.flush();
    rest.indices.forEach((i, k) => (sent[i]! += rest.values[k]!));
    for (let i = 0; i < 50; i++) assert.ok(Math.abs(sent[i]! - offered[i]!) < 1e-5, `coordinate ${i}: sent ${sent[i]} of ${offered[i]}`);
  });
});

describe('filtered training', () => {
  let dir: string;
  let store: string;
  let ps: ParamServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cirrus-filter-'));
    store = pathToFileURL(dir).href;
    ps = await startParamServer({ port: 0 });
    const ds = await DatasetStore.open(store);
    try {
      await writeDataset(ds, { name: 'sparse', kind: 'sparse', features: 200, train: [400, 300, 350, 450], test: [500] });
    } finally {
      await ds.close();
    }
  });

  after(async () => {
    await ps?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('allGather hands every rank every rank\'s vector of its own length, in rank order', async () => {
    const world = 3;
    const channels = await Promise.all(Array.from({ length: world }, () => openChannel({ kind: 'ps', address: ps.address })));
    try {
      const comms = channels.map((ch, rank) => new Communicator(ch, { jobId: 'gather', rank, world, timeoutMs: 30_000 }));
      for (let round = 0; round < 3; round++) {
        const got = await Promise.all(comms.map((c, r) => c.allGather(Float32Array.from({ length: r + round }, (_, i) => 10 * r + i))));
        for (const all of got) assert.deepEqual(all.map((v) => [...v]), Array.from({ length: world }, (_, r) => Array.from({ length: r + round }, (_, i) => 10 * r + i)));
      }
      await Promise.all(comms.map((c) => c.close()));
    } finally {
      await Promise.all(channels.map((c) => c.close()));
    }
  });

  it('GA-SGD and async-sgd with the filter send fewer bytes and still learn; other algorithms refuse it', async () => {
    const base = { dataset: 'sparse', store, model: 'sparse-lr' as const, workers: 2, epochs: 4, batchSize: 50, optimizer: 'sgd' as const, learningRate: 1, channel: 'ps', seed: 1 };
    for (const algorithm of ['ga-sgd', 'async-sgd'] as const) {
      const sync = algorithm === 'ga-sgd' ? 'bsp' : 'async';
      const all = await train({ ...base, algorithm, sync, filterThreshold: algorithm === 'ga-sgd' ? 1e-12 : 0 });
      const filtered = await train({ ...base, algorithm, sync, filterThreshold: 0.01 });
      assert.ok(filtered.metrics.updateBytes < all.metrics.updateBytes, `${algorithm}: ${filtered.metrics.updateBytes} < ${all.metrics.updateBytes} bytes`);
      assert.ok(filtered.metrics.testAccuracy > all.metrics.testAccuracy - 0.05, `${algorithm}: filtered accuracy ${filtered.metrics.testAccuracy} vs ${all.metrics.testAccuracy}`);
      assert.ok(filtered.metrics.testLoss < all.metrics.testLoss + 0.05, `${algorithm}: loss ${filtered.metrics.testLoss} vs ${all.metrics.testLoss}`);
    }
    assert.throws(() => parseTrainParams({ dataset: 'd', model: 'dense-lr', algorithm: 'ma-sgd', filterThreshold: 0.1 }), { code: 'TRAIN_PARAMS', message: /filterThreshold: the significance filter works with async-sgd and ga-sgd, not ma-sgd/ });
  });
});
