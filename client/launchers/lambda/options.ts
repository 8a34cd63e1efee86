/**
 * The LambdaLauncher's options: their types, their defaults, and the check (a zod schema) that
 * turns bad ones into one LauncherError naming the field (before any client or request exists).
 */
import type { LambdaClientConfig } from '@aws-sdk/client-lambda';
import { z } from 'zod';
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

/** A zod error option: `expected <what>, got <the value>` (the value shown by `show`). */
function expected(what: string, show: (v: unknown) => string = String): { error: (issue: { input?: unknown }) => string } {
  return { error: (issue) => `expected ${what}, got ${show(issue.input)}` };
}
const NAME = expected("a function name, 'name:alias', or an ARN", (v) => JSON.stringify(v));
const POSITIVE_INT = expected('an integer >= 1');
const isFunction = (v: unknown): boolean => typeof v === 'function';

/** The options as read from the caller: types, ranges and defaults (functions are checked to be functions). */
const optionsSchema = z
  .object({
    functionName: z.string(NAME).max(170, NAME).regex(FUNCTION_NAME, NAME),
    region: z.string(expected('a region name')).optional(),
    endpoint: z.string(expected('an endpoint URL')).optional(),
    credentials: z.unknown().optional(),
    invocationType: z.enum(['Event', 'RequestResponse'], expected("'Event' or 'RequestResponse'", (v) => JSON.stringify(v))).default('Event'),
    // Infinity (no cap) is the default, and zod's numbers are finite: one check for both.
    concurrency: z.custom<number>((v) => v === Infinity || (Number.isInteger(v) && (v as number) >= 1), POSITIVE_INT).default(Infinity),
    awaitResult: z.custom<AwaitResult>(isFunction, expected('a function (event, context) => Promise<WorkerResult>')).optional(),
    resultChannel: z.custom<LambdaResultChannel>((v) => typeof v === 'object' && v !== null && isFunction((v as LambdaResultChannel).awaitResult), expected('an object with awaitResult(event, context)')).optional(),
    retry: z
      .object({
        attempts: z.number(POSITIVE_INT).int(POSITIVE_INT).min(1, POSITIVE_INT).default(6),
        baseDelayMs: z.number(expected('a number of ms')).default(200),
        maxDelayMs: z.number(expected('a number of ms')).default(20_000),
      })
      .default({ attempts: 6, baseDelayMs: 200, maxDelayMs: 20_000 })
      .refine((r) => r.baseDelayMs >= 0 && r.maxDelayMs >= r.baseDelayMs, { error: (issue) => {
        const r = issue.input as { baseDelayMs: number; maxDelayMs: number };
        return `expected 0 <= baseDelayMs <= maxDelayMs, got ${r.baseDelayMs} and ${r.maxDelayMs}`;
      } }),
    maxPayloadBytes: z.number(expected('a positive integer')).int(expected('a positive integer')).min(1, expected('a positive integer')).optional(),
    onLog: z.custom<LambdaLauncherOptions['onLog']>(isFunction, expected('a function (line, worker) => void')).optional(),
  })
  .superRefine((o, ctx) => {
    if (o.awaitResult && o.resultChannel) ctx.addIssue({ code: 'custom', path: ['awaitResult'], message: 'give awaitResult or resultChannel, not both' });
    else if ((o.awaitResult || o.resultChannel) && o.invocationType === 'RequestResponse') {
      ctx.addIssue({ code: 'custom', path: ['awaitResult'], message: "only applies to invocationType 'Event' (a synchronous invoke returns its result itself)" });
    }
  });

/** Checks the options and fills in defaults; throws LauncherError('LAUNCHER_OPTIONS') naming the field. */
export function resolveOptions(options: LambdaLauncherOptions): ResolvedOptions {
  const r = optionsSchema.safeParse(options);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new LauncherError('LAUNCHER_OPTIONS', `LambdaLauncher ${issue.path.map(String).join('.') || 'options'}: ${issue.message}`);
  }
  const o = r.data;
  const channel = o.resultChannel;
  const awaitResult = o.awaitResult ?? (channel ? (e: WorkerEvent, c: AwaitResultContext) => channel.awaitResult(e, c) : undefined);
  const { attempts, baseDelayMs, maxDelayMs } = o.retry;
  const maxPayloadBytes = o.maxPayloadBytes ?? LAMBDA_PAYLOAD_LIMITS[o.invocationType];
  return { functionName: o.functionName, invocationType: o.invocationType, concurrency: o.concurrency, awaitResult, attempts, baseDelayMs, maxDelayMs, maxPayloadBytes, endpoint: o.endpoint, onLog: options.onLog };
}
