/**
 * Metrics: exact AUC on small cases with ties (and against brute-force pair counting), log-loss,
 * accuracy, top-1 accuracy, and the Evaluator's accumulation over batches.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Evaluator, LOG_EPS, MetricsError, accuracy, auc, createModel, logLoss, top1Accuracy, type DenseBatch } from '../algorithms/index.js';

/** P(positive scores above negative), ties half: the definition, by counting all pairs. */
function pairAuc(labels: number[], scores: number[]): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (!(labels[i] > 0)) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] > 0) continue;
      pairs++;
      wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return wins / pairs;
}

test('auc: exact values with ties', () => {
  assert.equal(auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]), 0.5); // all tied
  assert.equal(auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]), 1);
  assert.equal(auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]), 0);
  assert.equal(auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 0.75);
  // Pairs (pos, neg): (0.2, 0.2) tie = 0.5, (0.2, 0.1) = 1, (0.9, 0.2) = 1, (0.9, 0.1) = 1: 3.5 / 4.
  assert.equal(auc([0, 1, 0, 1], [0.2, 0.2, 0.1, 0.9]), 0.875);
  // Labels {-1, +1} work as well, and so do infinite scores.
  // Pairs: (inf, -inf) 1, (inf, 0) 1, (0, -inf) 1, (0, 0) 0.5.
  assert.equal(auc([-1, 1, -1, 1], [-Infinity, Infinity, 0, 0]), 0.875);
  assert.ok(Number.isNaN(auc([1, 1], [0.2, 0.3])), 'one class only: undefined');
  assert.throws(() => auc([0, 1], [0.5, Number.NaN]), (e: unknown) => e instanceof MetricsError && e.code === 'METRICS_VALUE' && /row 1 is NaN/.test(e.message));
  assert.throws(() => auc([0, 1], [0.5]), (e: unknown) => e instanceof MetricsError && e.code === 'METRICS_LENGTH');
});

test('auc equals brute-force pair counting on data with many ties', () => {
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  for (let trial = 0; trial < 5; trial++) {
    const n = 300;
    const labels = Array.from({ length: n }, () => (rnd() < 0.4 ? 1 : 0));
    const scores = labels.map((y) => Math.round((rnd() + 0.3 * y) * 10) / 10); // 14 distinct values
    assert.ok(Math.abs(auc(labels, scores) - pairAuc(labels, scores)) < 1e-12);
  }
});

test('logLoss and accuracy', () => {
  assert.equal(logLoss([1, 0], [0.5, 0.5]), Math.LN2);
  assert.ok(Math.abs(logLoss([1, 0, 1], [0.5, 0.5, Math.exp(-2)]) - (2 * Math.LN2 + 2) / 3) < 1e-15);
  // A certain miss is clipped to LOG_EPS, not Infinity.
  assert.equal(logLoss([1], [0]), -Math.log(LOG_EPS));
  assert.ok(Math.abs(logLoss([0], [1]) - 34.54) < 1e-2); // 1 - (1 - 1e-15) is only ~1e-15 in float64
  assert.equal(accuracy([1, 0, 1, 0], [0.9, 0.6, 0.4, 0.1]), 0.5);
  assert.equal(accuracy([1, 0, 1, 0], [0.9, 0.6, 0.4, 0.1], 0.3), 0.75);
  assert.equal(accuracy([1, 0], [0.5, 0.5]), 0.5, 'p = 0.5 is a negative prediction');
  assert.throws(() => logLoss([1, 0], [0.5]), (e: unknown) => e instanceof MetricsError && /2 labels need 2 values, got 1/.test(e.message));
});

test('top1Accuracy: argmax per row, ties to the lowest class', () => {
  const probs = [0.7, 0.2, 0.1, 0.1, 0.3, 0.6, 0.4, 0.4, 0.2, 0.2, 0.5, 0.3];
  // Rows predict 0, 2, 0 (a 0/1 tie), 1.
  assert.equal(top1Accuracy([0, 2, 0, 2], probs, 3), 0.75);
  assert.equal(top1Accuracy([1, 2, 1, 1], probs, 3), 0.5);
  assert.throws(() => top1Accuracy([0], [0.5, 0.5], 3), (e: unknown) => e instanceof MetricsError && e.code === 'METRICS_LENGTH');
});

test('Evaluator accumulates batches into loss, accuracy and AUC', () => {
  const model = createModel({ type: 'dense-lr', features: 1, classes: 2 });
  const w = new Float32Array([2, -1]); // z = 2x - 1
  const b1: DenseBatch = { kind: 'dense', rows: 3, cols: 1, labels: new Float32Array([1, 0, 1]), x: new Float32Array([1, 0, 0.25]) };
  const b2: DenseBatch = { kind: 'dense', rows: 2, cols: 1, labels: new Float32Array([0, 1]), x: new Float32Array([0.75, 2]) };
  const ev = new Evaluator();
  ev.addBatch(model, b1, w).addBatch(model, b2, w);
  const r1 = model.evaluate(b1, w), r2 = model.evaluate(b2, w);
  const report = ev.report();
  assert.equal(report.rows, 5);
  assert.equal(report.loss, (r1.lossSum + r2.lossSum) / 5);
  // z = 1, -1, -0.5, 0.5, 3: correct are rows 0, 1 and 4.
  assert.equal(report.accuracy, 3 / 5);
  const labels = [1, 0, 1, 0, 1];
  const scores = [...r1.scores!, ...r2.scores!];
  assert.equal(report.auc, auc(labels, scores));
  assert.equal(report.auc, pairAuc(labels, [1, -1, -0.5, 0.5, 3]));
  assert.deepEqual(ev.result(), report);

  // merge() folds another evaluator in, as from another worker.
  const a = new Evaluator().addBatch(model, b1, w);
  const b = new Evaluator().addBatch(model, b2, w);
  assert.deepEqual(a.merge(b).report(), report);

  // Without AUC (multiclass, or by choice) scores are ignored; empty evaluators report NaN.
  const noAuc = new Evaluator(false).add(r1);
  assert.equal(noAuc.report().auc, undefined);
  assert.ok(Number.isNaN(new Evaluator().report().loss));
  assert.throws(() => new Evaluator().add(r1), (e: unknown) => e instanceof MetricsError && e.code === 'METRICS_LABELS');
});
