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
import { decodeFloat32, encodeTensor, frameBytes } from './codec.js';
import { CollectiveError, CollectiveTimeoutError, WaitTimeoutError } from './errors.js';
import { jobKey } from './keys.js';
import { packMessage, unpackMessage } from './messages.js';
import { OrderedReducer, type ReduceOp } from './reduce.js';

export type CollectivePattern = 'allreduce' | 'scatterreduce';
export type AllReduceAlgorithm = 'auto' | 'leader' | 'gather';

/** 'auto' gathers when each rank would read at most this many bytes of contributions. */
export const GATHER_MAX_BYTES = 64 * 1024;

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
  /** Frame buffers reused across rounds: large allocations make V8 run full GCs. */
  private readonly framePool = new Map<number, Uint8Array[]>();
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
    jobKey(jobId, 'coll', this.stream); // validates the id and stream name early
  }

  /** The round the next collective call will use. */
  get round(): number {
    return this.nextRound;
  }

  /**
   * Every rank gets the element-wise sum (or mean) of all ranks' vectors. Rank 0 reduces and
   * publishes, or every rank gathers all contributions when the vector is small (see
   * allReduceAlgorithm). Results are bit-identical either way.
   */
  async allReduce(vec: Float32Array, op: ReduceOp = 'sum', algorithm: AllReduceAlgorithm = this.allReduceAlgorithm): Promise<Float32Array> {
    const round = this.beginRound();
    if (this.world === 1) return finishLocal(vec);
    const deadline = Date.now() + this.timeoutMs;
    const what = `allreduce round ${round}`;
    const gather = algorithm === 'gather' || (algorithm === 'auto' && vec.byteLength * (this.world - 1) <= GATHER_MAX_BYTES);
    if (gather) return this.gatherReduce(round, vec, op, deadline);
    if (this.rank !== 0) {
      await this.putVector(this.inKey(round, 0, this.rank), vec);
      const out = await this.awaitRanks('allreduce', round, [this.outKey(round, 0)], [0], deadline);
      return checkLength(decodeFloat32(out[0]!, this.outKey(round, 0)), vec.length, what);
    }
    return this.reduceSegment('allreduce', round, 0, vec, op, deadline);
  }

  /**
   * Every rank gets the element-wise sum (or mean); rank j reduces segment j of W, so the work and
   * the traffic are spread over all ranks. Works for any length, including length < W.
   */
  async scatterReduce(vec: Float32Array, op: ReduceOp = 'sum'): Promise<Float32Array> {
    const round = this.beginRound();
    if (this.world === 1) return finishLocal(vec);
    const deadline = Date.now() + this.timeoutMs;
    const n = vec.length;
    const sends: Array<Promise<void>> = [];
    for (let j = 0; j < this.world; j++) {
      const [lo, hi] = segmentBounds(n, this.world, j);
      if (j === this.rank || hi === lo) continue;
      sends.push(this.putVector(this.inKey(round, j, this.rank), vec.subarray(lo, hi)));
    }
    const [mlo, mhi] = segmentBounds(n, this.world, this.rank);
    const [, own] = await Promise.all([
      Promise.all(sends),
      mhi > mlo ? this.reduceSegment('scatterreduce', round, this.rank, vec.subarray(mlo, mhi), op, deadline) : Promise.resolve(undefined),
    ]);
    const result = new Float32Array(n);
    if (own) result.set(own, mlo);
    const segments: number[] = [];
    for (let j = 0; j < this.world; j++) {
      const [lo, hi] = segmentBounds(n, this.world, j);
      if (j !== this.rank && hi > lo) segments.push(j);
    }
    await this.awaitRanks(
      'scatterreduce',
      round,
      segments.map((j) => this.outKey(round, j)),
      segments,
      deadline,
      (i, bytes) => {
        const j = segments[i]!;
        const [lo, hi] = segmentBounds(n, this.world, j);
        result.set(checkLength(decodeFloat32(bytes, this.outKey(round, j)), hi - lo, `scatterreduce round ${round} segment ${j}`), lo);
      },
    );
    return result;
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
          const fins = await this.awaitRanks('close', this.nextRound, others.map((r) => this.finKey(r)), others, Date.now() + this.timeoutMs);
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
  private async gatherReduce(round: number, vec: Float32Array, op: ReduceOp, deadline: number): Promise<Float32Array> {
    const what = `allreduce round ${round}`;
    const mine = this.inKey(round, 0, this.rank);
    const reducer = new OrderedReducer(this.world, vec.length, what);
    const sources = Array.from({ length: this.world }, (_, r) => r).filter((r) => r !== this.rank);
    const keys = sources.map((r) => this.inKey(round, 0, r));
    let firstError: unknown;
    reducer.offer(this.rank, vec);
    await Promise.all([
      this.putVector(mine, vec),
      this.awaitRanks('allreduce', round, keys, sources, deadline, (i, bytes) => {
        try {
          reducer.offer(sources[i]!, decodeFloat32(bytes, keys[i]!));
        } catch (e) {
          firstError ??= e;
        }
      }),
    ]);
    if (firstError) throw firstError;
    // Every rank has entered this round, so everything this rank published before has been read;
    // this round's contribution has W-1 readers and waits for the same proof next time.
    this.retirePendingAndKeep([mine]);
    return reducer.result(op);
  }

  /** Deletes (in the background) the outputs proven read, then remembers `published` as pending. */
  private retirePendingAndKeep(published: string[], alsoDelete: string[] = []): void {
    const doomed = [...alsoDelete, ...this.pendingOutputs];
    if (doomed.length > 0) this.inBackground(this.channel.delete(doomed));
    this.pendingOutputs = published;
  }

  /** Waits for contributions to segment `seg`, reduces them in rank order, publishes the result. */
  private async reduceSegment(pattern: CollectivePattern, round: number, seg: number, own: Float32Array, op: ReduceOp, deadline: number): Promise<Float32Array> {
    const what = `${pattern} round ${round} segment ${seg}`;
    const reducer = new OrderedReducer(this.world, own.length, what);
    const sources = Array.from({ length: this.world }, (_, r) => r).filter((r) => r !== this.rank);
    const keys = sources.map((r) => this.inKey(round, seg, r));
    let firstError: unknown;
    reducer.offer(this.rank, own);
    await this.awaitRanks(pattern, round, keys, sources, deadline, (i, bytes) => {
      try {
        reducer.offer(sources[i]!, decodeFloat32(bytes, keys[i]!));
      } catch (e) {
        firstError ??= e;
      }
    });
    if (firstError) throw firstError;
    // Every rank has now entered this round, so all earlier outputs have been read; the
    // contributions had one reader, this rank.
    const result = reducer.result(op);
    const outKey = this.outKey(round, seg);
    this.retirePendingAndKeep([], keys);
    await this.putVector(outKey, result);
    this.pendingOutputs = [outKey];
    return result;
  }

  /** Encodes into a pooled buffer; a channel no longer needs the bytes once put() resolves. */
  private async putVector(key: string, vec: Float32Array): Promise<void> {
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
  private async awaitRanks(
    pattern: string,
    round: number,
    keys: string[],
    ranks: number[],
    deadline: number,
    onValue?: (index: number, value: Uint8Array) => void,
  ): Promise<Uint8Array[]> {
    const started = Date.now();
    try {
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

/** With one rank the sum and the mean are the vector itself; a copy, so callers may mutate either. */
function finishLocal(vec: Float32Array): Float32Array {
  return vec.slice();
}

function checkLength(v: Float32Array, expected: number, what: string): Float32Array {
  if (v.length !== expected) throw new CollectiveError('COLLECTIVE_MISMATCH', `${what}: received ${v.length} floats, expected ${expected}`);
  return v;
}
