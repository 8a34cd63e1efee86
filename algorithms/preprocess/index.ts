/** Preprocessing parsers and the sharder: local inputs -> rows -> hashed features -> shards. */
export { InputError, PreprocessOptionsError, quote, type InputErrorCode, type InputLocation } from './errors.js';
export { DEFAULT_MAX_LINE_BYTES, isBlank, openInput, parseDecimal, parseNumber, readLineBatches, readLines, type InputFile, type Line, type LineBatch, type LineOptions, type RowSource } from './lines.js';
export { LibsvmParser, parseLibsvm, type LibsvmOptions, type SparseRow } from './libsvm.js';
export { CsvParser, parseCsv, type CsvOptions, type DenseRow } from './csv.js';
export { FASHION_MNIST_FILES, FASHION_MNIST_LABEL_NAMES, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxParser, PIXEL_SCALE, labelsFileFor, loadFashionMnistDir, parseIdx, type FashionMnist, type IdxOptions } from './idx.js';
export { RatingsParser, parseRatings, type RatingRow, type RatingsOptions } from './ratings.js';
export { CRITEO_CAT_COLUMNS, CRITEO_CAT_NAMES, CRITEO_COLUMNS, CRITEO_INT_COLUMNS, CRITEO_INT_NAMES, CriteoParser, parseCriteo, type CriteoRow } from './criteo.js';
export { murmur3, murmur3Bytes, murmur3Parts } from './murmur3.js';
export { FeatureHasher, HASH_SEPARATOR, MAX_HASH_BITS, hashBucket, type FeatureHasherOptions, type HashedRow, type NumericTransform } from './hashing.js';
export { DenseShardBuilder, RatingsShardBuilder, SparseShardBuilder, type DenseInputRow, type RowFor, type ShardBuilder, type SparseInputRow } from './shard-builders.js';
export { DEFAULT_ROWS_PER_SHARD, DEFAULT_SHUFFLE_WINDOW, DEFAULT_SHUFFLE_WINDOW_BYTES, DEFAULT_SPLIT, DatasetSharder, type SharderOptions, type SharderResult } from './sharder.js';
export { CRITEO_DEFAULT_BITS, PREPROCESS_FORMATS, preprocessLocal, type HashOptions, type PreprocessFormat, type PreprocessLocalOptions, type PreprocessResult } from './pipeline.js';
export { chunkSeed, chunkShardKey, parseResultSchema, rawChunkKey, type ChunkParseResult, type DatasetParseResult } from './chunks.js';
