/**
 * Client-side sharding of models by index range over N parameter servers.
 *
 * Split rule: a model of size S over N shards gives shard i the global indices
 * [floor(i*S/N), floor((i+1)*S/N)) -- contiguous, in shard order, lengths differing by at most one.
 * Shard i holds that slice as a model of its own (same name, optimizer and sync config, size = the
 * range length), so local index = global index - offset. Optimizers are per coordinate, so the
 * sharded model evolves exactly (bit for bit) like one unsharded model for the same pushes.
 *
 * Clocks: in ssp and bsp every push goes to every shard (an empty sparse push where a shard has no
 * indices), so all shards' clocks advance together; in async a shard with no indices is skipped
 * (nothing waits on async clocks). A clock returned from a push or pull is the minimum over the
 * shards involved: the model is at least that far along everywhere.
 */
import { PsError } from './errors.js';
import { ParamClient, type ParamClientOptions, type PullOptions, type PushGradient } from './client.js';
import type { ModelConfig } from './model-config.js';

/** The global index range each of `shards` shards holds of a model of `size`. */
export function shardRanges(size: number, shards: number): { start: number; end: number }[] {
  return Array.from({ length: shards }, (_, i) => ({ start: Math.floor((i * size) / shards), end: Math.floor(((i + 1) * size) / shards) }));
}

/** The shard holding global index `index` (0 <= index < size) under the split rule above. */
export function shardOf(index: number, size: number, shards: number): number {
  // start_i <= g  <=>  i*S < (g+1)*N, so the owner is the largest such i. Exact in doubles below 2^53.
  return Math.floor(((index + 1) * shards - 1) / size);
}

interface Layout {
  size: number;
  config: ModelConfig;
  ranges: { start: number; end: number }[];
}

export class ShardedParamClient {
  /** One connection per shard, in shard order. */
  readonly clients: readonly ParamClient[];
  private readonly layouts = new Map<string, Layout>();

  constructor(clients: readonly ParamClient[]) {
    if (clients.length === 0) throw new PsError('PS_ARGUMENT', 'a sharded client needs at least one shard');
    this.clients = clients;
  }

  /** Connects to every shard server (same options for each); closes the ones opened if any fails. */
  static async connect(addresses: readonly string[], opts: ParamClientOptions = {}): Promise<ShardedParamClient> {
    if (addresses.length === 0) throw new PsError('PS_ARGUMENT', 'a sharded client needs at least one shard address');
    const results = await Promise.allSettled(addresses.map((a) => ParamClient.connect(a, opts)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
      throw failed.reason;
    }
    return new ShardedParamClient(results.map((r) => (r as PromiseFulfilledResult<ParamClient>).value));
  }

  get shards(): number {
    return this.clients.length;
  }

  /**
   * Creates (or joins, as ParamClient.createModel does) the model's slice on every shard. Resolves
   * true if every shard's slice was created by this call. Also how a worker learns the layout: the
   * other methods need createModel to have run on this client for the model.
   */
  async createModel(name: string, config: ModelConfig, init?: Float32Array): Promise<boolean> {
    const size = config.size;
    if (!Number.isSafeInteger(size) || size < this.shards) {
      throw new PsError('PS_ARGUMENT', `model '${name}' of size ${size} cannot be split over ${this.shards} shards (each needs at least one weight)`);
    }
    if (init !== undefined && init.length !== size) throw new PsError('PS_ARGUMENT', `initial weights of model '${name}' have ${init.length} values, the model size is ${size}`);
    const ranges = shardRanges(size, this.shards);
    const created = await Promise.all(
      this.clients.map((c, i) => {
        const { start, end } = ranges[i]!;
        return c.createModel(name, { ...config, size: end - start }, init?.subarray(start, end));
      }),
    );
    this.layouts.set(name, { size, config, ranges });
    return created.every(Boolean);
  }

  /**
   * Pushes a gradient: dense (values.length = size) is sliced per shard without copying; sparse is
   * routed by index, keeping each shard's entries in push order (duplicates stay on one shard and
   * are summed there, as on one server). Resolves with the minimum clock the shards report.
   */
  async push(name: string, g: PushGradient): Promise<number> {
    const layout = this.layout(name);
    if (g.indices === undefined) {
      if (g.values.length !== layout.size) throw new PsError('PS_ARGUMENT', `dense gradient for model '${name}' has ${g.values.length} values, the model size is ${layout.size}`);
      const clocks = await Promise.all(this.clients.map((c, i) => c.push(name, { rank: g.rank, clock: g.clock, values: g.values.subarray(layout.ranges[i]!.start, layout.ranges[i]!.end) })));
      return Math.min(...clocks);
    }
    if (g.indices.length !== g.values.length) throw new PsError('PS_ARGUMENT', `sparse gradient for model '${name}' has ${g.indices.length} indices but ${g.values.length} values`);
    const split = this.split(name, layout, g.indices);
    const everyShard = layout.config.sync.mode !== 'async';
    const pushes: Promise<number>[] = [];
    for (let s = 0; s < this.shards; s++) {
      const part = split[s]!;
      if (part.local.length === 0 && !everyShard) continue;
      const values = new Float32Array(part.local.length);
      for (let k = 0; k < part.positions.length; k++) values[k] = g.values[part.positions[k]!]!;
      pushes.push(this.clients[s]!.push(name, { rank: g.rank, clock: g.clock, indices: part.local, values }));
    }
    // An async push with no indices at all still reaches shard 0, so it is never silently dropped.
    if (pushes.length === 0) pushes.push(this.clients[0]!.push(name, { rank: g.rank, clock: g.clock, indices: new Uint32Array(0), values: new Float32Array(0) }));
    return Math.min(...(await Promise.all(pushes)));
  }

  /** Weights at global `indices`, in request order; one concurrent request per shard involved. */
  async pullSparse(name: string, indices: Uint32Array, opts: PullOptions = {}): Promise<{ clock: number; values: Float32Array }> {
    const layout = this.layout(name);
    const split = this.split(name, layout, indices);
    const values = new Float32Array(indices.length);
    // A pull that waits for a clock (or asks for nothing) goes to every shard, so its clock covers them all.
    const all = opts.minClock !== undefined || indices.length === 0;
    const involved = split.map((p, s) => ({ ...p, s })).filter((p) => all || p.local.length > 0);
    const replies = await Promise.all(involved.map((p) => this.clients[p.s]!.pullSparse(name, p.local, opts)));
    let clock = Infinity;
    for (let j = 0; j < involved.length; j++) {
      const { positions } = involved[j]!;
      const reply = replies[j]!;
      clock = Math.min(clock, reply.clock);
      for (let k = 0; k < positions.length; k++) values[positions[k]!] = reply.values[k]!;
    }
    return { clock, values };
  }

  /** The whole model, concatenated in shard order. */
  async pullFull(name: string, opts: PullOptions = {}): Promise<{ clock: number; values: Float32Array }> {
    const layout = this.layout(name);
    const replies = await Promise.all(this.clients.map((c) => c.pullFull(name, opts)));
    const values = new Float32Array(layout.size);
    let clock = Infinity;
    replies.forEach((r, i) => {
      const { start, end } = layout.ranges[i]!;
      if (r.values.length !== end - start) {
        throw new PsError('PS_PROTOCOL', `shard ${i} (${this.clients[i]!.address}) returned ${r.values.length} weights of model '${name}', its range [${start}, ${end}) has ${end - start}`);
      }
      values.set(r.values, start);
      clock = Math.min(clock, r.clock);
    });
    return { clock, values };
  }

  /** Drops the model on every shard; resolves with whether any shard had it. */
  async dropModel(name: string): Promise<boolean> {
    const existed = await Promise.all(this.clients.map((c) => c.dropModel(name)));
    this.layouts.delete(name);
    return existed.some(Boolean);
  }

  async ping(opts: { timeoutMs?: number } = {}): Promise<void> {
    await Promise.all(this.clients.map((c) => c.ping(opts)));
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.close()));
  }

  private layout(name: string): Layout {
    const layout = this.layouts.get(name);
    if (!layout) throw new PsError('PS_ARGUMENT', `model '${name}' is unknown to this sharded client: call createModel first (it joins an existing model)`);
    return layout;
  }

  /** Per shard: local indices and the positions they came from in `indices`, in request order. */
  private split(name: string, layout: Layout, indices: Uint32Array): { local: Uint32Array; positions: Uint32Array }[] {
    const n = this.shards;
    const owner = new Uint32Array(indices.length);
    const counts = new Uint32Array(n);
    for (let k = 0; k < indices.length; k++) {
      const g = indices[k]!;
      if (g >= layout.size) throw new PsError('PS_RANGE', `index ${g} at position ${k} is out of range for model '${name}' of size ${layout.size}`);
      const s = shardOf(g, layout.size, n);
      owner[k] = s;
      counts[s]!++;
    }
    const parts = Array.from(counts, (c) => ({ local: new Uint32Array(c), positions: new Uint32Array(c) }));
    const filled = new Uint32Array(n);
    for (let k = 0; k < indices.length; k++) {
      const s = owner[k]!;
      const at = filled[s]!++;
      parts[s]!.local[at] = indices[k]! - layout.ranges[s]!.start;
      parts[s]!.positions[at] = k;
    }
    return parts;
  }
}
