/** Preprocessing: parse local inputs, hash features, cut shards, write a dataset. */
export { InputError, PreprocessOptionsError, type InputErrorCode, type InputLocation } from '../../algorithms/index.js';
export { DEFAULT_MAX_LINE_BYTES, openInput, parseDecimal, parseNumber, readLineBatches, readLines, type InputFile, type Line, type LineBatch, type LineOptions, type RowSource } from '../../algorithms/index.js';
export { LibsvmParser, parseLibsvm, type LibsvmOptions, type SparseRow } from '../../algorithms/index.js';
export { CsvParser, parseCsv, type CsvOptions, type DenseRow } from '../../algorithms/index.js';
export {
  FASHION_MNIST_FILES,
  FASHION_MNIST_LABEL_NAMES,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  IdxParser,
  PIXEL_SCALE,
  labelsFileFor,
  loadFashionMnistDir,
  parseIdx,
  type FashionMnist,
  type IdxOptions,
} from '../../algorithms/index.js';
export { RatingsParser, parseRatings, type RatingRow, type RatingsOptions } from '../../algorithms/index.js';
export { CRITEO_CAT_NAMES, CRITEO_COLUMNS, CRITEO_INT_NAMES, CriteoParser, parseCriteo, type CriteoRow } from '../../algorithms/index.js';
export { murmur3, murmur3Bytes, murmur3Parts } from '../../algorithms/index.js';
export { FeatureHasher, HASH_SEPARATOR, MAX_HASH_BITS, hashBucket, type FeatureHasherOptions, type HashedRow, type NumericTransform } from '../../algorithms/index.js';
export {
  DEFAULT_ROWS_PER_SHARD,
  DEFAULT_SHUFFLE_WINDOW,
  DEFAULT_SHUFFLE_WINDOW_BYTES,
  DEFAULT_SPLIT,
  DatasetSharder,
  DenseShardBuilder,
  RatingsShardBuilder,
  SparseShardBuilder,
  seededRandom,
  type DenseInputRow,
  type RowFor,
  type ShardBuilder,
  type SharderOptions,
  type SharderResult,
  type SparseInputRow,
} from '../../algorithms/index.js';
export { CRITEO_DEFAULT_BITS, PREPROCESS_FORMATS, preprocessLocal, type HashOptions, type PreprocessFormat, type PreprocessLocalOptions, type PreprocessResult } from '../../algorithms/index.js';
export { distributedTransform, PreprocessError, WorkerFailedError, type PreprocessErrorCode, type DistributedTransformOptions, type DistributedTransformResult, type ScalingOp } from './transform.js';
export { preprocess, type PreprocessOptions } from './preprocess.js';
