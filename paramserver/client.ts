/**
 * Client of the parameter server: one TCP connection carrying many requests at once, matched to
 * replies by request id (WAIT replies may overtake or trail other requests).
 */
import net from 'node:net';
import { clientProof, decodeHelloReply, encodeAuth, freshNonce, sameMac, serverProof } from './auth.js';
import { PsError, type PsErrorCode } from './errors.js';
import type { ModelConfig } from './model-config.js';
import type { Gradient } from './sync.js';
import {
  decodeFlag,
  decodePullReply,
  encodeCreateModel,
  encodePull,
  encodePush,
  encodeRegistration,
} from './model-wire.js';
import { FrameDecoder, Op, Status, opName, statusName, writeFrame } from './protocol.js';
import { decodeKeyList, decodeText, decodeU32, encodeKey, encodeKeyList, encodeWait } from './payload.js';
import type { ParamServerStats } from './server.js';

export interface ParamClientOptions {
  /** Connect deadline and default per-request timeout, in ms (default 10 s). */
  timeoutMs?: number;
  /** Extra time a WAIT request is given beyond its own wait timeout (default: timeoutMs). */
  waitMarginMs?: number;
  /** Largest reply frame accepted (default 1 GiB). */
  maxFrameBytes?: number;
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

export interface Reply {
  status: number;
  /** View into the reply frame's own buffer; starts at byteOffset 8 (8-byte aligned). */
  payload: Uint8Array;
}

interface Pending {
  resolve(reply: Reply): void;
  reject(err: PsError): void;
  timer: NodeJS.Timeout;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_REPLY_BYTES = 1024 * 1024 * 1024;
const MAX_TIMER_MS = 0x7fffffff;
/** How long close() waits for the server to acknowledge the FIN before destroying the socket. */
const CLOSE_GRACE_MS = 1_000;

const STATUS_ERRORS: Partial<Record<number, PsErrorCode>> = {
  [Status.BAD_REQUEST]: 'PS_BAD_REQUEST',
  [Status.TOO_LARGE]: 'PS_TOO_LARGE',
  [Status.UNKNOWN_OP]: 'PS_UNKNOWN_OP',
  [Status.SHUTTING_DOWN]: 'PS_SHUTTING_DOWN',
  [Status.UNAUTHORIZED]: 'PS_UNAUTHORIZED',
  [Status.CONFLICT]: 'PS_CONFLICT',
  [Status.RANGE]: 'PS_RANGE',
  [Status.NOT_FOUND]: 'PS_NOT_FOUND',
  [Status.TIMEOUT]: 'PS_TIMEOUT',
};

/** Splits 'host:port' or '[v6]:port'. */
export function parseAddress(address: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:[\]]+):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new PsError('PS_ARGUMENT', `parameter server address '${address}' is invalid: expected 'host:port' with a port of 1-65535`);
  return { host: m[1]!, port };
}

export class ParamClient {
  readonly address: string;
  private readonly socket: net.Socket;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private readonly timeoutMs: number;
  private readonly waitMarginMs: number;
  private nextId = 1;
  /** Set once the connection is unusable; every later request rejects with it. */
  private failure: PsError | undefined;
  /** A cork is open until the next tick (see corkUntilNextTick). */
  private corked = false;
  private socketError: Error | undefined;
  private closing = false;
  private readonly closedPromise: Promise<void>;

  private constructor(address: string, socket: net.Socket, opts: ParamClientOptions) {
    this.address = address;
    this.socket = socket;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.waitMarginMs = opts.waitMarginMs ?? this.timeoutMs;
    this.decoder = new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_MAX_REPLY_BYTES, inPlace: true });
    socket.setNoDelay(true);
    this.closedPromise = new Promise((resolve) => socket.once('close', () => {
      this.onClose();
      resolve();
    }));
    socket.on('error', (err) => {
      this.socketError ??= err;
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /**
   * Opens a connection; rejects with PsError('PS_UNREACHABLE') naming the address on failure or
   * deadline. With opts.token, authenticates before resolving (PS_UNAUTHORIZED on failure).
   */
  static async connect(address: string, opts: ParamClientOptions = {}): Promise<ParamClient> {
    const client = await ParamClient.open(address, opts);
    if (opts.token === undefined) return client;
    try {
      await client.authenticate(opts.token);
    } catch (err) {
      await client.close();
      throw err;
    }
    return client;
  }

  private static async open(address: string, opts: ParamClientOptions): Promise<ParamClient> {
    const { host, port } = parseAddress(address);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const fail = (detail: string, cause?: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new PsError('PS_UNREACHABLE', `parameter server at ${address} is unreachable: ${detail}`, { cause, detail }));
      };
      const onError = (err: Error) => fail(err.message, err);
      const timer = setTimeout(() => fail(`no connection within ${timeoutMs} ms`), Math.min(timeoutMs, MAX_TIMER_MS));
      socket.once('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new ParamClient(address, socket, opts));
      });
    });
  }

  /** True once the connection can no longer carry requests. */
  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** Resolves when the socket has closed, whoever closed it. */
  whenClosed(): Promise<void> {
    return this.closedPromise;
  }

  /** Requests currently awaiting a reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends one raw request and resolves with whatever status comes back (only transport failures
   * reject). The typed methods below build on it; new opcodes can be tried with it directly.
   */
  call(opcode: number, parts: readonly Uint8Array[] = [], timeoutMs: number = this.timeoutMs): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.allocateId();
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new PsError('PS_TIMEOUT', `${label(opcode)} to parameter server at ${this.address}: no reply within ${timeoutMs} ms`));
      }, Math.min(Math.max(1, timeoutMs), MAX_TIMER_MS));
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.corkUntilNextTick();
        writeFrame(this.socket, id, opcode, parts);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(err instanceof PsError ? err : new PsError('PS_CONNECTION', `${label(opcode)} to parameter server at ${this.address}: write failed: ${String(err)}`, { cause: err }));
      }
    });
  }

  /**
   * Requests issued in the same tick (a push and the next pull, a sharded fan-out) leave in one
   * writev: on loopback each write syscall costs about as much as a small request.
   */
  private corkUntilNextTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      if (!this.socket.destroyed) this.socket.uncork();
    });
  }

  /** HELLO then AUTH; checks the server's proof too, so a server that lacks the token is caught. */
  private async authenticate(token: string): Promise<void> {
    if (token.length === 0) throw new PsError('PS_ARGUMENT', 'token must not be empty');
    const hello = await this.call(Op.HELLO);
    if (hello.status === Status.UNKNOWN_OP) throw new PsError('PS_UNAUTHORIZED', `parameter server at ${this.address} does not support authentication (HELLO is an unknown op there)`);
    const payload = this.expectOk(hello, 'HELLO');
    const { authRequired, nonce } = this.decodeReply(() => decodeHelloReply(payload));
    if (!authRequired) {
      throw new PsError('PS_UNAUTHORIZED', `parameter server at ${this.address} does not require a token, so it cannot prove it knows ours; refusing to use it with a token`);
    }
    const mine = freshNonce();
    const reply = await this.call(Op.AUTH, [encodeAuth(mine, clientProof(token, nonce, mine))]);
    const proof = this.expectOk(reply, 'AUTH');
    if (!sameMac(proof, serverProof(token, nonce, mine))) {
      throw new PsError('PS_UNAUTHORIZED', `parameter server at ${this.address} failed to prove it knows the token`);
    }
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

  /** Closes the connection; pending requests reject with PS_CONNECTION. */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.fail(new PsError('PS_CONNECTION', `connection to parameter server at ${this.address} was closed by the client`));
      this.socket.end();
      const kill = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
      void this.closedPromise.then(() => clearTimeout(kill));
    }
    return this.closedPromise;
  }

  private allocateId(): number {
    // u32 ids wrap; skipping ones still pending keeps matching unambiguous.
    do {
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    } while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    try {
      for (;;) {
        const frame = this.decoder.next();
        if (!frame) return;
        const p = this.pending.get(frame.id);
        // Replies to requests that already timed out are dropped.
        if (!p) continue;
        this.pending.delete(frame.id);
        clearTimeout(p.timer);
        p.resolve({ status: frame.code, payload: frame.payload });
      }
    } catch (err) {
      this.socketError ??= err instanceof Error ? err : new Error(String(err));
      this.socket.destroy();
    }
  }

  private onClose(): void {
    const why = this.socketError ? this.socketError.message : 'closed by the server';
    this.fail(new PsError('PS_CONNECTION', `connection to parameter server at ${this.address} lost: ${why}`, { cause: this.socketError, detail: why }));
  }

  private fail(err: PsError): void {
    this.failure ??= err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
  }

  private expectOk(reply: Reply, what: string): Uint8Array {
    if (reply.status === Status.OK) return reply.payload;
    const code = STATUS_ERRORS[reply.status] ?? 'PS_INTERNAL';
    const text = decodeText(reply.payload);
    throw new PsError(code, `${what} on parameter server at ${this.address} failed: ${statusName(reply.status)}${text ? `: ${text}` : ''}`, {
      detail: text || statusName(reply.status),
    });
  }

  private decodeReply<T>(decode: () => T): T {
    try {
      return decode();
    } catch (err) {
      throw new PsError('PS_PROTOCOL', `malformed reply from parameter server at ${this.address}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
}

function label(opcode: number): string {
  return opName(opcode) ?? `opcode ${opcode}`;
}
