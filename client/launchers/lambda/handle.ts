/**
 * One worker as one Lambda invocation: its handle (result, accepted, kill) and its life from
 * queued to invoking to waiting (async invokes, for the result source) to done.
 *
 * kill() cannot stop an accepted invocation (Lambda has no such API): the handle is marked killed
 * and its result resolves as 'killed' at once, but the function may keep running until it returns
 * or hits its own timeout. A worker killed while still queued is never invoked.
 */
import type { InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import type { WorkerEvent, WorkerHandle, WorkerResult } from '../types.js';
import { LambdaInvokeError, mapInvokeError } from './errors.js';
import { Aborted, abortion, invokeWithRetry } from './invoke.js';
import type { ResolvedOptions } from './options.js';
import { resultOfResponse } from './response.js';

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

/** What a worker needs from its launcher. */
interface LambdaWorkerContext {
  opts: ResolvedOptions;
  client: LambdaClient;
  /** The region for messages, resolving the SDK's chain if need be. */
  regionName: () => Promise<string>;
  /** The region as known now, without waiting. */
  regionNow: () => string;
  /** Takes a queued worker off the launcher's queue. */
  dequeue: (w: LambdaWorker) => void;
}

export class LambdaWorker implements LambdaWorkerHandle {
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
  private readonly opts: ResolvedOptions;

  constructor(
    readonly id: string,
    readonly rank: number,
    private readonly event: WorkerEvent,
    private readonly payload: Uint8Array,
    private readonly ctx: LambdaWorkerContext,
  ) {
    this.opts = ctx.opts;
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
      new LambdaInvokeError('LAMBDA_NOT_INVOKED', `${who} of Lambda function '${this.opts.functionName}' was killed ${how}: ${reason}`, { functionName: this.opts.functionName, region: this.ctx.regionNow(), attempts: this.attempts });
    if (this.state === 'queued') {
      this.ctx.dequeue(this);
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
    this.refuse(new LambdaInvokeError('LAMBDA_INVOKE_FAILED', `worker ${this.id} (rank ${this.rank}): ${(err as Error)?.message ?? String(err)}`, { functionName: this.opts.functionName, region: this.ctx.regionNow(), attempts: this.attempts, cause: err }));
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
      out = await invokeWithRetry(this.ctx.client, this.payload, this.opts, this.abort.signal, () => ++this.attempts);
    } catch (err) {
      if (err instanceof Aborted || this.abort.signal.aborted) return;
      const region = await this.ctx.regionName();
      const e = mapInvokeError(err, { functionName: this.opts.functionName, region, endpoint: this.opts.endpoint, attempts: this.attempts, payloadBytes: this.payload.byteLength });
      this.refuse(e);
      this.finish({ status: 'error', error: { code: e.code, message: e.message }, durationMs: performance.now() - this.t0, coldStartMs: 0 });
      return;
    }
    if (this.abort.signal.aborted) return;
    this.requestId = out.$metadata.requestId;
    const info: LambdaInvokeInfo = { statusCode: out.StatusCode ?? out.$metadata.httpStatusCode ?? 0, requestId: this.requestId, executedVersion: out.ExecutedVersion, attempts: this.attempts };
    this.accept(info);
    if (this.opts.invocationType === 'RequestResponse') {
      const src = { id: this.id, rank: this.rank, requestId: this.requestId, functionName: this.opts.functionName, onLog: this.opts.onLog };
      this.finish({ ...resultOfResponse(out, src), durationMs: performance.now() - this.t0 });
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
}
