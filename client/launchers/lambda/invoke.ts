/**
 * One Invoke with Lambda's throttling retried: capped exponential backoff with jitter, a bounded
 * number of times (the SDK's own retries are off so the bound is exact). Other failures are not
 * retried: a repeated async invoke could run the worker twice. An abort ends the wait at once.
 */
import { InvokeCommand, type InvokeCommandOutput, type LambdaClient } from '@aws-sdk/client-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import { isThrottle } from './errors.js';
import type { ResolvedOptions } from './options.js';

/** The aborted-by-kill marker, so an abort is never mistaken for an invoke failure. */
export class Aborted extends Error {}

/** Rejects with Aborted when the signal aborts (never resolves). */
export function abortion(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(new Aborted());
    else signal.addEventListener('abort', () => reject(new Aborted()), { once: true });
  });
}

/** Exponential backoff with jitter (half fixed, half random), at least Lambda's Retry-After, capped. */
function throttleBackoffMs(err: unknown, attempt: number, opts: Pick<ResolvedOptions, 'baseDelayMs' | 'maxDelayMs'>): number {
  const exp = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1));
  const jittered = exp / 2 + (Math.random() * exp) / 2;
  const retryAfterS = Number((err as { retryAfterSeconds?: unknown }).retryAfterSeconds);
  const floor = Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : 0;
  return Math.min(opts.maxDelayMs, Math.max(jittered, floor));
}

/**
 * Sends the invoke until it is not throttled or the attempts run out; `onAttempt` counts each
 * send (for messages). Throws Aborted when the signal aborts, else the last SDK error.
 */
export async function invokeWithRetry(client: LambdaClient, payload: Uint8Array, opts: ResolvedOptions, signal: AbortSignal, onAttempt: () => number): Promise<InvokeCommandOutput> {
  const withLogs = opts.onLog !== undefined && opts.invocationType === 'RequestResponse';
  for (;;) {
    const attempt = onAttempt();
    try {
      return await client.send(new InvokeCommand({ FunctionName: opts.functionName, InvocationType: opts.invocationType, Payload: payload, ...(withLogs ? { LogType: 'Tail' as const } : {}) }), { abortSignal: signal });
    } catch (err) {
      if (signal.aborted) throw new Aborted();
      if (!isThrottle(err) || attempt >= opts.attempts) throw err;
      try {
        await sleep(throttleBackoffMs(err, attempt, opts), undefined, { signal });
      } catch {
        throw new Aborted();
      }
    }
  }
}
