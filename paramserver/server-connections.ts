/**
 * The parameter server's connections: accepting sockets, cutting their bytes into frames, writing
 * replies with back-pressure, and ending connections (after an oversize frame, a failed AUTH, an
 * idle timeout or stop()). What a frame means is the dispatcher's job (server-dispatch.ts).
 */
import type net from 'node:net';
import { FrameTooLargeError } from './errors.js';
import type { Waiter, WaitOwner } from './kv-store.js';
import { encodeText } from './payload.js';
import { type Frame, FrameDecoder, Status, type StatusCode, type StatusName, writeFrame } from './protocol.js';
import type { AuthState } from './server-auth.js';

/** How long a connection that sent an oversize frame may keep sending before it is dropped. */
const DISCARD_GRACE_MS = 10_000;

export interface Connection extends WaitOwner {
  socket: net.Socket;
  decoder: FrameDecoder;
  /** WAITs this connection has parked in the key-value store. */
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

/** What the connections need from the rest of the server. */
interface ConnectionEvents {
  /** Handles one complete request frame. */
  onFrame(conn: Connection, frame: Frame): void;
  /** Drops what the connection has parked elsewhere (WAITs, pulls): it will never read the answers. */
  release(conn: Connection): void;
  /** Whether the connection has a parked WAIT or pull: activity its socket cannot see. */
  hasParked(conn: Connection): boolean;
  log(line: string): void;
}

interface ConnectionOptions {
  maxFrameBytes: number;
  /** 0 disables the idle timeout. */
  idleTimeoutMs: number;
  /** Whether a new connection must authenticate (HELLO, AUTH) before other ops. */
  authRequired: boolean;
}

/** Statuses that mean a misbehaving or broken client (logged), as opposed to normal outcomes. */
const LOGGED_STATUSES = new Set<number>([Status.BAD_REQUEST, Status.TOO_LARGE, Status.UNKNOWN_OP, Status.UNAUTHORIZED, Status.INTERNAL, Status.RANGE]);

const STATUS_KEYS = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k.toLowerCase()])) as Record<StatusCode, Lowercase<StatusName>>;

export class Connections {
  private readonly open = new Set<Connection>();
  /** Connections accepted since start. */
  total = 0;
  /** Replies sent, by lowercase status name. */
  readonly replyCounts: Record<string, number> = {};

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly events: ConnectionEvents,
  ) {
    for (const name of Object.keys(Status)) this.replyCounts[name.toLowerCase()] = 0;
  }

  /** Open connections. */
  get size(): number {
    return this.open.size;
  }

  /** A snapshot of the open connections (safe to end them while iterating). */
  all(): Connection[] {
    return [...this.open];
  }

  accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const conn: Connection = {
      socket,
      decoder: new FrameDecoder({ maxFrameBytes: this.opts.maxFrameBytes }),
      waiters: new Set(),
      discarding: false,
      paused: false,
      closed: false,
      killTimer: undefined,
      auth: { authenticated: !this.opts.authRequired, nonce: undefined },
      remote: `${socket.remoteAddress}:${socket.remotePort}`,
    };
    this.open.add(conn);
    this.total++;
    const idleTimeoutMs = this.opts.idleTimeoutMs;
    if (idleTimeoutMs > 0) socket.setTimeout(idleTimeoutMs);
    socket.on('timeout', () => {
      // A parked WAIT or pull is activity the socket cannot see: keep the connection and re-arm.
      if (this.events.hasParked(conn)) socket.setTimeout(idleTimeoutMs);
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

  reply(conn: Connection, id: number, status: StatusCode, parts: Uint8Array[]): void {
    if (conn.closed || conn.socket.destroyed || !conn.socket.writable) return;
    this.replyCounts[STATUS_KEYS[status]]!++;
    const ok = writeFrame(conn.socket, id, status, parts);
    // Back-pressure: stop reading requests from a client that is not reading its replies.
    if (!ok && !conn.paused && !conn.discarding) {
      conn.paused = true;
      conn.socket.pause();
    }
  }

  /** Replies with `status` and the message as text; logs it when the status means a misbehaving client. */
  fail(conn: Connection, id: number, status: StatusCode, message: string): void {
    if (LOGGED_STATUSES.has(status)) this.events.log(`${conn.remote}: request ${id}: ${STATUS_KEYS[status].toUpperCase()}: ${message}`);
    this.reply(conn, id, status, [encodeText(message)]);
  }

  /** Stops reading from the connection and closes it once the last reply is flushed. */
  closeAfterReply(conn: Connection): void {
    conn.discarding = true;
    this.events.release(conn);
    this.end(conn, DISCARD_GRACE_MS);
  }

  /** Sends a FIN; destroys the socket if the peer has not closed within `graceMs`. */
  end(conn: Connection, graceMs: number): void {
    conn.socket.end();
    if (conn.killTimer === undefined) conn.killTimer = setTimeout(() => conn.socket.destroy(), graceMs);
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
        this.events.onFrame(conn, frame);
        if (conn.closed) return;
      }
    } catch (err) {
      if (err instanceof FrameTooLargeError) {
        this.events.log(`${conn.remote}: ${err.message}; closing the connection`);
        this.reply(conn, err.requestId, Status.TOO_LARGE, [encodeText(err.message)]);
        this.startDiscarding(conn);
      } else {
        // Framing is lost (length shorter than a header): nothing can be answered reliably.
        this.events.log(`${conn.remote}: ${err instanceof Error ? err.message : String(err)}; dropping the connection`);
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
    conn.decoder = new FrameDecoder({ maxFrameBytes: this.opts.maxFrameBytes });
    if (conn.paused) {
      conn.paused = false;
      conn.socket.resume();
    }
    this.events.release(conn);
    this.end(conn, DISCARD_GRACE_MS);
  }

  private onClose(conn: Connection): void {
    conn.closed = true;
    if (conn.killTimer !== undefined) clearTimeout(conn.killTimer);
    this.events.release(conn);
    this.open.delete(conn);
  }
}
