/** Typed errors of the channels room. Every error carries a stable `code` callers can switch on. */

export type ChannelErrorCode =
  | 'CHANNEL_UNKNOWN'
  | 'CHANNEL_ENDPOINT'
  | 'CHANNEL_UNREACHABLE'
  | 'CHANNEL_REQUEST'
  | 'CHANNEL_TIMEOUT'
  | 'CHANNEL_CORRUPT'
  | 'CHANNEL_CLOSED'
  | 'CHANNEL_UNSUPPORTED'
  | 'KEY_INVALID';

export class ChannelError extends Error {
  readonly code: ChannelErrorCode;
  constructor(code: ChannelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChannelError';
    this.code = code;
  }
}

/** A wait on one or more keys passed its deadline; `missingKeys` are the keys that never appeared. */
export class WaitTimeoutError extends ChannelError {
  readonly missingKeys: string[];
  constructor(missingKeys: string[], waitedMs: number, channel: string) {
    const shown = missingKeys.slice(0, 8).join(', ') + (missingKeys.length > 8 ? `, ... (${missingKeys.length} in all)` : '');
    super('CHANNEL_TIMEOUT', `${channel}: waited ${Math.round(waitedMs)} ms and these keys never appeared: ${shown}`);
    this.name = 'WaitTimeoutError';
    this.missingKeys = missingKeys;
  }
}

export type FrameErrorCode = 'FRAME_MAGIC' | 'FRAME_VERSION' | 'FRAME_DTYPE' | 'FRAME_TRUNCATED' | 'FRAME_LENGTH' | 'FRAME_SHAPE';

/** A byte string that is not a valid tensor frame. */
export class FrameError extends Error {
  readonly code: FrameErrorCode;
  constructor(code: FrameErrorCode, message: string) {
    super(message);
    this.name = 'FrameError';
    this.code = code;
  }
}

/** A collective round did not complete before its deadline; names the ranks that never arrived. */
export class CollectiveTimeoutError extends Error {
  readonly code = 'COLLECTIVE_TIMEOUT' as const;
  readonly missingRanks: number[];
  readonly round: number;
  constructor(pattern: string, round: number, rank: number, missingRanks: number[], waitedMs: number) {
    super(
      `${pattern} round ${round}: rank ${rank} waited ${Math.round(waitedMs)} ms; ` +
        `rank${missingRanks.length === 1 ? '' : 's'} ${missingRanks.join(', ')} never arrived`,
    );
    this.name = 'CollectiveTimeoutError';
    this.missingRanks = missingRanks;
    this.round = round;
  }
}

export class CollectiveError extends Error {
  readonly code: 'COLLECTIVE_ARGUMENT' | 'COLLECTIVE_MISMATCH';
  constructor(code: 'COLLECTIVE_ARGUMENT' | 'COLLECTIVE_MISMATCH', message: string) {
    super(message);
    this.name = 'CollectiveError';
    this.code = code;
  }
}
