/**
 * A TCP parameter server holding opaque values by key, with server-side WAIT so workers block on
 * a key instead of polling. Requests are handled synchronously as frames complete, so replies go
 * out in request order except WAIT, which replies whenever its key is set or its timer fires.
 */
import net from 'node:net';
import { FrameTooLargeError, PsError } from './errors.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  type Frame,
  FrameDecoder,
  Op,
  PayloadReader,
  PROTOCOL_VERSION,
  Status,
  type StatusCode,
  type StatusName,
  encodeKeyList,
  encodeText,
  encodeU32,
  opName,
  writeFrame,
} from './protocol.js';

export interface ParamServerOptions {
  /** Interface to bind; default 127.0.0.1 (the server has no authentication yet). */
  host?: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Largest accepted frameLength; a bigger frame gets TOO_LARGE and the connection is closed. */
  maxFrameBytes?: number;
  /** Connections with no traffic and no pending WAIT for this long are closed; 0 disables. */
  idleTimeoutMs?: number;
  /** Bound on the bytes of stored values; a SET that would pass it gets TOO_LARGE. */
  maxBytes?: number;
}

export interface ParamServerStats {
  keys: number;
  /** Sum of stored value lengths. */
  bytesHeld: number;
  maxBytes: number;
  /** Open connections. */
  connections: number;
  /** Connections accepted since start. */
  connectionsTotal: number;
  /** WAIT requests currently parked. */
  waiters: number;
  /** Requests received, by lowercase op name ('unknown' for unknown opcodes). */
  ops: Record<string, number>;
  /** Replies sent, by lowercase status name. */
  replies: Record<string, number>;
  uptimeMs: number;
}

export interface ParamServer {
  readonly host: string;
  readonly port: number;
  /** 'host:port' ('[v6]:port' for IPv6 hosts), what ParamClient.connect and PsSpec expect. */
  readonly address: string;
  stop(): Promise<void>;
  stats(): ParamServerStats;
}

const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60 * 1000;
const DEFAULT_MAX_BYTES = 4 * 1024 * 1024 * 1024;
/** setTimeout fires at once for delays above this, so longer WAITs are clamped to it. */
const MAX_TIMER_MS = 0x7fffffff;
/** How long a connection that sent an oversize frame may keep sending before it is dropped. */
const DISCARD_GRACE_MS = 10_000;
/** How long stop() lets a connection flush its last replies before destroying it. */
const STOP_GRACE_MS = 2_000;

interface Waiter {
  conn: Connection;
  id: number;
  key: string;
  timer: NodeJS.Timeout;
}

interface Connection {
  socket: net.Socket;
  decoder: FrameDecoder;
  waiters: Set<Waiter>;
  /** After an oversize frame: input is read and dropped until the peer closes or the grace ends. */
  discarding: boolean;
  /** Reading paused because replies are piling up in the socket's write buffer. */
  paused: boolean;
  closed: boolean;
  killTimer: NodeJS.Timeout | undefined;
}

export async function startParamServer(opts: ParamServerOptions = {}): Promise<ParamServer> {
  const impl = new ServerImpl(opts);
  await impl.listen(opts.host ?? '127.0.0.1', opts.port ?? 0);
  return impl;
}

class ServerImpl implements ParamServer {
  host = '';
  port = 0;
  address = '';
  private readonly server: net.Server;
  private readonly store = new Map<string, Uint8Array>();
  private readonly waitersByKey = new Map<string, Set<Waiter>>();
  private readonly conns = new Set<Connection>();
  private readonly maxFrameBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly maxBytes: number;
  private bytesHeld = 0;
  private waiterCount = 0;
  private connectionsTotal = 0;
  private readonly opCounts: Record<string, number> = {};
  private readonly replyCounts: Record<string, number> = {};
  private readonly startedAt = Date.now();
  private stopping: Promise<void> | undefined;

  constructor(opts: ParamServerOptions) {
    this.maxFrameBytes = positive(opts.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 'maxFrameBytes');
    this.idleTimeoutMs = opts.idleTimeoutMs === 0 ? 0 : positive(opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 'idleTimeoutMs');
    this.maxBytes = positive(opts.maxBytes, DEFAULT_MAX_BYTES, 'maxBytes');
    for (const name of Object.keys(Op)) this.opCounts[name.toLowerCase()] = 0;
    this.opCounts.unknown = 0;
    for (const name of Object.keys(Status)) this.replyCounts[name.toLowerCase()] = 0;
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new PsError('PS_LISTEN', `parameter server cannot listen on ${host}:${port}: ${err.message}`, { cause: err, detail: err.message }));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        // Errors after listening (e.g. EMFILE on accept) must not crash the process.
        this.server.on('error', () => {});
        const addr = this.server.address() as net.AddressInfo;
        this.host = host;
        this.port = addr.port;
        this.address = host.includes(':') ? `[${host}]:${addr.port}` : `${host}:${addr.port}`;
        resolve();
      });
    });
  }

  stats(): ParamServerStats {
    return {
      keys: this.store.size,
      bytesHeld: this.bytesHeld,
      maxBytes: this.maxBytes,
      connections: this.conns.size,
      connectionsTotal: this.connectionsTotal,
      waiters: this.waiterCount,
      ops: { ...this.opCounts },
      replies: { ...this.replyCounts },
      uptimeMs: Date.now() - this.startedAt,
    };
  }

  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const conn of this.conns) {
        // Parked WAITs get an explicit answer rather than a bare connection drop.
        for (const w of [...conn.waiters]) {
          this.removeWaiter(w);
          this.reply(conn, w.id, Status.SHUTTING_DOWN, [encodeText('parameter server is shutting down')]);
        }
        this.endConnection(conn, STOP_GRACE_MS);
      }
    });
    return this.stopping;
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const conn: Connection = {
      socket,
      decoder: new FrameDecoder({ maxFrameBytes: this.maxFrameBytes }),
      waiters: new Set(),
      discarding: false,
      paused: false,
      closed: false,
      killTimer: undefined,
    };
    this.conns.add(conn);
    this.connectionsTotal++;
    if (this.idleTimeoutMs > 0) socket.setTimeout(this.idleTimeoutMs);
    socket.on('timeout', () => {
      // A parked WAIT is activity the socket cannot see: keep the connection and re-arm.
      if (conn.waiters.size > 0) socket.setTimeout(this.idleTimeoutMs);
      else socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('drain', () => {
      if (conn.paused) {
        conn.paused = false;
        socket.resume();
      }
    });
    // 'close' always follows 'error'; cleanup happens there.
    socket.on('error', () => {});
    socket.on('close', () => this.onClose(conn));
  }

  private onData(conn: Connection, chunk: Buffer): void {
    if (conn.discarding || conn.closed) return;
    conn.decoder.push(chunk);
    try {
      for (;;) {
        const frame = conn.decoder.next();
        if (!frame) break;
        this.handle(conn, frame);
        if (conn.closed) return;
      }
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        this.reply(conn, err.requestId, Status.TOO_LARGE, [encodeText(err.message)]);
        this.startDiscarding(conn);
      } else {
        // Framing is lost (length shorter than a header): nothing can be answered reliably.
        conn.socket.destroy();
      }
    }
  }

  /**
   * After an oversize frame the stream cannot be resynchronised, but closing at once would reset
   * the connection while the client is still sending, and the TOO_LARGE reply could be lost. So:
   * send the reply and a FIN, then read and drop whatever still arrives, for a bounded time.
   */
  private startDiscarding(conn: Connection): void {
    conn.discarding = true;
    conn.decoder = new FrameDecoder({ maxFrameBytes: this.maxFrameBytes });
    if (conn.paused) {
      conn.paused = false;
      conn.socket.resume();
    }
    for (const w of [...conn.waiters]) this.removeWaiter(w);
    this.endConnection(conn, DISCARD_GRACE_MS);
  }

  private endConnection(conn: Connection, graceMs: number): void {
    conn.socket.end();
    if (conn.killTimer === undefined) conn.killTimer = setTimeout(() => conn.socket.destroy(), graceMs);
  }

  private onClose(conn: Connection): void {
    conn.closed = true;
    if (conn.killTimer !== undefined) clearTimeout(conn.killTimer);
    for (const w of [...conn.waiters]) this.removeWaiter(w);
    this.conns.delete(conn);
  }

  private handle(conn: Connection, frame: Frame): void {
    const name = opName(frame.code)?.toLowerCase() ?? 'unknown';
    this.opCounts[name]!++;
    if (frame.version !== PROTOCOL_VERSION) {
      this.fail(conn, frame.id, Status.BAD_REQUEST, `unsupported protocol version ${frame.version} (this server speaks ${PROTOCOL_VERSION})`);
      return;
    }
    if (this.stopping) {
      this.fail(conn, frame.id, Status.SHUTTING_DOWN, 'parameter server is shutting down');
      return;
    }
    try {
      this.dispatch(conn, frame);
    } catch (err) {
      if (err instanceof PsError && err.code === 'PS_BAD_REQUEST') this.fail(conn, frame.id, Status.BAD_REQUEST, `${name.toUpperCase()}: ${err.message}`);
      else this.fail(conn, frame.id, Status.INTERNAL, `${name.toUpperCase()}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private dispatch(conn: Connection, { id, code, payload }: Frame): void {
    const r = new PayloadReader(payload);
    switch (code) {
      case Op.PING:
        this.reply(conn, id, Status.OK, [payload]);
        return;
      case Op.SET: {
        const key = r.key();
        const value = r.rest();
        const old = this.store.get(key);
        const held = this.bytesHeld - (old?.byteLength ?? 0) + value.byteLength;
        if (held > this.maxBytes) {
          this.fail(conn, id, Status.TOO_LARGE, `SET '${key}': ${value.byteLength} bytes would bring the store to ${held} bytes, over its bound of ${this.maxBytes}`);
          return;
        }
        // The value is a view into its frame's own buffer, so storing it copies nothing.
        this.store.set(key, value);
        this.bytesHeld = held;
        this.reply(conn, id, Status.OK, []);
        this.wake(key, value);
        return;
      }
      case Op.GET: {
        const key = r.key();
        r.end('GET');
        const value = this.store.get(key);
        if (value) this.reply(conn, id, Status.OK, [value]);
        else this.reply(conn, id, Status.NOT_FOUND, []);
        return;
      }
      case Op.DEL: {
        const count = r.u32('key count');
        const keys: string[] = [];
        for (let i = 0; i < count; i++) keys.push(r.key(`key ${i}`));
        r.end('DEL');
        let deleted = 0;
        for (const key of keys) {
          const old = this.store.get(key);
          if (old === undefined) continue;
          this.store.delete(key);
          this.bytesHeld -= old.byteLength;
          deleted++;
        }
        this.reply(conn, id, Status.OK, [encodeU32(deleted)]);
        return;
      }
      case Op.WAIT: {
        const timeoutMs = r.u32('timeoutMs');
        const key = r.key();
        r.end('WAIT');
        const value = this.store.get(key);
        if (value) this.reply(conn, id, Status.OK, [value]);
        else if (timeoutMs === 0) this.reply(conn, id, Status.TIMEOUT, []);
        else this.park(conn, id, key, timeoutMs);
        return;
      }
      case Op.STATS:
        r.end('STATS');
        this.reply(conn, id, Status.OK, [encodeText(JSON.stringify(this.stats()))]);
        return;
      case Op.LIST: {
        const prefix = r.key('prefix', true);
        r.end('LIST');
        const keys = [...this.store.keys()].filter((k) => k.startsWith(prefix)).sort();
        this.reply(conn, id, Status.OK, [encodeKeyList(keys)]);
        return;
      }
      default:
        this.fail(conn, id, Status.UNKNOWN_OP, `unknown opcode ${code}`);
    }
  }

  private park(conn: Connection, id: number, key: string, timeoutMs: number): void {
    const w: Waiter = {
      conn,
      id,
      key,
      timer: setTimeout(() => {
        this.removeWaiter(w);
        this.reply(conn, id, Status.TIMEOUT, []);
      }, Math.min(timeoutMs, MAX_TIMER_MS)),
    };
    let set = this.waitersByKey.get(key);
    if (!set) this.waitersByKey.set(key, (set = new Set()));
    set.add(w);
    conn.waiters.add(w);
    this.waiterCount++;
  }

  private removeWaiter(w: Waiter): void {
    clearTimeout(w.timer);
    if (!w.conn.waiters.delete(w)) return;
    this.waiterCount--;
    const set = this.waitersByKey.get(w.key);
    if (set) {
      set.delete(w);
      if (set.size === 0) this.waitersByKey.delete(w.key);
    }
  }

  private wake(key: string, value: Uint8Array): void {
    const set = this.waitersByKey.get(key);
    if (!set) return;
    for (const w of [...set]) {
      this.removeWaiter(w);
      this.reply(w.conn, w.id, Status.OK, [value]);
    }
  }

  private fail(conn: Connection, id: number, status: StatusCode, message: string): void {
    this.reply(conn, id, status, [encodeText(message)]);
  }

  private reply(conn: Connection, id: number, status: StatusCode, parts: Uint8Array[]): void {
    if (conn.closed || conn.socket.destroyed || !conn.socket.writable) return;
    this.replyCounts[STATUS_KEYS[status]]!++;
    const ok = writeFrame(conn.socket, id, status, parts);
    // Back-pressure: stop reading requests from a client that is not reading its replies.
    if (!ok && !conn.paused && !conn.discarding) {
      conn.paused = true;
      conn.socket.pause();
    }
  }
}

const STATUS_KEYS = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k.toLowerCase()])) as Record<StatusCode, Lowercase<StatusName>>;

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0) throw new PsError('PS_ARGUMENT', `${name} must be a positive number, got ${v}`);
  return v;
}
