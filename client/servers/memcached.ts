/**
 * Starts a private memcached for tests, benchmarks and local runs: bound to 127.0.0.1 on a free
 * port, killed on stop() or when this process exits, and even when it is killed (kill -9): a
 * watchdog shell holds a pipe from this process and kills memcached when the pipe closes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ChannelError } from '../../channels/index.js';

export interface MemcachedServerOptions {
  /** Fixed port; by default a free one is picked (and re-picked if another process grabs it first). */
  port?: number;
  /** Cache memory in MiB (-m). Default 1024. */
  memoryMb?: number;
  /** Largest item in MiB (-I). Default 32. */
  itemMaxMb?: number;
  /** Path to the memcached binary; default: searched on PATH. */
  binary?: string;
  /** Address to listen on. Default 127.0.0.1 (workers on other hosts need one they can reach). */
  host?: string;
}

export interface MemcachedServer {
  readonly host: string;
  readonly port: number;
  /** The memcached process id (a job record names it, so `cirrus clean` can stop a server its client left). */
  readonly pid: number;
  /** 'host:port', the form MemcachedSpec.server expects. */
  readonly address: string;
  stop(): Promise<void>;
}

const DEFAULT_HOST = '127.0.0.1';
const READY_DEADLINE_MS = 5_000;
const PORT_ATTEMPTS = 5;
const INSTALL_HINT = 'install it with `apt-get install memcached` (Debian/Ubuntu), `brew install memcached` (macOS) or pass the binary path';

/** Children still running; one process 'exit' hook kills them all (no listener per server). */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) {
        try {
          c.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The memcached binary on PATH (plus the usual install dirs, which PATH may lack under sudo/cron). */
export function findMemcachedBinary(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d.length > 0);
  for (const extra of ['/usr/bin', '/usr/local/bin', '/usr/sbin', '/opt/homebrew/bin']) if (!dirs.includes(extra)) dirs.push(extra);
  for (const dir of dirs) {
    const candidate = path.join(dir, 'memcached');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}

function tryConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.removeAllListeners();
      sock.on('error', () => undefined);
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    live.delete(child);
    return;
  }
  // Keep the event loop alive until the exit is seen (the child is unref'd while running).
  child.ref();
  const exited = waitExit(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
  await exited;
  clearTimeout(timer);
  live.delete(child);
}

/**
 * A shell that kills `pid` once its stdin closes: at stop(), or when this process dies however it
 * dies (the kernel closes the pipe). Its own process group, so a Ctrl-C to ours does not end it first.
 */
function guard(pid: number): ChildProcess {
  const w = spawn('/bin/sh', ['-c', `read _ignored; kill -9 ${pid} 2>/dev/null`], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  w.on('error', () => undefined);
  w.stdin?.on('error', () => undefined);
  w.unref();
  (w.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  return w;
}

type Attempt = { kind: 'ok'; child: ChildProcess } | { kind: 'port-in-use' } | { kind: 'failed'; message: string };

async function launch(binary: string, host: string, port: number, memoryMb: number, itemMaxMb: number): Promise<Attempt> {
  const args = ['-l', host, '-p', String(port), '-U', '0', '-m', String(memoryMb), '-I', `${itemMaxMb}m`, '-t', '2'];
  // memcached refuses to run as root unless told which user to run as.
  if (process.getuid?.() === 0) args.push('-u', 'root');
  // Its own process group: a Ctrl-C to the client's group must leave the job's keys to the client's cleanup.
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  trackChild(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-4_000);
  });
  let spawnError: Error | undefined;
  child.once('error', (e) => {
    spawnError = e;
  });
  // Do not keep a test runner alive just because a server was left running; the exit hook kills it.
  child.unref();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();

  const deadline = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      // A spawn failure emits 'error' and possibly no 'exit', so only wait for an exit that happened.
      if (!spawnError) await waitExit(child);
      live.delete(child);
      if (spawnError && (spawnError as NodeJS.ErrnoException).code === 'ENOENT') {
        return { kind: 'failed', message: `memcached was not found at ${binary}; ${INSTALL_HINT}` };
      }
      if (/address already in use/i.test(stderr)) return { kind: 'port-in-use' };
      const why = spawnError ? spawnError.message : `exited with ${child.exitCode ?? child.signalCode}`;
      return { kind: 'failed', message: `memcached (${binary} ${args.join(' ')}) ${why}: ${stderr.trim() || 'no output'}` };
    }
    if (await tryConnect(host, port, 250)) {
      // The port might belong to someone else if memcached lost the race and is about to exit.
      if (child.exitCode === null && child.signalCode === null) return { kind: 'ok', child };
      continue;
    }
    if (Date.now() >= deadline) {
      await killAndWait(child);
      return { kind: 'failed', message: `memcached on ${host}:${port} did not accept connections within ${READY_DEADLINE_MS} ms: ${stderr.trim() || 'no output'}` };
    }
    await sleep(20);
  }
}

export async function startMemcached(opts: MemcachedServerOptions = {}): Promise<MemcachedServer> {
  const binary = opts.binary ?? findMemcachedBinary();
  if (binary === undefined || !isExecutable(binary)) {
    const where = binary === undefined ? 'on PATH' : `at ${binary}`;
    throw new ChannelError('CHANNEL_UNREACHABLE', `memcached was not found ${where}; ${INSTALL_HINT}`);
  }
  const memoryMb = opts.memoryMb ?? 1024;
  const itemMaxMb = opts.itemMaxMb ?? 32;
  const host = opts.host ?? DEFAULT_HOST;
  const attempts = opts.port === undefined ? PORT_ATTEMPTS : 1;
  let last = '';
  for (let i = 0; i < attempts; i++) {
    const port = opts.port ?? (await freePort(host));
    const r = await launch(binary, host, port, memoryMb, itemMaxMb);
    if (r.kind === 'ok') {
      const child = r.child;
      const watchdog = guard(child.pid!);
      let stopping: Promise<void> | undefined;
      return {
        host,
        port,
        pid: child.pid!,
        address: `${host}:${port}`,
        stop: () => (stopping ??= killAndWait(child).finally(() => watchdog.stdin?.end())),
      };
    }
    if (r.kind === 'failed') throw new ChannelError('CHANNEL_UNREACHABLE', r.message);
    last = `port ${port} is already in use`;
  }
  throw new ChannelError('CHANNEL_UNREACHABLE', `could not start memcached after ${attempts} attempt(s): ${last}`);
}
