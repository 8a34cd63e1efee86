/**
 * A DatasetWriter that keeps everything in memory, for preprocessing tests: every shard goes
 * through encodeShard/decodeShard (so the binary format is exercised and validated), and commit
 * checks the manifest against the real schema.
 */
import { DATASET_FORMAT_VERSION, manifestSchema, shardKey, type DatasetManifest, type ShardRef } from '../../channels/datasets/manifest.js';
import { decodeShard, encodeShard, type Shard } from '../../channels/datasets/shard.js';
import type { DatasetWriter, ManifestFields, Split } from '../../channels/datasets/types.js';

export class MemoryDatasetWriter implements DatasetWriter {
  readonly name: string;
  readonly runId = 'memory-run';
  readonly shards: Record<Split, Shard[]> = { train: [], test: [] };
  private readonly refs: Record<Split, ShardRef[]> = { train: [], test: [] };
  manifest: DatasetManifest | undefined;
  aborted = false;
  /** Shards uploaded concurrently at most (addShard calls not yet resolved). */
  maxInFlight = 0;
  private inFlight = 0;
  private readonly delayMs: number;
  private readonly keepShards: boolean;
  private readonly onShard: ((split: Split, shard: Shard) => void) | undefined;

  /**
   * delayMs: each upload takes this long (to observe back-pressure). keepShards: false drops the
   * decoded shards after onShard has seen them (large datasets).
   */
  constructor(name: string, options: { delayMs?: number; keepShards?: boolean; onShard?: (split: Split, shard: Shard) => void } = {}) {
    this.name = name;
    this.delayMs = options.delayMs ?? 0;
    this.keepShards = options.keepShards ?? true;
    this.onShard = options.onShard;
  }

  async addShard(split: Split, shard: Shard): Promise<ShardRef> {
    if (this.manifest || this.aborted) throw new Error(`MemoryDatasetWriter(${this.name}): addShard after ${this.aborted ? 'abort' : 'commit'}`);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const bytes = encodeShard(shard);
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      const index = this.refs[split].length;
      const ref: ShardRef = { key: shardKey(this.name, this.runId, split, index), rows: shard.rows, bytes: bytes.byteLength };
      if (shard.kind === 'sparse') ref.nnz = shard.indices.length;
      const decoded = decodeShard(bytes, ref.key);
      this.onShard?.(split, decoded);
      if (this.keepShards) this.shards[split].push(decoded);
      this.refs[split].push(ref);
      return ref;
    } finally {
      this.inFlight--;
    }
  }

  async commit(fields: ManifestFields): Promise<DatasetManifest> {
    if (this.aborted) throw new Error(`MemoryDatasetWriter(${this.name}): commit after abort`);
    const rows = (s: Split) => this.refs[s].reduce((n, r) => n + r.rows, 0);
    this.manifest = manifestSchema.parse({
      formatVersion: DATASET_FORMAT_VERSION,
      name: this.name,
      ...fields,
      trainRows: rows('train'),
      testRows: rows('test'),
      train: { rows: rows('train'), shards: this.refs.train },
      test: { rows: rows('test'), shards: this.refs.test },
      createdAt: new Date(0).toISOString(),
    });
    return this.manifest;
  }

  async abort(): Promise<void> {
    this.aborted = true;
    this.shards.train = [];
    this.shards.test = [];
    this.refs.train = [];
    this.refs.test = [];
  }
}
