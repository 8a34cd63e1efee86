/**
 * Distributed feature scaling of a stored dataset, in two fan-outs over any Launcher:
 *
 * 1. 'dataset-stats': one worker per group of training shards returns partial column statistics;
 *    the client merges them in rank order (Chan's formula) into the fitted statistics.
 * 2. 'dataset-transform': one worker per group of shards (train and test, both scaled with the
 *    training statistics) writes the scaled shards under a fresh run id and returns their refs,
 *    plus the statistics of the scaled training shards.
 *
 * The new manifest is written last, so the dataset becomes visible only when every shard is in
 * place. On any failure the run's objects are deleted, no manifest is written, and a typed error
 * names the failed rank and its error.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { DATASET_NAME, manifestKey, manifestSchema, shardKey, shardRef, type DatasetManifest, type ShardRef, type ObjectStore, type S3Spec } from '../../channels/index.js';
import { emptyStats, finalizeStats, mergeAll, statsFromJSON, type FinalStats, type PartialStats } from '../../algorithms/index.js';
import { CirrusError } from '../../paramserver/index.js';
import type { Launcher, WorkerError, WorkerEvent, WorkerHandle, WorkerResult, WorkerStatus } from '../launchers/types.js';

export type ScalingOp = { type: 'minmax'; lo: number; hi: number } | { type: 'zscore' };

export interface DistributedTransformOptions {
  store: ObjectStore;
  /** Manifest of the dataset to transform (as read from `store`). */
  source: DatasetManifest;
  /** Name of the new dataset. */
  target: string;
  op: ScalingOp;
  launcher: Launcher;
  /** Shards each worker reads (per phase). */
  shardsPerWorker: number;
  /** How workers open the store. Default: store.url. Pass an S3 spec when credentials must travel (e.g. s3rver). */
  storeEndpoint?: string | S3Spec;
  /** Default: 'transform-<run id>'. */
  jobId?: string;
  /** Latest end of the whole job (epoch ms), passed to the workers. Default: 24 h from now. */
  deadlineMs?: number;
  /** Replace an existing dataset named `target` (its old shards are deleted after the swap). Default false. */
  overwrite?: boolean;
}

export interface DistributedTransformResult {
  manifest: DatasetManifest;
  /** Statistics of the source's training split, which the transform was fitted on. */
  fitted: FinalStats;
  /** Object holding `fitted` as JSON (kept with the new dataset; its transform entry names it). */
  fittedKey: string;
  workers: { stats: number; transform: number };
}

export type PreprocessErrorCode = 'PREPROCESS_CONFIG' | 'PREPROCESS_TARGET_EXISTS' | 'PREPROCESS_RESULT' | 'PREPROCESS_WORKER_FAILED' | 'PREPROCESS_ABORTED';

export class PreprocessError extends CirrusError<PreprocessErrorCode> {}

/** A worker of the job failed; names its phase, rank, status and error. */
export class WorkerFailedError extends PreprocessError {
  declare readonly code: 'PREPROCESS_WORKER_FAILED';
  readonly phase: string;
  readonly rank: number;
  readonly status: WorkerStatus;
  readonly workerError: WorkerError | undefined;
  constructor(phase: string, rank: number, result: WorkerResult) {
    const e = result.error;
    super('PREPROCESS_WORKER_FAILED', `${phase} worker rank ${rank} failed (${result.status})${e ? `: ${e.code}: ${e.message}` : ''}`);
    this.phase = phase;
    this.rank = rank;
    this.status = result.status;
    this.workerError = e;
  }
}

const statsValue = z.object({ rows: z.number().int().nonnegative(), shards: z.number().int(), stats: z.unknown() });
const transformValue = z.object({ shards: z.array(shardRef), stats: z.unknown().optional() });

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Launches one worker per task and waits for all of them. On the first failure the others are
 * killed, and every worker is waited for (none may still write once the caller cleans up) before
 * the failure is thrown.
 */
export async function fanOut(launcher: Launcher, phase: string, events: WorkerEvent[]): Promise<unknown[]> {
  const handles: WorkerHandle[] = [];
  let failure: WorkerFailedError | undefined;
  const killAll = (reason: string): void => handles.forEach((h) => h.kill(reason));
  const watched: Array<Promise<WorkerResult>> = [];
  try {
    for (const [rank, event] of events.entries()) {
      if (failure) break;
      const h = await launcher.launch(event);
      handles.push(h);
      watched.push(
        h.result.then((r) => {
          if (r.status !== 'ok' && !failure) {
            failure = new WorkerFailedError(phase, rank, r);
            killAll(`${phase} rank ${rank} failed`);
          }
          return r;
        }),
      );
    }
  } catch (err) {
    killAll(`${phase}: launching failed`);
    await Promise.all(watched);
    throw new PreprocessError('PREPROCESS_WORKER_FAILED', `${phase}: could not launch worker rank ${handles.length}: ${(err as Error).message}`, { cause: err });
  }
  const results = await Promise.all(watched);
  if (failure) throw failure;
  return results.map((r) => r.value);
}

function parseValue<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new PreprocessError('PREPROCESS_RESULT', `${what}: ${issue.path.join('.') || '(result)'}: ${issue.message}`);
  }
  return r.data;
}

function checkOptions(o: DistributedTransformOptions): void {
  const bad = (m: string): never => {
    throw new PreprocessError('PREPROCESS_CONFIG', `distributedTransform: ${m}`);
  };
  if (!DATASET_NAME.test(o.target)) bad(`target: '${o.target}' is not a valid dataset name (letters, digits, '.', '_', '-'; at most 100)`);
  if (o.source.kind !== 'dense' && o.source.kind !== 'sparse') bad(`source '${o.source.name}' is a ${o.source.kind} dataset; only dense and sparse features can be scaled`);
  if (!Number.isInteger(o.shardsPerWorker) || o.shardsPerWorker < 1) bad(`shardsPerWorker: expected an integer >= 1, got ${o.shardsPerWorker}`);
  if (o.op.type === 'minmax') {
    if (!Number.isFinite(o.op.lo) || !Number.isFinite(o.op.hi) || !(o.op.lo < o.op.hi)) bad(`op: expected finite lo < hi, got lo=${o.op.lo}, hi=${o.op.hi}`);
    if (o.source.kind === 'sparse' && o.op.lo !== 0) bad(`op.lo: a sparse dataset can only be scaled into [0, hi] (lo=${o.op.lo} would fill every implicit zero)`);
  } else if (o.op.type !== 'zscore') {
    bad(`op.type: expected 'minmax' or 'zscore', got ${JSON.stringify((o.op as { type?: unknown }).type)}`);
  }
  const endpoint = o.storeEndpoint ?? o.store.url;
  if (endpoint === 'memory://') bad(`store ${o.store.url} lives in this process and cannot be shared with workers; use a file or S3 store`);
}

/** Runs the two fan-outs and publishes the new dataset; see the module comment. */
export async function distributedTransform(options: DistributedTransformOptions): Promise<DistributedTransformResult> {
  checkOptions(options);
  const { store, source, target, op, launcher, shardsPerWorker } = options;
  const kind = source.kind as 'dense' | 'sparse';
  const runId = `r${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
  const jobId = options.jobId ?? `transform-${runId}`;
  const endpoint = options.storeEndpoint ?? store.url;
  const deadlineMs = options.deadlineMs ?? Date.now() + 24 * 3600_000;

  const previous = await readManifest(store, target);
  if (previous !== 'absent' && !options.overwrite) {
    throw new PreprocessError('PREPROCESS_TARGET_EXISTS', `distributedTransform: dataset '${target}' already exists in ${store.url}; pass overwrite: true to replace it`);
  }

  const events = (tasks: WorkerEvent['task'][]): WorkerEvent[] =>
    tasks.map((task, rank) => ({ jobId, rank, world: tasks.length, attempt: 0, deadlineMs, task, params: {}, endpoints: { store: endpoint } }));

  // Phase 1: statistics of the training split.
  const statGroups = chunk(source.train.shards, shardsPerWorker);
  const statValues = await fanOut(launcher, 'dataset-stats', events(statGroups.map((g) => ({ type: 'dataset-stats', shards: g.map((r) => r.key) }))));
  const partials = statValues.map((v, rank) => {
    const what = `dataset-stats rank ${rank} result`;
    return checkPartial(statsFromJSON(parseValue(statsValue, v, what).stats, what), kind, source.features, statGroups[rank]!, what);
  });
  const fittedPartial = partials.length > 0 ? mergeAll(partials) : emptyStats(kind, source.features);
  if (fittedPartial.rows !== source.train.rows) {
    throw new PreprocessError('PREPROCESS_RESULT', `dataset-stats: the workers saw ${fittedPartial.rows} training rows but manifest '${source.name}' lists ${source.train.rows}`);
  }
  const fitted = finalizeStats(fittedPartial);

  // Phase 2: scale every shard with the fitted statistics. From here on, objects exist to clean up.
  const runPrefix = `datasets/${target}/${runId}/`;
  const fittedKey = `${runPrefix}fit-stats.json`;
  let result: DistributedTransformResult;
  try {
    await store.put(fittedKey, new TextEncoder().encode(JSON.stringify(fitted)));
    const plan = (split: 'train' | 'test') => source[split].shards.map((ref, index) => ({ ref, target: shardKey(target, runId, split, index) }));
    const trainGroups = chunk(plan('train'), shardsPerWorker);
    const testGroups = chunk(plan('test'), shardsPerWorker);
    const groups = [...trainGroups, ...testGroups];
    const values = await fanOut(
      launcher,
      'dataset-transform',
      events(
        groups.map((g, i) => ({
          type: 'dataset-transform',
          op,
          statsKey: fittedKey,
          shards: g.map((s) => ({ source: s.ref.key, target: s.target })),
          // Only the training split's statistics go into the manifest.
          outputStats: i < trainGroups.length,
        })),
      ),
    );
    const refs = new Map<string, ShardRef>();
    const outPartials: PartialStats[] = [];
    values.forEach((v, rank) => {
      const what = `dataset-transform rank ${rank} result`;
      const value = parseValue(transformValue, v, what);
      const group = groups[rank]!;
      if (value.shards.length !== group.length) throw new PreprocessError('PREPROCESS_RESULT', `${what}: ${value.shards.length} shard refs for ${group.length} shards`);
      group.forEach((item, i) => {
        const ref = value.shards[i]!;
        if (ref.key !== item.target || ref.rows !== item.ref.rows) {
          throw new PreprocessError('PREPROCESS_RESULT', `${what}: shard ${i} came back as '${ref.key}' with ${ref.rows} rows; expected '${item.target}' with ${item.ref.rows} rows`);
        }
        refs.set(ref.key, ref);
      });
      if (rank < trainGroups.length) {
        if (value.stats === undefined) throw new PreprocessError('PREPROCESS_RESULT', `${what}: the statistics of the written shards are missing`);
        outPartials.push(checkPartial(statsFromJSON(value.stats, what), kind, source.features, group.map((g) => g.ref), what));
      }
    });
    const newStats = finalizeStats(outPartials.length > 0 ? mergeAll(outPartials) : emptyStats(kind, source.features));
    const split = (name: 'train' | 'test') => ({ rows: source[name].rows, shards: plan(name).map((p) => refs.get(p.target)!) });
    const record: Record<string, unknown> = { ...op, fittedOn: source.name, fittedKey };
    // Dense statistics are small: the manifest carries them, so a model trained on it can apply them to raw rows.
    if (kind === 'dense') record.fitted = fitted;
    if (kind === 'sparse') record.sparse = op.type === 'minmax' ? 'max-abs scaling (zeros stay zero)' : 'divided by std without centering';
    const manifest = manifestSchema.parse({
      ...source,
      name: target,
      train: split('train'),
      test: split('test'),
      stats: newStats,
      transforms: [...source.transforms, record],
      createdAt: new Date().toISOString(),
    });
    // Last: the manifest makes the dataset visible.
    await store.put(manifestKey(target), new TextEncoder().encode(JSON.stringify(manifest)));
    result = { manifest, fitted, fittedKey, workers: { stats: statGroups.length, transform: groups.length } };
  } catch (err) {
    // Everything this run wrote lives under its run prefix (the manifest is only written on success).
    const written = await store.list(runPrefix).catch(() => [] as string[]);
    await store.delete([...new Set([...written, fittedKey])]).catch(() => undefined);
    throw err;
  }
  // Published: from here a failure must not touch the new run's objects.
  // An unreadable old manifest is replaced without cleanup: nothing says which shards were its own.
  if (typeof previous === 'object') await removeReplaced(store, previous, result.manifest);
  return result;
}

/** Checks a partial against the dataset it describes. */
function checkPartial(p: PartialStats, kind: 'dense' | 'sparse', features: number, refs: ShardRef[], what: string): PartialStats {
  if (p.kind !== kind || p.cols !== features) {
    throw new PreprocessError('PREPROCESS_RESULT', `${what}: statistics of ${p.kind} data with ${p.cols} columns, but the dataset is ${kind} with ${features} features`);
  }
  const rows = refs.reduce((s, r) => s + r.rows, 0);
  if (p.rows !== rows) throw new PreprocessError('PREPROCESS_RESULT', `${what}: statistics over ${p.rows} rows, but its shards hold ${rows}`);
  return p;
}

/** 'absent', or the existing manifest ('unreadable' when it does not parse: still a dataset in the way). */
async function readManifest(store: ObjectStore, name: string): Promise<DatasetManifest | 'absent' | 'unreadable'> {
  const bytes = await store.get(manifestKey(name));
  if (bytes === undefined) return 'absent';
  try {
    return manifestSchema.parse(JSON.parse(new TextDecoder().decode(bytes)));
  } catch {
    return 'unreadable';
  }
}

/** After a swap: deletes what the replaced manifest referenced and the new one does not. */
async function removeReplaced(store: ObjectStore, old: DatasetManifest, now: DatasetManifest): Promise<void> {
  const keep = new Set([...now.train.shards, ...now.test.shards].map((r) => r.key));
  const stale = [...old.train.shards, ...old.test.shards].map((r) => r.key).filter((k) => !keep.has(k));
  const last = old.transforms[old.transforms.length - 1];
  const oldFitted = typeof last?.fittedKey === 'string' && last.fittedKey.startsWith(`datasets/${old.name}/`) ? [last.fittedKey] : [];
  // The old shards of the SOURCE must survive when the target is a different dataset: only delete
  // keys under the replaced dataset's own prefix.
  const own = [...stale, ...oldFitted].filter((k) => k.startsWith(`datasets/${old.name}/`));
  await store.delete(own);
}
