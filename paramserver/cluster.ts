/**
 * A cluster of parameter-server processes on this machine, one per shard, for ShardedParamClient.
 * Each shard is `node <this dir>/main.js --port P+i` (every shard on --port 0 when P is 0); its
 * address comes from the `listening host:port` line it prints once bound.
 *
 * Snapshots: with more than one shard, each shard gets its own sub-location `<url>/shard-<i>`, since
 * every shard holds models under the same names (its slice) and would otherwise restore another
 * shard's slices. Restoring therefore needs the same shard count as the run that saved.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PsError } from './errors.js';
import type { ParamServerOptions } from './server-types.js';

/** Per-shard limits, passed to every shard as flags (see NUMERIC_FLAGS). */
type ShardLimits = Pick<ParamServerOptions, 'maxFrameBytes' | 'idleTimeoutMs' | 'maxBytes' | 'maxModelFloats' | 'maxParkedPulls' | 'maxRegistrations'>;

export interface ClusterOptions extends ShardLimits {
  /** Number of server processes (>= 1). */
  shards: number;
  /** Interface every shard binds (default 127.0.0.1). */
  host?: string;
  /** Shard i listens on port + i; 0 (the default) lets each pick a free port. */
  port?: number;
  /** Shared secret; handed over in CIRRUS_PS_TOKEN so it stays out of process listings. */
  token?: string;
  /** Snapshot store URL (per-shard sub-locations, see the module comment). */
  snapshotUrl?: string;
  snapshotEverySeconds?: number;
  /** Restore each shard from its newest snapshot at start. */
  restore?: boolean;
  /** How long each shard may take to print its listening line (default 15 s). */
  startTimeoutMs?: number;
  /** Where shard stderr goes: 'inherit' (the CLI) or 'buffer' (kept for error messages; the default). */
  stderr?: 'inherit' | 'buffer';
}

export interface ParamServerCluster {
  /** 'host:port' per shard, in shard order. */
  readonly addresses: readonly string[];
  readonly pids: readonly number[];
  /** Resolves when any shard exits on its own (not through stop()), naming it. */
  readonly whenShardExits: Promise<{ shard: number; code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM to every shard, SIGKILL after a grace period; resolves once all have exited. */
  stop(): Promise<void>;
}

const NUMERIC_FLAGS = [
  ['maxFrameBytes', '--max-frame-bytes'],
  ['idleTimeoutMs', '--idle-timeout-ms'],
  ['maxBytes', '--max-bytes'],
  ['maxModelFloats', '--max-model-floats'],
  ['maxParkedPulls', '--max-parked-pulls'],
  ['maxRegistrations', '--max-registrations'],
] as const satisfies ReadonlyArray<readonly [keyof ShardLimits, string]>;

const DEFAULT_START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
/** Bytes of a shard's stderr kept for error messages. */
const STDERR_TAIL = 4096;

/** The path of the server entry next to this module (dist/paramserver/main.js in a build). */
export const SERVER_MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** `<url>/shard-<i>`: the snapshot location of shard i, query kept. */
export function shardSnapshotUrl(url: string, shard: number): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PsError('PS_ARGUMENT', `snapshot URL '${url}' is invalid`);
  }
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/shard-${shard}`;
  return u.href;
}

/** Command-line arguments of shard `i` (the token travels in the environment). */
export function shardArgs(opts: ClusterOptions, shard: number): string[] {
  const port = opts.port ?? 0;
  const args = ['--host', opts.host ?? '127.0.0.1', '--port', String(port === 0 ? 0 : port + shard)];
  for (const [key, flag] of NUMERIC_FLAGS) if (opts[key] !== undefined) args.push(flag, String(opts[key]));
  if (opts.snapshotUrl !== undefined) args.push('--snapshot', opts.shards > 1 ? shardSnapshotUrl(opts.snapshotUrl, shard) : opts.snapshotUrl);
  if (opts.snapshotEverySeconds !== undefined) args.push('--snapshot-every', String(opts.snapshotEverySeconds));
  if (opts.restore) args.push('--restore');
  return args;
}

interface Shard {
  child: ChildProcess;
  exited: Promise<void>;
  stderr: () => string;
}

function spawnShard(opts: ClusterOptions, i: number): Shard {
  const env = { ...process.env };
  delete env.CIRRUS_PS_TOKEN;
  if (opts.token !== undefined) env.CIRRUS_PS_TOKEN = opts.token;
  const inherit = opts.stderr === 'inherit';
  const child = spawn(process.execPath, [SERVER_MAIN, ...shardArgs(opts, i)], { env, stdio: ['ignore', 'pipe', inherit ? 'inherit' : 'pipe'] });
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    tail = (tail + s).slice(-STDERR_TAIL);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return { child, exited, stderr: () => tail.trim() };
}

/** Resolves with the address a shard prints, or rejects (naming the shard and its stderr) on exit or deadline. */
function listeningAddress(shard: Shard, i: number, timeoutMs: number): Promise<string> {
  const { child } = shard;
  return new Promise((resolve, reject) => {
    let out = '';
    const done = (err: Error | undefined, address?: string) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      // Keep draining stdout so a chatty server never blocks on a full pipe.
      child.stdout!.resume();
      if (err) reject(err);
      else resolve(address!);
    };
    const why = () => (shard.stderr() ? `: ${shard.stderr()}` : '');
    const onData = (s: string) => {
      out += s;
      const m = /^listening (\S+)$/m.exec(out);
      if (m) done(undefined, m[1]);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      // Let the last stderr bytes arrive before quoting them.
      setImmediate(() => done(new PsError('PS_LISTEN', `parameter-server shard ${i} exited before listening (${signal ?? `code ${code}`})${why()}`)));
    const onError = (err: Error) => done(new PsError('PS_LISTEN', `parameter-server shard ${i} could not start: ${err.message}`, { cause: err }));
    const timer = setTimeout(() => done(new PsError('PS_LISTEN', `parameter-server shard ${i} did not report listening within ${timeoutMs} ms${why()}`)), timeoutMs);
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

async function stopShards(shards: readonly Shard[]): Promise<void> {
  await Promise.all(
    shards.map(async ({ child, exited }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(kill);
    }),
  );
}

/** Starts `opts.shards` server processes and resolves once all listen; on any failure stops the rest and rejects. */
export async function startParamServerCluster(opts: ClusterOptions): Promise<ParamServerCluster> {
  if (!Number.isSafeInteger(opts.shards) || opts.shards < 1) throw new PsError('PS_ARGUMENT', `shards must be an integer >= 1, got ${opts.shards}`);
  const port = opts.port ?? 0;
  if (!Number.isSafeInteger(port) || port < 0 || (port > 0 && port + opts.shards - 1 > 65535)) {
    throw new PsError('PS_ARGUMENT', `port ${port} with ${opts.shards} shards does not fit in 1-65535 (shard i uses port + i)`);
  }
  const shards: Shard[] = [];
  let addresses: string[];
  try {
    for (let i = 0; i < opts.shards; i++) shards.push(spawnShard(opts, i));
    addresses = await Promise.all(shards.map((s, i) => listeningAddress(s, i, opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS)));
  } catch (err) {
    await stopShards(shards);
    throw err;
  }
  let stopping: Promise<void> | undefined;
  const whenShardExits = new Promise<{ shard: number; code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    shards.forEach(({ child }, shard) => child.once('exit', (code, signal) => {
      if (!stopping) resolve({ shard, code, signal });
    }));
  });
  return {
    addresses,
    pids: shards.map((s) => s.child.pid!),
    whenShardExits,
    stop: () => (stopping ??= stopShards(shards)),
  };
}
