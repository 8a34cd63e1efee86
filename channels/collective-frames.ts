/**
 * The collectives' traffic of tensor frames over a channel: puts of float32 vectors (as header and
 * payload parts where the channel takes them), waits that name the missing ranks, and the frame
 * and receive buffers reused round after round (large allocations make V8 run full GCs).
 */
import { canPutParts, canReadInto, type Channel, type LentBuffer } from './channel.js';
import { encodeTensor, frameBytes, headerBytes } from './codec.js';
import { CollectiveError, CollectiveTimeoutError, WaitTimeoutError } from './errors.js';

/** Header bytes of a 1-D tensor frame. */
export const FRAME_HEADER = headerBytes(1);

export class FrameTraffic {
  /** Frame buffers reused across rounds. */
  private readonly framePool = new Map<number, Uint8Array[]>();
  /** Receive buffers lent to the channel, by size: one per source index (see lend()). */
  private readonly receivePool = new Map<number, Uint8Array[]>();
  /** Frame headers of float32 vectors by length, for frames whose payload is written in place. */
  private readonly headers = new Map<number, Uint8Array>();

  constructor(
    private readonly channel: Channel,
    private readonly rank: number,
  ) {}

  /**
   * Receive buffer number `index` of `byteLength` bytes, reused round after round. Safe because
   * every value read into one is consumed (reduced or copied out) before the round ends, and one
   * wait never uses an index twice.
   */
  readonly lend = (index: number, byteLength: number): Uint8Array => {
    let bufs = this.receivePool.get(byteLength);
    if (bufs === undefined) {
      if (this.receivePool.size >= 4) this.receivePool.delete(this.receivePool.keys().next().value!);
      bufs = [];
      this.receivePool.set(byteLength, bufs);
    }
    return (bufs[index] ??= new Uint8Array(byteLength));
  };

  /** The frame header of a 1-D float32 tensor of `n` values (cached by length). */
  frameHeader(n: number): Uint8Array {
    let header = this.headers.get(n);
    if (header === undefined) {
      header = encodeTensor(new Float32Array(n)).slice(0, FRAME_HEADER);
      if (this.headers.size >= 8) this.headers.delete(this.headers.keys().next().value!);
      this.headers.set(n, header);
    }
    return header;
  }

  /** A new frame for `n` float32 values with its header written; the payload is left to fill. */
  freshFrame(n: number): Uint8Array {
    const frame = new Uint8Array(frameBytes('float32', n));
    frame.set(this.frameHeader(n));
    return frame;
  }

  /**
   * Puts vec as a tensor frame: as header and payload parts where the channel takes them (no copy;
   * vec is not changed before this resolves), else encoded into a pooled buffer (a channel no
   * longer needs the bytes once put() resolves).
   */
  async putVector(key: string, vec: Float32Array): Promise<void> {
    if (canPutParts(this.channel)) {
      await this.channel.putParts(key, this.frameHeader(vec.length), new Uint8Array(vec.buffer, vec.byteOffset, vec.byteLength));
      return;
    }
    const size = frameBytes('float32', vec.length);
    const free = this.framePool.get(size);
    const frame = encodeTensor(vec, [vec.length], free?.pop());
    try {
      await this.channel.put(key, frame);
    } finally {
      if (free) free.push(frame);
      else this.framePool.set(size, [frame]);
      if (this.framePool.size > 8) this.framePool.delete(this.framePool.keys().next().value!);
    }
  }

  /** waitMany that turns a timeout into a CollectiveTimeoutError naming the ranks. */
  async awaitRanks(
    pattern: string,
    round: number,
    keys: string[],
    ranks: number[],
    deadline: number,
    onValue?: (index: number, value: Uint8Array) => void,
    /** Lends receive buffers: only for values consumed within the round (never returned to callers). */
    dest?: (index: number, byteLength: number) => LentBuffer | undefined,
  ): Promise<Uint8Array[]> {
    const started = Date.now();
    try {
      if (dest && canReadInto(this.channel)) return await this.channel.waitManyInto(keys, deadline, dest, onValue);
      return await this.channel.waitMany(keys, deadline, onValue);
    } catch (e) {
      if (e instanceof WaitTimeoutError) {
        const missing = new Set(e.missingKeys);
        const missingRanks = ranks.filter((_, i) => missing.has(keys[i]!));
        throw new CollectiveTimeoutError(pattern, round, this.rank, missingRanks, Date.now() - started);
      }
      throw e;
    }
  }
}

/** With one rank the sum and the mean are the vector itself; a copy, so callers may mutate either. */
export function finishLocal(vec: Float32Array, out: Float32Array | undefined): Float32Array {
  if (out === undefined) return vec.slice();
  out.set(vec);
  return out;
}

/** `out` must have vec's length and must not share memory with it (the reduction overwrites out as it reads vec). */
export function checkOut(vec: Float32Array, out: Float32Array | undefined): void {
  if (out === undefined) return;
  if (out.length !== vec.length) throw new CollectiveError('COLLECTIVE_ARGUMENT', `out has ${out.length} floats, the vector ${vec.length}`);
  const overlaps = out.buffer === vec.buffer && out.byteOffset < vec.byteOffset + vec.byteLength && vec.byteOffset < out.byteOffset + out.byteLength;
  if (overlaps) throw new CollectiveError('COLLECTIVE_ARGUMENT', 'out overlaps the vector being reduced; pass a separate buffer');
}

export function checkLength(v: Float32Array, expected: number, what: string): Float32Array {
  if (v.length !== expected) throw new CollectiveError('COLLECTIVE_MISMATCH', `${what}: received ${v.length} floats, expected ${expected}`);
  return v;
}
