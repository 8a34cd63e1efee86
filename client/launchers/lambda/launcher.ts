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
 *   (X-Amz-Function-Error) with the type and message Lambda reports (see response.ts).
 *
 * Throttling is retried in invoke.ts; the life of one invocation (and what kill() can and cannot
 * do) is in handle.ts.
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { LauncherError, type Launcher, type WorkerEvent } from '../types.js';
import { StartQueue } from '../start-queue.js';
import { LambdaPayloadError } from './errors.js';
import { LambdaWorker, type LambdaWorkerHandle } from './handle.js';
import { regionOfArn, resolveOptions, type LambdaLauncherOptions, type ResolvedOptions } from './options.js';

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
    this.opts = resolveOptions(options);
    const concurrency = this.opts.concurrency;
    this.queue = new StartQueue(concurrency, (worker) => worker.start().catch((err: unknown) => worker.fail(err)));
    // A function in another region must be invoked through that region's endpoint.
    this.region = options.region ?? regionOfArn(this.opts.functionName);
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
    const payload = this.encode(event, rank);
    const worker = new LambdaWorker(`lambda-${process.pid}-${++this.seq}`, rank, event, payload, {
      opts: this.opts,
      client: this.client,
      regionName: () => this.regionName(),
      regionNow: () => this.region ?? '(region not resolved yet)',
      dequeue: (w) => this.queue.remove(w),
    });
    this.workers.add(worker);
    void worker.result.then(() => this.workers.delete(worker));
    this.queue.push(worker);
    return worker;
  }

  /** The event as the invoke payload; refuses one that is not JSON or over the payload limit. */
  private encode(event: WorkerEvent, rank: number): Uint8Array {
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
    return Buffer.from(payload, 'utf8');
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
