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
export { startParamServer, type ParamServer, type ParamServerOptions, type ParamServerStats } from './server.js';
export { ParamClient, parseAddress, type ParamClientOptions, type Reply } from './client.js';
