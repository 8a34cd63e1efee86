/**
 * The memcached channel's connections: memjs clients (small items, probes) and bulk connections
 * (bulk.ts: everything else), round-robin, with request counting, a backstop for requests memjs
 * loses, and a close() that lets requests on the wire finish.
 */
import type { Client as MemjsClient } from 'memjs';
import { type ChannelStats, type OpKind, emptyStats } from '../../channel.js';
import { ChannelError } from '../../errors.js';
import { type BulkConnection, openBulkConnection } from './bulk.js';
import { createLinearClient } from './memjs-linear.js';

type Client = MemjsClient;

/** Grace on top of memjs' own timeout before we declare a request lost (memjs can miss a closed socket). */
const BACKSTOP_GRACE_MS = 1_000;
const PROBE_KEY = 'cirrus~probe';

const silentLogger = { log: (): void => undefined };

export function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function hint(e: unknown): string {
  return /too large/i.test(reason(e))
    ? ' (the server item size limit, memcached -I, is below chunkBytes plus ~100 bytes of item overhead: lower chunkBytes or raise -I)'
    : '';
}

export class MemcachedConnections {
  /** Requests and value bytes, by operation (the channel adds the bytes). */
  counters: ChannelStats = emptyStats();
  closed = false;
  private readonly clients: Client[];
  private nextClient = 0;
  private readonly bulk: BulkConnection[];
  private nextBulk = 0;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    server: string,
    private readonly endpoint: string,
    private readonly timeoutMs: number,
    connections: number,
  ) {
    // One memjs Client per connection: each owns one socket, so requests spread over sockets.
    this.clients = Array.from({ length: connections }, () =>
      createLinearClient(server, {
        timeout: timeoutMs / 1000,
        conntimeout: timeoutMs / 1000,
        // memjs retries after a fixed delay on any error; fail fast and let the caller decide.
        retries: 0,
        keepAlive: true,
        logger: silentLogger,
      }),
    );
    this.bulk = Array.from({ length: connections }, () => openBulkConnection(server, timeoutMs));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      // Let requests already on the wire finish (each is bounded by its timeout) before closing sockets.
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      for (const c of this.clients) c.close();
      for (const b of this.bulk) b.close();
    })();
    return this.closing;
  }

  /** One memjs request: counted, spread round-robin over the connections, never left hanging. */
  send<T>(kind: OpKind, key: string, op: (c: Client) => Promise<T>): Promise<T> {
    const client = this.clients[this.nextClient]!;
    this.nextClient = (this.nextClient + 1) % this.clients.length;
    const label = kind === 'put' ? 'set' : kind;
    return this.track(kind, () => new Promise<T>((resolve, reject) => {
      const fail = (e: unknown) =>
        reject(
          e instanceof ChannelError
            ? e
            : new ChannelError('CHANNEL_REQUEST', `memcached ${label} of '${key}' at ${this.endpoint} failed: ${reason(e)}${hint(e)}`, { cause: e }),
        );
      // memjs times requests out itself, but loses requests pending on a socket the server closed.
      const backstop = setTimeout(() => {
        const err = new Error(`no response within ${this.timeoutMs + BACKSTOP_GRACE_MS} ms`);
        fail(err);
        for (const s of client.servers) s.error(err);
      }, this.timeoutMs + BACKSTOP_GRACE_MS);
      op(client).then(
        (v) => {
          clearTimeout(backstop);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(backstop);
          fail(e);
        },
      );
    }));
  }

  /** One bulk-connection request (it times requests out itself). */
  sendBulk<T>(kind: OpKind, op: (c: BulkConnection) => Promise<T>): Promise<T> {
    const conn = this.bulk[this.nextBulk]!;
    this.nextBulk = (this.nextBulk + 1) % this.bulk.length;
    return this.track(kind, () =>
      op(conn).catch((e: unknown) => {
        const h = hint(e);
        throw h && e instanceof ChannelError ? new ChannelError(e.code, `${e.message}${h}`, { cause: e }) : e;
      }),
    );
  }

  /** Counts a request and tracks it for close(), which waits for requests on the wire. */
  private track<T>(kind: OpKind, run: () => Promise<T>): Promise<T> {
    // After close(), only requests of operations still draining may go out (clients would reconnect).
    if (this.closed && this.inFlight === 0) {
      return Promise.reject(new ChannelError('CHANNEL_CLOSED', `${this.endpoint}: channel is closed`));
    }
    this.counters[kind].requests++;
    this.inFlight++;
    return run().finally(() => {
      if (--this.inFlight === 0 && this.drained) {
        const d = this.drained;
        this.drained = undefined;
        d();
      }
    });
  }

  /** A get on every connection (opens all sockets), bounded by timeoutMs. Not counted in stats. */
  async probe(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      await Promise.race([Promise.all(this.clients.map((c) => c.get(PROBE_KEY))), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops every socket at once and fails whatever is pending on them. */
  abort(err: Error): void {
    this.closed = true;
    for (const c of this.clients) for (const s of c.servers) s.error(err);
    for (const b of this.bulk) b.fail(err);
  }
}
