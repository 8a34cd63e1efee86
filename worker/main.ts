/**
 * Child-process entry used by the local launcher: reads the event JSON from stdin, runs the
 * handler, and exits. Protocol on stdout (every other line is a log line):
 *
 *   {"cirrusWorker":"start","t":<epoch ms>,"pid":<pid>}          on entering the handler
 *   {"cirrusWorker":"result","ok":true,"value":...,"maxRssKb":N}   last line, on success
 *   {"cirrusWorker":"result","ok":false,"error":{code,message,name},"maxRssKb":N}
 *
 * The client's launcher parses these lines itself (it never imports worker code).
 */
import { handler } from './handler.js';

const KEY = 'cirrusWorker';
/** How often an orphaned worker notices that its parent is gone. */
const PARENT_POLL_MS = 500;

let finished = false;

function errorInfo(err: unknown, fallback: string): { code: string; message: string; name: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { code: typeof code === 'string' && code ? code : fallback, message: err.message, name: err.name };
  }
  return { code: fallback, message: String(err), name: 'Error' };
}

/** Prints the result line and exits once it is flushed (open handles such as sockets must not keep a finished worker alive). */
function finish(body: { ok: true; value: unknown } | { ok: false; error: { code: string; message: string; name: string } }): void {
  if (finished) return;
  finished = true;
  let line: string;
  try {
    line = JSON.stringify({ [KEY]: 'result', ...body, maxRssKb: process.resourceUsage().maxRSS });
  } catch (err) {
    // A value JSON cannot carry (a cycle, a BigInt) is the handler's bug: report it as such.
    line = JSON.stringify({ [KEY]: 'result', ok: false, error: errorInfo(err, 'RESULT_NOT_JSON'), maxRssKb: process.resourceUsage().maxRSS });
  }
  process.stdout.write(line + '\n', () => process.exit(body.ok ? 0 : 1));
}

/** Exits when the parent dies (its pid changes once we are re-parented), so no worker outlives its launcher. */
function watchParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(137);
  }, PARENT_POLL_MS).unref();
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

process.on('uncaughtException', (err) => finish({ ok: false, error: errorInfo(err, 'WORKER_UNCAUGHT') }));
process.on('unhandledRejection', (err) => finish({ ok: false, error: errorInfo(err, 'WORKER_UNCAUGHT') }));

watchParent();
const text = await readStdin();
let event: unknown;
try {
  event = JSON.parse(text);
} catch (err) {
  finish({ ok: false, error: { code: 'EVENT_INVALID', message: `event: stdin is not valid JSON (${(err as Error).message})`, name: 'EventError' } });
}
if (!finished) {
  process.stdout.write(JSON.stringify({ [KEY]: 'start', t: Date.now(), pid: process.pid }) + '\n');
  try {
    finish({ ok: true, value: await handler(event) });
  } catch (err) {
    finish({ ok: false, error: errorInfo(err, 'WORKER_ERROR') });
  }
}
