/**
 * The Lambda-style entry point of a stateless worker: validate the event, dispatch on task.type,
 * return a plain JSON value (or throw a typed error with a `code`). The same function runs inside
 * AWS Lambda and inside the local launcher's child processes (worker/main.ts).
 */
import { columnStats, decodeShard, encodeShard, type ObjectStore, type Shard, type ShardRef } from '../channels/datasets/index.js';
import { openObjectStore } from '../channels/object-stores/index.js';
import { CirrusError } from '../paramserver/index.js';
import type { FinalStats, PartialStats, PartialStatsJSON } from '../algorithms/index.js';
import { msgpackrPath } from '../channels/messages.js';
import { parseWorkerEvent, type TransformOp, type WorkerEvent } from './event.js';

// Each task loads only the modules it runs: a cold start pays for one task's code, not all of them.
const stats = () => import('../algorithms/index.js');

export type WorkerTaskErrorCode = 'SHARD_MISSING' | 'STATS_INVALID';

export class WorkerTaskError extends CirrusError<WorkerTaskErrorCode> {}

export interface DatasetStatsResult {
  rows: number;
  shards: number;
  stats: PartialStatsJSON;
}

export interface DatasetTransformResult {
  shards: ShardRef[];
  /** Statistics of the written shards, when the task asked for them. */
  stats?: PartialStatsJSON;
}

/**
 * The part of Lambda's context object the worker uses (the local launcher's children get the same,
 * built from their time limit). Lambda's own object has more fields; they are not needed here.
 */
export interface WorkerContext {
  getRemainingTimeInMillis(): number;
  awsRequestId?: string;
  functionName?: string;
  memoryLimitInMB?: string | number;
}

/** Where the worker runs: what a packaged worker reports, so a silent fallback cannot hide. */
export interface RuntimeInfo {
  node: string;
  /** 'native' when msgpackr's compiled add-on loaded, 'js' for its pure-JavaScript path. */
  msgpackr: 'native' | 'js';
  /** The tfjs backend of the MLP's matmuls, or null when the task does not use tfjs. */
  tfjsBackend: string | null;
  /** Which clock set the deadline: Lambda's context (its remaining time) or the event. */
  deadlineFrom: 'context' | 'event';
  memoryMb: number | null;
}

export async function handler(event: unknown, context?: WorkerContext): Promise<unknown> {
  try {
    return await runHandler(event, context);
  } catch (err) {
    throw withCodeInName(err);
  }
}

/**
 * Lambda reports a thrown error as {errorType: its name, errorMessage}: the error's code would be
 * lost, so it travels in the name as `Cirrus.<CODE>` (like Lambda's own `Runtime.ExitError`).
 */
export function withCodeInName(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code)) err.name = `${ERROR_TYPE_PREFIX}${code}`;
  return err;
}

/** The errorType prefix of a worker error that carries its code (read back by the Lambda launcher). */
export const ERROR_TYPE_PREFIX = 'Cirrus.';

async function runHandler(event: unknown, context?: WorkerContext): Promise<unknown> {
  const parsed = parseWorkerEvent(event);
  const { event: e, deadlineFrom } = withContextDeadline(parsed, context);
  const task = e.task;
  switch (task.type) {
    case 'dataset-stats':
      return withStore(e, (store) => runStats(store, task.shards));
    case 'dataset-transform':
      return withStore(e, (store) => runTransform(store, task.op, task.statsKey, task.shards, task.outputStats));
    case 'dataset-parse': {
      const { runDatasetParse } = await import('./dataset-parse.js');
      return withStore(e, (store) => runDatasetParse(store, task));
    }
    case 'train': {
      const { runTrain } = await import('./train.js');
      const { tfjsKernelBackend } = await import('../algorithms/index.js');
      const result = await runTrain({ ...e, task });
      const runtime = runtimeInfo(deadlineFrom, context, task.model.type === 'mlp' ? tfjsKernelBackend() : null);
      console.log(`cirrus worker rank ${e.rank}: node ${runtime.node}, msgpackr ${runtime.msgpackr}, tfjs ${runtime.tfjsBackend ?? 'unused'}, deadline from ${runtime.deadlineFrom}`);
      return { ...result, runtime };
    }
  }
}

/** The deadline is the earlier of the event's and the context's: Lambda kills at its own timeout. */
export function withContextDeadline<E extends { deadlineMs: number }>(e: E, context: WorkerContext | undefined): { event: E; deadlineFrom: 'context' | 'event' } {
  const remaining = context?.getRemainingTimeInMillis();
  if (remaining === undefined || !Number.isFinite(remaining)) return { event: e, deadlineFrom: 'event' };
  const fromContext = Date.now() + Math.max(0, Math.floor(remaining));
  return fromContext < e.deadlineMs ? { event: { ...e, deadlineMs: fromContext }, deadlineFrom: 'context' } : { event: e, deadlineFrom: 'event' };
}

export function runtimeInfo(deadlineFrom: 'context' | 'event', context: WorkerContext | undefined, tfjsBackend: string | null): RuntimeInfo {
  const memory = Number(context?.memoryLimitInMB);
  return {
    node: process.versions.node,
    msgpackr: msgpackrPath(),
    tfjsBackend,
    deadlineFrom,
    memoryMb: Number.isFinite(memory) && memory > 0 ? memory : null,
  };
}

async function withStore<T>(e: WorkerEvent, f: (store: ObjectStore) => Promise<T>): Promise<T> {
  const store = await openObjectStore(e.endpoints.store);
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

/**
 * Reads shards one after another, fetching the next while the current one is processed, so
 * memory holds at most two shards and the network overlaps the compute.
 */
async function forEachShard(store: ObjectStore, keys: string[], f: (shard: Shard, key: string, index: number) => Promise<void>): Promise<void> {
  const fetch = (key: string): Promise<Uint8Array | undefined> => {
    const p = store.get(key);
    p.catch(() => undefined); // a prefetch that fails after an earlier error must not go unhandled
    return p;
  };
  let next = fetch(keys[0]!);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const bytes = await next;
    if (i + 1 < keys.length) next = fetch(keys[i + 1]!);
    if (bytes === undefined) throw new WorkerTaskError('SHARD_MISSING', `shard '${key}' does not exist in ${store.url}`);
    await f(decodeShard(bytes, key), key, i);
  }
}

async function runStats(store: ObjectStore, keys: string[]): Promise<DatasetStatsResult> {
  const { mergeStats, shardStats, statsToJSON } = await stats();
  let acc: PartialStats | undefined;
  await forEachShard(store, keys, async (shard) => {
    const s = shardStats(shard);
    acc = acc ? mergeStats(acc, s) : s;
  });
  return { rows: acc!.rows, shards: keys.length, stats: statsToJSON(acc!) };
}

async function loadStats(store: ObjectStore, key: string): Promise<FinalStats> {
  const bytes = await store.get(key);
  if (bytes === undefined) throw new WorkerTaskError('STATS_INVALID', `statistics object '${key}' does not exist in ${store.url}`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new WorkerTaskError('STATS_INVALID', `statistics object '${key}' is not valid JSON: ${(err as Error).message}`);
  }
  const r = columnStats.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new WorkerTaskError('STATS_INVALID', `statistics object '${key}': ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return r.data;
}

async function runTransform(
  store: ObjectStore,
  op: TransformOp,
  statsKey: string,
  shards: Array<{ source: string; target: string }>,
  outputStats: boolean,
): Promise<DatasetTransformResult> {
  const { mergeStats, shardStats, statsToJSON } = await stats();
  const { minMaxScale, zScore } = await import('../algorithms/index.js');
  const final = await loadStats(store, statsKey);
  const refs: ShardRef[] = [];
  let acc: PartialStats | undefined;
  await forEachShard(
    store,
    shards.map((s) => s.source),
    async (shard, _key, i) => {
      const out = op.type === 'minmax' ? minMaxScale(shard, final, op.lo, op.hi) : zScore(shard, final);
      const bytes = encodeShard(out);
      const target = shards[i]!.target;
      await store.put(target, bytes);
      const ref: ShardRef = { key: target, rows: out.rows, bytes: bytes.byteLength };
      if (out.kind === 'sparse') ref.nnz = out.indices.length;
      refs.push(ref);
      if (outputStats) {
        const s = shardStats(out);
        acc = acc ? mergeStats(acc, s) : s;
      }
    },
  );
  const result: DatasetTransformResult = { shards: refs };
  if (acc) result.stats = statsToJSON(acc);
  return result;
}
