/**
 * Rows -> shards. Rows are packed into growable typed arrays as they arrive (no per-row objects are
 * kept), split into train/test by a seeded PRNG, shuffled within a window, and handed to a
 * DatasetWriter one full shard at a time.
 *
 * Shuffling is windowed, not global: rows are gathered into a block of `window` rows (or
 * `windowBytes`, whichever fills first), the block is emitted in a random order, and the next block
 * starts. A row therefore moves only within its block. That keeps memory bounded for any input
 * size; training also visits the shards in a random order each epoch, which mixes across blocks.
 */
import type { DatasetKind, DatasetTask, DenseShard, RatingsShard, Shard, SparseShard, DatasetWriter, Split } from '../../channels/index.js';
import { InputError, PreprocessOptionsError, type InputLocation } from './errors.js';
import type { RatingRow } from './ratings.js';

export interface SparseInputRow {
  label: number;
  /** 0-based, strictly increasing. */
  indices: ArrayLike<number>;
  values: ArrayLike<number>;
  line: number;
}

export interface DenseInputRow {
  label: number;
  x: ArrayLike<number>;
  line: number;
}

export type RowFor<K extends DatasetKind> = K extends 'sparse' ? SparseInputRow : K extends 'dense' ? DenseInputRow : RatingRow;

// ---------------------------------------------------------------------------------------------
// Growable typed arrays

class GrowF32 {
  data: Float32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Float32Array(capacity);
  }
  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.data.length) return;
    const next = new Float32Array(Math.max(need, this.data.length * 2));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  push(v: number): void {
    if (this.length === this.data.length) this.reserve(1);
    this.data[this.length++] = v;
  }
  /** An exact-size copy the caller owns (the buffer itself is reused for the next shard). */
  take(): Float32Array {
    return this.data.slice(0, this.length);
  }
}

class GrowU32 {
  data: Uint32Array;
  length = 0;
  constructor(capacity = 1024) {
    this.data = new Uint32Array(capacity);
  }
  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.data.length) return;
    const next = new Uint32Array(Math.max(need, this.data.length * 2));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
  push(v: number): void {
    if (this.length === this.data.length) this.reserve(1);
    this.data[this.length++] = v;
  }
  take(): Uint32Array {
    return this.data.slice(0, this.length);
  }
}

// ---------------------------------------------------------------------------------------------
// Shard builders, one per kind

export interface ShardBuilder<K extends DatasetKind> {
  readonly kind: K;
  readonly rows: number;
  /** Bytes of packed row data held (what a shard of these rows would carry). */
  readonly bytes: number;
  /** Appends a row; `label` is the row's label after any mapping (ignored for ratings). */
  add(row: RowFor<K>, label: number): void;
  /** Appends row `r` of another builder of the same kind. */
  copyRow(from: ShardBuilder<K>, r: number): void;
  /** The rows as a shard with its own arrays; `cols` is the feature space (sparse) or width (dense). */
  build(cols: number): Shard;
  /** Empties the builder, keeping its buffers for the next shard. */
  reset(): void;
}

/** CSR rows: labels, indptr, indices, values. */
export class SparseShardBuilder implements ShardBuilder<'sparse'> {
  readonly kind = 'sparse' as const;
  private labels = new GrowF32();
  private indptr = new GrowU32();
  private indices = new GrowU32();
  private values = new GrowF32();

  constructor() {
    this.indptr.push(0);
  }

  get rows(): number {
    return this.labels.length;
  }

  get bytes(): number {
    return 8 * this.labels.length + 8 * this.indices.length;
  }

  add(row: SparseInputRow, label: number): void {
    const n = row.indices.length;
    this.labels.push(label);
    this.indices.reserve(n);
    this.values.reserve(n);
    const idx = this.indices.data;
    const val = this.values.data;
    const at = this.indices.length;
    for (let k = 0; k < n; k++) {
      idx[at + k] = row.indices[k]!;
      val[at + k] = row.values[k]!;
    }
    this.indices.length += n;
    this.values.length += n;
    this.indptr.push(this.indices.length);
  }

  copyRow(from: ShardBuilder<'sparse'>, r: number): void {
    const src = from as SparseShardBuilder;
    const start = src.indptr.data[r]!;
    const end = src.indptr.data[r + 1]!;
    const n = end - start;
    this.labels.push(src.labels.data[r]!);
    this.indices.reserve(n);
    this.values.reserve(n);
    // A plain loop: rows are short, and subarray views would be garbage per row.
    const idx = this.indices.data;
    const val = this.values.data;
    const sidx = src.indices.data;
    const sval = src.values.data;
    const at = this.indices.length - start;
    for (let k = start; k < end; k++) {
      idx[at + k] = sidx[k]!;
      val[at + k] = sval[k]!;
    }
    this.indices.length += n;
    this.values.length += n;
    this.indptr.push(this.indices.length);
  }

  build(cols: number): SparseShard {
    return { kind: 'sparse', rows: this.rows, cols, labels: this.labels.take(), indptr: this.indptr.take(), indices: this.indices.take(), values: this.values.take() };
  }

  reset(): void {
    this.labels.length = 0;
    this.indices.length = 0;
    this.values.length = 0;
    this.indptr.length = 0;
    this.indptr.push(0);
  }
}

/** Row-major dense rows of a fixed width. */
export class DenseShardBuilder implements ShardBuilder<'dense'> {
  readonly kind = 'dense' as const;
  readonly cols: number;
  private labels = new GrowF32();
  private x: GrowF32;

  constructor(cols: number) {
    this.cols = cols;
    this.x = new GrowF32(Math.max(1024, cols * 64));
  }

  get rows(): number {
    return this.labels.length;
  }

  get bytes(): number {
    return 4 * this.labels.length + 4 * this.x.length;
  }

  add(row: DenseInputRow, label: number): void {
    this.labels.push(label);
    this.x.reserve(this.cols);
    const at = this.x.length;
    if (row.x instanceof Float32Array) this.x.data.set(row.x, at);
    else for (let j = 0; j < this.cols; j++) this.x.data[at + j] = row.x[j]!;
    this.x.length += this.cols;
  }

  copyRow(from: ShardBuilder<'dense'>, r: number): void {
    const src = from as DenseShardBuilder;
    this.labels.push(src.labels.data[r]!);
    this.x.reserve(this.cols);
    this.x.data.set(src.x.data.subarray(r * this.cols, (r + 1) * this.cols), this.x.length);
    this.x.length += this.cols;
  }

  build(): DenseShard {
    return { kind: 'dense', rows: this.rows, cols: this.cols, labels: this.labels.take(), x: this.x.take() };
  }

  reset(): void {
    this.labels.length = 0;
    this.x.length = 0;
  }
}

/** (user, item, rating) triples. */
export class RatingsShardBuilder implements ShardBuilder<'ratings'> {
  readonly kind = 'ratings' as const;
  private users = new GrowU32();
  private items = new GrowU32();
  private ratings = new GrowF32();

  get rows(): number {
    return this.ratings.length;
  }

  get bytes(): number {
    return 12 * this.ratings.length;
  }

  add(row: RatingRow): void {
    this.users.push(row.user);
    this.items.push(row.item);
    this.ratings.push(row.rating);
  }

  copyRow(from: ShardBuilder<'ratings'>, r: number): void {
    const src = from as RatingsShardBuilder;
    this.users.push(src.users.data[r]!);
    this.items.push(src.items.data[r]!);
    this.ratings.push(src.ratings.data[r]!);
  }

  build(): RatingsShard {
    return { kind: 'ratings', rows: this.rows, cols: 0, users: this.users.take(), items: this.items.take(), ratings: this.ratings.take() };
  }

  reset(): void {
    this.users.length = 0;
    this.items.length = 0;
    this.ratings.length = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Seeded PRNG

/** mulberry32: small, fast, and the same sequence everywhere for a given seed. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// The sharder

export const DEFAULT_ROWS_PER_SHARD: Record<DatasetKind, number> = { sparse: 50_000, dense: 50_000, ratings: 200_000 };
export const DEFAULT_SHUFFLE_WINDOW = 100_000;
/** A window also closes at this many bytes, so wide rows (images) cannot blow memory up. */
export const DEFAULT_SHUFFLE_WINDOW_BYTES = 256 << 20;
export const DEFAULT_SPLIT = 0.9;

export interface SharderOptions {
  kind: DatasetKind;
  /**
   * Chooses the split of a row from its (stored) label, e.g. a stratified split; default: a draw
   * of the seeded PRNG against the train fraction. A split forced by the caller still wins.
   */
  splitOf?: (label: number) => Split;
  /** Checks labels against it; undefined infers binary (labels all 0/1) or regression at finish(). */
  task?: DatasetTask;
  /** Multiclass: labels must lie in [0, classes); undefined takes max label + 1 at finish(). */
  classes?: number;
  /** Sparse: size of the feature space; undefined uses max index + 1 (see finish()). Dense: row width; undefined takes the first row's. */
  features?: number;
  rowsPerShard?: number;
  /** Fraction of rows that go to train, default 0.9. */
  split?: number;
  /** Seeds the split (and, unless shuffle.seed is given, the shuffle). Default 0. */
  seed?: number;
  /** Windowed shuffle, on by default; false keeps the input order. */
  shuffle?: false | { seed?: number; window?: number; windowBytes?: number };
  /**
   * Binary task only: accept -1/+1 labels (libsvm's convention) and store them as 0/1. A file may
   * use -1/+1 or 0/1, not both (a 0 after a -1, or the reverse, is an error).
   */
  acceptMinusOne?: boolean;
  /** The file named in label errors. */
  file: string;
  /** The label's column, for messages (default: the word 'label'). */
  labelAt?: Pick<InputLocation, 'column' | 'columnName'>;
  /** What a row's `line` counts: text lines (default) or records of a binary file ('item N', IDX). */
  rowUnit?: 'line' | 'item';
}

export interface SharderResult {
  kind: DatasetKind;
  task: DatasetTask;
  classes: number;
  features: number;
  trainRows: number;
  testRows: number;
  trainShards: number;
  testShards: number;
  /** Ratings: id ranges [0, users) and [0, items). */
  users: number;
  items: number;
  /** True when -1 labels were stored as 0. */
  mappedMinusOne: boolean;
  labelMin: number;
  labelMax: number;
}

interface Lane<K extends DatasetKind> {
  split: Split;
  shard: ShardBuilder<K>;
  window: ShardBuilder<K> | undefined;
  random: () => number;
  rows: number;
  shards: number;
}

export class DatasetSharder<K extends DatasetKind> {
  readonly kind: K;
  private readonly writer: DatasetWriter;
  private readonly options: SharderOptions;
  readonly rowsPerShard: number;
  private readonly trainFraction: number;
  private readonly splitRandom: () => number;
  private readonly window: number;
  private readonly windowBytes: number;
  private readonly shuffleSeed: number;
  private lanes: Record<Split, Lane<K>> | undefined;
  private cols: number | undefined;
  private maxIndex = -1;
  private maxUser = -1;
  private maxItem = -1;
  private sawMinusOne = false;
  private sawZero = false;
  private allBinary = true;
  private labelMin = Infinity;
  private labelMax = -Infinity;
  private finished = false;
  /** The file label and row errors name; the pipeline switches it per input file. */
  file: string;

  constructor(kind: K, writer: DatasetWriter, options: Omit<SharderOptions, 'kind'>) {
    this.kind = kind;
    this.writer = writer;
    this.options = { ...options, kind };
    this.file = options.file;
    this.rowsPerShard = options.rowsPerShard ?? DEFAULT_ROWS_PER_SHARD[kind];
    if (!Number.isInteger(this.rowsPerShard) || this.rowsPerShard < 1) throw new PreprocessOptionsError(`rowsPerShard: expected a positive integer, found ${this.rowsPerShard}`);
    this.trainFraction = options.split ?? DEFAULT_SPLIT;
    if (!(this.trainFraction >= 0 && this.trainFraction <= 1)) throw new PreprocessOptionsError(`split: expected a train fraction in [0, 1], found ${this.trainFraction}`);
    if (options.task === 'multiclass' && options.classes !== undefined && !(Number.isInteger(options.classes) && options.classes >= 2)) {
      throw new PreprocessOptionsError(`classes: expected an integer >= 2 for a multiclass task, found ${options.classes}`);
    }
    const seed = options.seed ?? 0;
    this.splitRandom = seededRandom(seed);
    const shuffle = options.shuffle ?? {};
    this.window = shuffle === false ? 0 : (shuffle.window ?? DEFAULT_SHUFFLE_WINDOW);
    this.windowBytes = shuffle === false ? 0 : (shuffle.windowBytes ?? DEFAULT_SHUFFLE_WINDOW_BYTES);
    if (shuffle !== false && !(Number.isInteger(this.window) && this.window >= 1)) throw new PreprocessOptionsError(`shuffle.window: expected a positive integer, found ${this.window}`);
    this.shuffleSeed = shuffle === false ? 0 : (shuffle.seed ?? seed);
    this.cols = options.features;
  }

  private makeBuilder(): ShardBuilder<K> {
    const kind: DatasetKind = this.kind;
    const b = kind === 'sparse' ? new SparseShardBuilder() : kind === 'dense' ? new DenseShardBuilder(this.cols!) : new RatingsShardBuilder();
    return b as unknown as ShardBuilder<K>;
  }

  private setupLanes(): Record<Split, Lane<K>> {
    // Each split has its own shuffle stream, so the test order does not depend on the train rows.
    const lane = (split: Split, salt: number): Lane<K> => ({
      split,
      shard: this.makeBuilder(),
      window: this.window > 0 ? this.makeBuilder() : undefined,
      random: seededRandom((this.shuffleSeed ^ salt) >>> 0),
      rows: 0,
      shards: 0,
    });
    return { train: lane('train', 0x5bd1e995), test: lane('test', 0x1b873593) };
  }

  /**
   * Adds a row to the split the PRNG draws (or to `split` when given: e.g. Fashion-MNIST's own
   * test files). Returns a promise only when a shard is being uploaded; await it before the next
   * add (back-pressure). Keeping the common case synchronous keeps per-row cost low.
   */
  add(row: RowFor<K>, split?: Split): Promise<void> | undefined {
    if (this.finished) throw new Error('DatasetSharder.add after finish()');
    const label = this.checkRow(row);
    if (!this.lanes) this.lanes = this.setupLanes();
    const target = split ?? this.options.splitOf?.(label) ?? (this.trainFraction >= 1 || this.splitRandom() < this.trainFraction ? 'train' : 'test');
    const lane = this.lanes[target];
    if (lane.window) {
      lane.window.add(row, label);
      if (lane.window.rows >= this.window || lane.window.bytes >= this.windowBytes) return this.flushWindow(lane);
      return undefined;
    }
    lane.shard.add(row, label);
    lane.rows++;
    return lane.shard.rows >= this.rowsPerShard ? this.emit(lane) : undefined;
  }

  /** Flushes windows and partial shards; returns what the manifest needs. */
  async finish(): Promise<SharderResult> {
    this.finished = true;
    if (this.lanes) {
      for (const lane of [this.lanes.train, this.lanes.test]) {
        if (lane.window) await this.flushWindow(lane);
        if (lane.shard.rows > 0) await this.emit(lane);
      }
    }
    const o = this.options;
    const task: DatasetTask = o.task ?? (this.allBinary ? 'binary' : 'regression');
    const classes = task === 'binary' ? 2 : task === 'multiclass' ? (o.classes ?? Math.max(2, this.labelMax + 1)) : 0;
    return {
      kind: this.kind,
      task,
      classes,
      features: this.kind === 'ratings' ? 0 : (this.cols ?? (this.kind === 'sparse' ? this.maxIndex + 1 : 0)),
      trainRows: this.lanes?.train.rows ?? 0,
      testRows: this.lanes?.test.rows ?? 0,
      trainShards: this.lanes?.train.shards ?? 0,
      testShards: this.lanes?.test.shards ?? 0,
      users: this.maxUser + 1,
      items: this.maxItem + 1,
      mappedMinusOne: this.sawMinusOne,
      labelMin: this.labelMin,
      labelMax: this.labelMax,
    };
  }

  private async flushWindow(lane: Lane<K>): Promise<void> {
    const win = lane.window!;
    const n = win.rows;
    // Fisher-Yates over row numbers; the rows themselves stay packed in the window.
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(lane.random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    for (let i = 0; i < n; i++) {
      lane.shard.copyRow(win, order[i]!);
      lane.rows++;
      if (lane.shard.rows >= this.rowsPerShard) await this.emit(lane);
    }
    win.reset();
  }

  private async emit(lane: Lane<K>): Promise<void> {
    const shard = lane.shard.build(this.shardCols());
    lane.shard.reset();
    lane.shards++;
    await this.writer.addShard(lane.split, shard);
  }

  /**
   * The `cols` written into a shard. Sparse without a declared feature count: the largest index
   * seen so far + 1, a lower bound of the final count (which goes into the manifest); readers
   * should size models from the manifest's `features`, not from a shard.
   */
  private shardCols(): number {
    if (this.kind === 'sparse') return this.cols ?? this.maxIndex + 1;
    return this.kind === 'dense' ? this.cols! : 0;
  }

  /** Validates a row (shape and label) and returns the label to store. */
  private checkRow(row: RowFor<K>): number {
    const o = this.options;
    if (this.kind === 'ratings') {
      const r = row as RatingRow;
      if (!Number.isFinite(r.rating)) throw this.labelError(row.line, `expected a finite rating, found ${r.rating}`);
      if (r.user > this.maxUser) this.maxUser = r.user;
      if (r.item > this.maxItem) this.maxItem = r.item;
      return r.rating;
    }
    if (this.kind === 'sparse') {
      const s = row as SparseInputRow;
      const n = s.indices.length;
      if (n > 0) {
        const last = s.indices[n - 1]!;
        if (this.cols !== undefined && last >= this.cols) {
          throw new InputError('INPUT_PARSE', this.file, `expected feature indices below ${this.cols} (features), found ${last}`, this.rowAt(row.line));
        }
        if (last > this.maxIndex) this.maxIndex = last;
      }
    } else {
      const d = row as DenseInputRow;
      if (this.cols === undefined) this.cols = d.x.length;
      if (d.x.length !== this.cols) {
        throw new InputError('INPUT_COLUMNS', this.file, `expected ${this.cols} feature values, found ${d.x.length}`, this.rowAt(row.line));
      }
    }
    let label = (row as SparseInputRow | DenseInputRow).label;
    if (!Number.isFinite(label)) throw this.labelError(row.line, `expected a finite label, found ${label}`);
    switch (o.task) {
      case 'binary':
        if (o.acceptMinusOne && label === -1) {
          if (this.sawZero) throw this.labelError(row.line, 'expected 0 or 1 like the rows before (binary labels are either 0/1 or -1/+1), found -1');
          this.sawMinusOne = true;
          label = 0;
        } else if (label === 0 || label === 1) {
          if (label === 0) {
            if (this.sawMinusOne) throw this.labelError(row.line, 'expected -1 or +1 like the rows before (binary labels are either 0/1 or -1/+1), found 0');
            this.sawZero = true;
          }
        } else {
          throw this.labelError(row.line, `expected ${o.acceptMinusOne ? '-1/+1 or 0/1' : '0 or 1'} for a binary task, found ${label}`);
        }
        break;
      case 'multiclass':
        if (!Number.isInteger(label) || label < 0 || (o.classes !== undefined && label >= o.classes)) {
          throw this.labelError(row.line, `expected an integer class ${o.classes !== undefined ? `in [0, ${o.classes})` : '>= 0'} for a multiclass task, found ${label}`);
        }
        break;
      default:
        if (label !== 0 && label !== 1) this.allBinary = false;
    }
    if (label < this.labelMin) this.labelMin = label;
    if (label > this.labelMax) this.labelMax = label;
    return label;
  }

  private rowAt(line: number): InputLocation {
    return this.options.rowUnit === 'item' ? { where: `item ${line}` } : { line };
  }

  private labelError(line: number, detail: string): InputError {
    const o = this.options;
    const at: InputLocation = { ...this.rowAt(line), ...(o.labelAt ?? {}) };
    if (o.rowUnit === 'item') at.where = `item ${line}, label`;
    else if (at.column === undefined) at.where = this.kind === 'ratings' ? 'rating' : 'label';
    return new InputError('INPUT_LABEL', this.file, detail, at);
  }
}
