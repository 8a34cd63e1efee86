/** Public surface of the parameter server: protocol, server and client. */
export { PsError, FrameTooLargeError, type PsErrorCode } from './errors.js';
export {
  PROTOCOL_VERSION,
  HEADER_BYTES,
  BODY_HEADER_BYTES,
  LENGTH_BYTES,
  PAYLOAD_BYTE_OFFSET,
  DEFAULT_MAX_FRAME_BYTES,
  MAX_KEY_BYTES,
  Op,
  Status,
  type OpCode,
  type OpName,
  type StatusCode,
  type StatusName,
  type Frame,
  FrameDecoder,
  PayloadReader,
  encodeHeader,
  encodeKey,
  encodeKeyList,
  encodeWait,
  opName,
  statusName,
} from './protocol.js';
export { startParamServer, type ParamServer, type ParamServerOptions, type ParamServerStats, type SnapshotStoreLike } from './server.js';
export { ParamClient, parseAddress, type ParamClientOptions, type PullOptions, type PushGradient, type Reply } from './client.js';
export { clientProof, serverProof, isLoopbackHost, NONCE_BYTES, MAC_BYTES } from './auth.js';
export { createSync, type Gradient, type ModelSync } from './sync.js';
export { encodeCreateModel, encodePush, encodePull, encodeRegistration } from './model-wire.js';
export {
  ParamModel,
  PsModelError,
  MAX_MODEL_SIZE,
  validateModelConfig,
  thresholdGradient,
  type ModelConfig,
  type OptimizerConfig,
  type SyncConfig,
  type PsModelErrorCode,
} from './model.js';
export { OPTIMIZER_DEFAULTS, createCoordinateOptimizer, type CoordinateOptimizer, type StateArray } from './optimizers.js';
export { openSnapshotStore, newSnapshotId, type SnapshotStore, type LoadedSnapshot } from './snapshot.js';
export { ShardedParamClient, shardRanges, shardOf } from './sharded.js';
export { startParamServerCluster, shardArgs, shardSnapshotUrl, SERVER_MAIN, type ClusterOptions, type ParamServerCluster } from './cluster.js';
export * from './s3/index.js';
