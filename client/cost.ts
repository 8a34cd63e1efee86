/**
 * Cost estimates at AWS list prices, from measured counters. Prices live in one editable JSON file
 * (client/aws-prices.json, or the file named by CIRRUS_PRICES).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { CirrusError } from '../paramserver/index.js';
import { emptyStats, totalBytes, totalRequests, type ChannelStats } from '../channels/index.js';

const pricesSchema = z.object({
  region: z.string(),
  s3: z.object({ putPer1000: z.number().min(0), getPer1000: z.number().min(0), listPer1000: z.number().min(0), deletePer1000: z.number().min(0), storageGbMonth: z.number().min(0) }),
  lambda: z.object({ gbSecond: z.number().min(0), requestPer1M: z.number().min(0) }),
  elasticache: z.object({ nodeType: z.string(), nodeHour: z.number().min(0) }),
  ps: z.object({ instanceType: z.string(), instanceHour: z.number().min(0) }),
});

export type Prices = z.infer<typeof pricesSchema>;

export class PricesError extends CirrusError<'PRICES_INVALID'> {
  constructor(message: string) {
    super('PRICES_INVALID', message);
  }
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

/** Lambda bills each invocation's duration rounded up to the next millisecond. */
export function billedMs(durationMs: number): number {
  return Math.ceil(durationMs);
}

/**
 * Lambda: every invocation is billed its duration (in 1 ms steps) times its memory, in GB-seconds
 * (memory in MB / 1024), at the GB-second price, plus the price of one request.
 */
export function lambdaCost(durationsMs: readonly number[], memoryMb: number, prices: Prices): { billedMs: number; gbSeconds: number; usd: number } {
  const ms = durationsMs.reduce((s, d) => s + billedMs(d), 0);
  const gbSeconds = (ms / 1000) * (memoryMb / 1024);
  return { billedMs: ms, gbSeconds, usd: gbSeconds * prices.lambda.gbSecond + (durationsMs.length * prices.lambda.requestPer1M) / 1e6 };
}

/** S3 requests at their per-1,000 price, each kind its own (PUT, GET, LIST, DELETE). */
export function s3RequestsUsd(requests: RequestCounts, prices: Prices): number {
  const s3 = prices.s3;
  return (requests.put * s3.putPer1000 + requests.get * s3.getPer1000 + requests.list * s3.listPer1000 + requests.delete * s3.deletePer1000) / 1000;
}

/** A node billed by the hour (ElastiCache, EC2), charged the share of an hour it was busy. */
export function nodeHoursUsd(seconds: number, hourlyUsd: number): number {
  return (seconds / 3600) * hourlyUsd;
}

export interface RequestCounts {
  put: number;
  get: number;
  list: number;
  delete: number;
}

function requestCounts(stats: ChannelStats): RequestCounts {
  return { put: stats.put.requests, get: stats.get.requests, list: stats.list.requests, delete: stats.delete.requests };
}

/**
 * What the channel costs for traffic `stats` that kept it busy for `seconds`: S3 is billed per
 * request; memcached (ElastiCache) and the parameter server (EC2) per node-hour, charged here as
 * the share of an hour the traffic took. Other channels (memory) cost nothing.
 */
export function channelCostUsd(kind: string, stats: ChannelStats, seconds: number, prices: Prices): number {
  switch (kind) {
    case 's3':
      return s3RequestsUsd(requestCounts(stats), prices);
    case 'memcached':
      return nodeHoursUsd(seconds, prices.elasticache.nodeHour);
    case 'ps':
      return nodeHoursUsd(seconds, prices.ps.instanceHour);
    default:
      return 0;
  }
}

/** The channel kind a train `channel` parameter names: 'ps', 'memcached', 's3', or a URL's scheme. */
export function channelKindOf(channel: string): string {
  const scheme = /^([a-z0-9]+):\/\//.exec(channel);
  return scheme ? scheme[1]! : channel;
}

/** What a run (or a run so far) is made of, as far as the bill goes. */
export interface CostInputs {
  /** Every worker invocation's duration (every rank, every generation). */
  workerDurationsMs: readonly number[];
  memoryMb: number;
  channelKind: string;
  /** The channel traffic measured so far (none when omitted). */
  channelStats?: ChannelStats;
  /** How long the channel's server was needed (the run's wall time). */
  wallSeconds: number;
  /** GET requests on the dataset store (shard reads). */
  storeGets: number;
}

export interface TrainCost {
  usd: number;
  workerUsd: number;
  channelUsd: number;
  storeUsd: number;
  workerGbSeconds: number;
  /** Sum of the invocations' durations rounded up to 1 ms each, as Lambda bills them. */
  workerBilledMs: number;
  /** Sum of the workers' durations (every invocation, every generation). */
  workerSeconds: number;
  invocations: number;
  channelRequests: number;
  /** Channel requests by kind (what S3 bills per request). */
  channelRequestsByKind: RequestCounts;
  channelBytes: number;
  storeGets: number;
  /**
   * CPU-seconds of the run from the processes' own accounting (train() fills these; the cost
   * function itself knows only durations): the workers' (as they reported them), the client's
   * process (which hosts the embedded parameter server and S3 server), and servers in their own
   * processes (memcached).
   */
  workerCpuSeconds?: number;
  clientCpuSeconds?: number;
  serverCpuSeconds?: number;
  cpuSeconds?: number;
}

/**
 * The one cost function: the run's AWS bill at `prices`, for a finished run and for one in
 * progress (the search's live view) alike. Workers are Lambda invocations, the channel is billed
 * as channelCostUsd says, dataset reads are S3 GETs.
 */
export function trainCost(inputs: CostInputs, prices: Prices): TrainCost {
  const stats = inputs.channelStats ?? emptyStats();
  const lambda = lambdaCost(inputs.workerDurationsMs, inputs.memoryMb, prices);
  const channelUsd = channelCostUsd(inputs.channelKind, stats, inputs.wallSeconds, prices);
  const storeUsd = s3RequestsUsd({ put: 0, get: inputs.storeGets, list: 0, delete: 0 }, prices);
  return {
    usd: lambda.usd + channelUsd + storeUsd,
    workerUsd: lambda.usd,
    channelUsd,
    storeUsd,
    workerGbSeconds: lambda.gbSeconds,
    workerBilledMs: lambda.billedMs,
    workerSeconds: inputs.workerDurationsMs.reduce((sum, d) => sum + d / 1000, 0),
    invocations: inputs.workerDurationsMs.length,
    channelRequests: totalRequests(stats),
    channelRequestsByKind: requestCounts(stats),
    channelBytes: totalBytes(stats),
    storeGets: inputs.storeGets,
  };
}
