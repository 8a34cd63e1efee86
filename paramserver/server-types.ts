/**
 * The parameter server's public types: its options, its stats, the handle startParamServer returns,
 * and what a snapshot store must provide. In a module of their own so that the client (which reads
 * STATS) and the snapshot stores need none of the server's code.
 */
import type { ParamModel } from './model.js';

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
