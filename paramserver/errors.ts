/**
 * Errors of the parameter-server room. Self-contained on purpose: the server and client must not
 * depend on the channels room (the `ps` channel adapter maps these to ChannelError instead).
 */
import { CirrusError } from './cirrus-error.js';

export type PsErrorCode =
  /** No connection could be opened (refused, DNS failure, connect deadline). */
  | 'PS_UNREACHABLE'
  /** The connection failed or was closed while requests were pending, or was used after close(). */
  | 'PS_CONNECTION'
  /** No reply arrived within the request's timeout. */
  | 'PS_TIMEOUT'
  /** The peer broke the framing rules (bad length, undecodable frame). */
  | 'PS_PROTOCOL'
  /** Server status BAD_REQUEST: malformed or truncated payload, unsupported version. */
  | 'PS_BAD_REQUEST'
  /** Server status TOO_LARGE: frame over the size limit, or the store's memory bound. */
  | 'PS_TOO_LARGE'
  /** Server status UNKNOWN_OP. */
  | 'PS_UNKNOWN_OP'
  /** Server status SHUTTING_DOWN. */
  | 'PS_SHUTTING_DOWN'
  /** Server status INTERNAL, or a status this client does not know. */
  | 'PS_INTERNAL'
  /** The server could not bind its address (port in use, bad host). */
  | 'PS_LISTEN'
  /** A caller passed an invalid argument (empty key, key over 65535 bytes, bad address). */
  | 'PS_ARGUMENT'
  /** Server status UNAUTHORIZED: no or failed HMAC handshake, or the server failed to prove itself. */
  | 'PS_UNAUTHORIZED'
  /** Server status CONFLICT: duplicate registration or push, model config differing from an existing one. */
  | 'PS_CONFLICT'
  /** Server status RANGE: an index or rank outside the model or worker set. */
  | 'PS_RANGE'
  /** Server status NOT_FOUND for a model op: no model by that name. */
  | 'PS_NOT_FOUND';

export class PsError extends CirrusError<PsErrorCode> {
  /** Short cause without the surrounding context (e.g. 'connect ECONNREFUSED 127.0.0.1:7070'). */
  readonly detail: string;
  constructor(code: PsErrorCode, message: string, options?: { cause?: unknown; detail?: string }) {
    super(code, message, options);
    this.detail = options?.detail ?? message;
  }
}

/** A frame whose declared length exceeds the receiver's limit; carries the request id when known. */
export class FrameTooLargeError extends PsError {
  declare readonly code: 'PS_TOO_LARGE';
  readonly requestId: number;
  readonly frameBytes: number;
  readonly maxFrameBytes: number;
  constructor(requestId: number, frameBytes: number, maxFrameBytes: number) {
    super('PS_TOO_LARGE', `frame of ${frameBytes} bytes exceeds the limit of ${maxFrameBytes} bytes`);
    this.requestId = requestId;
    this.frameBytes = frameBytes;
    this.maxFrameBytes = maxFrameBytes;
  }
}
