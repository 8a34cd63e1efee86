/**
 * The server's command line: `[--host H] [--port P] [--token T] [--max-frame-bytes N]
 * [--idle-timeout-ms N] [--max-bytes N] [--max-model-floats N] [--max-parked-pulls N]
 * [--max-registrations N] [--snapshot URL] [--snapshot-every S] [--restore]`, run by main.ts
 * (`node dist/paramserver/main.js ...`) and by `cirrus ps`. The token may come from CIRRUS_PS_TOKEN
 * instead (kept out of `ps` listings). Prints `listening host:port` on stdout once bound (tests and
 * the CLI read that line to learn a port picked with --port 0), logs rejected requests to stderr,
 * and stops on SIGINT/SIGTERM or a SHUTDOWN request.
 */
import { PsError } from './errors.js';
import { type ParamServer, type ParamServerOptions, type SnapshotStoreLike, startParamServer } from './server.js';

const NUMERIC_FLAGS = {
  '--port': 'port',
  '--max-frame-bytes': 'maxFrameBytes',
  '--idle-timeout-ms': 'idleTimeoutMs',
  '--max-bytes': 'maxBytes',
  '--max-model-floats': 'maxModelFloats',
  '--max-parked-pulls': 'maxParkedPulls',
  '--max-registrations': 'maxRegistrations',
} as const satisfies Record<string, keyof ParamServerOptions>;

export interface ServerCliOptions extends ParamServerOptions {
  /** file:///dir or s3://bucket/prefix?endpoint=... */
  snapshotUrl?: string;
  snapshotEverySeconds?: number;
}

const FLAG_LIST = '--host, --port, --token, --max-frame-bytes, --idle-timeout-ms, --max-bytes, --max-model-floats, --max-parked-pulls, --max-registrations, --snapshot, --snapshot-every or --restore';

export function parseServerArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): ServerCliOptions {
  const opts: ServerCliOptions = {};
  if (env.CIRRUS_PS_TOKEN) opts.token = env.CIRRUS_PS_TOKEN;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--restore') {
      opts.restore = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new PsError('PS_ARGUMENT', `${flag} needs a value`);
    if (flag === '--host') {
      opts.host = value;
    } else if (flag === '--token') {
      if (value.length === 0) throw new PsError('PS_ARGUMENT', '--token must not be empty');
      opts.token = value;
    } else if (flag === '--snapshot') {
      opts.snapshotUrl = value;
    } else if (flag === '--snapshot-every') {
      const s = Number(value);
      if (!Number.isFinite(s) || s <= 0) throw new PsError('PS_ARGUMENT', `--snapshot-every: expected a number of seconds > 0, got '${value}'`);
      opts.snapshotEverySeconds = s;
    } else if (flag in NUMERIC_FLAGS) {
      const n = Number(value);
      const name = NUMERIC_FLAGS[flag as keyof typeof NUMERIC_FLAGS];
      if (!Number.isSafeInteger(n) || n < 0) throw new PsError('PS_ARGUMENT', `${flag}: expected a non-negative integer, got '${value}'`);
      if (name === 'port' && n > 65535) throw new PsError('PS_ARGUMENT', `--port: expected 0-65535, got ${n}`);
      opts[name] = n;
    } else {
      throw new PsError('PS_ARGUMENT', `unknown option '${flag}'; expected ${FLAG_LIST}`);
    }
  }
  if ((opts.snapshotEverySeconds !== undefined || opts.restore) && opts.snapshotUrl === undefined) {
    throw new PsError('PS_ARGUMENT', '--snapshot-every and --restore need --snapshot <url>');
  }
  return opts;
}

/** Loaded lazily: the snapshot module pulls in the S3 client, which a plain server never needs. */
async function openStore(url: string): Promise<SnapshotStoreLike> {
  const { openSnapshotStore } = await import('./snapshot.js');
  return openSnapshotStore(url);
}

/** Starts a server from command-line arguments and wires signal handling; resolves once listening. */
export async function runParamServerCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<ParamServer> {
  const { snapshotUrl, snapshotEverySeconds, ...opts } = parseServerArgs(argv, env);
  if (snapshotUrl !== undefined) {
    const store = await openStore(snapshotUrl);
    opts.snapshots = snapshotEverySeconds === undefined ? { store } : { store, everyMs: Math.round(snapshotEverySeconds * 1000) };
  }
  opts.log = (line) => process.stderr.write(`paramserver: ${line}\n`);
  const server = await startParamServer(opts);
  process.stdout.write(`listening ${server.address}\n`);
  void server.whenStopped().then(() => process.exit(0));
  const shutdown = () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  return server;
}
