/**
 * A dataset writer: shards upload in the background (a bounded number at once), commit publishes
 * the manifest last, then deletes what an overwritten dataset left (see store.ts for the layout).
 */
import { DatasetError } from './errors.js';
import { DATASET_FORMAT_VERSION, datasetPrefix, manifestKey, manifestSchema, shardKey, type DatasetManifest, type ShardRef } from './manifest.js';
import { runOf, runTime } from './runs.js';
import { encodeShard, type Shard } from './shard.js';
import type { DatasetWriter, ManifestFields, ObjectStore, Split } from './types.js';

/** What a writer needs from the DatasetStore that made it. */
interface WriterOwner {
  readonly store: ObjectStore;
  isActive(runId: string): boolean;
  runFinished(runId: string): void;
  listedKeys(name: string): Promise<{ exists: boolean; keys: string[] }>;
  existsError(name: string): DatasetError;
}

/** A zod issue's path as a field name for messages. */
export function issuePath(path: ReadonlyArray<PropertyKey>): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
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

export class StoreWriter implements DatasetWriter {
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
    private readonly owner: WriterOwner,
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
