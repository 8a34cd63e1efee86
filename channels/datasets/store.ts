/**
 * Datasets in an object store:
 *
 *   datasets/<name>/manifest.json                    what the dataset is; written last
 *   datasets/<name>/<runId>/<split>/<index>.shard    shards of one preprocessing run
 *
 * A dataset is visible exactly when its manifest exists, and a manifest only ever lists shards
 * whose put() had resolved before the manifest was written. Rewriting a dataset uploads a new
 * run next to the old one, swaps the manifest, then deletes the old run, so readers never see a
 * mix. Concurrent writers of one dataset are not coordinated (object stores have no
 * compare-and-swap here): the last commit wins, and a commit whose own shards were removed by
 * another writer's cleanup fails instead of publishing them.
 */
import { openObjectStore, type S3ObjectStoreOptions, type S3SpecInput } from '../object-stores/index.js';
import type { S3Spec } from '../spec.js';
import { DatasetError } from './errors.js';
import {
  DATASET_NAME,
  datasetPrefix,
  manifestKey,
  manifestSchema,
  type DatasetManifest,
  type ShardRef,
} from './manifest.js';
import { decodeShard, ShardFormatError, type Shard } from './shard.js';
import { newRunId, runOf, runTime } from './runs.js';
import type { DatasetWriter, ObjectStore, Split } from './types.js';
import { StoreWriter, issuePath } from './writer.js';

export { newRunId } from './runs.js';

export interface CreateWriterOptions {
  /** Replace an existing dataset of the same name (at commit). Default false. */
  overwrite?: boolean;
  /** Shard uploads in flight; addShard() waits for a free slot. Default 4. */
  concurrency?: number;
  /** Non-fatal problems after a successful commit (old shards that could not be deleted). Default: process.emitWarning. */
  onWarning?: (message: string) => void;
}

export interface CleanupOptions {
  /** Keep runs younger than this (they may belong to a writer still uploading). Default 0: remove all unlisted keys. */
  minAgeMs?: number;
}

/** Attempts to read a manifest that is not (yet) valid JSON: s3rver may show a PUT in progress. */
const MANIFEST_READ_ATTEMPTS = 5;
const MANIFEST_RETRY_MS = 50;
/** Parallel manifest reads in list(). */
const LIST_CONCURRENCY = 8;

const NAME_RULE = "1-100 characters of letters, digits, '.', '_' or '-', starting with a letter or digit";

export function assertDatasetName(name: string): string {
  if (typeof name !== 'string' || !DATASET_NAME.test(name)) {
    throw new DatasetError('DATASET_NAME', `dataset name '${String(name).slice(0, 120)}' is invalid: expected ${NAME_RULE}`);
  }
  return name;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class DatasetStore {
  /** Run ids of writers of this instance that are still uploading; cleanup leaves them alone. */
  private readonly activeRuns = new Set<string>();

  constructor(readonly store: ObjectStore) {}

  /** Opens the object store (see openObjectStore) and a DatasetStore over it. */
  static async open(target: string | S3SpecInput | S3Spec, options?: S3ObjectStoreOptions): Promise<DatasetStore> {
    return new DatasetStore(await openObjectStore(target, options));
  }

  get url(): string {
    return this.store.url;
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  async createWriter(name: string, opts: CreateWriterOptions = {}): Promise<DatasetWriter> {
    assertDatasetName(name);
    const concurrency = opts.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new DatasetError('DATASET_ARGUMENT', `dataset '${name}': concurrency must be an integer >= 1, got ${concurrency}`);
    }
    const overwrite = opts.overwrite ?? false;
    if (!overwrite && (await this.store.get(manifestKey(name))) !== undefined) throw this.existsError(name);
    const writer = new StoreWriter(this, name, newRunId(), overwrite, concurrency, opts.onWarning ?? ((m) => process.emitWarning(m, 'DatasetWarning')));
    this.activeRuns.add(writer.runId);
    return writer;
  }

  /** Reads and validates a dataset's manifest. */
  async manifest(name: string): Promise<DatasetManifest> {
    assertDatasetName(name);
    const key = manifestKey(name);
    let json: unknown;
    for (let attempt = 1; ; attempt++) {
      const bytes = await this.store.get(key);
      if (bytes === undefined) throw this.notFound(name);
      try {
        json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
        break;
      } catch (err) {
        if (attempt < MANIFEST_READ_ATTEMPTS) {
          await sleep(MANIFEST_RETRY_MS * attempt);
          continue;
        }
        throw new DatasetError('DATASET_MANIFEST', `manifest '${key}' in ${this.url} is not valid JSON (${bytes.byteLength} bytes, ${attempt} reads): ${(err as Error).message}`, { cause: err });
      }
    }
    return this.validate(name, json);
  }

  /** Schema plus the cross-field rules the schema cannot express. */
  private validate(name: string, json: unknown): DatasetManifest {
    const key = manifestKey(name);
    const bad = (field: string, why: string): never => {
      throw new DatasetError('DATASET_MANIFEST', `manifest '${key}' in ${this.url} is invalid: field '${field}': ${why}`);
    };
    const r = manifestSchema.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      bad(issuePath(issue.path), issue.message);
    }
    const m = r.data!;
    if (m.name !== name) bad('name', `is '${m.name}', but the manifest is stored under dataset '${name}'`);
    for (const split of ['train', 'test'] as const) {
      const info = m[split];
      const total = info.shards.reduce((s, ref) => s + ref.rows, 0);
      if (info.rows !== total) bad(`${split}.rows`, `is ${info.rows}, but its shards hold ${total} rows`);
      const declared = split === 'train' ? m.trainRows : m.testRows;
      if (declared !== total) bad(`${split}Rows`, `is ${declared}, but the ${split} shards hold ${total} rows`);
      info.shards.forEach((ref, i) => {
        if (!ref.key.startsWith(datasetPrefix(name))) bad(`${split}.shards.${i}.key`, `'${ref.key}' is not under '${datasetPrefix(name)}'`);
      });
    }
    return m;
  }

  /** Reads one shard and checks it against its manifest entry. */
  async readShard(ref: ShardRef): Promise<Shard> {
    const where = `shard '${ref.key}' in ${this.url}`;
    const bytes = await this.store.get(ref.key);
    if (bytes === undefined) throw new DatasetError('DATASET_SHARD', `${where} is missing (the manifest lists it: was the dataset removed or overwritten meanwhile?)`);
    if (bytes.byteLength !== ref.bytes) throw new DatasetError('DATASET_SHARD', `${where} has ${bytes.byteLength} bytes; the manifest says ${ref.bytes}`);
    let shard: Shard;
    try {
      shard = decodeShard(bytes, where);
    } catch (err) {
      if (err instanceof ShardFormatError) throw new DatasetError('DATASET_SHARD', err.message, { cause: err });
      throw err;
    }
    if (shard.rows !== ref.rows) throw new DatasetError('DATASET_SHARD', `${where} has ${shard.rows} rows; the manifest says ${ref.rows}`);
    if (ref.nnz !== undefined && shard.kind === 'sparse' && shard.indices.length !== ref.nnz) {
      throw new DatasetError('DATASET_SHARD', `${where} has ${shard.indices.length} nonzeros; the manifest says ${ref.nnz}`);
    }
    return shard;
  }

  /** Every dataset that has a manifest, by name. Prefixes without a manifest (crashed runs) are skipped. */
  async list(): Promise<DatasetManifest[]> {
    const names: string[] = [];
    for (const key of await this.store.list('datasets/')) {
      const m = /^datasets\/([^/]+)\/manifest\.json$/.exec(key);
      if (m && DATASET_NAME.test(m[1]!)) names.push(m[1]!);
    }
    const out: Array<DatasetManifest | undefined> = new Array(names.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const i = next++;
        try {
          out[i] = await this.manifest(names[i]!);
        } catch (err) {
          // Removed between the listing and the read: not a dataset any more.
          if (!(err instanceof DatasetError && err.code === 'DATASET_NOT_FOUND')) throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LIST_CONCURRENCY, names.length) }, worker));
    return out.filter((m): m is DatasetManifest => m !== undefined);
  }

  /** Deletes a dataset: the manifest first (it vanishes at once), then everything under its prefix. */
  async remove(name: string): Promise<void> {
    assertDatasetName(name);
    const key = manifestKey(name);
    // Existence only: a corrupt manifest must still be removable.
    if ((await this.store.get(key)) === undefined) throw this.notFound(name);
    await this.store.delete([key]);
    await this.store.delete(await this.store.list(datasetPrefix(name)));
  }

  /**
   * Deletes keys under datasets/<name>/ that the current manifest does not list: leftovers of
   * crashed or failed runs. Runs of writers of this instance still uploading are kept. Returns
   * the deleted keys.
   */
  async cleanupOrphans(name: string, opts: CleanupOptions = {}): Promise<string[]> {
    assertDatasetName(name);
    let listed = new Set<string>();
    try {
      const m = await this.manifest(name);
      listed = new Set([...m.train.shards, ...m.test.shards].map((r) => r.key));
      // Objects the transforms point at (e.g. the fitted statistics of a normalize run) belong to it too.
      for (const t of m.transforms) for (const v of Object.values(t)) if (typeof v === 'string' && v.startsWith(datasetPrefix(name))) listed.add(v);
    } catch (err) {
      // No manifest: nothing is listed. A corrupt one propagates: deleting would risk its shards.
      if (!(err instanceof DatasetError && err.code === 'DATASET_NOT_FOUND')) throw err;
    }
    const minAgeMs = opts.minAgeMs ?? 0;
    const now = Date.now();
    const orphans = (await this.store.list(datasetPrefix(name))).filter((key) => {
      if (key === manifestKey(name) || listed.has(key)) return false;
      const run = runOf(name, key);
      if (run !== undefined && this.activeRuns.has(run)) return false;
      const t = run === undefined ? undefined : runTime(run);
      return t === undefined || now - t >= minAgeMs;
    });
    await this.store.delete(orphans);
    return orphans;
  }

  /**
   * Publishes a manifest for shards that already exist (written by workers rather than a
   * DatasetWriter). Validates it like manifest() does, checks that every listed shard is present
   * (never publish missing shards), refuses an existing dataset unless `overwrite`, writes the
   * manifest, then deletes the shards the replaced manifest listed that the new one does not.
   */
  async publishManifest(manifest: DatasetManifest, opts: { overwrite?: boolean } = {}): Promise<DatasetManifest> {
    const name = assertDatasetName(manifest.name);
    const m = this.validate(name, manifest);
    const previous = await this.listedKeys(name);
    if (previous.exists && !(opts.overwrite ?? false)) throw this.existsError(name);
    const present = new Set(await this.store.list(datasetPrefix(name)));
    const missing = [...m.train.shards, ...m.test.shards].filter((r) => !present.has(r.key));
    if (missing.length > 0) {
      throw new DatasetError('DATASET_UPLOAD', `dataset '${name}': ${missing.length} listed shard(s) are missing from ${this.url} (first '${missing[0]!.key}'); the manifest was not written`);
    }
    await this.store.put(manifestKey(name), new TextEncoder().encode(JSON.stringify(m)));
    const keep = new Set([...m.train.shards, ...m.test.shards].map((r) => r.key));
    const stale = previous.keys.filter((k) => k.startsWith(datasetPrefix(name)) && !keep.has(k));
    // Published: a failed sweep only leaves orphans behind, which cleanupOrphans removes.
    await this.store.delete(stale).catch((err: unknown) => process.emitWarning(`dataset '${name}' was published, but deleting the shards it replaced failed: ${(err as Error).message}`, 'DatasetWarning'));
    return m;
  }

  // -- used by the writer ---------------------------------------------------------------------

  /** @internal */
  isActive(runId: string): boolean {
    return this.activeRuns.has(runId);
  }

  /** @internal */
  runFinished(runId: string): void {
    this.activeRuns.delete(runId);
  }

  /** @internal The keys a stored manifest lists, read leniently (a corrupt manifest lists none). */
  async listedKeys(name: string): Promise<{ exists: boolean; keys: string[] }> {
    const bytes = await this.store.get(manifestKey(name));
    if (bytes === undefined) return { exists: false, keys: [] };
    try {
      const json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as Partial<Record<Split, { shards?: Array<{ key?: unknown }> }>>;
      const keys = (['train', 'test'] as const).flatMap((s) => (json[s]?.shards ?? []).map((r) => r.key)).filter((k): k is string => typeof k === 'string');
      return { exists: true, keys };
    } catch {
      return { exists: true, keys: [] };
    }
  }

  /** @internal */
  existsError(name: string): DatasetError {
    return new DatasetError('DATASET_EXISTS', `dataset '${name}' already exists in ${this.url}; pass overwrite: true to replace it, or remove it first`);
  }

  private notFound(name: string): DatasetError {
    return new DatasetError('DATASET_NOT_FOUND', `dataset '${name}' does not exist in ${this.url}`);
  }
}
