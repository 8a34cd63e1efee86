/**
 * Matrix factorization: the gradient against finite differences, its sparse support, top-k
 * recommendations, `datasets generate ratings`, and training to within 5% of the planted floor RMSE
 * on 120,000 generated ratings with real worker processes, on the parameter server (async-sgd,
 * sparse pulls) and over a collective (GA-SGD).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { MatrixFactorization, SupportFinder, createRng, type ModelSpec, type RatingsBatch } from '../algorithms/index.js';
import { generateRatings, preprocess, train } from '../client/index.js';
import { predictRatings, recommend } from '../client/model-queries.js';

const spec: ModelSpec = { type: 'mf', features: 7, classes: 2, users: 4, items: 3, rank: 2, reg: 0.1 };

function batch(triples: Array<[number, number, number]>): RatingsBatch {
  return {
    kind: 'ratings',
    rows: triples.length,
    users: Uint32Array.from(triples.map((t) => t[0])),
    items: Uint32Array.from(triples.map((t) => t[1])),
    ratings: Float32Array.from(triples.map((t) => t[2])),
  };
}

describe('matrix factorization model', () => {
  const m = new MatrixFactorization(spec);
  const b = batch([[0, 1, 4], [2, 1, 3], [2, 2, 1.5]]);

  it('scores mu + b_u + b_i + p_u . q_i from its layout', () => {
    // [P (4x2), Q (3x2), b_user (4), b_item (3), mu]
    const w = new Float32Array(m.size);
    assert.equal(m.size, 4 * 2 + 3 * 2 + 4 + 3 + 1);
    w.set([1, 2], 2 * 2); // p_2
    w.set([3, -1], 8 + 1 * 2); // q_1
    w[14 + 2] = 0.5; // b_user 2
    w[18 + 1] = -0.25; // b_item 1
    w[21] = 3; // mu
    assert.deepEqual([...predictRatings(spec, w, [[2, 1], [0, 0]])], [3 + 0.5 - 0.25 + (1 * 3 + 2 * -1), 3]);
  });

  it('the gradient equals finite differences of the regularized squared error', () => {
    const w = m.init(3);
    const rng = createRng(9);
    for (let i = 0; i < w.length; i++) w[i] = w[i]! + 0.3 * rng.normal();
    const objective = (v: Float32Array): number => {
      const L = m.layout;
      let s = 0;
      for (let r = 0; r < b.rows; r++) {
        const u = b.users[r]!, i = b.items[r]!;
        const e = m.score(v, u, i) - b.ratings[r]!;
        let sq = v[L.bu + u]! ** 2 + v[L.bi + i]! ** 2;
        for (let t = 0; t < L.rank; t++) sq += v[u * L.rank + t]! ** 2 + v[L.q + i * L.rank + t]! ** 2;
        s += e * e + 0.1 * sq;
      }
      return s;
    };
    const g = new Float32Array(m.size);
    const loss = m.gradient(b, w, g);
    assert.ok(Math.abs(loss - m.evaluate(b, w).lossSum) < 1e-9, 'the reported loss is the squared error alone');
    for (let i = 0; i < w.length; i++) {
      const h = 1e-2;
      const up = w.slice();
      const down = w.slice();
      up[i] = up[i]! + h;
      down[i] = down[i]! - h;
      const numeric = (objective(up) - objective(down)) / (2 * h);
      assert.ok(Math.abs(numeric - g[i]!) < 2e-3 * Math.max(1, Math.abs(numeric)), `weight ${i}: analytic ${g[i]} vs numeric ${numeric}`);
    }
  });

  it('the sparse support lists exactly the weights the gradient touches, in increasing order', () => {
    const w = m.init(1);
    const g = new Float32Array(m.size);
    m.gradient(b, w, g);
    const touched = [...g.keys()].filter((i) => g[i] !== 0);
    const support = [...new SupportFinder(spec).find(b)];
    assert.deepEqual(support, touched);
    // users 0, 2; items 1, 2: P rows 0, 2; Q rows 1, 2; their biases; mu.
    assert.deepEqual(support, [0, 1, 4, 5, 10, 11, 12, 13, 14, 16, 19, 20, 21]);
  });

  it('recommends the top-k items by predicted rating, leaving out the excluded ones', () => {
    const w = new Float32Array(m.size);
    w[18] = 0.1; // b_item 0
    w[19] = 0.7; // b_item 1
    w[20] = 0.4; // b_item 2
    assert.deepEqual(recommend(spec, w, 1, 2).map((r) => r.item), [1, 2]);
    assert.deepEqual(recommend(spec, w, 1, 5, [1]).map((r) => r.item), [2, 0]);
    assert.throws(() => recommend(spec, w, 4, 1), { code: 'MODEL_BATCH', message: /user 4 is outside \[0, 4\)/ });
    assert.throws(() => recommend({ type: 'dense-lr', features: 3, classes: 2 }, new Float32Array(4), 0, 1), { code: 'MODEL_QUERY' });
    assert.throws(() => m.gradient(batch([[0, 3, 1]]), w, new Float32Array(m.size)), { code: 'MODEL_BATCH', message: /item id 3 of batch row 0 is outside the model's 3 items/ });
  });
});

describe('MF on generated ratings', () => {
  let dir: string;
  let store: string;
  const FLOOR = 0.5;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cirrus-mf-'));
    store = pathToFileURL(join(dir, 'store')).href;
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('generate ratings writes a MovieLens-format file whose planted model scores the noise level', async () => {
    const file = join(dir, 'small.csv');
    const truth = await generateRatings({ rows: 2000, seed: 4, file, users: 30, items: 20, rank: 3, noise: 0.5 });
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    assert.equal(lines[0], 'userId,movieId,rating');
    assert.equal(lines.length, 2001);
    for (const line of lines.slice(1)) {
      const [u, i, r] = line.split(',');
      assert.ok(Number.isInteger(Number(u)) && Number(u) < 30 && Number.isInteger(Number(i)) && Number(i) < 20 && Number.isFinite(Number(r)), line);
    }
    assert.equal(truth.floorRmse, 0.5);
    assert.ok(Math.abs(truth.observedFloorRmse - 0.5) < 0.03, `observed floor ${truth.observedFloorRmse}`);
    const again = await generateRatings({ rows: 2000, seed: 4, file: join(dir, 'again.csv'), users: 30, items: 20, rank: 3, noise: 0.5 });
    assert.deepEqual(again, truth);
    assert.equal(await readFile(join(dir, 'again.csv'), 'utf8'), await readFile(file, 'utf8'));
  });

  it('reaches a test RMSE within 5% of the floor on 120,000 ratings, on the parameter server and over a collective', async () => {
    const file = join(dir, 'ratings.csv');
    const truth = await generateRatings({ rows: 120_000, seed: 1, file });
    assert.equal(truth.floorRmse, FLOOR);
    const m = await preprocess({ input: file, format: 'ratings', name: 'ratings', store, split: 0.85, rowsPerShard: 10_000, seed: 1 });
    assert.equal(m.users, truth.users);
    assert.equal(m.items, truth.items);
    const common = { dataset: 'ratings', store, model: 'mf' as const, workers: 2, factors: 5, channel: 'ps', seed: 0 };
    // Cirrus's way: the model on the parameter server, sparse pulls and pushes of the rows a batch touches.
    const ps = await train({ ...common, algorithm: 'async-sgd', sync: 'bsp', epochs: 20, batchSize: 100, optimizer: 'adagrad', learningRate: 0.1, l2: 0.005 });
    // Over a collective: GA-SGD all-reducing the gradient.
    const ga = await train({ ...common, algorithm: 'ga-sgd', epochs: 20, batchSize: 250, optimizer: 'adam', learningRate: 0.01, l2: 0.01 });
    for (const [name, r] of [['async-sgd', ps], ['ga-sgd', ga]] as const) {
      assert.ok(r.metrics.testRmse !== undefined && Math.abs(r.metrics.testRmse - Math.sqrt(r.metrics.testLoss)) < 1e-12);
      assert.ok(r.metrics.testRmse! <= 1.05 * FLOOR, `${name}: test RMSE ${r.metrics.testRmse} within 5% of the floor ${FLOOR}`);
      const top = r.model.recommend(0, 5);
      assert.equal(top.length, 5);
      assert.ok(top.every((t, i) => i === 0 || t.score <= top[i - 1]!.score), `${name}: recommendations best first`);
    }
  });
});
