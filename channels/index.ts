/** The channels room: the Channel contract, its adapters, the tensor codec and the collectives. */
export type { Channel, ChannelStats, OpCounter, OpKind } from './channel.js';
export { addStats, emptyStats, totalBytes, totalRequests } from './channel.js';
export * from './errors.js';
export { decodeFloat32, decodeTensor, dtypeOf, encodeTensor, isTensorFrame, readFrameHeader, type DType, type FrameHeader, type Tensor, type TypedArray } from './codec.js';
export { packMessage, unpackMessage } from './messages.js';
export { assertJobId, assertKey, jobKey, jobPrefix } from './keys.js';
export { CHANNEL_KINDS, parseChannelSpec, parseChannelUrl, type ChannelSpec, type ChannelSpecInput, type MemcachedSpec, type PsSpec, type S3Spec } from './spec.js';
export { openChannel } from './factory.js';
export { MemoryChannel } from './memory.js';
export { MemcachedChannel } from './memcached.js';
export { startMemcached, findMemcachedBinary, type MemcachedServer } from './memcached-server.js';
export { S3Channel } from './s3.js';
export { startS3Server, s3SpecFor, type S3Server } from './s3-server.js';
export { PsChannel } from './ps.js';
export { Communicator, segmentBounds, type CollectivePattern, type CommunicatorOptions } from './collectives.js';
export { OrderedReducer, referenceReduce, type ReduceOp } from './reduce.js';
export { Backoff, FAST_POLL, SLOW_POLL, pollMany, type PollPolicy } from './poll.js';
