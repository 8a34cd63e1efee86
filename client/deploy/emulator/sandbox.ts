/**
 * One invocation of a Lambda package in a fresh process, as Lambda runs it: the runtime (runtime.ts) loads
 * the function's unzipped code from its task root with Lambda's environment, optionally inside a
 * network namespace (a host of its own), under Lambda's limits:
 * - init phase: at most INIT_LIMIT_MS to load the handler (Lambda's 10 s);
 * - timeout: the function's Timeout from the moment the event is handed over; the context's
 *   remaining time counts down to the same instant; the process is killed then (Sandbox.Timedout);
 * - memory: the V8 heap is capped at the function's MemorySize and a watchdog kills a process whose
 *   resident set goes over it (Runtime.OutOfMemory);
 * - a process that exits without answering is Runtime.ExitError, as Lambda reports it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { InvokeMessage, RuntimeMessage } from './runtime.js';

const RUNTIME = fileURLToPath(new URL('./runtime.js', import.meta.url));
const INIT_LIMIT_MS = 10_000;
const RSS_POLL_MS = 100;

export type SandboxOutcome =
  | { ok: true; payload: string }
  | { ok: false; errorType: string; errorMessage: string; stackTrace: string[] };

export interface SandboxRun {
  requestId: string;
  codeDir: string;
  handler: string;
  timeoutS: number;
  memoryMb: number;
  env: Record<string, string>;
  event: unknown;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  /** Runs the process inside a network namespace (e.g. ['ip', 'netns', 'exec', name]). */
  execPrefix?: readonly string[];
  /** Receives each stdout/stderr line as it comes. */
  onLine?: (line: string) => void;
  /** Called with the process once spawned (so a closing service can kill it). */
  started?: (child: ChildProcess) => void;
}

export interface SandboxResult {
  outcome: SandboxOutcome;
  /** Process start to handler loaded (the runtime's own clock). */
  initMs?: number;
  /** Spawn to the runtime's ready message (this side's clock: the invoke's cold start). */
  readyAfterMs?: number;
  /** Event handed over to outcome. */
  durationMs: number;
  maxRssKb?: number;
}

function rssKb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      onLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  stream.on('end', () => {
    if (pending) onLine(pending);
  });
}

export function runSandbox(run: SandboxRun): Promise<SandboxResult> {
  const id = run.requestId;
  const prefix = run.execPrefix ?? [];
  const argv = [...prefix, process.execPath, `--max-old-space-size=${run.memoryMb}`, RUNTIME];
  const spawnedAt = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { cwd: run.codeDir, env: run.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  run.started?.(child);
  const onLine = run.onLine ?? (() => undefined);
  lines(child.stdout!, onLine);
  lines(child.stderr!, onLine);
  return new Promise<SandboxResult>((resolve) => {
    let initMs: number | undefined;
    let readyAfterMs: number | undefined;
    let handedAt: number | undefined;
    let reply: RuntimeMessage | undefined;
    let killedFor: 'init' | 'timeout' | 'memory' | undefined;
    let peakKb = 0;
    const kill = (why: 'init' | 'timeout' | 'memory') => {
      if (killedFor) return;
      killedFor = why;
      child.kill('SIGKILL');
    };
    let timer = setTimeout(() => kill('init'), INIT_LIMIT_MS);
    const watchdog = setInterval(() => {
      const kb = child.pid !== undefined ? rssKb(child.pid) : undefined;
      if (kb === undefined) return;
      peakKb = Math.max(peakKb, kb);
      if (kb > run.memoryMb * 1024) kill('memory');
    }, RSS_POLL_MS);
    child.on('error', () => undefined); // a failed spawn also ends in 'close'
    child.on('message', (msg: RuntimeMessage) => {
      if (killedFor) return;
      if (msg.kind === 'ready') {
        initMs = msg.initMs;
        readyAfterMs = performance.now() - spawnedAt;
        clearTimeout(timer);
        handedAt = Date.now();
        const deadlineMs = handedAt + run.timeoutS * 1000;
        timer = setTimeout(() => kill('timeout'), deadlineMs - Date.now());
        const invoke: InvokeMessage = {
          event: run.event,
          deadlineMs,
          requestId: id,
          functionName: run.functionName,
          functionVersion: run.functionVersion,
          invokedFunctionArn: run.invokedFunctionArn,
          memoryMb: run.memoryMb,
        };
        child.send(invoke);
        return;
      }
      reply ??= msg;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(watchdog);
      const durationMs = handedAt !== undefined ? Date.now() - handedAt : 0;
      const fail = (errorType: string, errorMessage: string): SandboxOutcome => ({ ok: false, errorType, errorMessage: `RequestId: ${id} Error: ${errorMessage}`, stackTrace: [] });
      let outcome: SandboxOutcome;
      if (killedFor === 'timeout') outcome = fail('Sandbox.Timedout', `Task timed out after ${run.timeoutS.toFixed(2)} seconds`);
      else if (killedFor === 'init') outcome = fail('Sandbox.Timedout', `Init phase timed out after ${INIT_LIMIT_MS / 1000} seconds`);
      else if (killedFor === 'memory') outcome = fail('Runtime.OutOfMemory', `Runtime exited with error: signal: killed (memory size ${run.memoryMb} MB exceeded)`);
      else if (reply?.kind === 'result') outcome = { ok: true, payload: reply.payload };
      else if (reply?.kind === 'error') outcome = { ok: false, errorType: reply.errorType, errorMessage: reply.errorMessage, stackTrace: reply.stackTrace };
      else outcome = fail('Runtime.ExitError', `Runtime exited with error: ${signal ? `signal: ${signal}` : `exit status ${code}`}`);
      const maxRssKb = Math.max(peakKb, reply && reply.kind !== 'ready' ? (reply.maxRssKb ?? 0) : 0) || undefined;
      resolve({ outcome, durationMs, ...(initMs !== undefined ? { initMs } : {}), ...(readyAfterMs !== undefined ? { readyAfterMs } : {}), ...(maxRssKb !== undefined ? { maxRssKb } : {}) });
    });
  });
}
