/**
 * The local launcher's child-process runtime: reads the event JSON from stdin, runs a handler with
 * a Lambda-like context, and exits. Protocol on stdout (every other line is a log line):
 *
 *   {"cirrusWorker":"start","t":<epoch ms>,"pid":<pid>}          on entering the handler
 *   {"cirrusWorker":"result","ok":true,"value":...,"maxRssKb":N,"cpuUs":N}   last line, on success
 *   (cpuUs: the process's user + system CPU time in microseconds, start-up included)
 *   {"cirrusWorker":"result","ok":false,"error":{code,message,name},"maxRssKb":N}
 *
 * The client's launcher parses these lines itself (it never imports worker code). The context's
 * remaining time counts down to CIRRUS_WORKER_DEADLINE_MS, the instant the launcher kills the
 * child, as Lambda's does to the function's timeout.
 */
import { rmSync } from 'node:fs';
import { basename } from 'node:path';
import type { WorkerContext } from './handler.js';

export type WorkerHandler = (event: unknown, context?: WorkerContext) => Promise<unknown>;

const KEY = 'cirrusWorker';
/** The local launcher's per-worker temp dirs (client/launchers/sandbox-tmp.ts) start so. */
const WORKER_TMP_PREFIX = 'cirrus-worker-tmp-';
/** How often an orphaned worker notices that its parent is gone. */
const PARENT_POLL_MS = 500;

interface ErrorInfo {
  code: string;
  message: string;
  name: string;
}

function errorInfo(err: unknown, fallback: string): ErrorInfo {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { code: typeof code === 'string' && code ? code : fallback, message: err.message, name: err.name };
  }
  return { code: fallback, message: String(err), name: 'Error' };
}

/** The context a child gets: Lambda's shape, fed by the launcher's limits. */
export function childContext(env: NodeJS.ProcessEnv = process.env): WorkerContext | undefined {
  const deadline = Number(env.CIRRUS_WORKER_DEADLINE_MS);
  if (!Number.isFinite(deadline) || deadline <= 0) return undefined;
  const memory = Number(env.CIRRUS_WORKER_MEMORY_MB);
  return {
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    ...(Number.isFinite(memory) && memory > 0 ? { memoryLimitInMB: memory } : {}),
  };
}

/** User + system CPU time of this process so far, in microseconds. */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs one event through `handler` and exits the process; never returns normally. */
export async function runWorkerChild(handler: WorkerHandler): Promise<void> {
  let finished = false;
  /** Prints the result line and exits once it is flushed (open sockets must not keep a finished worker alive). */
  const finish = (body: { ok: true; value: unknown } | { ok: false; error: ErrorInfo }): void => {
    if (finished) return;
    finished = true;
    let line: string;
    try {
      line = JSON.stringify({ [KEY]: 'result', ...body, maxRssKb: process.resourceUsage().maxRSS, cpuUs: cpuMicros() });
    } catch (err) {
      // A value JSON cannot carry (a cycle, a BigInt) is the handler's bug: report it as such.
      line = JSON.stringify({ [KEY]: 'result', ok: false, error: errorInfo(err, 'RESULT_NOT_JSON'), maxRssKb: process.resourceUsage().maxRSS });
    }
    process.stdout.write(line + '\n', () => process.exit(body.ok ? 0 : 1));
  };
  process.on('uncaughtException', (err) => finish({ ok: false, error: errorInfo(err, 'WORKER_UNCAUGHT') }));
  process.on('unhandledRejection', (err) => finish({ ok: false, error: errorInfo(err, 'WORKER_UNCAUGHT') }));

  // Exits when the parent dies (its pid changes once we are re-parented), so no worker outlives its launcher.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      // The launcher that made this worker's /tmp is gone, so the worker removes it itself.
      const own = process.env.TMPDIR;
      if (own && basename(own).startsWith(WORKER_TMP_PREFIX)) rmSync(own, { recursive: true, force: true });
      process.exit(137);
    }
  }, PARENT_POLL_MS).unref();

  const text = await readStdin();
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch (err) {
    finish({ ok: false, error: { code: 'EVENT_INVALID', message: `event: stdin is not valid JSON (${(err as Error).message})`, name: 'EventError' } });
    return;
  }
  // A prewarmed child (client/launchers/prewarm.ts) learns its deadline with its event.
  const warm = (event as { cirrusPrewarmed?: { deadlineMs?: unknown; timeoutMs?: unknown } } | null)?.cirrusPrewarmed;
  if (warm && typeof warm === 'object') {
    if (typeof warm.deadlineMs === 'number') process.env.CIRRUS_WORKER_DEADLINE_MS = String(warm.deadlineMs);
    if (typeof warm.timeoutMs === 'number') process.env.CIRRUS_WORKER_TIMEOUT_MS = String(warm.timeoutMs);
    event = (event as { event?: unknown }).event;
  }
  process.stdout.write(JSON.stringify({ [KEY]: 'start', t: Date.now(), pid: process.pid }) + '\n');
  try {
    finish({ ok: true, value: await handler(event, childContext()) });
  } catch (err) {
    finish({ ok: false, error: errorInfo(err, 'WORKER_ERROR') });
  }
}
