/** Typed errors of the channels room. Every error carries a stable `code` callers can switch on. */
import { CirrusError } from '../paramserver/index.js';

export type ChannelErrorCode =
  | 'CHANNEL_UNKNOWN'
  | 'CHANNEL_ENDPOINT'
  | 'CHANNEL_UNREACHABLE'
  | 'CHANNEL_REQUEST'
  | 'CHANNEL_TIMEOUT'
  | 'CHANNEL_CORRUPT'
  | 'CHANNEL_CLOSED'
  | 'CHANNEL_UNSUPPORTED'
  | 'KEY_INVALID'
  /** A collective round passed its deadline (CollectiveTimeoutError). */
  | 'COLLECTIVE_TIMEOUT';

export class ChannelError extends CirrusError<ChannelErrorCode> {}

/** A wait on one or more keys passed its deadline; `missingKeys` are the keys that never appeared. */
export class WaitTimeoutError extends ChannelError {
  declare readonly code: 'CHANNEL_TIMEOUT';
  readonly missingKeys: string[];
  constructor(missingKeys: string[], waitedMs: number, channel: string) {
    const shown = missingKeys.slice(0, 8).join(', ') + (missingKeys.length > 8 ? `, ... (${missingKeys.length} in all)` : '');
    super('CHANNEL_TIMEOUT', `${channel}: waited ${Math.round(waitedMs)} ms and these keys never appeared: ${shown}`);
    this.missingKeys = missingKeys;
  }
}

export type FrameErrorCode = 'FRAME_MAGIC' | 'FRAME_VERSION' | 'FRAME_DTYPE' | 'FRAME_TRUNCATED' | 'FRAME_LENGTH' | 'FRAME_SHAPE';

/** A byte string that is not a valid tensor frame. */
export class FrameError extends CirrusError<FrameErrorCode> {}

/** A collective round did not complete before its deadline; names the ranks that never arrived. */
export class CollectiveTimeoutError extends ChannelError {
  declare readonly code: 'COLLECTIVE_TIMEOUT';
  readonly missingRanks: number[];
  readonly round: number;
  constructor(pattern: string, round: number, rank: number, missingRanks: number[], waitedMs: number) {
    super(
      'COLLECTIVE_TIMEOUT',
      `${pattern} round ${round}: rank ${rank} waited ${Math.round(waitedMs)} ms; ` +
        `rank${missingRanks.length === 1 ? '' : 's'} ${missingRanks.join(', ')} never arrived`,
    );
    this.missingRanks = missingRanks;
    this.round = round;
  }
}

export type CollectiveErrorCode = 'COLLECTIVE_ARGUMENT' | 'COLLECTIVE_MISMATCH';

export class CollectiveError extends CirrusError<CollectiveErrorCode> {}
