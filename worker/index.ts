/** The worker room: the stateless side that trains on its share of a dataset. */
export {
  ShardIterator,
  SplitMix32,
  combineSeed,
  permutation,
  type Batch,
  type DenseBatch,
  type RatingsBatch,
  type ShardIteratorOptions,
  type ShardIteratorStats,
  type ShardOrder,
  type SparseBatch,
} from './shard-iterator.js';
export { handler, withContextDeadline, runtimeInfo, WorkerTaskError, type WorkerContext, type RuntimeInfo, type WorkerTaskErrorCode } from './handler.js';
export { runWorkerChild, childContext, type WorkerHandler } from './child.js';
export { parseWorkerEvent, parseEventWith, eventSchema, workerEvent, EventError, TASK_TYPES, type WorkerEvent, type WorkerEventInput, type WorkerTask } from './event.js';
export { runTrain, checkModelFits, batchesPerRank, WorkerTrainError, type TrainDeps, type TrainResult, type WorkerTrainErrorCode, type TrainEvent, type Timings } from './train.js';

// The room's error classes not exported above, so other rooms can catch them through this door.
export { ChunkParseError, type ChunkParseErrorCode } from './dataset-parse.js';
