/**
 * A TCP parameter server holding opaque values by key, with server-side WAIT so workers block on
 * a key instead of polling. Requests are handled synchronously as frames complete, so replies go
 * out in request order except WAIT, which replies whenever its key is set or its timer fires.
 */
import net from 'node:net';
import { type AuthState, authenticate, helloReply } from './server-auth.js';
import { isLoopbackHost } from './auth.js';
import { FrameTooLargeError, PsError, type PsErrorCode } from './errors.js';
import type { ParamModel } from './model.js';
import { ModelService } from './model-service.js';
import { decodeCreateModel, decodePull, decodePush, decodeRegistration, encodeFlag, encodePullReply } from './model-wire.js';
import { Registry } from './registry.js';
import { decodeServerState, encodeServerState } from './server-state.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  type Frame,
  FrameDecoder,
  Op,
  PROTOCOL_VERSION,
  Status,
  type StatusCode,
  type StatusName,
  opName,
  writeFrame,
} from './protocol.js';
import { PayloadReader, encodeKeyList, encodeText, encodeU32 } from './payload.js';

/**
 * Where snapshots go; paramserver/snapshot.ts provides file:// and s3:// implementations. save()
 * gets the live models and must serialize them before its first await (pushes are handled on the
 * same thread, so the snapshot is then one point in time without copying every model).
 */
export interface SnapshotStoreLike {
  /** `state`: the server's other state (stored values, registrations), encoded by the server. */
  save(models: Map<string, ParamModel>, state?: Uint8Array): Promise<string>;
  loadNewest(): Promise<{ id: string; models: Map<string, ParamModel>; state?: Uint8Array } | undefined>;
  /** Deletes all but the newest `keep` complete snapshots (called after each save). */
  prune?(keep: number): Promise<void>;
}

export interface ParamServerOptions {
  /** Interface to bind; default 127.0.0.1. Any non-loopback host requires `token`. */
  host?: string;
  /** Shared secret: when set, every op but PING/HELLO/AUTH needs the HMAC handshake first. */
  token?: string;
  /** TCP port; 0 (the default) picks a free one. */
  port?: number;
  /** Largest accepted frameLength; a bigger frame gets TOO_LARGE and the connection is closed. */
  maxFrameBytes?: number;
  /** Connections with no traffic and no pending WAIT for this long are closed; 0 disables. */
  idleTimeoutMs?: number;
  /** Bound on the bytes of stored values; a SET that would pass it gets TOO_LARGE. */
  maxBytes?: number;
  /** Bound on floats held by models (weights, optimizer state, scratch, BSP accumulators). */
  maxModelFloats?: number;
  /** Bound on pulls parked by one connection; over it a pull gets TOO_LARGE. */
  maxParkedPulls?: number;
  /** Bound on registrations (live + deregistered) held; over it REGISTER gets TOO_LARGE. */
  maxRegistrations?: number;
  /** SNAPSHOT/SHUTDOWN save here; with everyMs, also periodically. */
  snapshots?: { store: SnapshotStoreLike; everyMs?: number; keep?: number };
  /** Load the newest snapshot from `snapshots.store` before listening. */
  restore?: boolean;
  /** Receives one line per rejected request, dropped connection and snapshot (rate-limited). */
  log?: (line: string) => void;
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
  /** Optimizer updates applied to models (a BSP round counts once). */
  updatesApplied: number;
  models: number;
  /** Floats held by models, against maxModelFloats. */
  modelFloats: number;
  /** Registrations held (live and deregistered). */
  registrations: number;
  /** PULL_SPARSE/PULL_FULL requests currently parked. */
  parkedPulls: number;
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
  /** Resolves once the server has stopped, by stop() or a SHUTDOWN request. */
  whenStopped(): Promise<void>;
  stats(): ParamServerStats;
  /** Saves a snapshot now; rejects when no store is configured. */
  snapshot(): Promise<string>;
}

/** Complete snapshots kept after each save (older ones are pruned). */
const DEFAULT_SNAPSHOTS_KEPT = 3;
const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60 * 1000;
const DEFAULT_MAX_BYTES = 4 * 1024 * 1024 * 1024;
/** setTimeout fires at once for delays above this, so longer WAITs are clamped to it. */
const MAX_TIMER_MS = 0x7fffffff;
/** How long a connection that sent an oversize frame may keep sending before it is dropped. */
const DISCARD_GRACE_MS = 10_000;
/** How long stop() lets a connection flush its last replies before destroying it. */
const STOP_GRACE_MS = 2_000;
const DEFAULT_MAX_MODEL_FLOATS = 2 ** 30;
const DEFAULT_MAX_PARKED_PULLS = 1024;
const DEFAULT_MAX_REGISTRATIONS = 100_000;
/** Log lines allowed per window; the rest are counted and summarised, so a flood cannot fill a disk. */
const LOG_BURST = 100;
const LOG_WINDOW_MS = 10_000;

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
  auth: AuthState;
  /** 'ip:port' of the peer, for log lines. */
  remote: string;
}

export async function startParamServer(opts: ParamServerOptions = {}): Promise<ParamServer> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.token !== undefined && opts.token.length === 0) throw new PsError('PS_ARGUMENT', 'token must not be empty');
  if (!isLoopbackHost(host) && opts.token === undefined) {
    throw new PsError('PS_ARGUMENT', `refusing to listen on non-loopback host '${host}' without a token: anyone who can reach it could read and overwrite models (pass a token, or bind 127.0.0.1)`);
  }
  if (opts.restore && !opts.snapshots) throw new PsError('PS_ARGUMENT', 'restore needs a snapshot store (snapshots.store)');
  const impl = new ServerImpl(opts);
  if (opts.restore) await impl.restore();
  await impl.listen(host, opts.port ?? 0);
  impl.startPeriodicSnapshots();
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
  /** Set by SHUTDOWN: later requests get SHUTTING_DOWN while the final snapshot is written. */
  private draining = false;
  private readonly token: string | undefined;
  private readonly models: ModelService;
  private readonly registry: Registry;
  private readonly snapshots: ParamServerOptions['snapshots'];
  /** Snapshots run one at a time, in request order. */
  private snapshotChain: Promise<unknown> = Promise.resolve();
  private snapshotTimer: NodeJS.Timeout | undefined;
  private readonly logSink: ((line: string) => void) | undefined;
  private logWindowStart = 0;
  private logLines = 0;
  private logSuppressed = 0;
  private readonly stoppedPromise: Promise<void>;
  private markStopped!: () => void;

  constructor(opts: ParamServerOptions) {
    this.maxFrameBytes = positive(opts.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 'maxFrameBytes');
    this.idleTimeoutMs = opts.idleTimeoutMs === 0 ? 0 : positive(opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 'idleTimeoutMs');
    this.maxBytes = positive(opts.maxBytes, DEFAULT_MAX_BYTES, 'maxBytes');
    this.token = opts.token;
    this.models = new ModelService({
      maxModelFloats: positive(opts.maxModelFloats, DEFAULT_MAX_MODEL_FLOATS, 'maxModelFloats'),
      maxParkedPerOwner: positive(opts.maxParkedPulls, DEFAULT_MAX_PARKED_PULLS, 'maxParkedPulls'),
    });
    this.registry = new Registry(positive(opts.maxRegistrations, DEFAULT_MAX_REGISTRATIONS, 'maxRegistrations'));
    this.snapshots = opts.snapshots;
    if (this.snapshots?.everyMs !== undefined) positive(this.snapshots.everyMs, 1, 'snapshots.everyMs');
    this.logSink = opts.log;
    this.stoppedPromise = new Promise((resolve) => (this.markStopped = resolve));
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
      updatesApplied: this.models.updatesApplied,
      models: this.models.modelCount,
      modelFloats: this.models.modelFloats,
      registrations: this.registry.size,
      parkedPulls: this.models.parkedPulls,
      ops: { ...this.opCounts },
      replies: { ...this.replyCounts },
      uptimeMs: Date.now() - this.startedAt,
    };
  }

  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      clearInterval(this.snapshotTimer);
      this.server.close(() => {
        this.markStopped();
        resolve();
      });
      this.models.answerAll(Status.SHUTTING_DOWN, 'parameter server is shutting down');
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

  whenStopped(): Promise<void> {
    return this.stoppedPromise;
  }

  snapshot(): Promise<string> {
    const store = this.snapshots?.store;
    if (!store) return Promise.reject(new PsError('PS_BAD_REQUEST', 'snapshots are not configured on this server (start it with a snapshot store)'));
    // The models are read when this snapshot's turn comes, so it includes every push before it.
    const keep = this.snapshots?.keep ?? DEFAULT_SNAPSHOTS_KEPT;
    const run = this.snapshotChain.then(async () => {
      // Values and registrations too: a restored server resumes the jobs' control keys (stop and
      // done flags, collective rounds) and refuses duplicates it refused before.
      const id = await store.save(this.models.current(), encodeServerState(this.store, this.registry.entriesList()));
      // Periodic snapshots would otherwise grow the store without bound.
      await store.prune?.(keep).catch((err: unknown) => this.log(`snapshot prune failed: ${err instanceof Error ? err.message : String(err)}`));
      return id;
    });
    this.snapshotChain = run.catch(() => {});
    return run;
  }

  async restore(): Promise<void> {
    const found = await this.snapshots!.store.loadNewest();
    if (!found) {
      this.log('restore: no snapshot found, starting empty');
      return;
    }
    this.models.restore(found.models);
    let values = 0;
    if (found.state) {
      const state = decodeServerState(found.state);
      this.store.clear();
      this.bytesHeld = 0;
      for (const [k, v] of state.values) {
        this.store.set(k, v);
        this.bytesHeld += v.byteLength;
      }
      this.registry.load(state.registrations);
      values = state.values.length;
    }
    this.log(`restore: loaded snapshot ${found.id} with ${found.models.size} models and ${values} values`);
  }

  startPeriodicSnapshots(): void {
    const everyMs = this.snapshots?.everyMs;
    if (!everyMs) return;
    let busy = false;
    this.snapshotTimer = setInterval(() => {
      if (busy || this.stopping) return;
      busy = true;
      this.snapshot().then(
        (id) => this.log(`periodic snapshot ${id}`),
        (err: unknown) => this.log(`periodic snapshot failed: ${err instanceof Error ? err.message : String(err)}`),
      ).finally(() => (busy = false));
    }, Math.min(everyMs, MAX_TIMER_MS));
    this.snapshotTimer.unref();
  }

  /** One line to the log option, at most LOG_BURST per window. */
  private log(line: string): void {
    if (!this.logSink) return;
    const now = Date.now();
    if (now - this.logWindowStart >= LOG_WINDOW_MS) {
      if (this.logSuppressed > 0) this.logSink(`(${this.logSuppressed} log lines suppressed in the last ${LOG_WINDOW_MS} ms)`);
      this.logWindowStart = now;
      this.logLines = 0;
      this.logSuppressed = 0;
    }
    if (this.logLines >= LOG_BURST) {
      this.logSuppressed++;
      return;
    }
    this.logLines++;
    this.logSink(line);
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
      auth: { authenticated: this.token === undefined, nonce: undefined },
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
    };
    this.conns.add(conn);
    this.connectionsTotal++;
    if (this.idleTimeoutMs > 0) socket.setTimeout(this.idleTimeoutMs);
    socket.on('timeout', () => {
      // A parked WAIT or pull is activity the socket cannot see: keep the connection and re-arm.
      if (conn.waiters.size > 0 || this.models.parkedFor(conn) > 0) socket.setTimeout(this.idleTimeoutMs);
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
    // Replies to every request in this chunk leave in one writev: on loopback each write syscall
    // costs about as much as handling a small request.
    conn.socket.cork();
    try {
      for (;;) {
        const frame = conn.decoder.next();
        if (!frame) break;
        this.handle(conn, frame);
        if (conn.closed) return;
      }
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        this.log(`${conn.remote}: ${err.message}; closing the connection`);
        this.reply(conn, err.requestId, Status.TOO_LARGE, [encodeText(err.message)]);
        this.startDiscarding(conn);
      } else {
        // Framing is lost (length shorter than a header): nothing can be answered reliably.
        this.log(`${conn.remote}: ${err instanceof Error ? err.message : String(err)}; dropping the connection`);
        conn.socket.destroy();
      }
    } finally {
      if (!conn.socket.destroyed) conn.socket.uncork();
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
    this.models.dropOwner(conn);
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
    this.models.dropOwner(conn);
    this.conns.delete(conn);
  }

  private handle(conn: Connection, frame: Frame): void {
    const name = opName(frame.code)?.toLowerCase() ?? 'unknown';
    this.opCounts[name]!++;
    if (frame.version !== PROTOCOL_VERSION) {
      this.fail(conn, frame.id, Status.BAD_REQUEST, `unsupported protocol version ${frame.version} (this server speaks ${PROTOCOL_VERSION})`);
      return;
    }
    if (this.stopping || this.draining) {
      this.fail(conn, frame.id, Status.SHUTTING_DOWN, 'parameter server is shutting down');
      return;
    }
    if (!conn.auth.authenticated && !OPEN_OPS.has(frame.code)) {
      this.fail(conn, frame.id, Status.UNAUTHORIZED, `${name.toUpperCase()}: this server requires authentication: send HELLO, then AUTH with the token's HMAC`);
      return;
    }
    try {
      this.dispatch(conn, frame);
    } catch (err) {
      const status = err instanceof PsError ? STATUS_OF_ERROR[err.code] : undefined;
      const message = `${name.toUpperCase()}: ${err instanceof Error ? err.message : String(err)}`;
      this.fail(conn, frame.id, status ?? Status.INTERNAL, message);
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
      case Op.HELLO:
        r.end('HELLO');
        this.reply(conn, id, Status.OK, [helloReply(conn.auth, this.token)]);
        return;
      case Op.AUTH: {
        const result = authenticate(conn.auth, this.token, r.rest());
        if (result.ok) {
          this.reply(conn, id, Status.OK, [result.proof]);
        } else {
          // A failed AUTH ends the connection, so a token cannot be guessed over one connection.
          this.log(`${conn.remote}: AUTH failed: ${result.message}; closing the connection`);
          this.fail(conn, id, Status.UNAUTHORIZED, `AUTH: ${result.message}`);
          this.closeAfterReply(conn);
        }
        return;
      }
      case Op.REGISTER: {
        const reg = decodeRegistration(payload, 'REGISTER');
        this.registry.register(reg.task, reg.rank, reg.generation);
        this.reply(conn, id, Status.OK, []);
        return;
      }
      case Op.DEREGISTER: {
        const reg = decodeRegistration(payload, 'DEREGISTER');
        this.reply(conn, id, Status.OK, [encodeFlag(this.registry.deregister(reg.task, reg.rank, reg.generation))]);
        return;
      }
      case Op.FORGET_TASK: {
        const task = r.key('task');
        r.end('FORGET_TASK');
        this.reply(conn, id, Status.OK, [encodeU32(this.registry.forget(task))]);
        return;
      }
      case Op.CREATE_MODEL: {
        const req = decodeCreateModel(payload);
        this.reply(conn, id, Status.OK, [encodeFlag(this.models.create(req.name, req.config, req.init))]);
        return;
      }
      case Op.PUSH: {
        const req = decodePush(payload);
        this.reply(conn, id, Status.OK, [encodeU32(this.models.push(req.name, req.rank, req.clock, req.grad))]);
        return;
      }
      case Op.PULL_SPARSE:
      case Op.PULL_FULL: {
        const req = decodePull(payload, code === Op.PULL_SPARSE);
        this.models.pull(conn, req.name, req.minClock, req.timeoutMs, req.indices, (status, parts) => this.reply(conn, id, status, parts), encodePullReply);
        return;
      }
      case Op.DROP_MODEL: {
        const name = r.key('model name');
        r.end('DROP_MODEL');
        this.reply(conn, id, Status.OK, [encodeFlag(this.models.drop(name))]);
        return;
      }
      case Op.SNAPSHOT:
        r.end('SNAPSHOT');
        if (!this.snapshots) throw new PsError('PS_BAD_REQUEST', 'snapshots are not configured on this server (start it with a snapshot store)');
        this.snapshot().then(
          (snapshotId) => this.reply(conn, id, Status.OK, [encodeText(snapshotId)]),
          (err: unknown) => this.failLogged(conn, id, `SNAPSHOT failed: ${err instanceof Error ? err.message : String(err)}`),
        );
        return;
      case Op.SHUTDOWN: {
        r.end('SHUTDOWN');
        this.draining = true;
        this.log(`${conn.remote}: SHUTDOWN requested`);
        const final = this.snapshots ? this.snapshot() : Promise.resolve('');
        final.then(
          (snapshotId) => {
            this.reply(conn, id, Status.OK, [encodeText(snapshotId)]);
            void this.stop();
          },
          (err: unknown) => {
            // Without its final snapshot the server keeps serving, so no state is lost silently.
            this.draining = false;
            this.failLogged(conn, id, `SHUTDOWN aborted: the final snapshot failed: ${err instanceof Error ? err.message : String(err)}`);
          },
        );
        return;
      }
      default:
        this.fail(conn, id, Status.UNKNOWN_OP, `unknown opcode ${code}`);
    }
  }

  private failLogged(conn: Connection, id: number, message: string): void {
    this.log(message);
    this.fail(conn, id, Status.INTERNAL, message);
  }

  /** Stops reading from the connection and closes it once the last reply is flushed. */
  private closeAfterReply(conn: Connection): void {
    conn.discarding = true;
    for (const w of [...conn.waiters]) this.removeWaiter(w);
    this.models.dropOwner(conn);
    this.endConnection(conn, DISCARD_GRACE_MS);
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
    if (LOGGED_STATUSES.has(status)) this.log(`${conn.remote}: request ${id}: ${STATUS_KEYS[status].toUpperCase()}: ${message}`);
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

/** Ops an unauthenticated connection may use. */
const OPEN_OPS = new Set<number>([Op.PING, Op.HELLO, Op.AUTH]);

/** Statuses that mean a misbehaving or broken client (logged), as opposed to normal outcomes. */
const LOGGED_STATUSES = new Set<number>([Status.BAD_REQUEST, Status.TOO_LARGE, Status.UNKNOWN_OP, Status.UNAUTHORIZED, Status.INTERNAL, Status.RANGE]);

const STATUS_OF_ERROR: Partial<Record<PsErrorCode, StatusCode>> = {
  PS_BAD_REQUEST: Status.BAD_REQUEST,
  PS_TOO_LARGE: Status.TOO_LARGE,
  PS_CONFLICT: Status.CONFLICT,
  PS_RANGE: Status.RANGE,
  PS_NOT_FOUND: Status.NOT_FOUND,
  PS_UNAUTHORIZED: Status.UNAUTHORIZED,
};

const STATUS_KEYS = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k.toLowerCase()])) as Record<StatusCode, Lowercase<StatusName>>;

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0) throw new PsError('PS_ARGUMENT', `${name} must be a positive number, got ${v}`);
  return v;
}
