/**
 * AllReduce and ScatterReduce over any Channel.
 *
 * Keys (all under the job's prefix, so jobs and rounds never mix):
 *   job/<jobId>/coll/<stream>/<round>/in/<segment>/<sourceRank>   a rank's contribution to a segment
 *   job/<jobId>/coll/<stream>/<round>/out/<segment>               the reduced segment
 *   job/<jobId>/coll/<stream>/fin/<rank>                          written by close()
 *
 * AllReduce has one segment, reduced by rank 0 ('leader'), or, for small vectors, reduced by every
 * rank from all contributions ('gather': one hop instead of two, at W-1 times the reads).
 * ScatterReduce splits the vector into W segments; rank j reduces segment j. Cleanup without extra messages: a contribution has one reader, which
 * deletes it once read. A reduced segment has W-1 readers; its publisher deletes it when it has
 * collected the next round's contributions to that segment, which proves every rank finished
 * reading the earlier round. What the last round left is removed by close(): every rank writes a
 * fin key listing its outputs still pending, and rank 0 deletes them with the fin keys.
 */
import type { Channel } from './channel.js';
import { decodeFloat32, frameBytes, readFrameHeader } from './codec.js';
import { FRAME_HEADER, FrameTraffic, checkLength, checkOut, finishLocal } from './collective-frames.js';
import { CollectiveError } from './errors.js';
import { jobKey } from './keys.js';
import { packMessage, unpackMessage } from './messages.js';
import { OrderedReducer, SIMD_MIN_FLOATS, type ReduceOp } from './reduce.js';
import { SimdArena, arenaFits, simdAvailable } from './simd-reduce.js';

export type CollectivePattern = 'allreduce' | 'scatterreduce';
type AllReduceAlgorithm = 'auto' | 'leader' | 'gather';

/** 'auto' gathers when each rank would read at most this many bytes of contributions. */
const GATHER_MAX_BYTES = 64 * 1024;

export interface CommunicatorOptions {
  jobId: string;
  rank: number;
  world: number;
  /** Independent sequence of rounds (e.g. 'grad', 'model'); default 'grad'. */
  stream?: string;
  /** How long one round may wait for other ranks, in ms (default 60 s). */
  timeoutMs?: number;
  /** First round number, for a worker generation resuming a run (default 0). */
  startRound?: number;
  /** How allReduce reduces: 'leader' (rank 0 reduces and publishes), 'gather' (every rank reads every contribution) or 'auto' (gather for small vectors). */
  allReduceAlgorithm?: AllReduceAlgorithm;
}

/** Segment j of a length-n vector split W ways: [floor(j n / W), floor((j+1) n / W)). */
export function segmentBounds(n: number, world: number, j: number): [number, number] {
  return [Math.floor((j * n) / world), Math.floor(((j + 1) * n) / world)];
}

export class Communicator {
  readonly jobId: string;
  readonly rank: number;
  readonly world: number;
  readonly stream: string;
  readonly timeoutMs: number;
  readonly allReduceAlgorithm: AllReduceAlgorithm;
  private nextRound: number;
  /** Outputs this rank published whose readers have not yet all been proven done. */
  private pendingOutputs: string[] = [];
  private readonly background = new Set<Promise<void>>();
  /** Puts and waits of tensor frames, with the buffers reused across rounds. */
  private readonly frames: FrameTraffic;
  /** Sums long vectors with SIMD, in receive slots it lends (created on first use). */
  private arena: SimdArena | undefined;
  private backgroundError: unknown;
  private closed = false;

  constructor(
    private readonly channel: Channel,
    opts: CommunicatorOptions,
  ) {
    const { jobId, rank, world } = opts;
    if (!Number.isInteger(world) || world < 1) throw new CollectiveError('COLLECTIVE_ARGUMENT', `world must be a positive integer, got ${world}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= world) throw new CollectiveError('COLLECTIVE_ARGUMENT', `rank must be an integer in [0, ${world - 1}], got ${rank}`);
    this.jobId = jobId;
    this.rank = rank;
    this.world = world;
    this.stream = opts.stream ?? 'grad';
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.nextRound = opts.startRound ?? 0;
    this.allReduceAlgorithm = opts.allReduceAlgorithm ?? 'auto';
    this.frames = new FrameTraffic(channel, rank);
    jobKey(jobId, 'coll', this.stream); // validates the id and stream name early
  }

  /** The round the next collective call will use. */
  get round(): number {
    return this.nextRound;
  }

  /**
   * Every rank gets every rank's vector, in rank order; the vectors may have different lengths
   * (e.g. sparse updates). Each rank publishes its own and reads the others'.
   */
  async allGather(vec: Float32Array): Promise<Float32Array[]> {
    const round = this.beginRound();
    if (this.world === 1) return [vec.slice()];
    const deadline = Date.now() + this.timeoutMs;
    const mine = this.inKey(round, 0, this.rank);
    const sources = Array.from({ length: this.world }, (_, r) => r).filter((r) => r !== this.rank);
    const keys = sources.map((r) => this.inKey(round, 0, r));
    const out = new Array<Float32Array>(this.world);
    out[this.rank] = vec.slice();
    let firstError: unknown;
    await Promise.all([
      this.frames.putVector(mine, vec),
      this.frames.awaitRanks('allgather', round, keys, sources, deadline, (i, bytes) => {
        try {
          out[sources[i]!] = decodeFloat32(bytes, keys[i]!).slice();
        } catch (e) {
          firstError ??= e;
        }
      }),
    ]);
    if (firstError) throw firstError;
    // As for gatherReduce: every rank entered this round, so earlier outputs have been read.
    this.retirePendingAndKeep([mine]);
    return out;
  }

  /**
   * Every rank gets the element-wise sum (or mean) of all ranks' vectors. Rank 0 reduces and
   * publishes, or every rank gathers all contributions when the vector is small (see
   * allReduceAlgorithm). Results are bit-identical either way.
   *
   * With `out` (same length as vec, not overlapping it) the result is written there and `out` is
   * returned: a caller that reduces every step reuses one buffer instead of a new one per round
   * (at 4 MB a round, fresh results keep V8's full collector busy).
   */
  async allReduce(vec: Float32Array, op: ReduceOp = 'sum', algorithm: AllReduceAlgorithm = this.allReduceAlgorithm, out?: Float32Array): Promise<Float32Array> {
    checkOut(vec, out);
    const round = this.beginRound();
    if (this.world === 1) return finishLocal(vec, out);
    const deadline = Date.now() + this.timeoutMs;
    const what = `allreduce round ${round}`;
    const gather = algorithm === 'gather' || (algorithm === 'auto' && vec.byteLength * (this.world - 1) <= GATHER_MAX_BYTES);
    if (gather) return this.gatherReduce(round, vec, op, deadline, out);
    if (this.rank !== 0) {
      await this.frames.putVector(this.inKey(round, 0, this.rank), vec);
      const key = this.outKey(round, 0);
      if (out === undefined) {
        const got = await this.frames.awaitRanks('allreduce', round, [key], [0], deadline);
        return checkLength(decodeFloat32(got[0]!, key), vec.length, what);
      }
      await this.readSegmentsInto('allreduce', round, out, [0], [[0, vec.length]], deadline);
      return out;
    }
    if (out !== undefined) {
      await this.reduceSegment('allreduce', round, 0, vec, op, deadline, out);
      return out;
    }
    // Reduce straight into the payload of the frame rank 0 publishes: no copy to encode it. The
    // frame is fresh (not pooled) because the caller keeps the result, a view into it.
    const frame = this.frames.freshFrame(vec.length);
    const acc = new Float32Array(frame.buffer, frame.byteOffset + FRAME_HEADER, vec.length);
    await this.reduceSegment('allreduce', round, 0, vec, op, deadline, acc, frame);
    return acc;
  }

  /**
   * Every rank gets the element-wise sum (or mean); rank j reduces segment j of W, so the work and
   * the traffic are spread over all ranks. Works for any length, including length < W. `out` as
   * for allReduce.
   */
  async scatterReduce(vec: Float32Array, op: ReduceOp = 'sum', out?: Float32Array): Promise<Float32Array> {
    checkOut(vec, out);
    const round = this.beginRound();
    if (this.world === 1) return finishLocal(vec, out);
    const deadline = Date.now() + this.timeoutMs;
    const n = vec.length;
    const sends: Array<Promise<void>> = [];
    for (let j = 0; j < this.world; j++) {
      const [lo, hi] = segmentBounds(n, this.world, j);
      if (j === this.rank || hi === lo) continue;
      sends.push(this.frames.putVector(this.inKey(round, j, this.rank), vec.subarray(lo, hi)));
    }
    const [mlo, mhi] = segmentBounds(n, this.world, this.rank);
    const result = out ?? new Float32Array(n);
    // This rank's segment is reduced in place, inside the result.
    await Promise.all([
      Promise.all(sends),
      mhi > mlo ? this.reduceSegment('scatterreduce', round, this.rank, vec.subarray(mlo, mhi), op, deadline, result.subarray(mlo, mhi)) : undefined,
    ]);
    const segments: number[] = [];
    const bounds: Array<[number, number]> = [];
    for (let j = 0; j < this.world; j++) {
      const [lo, hi] = segmentBounds(n, this.world, j);
      if (j !== this.rank && hi > lo) {
        segments.push(j);
        bounds.push([lo, hi]);
      }
    }
    await this.readSegmentsInto('scatterreduce', round, result, segments, bounds, deadline);
    return result;
  }

  /**
   * Reads reduced segments `segs` of this round into `result` at `bounds`. Each frame is read in two
   * pieces where the channel can: its header into a small buffer, its payload straight into its
   * place in the result (no receive buffer, no copy out of one).
   */
  private async readSegmentsInto(pattern: CollectivePattern, round: number, result: Float32Array, segs: number[], bounds: Array<[number, number]>, deadline: number): Promise<void> {
    const heads: Array<Uint8Array | undefined> = [];
    const what = `${pattern} round ${round}`;
    await this.frames.awaitRanks(
      pattern,
      round,
      segs.map((j) => this.outKey(round, j)),
      segs,
      deadline,
      (i, bytes) => {
        const j = segs[i]!;
        const [lo, hi] = bounds[i]!;
        const where = `${what} segment ${j}`;
        if (bytes === heads[i]) {
          // Split read: the payload is already in place; check what the header says.
          const h = readFrameHeader(bytes, this.outKey(round, j));
          if (h.dtype !== 'float32' || h.payloadBytes !== (hi - lo) * 4) {
            throw new CollectiveError('COLLECTIVE_MISMATCH', `${where}: received a ${h.dtype} frame of shape [${h.shape.join(', ')}], expected ${hi - lo} float32 values`);
          }
        } else {
          result.set(checkLength(decodeFloat32(bytes, this.outKey(round, j)), hi - lo, where), lo);
        }
      },
      (i, byteLength) => {
        const [lo, hi] = bounds[i]!;
        const head = this.frames.lend(i, FRAME_HEADER);
        if (byteLength !== FRAME_HEADER + (hi - lo) * 4) return undefined;
        heads[i] = head;
        return { head, body: new Uint8Array(result.buffer, result.byteOffset + lo * 4, (hi - lo) * 4) };
      },
    );
  }

  /**
   * Ends this rank's use of the stream and removes what the last round left. Rank 0 waits (up to
   * the round timeout) for every rank's fin key, then deletes all leftovers.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.world > 1) {
        const myFin = this.finKey(this.rank);
        if (this.rank !== 0) {
          await this.channel.put(myFin, packMessage({ pending: this.pendingOutputs }));
        } else {
          const others = Array.from({ length: this.world - 1 }, (_, i) => i + 1);
          const fins = await this.frames.awaitRanks('close', this.nextRound, others.map((r) => this.finKey(r)), others, Date.now() + this.timeoutMs);
          const leftovers = [...this.pendingOutputs];
          for (const f of fins) leftovers.push(...unpackMessage<{ pending: string[] }>(f).pending);
          await this.channel.delete([...leftovers, ...others.map((r) => this.finKey(r))]);
        }
        this.pendingOutputs = [];
      }
    } finally {
      await Promise.allSettled([...this.background]);
    }
    if (this.backgroundError) throw this.backgroundError;
  }

  /** Publishes this rank's vector and reduces everyone's locally, in rank order. */
  private async gatherReduce(round: number, vec: Float32Array, op: ReduceOp, deadline: number, out: Float32Array | undefined): Promise<Float32Array> {
    const mine = this.inKey(round, 0, this.rank);
    const { reducer, lend } = this.reducerFor(vec.length, op, `allreduce round ${round}`, out);
    reducer.offer(this.rank, vec);
    await Promise.all([this.frames.putVector(mine, vec), this.collect('allreduce', round, 0, reducer, deadline, lend)]);
    // Every rank has entered this round, so everything this rank published before has been read;
    // this round's contribution has W-1 readers and waits for the same proof next time.
    this.retirePendingAndKeep([mine]);
    return reducer.result();
  }

  /**
   * A reducer of `n`-float vectors, and the receive buffers to lend for their frames: slots of this
   * communicator's SIMD arena when the reducer sums with SIMD (values are summed where they land),
   * else the reused pool.
   */
  private reducerFor(n: number, op: ReduceOp, what: string, into: Float32Array | undefined): { reducer: OrderedReducer; lend: (index: number, byteLength: number) => Uint8Array } {
    const frame = frameBytes('float32', n);
    if (!simdAvailable || this.world === 1 || n < SIMD_MIN_FLOATS || !arenaFits(n, this.world - 1, frame)) {
      return { reducer: new OrderedReducer(this.world, n, op, what, into, false), lend: this.frames.lend };
    }
    const arena = (this.arena ??= new SimdArena());
    arena.reserve(n, this.world - 1, frame);
    return {
      reducer: new OrderedReducer(this.world, n, op, what, into, arena),
      lend: (index, byteLength) => (byteLength === frame ? arena.slot(index) : this.frames.lend(index, byteLength)),
    };
  }

  /**
   * Waits for every other rank's contribution to segment `seg` and offers each to `reducer` as it
   * lands (read into `lend`'s buffers: they are consumed at once). Returns the contributions' keys.
   */
  private async collect(
    pattern: string,
    round: number,
    seg: number,
    reducer: OrderedReducer,
    deadline: number,
    lend: (index: number, byteLength: number) => Uint8Array,
  ): Promise<string[]> {
    const sources = Array.from({ length: this.world }, (_, r) => r).filter((r) => r !== this.rank);
    const keys = sources.map((r) => this.inKey(round, seg, r));
    let firstError: unknown;
    await this.frames.awaitRanks(
      pattern,
      round,
      keys,
      sources,
      deadline,
      (i, bytes) => {
        try {
          reducer.offer(sources[i]!, decodeFloat32(bytes, keys[i]!));
        } catch (e) {
          firstError ??= e;
        }
      },
      lend,
    );
    if (firstError) throw firstError;
    return keys;
  }

  /** Deletes (in the background) the outputs proven read, then remembers `published` as pending. */
  private retirePendingAndKeep(published: string[], alsoDelete: string[] = []): void {
    const doomed = [...alsoDelete, ...this.pendingOutputs];
    if (doomed.length > 0) this.inBackground(this.channel.delete(doomed));
    this.pendingOutputs = published;
  }

  /**
   * Waits for contributions to segment `seg`, reduces them in rank order into `acc`, publishes
   * the result: `frame` when acc is already its payload, else a pooled encoding of acc.
   */
  private async reduceSegment(
    pattern: CollectivePattern,
    round: number,
    seg: number,
    own: Float32Array,
    op: ReduceOp,
    deadline: number,
    acc: Float32Array,
    frame?: Uint8Array,
  ): Promise<void> {
    const { reducer, lend } = this.reducerFor(acc.length, op, `${pattern} round ${round} segment ${seg}`, acc);
    reducer.offer(this.rank, own);
    const keys = await this.collect(pattern, round, seg, reducer, deadline, lend);
    // Every rank has now entered this round, so all earlier outputs have been read; the
    // contributions had one reader, this rank.
    reducer.result();
    const outKey = this.outKey(round, seg);
    try {
      // The other ranks wait for this output: send it before the deletes, which can wait.
      if (frame) await this.channel.put(outKey, frame);
      else await this.frames.putVector(outKey, acc);
    } finally {
      this.retirePendingAndKeep([outKey], keys);
    }
  }

  private beginRound(): number {
    if (this.closed) throw new CollectiveError('COLLECTIVE_ARGUMENT', `communicator for job ${this.jobId} stream ${this.stream} is closed`);
    if (this.backgroundError) throw this.backgroundError;
    return this.nextRound++;
  }

  private inBackground(p: Promise<void>): void {
    const tracked = p.catch((e) => {
      this.backgroundError ??= e;
    });
    this.background.add(tracked);
    void tracked.finally(() => this.background.delete(tracked));
  }

  private inKey(round: number, seg: number, source: number): string {
    return jobKey(this.jobId, 'coll', this.stream, round, 'in', seg, source);
  }
  private outKey(round: number, seg: number): string {
    return jobKey(this.jobId, 'coll', this.stream, round, 'out', seg);
  }
  private finKey(rank: number): string {
    return jobKey(this.jobId, 'coll', this.stream, 'fin', rank);
  }
}
