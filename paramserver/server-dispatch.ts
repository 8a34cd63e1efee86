/**
 * What each request means: checks a frame's version, the server's state and the connection's
 * authentication, then runs its op against the key-value store, the models or the registry and
 * replies. A PsError thrown by an op becomes the matching status; anything else is INTERNAL.
 * Requests are handled synchronously as frames complete, so replies go out in request order
 * except WAIT, pulls, SNAPSHOT and SHUTDOWN, which reply when their answer is ready.
 */
import { PsError, type PsErrorCode } from './errors.js';
import type { KvStore } from './kv-store.js';
import type { ModelService } from './model-service.js';
import { decodeCreateModel, decodePull, decodePush, decodeRegistration, encodeFlag, encodePullReply } from './model-wire.js';
import { PayloadReader, encodeKeyList, encodeText, encodeU32 } from './payload.js';
import { type Frame, Op, PROTOCOL_VERSION, Status, type StatusCode, opName } from './protocol.js';
import type { Registry } from './registry.js';
import { authenticate, helloReply } from './server-auth.js';
import type { Connection, Connections } from './server-connections.js';
import type { ParamServerStats } from './server-types.js';

/** What the dispatcher works on and asks of the server. */
interface DispatchDeps {
  kv: KvStore;
  models: ModelService;
  registry: Registry;
  connections: Connections;
  /** The shared secret, when the server requires authentication. */
  token: string | undefined;
  /** Whether a snapshot store is configured (SNAPSHOT needs one; SHUTDOWN saves to it first). */
  hasSnapshots: boolean;
  snapshot(): Promise<string>;
  /** True once stop() has been called. */
  stopping(): boolean;
  stop(): Promise<void>;
  stats(): ParamServerStats;
  log(line: string): void;
}

/** Ops an unauthenticated connection may use. */
const OPEN_OPS = new Set<number>([Op.PING, Op.HELLO, Op.AUTH]);

const STATUS_OF_ERROR: Partial<Record<PsErrorCode, StatusCode>> = {
  PS_BAD_REQUEST: Status.BAD_REQUEST,
  PS_TOO_LARGE: Status.TOO_LARGE,
  PS_CONFLICT: Status.CONFLICT,
  PS_RANGE: Status.RANGE,
  PS_NOT_FOUND: Status.NOT_FOUND,
  PS_UNAUTHORIZED: Status.UNAUTHORIZED,
};

export class Dispatcher {
  /** Requests received, by lowercase op name ('unknown' for unknown opcodes). */
  readonly opCounts: Record<string, number> = {};
  /** Set by SHUTDOWN: later requests get SHUTTING_DOWN while the final snapshot is written. */
  private draining = false;

  constructor(private readonly deps: DispatchDeps) {
    for (const name of Object.keys(Op)) this.opCounts[name.toLowerCase()] = 0;
    this.opCounts.unknown = 0;
  }

  handle(conn: Connection, frame: Frame): void {
    const name = opName(frame.code)?.toLowerCase() ?? 'unknown';
    this.opCounts[name]!++;
    if (frame.version !== PROTOCOL_VERSION) {
      this.fail(conn, frame.id, Status.BAD_REQUEST, `unsupported protocol version ${frame.version} (this server speaks ${PROTOCOL_VERSION})`);
      return;
    }
    if (this.deps.stopping() || this.draining) {
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
    const { kv, models, registry } = this.deps;
    const r = new PayloadReader(payload);
    switch (code) {
      case Op.PING:
        this.reply(conn, id, Status.OK, [payload]);
        return;
      case Op.SET: {
        const key = r.key();
        const value = r.rest();
        const refused = kv.set(key, value);
        if (refused !== undefined) {
          this.fail(conn, id, Status.TOO_LARGE, refused);
          return;
        }
        this.reply(conn, id, Status.OK, []);
        kv.wake(key, value);
        return;
      }
      case Op.GET: {
        const key = r.key();
        r.end('GET');
        const value = kv.get(key);
        if (value) this.reply(conn, id, Status.OK, [value]);
        else this.reply(conn, id, Status.NOT_FOUND, []);
        return;
      }
      case Op.DEL: {
        const count = r.u32('key count');
        const keys: string[] = [];
        for (let i = 0; i < count; i++) keys.push(r.key(`key ${i}`));
        r.end('DEL');
        this.reply(conn, id, Status.OK, [encodeU32(kv.delete(keys))]);
        return;
      }
      case Op.WAIT: {
        const timeoutMs = r.u32('timeoutMs');
        const key = r.key();
        r.end('WAIT');
        const value = kv.get(key);
        if (value) this.reply(conn, id, Status.OK, [value]);
        else if (timeoutMs === 0) this.reply(conn, id, Status.TIMEOUT, []);
        else kv.park(conn, key, timeoutMs, (status, parts) => this.reply(conn, id, status, parts));
        return;
      }
      case Op.STATS:
        r.end('STATS');
        this.reply(conn, id, Status.OK, [encodeText(JSON.stringify(this.deps.stats()))]);
        return;
      case Op.LIST: {
        const prefix = r.key('prefix', true);
        r.end('LIST');
        this.reply(conn, id, Status.OK, [encodeKeyList(kv.list(prefix))]);
        return;
      }
      case Op.HELLO:
        r.end('HELLO');
        this.reply(conn, id, Status.OK, [helloReply(conn.auth, this.deps.token)]);
        return;
      case Op.AUTH: {
        const result = authenticate(conn.auth, this.deps.token, r.rest());
        if (result.ok) {
          this.reply(conn, id, Status.OK, [result.proof]);
        } else {
          // A failed AUTH ends the connection, so a token cannot be guessed over one connection.
          this.deps.log(`${conn.remote}: AUTH failed: ${result.message}; closing the connection`);
          this.fail(conn, id, Status.UNAUTHORIZED, `AUTH: ${result.message}`);
          this.deps.connections.closeAfterReply(conn);
        }
        return;
      }
      case Op.REGISTER: {
        const reg = decodeRegistration(payload, 'REGISTER');
        registry.register(reg.task, reg.rank, reg.generation);
        this.reply(conn, id, Status.OK, []);
        return;
      }
      case Op.DEREGISTER: {
        const reg = decodeRegistration(payload, 'DEREGISTER');
        this.reply(conn, id, Status.OK, [encodeFlag(registry.deregister(reg.task, reg.rank, reg.generation))]);
        return;
      }
      case Op.FORGET_TASK: {
        const task = r.key('task');
        r.end('FORGET_TASK');
        this.reply(conn, id, Status.OK, [encodeU32(registry.forget(task))]);
        return;
      }
      case Op.CREATE_MODEL: {
        const req = decodeCreateModel(payload);
        this.reply(conn, id, Status.OK, [encodeFlag(models.create(req.name, req.config, req.init))]);
        return;
      }
      case Op.PUSH: {
        const req = decodePush(payload);
        this.reply(conn, id, Status.OK, [encodeU32(models.push(req.name, req.rank, req.clock, req.grad))]);
        return;
      }
      case Op.PULL_SPARSE:
      case Op.PULL_FULL: {
        const req = decodePull(payload, code === Op.PULL_SPARSE);
        models.pull(conn, req.name, req.minClock, req.timeoutMs, req.indices, (status, parts) => this.reply(conn, id, status, parts), encodePullReply);
        return;
      }
      case Op.DROP_MODEL: {
        const name = r.key('model name');
        r.end('DROP_MODEL');
        this.reply(conn, id, Status.OK, [encodeFlag(models.drop(name))]);
        return;
      }
      case Op.SNAPSHOT:
        r.end('SNAPSHOT');
        if (!this.deps.hasSnapshots) throw new PsError('PS_BAD_REQUEST', 'snapshots are not configured on this server (start it with a snapshot store)');
        this.deps.snapshot().then(
          (snapshotId) => this.reply(conn, id, Status.OK, [encodeText(snapshotId)]),
          (err: unknown) => this.failLogged(conn, id, `SNAPSHOT failed: ${err instanceof Error ? err.message : String(err)}`),
        );
        return;
      case Op.SHUTDOWN:
        r.end('SHUTDOWN');
        this.shutdown(conn, id);
        return;
      default:
        this.fail(conn, id, Status.UNKNOWN_OP, `unknown opcode ${code}`);
    }
  }

  /** Saves a final snapshot (when a store is configured), replies, then stops the server. */
  private shutdown(conn: Connection, id: number): void {
    this.draining = true;
    this.deps.log(`${conn.remote}: SHUTDOWN requested`);
    const final = this.deps.hasSnapshots ? this.deps.snapshot() : Promise.resolve('');
    final.then(
      (snapshotId) => {
        this.deps.connections.reply(conn, id, Status.OK, [encodeText(snapshotId)]);
        void this.deps.stop();
      },
      (err: unknown) => {
        // Without its final snapshot the server keeps serving, so no state is lost silently.
        this.draining = false;
        this.failLogged(conn, id, `SHUTDOWN aborted: the final snapshot failed: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  }

  private reply(conn: Connection, id: number, status: StatusCode, parts: Uint8Array[]): void {
    this.deps.connections.reply(conn, id, status, parts);
  }

  private fail(conn: Connection, id: number, status: StatusCode, message: string): void {
    this.deps.connections.fail(conn, id, status, message);
  }

  private failLogged(conn: Connection, id: number, message: string): void {
    this.deps.log(message);
    this.fail(conn, id, Status.INTERNAL, message);
  }
}
