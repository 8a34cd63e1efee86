/**
 * The cost model term by term, against hand computations at the list prices of
 * client/aws-prices.json (written out in test/support/aws-prices.ts), and the search's live view,
 * which must price a running trial with the same function.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { emptyStats, type ChannelStats } from '../channels/index.js';
import { DEFAULT_PRICES_FILE, billedMs, channelCostUsd, channelKindOf, lambdaCost, loadPrices, nodeHoursUsd, s3RequestsUsd, trainCost, PricesError } from '../client/cost.js';
import { parseTrainParams } from '../client/train-params.js';
import { costSoFar } from '../hpo/live-view.js';
import type { TrialState } from '../hpo/state.js';
import { LIST_PRICES, assertUsd } from './support/aws-prices.js';

const prices = loadPrices(DEFAULT_PRICES_FILE);

function stats(requests: { put: number; get: number; list: number; delete: number }): ChannelStats {
  const s = emptyStats();
  for (const k of ['put', 'get', 'list', 'delete'] as const) s[k] = { requests: requests[k], bytes: 10 * requests[k] };
  return s;
}

test('the default price file holds the list prices the hand computations below use', () => {
  assert.deepEqual(prices, LIST_PRICES);
});

test('Lambda bills each invocation in 1 ms steps, in GB-seconds, plus one request each', () => {
  assert.deepEqual([0, 0.2, 1, 1.0001, 1500.2].map(billedMs), [0, 1, 1, 2, 1501]);
  // 1500.2 + 999.0001 + 0.5 ms bill as 1501 + 1000 + 1 = 2502 ms (rounding the sum would give 2501);
  // at 2048 MB that is 2.502 s * 2 GB = 5.004 GB-s: 5.004 * 0.0000166667 + 3 requests * 0.2 / 1e6.
  const three = lambdaCost([1500.2, 999.0001, 0.5], 2048, prices);
  assert.equal(three.billedMs, 2502);
  assertUsd(three.gbSeconds, 5.004, 'GB-seconds');
  assertUsd(three.usd, 0.0000840001668, 'usd of three invocations');
  // 100 ms at 128 MB: 0.1 s * 0.125 GB = 0.0125 GB-s.
  assertUsd(lambdaCost([100], 128, prices).usd, 0.00000040833375, 'usd of one small invocation');
  assert.deepEqual(lambdaCost([], 2048, prices), { billedMs: 0, gbSeconds: 0, usd: 0 });
});

test('S3 bills every request kind at its own price; memcached and the parameter server bill node-hours', () => {
  // 1000 PUT * 0.005/1000 + 2500 GET * 0.0004/1000 + 10 LIST * 0.005/1000 + 7 DELETE * 0.
  assertUsd(s3RequestsUsd({ put: 1000, get: 2500, list: 10, delete: 7 }, prices), 0.00605, 's3 requests');
  assertUsd(s3RequestsUsd({ put: 0, get: 0, list: 0, delete: 1_000_000 }, prices), 0, 'deletes are free');
  assertUsd(nodeHoursUsd(1800, 0.068), 0.034, 'half a node-hour');
  const traffic = stats({ put: 1000, get: 2500, list: 10, delete: 7 });
  assertUsd(channelCostUsd('s3', traffic, 90, prices), 0.00605, 's3 channel: requests, not time');
  assertUsd(channelCostUsd('memcached', traffic, 90, prices), 0.0017, 'memcached: 90 s of a 0.068/h node');
  assertUsd(channelCostUsd('ps', traffic, 90, prices), 0.002125, 'ps: 90 s of a 0.085/h instance');
  assert.equal(channelCostUsd('memory', traffic, 90, prices), 0);
  assert.deepEqual(['ps', 'memcached', 's3', 'ps://10.0.0.2:7070', 'memcached://10.0.0.3:11211', 's3://bucket', 'memory://'].map(channelKindOf), ['ps', 'memcached', 's3', 'ps', 'memcached', 's3', 'memory']);
});

test('a run costs its workers, its channel and its dataset reads, each term reported', () => {
  const traffic = stats({ put: 100, get: 300, list: 2, delete: 50 });
  const c = trainCost({ workerDurationsMs: [2000, 2000.5], memoryMb: 1024, channelKind: 's3', channelStats: traffic, wallSeconds: 3, storeGets: 10 }, prices);
  // Workers: 2000 + 2001 ms at 1 GB = 4.001 GB-s -> 0.0000666834667, + 2 requests 0.0000004.
  assertUsd(c.workerUsd, 0.0000670834667, 'workerUsd');
  // Channel (s3): 100 * 0.005/1000 + 300 * 0.0004/1000 + 2 * 0.005/1000 + 50 * 0 = 0.00063.
  assertUsd(c.channelUsd, 0.00063, 'channelUsd');
  // Dataset: 10 GETs * 0.0004/1000.
  assertUsd(c.storeUsd, 0.000004, 'storeUsd');
  assertUsd(c.usd, 0.0007010834667, 'usd');
  assert.equal(c.workerBilledMs, 4001);
  assertUsd(c.workerGbSeconds, 4.001, 'workerGbSeconds');
  assertUsd(c.workerSeconds, 4.0005, 'workerSeconds');
  assert.equal(c.invocations, 2);
  assert.equal(c.channelRequests, 452);
  assert.deepEqual(c.channelRequestsByKind, { put: 100, get: 300, list: 2, delete: 50 });
  assert.equal(c.channelBytes, 4520);
  assert.equal(c.storeGets, 10);
  // The same run over the parameter server pays 3 s of its instance instead of the requests.
  const ps = trainCost({ workerDurationsMs: [2000, 2000.5], memoryMb: 1024, channelKind: 'ps', channelStats: traffic, wallSeconds: 3, storeGets: 10 }, prices);
  assertUsd(ps.channelUsd, 0.00007083333333333333, 'ps channelUsd (3/3600 * 0.085)');
});

test('the live view prices a running trial with the same function, and a finished one at its final cost', () => {
  const params = parseTrainParams({ dataset: 'd', model: 'dense-lr', workers: 2, channel: 'memcached' });
  assert.equal(params.launcher.memoryMb, 2048);
  const trial = { id: 't000', params: {}, status: 'running', history: [{ epoch: 1, wallSeconds: 30 }] } as unknown as TrialState;
  // 2 workers * 30 s * 2 GB = 120 GB-s * 0.0000166667 + 2 requests * 0.2e-6 = 0.002000404;
  // memcached up 30 s: 30 / 3600 * 0.068 = 0.000566666...
  assertUsd(costSoFar(trial, params, prices)!, 0.0025670706666666667, 'running trial');
  assert.equal(costSoFar({ ...trial, history: [] }, params, prices), undefined);
  const done = { ...trial, status: 'done', cost: trainCost({ workerDurationsMs: [1000], memoryMb: 2048, channelKind: 'ps', wallSeconds: 1, storeGets: 0 }, prices) } as TrialState;
  assert.equal(costSoFar(done, params, prices), done.cost!.usd);
});

test('a bad price file is one error naming the file and the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cirrus-prices-'));
  try {
    const file = join(dir, 'prices.json');
    writeFileSync(file, JSON.stringify({ ...LIST_PRICES, lambda: { gbSecond: -1, requestPer1M: 0.2 } }));
    assert.throws(() => loadPrices(file), (e: unknown) => e instanceof PricesError && e.code === 'PRICES_INVALID' && e.message.startsWith(`${file}: field 'lambda.gbSecond': `));
    writeFileSync(file, '{');
    assert.throws(() => loadPrices(file), (e: unknown) => e instanceof PricesError && e.message.startsWith(`${file}: cannot read the price file: `));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
