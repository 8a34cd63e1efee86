/**
 * A synchronous invoke's response -> the worker's status, value or error. Lambda's error payload
 * has no room for the worker's error `code`: a handler error comes back as {errorType,
 * errorMessage}; the code is taken from the payload when present, else from the 'Cirrus.<CODE>'
 * errorType the worker's handler sets, else inferred from Lambda's runtime error types, else
 * 'WORKER_ERROR'.
 */
import type { InvokeCommandOutput } from '@aws-sdk/client-lambda';
import type { WorkerError, WorkerResult } from '../types.js';
import { parseLogTail } from './logs.js';

/** A handler error as Lambda reports it: the WorkerError plus Lambda's errorType and stack. */
export interface LambdaWorkerError extends WorkerError {
  /** Lambda's errorType: the thrown error's name, or a runtime type such as 'Runtime.ExitError'. */
  type?: string;
  stackTrace?: string[];
}

/** Who answered, for messages and for the log callback. */
interface ResponseSource {
  id: string;
  rank: number;
  requestId: string | undefined;
  functionName: string;
  onLog: ((line: string, worker: { id: string; rank: number }) => void) | undefined;
}

export function resultOfResponse(out: InvokeCommandOutput, src: ResponseSource): Omit<WorkerResult, 'durationMs'> {
  const logs = parseLogTail(out.LogResult, src.onLog ? (line) => src.onLog!(line, { id: src.id, rank: src.rank }) : undefined);
  const base: { coldStartMs: number; peakRssMb?: number } = { coldStartMs: logs.initMs ?? 0, ...(logs.maxMemoryMb !== undefined ? { peakRssMb: logs.maxMemoryMb } : {}) };
  const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
  let body: unknown;
  let parsed = true;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = false;
  }
  const who = `worker ${src.id} (rank ${src.rank}, request ${src.requestId ?? '?'}) of Lambda function '${src.functionName}'`;
  if (out.FunctionError !== undefined) {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const type = typeof b.errorType === 'string' ? b.errorType : out.FunctionError;
    const message = typeof b.errorMessage === 'string' ? b.errorMessage : text || `${who} failed (${out.FunctionError}) without an error message`;
    const trace = Array.isArray(b.stackTrace) ? b.stackTrace : Array.isArray(b.trace) ? b.trace : undefined;
    const error: LambdaWorkerError = { code: workerErrorCode(b, type, message), message, type };
    if (trace) error.stackTrace = trace.map(String);
    if (logs.text) error.stderr = logs.text;
    return { ...base, status: error.code === 'TIMEOUT' ? 'timeout' : 'error', error };
  }
  if (!parsed) return { ...base, status: 'error', error: { code: 'LAMBDA_BAD_RESPONSE', message: `${who} returned a payload that is not JSON: ${JSON.stringify(text.slice(0, 200))}` } };
  return { ...base, status: 'ok', value: body };
}

/** The worker's error code: its own when the payload carries one, else what Lambda's runtime type says. */
function workerErrorCode(body: Record<string, unknown>, type: string, message: string): string {
  for (const k of ['code', 'errorCode']) if (typeof body[k] === 'string' && body[k] !== '') return body[k];
  // The worker's handler names a coded error 'Cirrus.<CODE>' (worker/handler.ts).
  const coded = /^Cirrus\.([A-Z][A-Z0-9_]*)$/.exec(type);
  if (coded) return coded[1]!;
  if (type === 'Sandbox.Timedout' || /Task timed out after/.test(message)) return 'TIMEOUT';
  if (type === 'Runtime.OutOfMemory') return 'OUT_OF_MEMORY';
  if (type === 'Runtime.ExitError') return 'WORKER_CRASHED';
  return 'WORKER_ERROR';
}
