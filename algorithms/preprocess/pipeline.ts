/**
 * Local preprocessing: input file -> parser -> (feature hashing) -> sharder -> DatasetWriter ->
 * manifest. Streams end to end, so memory is bounded by the shuffle window and one shard per split.
 * Any failure aborts the writer (its shards are deleted, no manifest appears) and rethrows.
 */
import { DATASET_NAME, type DatasetKind, type DatasetManifest, type DatasetTask, type DatasetWriter, type ManifestFields, type Split } from '../../channels/index.js';
import { CRITEO_CAT_NAMES, CRITEO_INT_NAMES, CriteoParser } from './criteo.js';
import { CsvParser, type DenseRow } from './csv.js';
import { InputError, PreprocessOptionsError } from './errors.js';
import { FeatureHasher } from './hashing.js';
import { FASHION_MNIST_LABEL_NAMES, IdxParser, PIXEL_SCALE, labelsFileFor, loadFashionMnistDir } from './idx.js';
import { LibsvmParser, type SparseRow } from './libsvm.js';
import type { RowSource } from './lines.js';
import { RatingsParser, type RatingRow } from './ratings.js';
import type { RowFor } from './shard-builders.js';
import { DEFAULT_SHUFFLE_WINDOW, DEFAULT_SPLIT, DatasetSharder, type SharderOptions } from './sharder.js';

export type PreprocessFormat = 'libsvm' | 'csv' | 'idx' | 'ratings' | 'criteo' | 'fashion-mnist';
export const PREPROCESS_FORMATS: readonly PreprocessFormat[] = ['libsvm', 'csv', 'idx', 'ratings', 'criteo', 'fashion-mnist'];

/** Criteo's default hash space when no `hash` option is given: 2^20 buckets. */
export const CRITEO_DEFAULT_BITS = 20;

export interface HashOptions {
  /** Columns to hash: CSV header names, or a subset of Criteo's C1..C26 (default: all 26). */
  columns: string[];
  bits: number;
  /** Adds a constant-1 feature at index 2^bits. */
  bias?: boolean;
  /** murmur3 seed, default 0. */
  seed?: number;
}

export interface PreprocessLocalOptions {
  /** A file; for 'fashion-mnist' a directory holding the four IDX files; for 'idx' the images file. */
  input: string;
  format: PreprocessFormat;
  /** Dataset name; must equal the writer's. */
  name: string;
  writer: DatasetWriter;
  /**
   * Defaults: libsvm and criteo binary; idx and fashion-mnist multiclass; ratings regression;
   * csv inferred from the labels: binary when every label is 0 or 1, else regression (pass
   * 'multiclass' for class labels).
   */
  task?: DatasetTask;
  /** Multiclass class count (labels must lie in [0, classes)); default: max label + 1 (fashion-mnist: 10). */
  classes?: number;
  /** libsvm: size of the feature space (default: max index + 1). */
  features?: number;
  /** CSV label column: header name, or 0-based index (negative from the end); default the last column. */
  labelColumn?: string | number;
  /** Feature hashing (csv: the named columns are categorical strings; criteo: always hashed). */
  hash?: HashOptions;
  rowsPerShard?: number;
  /** Train fraction, default 0.9 (ignored by fashion-mnist, whose test split is the t10k files). */
  split?: number;
  /** Seeds the split and the shuffle; default 0. */
  seed?: number;
  /** Windowed shuffle (see sharder.ts); default on with `seed` and a 100,000-row window. */
  shuffle?: false | { seed?: number; window?: number };
  /** CSV / ratings delimiter, default ','. */
  delimiter?: string;
  /** libsvm indices start at 0. */
  zeroBased?: boolean;
  /** idx: the labels file (default: the images file's name with 'images-idx3' -> 'labels-idx1'). */
  labels?: string;
  /** Called after every chunk of input with bytes of the input file(s) read so far. */
  onProgress?(bytesRead: number, totalBytes: number): void;
  /**
   * csv: a test file of the same columns; its rows all go to the test split (and `split` is not
   * used), so statistics fitted on the train split never see them.
   */
  testFile?: string;
  /** csv: maps label cells to stored labels (class names to indices); see CsvOptions.labelOf. */
  labelOf?: (text: string) => number | undefined;
  labelExpected?: string;
  /** Class names by index, written to the manifest. */
  labelNames?: string[];
  /** Chooses each row's split from its label (a stratified split); see SharderOptions.splitOf. */
  splitOf?: SharderOptions['splitOf'];
}

export interface PreprocessResult {
  manifest: DatasetManifest;
  trainRows: number;
  testRows: number;
  bytes: number;
}

/** One stream of rows feeding the sharder, with the split it is forced into (if any). */
interface Feed<K extends DatasetKind> {
  source: RowSource<unknown>;
  batches: AsyncGenerator<Array<RowFor<K>>>;
  split?: Split;
  /** The file label errors name (IDX: the labels file). */
  labelFile?: string;
}

interface Plan<K extends DatasetKind> {
  kind: K;
  /** Called once the first batch is read, when headers (CSV names, hash layout) are known. */
  sharder(): Omit<SharderOptions, 'kind'>;
  feeds: Array<Feed<K>>;
  /** Manifest fields known only after reading. */
  extras(): Partial<Pick<ManifestFields, 'featureNames' | 'labelNames'>>;
  transforms(): Array<Record<string, unknown>>;
}

export async function preprocessLocal(options: PreprocessLocalOptions): Promise<PreprocessResult> {
  const { writer } = options;
  try {
    checkOptions(options);
    const plan = await planFor(options);
    let made: DatasetSharder<DatasetKind> | undefined;
    const sharderNow = () => (made ??= new DatasetSharder(plan.kind, writer, plan.sharder()));
    const total = () => plan.feeds.reduce((s, f) => s + f.source.totalBytes, 0);
    const read = () => plan.feeds.reduce((s, f) => s + f.source.bytesRead, 0);
    for (const feed of plan.feeds) {
      for await (const batch of feed.batches) {
        const sharder = sharderNow();
        sharder.file = feed.labelFile ?? feed.source.file;
        for (const row of batch) {
          const pending = sharder.add(row, feed.split);
          if (pending) await pending;
        }
        options.onProgress?.(read(), total());
      }
    }
    const sharder = sharderNow();
    const result = await sharder.finish();
    if (result.trainRows + result.testRows === 0) {
      const file = plan.feeds[0]!.source.file;
      throw new InputError('INPUT_EMPTY', file, `expected at least one data row, found none${options.format === 'csv' ? ' (a header alone, or blank lines, carry no data)' : ''}`);
    }
    options.onProgress?.(total(), total());
    const shuffle = options.shuffle ?? {};
    const transforms = plan.transforms();
    if (result.mappedMinusOne) transforms.push({ type: 'label-map', from: [-1, 1], to: [0, 1] });
    if (options.testFile !== undefined) transforms.push({ type: 'split', source: `${options.input} -> train, ${options.testFile} -> test` });
    else if (options.format === 'fashion-mnist') transforms.push({ type: 'split', source: 'train-* files -> train, t10k-* files -> test' });
    else transforms.push({ type: 'split', train: options.split ?? DEFAULT_SPLIT, seed: options.seed ?? 0, ...(options.splitOf ? { stratified: 'by class' } : {}) });
    if (shuffle !== false) transforms.push({ type: 'shuffle', scope: 'window', window: shuffle.window ?? DEFAULT_SHUFFLE_WINDOW, seed: shuffle.seed ?? options.seed ?? 0 });
    const fields: ManifestFields = {
      kind: result.kind,
      task: result.task,
      features: result.features,
      classes: result.classes,
      rowsPerShard: sharder.rowsPerShard,
      stats: null,
      source: { file: options.input, format: options.format, bytes: total() },
      transforms,
      ...(result.kind === 'ratings' ? { users: result.users, items: result.items } : {}),
      ...plan.extras(),
    };
    const manifest = await writer.commit(fields);
    return { manifest, trainRows: result.trainRows, testRows: result.testRows, bytes: total() };
  } catch (err) {
    // The original error is what the user needs; a failing abort must not replace it.
    await writer.abort().catch(() => undefined);
    throw err;
  }
}

function checkOptions(o: PreprocessLocalOptions): void {
  if (!PREPROCESS_FORMATS.includes(o.format)) throw new PreprocessOptionsError(`format: expected one of ${PREPROCESS_FORMATS.join(', ')}, found ${JSON.stringify(o.format)}`);
  if (!DATASET_NAME.test(o.name)) throw new PreprocessOptionsError(`name: expected ${DATASET_NAME} (letters, digits, '.', '_', '-'), found ${JSON.stringify(o.name)}`);
  if (o.name !== o.writer.name) throw new PreprocessOptionsError(`name: ${JSON.stringify(o.name)} differs from the writer's dataset ${JSON.stringify(o.writer.name)}`);
  if (o.testFile !== undefined && o.format !== 'csv' && o.format !== 'criteo') throw new PreprocessOptionsError(`testFile: a separate test file is read for csv and criteo inputs, not ${o.format}`);
  if (o.hash && o.format !== 'csv' && o.format !== 'criteo') throw new PreprocessOptionsError(`hash: feature hashing applies to csv and criteo inputs, not ${o.format}`);
  const fixed: Partial<Record<PreprocessFormat, DatasetTask>> = { ratings: 'regression', criteo: 'binary', 'fashion-mnist': 'multiclass' };
  const need = fixed[o.format];
  if (o.task !== undefined && need !== undefined && o.task !== need) throw new PreprocessOptionsError(`task: ${o.format} data is ${need}, found ${o.task}`);
  if (o.format === 'fashion-mnist' && o.classes !== undefined && o.classes !== 10) throw new PreprocessOptionsError(`classes: Fashion-MNIST has 10 classes, found ${o.classes}`);
}

function sharderBase(o: PreprocessLocalOptions, file: string): Omit<SharderOptions, 'kind'> {
  const base: Omit<SharderOptions, 'kind'> = { file };
  if (o.rowsPerShard !== undefined) base.rowsPerShard = o.rowsPerShard;
  if (o.split !== undefined) base.split = o.split;
  if (o.seed !== undefined) base.seed = o.seed;
  if (o.shuffle !== undefined) base.shuffle = o.shuffle;
  if (o.classes !== undefined) base.classes = o.classes;
  if (o.splitOf !== undefined && o.testFile === undefined) base.splitOf = o.splitOf;
  return base;
}

/**
 * The test file's rows, once its first row shows the same columns as the train file's (a header of
 * other names, or another column count, is refused naming both files).
 */
async function* sameColumns(train: CsvParser, test: CsvParser): AsyncGenerator<DenseRow[]> {
  let checked = false;
  for await (const batch of test.rowBatches()) {
    if (!checked) {
      checked = true;
      const want = train.header ? train.header.join(',') : `${train.columns} columns`;
      const found = test.header ? test.header.join(',') : `${test.columns} columns`;
      if (test.columns !== train.columns || (train.header && test.header && want !== found)) {
        throw new InputError('INPUT_COLUMNS', test.file, `expected the columns of the train file ${train.file} (${want}), found ${found}`, { line: 1 });
      }
    }
    yield batch;
  }
}

/** Maps each parser row to a sharder row, batch by batch. */
async function* mapBatches<A, B>(batches: AsyncGenerator<A[]>, f: (row: A) => B): AsyncGenerator<B[]> {
  for await (const batch of batches) yield batch.map(f);
}

async function planFor(o: PreprocessLocalOptions): Promise<Plan<DatasetKind>> {
  const none = () => ({});
  switch (o.format) {
    case 'libsvm': {
      const parser = new LibsvmParser(o.input, { zeroBased: o.zeroBased ?? false, ...(o.features !== undefined ? { features: o.features } : {}) });
      const task = o.task ?? 'binary';
      const plan: Plan<'sparse'> = {
        kind: 'sparse',
        sharder: () => ({ ...sharderBase(o, o.input), task, acceptMinusOne: task === 'binary', ...(o.features !== undefined ? { features: o.features } : {}) }),
        feeds: [{ source: parser, batches: parser.rowBatches() as AsyncGenerator<SparseRow[]> }],
        extras: none,
        transforms: () => [{ type: 'libsvm-indices', base: o.zeroBased ? 0 : 1, stored: 0 }],
      };
      return plan as unknown as Plan<DatasetKind>;
    }
    case 'csv': {
      const csvOptions = {
        ...(o.delimiter !== undefined ? { delimiter: o.delimiter } : {}),
        ...(o.labelColumn !== undefined ? { labelColumn: o.labelColumn } : {}),
        ...(o.hash ? { categorical: o.hash.columns } : {}),
        ...(o.labelOf ? { labelOf: o.labelOf } : {}),
        ...(o.labelExpected !== undefined ? { labelExpected: o.labelExpected } : {}),
      };
      const parser = new CsvParser(o.input, csvOptions);
      const testParser = o.testFile !== undefined ? new CsvParser(o.testFile, csvOptions) : undefined;
      // Both files are read the same way; the test file's columns must be the train file's.
      const feedsOf = <R>(map: (b: AsyncGenerator<DenseRow[]>) => AsyncGenerator<R[]>): Array<Feed<DatasetKind>> => {
        const trainFeed = { source: parser, batches: map(parser.rowBatches()) as AsyncGenerator<Array<RowFor<DatasetKind>>> };
        if (!testParser) return [trainFeed];
        return [
          { ...trainFeed, split: 'train' },
          { source: testParser, batches: map(sameColumns(parser, testParser)) as AsyncGenerator<Array<RowFor<DatasetKind>>>, split: 'test' },
        ];
      };
      const input = (): Record<string, unknown> => ({
        type: 'input',
        format: 'csv',
        delimiter: o.delimiter ?? ',',
        header: parser.header ?? null,
        columns: parser.columns,
        labelColumn: parser.labelIndex,
        ...(o.labelNames ? { labelNames: o.labelNames } : {}),
        ...(o.testFile !== undefined ? { testFile: o.testFile } : {}),
      });
      const base = (): Omit<SharderOptions, 'kind'> => ({
        ...sharderBase(o, o.input),
        ...(o.task !== undefined ? { task: o.task } : {}),
        labelAt: { column: parser.labelIndex + 1, ...(parser.header ? { columnName: parser.header[parser.labelIndex]! } : {}) },
      });
      const hash = o.hash;
      if (hash) {
        let hasher: FeatureHasher | undefined;
        // The numeric columns are known once the header is read, so the hasher is built then.
        const getHasher = () =>
          (hasher ??= new FeatureHasher({ bits: hash.bits, hashed: hash.columns, numeric: parser.featureNames ?? [], bias: hash.bias ?? false, seed: hash.seed ?? 0 }));
        const toRow = (r: DenseRow): SparseRow => {
          const { indices, values } = getHasher().hashRow(r.cats ?? [], r.x);
          return { label: r.label, indices, values, line: r.line };
        };
        const plan: Plan<'sparse'> = {
          kind: 'sparse',
          sharder: () => ({ ...base(), features: getHasher().features }),
          feeds: feedsOf((b) => mapBatches(b, toRow)) as Array<Feed<'sparse'>>,
          extras: () => (o.labelNames ? { labelNames: o.labelNames } : {}),
          transforms: () => [input(), getHasher().describe()],
        };
        return plan as unknown as Plan<DatasetKind>;
      }
      const plan: Plan<'dense'> = {
        kind: 'dense',
        sharder: base,
        feeds: feedsOf((b) => b) as Array<Feed<'dense'>>,
        extras: () => ({ ...(parser.featureNames ? { featureNames: parser.featureNames } : {}), ...(o.labelNames ? { labelNames: o.labelNames } : {}) }),
        transforms: () => [input()],
      };
      return plan as unknown as Plan<DatasetKind>;
    }
    case 'ratings': {
      const parser = new RatingsParser(o.input, o.delimiter !== undefined ? { delimiter: o.delimiter } : {});
      const plan: Plan<'ratings'> = {
        kind: 'ratings',
        sharder: () => ({ ...sharderBase(o, o.input), task: 'regression' }),
        feeds: [{ source: parser, batches: parser.rowBatches() as AsyncGenerator<RatingRow[]> }],
        extras: none,
        transforms: () => [],
      };
      return plan as unknown as Plan<DatasetKind>;
    }
    case 'criteo': {
      const parser = new CriteoParser(o.input);
      const testParser = o.testFile !== undefined ? new CriteoParser(o.testFile) : undefined;
      const columns = o.hash?.columns ?? [...CRITEO_CAT_NAMES];
      const picks = columns.map((c) => {
        const k = CRITEO_CAT_NAMES.indexOf(c);
        if (k === -1) throw new PreprocessOptionsError(`hash.columns: expected Criteo categorical columns C1..C26, found ${JSON.stringify(c)}`);
        return k;
      });
      const hasher = new FeatureHasher({
        bits: o.hash?.bits ?? CRITEO_DEFAULT_BITS,
        hashed: columns,
        numeric: CRITEO_INT_NAMES,
        numericTransform: 'log1p',
        bias: o.hash?.bias ?? false,
        seed: o.hash?.seed ?? 0,
      });
      // hasher column of each of C1..C26, -1 for the columns left out
      const hashedCols = CRITEO_CAT_NAMES.map((_, k) => picks.indexOf(k));
      const plan: Plan<'sparse'> = {
        kind: 'sparse',
        sharder: () => ({ ...sharderBase(o, o.input), task: 'binary', features: hasher.features, labelAt: { column: 1, columnName: 'label' } }),
        feeds: o.testFile === undefined
          ? [{ source: parser, batches: parser.hashedBatches(hasher, hashedCols) }]
          : [
              { source: parser, batches: parser.hashedBatches(hasher, hashedCols), split: 'train' },
              { source: testParser!, batches: testParser!.hashedBatches(hasher, hashedCols), split: 'test' },
            ],
        extras: none,
        transforms: () => [hasher.describe()],
      };
      return plan as unknown as Plan<DatasetKind>;
    }
    case 'idx': {
      const labels = o.labels ?? labelsFileFor(o.input);
      if (labels === undefined) throw new PreprocessOptionsError(`labels: ${o.input} does not follow the '*-images-idx3-ubyte' naming, so pass the labels file explicitly`);
      const parser = new IdxParser(o.input, labels);
      const plan: Plan<'dense'> = {
        kind: 'dense',
        sharder: () => ({ ...sharderBase(o, labels), task: o.task ?? 'multiclass', rowUnit: 'item' }),
        feeds: [{ source: parser, batches: parser.rowBatches(), labelFile: labels }],
        extras: none,
        transforms: () => [{ type: 'scale', factor: PIXEL_SCALE, range: [0, 1], note: 'pixel / 255' }],
      };
      return plan as unknown as Plan<DatasetKind>;
    }
    case 'fashion-mnist': {
      const fm = await loadFashionMnistDir(o.input);
      const plan: Plan<'dense'> = {
        kind: 'dense',
        sharder: () => ({ ...sharderBase(o, fm.files.trainLabels), task: 'multiclass', classes: 10, rowUnit: 'item' }),
        feeds: [
          { source: fm.train, batches: fm.train.rowBatches(), split: 'train', labelFile: fm.files.trainLabels },
          { source: fm.test, batches: fm.test.rowBatches(), split: 'test', labelFile: fm.files.testLabels },
        ],
        extras: () => ({ labelNames: [...FASHION_MNIST_LABEL_NAMES] }),
        transforms: () => [{ type: 'scale', factor: PIXEL_SCALE, range: [0, 1], note: 'pixel / 255' }],
      };
      return plan as unknown as Plan<DatasetKind>;
    }
  }
}
