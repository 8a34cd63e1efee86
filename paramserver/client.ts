/**
 * Client of the parameter server: the typed ops (key-value, models, registrations, administration)
 * over one ParamConnection (client-connection.ts), which carries many requests at once.
 */
import { ParamConnection, type ParamConnectionOptions, DEFAULT_TIMEOUT_MS, dial } from './client-connection.js';
import type { ModelConfig } from './model-config.js';
import { decodeFlag, decodePullReply, encodeCreateModel, encodePull, encodePush, encodeRegistration } from './model-wire.js';
import { decodeKeyList, decodeText, decodeU32, encodeKey, encodeKeyList, encodeWait } from './payload.js';
import { Op, Status } from './protocol.js';
import type { ParamServerStats } from './server-types.js';
import type { Gradient } from './sync.js';

export { parseAddress, type Reply } from './client-connection.js';

export interface ParamClientOptions extends ParamConnectionOptions {
  /**
   * Shared secret of the server. When set, connect() runs the HMAC handshake (the token itself is
   * never sent) and also checks the server's proof, so it fails against a server without the token.
   */
  token?: string;
}

/** One push: the worker's rank and clock, and a dense or (with indices) sparse gradient. */
export interface PushGradient {
  rank: number;
  clock: number;
  indices?: Uint32Array;
  values: Float32Array;
}

/** Options of the pulls: wait until the model clock reaches minClock, for at most timeoutMs. */
export interface PullOptions {
  /** Default 0: answer at once. */
  minClock?: number;
  /** How long the server may park the pull (default: the client's timeoutMs). */
  timeoutMs?: number;
}

export class ParamClient extends ParamConnection {
  /**
   * Opens a connection; rejects with PsError('PS_UNREACHABLE') naming the address on failure or
   * deadline. With opts.token, authenticates before resolving (PS_UNAUTHORIZED on failure).
   */
  static async connect(address: string, opts: ParamClientOptions = {}): Promise<ParamClient> {
    const client = await dial(address, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, (socket) => new ParamClient(address, socket, opts));
    if (opts.token === undefined) return client;
    try {
      await client.authenticate(opts.token);
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  async ping(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.expectOk(await this.call(Op.PING, [], opts.timeoutMs), 'PING');
  }

  /** Stores `value`. The bytes go to the socket as they are (no copy), so do not modify them until this resolves. */
  async set(key: string, value: Uint8Array): Promise<void> {
    this.expectOk(await this.call(Op.SET, [encodeKey(key), value]), `SET '${key}'`);
  }

  /** The value (a view into the reply's own buffer, 8-byte aligned), or undefined if absent. */
  async get(key: string): Promise<Uint8Array | undefined> {
    const reply = await this.call(Op.GET, [encodeKey(key)]);
    if (reply.status === Status.NOT_FOUND) return undefined;
    return this.expectOk(reply, `GET '${key}'`);
  }

  /** Deletes keys; resolves with how many existed. */
  async del(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const payload = this.expectOk(await this.call(Op.DEL, [encodeKeyList(keys)]), `DEL of ${keys.length} keys`);
    return this.decodeReply(() => decodeU32(payload, 'DEL reply'));
  }

  /** Resolves with the value as soon as the key is set, or undefined after `timeoutMs`. */
  async wait(key: string, timeoutMs: number): Promise<Uint8Array | undefined> {
    const reply = await this.call(Op.WAIT, [encodeWait(key, timeoutMs)], Math.max(0, timeoutMs) + this.waitMarginMs);
    if (reply.status === Status.TIMEOUT) return undefined;
    return this.expectOk(reply, `WAIT '${key}'`);
  }

  /** Keys starting with `prefix`, sorted. */
  async list(prefix: string): Promise<string[]> {
    const payload = this.expectOk(await this.call(Op.LIST, [encodeKey(prefix, true)]), `LIST '${prefix}'`);
    return this.decodeReply(() => decodeKeyList(payload, 'LIST reply'));
  }

  async stats(): Promise<ParamServerStats> {
    const payload = this.expectOk(await this.call(Op.STATS), 'STATS');
    return this.decodeReply(() => JSON.parse(decodeText(payload)) as ParamServerStats);
  }

  /**
   * Creates model `name`, or joins it when it exists with an identical config (so every worker may
   * call this). Resolves true if this call created it. A different config rejects with PS_CONFLICT.
   */
  async createModel(name: string, config: ModelConfig, init?: Float32Array): Promise<boolean> {
    const payload = this.expectOk(await this.call(Op.CREATE_MODEL, encodeCreateModel(name, config, init)), `CREATE_MODEL '${name}'`);
    return this.decodeReply(() => decodeFlag(payload, 'CREATE_MODEL reply'));
  }

  /**
   * Pushes a gradient: sparse when `indices` is given (values[k] is the gradient of weight
   * indices[k]), otherwise dense (one value per weight). Resolves with the model clock afterwards.
   * The arrays go to the socket without a copy: leave them unchanged until this resolves. Send
   * sparse indices in increasing order: the server then skips its duplicate check.
   */
  async push(name: string, g: PushGradient): Promise<number> {
    const grad: Gradient = g.indices ? { kind: 'sparse', indices: g.indices, values: g.values } : { kind: 'dense', values: g.values };
    const payload = this.expectOk(await this.call(Op.PUSH, encodePush(name, g.rank, g.clock, grad)), `PUSH to '${name}'`);
    return this.decodeReply(() => decodeU32(payload, 'PUSH reply'));
  }

  /**
   * Weights at `indices`, in request order, once the model clock is at least opts.minClock.
   * Rejects with PS_TIMEOUT if it does not get there within opts.timeoutMs.
   */
  async pullSparse(name: string, indices: Uint32Array, opts: PullOptions = {}): Promise<{ clock: number; values: Float32Array }> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const reply = await this.call(Op.PULL_SPARSE, encodePull(name, opts.minClock ?? 0, timeoutMs, indices), timeoutMs + this.waitMarginMs);
    const payload = this.expectOk(reply, `PULL_SPARSE from '${name}'`);
    return this.decodeReply(() => decodePullReply(payload, indices.length));
  }

  /** All weights (a view into the reply buffer), once the model clock is at least opts.minClock. */
  async pullFull(name: string, opts: PullOptions = {}): Promise<{ clock: number; values: Float32Array }> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const reply = await this.call(Op.PULL_FULL, encodePull(name, opts.minClock ?? 0, timeoutMs), timeoutMs + this.waitMarginMs);
    const payload = this.expectOk(reply, `PULL_FULL from '${name}'`);
    return this.decodeReply(() => decodePullReply(payload, undefined));
  }

  /** Drops a model; resolves with whether it existed. Pulls parked on it reject with PS_NOT_FOUND. */
  async dropModel(name: string): Promise<boolean> {
    const payload = this.expectOk(await this.call(Op.DROP_MODEL, [encodeKey(name)]), `DROP_MODEL '${name}'`);
    return this.decodeReply(() => decodeFlag(payload, 'DROP_MODEL reply'));
  }

  /** Registers a worker; PS_CONFLICT if this (task, rank, generation) was ever registered before. */
  async register(task: string, rank: number, generation: number): Promise<void> {
    this.expectOk(await this.call(Op.REGISTER, encodeRegistration(task, rank, generation)), `REGISTER '${task}' rank ${rank} generation ${generation}`);
  }

  /** Marks a registration ended (it still blocks re-registration); resolves with whether it was live. */
  async deregister(task: string, rank: number, generation: number): Promise<boolean> {
    const payload = this.expectOk(await this.call(Op.DEREGISTER, encodeRegistration(task, rank, generation)), `DEREGISTER '${task}' rank ${rank} generation ${generation}`);
    return this.decodeReply(() => decodeFlag(payload, 'DEREGISTER reply'));
  }

  /** Drops every registration of a task (frees memory; the triples may register again). Resolves with how many. */
  async forgetTask(task: string): Promise<number> {
    const payload = this.expectOk(await this.call(Op.FORGET_TASK, [encodeKey(task)]), `FORGET_TASK '${task}'`);
    return this.decodeReply(() => decodeU32(payload, 'FORGET_TASK reply'));
  }

  /** Saves a snapshot of every model; resolves with the snapshot id. */
  async snapshot(opts: { timeoutMs?: number } = {}): Promise<string> {
    return decodeText(this.expectOk(await this.call(Op.SNAPSHOT, [], opts.timeoutMs), 'SNAPSHOT'));
  }

  /** Snapshots (when the server has a store) and stops the server; resolves with the snapshot id ('' without a store). */
  async shutdown(opts: { timeoutMs?: number } = {}): Promise<string> {
    return decodeText(this.expectOk(await this.call(Op.SHUTDOWN, [], opts.timeoutMs), 'SHUTDOWN'));
  }
}
