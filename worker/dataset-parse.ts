/**
 * The 'dataset-parse' task: a worker downloads its raw chunks, parses and hashes each with the same
 * pipeline the local loader uses, and uploads the shards; the client merges the results and
 * writes the manifest (client/preprocess/distributed.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type DatasetManifest, type ShardRef, encodeShard, type Shard, type DatasetWriter, type ManifestFields, type ObjectStore, type Split } from '../channels/index.js';
import { chunkSeed, chunkShardKey, InputError, parseNumber, preprocessLocal, type ChunkParseResult, type DatasetParseResult, type InputErrorCode } from '../algorithms/index.js';
import { CirrusError } from '../paramserver/index.js';
import type { DatasetParseTask } from './event.js';

/** The input's own parse errors (for the input file's line), or a raw chunk that is not in the store. */
export type ChunkParseErrorCode = InputErrorCode | 'CHUNK_MISSING';

export class ChunkParseError extends CirrusError<ChunkParseErrorCode> {
  readonly chunk: number;
  /** 1-based line of the input file, when the error has one. */
  readonly line: number | undefined;
  constructor(code: ChunkParseErrorCode, chunk: number, line: number | undefined, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.chunk = chunk;
    this.line = line;
  }
}

/** Collects one chunk's shards under chunk-named keys; commit() publishes nothing and returns what it was given. */
class ChunkWriter implements DatasetWriter {
  readonly refs: Record<Split, ShardRef[]> = { train: [], test: [] };
  fields: ManifestFields | undefined;
  private readonly attempted: string[] = [];

  constructor(
    private readonly store: ObjectStore,
    readonly name: string,
    readonly runId: string,
    private readonly chunk: number,
  ) {}

  async addShard(split: Split, shard: Shard): Promise<ShardRef> {
    const key = chunkShardKey(this.name, this.runId, split, this.chunk, this.refs[split].length);
    const bytes = encodeShard(shard);
    const ref: ShardRef = { key, rows: shard.rows, bytes: bytes.byteLength };
    if (shard.kind === 'sparse') ref.nnz = shard.indices.length;
    this.refs[split].push(ref);
    this.attempted.push(key);
    // Awaited: one shard uploading at a time keeps the worker's memory bounded.
    await this.store.put(key, bytes);
    return { ...ref };
  }

  async commit(fields: ManifestFields): Promise<DatasetManifest> {
    this.fields = fields;
    const rows = (s: Split) => this.refs[s].reduce((a, r) => a + r.rows, 0);
    return {
      ...fields,
      formatVersion: 1,
      name: this.name,
      train: { rows: rows('train'), shards: this.refs.train },
      test: { rows: rows('test'), shards: this.refs.test },
      trainRows: rows('train'),
      testRows: rows('test'),
      createdAt: new Date().toISOString(),
    };
  }

  async abort(): Promise<void> {
    await this.store.delete(this.attempted);
  }
}

/** Rewrites an InputError about the temp file into one about the input file's line. */
function translate(err: unknown, task: DatasetParseTask, chunk: DatasetParseTask['chunks'][number], tmpFile: string): unknown {
  if (!(err instanceof InputError) || err.file !== tmpFile) return err;
  const headerLines = task.header !== undefined ? 1 : 0;
  const prefix = err.line !== undefined ? `${tmpFile}:${err.line}` : tmpFile;
  const rest = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : `: ${err.message}`;
  if (err.line === undefined) return new ChunkParseError(err.code, chunk.index, undefined, `${task.source} (chunk ${chunk.index})${rest}`, { cause: err });
  if (err.line <= headerLines) return new ChunkParseError(err.code, chunk.index, 1, `${task.source}:1 (header)${rest}`, { cause: err });
  const inChunk = err.line - headerLines;
  const line = chunk.firstLine + inChunk - 1;
  return new ChunkParseError(err.code, chunk.index, line, `${task.source}:${line} (chunk ${chunk.index}, line ${inChunk})${rest}`, { cause: err });
}

/** The 'dataset-parse' task: each chunk through the local pipeline, in order. */
export async function runDatasetParse(store: ObjectStore, task: DatasetParseTask): Promise<DatasetParseResult> {
  const dir = await mkdtemp(join(tmpdir(), 'cirrus-parse-'));
  const out: ChunkParseResult[] = [];
  try {
    for (const chunk of task.chunks) {
      const gz = await store.get(chunk.key);
      if (gz === undefined) throw new ChunkParseError('CHUNK_MISSING', chunk.index, undefined, `raw chunk '${chunk.key}' does not exist in ${store.url}`);
      const body = gunzipSync(gz);
      if (task.format === 'csv' && task.header === undefined) {
        // Without a header in the file, a chunk's first line must not be mistaken for one (CsvParser detects headers on line 1).
        const firstEnd = body.indexOf(10);
        const first = body.subarray(0, firstEnd < 0 ? body.length : firstEnd).toString('utf8').replace(/\r$/, '');
        const cell = first.split(',').find((c) => Number.isNaN(parseNumber(c)));
        if (cell !== undefined) {
          throw new ChunkParseError('INPUT_PARSE', chunk.index, chunk.firstLine, `${task.source}:${chunk.firstLine} (chunk ${chunk.index}, line 1): expected numbers (the file has no header), found '${cell.slice(0, 40)}'`);
        }
      }
      const tmpFile = join(dir, `chunk-${String(chunk.index).padStart(5, '0')}.${task.format === 'csv' ? 'csv' : 'txt'}`);
      await writeFile(tmpFile, task.header !== undefined ? Buffer.concat([Buffer.from(task.header + '\n'), body]) : body);
      const writer = new ChunkWriter(store, task.name, task.runId, chunk.index);
      try {
        const r = await preprocessLocal({
          input: tmpFile,
          format: task.format,
          name: task.name,
          writer,
          split: task.split,
          seed: chunkSeed(task.seed, chunk.index),
          ...(task.hash ? { hash: task.hash } : {}),
          ...(task.labelColumn !== undefined ? { labelColumn: task.labelColumn } : {}),
          ...(task.task ? { task: task.task } : {}),
          ...(task.classes !== undefined ? { classes: task.classes } : {}),
          ...(task.features !== undefined ? { features: task.features } : {}),
          ...(task.zeroBased !== undefined ? { zeroBased: task.zeroBased } : {}),
          ...(task.rowsPerShard !== undefined ? { rowsPerShard: task.rowsPerShard } : {}),
        });
        const f = writer.fields!;
        out.push({
          index: chunk.index,
          empty: false,
          train: writer.refs.train,
          test: writer.refs.test,
          trainRows: r.trainRows,
          testRows: r.testRows,
          kind: f.kind,
          task: f.task,
          features: f.features,
          classes: f.classes,
          rowsPerShard: f.rowsPerShard,
          transforms: f.transforms,
          ...(f.featureNames ? { featureNames: f.featureNames } : {}),
        });
      } catch (err) {
        // A chunk of blank lines only holds no rows; the client decides whether the whole input is empty.
        if (err instanceof InputError && err.code === 'INPUT_EMPTY') {
          out.push({ index: chunk.index, empty: true, train: [], test: [], trainRows: 0, testRows: 0 });
          continue;
        }
        throw translate(err, task, chunk, tmpFile);
      } finally {
        await rm(tmpFile, { force: true });
      }
    }
    return { chunks: out };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
