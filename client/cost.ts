/**
 * Cost estimates at AWS list prices, from measured counters. Prices live in one editable JSON file
 * (client/aws-prices.json, or the file named by CIRRUS_PRICES).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { ChannelStats } from '../channels/index.js';

const pricesSchema = z.object({
  region: z.string(),
  s3: z.object({ putPer1000: z.number().min(0), getPer1000: z.number().min(0), listPer1000: z.number().min(0), deletePer1000: z.number().min(0), storageGbMonth: z.number().min(0) }),
  lambda: z.object({ gbSecond: z.number().min(0), requestPer1M: z.number().min(0) }),
  elasticache: z.object({ nodeType: z.string(), nodeHour: z.number().min(0) }),
  ps: z.object({ instanceType: z.string(), instanceHour: z.number().min(0) }),
});

export type Prices = z.infer<typeof pricesSchema>;

export class PricesError extends Error {
  readonly code = 'PRICES_INVALID' as const;
}

/** Default price file: client/aws-prices.json in the package (next to this module's source). */
export const DEFAULT_PRICES_FILE = fileURLToPath(new URL('../../client/aws-prices.json', import.meta.url));

export function loadPrices(file = process.env.CIRRUS_PRICES ?? DEFAULT_PRICES_FILE): Prices {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new PricesError(`${file}: cannot read the price file: ${(e as Error).message}`);
  }
  const r = pricesSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new PricesError(`${file}: field '${issue.path.join('.')}': ${issue.message}`);
  }
  return r.data;
}

/**
 * What the channel costs for traffic `stats` that kept it busy for `seconds`: S3 is billed per
 * request; memcached (ElastiCache) and the parameter server (EC2) per node-hour, charged here as
 * the share of an hour the traffic took.
 */
export function channelCostUsd(kind: string, stats: ChannelStats, seconds: number, prices: Prices): number {
  switch (kind) {
    case 's3':
      return (
        (stats.put.requests * prices.s3.putPer1000 + stats.get.requests * prices.s3.getPer1000 + stats.list.requests * prices.s3.listPer1000 + stats.delete.requests * prices.s3.deletePer1000) / 1000
      );
    case 'memcached':
      return (seconds * prices.elasticache.nodeHour) / 3600;
    case 'ps':
      return (seconds * prices.ps.instanceHour) / 3600;
    default:
      return 0;
  }
}

/** Lambda compute for `workers` functions of `memoryMb` running `seconds`, plus their invocations. */
export function lambdaCostUsd(workers: number, memoryMb: number, seconds: number, invocations: number, prices: Prices): number {
  return workers * (memoryMb / 1024) * seconds * prices.lambda.gbSecond + (invocations * prices.lambda.requestPer1M) / 1e6;
}
