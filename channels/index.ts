/**
 * The channels room's door: the Channel contract and its optional abilities, the adapters
 * (adapters/<name>/), codec, keys, collectives, object stores and datasets. Other rooms import
 * channels only from here.
 */
export { ABILITY_METHODS, CHANNEL_ABILITIES, CountingChannel, addStats, canList, canPutParts, canReadInto, emptyStats, hasAbility, totalBytes, totalRequests, type Channel, type ChannelAbility, type ChannelStats, type LentBuffer, type Listing, type OpCounter, type OpKind, type PutParts, type ReadInto } from './channel.js';
export * from './errors.js';
export { decodeFloat32, decodeTensor, dtypeOf, encodeTensor, isTensorFrame, readFrameHeader, type DType, type FrameHeader, type Tensor, type TypedArray } from './codec.js';
export { msgpackrPath, packMessage, unpackMessage } from './messages.js';
export { assertJobId, assertKey, jobKey, jobPrefix } from './keys.js';
export { aspKey, checkpointKey, epochModelKey, finalModelKey, modelLatestKey, progressKey, psDoneKey, psModelName, psPushedKey, psStopKey } from './job-keys.js';
export { claimKey, heartbeatKey, ownerKey, packRecord, readRecord, resultKey, type HeartbeatRecord, type OwnerRecord, type ResultRecord } from './control.js';
export { CHANNEL_KINDS, channelSpec, parseChannelSpec, parseChannelUrl, s3Spec, type ChannelSpec, type ChannelSpecInput, type MemcachedSpec, type PsSpec, type S3Spec } from './spec.js';
export { openChannel } from './factory.js';

// Adapters, each behind its own door.
export { MemoryChannel, MemoryStore } from './adapters/memory/index.js';
export { MemcachedChannel, SMALL_ITEM_BYTES, createLinearClient, openBulkConnection } from './adapters/memcached/index.js';
export { S3Channel, type S3ChannelOptions } from './adapters/s3/index.js';
export { PsChannel } from './adapters/ps/index.js';

// Collectives and the reductions they use.
export { Communicator, segmentBounds, type CollectivePattern, type CommunicatorOptions } from './collectives.js';
export { OrderedReducer, referenceReduce, type ReduceOp } from './reduce.js';
export { SimdArena, simdAvailable } from './simd-reduce.js';
export { Backoff, FAST_POLL, SLOW_POLL, pollMany, type PollPolicy } from './poll.js';

// Object stores and datasets.
export { FileObjectStore, MemoryObjectStore, ObjectStoreError, S3ObjectStore, openObjectStore, type S3ObjectStoreOptions, type S3SpecInput } from './object-stores/index.js';
export {
  DATASET_FORMAT_VERSION,
  DATASET_NAME,
  DatasetError,
  DatasetStore,
  ShardFormatError,
  columnStats,
  datasetPrefix,
  datasetTask,
  decodeShard,
  encodeShard,
  manifestKey,
  manifestSchema,
  newRunId,
  shardKey,
  shardRef,
  validateShard,
  type ColumnStats,
  type DatasetKind,
  type DatasetManifest,
  type DatasetTask,
  type DatasetWriter,
  type DenseShard,
  type ManifestFields,
  type ObjectStore,
  type RatingsShard,
  type Shard,
  type ShardRef,
  type SparseShard,
  type Split,
} from './datasets/index.js';
