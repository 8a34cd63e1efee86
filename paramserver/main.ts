/**
 * Command-line entry: `node dist/paramserver/main.js [--host H] [--port P] [--max-frame-bytes N]
 * [--idle-timeout-ms N] [--max-bytes N]`. Prints `listening host:port` on stdout once bound (tests
 * and the CLI read that line to learn a port picked with --port 0) and stops on SIGINT/SIGTERM.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PsError } from './errors.js';
import { type ParamServer, type ParamServerOptions, startParamServer } from './server.js';

const NUMERIC_FLAGS = {
  '--port': 'port',
  '--max-frame-bytes': 'maxFrameBytes',
  '--idle-timeout-ms': 'idleTimeoutMs',
  '--max-bytes': 'maxBytes',
} as const satisfies Record<string, keyof ParamServerOptions>;

export function parseServerArgs(argv: readonly string[]): ParamServerOptions {
  const opts: ParamServerOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new PsError('PS_ARGUMENT', `${flag} needs a value`);
    if (flag === '--host') {
      opts.host = value;
    } else if (flag in NUMERIC_FLAGS) {
      const n = Number(value);
      const name = NUMERIC_FLAGS[flag as keyof typeof NUMERIC_FLAGS];
      if (!Number.isSafeInteger(n) || n < 0) throw new PsError('PS_ARGUMENT', `${flag}: expected a non-negative integer, got '${value}'`);
      if (name === 'port' && n > 65535) throw new PsError('PS_ARGUMENT', `--port: expected 0-65535, got ${n}`);
      opts[name] = n;
    } else {
      throw new PsError('PS_ARGUMENT', `unknown option '${flag}'; expected --host, --port, --max-frame-bytes, --idle-timeout-ms or --max-bytes`);
    }
  }
  return opts;
}

/** Starts a server from command-line arguments and wires signal handling; resolves once listening. */
export async function runParamServerCli(argv: readonly string[]): Promise<ParamServer> {
  const server = await startParamServer(parseServerArgs(argv));
  process.stdout.write(`listening ${server.address}\n`);
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

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  runParamServerCli(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`paramserver: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  });
}
