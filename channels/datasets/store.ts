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
import { randomBytes } from 'node:crypto';
import { openObjectStore, type S3ObjectStoreOptions, type S3SpecInput } from '../object-stores/index.js';
import type { S3Spec } from '../spec.js';
import { DatasetError } from './errors.js';
import {
  DATASET_FORMAT_VERSION,
  DATASET_NAME,
  datasetPrefix,
  manifestKey,
  manifestSchema,
  shardKey,
  type DatasetManifest,
  type ShardRef,
} from './manifest.js';
import { decodeShard, encodeShard, ShardFormatError, type Shard } from './shard.js';
import type { DatasetWriter, ManifestFields, ObjectStore, Split } from './types.js';

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

/** Run ids sort by creation time: '20250102T030405678Z-9f3a61c2'. */
const RUN_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-[0-9a-f]{8}$/;

export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

/** Creation time of a run id, or undefined when the segment is not one. */
function runTime(runId: string): number | undefined {
  const m = RUN_ID.exec(runId);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms] = m.map(Number) as number[];
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!, ms!);
}

/** The run id segment of a key under datasets/<name>/ (or undefined for keys outside any run). */
function runOf(name: string, key: string): string | undefined {
  const rest = key.slice(datasetPrefix(name).length);
  const slash = rest.indexOf('/');
  return slash < 0 ? undefined : rest.slice(0, slash);
}

function issuePath(path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
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

/** FIFO counting semaphore: waiters get slots in call order, so shard indices follow addShard calls. */
class Slots {
  private readonly waiters: Array<() => void> = [];
  constructor(private free: number) {}

  async acquire(): Promise<void> {
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

type WriterState = 'open' | 'committing' | 'committed' | 'aborted' | 'failed';

class StoreWriter implements DatasetWriter {
  private state: WriterState = 'open';
  private readonly slots: Slots;
  private readonly refs: Record<Split, ShardRef[]> = { train: [], test: [] };
  /** Kind and column count of each shard, checked against the manifest at commit. */
  private readonly shapes: Array<{ key: string; kind: Shard['kind']; cols: number }> = [];
  /** Every key a put was started for (complete or not): what abort and failures delete. */
  private readonly attempted: string[] = [];
  private readonly uploads = new Set<Promise<void>>();
  private failure: DatasetError | undefined;
  private removal: Promise<void> | undefined;
  private readonly store: ObjectStore;

  constructor(
    private readonly owner: DatasetStore,
    readonly name: string,
    readonly runId: string,
    private readonly overwrite: boolean,
    concurrency: number,
    private readonly warn: (message: string) => void,
  ) {
    this.store = owner.store;
    this.slots = new Slots(concurrency);
  }

  private get runPrefix(): string {
    return `${datasetPrefix(this.name)}${this.runId}/`;
  }

  /**
   * Waits for an upload slot, encodes the shard (so the caller may reuse its arrays once this
   * resolves) and starts the upload; resolves before the upload completes. commit() waits for it.
   */
  async addShard(split: Split, shard: Shard): Promise<ShardRef> {
    if (split !== 'train' && split !== 'test') throw new DatasetError('DATASET_ARGUMENT', `dataset '${this.name}': split must be 'train' or 'test', got '${String(split)}'`);
    this.assertUsable('addShard');
    await this.slots.acquire();
    let started = false;
    try {
      this.assertUsable('addShard');
      const bytes = encodeShard(shard);
      const index = this.refs[split].length;
      const key = shardKey(this.name, this.runId, split, index);
      const ref: ShardRef = { key, rows: shard.rows, bytes: bytes.byteLength };
      if (shard.kind === 'sparse') ref.nnz = shard.indices.length;
      this.refs[split].push(ref);
      this.shapes.push({ key, kind: shard.kind, cols: shard.cols });
      this.attempted.push(key);
      const upload: Promise<void> = this.store.put(key, bytes).then(
        () => undefined,
        (err: unknown) => this.uploadFailed(key, err),
      );
      this.uploads.add(upload);
      void upload.finally(() => {
        this.uploads.delete(upload);
        this.slots.release();
      });
      started = true;
      return { ...ref };
    } finally {
      if (!started) this.slots.release();
    }
  }

  /** First failure wins; the run is deleted in the background so nothing lingers even if the caller never calls commit/abort. */
  private uploadFailed(key: string, err: unknown): void {
    if (this.failure) return;
    this.failure = new DatasetError(
      'DATASET_UPLOAD',
      `dataset '${this.name}': uploading '${key}' to ${this.store.url} failed: ${(err as Error)?.message ?? String(err)}; the dataset was not written and this run's shards are deleted`,
      { cause: err },
    );
    this.state = 'failed';
    void this.removeRun().catch(() => undefined);
  }

  private assertUsable(op: string): void {
    if (this.failure) throw this.failure;
    if (this.state !== 'open') throw new DatasetError('DATASET_WRITER', `dataset '${this.name}': ${op}() on a writer that is ${this.state}`);
  }

  /** Waits until no upload is in flight (none can start once the state has left 'open'). */
  private async drain(): Promise<void> {
    while (this.uploads.size > 0) await Promise.all([...this.uploads]);
  }

  /** Deletes every key of this run; shared by abort, failed uploads and failed commits. */
  private removeRun(): Promise<void> {
    this.removal ??= (async () => {
      await this.drain();
      await this.store.delete([...this.attempted]);
      // Anything else under the run (a put that failed after creating its object) goes too.
      const rest = await this.store.list(this.runPrefix);
      await this.store.delete(rest);
      this.owner.runFinished(this.runId);
    })().catch((err: unknown) => {
      this.removal = undefined; // let a later abort() try again
      throw err;
    });
    return this.removal;
  }

  /** Fails the writer for good: deletes its run, then throws `error` (noting a failed cleanup). */
  private async fail(error: DatasetError): Promise<never> {
    this.failure ??= error;
    this.state = 'failed';
    try {
      await this.removeRun();
    } catch (cleanupErr) {
      throw new DatasetError(
        error.code,
        `${error.message}; deleting the run's shards under '${this.runPrefix}' also failed (${(cleanupErr as Error).message}): run cleanupOrphans('${this.name}')`,
        { cause: error },
      );
    }
    throw error;
  }

  async commit(fields: ManifestFields): Promise<DatasetManifest> {
    if (this.failure) return this.fail(this.failure);
    this.assertUsable('commit');
    this.state = 'committing';
    await this.drain();
    if (this.failure) return this.fail(this.failure);

    let manifest: DatasetManifest;
    try {
      manifest = this.buildManifest(fields);
    } catch (err) {
      // The caller's fields were wrong; the uploads are fine, so let them fix and retry (or abort).
      this.state = 'open';
      throw err;
    }

    const previous = await this.owner.listedKeys(this.name);
    if (previous.exists && !this.overwrite) return this.fail(this.owner.existsError(this.name));
    // Another writer's cleanup may have swept this run; never publish a manifest of missing shards.
    const present = new Set(await this.store.list(this.runPrefix));
    const missing = this.attempted.filter((k) => !present.has(k));
    if (missing.length > 0) {
      return this.fail(
        new DatasetError('DATASET_UPLOAD', `dataset '${this.name}': ${missing.length} shard(s) of run ${this.runId} vanished before commit (first '${missing[0]}'): another writer or a cleanup removed them`),
      );
    }

    const body = new TextEncoder().encode(JSON.stringify(manifest));
    try {
      await this.store.put(manifestKey(this.name), body);
    } catch (err) {
      // The put may have landed anyway (a timeout after the store wrote it): only a manifest that
      // is provably not ours lets us delete the shards it might list.
      const stored = await this.store.get(manifestKey(this.name)).catch(() => null);
      const ours = stored instanceof Uint8Array && Buffer.compare(Buffer.from(stored), Buffer.from(body)) === 0;
      if (!ours) {
        const error = new DatasetError('DATASET_UPLOAD', `dataset '${this.name}': writing '${manifestKey(this.name)}' to ${this.store.url} failed: ${(err as Error).message}`, { cause: err });
        if (stored === null) {
          // Unknown whether it landed: keep the shards, say how to finish.
          this.failure = error;
          this.state = 'failed';
          throw new DatasetError('DATASET_UPLOAD', `${error.message}; the store could not be read back, so run ${this.runId}'s shards are kept: check the dataset, then cleanupOrphans('${this.name}')`, { cause: err });
        }
        return this.fail(error);
      }
    }
    this.state = 'committed';
    this.owner.runFinished(this.runId);
    await this.sweep(manifest, previous.keys);
    return manifest;
  }

  /** After a commit: deletes the replaced manifest's shards and older runs' leftovers. */
  private async sweep(manifest: DatasetManifest, previousKeys: string[]): Promise<void> {
    const prefix = datasetPrefix(this.name);
    const keep = new Set([manifestKey(this.name), ...manifest.train.shards.map((r) => r.key), ...manifest.test.shards.map((r) => r.key)]);
    try {
      const stale = new Set(previousKeys.filter((k) => k.startsWith(prefix) && !keep.has(k)));
      for (const key of await this.store.list(prefix)) {
        if (keep.has(key)) continue;
        const run = runOf(this.name, key);
        // A run started after this one may be a writer still uploading (its own commit decides);
        // one of this process's writers certainly is.
        if (run !== undefined && runTime(run) !== undefined && (run > this.runId || this.owner.isActive(run))) continue;
        stale.add(key);
      }
      await this.store.delete([...stale]);
    } catch (err) {
      this.warn(`dataset '${this.name}' was committed, but deleting the shards it replaced failed: ${(err as Error).message}; run cleanupOrphans('${this.name}')`);
    }
  }

  private buildManifest(fields: ManifestFields): DatasetManifest {
    const train = this.refs.train.map((r) => ({ ...r }));
    const test = this.refs.test.map((r) => ({ ...r }));
    const trainRows = train.reduce((s, r) => s + r.rows, 0);
    const testRows = test.reduce((s, r) => s + r.rows, 0);
    const candidate = {
      ...fields,
      formatVersion: DATASET_FORMAT_VERSION,
      name: this.name,
      train: { rows: trainRows, shards: train },
      test: { rows: testRows, shards: test },
      trainRows,
      testRows,
      createdAt: new Date().toISOString(),
    };
    const r = manifestSchema.safeParse(candidate);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new DatasetError('DATASET_MANIFEST', `dataset '${this.name}': manifest field '${issuePath(issue.path)}': ${issue.message}`);
    }
    const m = r.data;
    for (const s of this.shapes) {
      if (s.kind !== m.kind) throw new DatasetError('DATASET_MANIFEST', `dataset '${this.name}': manifest field 'kind' is '${m.kind}', but shard '${s.key}' is ${s.kind}`);
      if (s.kind !== 'ratings' && s.cols !== m.features) {
        throw new DatasetError('DATASET_MANIFEST', `dataset '${this.name}': manifest field 'features' is ${m.features}, but shard '${s.key}' has ${s.cols} columns`);
      }
    }
    return m;
  }

  async abort(): Promise<void> {
    if (this.state === 'committed' || this.state === 'committing') {
      throw new DatasetError('DATASET_WRITER', `dataset '${this.name}': abort() on a writer that is ${this.state}; use DatasetStore.remove('${this.name}') to delete a committed dataset`);
    }
    if (this.state === 'open') this.state = 'aborted';
    await this.removeRun();
  }
}
