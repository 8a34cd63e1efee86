/**
 * The door of the parameter-server room: other rooms import only from here. Inside: the protocol
 * (protocol.ts frames, payload.ts codecs), the server (server.ts wiring server-connections.ts,
 * server-dispatch.ts, kv-store.ts, model-service.ts, registry.ts, log-throttle.ts), its command line
 * (server-cli.ts, main.ts), the client (client.ts ops over client-connection.ts), models and
 * optimizers, sync modes, sharding, snapshots.
 */
export { PsError, FrameTooLargeError, type PsErrorCode } from './errors.js';
export {
  PROTOCOL_VERSION,
  HEADER_BYTES,
  BODY_HEADER_BYTES,
  LENGTH_BYTES,
  PAYLOAD_BYTE_OFFSET,
  DEFAULT_MAX_FRAME_BYTES,
  Op,
  Status,
  type OpCode,
  type OpName,
  type StatusCode,
  type StatusName,
  type Frame,
  FrameDecoder,
  encodeHeader,
  opName,
  statusName,
} from './protocol.js';
export { MAX_KEY_BYTES, PayloadReader, decodeU32, encodeKey, encodeKeyList, encodeU32, encodeWait } from './payload.js';
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
  type PsModelErrorCode,
} from './model.js';
export type { ModelConfig, OptimizerConfig, SyncConfig } from './model-config.js';
export { OPTIMIZER_DEFAULTS, createCoordinateOptimizer, type CoordinateOptimizer, type StateArray } from './optimizers.js';
export { openSnapshotStore, newSnapshotId, type SnapshotStore, type LoadedSnapshot } from './snapshot.js';
export { ShardedParamClient, shardRanges, shardOf } from './sharded.js';
export { runParamServerCli, parseServerArgs, type ServerCliOptions } from './server-cli.js';
export { startParamServerCluster, shardArgs, shardSnapshotUrl, SERVER_MAIN, type ClusterOptions, type ParamServerCluster } from './cluster.js';
export * from './s3/index.js';
export { CirrusError, type CirrusErrorOptions } from './cirrus-error.js';
