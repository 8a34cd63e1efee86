/**
 * The list prices of client/aws-prices.json written out by hand, so cost tests compare against
 * numbers that do not come from the code under test (cost.test.ts pins the file to them).
 */
import assert from 'node:assert/strict';

export const LIST_PRICES = {
  region: 'us-east-1',
  s3: { putPer1000: 0.005, getPer1000: 0.0004, listPer1000: 0.005, deletePer1000: 0, storageGbMonth: 0.023 },
  lambda: { gbSecond: 0.0000166667, requestPer1M: 0.2 },
  elasticache: { nodeType: 'cache.t3.medium', nodeHour: 0.068 },
  ps: { instanceType: 'c6i.large', instanceHour: 0.085 },
} as const;

/** Equal up to float rounding (relative 1e-12): dollar amounts are sums of products. */
export function assertUsd(actual: number, expected: number, what: string): void {
  assert.ok(Number.isFinite(actual), `${what}: ${actual} is not a number`);
  assert.ok(Math.abs(actual - expected) <= 1e-12 * Math.max(Math.abs(expected), 1e-12), `${what}: ${actual}, expected ${expected}`);
}
