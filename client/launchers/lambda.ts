/**
 * AWS Lambda launcher: each worker is one Invoke of a deployed function whose handler is
 * worker/handler.ts. The event travels as the invoke payload, so it must stay small (keys and
 * params, never data): Lambda refuses async payloads over 256 KB and sync ones over 6 MB, and this
 * launcher refuses them first, before any request, with the size in the message.
 *
 * Invocation types:
 * - 'Event' (default, as in Cirrus): fire and forget. Lambda answers 202 once the invoke is queued,
 *   so the result cannot come back in the response: it comes from `awaitResult` (or a
 *   `resultChannel`), which the training client provides by watching the job's keys in its
 *   channel. Without one, the result is {status: 'ok', value: {accepted: true}} on acceptance.
 * - 'RequestResponse': the HTTP response carries the handler's return value, or its error
 *   (X-Amz-Function-Error) with the type and message Lambda reports.
 *
 * Limits of Lambda that shape this code:
 * - kill() cannot stop an accepted invocation (Lambda has no such API): the handle is marked
 *   killed and its result resolves as 'killed' at once, but the function may keep running until it
 *   returns or hits its own timeout. A worker killed while still queued here is never invoked.
 * - Lambda's error payload has no room for the worker's error `code`: a handler error comes back as
 *   {errorType, errorMessage}; the code is taken from the payload when present, else inferred from
 *   Lambda's runtime error types, else 'WORKER_ERROR'.
 * - Throttling (429 TooManyRequestsException) is retried here with capped exponential backoff and
 *   jitter, a bounded number of times; the SDK's own retries are off so the bound is exact. Other
 *   failures are not retried: a repeated async invoke could run the worker twice.
 */
import { InvokeCommand, LambdaClient, type InvokeCommandOutput, type LambdaClientConfig } from '@aws-sdk/client-lambda';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { LauncherError, type Launcher, type WorkerError, type WorkerEvent, type WorkerHandle, type WorkerResult } from './types.js';
import { StartQueue } from './start-queue.js';

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

export type LambdaInvokeErrorCode =
  | 'LAMBDA_FUNCTION_NOT_FOUND'
  | 'LAMBDA_THROTTLED'
  | 'LAMBDA_ACCESS_DENIED'
  | 'LAMBDA_CREDENTIALS'
  | 'LAMBDA_NETWORK'
  | 'LAMBDA_PAYLOAD_TOO_LARGE'
  | 'LAMBDA_CONFIG'
  | 'LAMBDA_BAD_RESPONSE'
  | 'LAMBDA_INVOKE_FAILED'
  /** The handle was killed (or the launcher closed) before Lambda answered the invoke. */
  | 'LAMBDA_NOT_INVOKED';

/** An Invoke that Lambda (or the way to it) refused: the worker never ran. */
export class LambdaInvokeError extends Error {
  readonly code: LambdaInvokeErrorCode;
  readonly functionName: string;
  readonly region: string;
  /** Invoke attempts made (throttled ones included). */
  readonly attempts: number;
  /** The AWS error name (e.g. 'ResourceNotFoundException') or the socket error code, when known. */
  readonly awsError: string | undefined;
  constructor(code: LambdaInvokeErrorCode, message: string, info: { functionName: string; region: string; attempts: number; awsError?: string; cause?: unknown }) {
    super(message, { cause: info.cause });
    this.name = 'LambdaInvokeError';
    this.code = code;
    this.functionName = info.functionName;
    this.region = info.region;
    this.attempts = info.attempts;
    this.awsError = info.awsError;
  }
}

/** An event that cannot be sent as an invoke payload; raised by launch(), before any request. */
export class LambdaPayloadError extends Error {
  readonly code: 'LAMBDA_PAYLOAD_TOO_LARGE' | 'LAMBDA_PAYLOAD_INVALID';
  /** Encoded size in bytes (too large only). */
  readonly bytes: number | undefined;
  readonly limit: number | undefined;
  constructor(code: 'LAMBDA_PAYLOAD_TOO_LARGE' | 'LAMBDA_PAYLOAD_INVALID', message: string, bytes?: number, limit?: number) {
    super(message);
    this.name = 'LambdaPayloadError';
    this.code = code;
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** A handler error as Lambda reports it: the WorkerError plus Lambda's errorType and stack. */
export interface LambdaWorkerError extends WorkerError {
  /** Lambda's errorType: the thrown error's name, or a runtime type such as 'Runtime.ExitError'. */
  type?: string;
  stackTrace?: string[];
}

export interface LambdaInvokeInfo {
  /** 200 (RequestResponse) or 202 (Event). */
  statusCode: number;
  requestId: string | undefined;
  executedVersion: string | undefined;
  attempts: number;
}

export interface LambdaWorkerHandle extends WorkerHandle {
  /**
   * Settles when Lambda accepts the invoke (or refuses it, with a LambdaInvokeError). For
   * 'RequestResponse' acceptance is the response itself. The result never rejects either way.
   */
  readonly accepted: Promise<LambdaInvokeInfo>;
  /** Lambda's request id, once the invoke is accepted. */
  readonly requestId: string | undefined;
}

// AWS's own pattern for FunctionName, with its '0-9-_' classes rewritten so that '-' is a literal
// (in a JS class '9-_' would be a range that lets ':' and '@' through).
const FUNCTION_NAME = /^(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9_.-]+)(:(\$LATEST|[a-zA-Z0-9_-]+))?$/;
const ARN_REGION = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):/;

const THROTTLE_ERRORS = new Set(['TooManyRequestsException', 'ThrottlingException', 'EC2ThrottledException']);
const NOT_FOUND_ERRORS = new Set(['ResourceNotFoundException']);
const ACCESS_ERRORS = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'MissingAuthenticationTokenException',
  'IncompleteSignatureException',
  'KMSAccessDeniedException',
]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);

interface ResolvedOptions {
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

export class LambdaLauncher implements Launcher {
  private readonly opts: ResolvedOptions;
  private readonly client: LambdaClient;
  /** Invokes in flight are capped; close() destroys the client only after their starts let go of it. */
  private readonly queue: StartQueue<LambdaWorker>;
  private readonly workers = new Set<LambdaWorker>();
  private closed = false;
  private seq = 0;
  private region: string | undefined;

  constructor(options: LambdaLauncherOptions) {
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

    this.opts = { functionName: fn, invocationType, concurrency, awaitResult, attempts, baseDelayMs, maxDelayMs, maxPayloadBytes, endpoint: options.endpoint, onLog: options.onLog };
    this.queue = new StartQueue(concurrency, (worker) => worker.start().catch((err: unknown) => worker.fail(err)));
    // A function in another region must be invoked through that region's endpoint.
    this.region = options.region ?? ARN_REGION.exec(fn)?.[1];
    // The SDK's default agent caps sockets at 50: more synchronous invokes than that would queue
    // behind each other and deadlock a BSP round. Match the launcher's own cap instead.
    const maxSockets = concurrency;
    this.client = new LambdaClient({
      ...(this.region !== undefined ? { region: this.region } : {}),
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      maxAttempts: 1,
      requestHandler: { httpAgent: new HttpAgent({ keepAlive: true, maxSockets }), httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }) },
    });
  }

  /** Invocations in flight now (not counting queued ones). */
  get active(): number {
    return this.queue.active;
  }

  async launch(event: WorkerEvent): Promise<LambdaWorkerHandle> {
    if (this.closed) throw new LauncherError('LAUNCHER_CLOSED', 'launch() after close()');
    const rank = typeof (event as { rank?: unknown }).rank === 'number' ? (event as { rank: number }).rank : -1;
    let payload: string;
    try {
      payload = JSON.stringify(event);
    } catch (err) {
      throw new LambdaPayloadError('LAMBDA_PAYLOAD_INVALID', `the event for rank ${rank} cannot be encoded as JSON: ${(err as Error).message}`);
    }
    if (typeof payload !== 'string') throw new LambdaPayloadError('LAMBDA_PAYLOAD_INVALID', `the event for rank ${rank} is not a JSON value`);
    const bytes = Buffer.byteLength(payload, 'utf8');
    if (bytes > this.opts.maxPayloadBytes) {
      throw new LambdaPayloadError(
        'LAMBDA_PAYLOAD_TOO_LARGE',
        `the event for rank ${rank} is ${bytes} bytes, over the ${this.opts.maxPayloadBytes}-byte limit of a ${this.opts.invocationType} invoke of Lambda function '${this.opts.functionName}'; events must carry object keys and params, never data`,
        bytes,
        this.opts.maxPayloadBytes,
      );
    }
    const worker = new LambdaWorker(`lambda-${process.pid}-${++this.seq}`, rank, event, Buffer.from(payload, 'utf8'), this.opts, this.client, () => this.regionName(), () => this.region ?? '(region not resolved yet)', (w) => this.queue.remove(w));
    this.workers.add(worker);
    void worker.result.then(() => this.workers.delete(worker));
    this.queue.push(worker);
    return worker;
  }

  /** The region for messages: configured, or whatever the SDK's chain resolved. */
  private async regionName(): Promise<string> {
    if (this.region !== undefined) return this.region;
    try {
      this.region = await this.client.config.region();
      return this.region;
    } catch {
      return '(no region configured)';
    }
  }

  /** Cancels queued and in-flight invokes (already accepted invocations keep running on Lambda) and releases the client. */
  async close(): Promise<void> {
    if (this.closed && this.workers.size === 0 && this.queue.active === 0) return;
    this.closed = true;
    const stopping = this.queue.stop();
    const all = [...this.workers];
    for (const w of all) w.kill('launcher closed');
    await Promise.all(all.map((w) => w.result));
    await stopping;
    this.client.destroy();
  }
}

/** The aborted-by-kill marker, so an abort is never mistaken for an invoke failure. */
class Aborted extends Error {}

class LambdaWorker implements LambdaWorkerHandle {
  readonly result: Promise<WorkerResult>;
  readonly accepted: Promise<LambdaInvokeInfo>;
  requestId: string | undefined;
  private settle!: (r: WorkerResult) => void;
  private accept!: (info: LambdaInvokeInfo) => void;
  private refuse!: (err: LambdaInvokeError) => void;
  private state: 'queued' | 'invoking' | 'waiting' | 'done' = 'queued';
  private readonly abort = new AbortController();
  private t0 = 0;
  private attempts = 0;

  constructor(
    readonly id: string,
    readonly rank: number,
    private readonly event: WorkerEvent,
    private readonly payload: Uint8Array,
    private readonly opts: ResolvedOptions,
    private readonly client: LambdaClient,
    private readonly regionName: () => Promise<string>,
    private readonly regionNow: () => string,
    private readonly dequeue: (w: LambdaWorker) => void,
  ) {
    this.result = new Promise((resolve) => (this.settle = resolve));
    this.accepted = new Promise<LambdaInvokeInfo>((resolve, reject) => {
      this.accept = resolve;
      this.refuse = reject;
    });
    // Callers may watch only `result`; a refusal must not surface as an unhandled rejection.
    this.accepted.catch(() => undefined);
  }

  kill(reason: string): void {
    if (this.state === 'done') return;
    const who = `worker ${this.id} (rank ${this.rank})`;
    // No-op when Lambda already accepted the invoke.
    const notInvoked = (how: string): LambdaInvokeError =>
      new LambdaInvokeError('LAMBDA_NOT_INVOKED', `${who} of Lambda function '${this.opts.functionName}' was killed ${how}: ${reason}`, { functionName: this.opts.functionName, region: this.regionNow(), attempts: this.attempts });
    if (this.state === 'queued') {
      this.dequeue(this);
      this.refuse(notInvoked('before it was invoked'));
      this.finish({ status: 'killed', error: { code: 'KILLED', message: `${who} was killed before it was invoked: ${reason}` }, durationMs: 0, coldStartMs: 0 });
      return;
    }
    const sent = this.state === 'waiting' ? 'was accepted' : 'may have been accepted';
    this.refuse(notInvoked('while its invoke was in flight'));
    this.abort.abort();
    this.finish({
      status: 'killed',
      error: { code: 'KILLED', message: `${who} was marked killed: ${reason}. Its invoke of Lambda function '${this.opts.functionName}' ${sent}, and Lambda cannot stop a running invocation: it may run on until it returns or reaches the function's timeout` },
      durationMs: performance.now() - this.t0,
      coldStartMs: 0,
    });
  }

  /** A bug on this side (not Lambda's answer): still a status, so `result` settles. */
  fail(err: unknown): void {
    this.refuse(new LambdaInvokeError('LAMBDA_INVOKE_FAILED', `worker ${this.id} (rank ${this.rank}): ${(err as Error)?.message ?? String(err)}`, { functionName: this.opts.functionName, region: this.regionNow(), attempts: this.attempts, cause: err }));
    this.finish({ status: 'error', error: { code: 'LAMBDA_INVOKE_FAILED', message: `worker ${this.id} (rank ${this.rank}) of Lambda function '${this.opts.functionName}' failed in the launcher: ${(err as Error)?.message ?? String(err)}` }, durationMs: this.t0 > 0 ? performance.now() - this.t0 : 0, coldStartMs: 0 });
  }

  private finish(r: WorkerResult): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.settle(r);
  }

  /** Invokes and settles the result; resolves when the concurrency slot can be freed. */
  async start(): Promise<void> {
    if (this.state !== 'queued') return;
    this.state = 'invoking';
    this.t0 = performance.now();
    let out: InvokeCommandOutput;
    try {
      out = await this.invokeWithRetry();
    } catch (err) {
      if (err instanceof Aborted || this.abort.signal.aborted) return;
      const e = await this.mapError(err);
      this.refuse(e);
      this.finish({ status: 'error', error: { code: e.code, message: e.message }, durationMs: performance.now() - this.t0, coldStartMs: 0 });
      return;
    }
    if (this.abort.signal.aborted) return;
    this.requestId = out.$metadata.requestId;
    const info: LambdaInvokeInfo = { statusCode: out.StatusCode ?? out.$metadata.httpStatusCode ?? 0, requestId: this.requestId, executedVersion: out.ExecutedVersion, attempts: this.attempts };
    this.accept(info);
    if (this.opts.invocationType === 'RequestResponse') {
      this.finish({ ...this.fromResponse(out), durationMs: performance.now() - this.t0 });
      return;
    }
    if (!this.opts.awaitResult) {
      this.finish({ status: 'ok', value: { accepted: true }, durationMs: performance.now() - this.t0, coldStartMs: 0 });
      return;
    }
    this.state = 'waiting';
    let r: WorkerResult;
    try {
      // Raced against the abort, so a watcher that ignores its signal cannot hold close() forever.
      r = await Promise.race([this.opts.awaitResult(this.event, { handleId: this.id, requestId: this.requestId, signal: this.abort.signal }), abortion(this.abort.signal)]);
    } catch (err) {
      if (this.abort.signal.aborted) return;
      this.finish({
        status: 'error',
        error: { code: 'LAMBDA_RESULT_UNAVAILABLE', message: `worker ${this.id} (rank ${this.rank}, request ${this.requestId ?? '?'}) of Lambda function '${this.opts.functionName}': waiting for its result failed: ${(err as Error).message}` },
        durationMs: performance.now() - this.t0,
        coldStartMs: 0,
      });
      return;
    }
    // The launcher's clock is the one that spans invoke to result.
    this.finish({ ...r, durationMs: performance.now() - this.t0 });
  }

  private async invokeWithRetry(): Promise<InvokeCommandOutput> {
    const withLogs = this.opts.onLog !== undefined && this.opts.invocationType === 'RequestResponse';
    for (;;) {
      this.attempts++;
      try {
        return await this.client.send(
          new InvokeCommand({ FunctionName: this.opts.functionName, InvocationType: this.opts.invocationType, Payload: this.payload, ...(withLogs ? { LogType: 'Tail' as const } : {}) }),
          { abortSignal: this.abort.signal },
        );
      } catch (err) {
        if (this.abort.signal.aborted) throw new Aborted();
        if (!THROTTLE_ERRORS.has(errorName(err)) || this.attempts >= this.opts.attempts) throw err;
        try {
          await sleep(this.backoff(err), undefined, { signal: this.abort.signal });
        } catch {
          throw new Aborted();
        }
      }
    }
  }

  /** Exponential backoff with jitter (half fixed, half random), at least Lambda's Retry-After, capped. */
  private backoff(err: unknown): number {
    const exp = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (this.attempts - 1));
    const jittered = exp / 2 + (Math.random() * exp) / 2;
    const retryAfterS = Number((err as { retryAfterSeconds?: unknown }).retryAfterSeconds);
    const floor = Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : 0;
    return Math.min(this.opts.maxDelayMs, Math.max(jittered, floor));
  }

  private async mapError(err: unknown): Promise<LambdaInvokeError> {
    const region = await this.regionName();
    const fn = this.opts.functionName;
    const name = errorName(err);
    const sysCode = (err as { code?: unknown }).code;
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const msg = (err as Error).message ?? String(err);
    const where = `Lambda function '${fn}' in ${region}${this.opts.endpoint !== undefined ? ` (endpoint ${this.opts.endpoint})` : ''}`;
    const info = { functionName: fn, region, attempts: this.attempts, awsError: typeof sysCode === 'string' && !name.endsWith('Exception') ? sysCode : name, cause: err };
    if (NOT_FOUND_ERRORS.has(name)) return new LambdaInvokeError('LAMBDA_FUNCTION_NOT_FOUND', `${where} does not exist, or its alias/version does not: ${msg}`, info);
    if (THROTTLE_ERRORS.has(name)) {
      return new LambdaInvokeError('LAMBDA_THROTTLED', `invoking ${where} was throttled ${this.attempts} times in a row (${name}: ${msg}); giving up. Lower the launcher's concurrency or raise the function's concurrency limit`, info);
    }
    if (ACCESS_ERRORS.has(name) || status === 403) return new LambdaInvokeError('LAMBDA_ACCESS_DENIED', `access denied invoking ${where}: ${name}: ${msg}`, info);
    if (name === 'CredentialsProviderError') return new LambdaInvokeError('LAMBDA_CREDENTIALS', `no AWS credentials to invoke ${where}: ${msg}`, info);
    if (name === 'RequestEntityTooLargeException' || status === 413) return new LambdaInvokeError('LAMBDA_PAYLOAD_TOO_LARGE', `${where} refused the event as too large (${this.payload.byteLength} bytes): ${msg}`, info);
    if ((typeof sysCode === 'string' && NETWORK_CODES.has(sysCode)) || name === 'TimeoutError') {
      return new LambdaInvokeError('LAMBDA_NETWORK', `could not reach ${where}: ${typeof sysCode === 'string' ? `${sysCode}: ` : ''}${msg}`, info);
    }
    if (/region is missing/i.test(msg)) return new LambdaInvokeError('LAMBDA_CONFIG', `no region to invoke Lambda function '${fn}': set the launcher's region or AWS_REGION (${msg})`, info);
    return new LambdaInvokeError('LAMBDA_INVOKE_FAILED', `invoking ${where} failed: ${name}: ${msg}`, info);
  }

  /** A synchronous invoke's response -> the worker's status, value or error. */
  private fromResponse(out: InvokeCommandOutput): Omit<WorkerResult, 'durationMs'> {
    const logs = this.tailLogs(out.LogResult);
    const base: { coldStartMs: number; peakRssMb?: number } = { coldStartMs: logs.initMs ?? 0, ...(logs.maxMemoryMb !== undefined ? { peakRssMb: logs.maxMemoryMb } : {}) };
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    let body: unknown;
    let parsed = true;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = false;
    }
    const who = `worker ${this.id} (rank ${this.rank}, request ${this.requestId ?? '?'}) of Lambda function '${this.opts.functionName}'`;
    if (out.FunctionError !== undefined) {
      const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
      const type = typeof b.errorType === 'string' ? b.errorType : out.FunctionError;
      const message = typeof b.errorMessage === 'string' ? b.errorMessage : text || `${who} failed (${out.FunctionError}) without an error message`;
      const trace = Array.isArray(b.stackTrace) ? b.stackTrace : Array.isArray(b.trace) ? b.trace : undefined;
      const error: LambdaWorkerError = { code: errorCode(b, type, message), message, type };
      if (trace) error.stackTrace = trace.map(String);
      if (logs.text) error.stderr = logs.text;
      return { ...base, status: error.code === 'TIMEOUT' ? 'timeout' : 'error', error };
    }
    if (!parsed) return { ...base, status: 'error', error: { code: 'LAMBDA_BAD_RESPONSE', message: `${who} returned a payload that is not JSON: ${JSON.stringify(text.slice(0, 200))}` } };
    return { ...base, status: 'ok', value: body };
  }

  /** Hands the tail's lines to onLog and reads the REPORT line's init duration and peak memory. */
  private tailLogs(logResult: string | undefined): { text: string; initMs?: number; maxMemoryMb?: number } {
    if (!logResult) return { text: '' };
    const text = Buffer.from(logResult, 'base64').toString('utf8');
    const out: { text: string; initMs?: number; maxMemoryMb?: number } = { text: text.slice(-4096) };
    for (const line of text.split('\n')) {
      if (line === '') continue;
      this.opts.onLog?.(line, { id: this.id, rank: this.rank });
      if (line.startsWith('REPORT ')) {
        const init = /Init Duration: ([\d.]+) ms/.exec(line);
        const mem = /Max Memory Used: (\d+) MB/.exec(line);
        if (init) out.initMs = Number(init[1]);
        if (mem) out.maxMemoryMb = Number(mem[1]);
      }
    }
    return out;
  }
}

/** Rejects when the signal aborts (never resolves). */
function abortion(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(new Aborted());
    else signal.addEventListener('abort', () => reject(new Aborted()), { once: true });
  });
}

function errorName(err: unknown): string {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string' ? (err as { name: string }).name : 'Error';
}

/** The worker's error code: its own when the payload carries one, else what Lambda's runtime type says. */
function errorCode(body: Record<string, unknown>, type: string, message: string): string {
  for (const k of ['code', 'errorCode']) if (typeof body[k] === 'string' && body[k] !== '') return body[k];
  // The worker's handler names a coded error 'Cirrus.<CODE>' (worker/handler.ts).
  const coded = /^Cirrus\.([A-Z][A-Z0-9_]*)$/.exec(type);
  if (coded) return coded[1]!;
  if (type === 'Sandbox.Timedout' || /Task timed out after/.test(message)) return 'TIMEOUT';
  if (type === 'Runtime.OutOfMemory') return 'OUT_OF_MEMORY';
  if (type === 'Runtime.ExitError') return 'WORKER_CRASHED';
  return 'WORKER_ERROR';
}
