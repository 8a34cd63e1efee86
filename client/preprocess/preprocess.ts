/**
 * `cirrus.preprocess(...)`: load a local file into a sharded dataset in the object store, then
 * optionally normalize it with a fan-out of workers (statistics reduced first, then applied).
 * The dataset becomes visible only when complete; a failed run leaves no manifest behind.
 */
import type { DatasetManifest, DatasetTask } from '../../channels/index.js';
import { LocalLauncher } from '../launchers/local.js';
import type { Launcher } from '../launchers/types.js';
import { openStore, type StoreHandle } from '../store.js';
import { preprocessLocal, DEFAULT_SPLIT, type HashOptions, type PreprocessFormat, type PreprocessLocalOptions } from '../../algorithms/index.js';
import { distributedTransform, PreprocessError, type ScalingOp } from './transform.js';
import { DISTRIBUTED_FORMATS, preprocessDistributed, type DistributedFormat } from './distributed.js';
import { planLabels, scanLabels } from './labels.js';
import { chooseRowsPerShard, stratifiedSplit } from './stratify.js';

export interface PreprocessOptions {
  input: string;
  format: PreprocessFormat;
  name: string;
  /** Object store URL; default: the embedded S3 server under .cirrus/. */
  store?: string;
  normalize?: 'minmax' | 'zscore';
  /** Target range of min-max scaling, default [0, 1]. */
  range?: [number, number];
  hash?: HashOptions;
  split?: number;
  rowsPerShard?: number;
  seed?: number;
  task?: DatasetTask;
  classes?: number;
  labelColumn?: string | number;
  overwrite?: boolean;
  /** Shards per transform worker (default 2). */
  shardsPerWorker?: number;
  /** Parse csv/criteo/libsvm with a fan-out of this many workers (chunks of the file) instead of locally. */
  workers?: number;
  /** Launcher for the fan-outs (default: local child processes). */
  launcher?: Launcher;
  onProgress?(bytesRead: number, totalBytes: number): void;
  /** csv: a test file of the same columns, transformed with the train file's statistics (never fitted on). */
  testFile?: string;
  /** What was inferred or chosen (task and labels, rows per shard) and warnings, one line each. */
  onNote?(note: string): void;
  /** Reports each stage ('load', 'stats', 'transform') as it starts. */
  onStage?(stage: string): void;
  /** Aborting stops the run at the next chunk of input or stage boundary; nothing is published. */
  signal?: AbortSignal;
}

/** Leftovers of killed runs (their shards, intermediate datasets) older than this are swept. */
const STALE_MS = 10 * 60_000;

export async function preprocess(opts: PreprocessOptions): Promise<DatasetManifest> {
  const handle = await openStore(opts.store);
  const distributed = (opts.workers ?? 0) > 0 && (DISTRIBUTED_FORMATS as readonly string[]).includes(opts.format);
  const ownLauncher = (opts.normalize || distributed) && !opts.launcher ? new LocalLauncher() : undefined;
  const checkAbort = (): void => {
    if (opts.signal?.aborted) throw new PreprocessError('PREPROCESS_ABORTED', `preprocessing '${opts.name}' was interrupted; nothing was published and its partial shards were removed`);
  };
  const onProgress = (read: number, total: number): void => {
    checkAbort();
    opts.onProgress?.(read, total);
  };
  try {
    await sweepStale(handle, opts.name);
    // With normalization the loaded data is an intermediate dataset, removed once transformed.
    const loadName = opts.normalize ? `${opts.name}.load-${Date.now().toString(36)}` : opts.name;
    opts.onStage?.('load');
    // Options the local and the distributed loaders take alike.
    const shared = {
      ...(opts.task ? { task: opts.task } : {}),
      ...(opts.classes !== undefined ? { classes: opts.classes } : {}),
      ...(opts.labelColumn !== undefined ? { labelColumn: opts.labelColumn } : {}),
      ...(opts.hash ? { hash: opts.hash } : {}),
      ...(opts.split !== undefined ? { split: opts.split } : {}),
      ...(opts.rowsPerShard ? { rowsPerShard: opts.rowsPerShard } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
      onProgress,
    };
    // CSV read locally: one pass over the labels first decides the task, the class names, the
    // stratified split and the rows per shard.
    const csv = opts.format === 'csv' && !distributed ? await planCsv(opts) : {};
    if (distributed && opts.testFile !== undefined) throw new PreprocessError('PREPROCESS_CONFIG', '--test-file is read locally; leave out --workers to use it');
    const loaded = distributed ? await preprocessDistributed({
      input: opts.input,
      format: opts.format as DistributedFormat,
      name: loadName,
      store: handle.datasets,
      launcher: opts.launcher ?? ownLauncher!,
      storeEndpoint: handle.workerTarget,
      workers: opts.workers!,
      overwrite: opts.overwrite ?? false,
      ...shared,
    }) : await preprocessLocal({
      writer: await handle.datasets.createWriter(loadName, { overwrite: opts.overwrite ?? false }),
      input: opts.input,
      format: opts.format,
      name: loadName,
      ...shared,
      ...csv,
      ...(opts.testFile !== undefined ? { testFile: opts.testFile } : {}),
    });
    if (loaded.manifest.testRows === 0) {
      opts.onNote?.(`warning: '${opts.name}' has no test rows, so runs report no test accuracy and cannot stop at a target accuracy or loss (use --split below 1 or --test-file)`);
    }
    if (!opts.normalize) return loaded.manifest;
    try {
      checkAbort();
      opts.onStage?.('normalize');
      const op: ScalingOp = opts.normalize === 'minmax' ? { type: 'minmax', lo: opts.range?.[0] ?? 0, hi: opts.range?.[1] ?? 1 } : { type: 'zscore' };
      const result = await distributedTransform({
        store: handle.datasets.store,
        source: loaded.manifest,
        target: opts.name,
        op,
        launcher: opts.launcher ?? ownLauncher!,
        shardsPerWorker: opts.shardsPerWorker ?? 2,
        storeEndpoint: handle.workerTarget,
        overwrite: opts.overwrite ?? false,
      });
      return result.manifest;
    } finally {
      await handle.datasets.remove(loadName).catch(() => undefined);
    }
  } finally {
    await ownLauncher?.close();
    await handle.close();
  }
}

/** Label scan of a CSV: task, class names, stratified split, rows per shard (each said via onNote). */
async function planCsv(opts: PreprocessOptions): Promise<Partial<PreprocessLocalOptions>> {
  const scan = await scanLabels(opts.input, {
    ...(opts.labelColumn !== undefined ? { labelColumn: opts.labelColumn } : {}),
    ...(opts.hash ? { categorical: opts.hash.columns } : {}),
  });
  const plan = planLabels(scan, { ...(opts.task ? { task: opts.task } : {}), ...(opts.classes !== undefined ? { classes: opts.classes } : {}) });
  opts.onNote?.(plan.reason);
  const out: Partial<PreprocessLocalOptions> = { task: plan.task, ...(plan.task !== 'regression' ? { classes: plan.classes } : {}) };
  if (plan.labelNames) Object.assign(out, { labelNames: plan.labelNames, labelOf: plan.labelOf, labelExpected: plan.labelExpected });
  const train = opts.split ?? DEFAULT_SPLIT;
  if (plan.task !== 'regression' && opts.testFile === undefined && train < 1) {
    out.splitOf = stratifiedSplit(plan.classCounts, train, opts.seed ?? 0);
    opts.onNote?.(`split: stratified by class, ${Math.round(train * 100)}% train`);
  }
  if (!opts.rowsPerShard) {
    const trainRows = opts.testFile !== undefined ? scan.rows : Math.round(scan.rows * train);
    const chosen = chooseRowsPerShard(trainRows);
    out.rowsPerShard = chosen.rowsPerShard;
    opts.onNote?.(chosen.reason);
  }
  return out;
}

/**
 * A run killed outright (SIGKILL, a crashed machine) cannot clean up after itself: the next run of
 * the same name removes its unlisted shards and its intermediate datasets, once they are old
 * enough not to belong to a run still going on in another process.
 */
async function sweepStale(handle: StoreHandle, name: string): Promise<void> {
  await handle.datasets.cleanupOrphans(name, { minAgeMs: STALE_MS }).catch(() => []);
  const prefix = `${name}.load-`;
  for (const m of await handle.datasets.list().catch(() => [])) {
    if (m.name.startsWith(prefix) && Date.now() - Date.parse(m.createdAt) >= STALE_MS) await handle.datasets.remove(m.name).catch(() => undefined);
  }
}
