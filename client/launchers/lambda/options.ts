/**
 * The LambdaLauncher's options: their types, their defaults, and the check that turns bad ones
 * into one LauncherError naming the field (before any client or request exists).
 */
import type { LambdaClientConfig } from '@aws-sdk/client-lambda';
import { LauncherError, type WorkerEvent, type WorkerResult } from '../types.js';

export type LambdaInvocationType = 'Event' | 'RequestResponse';

/** Lambda's request payload limits in bytes. */
export const LAMBDA_PAYLOAD_LIMITS: Readonly<Record<LambdaInvocationType, number>> = { Event: 256 * 1024, RequestResponse: 6 * 1024 * 1024 };

export interface AwaitResultContext {
  /** The handle's id. */
  handleId: string;
  /** Lambda's request id of the accepted invoke (when the response carried one). */
  requestId: string | undefined;
  /** Aborted when the handle is killed or the launcher closes: stop watching then. */
  signal: AbortSignal;
}

/** Produces a worker's result when Lambda cannot return it (async invokes). May reject: that becomes an 'error' status. */
export type AwaitResult = (event: WorkerEvent, context: AwaitResultContext) => Promise<WorkerResult>;

/** Where results of async invokes come from: the training client's watcher over the job's channel keys. */
export interface LambdaResultChannel {
  awaitResult: AwaitResult;
}

export interface LambdaRetryOptions {
  /** Invoke attempts in all when throttled (the first included). Default 6. */
  attempts?: number;
  /** First backoff in ms; doubles with every retry. Default 200. */
  baseDelayMs?: number;
  /** Longest backoff in ms (a Retry-After from Lambda is honoured up to this). Default 20000. */
  maxDelayMs?: number;
}

export interface LambdaLauncherOptions {
  /** A function name, 'name:alias' / 'name:version', a partial ARN or a full ARN. */
  functionName: string;
  /** Default: the region of an ARN function name, else the SDK's chain (AWS_REGION, ~/.aws/config). */
  region?: string;
  /** A custom endpoint URL (tests, LocalStack). */
  endpoint?: string;
  /** Default: the standard AWS credential chain. */
  credentials?: LambdaClientConfig['credentials'];
  /** Default 'Event' (fire and forget, as in Cirrus). */
  invocationType?: LambdaInvocationType;
  /**
   * Invocations in flight at once; further launches queue in order. An invocation counts until its
   * result settles (for 'Event' without a result source: until Lambda accepts it). Default: no cap.
   */
  concurrency?: number;
  /** Result of async invokes, as a callback. */
  awaitResult?: AwaitResult;
  /** Result of async invokes, as an object (give this or awaitResult, not both). */
  resultChannel?: LambdaResultChannel;
  retry?: LambdaRetryOptions;
  /** Override of the payload limit (bytes), e.g. where AWS raised it. Default: LAMBDA_PAYLOAD_LIMITS. */
  maxPayloadBytes?: number;
  /**
   * Receives the tail of each synchronous invocation's log (Lambda's LogType=Tail, last 4 KB).
   * Also gives coldStartMs (REPORT's Init Duration) and peakRssMb (Max Memory Used).
   */
  onLog?: (line: string, worker: { id: string; rank: number }) => void;
}

/** The options with every default filled in, as the workers read them. */
export interface ResolvedOptions {
  functionName: string;
  invocationType: LambdaInvocationType;
  concurrency: number;
  awaitResult: AwaitResult | undefined;
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxPayloadBytes: number;
  endpoint: string | undefined;
  onLog: LambdaLauncherOptions['onLog'];
}

// AWS's own pattern for FunctionName, with its '0-9-_' classes rewritten so that '-' is a literal
// (in a JS class '9-_' would be a range that lets ':' and '@' through).
const FUNCTION_NAME = /^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9_.-]+)(:(\$LATEST|[a-zA-Z0-9_-]+))?$/;
const ARN_REGION = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):/;

/** The region an ARN function name carries, if it is an ARN. */
export function regionOfArn(functionName: string): string | undefined {
  return ARN_REGION.exec(functionName)?.[1];
}

/** Checks the options and fills in defaults; throws LauncherError('LAUNCHER_OPTIONS') naming the field. */
export function resolveOptions(options: LambdaLauncherOptions): ResolvedOptions {
  const bad = (field: string, msg: string): LauncherError => new LauncherError('LAUNCHER_OPTIONS', `LambdaLauncher ${field}: ${msg}`);
  const fn = options.functionName;
  if (typeof fn !== 'string' || !FUNCTION_NAME.test(fn) || fn.length > 170) {
    throw bad('functionName', `expected a function name, 'name:alias', or an ARN, got ${JSON.stringify(fn)}`);
  }
  const invocationType = options.invocationType ?? 'Event';
  if (invocationType !== 'Event' && invocationType !== 'RequestResponse') throw bad('invocationType', `expected 'Event' or 'RequestResponse', got ${JSON.stringify(invocationType)}`);
  const concurrency = options.concurrency ?? Infinity;
  if (concurrency !== Infinity && (!Number.isInteger(concurrency) || concurrency < 1)) throw bad('concurrency', `expected an integer >= 1, got ${concurrency}`);
  if (options.awaitResult && options.resultChannel) throw bad('awaitResult', 'give awaitResult or resultChannel, not both');
  const awaitResult = options.awaitResult ?? (options.resultChannel ? (e: WorkerEvent, c: AwaitResultContext) => options.resultChannel!.awaitResult(e, c) : undefined);
  if (awaitResult && invocationType === 'RequestResponse') throw bad('awaitResult', "only applies to invocationType 'Event' (a synchronous invoke returns its result itself)");
  const attempts = options.retry?.attempts ?? 6;
  const baseDelayMs = options.retry?.baseDelayMs ?? 200;
  const maxDelayMs = options.retry?.maxDelayMs ?? 20_000;
  if (!Number.isInteger(attempts) || attempts < 1) throw bad('retry.attempts', `expected an integer >= 1, got ${attempts}`);
  if (!(baseDelayMs >= 0) || !(maxDelayMs >= baseDelayMs)) throw bad('retry', `expected 0 <= baseDelayMs <= maxDelayMs, got ${baseDelayMs} and ${maxDelayMs}`);
  const maxPayloadBytes = options.maxPayloadBytes ?? LAMBDA_PAYLOAD_LIMITS[invocationType];
  if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1) throw bad('maxPayloadBytes', `expected a positive integer, got ${maxPayloadBytes}`);
  return { functionName: fn, invocationType, concurrency, awaitResult, attempts, baseDelayMs, maxDelayMs, maxPayloadBytes, endpoint: options.endpoint, onLog: options.onLog };
}
