/**
 * Distributed preprocessing (parse + feature hashing + sharding) as a fan-out of workers:
 *
 * 1. The client streams the local input into line-aligned raw chunks of `chunkLines` lines, each
 *    gzipped and uploaded to datasets/<name>/<runId>/raw/<index>.gz (one chunk in memory at a time).
 *    A CSV header is kept out of the chunks and travels in every task instead.
 * 2. One 'dataset-parse' worker per group of chunks runs the local pipeline (preprocessLocal) on each
 *    chunk with a capturing writer: shards go to datasets/<name>/<runId>/<split>/<chunk>-<n>.shard,
 *    no manifest is written, and the refs come back in the result.
 * 3. The client merges the refs in chunk order, checks that the chunks agree, publishes the manifest
 *    LAST and deletes the raw chunks. On any failure everything under the run is deleted.
 *
 * Split and shuffle are seeded per chunk from (seed, chunk index), so a run is deterministic for a
 * given chunkLines; the rows are the same as the local path's, their train/test assignment is not.
 */
import { gzipSync } from 'node:zlib';
import { datasetPrefix, manifestKey, type DatasetManifest, type DatasetTask, newRunId, type DatasetStore, type ManifestFields, type ObjectStore, type S3Spec } from '../../channels/index.js';
import type { DatasetParseTask, WorkerEvent } from '../../worker/event.js';
import { parseResultSchema, rawChunkKey, InputError, parseNumber, readLines, DEFAULT_SPLIT, type ChunkParseResult, type HashOptions } from '../../algorithms/index.js';
import type { Launcher } from '../launchers/types.js';
import { fanOut, PreprocessError } from './transform.js';

export type DistributedFormat = 'csv' | 'criteo' | 'libsvm';
export const DISTRIBUTED_FORMATS: readonly DistributedFormat[] = ['csv', 'criteo', 'libsvm'];
const DEFAULT_CHUNK_LINES = 50_000;

interface PreprocessDistributedOptions {
  input: string;
  format: DistributedFormat;
  name: string;
  store: DatasetStore;
  launcher: Launcher;
  /** How workers open the store. Default: store.url (pass an S3 spec when credentials must travel). */
  storeEndpoint?: string | S3Spec;
  /** Lines per raw chunk, default 50,000. */
  chunkLines?: number;
  /** Chunks per worker (default 1); ignored when `workers` is given. */
  chunksPerWorker?: number;
  /** Spread the chunks over at most this many workers (contiguous groups). */
  workers?: number;
  hash?: HashOptions;
  labelColumn?: string | number;
  task?: DatasetTask;
  classes?: number;
  /** libsvm feature space; default: scanned from the input by the client (max index + 1). */
  features?: number;
  zeroBased?: boolean;
  split?: number;
  seed?: number;
  rowsPerShard?: number;
  overwrite?: boolean;
  jobId?: string;
  /** Latest end of the job (epoch ms). Default: 24 h from now. */
  deadlineMs?: number;
  onProgress?(bytesRead: number, totalBytes: number): void;
}

interface PreprocessDistributedResult {
  manifest: DatasetManifest;
  chunks: number;
  workers: number;
}

/** What a 'dataset-parse' worker returns for one chunk. */
// ---------------------------------------------------------------------------------------------
// Client

function checkOptions(o: PreprocessDistributedOptions): void {
  const bad = (m: string): never => {
    throw new PreprocessError('PREPROCESS_CONFIG', `preprocessDistributed: ${m}`);
  };
  if (!DISTRIBUTED_FORMATS.includes(o.format)) bad(`format: expected one of ${DISTRIBUTED_FORMATS.join(', ')}, found ${JSON.stringify(o.format)}`);
  const positive = (v: number | undefined, what: string) => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) bad(`${what}: expected an integer >= 1, got ${v}`);
  };
  positive(o.chunkLines, 'chunkLines');
  positive(o.chunksPerWorker, 'chunksPerWorker');
  positive(o.workers, 'workers');
  if (o.hash && o.format === 'libsvm') bad('hash: feature hashing applies to csv and criteo inputs, not libsvm');
  if ((o.storeEndpoint ?? o.store.url) === 'memory://') bad(`store ${o.store.url} lives in this process and cannot be shared with workers; use a file or S3 store`);
}


/** Max feature index of a libsvm line (-1 when none); malformed tokens are left to the worker's parser. */
function libsvmMaxIndex(line: string): number {
  let max = -1;
  const re = /\s(\d+):/g;
  for (let m = re.exec(line); m; m = re.exec(line)) max = Math.max(max, Number(m[1]));
  return max;
}

interface Chunked {
  chunks: Array<{ key: string; index: number; firstLine: number }>;
  header?: string;
  /** libsvm: largest feature index seen. */
  maxIndex: number;
  bytes: number;
}

/** Streams the input into gzipped raw chunks; only the current chunk is held in memory. */
async function uploadChunks(o: PreprocessDistributedOptions, store: ObjectStore, runId: string, chunkLines: number): Promise<Chunked> {
  const out: Chunked = { chunks: [], maxIndex: -1, bytes: 0 };
  let lines: string[] = [];
  let firstLine = 1;
  const flush = async (): Promise<void> => {
    if (lines.length === 0) return;
    const index = out.chunks.length;
    const key = rawChunkKey(o.name, runId, index);
    await store.put(key, gzipSync(lines.join('\n') + '\n'));
    out.chunks.push({ key, index, firstLine });
    lines = [];
  };
  for await (const l of readLines(o.input)) {
    out.bytes = l.bytesRead;
    if (l.number === 1 && o.format === 'csv' && l.line.split(',').some((c) => Number.isNaN(parseNumber(c)))) {
      // The same rule as CsvParser's header detection: any non-numeric cell on line 1.
      out.header = l.line;
      firstLine = 2;
      continue;
    }
    if (lines.length === 0) firstLine = l.number;
    if (o.format === 'libsvm' && o.features === undefined) out.maxIndex = Math.max(out.maxIndex, libsvmMaxIndex(l.line));
    lines.push(l.line);
    if (lines.length >= chunkLines) {
      await flush();
      o.onProgress?.(l.bytesRead, Math.max(l.bytesRead, 1));
    }
  }
  await flush();
  return out;
}

/** Loads a local file into a dataset through a fan-out of parse workers; see the module comment. */
export async function preprocessDistributed(o: PreprocessDistributedOptions): Promise<PreprocessDistributedResult> {
  checkOptions(o);
  const { store, launcher } = o;
  const objects = store.store;
  const chunkLines = o.chunkLines ?? DEFAULT_CHUNK_LINES;
  if (!o.overwrite && (await objects.get(manifestKey(o.name))) !== undefined) {
    throw new PreprocessError('PREPROCESS_TARGET_EXISTS', `preprocessDistributed: dataset '${o.name}' already exists in ${store.url}; pass overwrite: true to replace it`);
  }
  const runId = newRunId();
  const runPrefix = `${datasetPrefix(o.name)}${runId}/`;
  const jobId = o.jobId ?? `parse-${runId.replace(/[^A-Za-z0-9]/g, '').slice(0, 40)}`;
  const endpoint = o.storeEndpoint ?? store.url;
  const deadlineMs = o.deadlineMs ?? Date.now() + 24 * 3600_000;
  const seed = o.seed ?? 0;
  const split = o.split ?? DEFAULT_SPLIT;
  try {
    const chunked = await uploadChunks(o, objects, runId, chunkLines);
    if (chunked.chunks.length === 0) {
      throw new InputError('INPUT_EMPTY', o.input, `expected at least one data row, found none${o.format === 'csv' ? ' (a header alone carries no data)' : ''}`);
    }
    let features = o.features;
    if (o.format === 'libsvm' && features === undefined && chunked.maxIndex >= 0) features = o.zeroBased ? chunked.maxIndex + 1 : Math.max(1, chunked.maxIndex);
    const per = o.workers !== undefined ? Math.ceil(chunked.chunks.length / o.workers) : (o.chunksPerWorker ?? 1);
    const groups: Chunked['chunks'][] = [];
    for (let i = 0; i < chunked.chunks.length; i += per) groups.push(chunked.chunks.slice(i, i + per));
    const task = (chunks: Chunked['chunks']): DatasetParseTask => ({
      type: 'dataset-parse',
      format: o.format,
      name: o.name,
      runId,
      source: o.input,
      chunks,
      split,
      seed,
      ...(chunked.header !== undefined ? { header: chunked.header } : {}),
      ...(o.hash ? { hash: o.hash } : {}),
      ...(o.labelColumn !== undefined ? { labelColumn: o.labelColumn } : {}),
      ...(o.task ? { task: o.task } : {}),
      ...(o.classes !== undefined ? { classes: o.classes } : {}),
      ...(features !== undefined ? { features } : {}),
      ...(o.zeroBased !== undefined ? { zeroBased: o.zeroBased } : {}),
      ...(o.rowsPerShard !== undefined ? { rowsPerShard: o.rowsPerShard } : {}),
    });
    const events: WorkerEvent[] = groups.map((g, rank) => ({ jobId, rank, world: groups.length, attempt: 0, deadlineMs, task: task(g), params: {}, endpoints: { store: endpoint } }));
    const values = await fanOut(launcher, 'dataset-parse', events);
    const results: ChunkParseResult[] = [];
    values.forEach((v, rank) => {
      const r = parseResultSchema.safeParse(v);
      const what = `dataset-parse rank ${rank} result`;
      if (!r.success) throw new PreprocessError('PREPROCESS_RESULT', `${what}: ${r.error.issues[0]!.path.join('.') || '(result)'}: ${r.error.issues[0]!.message}`);
      const want = groups[rank]!.map((c) => c.index);
      const got = r.data.chunks.map((c) => c.index);
      if (want.join() !== got.join()) throw new PreprocessError('PREPROCESS_RESULT', `${what}: chunks [${got.join(', ')}], expected [${want.join(', ')}]`);
      results.push(...(r.data.chunks as ChunkParseResult[]));
    });
    const manifest = mergeChunks(o, results, { seed, split, chunkLines, bytes: chunked.bytes });
    // Last: the manifest makes the dataset visible.
    const published = await store.publishManifest(manifest, { overwrite: o.overwrite ?? false });
    await objects.delete(chunked.chunks.map((c) => c.key)).catch(() => undefined);
    return { manifest: published, chunks: chunked.chunks.length, workers: groups.length };
  } catch (err) {
    // Everything this run wrote (raw chunks, shards) lives under its run prefix; no manifest was written.
    const written = await objects.list(runPrefix).catch(() => [] as string[]);
    await objects.delete(written).catch(() => undefined);
    throw err;
  }
}

/** Merges chunk results in chunk order into the manifest; the chunks must agree on what the data is. */
function mergeChunks(o: PreprocessDistributedOptions, results: ChunkParseResult[], info: { seed: number; split: number; chunkLines: number; bytes: number }): DatasetManifest {
  const full = results.filter((r) => !r.empty);
  if (full.length === 0) throw new InputError('INPUT_EMPTY', o.input, 'expected at least one data row, found none');
  const first = full[0]!;
  const disagree = (r: ChunkParseResult, field: string, a: unknown, b: unknown): never => {
    throw new PreprocessError('PREPROCESS_RESULT', `dataset-parse: chunk ${r.index} has ${field} ${JSON.stringify(b)}, but chunk ${first.index} has ${JSON.stringify(a)}`);
  };
  let task = first.task!;
  let classes = first.classes ?? 0;
  const labelMap = full.find((r) => r.transforms?.some((t) => t.type === 'label-map'));
  for (const r of full) {
    if (r.kind !== first.kind) disagree(r, 'kind', first.kind, r.kind);
    if (r.features !== first.features) disagree(r, 'features', first.features, r.features);
    if (r.rowsPerShard !== first.rowsPerShard) disagree(r, 'rowsPerShard', first.rowsPerShard, r.rowsPerShard);
    if (JSON.stringify(r.featureNames) !== JSON.stringify(first.featureNames)) disagree(r, 'featureNames', first.featureNames, r.featureNames);
    if (r.task !== task) {
      // An inferred CSV task: 0/1 labels in one chunk are valid regression targets in another's view.
      const pair = new Set([r.task, task]);
      if (pair.has('binary') && pair.has('regression')) task = 'regression';
      else disagree(r, 'task', task, r.task);
    }
    classes = Math.max(classes, r.classes ?? 0);
  }
  if (task === 'regression') classes = 0;
  const transforms: Array<Record<string, unknown>> = (first.transforms ?? [])
    .filter((t) => t.type !== 'label-map')
    .map((t) => (t.type === 'split' || t.type === 'shuffle' ? { ...t, seed: info.seed, perChunk: 'seed derived from (seed, chunk index)' } : t));
  if (labelMap) transforms.push(labelMap.transforms!.find((t) => t.type === 'label-map')!);
  transforms.unshift({ type: 'distributed-parse', chunks: results.length, chunkLines: info.chunkLines });
  const train = full.flatMap((r) => r.train);
  const test = full.flatMap((r) => r.test);
  const trainRows = train.reduce((s, r) => s + r.rows, 0);
  const testRows = test.reduce((s, r) => s + r.rows, 0);
  const fields: ManifestFields = {
    kind: first.kind!,
    task,
    features: first.features!,
    classes,
    rowsPerShard: first.rowsPerShard!,
    stats: null,
    source: { file: o.input, format: o.format, bytes: info.bytes },
    transforms,
    ...(first.featureNames ? { featureNames: first.featureNames } : {}),
  };
  return { ...fields, formatVersion: 1, name: o.name, train: { rows: trainRows, shards: train }, test: { rows: testRows, shards: test }, trainRows, testRows, createdAt: new Date().toISOString() };
}
