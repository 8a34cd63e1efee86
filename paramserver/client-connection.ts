/**
 * The transport under ParamClient: one TCP connection to a parameter server carrying many requests
 * at once, matched to replies by request id (WAIT replies may overtake or trail other requests),
 * with a deadline per request, the optional HMAC handshake, and close. The typed ops are in client.ts.
 */
import net from 'node:net';
import { clientProof, decodeHelloReply, encodeAuth, freshNonce, sameMac, serverProof } from './auth.js';
import { PsError, type PsErrorCode } from './errors.js';
import { decodeText } from './payload.js';
import { FrameDecoder, Op, Status, opName, statusName, writeFrame } from './protocol.js';

export interface ParamConnectionOptions {
  /** Connect deadline and default per-request timeout, in ms (default 10 s). */
  timeoutMs?: number;
  /** Extra time a WAIT request is given beyond its own wait timeout (default: timeoutMs). */
  waitMarginMs?: number;
  /** Largest reply frame accepted (default 1 GiB). */
  maxFrameBytes?: number;
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

export const DEFAULT_TIMEOUT_MS = 10_000;
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

/**
 * Opens a TCP connection and hands the connected socket to `make` (in the 'connect' event, before
 * any data can arrive); rejects with PsError('PS_UNREACHABLE') naming the address on failure or
 * after `timeoutMs`.
 */
export async function dial<T>(address: string, timeoutMs: number, make: (socket: net.Socket) => T): Promise<T> {
  const { host, port } = parseAddress(address);
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
      resolve(make(socket));
    });
  });
}

export class ParamConnection {
  readonly address: string;
  protected readonly timeoutMs: number;
  protected readonly waitMarginMs: number;
  private readonly socket: net.Socket;
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Set once the connection is unusable; every later request rejects with it. */
  private failure: PsError | undefined;
  /** A cork is open until the next tick (see corkUntilNextTick). */
  private corked = false;
  private socketError: Error | undefined;
  private closing = false;
  private readonly closedPromise: Promise<void>;

  protected constructor(address: string, socket: net.Socket, opts: ParamConnectionOptions) {
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
   * reject). The typed methods build on it; new opcodes can be tried with it directly.
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

  /** HELLO then AUTH; checks the server's proof too, so a server that lacks the token is caught. */
  protected async authenticate(token: string): Promise<void> {
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

  /** The payload of an OK reply; any other status throws the PsError it maps to, naming `what`. */
  protected expectOk(reply: Reply, what: string): Uint8Array {
    if (reply.status === Status.OK) return reply.payload;
    const code = STATUS_ERRORS[reply.status] ?? 'PS_INTERNAL';
    const text = decodeText(reply.payload);
    throw new PsError(code, `${what} on parameter server at ${this.address} failed: ${statusName(reply.status)}${text ? `: ${text}` : ''}`, {
      detail: text || statusName(reply.status),
    });
  }

  /** Runs a reply decoder; a malformed reply becomes PS_PROTOCOL. */
  protected decodeReply<T>(decode: () => T): T {
    try {
      return decode();
    } catch (err) {
      throw new PsError('PS_PROTOCOL', `malformed reply from parameter server at ${this.address}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
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
}

function label(opcode: number): string {
  return opName(opcode) ?? `opcode ${opcode}`;
}
