/**
 * A TCP parameter server holding opaque values by key, with server-side WAIT so workers block on
 * a key instead of polling, and models updated by pushes. This module wires the parts together and
 * owns the server's life: listen, stats, snapshots (on request and on a timer), restore, stop.
 * The parts: connections (server-connections.ts), what each request means (server-dispatch.ts),
 * the key-value store with its waiters (kv-store.ts), models (model-service.ts), registrations
 * (registry.ts), the log (log-throttle.ts).
 */
import net from 'node:net';
import { isLoopbackHost } from './auth.js';
import { PsError } from './errors.js';
import { KvStore } from './kv-store.js';
import { LogThrottle } from './log-throttle.js';
import { ModelService } from './model-service.js';
import { encodeText } from './payload.js';
import { DEFAULT_MAX_FRAME_BYTES, Status } from './protocol.js';
import { Registry } from './registry.js';
import { Connections } from './server-connections.js';
import { Dispatcher } from './server-dispatch.js';
import { decodeServerState, encodeServerState } from './server-state.js';
import type { ParamServer, ParamServerOptions, ParamServerStats } from './server-types.js';

export type { ParamServer, ParamServerOptions, ParamServerStats, SnapshotStoreLike } from './server-types.js';

/** Complete snapshots kept after each save (older ones are pruned). */
const DEFAULT_SNAPSHOTS_KEPT = 3;
const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60 * 1000;
const DEFAULT_MAX_BYTES = 4 * 1024 * 1024 * 1024;
/** setInterval fires at once for delays above this, so longer snapshot periods are clamped to it. */
const MAX_TIMER_MS = 0x7fffffff;
/** How long stop() lets a connection flush its last replies before destroying it. */
const STOP_GRACE_MS = 2_000;
const DEFAULT_MAX_MODEL_FLOATS = 2 ** 30;
const DEFAULT_MAX_PARKED_PULLS = 1024;
const DEFAULT_MAX_REGISTRATIONS = 100_000;

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
  private readonly kv: KvStore;
  private readonly models: ModelService;
  private readonly registry: Registry;
  private readonly connections: Connections;
  private readonly dispatcher: Dispatcher;
  private readonly logger: LogThrottle;
  private readonly startedAt = Date.now();
  private stopping: Promise<void> | undefined;
  private readonly snapshots: ParamServerOptions['snapshots'];
  /** Snapshots run one at a time, in request order. */
  private snapshotChain: Promise<unknown> = Promise.resolve();
  private snapshotTimer: NodeJS.Timeout | undefined;
  private readonly stoppedPromise: Promise<void>;
  private markStopped!: () => void;

  constructor(opts: ParamServerOptions) {
    const maxFrameBytes = positive(opts.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 'maxFrameBytes');
    const idleTimeoutMs = opts.idleTimeoutMs === 0 ? 0 : positive(opts.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS, 'idleTimeoutMs');
    this.kv = new KvStore(positive(opts.maxBytes, DEFAULT_MAX_BYTES, 'maxBytes'));
    this.models = new ModelService({
      maxModelFloats: positive(opts.maxModelFloats, DEFAULT_MAX_MODEL_FLOATS, 'maxModelFloats'),
      maxParkedPerOwner: positive(opts.maxParkedPulls, DEFAULT_MAX_PARKED_PULLS, 'maxParkedPulls'),
    });
    this.registry = new Registry(positive(opts.maxRegistrations, DEFAULT_MAX_REGISTRATIONS, 'maxRegistrations'));
    this.snapshots = opts.snapshots;
    if (this.snapshots?.everyMs !== undefined) positive(this.snapshots.everyMs, 1, 'snapshots.everyMs');
    this.logger = new LogThrottle(opts.log);
    this.stoppedPromise = new Promise((resolve) => (this.markStopped = resolve));
    const log = (line: string) => this.logger.log(line);
    this.connections = new Connections(
      { maxFrameBytes, idleTimeoutMs, authRequired: opts.token !== undefined },
      {
        onFrame: (conn, frame) => this.dispatcher.handle(conn, frame),
        release: (conn) => {
          this.kv.dropOwner(conn);
          this.models.dropOwner(conn);
        },
        hasParked: (conn) => conn.waiters.size > 0 || this.models.parkedFor(conn) > 0,
        log,
      },
    );
    this.dispatcher = new Dispatcher({
      kv: this.kv,
      models: this.models,
      registry: this.registry,
      connections: this.connections,
      token: opts.token,
      hasSnapshots: this.snapshots !== undefined,
      snapshot: () => this.snapshot(),
      stopping: () => this.stopping !== undefined,
      stop: () => this.stop(),
      stats: () => this.stats(),
      log,
    });
    this.server = net.createServer((socket) => {
      if (this.stopping) socket.destroy();
      else this.connections.accept(socket);
    });
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
      keys: this.kv.size,
      bytesHeld: this.kv.bytesHeld,
      maxBytes: this.kv.maxBytes,
      connections: this.connections.size,
      connectionsTotal: this.connections.total,
      waiters: this.kv.waiterCount,
      updatesApplied: this.models.updatesApplied,
      models: this.models.modelCount,
      modelFloats: this.models.modelFloats,
      registrations: this.registry.size,
      parkedPulls: this.models.parkedPulls,
      ops: { ...this.dispatcher.opCounts },
      replies: { ...this.connections.replyCounts },
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
      for (const conn of this.connections.all()) {
        // Parked WAITs get an explicit answer rather than a bare connection drop.
        this.kv.answerOwner(conn, Status.SHUTTING_DOWN, [encodeText('parameter server is shutting down')]);
        this.connections.end(conn, STOP_GRACE_MS);
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
      const id = await store.save(this.models.current(), encodeServerState(this.kv.entries(), this.registry.entriesList()));
      // Periodic snapshots would otherwise grow the store without bound.
      await store.prune?.(keep).catch((err: unknown) => this.logger.log(`snapshot prune failed: ${err instanceof Error ? err.message : String(err)}`));
      return id;
    });
    this.snapshotChain = run.catch(() => {});
    return run;
  }

  async restore(): Promise<void> {
    const found = await this.snapshots!.store.loadNewest();
    if (!found) {
      this.logger.log('restore: no snapshot found, starting empty');
      return;
    }
    this.models.restore(found.models);
    let values = 0;
    if (found.state) {
      const state = decodeServerState(found.state);
      this.kv.load(state.values);
      this.registry.load(state.registrations);
      values = state.values.length;
    }
    this.logger.log(`restore: loaded snapshot ${found.id} with ${found.models.size} models and ${values} values`);
  }

  startPeriodicSnapshots(): void {
    const everyMs = this.snapshots?.everyMs;
    if (!everyMs) return;
    let busy = false;
    this.snapshotTimer = setInterval(() => {
      if (busy || this.stopping) return;
      busy = true;
      this.snapshot().then(
        (id) => this.logger.log(`periodic snapshot ${id}`),
        (err: unknown) => this.logger.log(`periodic snapshot failed: ${err instanceof Error ? err.message : String(err)}`),
      ).finally(() => (busy = false));
    }, Math.min(everyMs, MAX_TIMER_MS));
    this.snapshotTimer.unref();
  }
}

function positive(v: number | undefined, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0) throw new PsError('PS_ARGUMENT', `${name} must be a positive number, got ${v}`);
  return v;
}
