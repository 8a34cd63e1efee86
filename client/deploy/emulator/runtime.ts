/**
 * The runtime inside one emulated Lambda sandbox (sandbox.ts), playing the part of AWS's Node.js runtime
 * interface client: it loads the handler named by `_HANDLER` ('index.handler': export `handler` of
 * `index.mjs`, `.js` or `.cjs`) from `LAMBDA_TASK_ROOT` during the init phase, reports `ready`,
 * then runs one event with a context object and reports its outcome. It imports node builtins
 * only: the function's code must bring everything else itself, as on Lambda.
 *
 * Messages over the IPC channel: runtime -> service {kind: 'ready', initMs} | {kind: 'result',
 * payload} | {kind: 'error', errorType, errorMessage, stackTrace}; service -> runtime
 * {event, deadlineMs, requestId, functionName, functionVersion, invokedFunctionArn, memoryMb}.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface InvokeMessage {
  event: unknown;
  deadlineMs: number;
  requestId: string;
  functionName: string;
  functionVersion: string;
  invokedFunctionArn: string;
  memoryMb: number;
}

export type RuntimeMessage =
  | { kind: 'ready'; initMs: number }
  | { kind: 'result'; payload: string; maxRssKb: number }
  | { kind: 'error'; errorType: string; errorMessage: string; stackTrace: string[]; maxRssKb?: number };

type Handler = (event: unknown, context: unknown) => unknown;

function send(msg: RuntimeMessage, then?: () => void): void {
  process.send!(msg, () => then?.());
}

function failure(err: unknown, fallbackType: string): RuntimeMessage {
  if (err instanceof Error) return { kind: 'error', errorType: err.name || fallbackType, errorMessage: err.message, stackTrace: (err.stack ?? '').split('\n').slice(1).map((l) => l.trim()) };
  return { kind: 'error', errorType: fallbackType, errorMessage: String(err), stackTrace: [] };
}

/** Reports and exits: a sandbox runs one invocation (the stand-in has no warm reuse). */
function finish(msg: RuntimeMessage): never {
  send({ ...msg, maxRssKb: process.resourceUsage().maxRSS } as RuntimeMessage, () => process.exit(0));
  // Keep the process alive until the message is out; exit() above ends it.
  return undefined as never;
}

async function loadHandler(): Promise<Handler> {
  const root = process.env.LAMBDA_TASK_ROOT ?? '';
  const spec = process.env._HANDLER ?? '';
  const dot = spec.lastIndexOf('.');
  if (!root || dot <= 0) throw Object.assign(new Error(`Bad handler '${spec}': expected 'file.function'`), { name: 'Runtime.MalformedHandlerName' });
  const module = spec.slice(0, dot);
  const name = spec.slice(dot + 1);
  const file = ['.mjs', '.js', '.cjs'].map((ext) => join(root, module + ext)).find((f) => existsSync(f));
  if (!file) throw Object.assign(new Error(`Cannot find module '${module}' in ${root}`), { name: 'Runtime.ImportModuleError' });
  let m: Record<string, unknown>;
  try {
    m = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw Object.assign(new Error(`${(err as Error).message}`), { name: 'Runtime.ImportModuleError', stack: (err as Error).stack });
  }
  const handler = m[name];
  if (typeof handler !== 'function') throw Object.assign(new Error(`${spec} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  return handler as Handler;
}

async function main(): Promise<void> {
  process.on('uncaughtException', (err) => finish(failure(err, 'Runtime.UncaughtException')));
  process.on('unhandledRejection', (err) => finish(failure(err, 'Runtime.UnhandledPromiseRejection')));
  let handler: Handler;
  try {
    handler = await loadHandler();
  } catch (err) {
    finish(failure(err, 'Runtime.ImportModuleError'));
    return;
  }
  // performance.now() counts from process start: the whole init phase.
  send({ kind: 'ready', initMs: performance.now() });
  process.once('message', (msg: InvokeMessage) => {
    const context = {
      awsRequestId: msg.requestId,
      functionName: msg.functionName,
      functionVersion: msg.functionVersion,
      invokedFunctionArn: msg.invokedFunctionArn,
      memoryLimitInMB: String(msg.memoryMb),
      logGroupName: `/aws/lambda/${msg.functionName}`,
      logStreamName: `stand-in/${process.pid}`,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, msg.deadlineMs - Date.now()),
    };
    void (async () => {
      try {
        const value = await handler(msg.event, context);
        let payload: string;
        try {
          // Lambda serialises the return value as JSON; undefined becomes null.
          payload = JSON.stringify(value) ?? 'null';
        } catch (err) {
          finish({ kind: 'error', errorType: 'Runtime.MarshalError', errorMessage: `Unable to marshal response: ${(err as Error).message}`, stackTrace: [] });
          return;
        }
        finish({ kind: 'result', payload, maxRssKb: 0 });
      } catch (err) {
        finish(failure(err, 'Error'));
      }
    })();
  });
}

if (typeof process.send === 'function') void main();
