/**
 * A local stand-in for the AWS Lambda Invoke API, close enough for @aws-sdk/client-lambda, so the
 * Lambda launcher is tested over real HTTP against the REAL worker handler (AWS itself cannot run
 * here). It speaks:
 *
 *   POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=...]
 *
 * FunctionName may be a name, 'name:alias', a partial ARN ('123456789012:function:name') or a full
 * ARN, URL-encoded by the SDK (':' as %3A). X-Amz-Invocation-Type: 'RequestResponse' (also when the
 * header is absent) -> 200 with the handler's JSON, or 200 + X-Amz-Function-Error: Unhandled and
 * {errorMessage, errorType, stackTrace} when it throws; 'Event' -> 202, empty body, the handler runs
 * in the background; 'DryRun' -> 204. Errors carry the x-amzn-ErrorType header the SDK maps from.
 * Signatures are not verified, but an Authorization header is required.
 *
 * Isolation: every invocation runs in its own child process (this same file, started with
 * CHILD_FLAG), as Lambda runs each invocation in a sandbox: a handler that calls process.exit() or
 * exhausts memory takes down its sandbox, not the test runner, and comes back as Lambda reports it
 * (Runtime.ExitError). The function's time limit kills the child (Sandbox.Timedout). There is no
 * warm reuse: every invocation is a cold start. Event invocations are not retried on error (real
 * Lambda retries twice); their outcome is recorded for the tests instead.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { handler } from '../../worker/handler.js';

/** Argument that turns this module into a one-invocation sandbox (see runChild below). */
const CHILD_FLAG = '--cirrus-lambda-sandbox';
const SELF = fileURLToPath(import.meta.url);

/** Lambda's request payload limits (bytes): synchronous and asynchronous invocations. */
export const SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024;
export const ASYNC_PAYLOAD_LIMIT = 256 * 1024;
/** Lambda returns at most the last 4 KB of the log with LogType=Tail. */
const LOG_TAIL_BYTES = 4096;

export type InvocationType = 'RequestResponse' | 'Event' | 'DryRun';

export interface FunctionConfig {
  /** Alias name -> the version it points to (e.g. { prod: '3' }). Those versions exist too. */
  aliases?: Record<string, string>;
  /** Time limit per invocation in seconds. Default 900. */
  timeoutS?: number;
  /** Memory size in MB (caps the sandbox's V8 heap). Default 512. */
  memoryMb?: number;
  /** Every invoke of this function answers 403 AccessDeniedException. */
  denied?: boolean;
}

export interface LambdaInvokeServerOptions {
  /** Functions by name. Default: { 'cirrus-worker': {} }. */
  functions?: Record<string, FunctionConfig>;
  region?: string;
  accountId?: string;
  /** Extra environment variables for the sandboxes. */
  env?: Record<string, string>;
}

export type InvocationOutcome =
  | { ok: true; payload: string }
  | { ok: false; errorType: string; errorMessage: string; stackTrace: string[] };

export interface InvocationRecord {
  requestId: string;
  functionName: string;
  /** The qualifier as asked for (alias, version or '$LATEST'); undefined when unqualified. */
  qualifier: string | undefined;
  executedVersion: string;
  type: InvocationType;
  /** The decoded event the handler received. */
  event: unknown;
  /** The sandbox's stdout and stderr lines, as CloudWatch would get them. */
  logs: string[];
  /** Set once the invocation finished (never for DryRun). */
  outcome?: InvocationOutcome;
  durationMs?: number;
  /** Sandbox start to handler entry (module loading: the cold start). */
  initMs?: number;
  /** The sandbox's peak resident set. */
  maxRssKb?: number;
}

/** One sandbox message back to the server. */
type SandboxMessage = ({ kind: 'result'; payload: string } | { kind: 'error'; errorType: string; errorMessage: string; stackTrace: string[] }) & { initMs?: number; maxRssKb?: number };

interface Running {
  record: InvocationRecord;
  child: ChildProcess | undefined;
  done: Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorType: string,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status} ${errorType}`);
  }
}

export class LambdaInvokeServer extends EventEmitter<{ invocation: [InvocationRecord] }> {
  /** Accepted invocations per invocation type (requests refused with an error are not counted). */
  readonly counts: Record<InvocationType, number> = { RequestResponse: 0, Event: 0, DryRun: 0 };
  /** Every HTTP request received, refused or not. */
  requests = 0;
  /** Every accepted invocation, in arrival order. */
  readonly invocations: InvocationRecord[] = [];
  /** Headers (lower-case names) and raw path of the last request, for tests of what the client sent. */
  lastHeaders: Record<string, string | string[] | undefined> = {};
  lastPath = '';

  private readonly running = new Set<Running>();
  private readonly functions: Map<string, Required<Omit<FunctionConfig, 'denied'>> & { denied: boolean }>;
  private readonly region: string;
  private readonly accountId: string;
  private readonly env: Record<string, string>;
  private throttles: { left: number; retryAfterS: number | undefined } = { left: 0, retryAfterS: undefined };
  private closing = false;

  private constructor(
    private readonly server: Server,
    options: LambdaInvokeServerOptions,
  ) {
    super();
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '123456789012';
    this.env = options.env ?? {};
    this.functions = new Map(
      Object.entries(options.functions ?? { 'cirrus-worker': {} }).map(([name, c]) => [
        name,
        { aliases: c.aliases ?? {}, timeoutS: c.timeoutS ?? 900, memoryMb: c.memoryMb ?? 512, denied: c.denied ?? false },
      ]),
    );
  }

  static async start(options: LambdaInvokeServerOptions = {}): Promise<LambdaInvokeServer> {
    const server = createServer();
    const self = new LambdaInvokeServer(server, options);
    server.on('request', (req, res) => void self.serve(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return self;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The endpoint to give the SDK. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  arn(name: string): string {
    return `arn:aws:lambda:${this.region}:${this.accountId}:function:${name}`;
  }

  /** The next `count` invokes of existing functions answer 429 TooManyRequestsException. */
  throttleNext(count: number, retryAfterS?: number): void {
    this.throttles = { left: count, retryAfterS };
  }

  /** Resolves once no invocation runs (background Event invocations included). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running].map((r) => r.done));
  }

  /** Kills every running sandbox and stops listening. */
  async close(): Promise<void> {
    this.closing = true;
    for (const r of this.running) r.child?.kill('SIGKILL');
    await this.idle();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests++;
    this.lastHeaders = { ...req.headers };
    this.lastPath = req.url ?? '';
    const requestId = randomUUID();
    try {
      const body = await readBody(req);
      const reply = await this.invoke(req, body, requestId);
      res.writeHead(reply.status, { 'x-amzn-RequestId': requestId, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(reply.body), ...reply.headers });
      res.end(reply.body);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, 'ServiceException', { Type: 'Service', Message: `test server: ${(err as Error).message}` });
      const text = JSON.stringify(e.body);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(e.status, { 'x-amzn-RequestId': requestId, 'x-amzn-ErrorType': e.errorType, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...e.headers });
      res.end(text);
    }
  }

  private async invoke(req: IncomingMessage, body: Buffer, requestId: string): Promise<{ status: number; body: string; headers: Record<string, string> }> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/.exec(url.pathname);
    if (req.method !== 'POST' || !m) throw new HttpError(404, 'UnknownOperationException', { message: `Unknown operation ${req.method} ${url.pathname}` });
    if (!req.headers.authorization) throw new HttpError(403, 'MissingAuthenticationTokenException', { message: 'Missing Authentication Token' });

    const target = this.resolve(decodeURIComponent(m[1]!), url.searchParams.get('Qualifier') ?? undefined);
    const fn = this.functions.get(target.name)!;
    if (fn.denied) {
      throw new HttpError(403, 'AccessDeniedException', { Message: `User: arn:aws:iam::${this.accountId}:user/test is not authorized to perform: lambda:InvokeFunction on resource: ${this.arn(target.name)} because no identity-based policy allows the lambda:InvokeFunction action` });
    }

    const typeHeader = header(req, 'x-amz-invocation-type') ?? 'RequestResponse';
    if (typeHeader !== 'RequestResponse' && typeHeader !== 'Event' && typeHeader !== 'DryRun') {
      throw new HttpError(400, 'InvalidParameterValueException', { Type: 'User', message: `1 validation error detected: Value '${typeHeader}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]` });
    }
    const type: InvocationType = typeHeader;

    if (this.throttles.left > 0) {
      this.throttles.left--;
      const headers: Record<string, string> = this.throttles.retryAfterS !== undefined ? { 'Retry-After': String(this.throttles.retryAfterS) } : {};
      throw new HttpError(429, 'TooManyRequestsException', { Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded', Type: 'User', message: 'Rate Exceeded.' }, headers);
    }

    const limit = type === 'Event' ? ASYNC_PAYLOAD_LIMIT : SYNC_PAYLOAD_LIMIT;
    if (body.byteLength > limit) {
      throw new HttpError(413, 'RequestEntityTooLargeException', { Type: 'User', message: `Request must be smaller than ${limit} bytes for the InvokeFunction operation` });
    }
    let event: unknown = {};
    if (body.byteLength > 0) {
      try {
        event = JSON.parse(body.toString('utf8'));
      } catch (err) {
        throw new HttpError(400, 'InvalidRequestContentException', { Type: 'User', message: `Could not parse request body into json: ${(err as Error).message}` });
      }
    }

    const headers = { 'X-Amz-Executed-Version': target.version };
    this.counts[type]++;
    if (type === 'DryRun') return { status: 204, body: '', headers };

    const record: InvocationRecord = { requestId, functionName: target.name, qualifier: target.qualifier, executedVersion: target.version, type, event, logs: [] };
    this.invocations.push(record);
    const run = this.run(record, fn);
    if (type === 'Event') return { status: 202, body: '', headers };

    await run;
    const outcome = record.outcome!;
    const out: Record<string, string> = { ...headers };
    if (header(req, 'x-amz-log-type') === 'Tail') out['X-Amz-Log-Result'] = logTail(record, fn.memoryMb);
    if (outcome.ok) return { status: 200, body: outcome.payload, headers: out };
    out['X-Amz-Function-Error'] = 'Unhandled';
    return { status: 200, body: JSON.stringify({ errorMessage: outcome.errorMessage, errorType: outcome.errorType, stackTrace: outcome.stackTrace }), headers: out };
  }

  /** Splits a FunctionName (+ Qualifier) the way Lambda does; unknown functions/qualifiers are 404. */
  private resolve(raw: string, queryQualifier: string | undefined): { name: string; qualifier: string | undefined; version: string } {
    const notFound = (what: string): HttpError => new HttpError(404, 'ResourceNotFoundException', { Type: 'User', Message: `Function not found: ${what}` });
    const m = /^(?:arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:|(\d{12}):function:)?([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]+))?$/.exec(raw);
    if (!m) {
      throw new HttpError(400, 'InvalidParameterValueException', { Type: 'User', message: `1 validation error detected: Value '${raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern` });
    }
    const [, arnRegion, arnAccount, partialAccount, name, nameQualifier] = m as unknown as [string, string | undefined, string | undefined, string | undefined, string, string | undefined];
    if (nameQualifier !== undefined && queryQualifier !== undefined && nameQualifier !== queryQualifier) {
      throw new HttpError(400, 'InvalidParameterValueException', { Type: 'User', message: 'The derived qualifier from the function name does not match the specified qualifier.' });
    }
    const qualifier = nameQualifier ?? queryQualifier;
    const arn = this.arn(name) + (qualifier !== undefined ? `:${qualifier}` : '');
    const account = arnAccount ?? partialAccount;
    if ((arnRegion !== undefined && arnRegion !== this.region) || (account !== undefined && account !== this.accountId)) throw notFound(raw);
    const fn = this.functions.get(name);
    if (!fn) throw notFound(arn);
    if (qualifier === undefined || qualifier === '$LATEST') return { name, qualifier, version: '$LATEST' };
    const aliased = fn.aliases[qualifier];
    if (aliased !== undefined) return { name, qualifier, version: aliased };
    if (/^\d+$/.test(qualifier) && Object.values(fn.aliases).includes(qualifier)) return { name, qualifier, version: qualifier };
    throw notFound(arn);
  }

  /** Runs one invocation in a fresh sandbox; resolves when its outcome is recorded. */
  private run(record: InvocationRecord, fn: { timeoutS: number; memoryMb: number }): Promise<void> {
    const entry: Running = { record, child: undefined, done: Promise.resolve() };
    entry.done = this.sandbox(record, fn, (child) => (entry.child = child)).then((outcome) => {
      record.outcome = outcome;
      this.running.delete(entry);
      this.emit('invocation', record);
    });
    this.running.add(entry);
    return entry.done;
  }

  private sandbox(record: InvocationRecord, fn: { timeoutS: number; memoryMb: number }, started: (c: ChildProcess) => void): Promise<InvocationOutcome> {
    const t0 = performance.now();
    const id = record.requestId;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.env,
      AWS_LAMBDA_FUNCTION_NAME: record.functionName,
      AWS_LAMBDA_FUNCTION_VERSION: record.executedVersion,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
      AWS_REGION: this.region,
    };
    // The sandbox must not think it is a node:test worker.
    delete env.NODE_TEST_CONTEXT;
    return new Promise<InvocationOutcome>((resolve) => {
      if (this.closing) {
        resolve({ ok: false, errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${id} Error: the test server is closing`, stackTrace: [] });
        return;
      }
      const child = fork(SELF, [CHILD_FLAG], { execArgv: [`--max-old-space-size=${fn.memoryMb}`], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env });
      started(child);
      let outcome: InvocationOutcome | undefined;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, fn.timeoutS * 1000);
      collectLines(child.stdout!, record.logs);
      collectLines(child.stderr!, record.logs);
      child.on('message', (msg: SandboxMessage) => {
        if (outcome || timedOut) return;
        record.initMs = msg.initMs;
        record.maxRssKb = msg.maxRssKb;
        outcome = msg.kind === 'result' ? { ok: true, payload: msg.payload } : { ok: false, errorType: msg.errorType, errorMessage: msg.errorMessage, stackTrace: msg.stackTrace };
      });
      child.on('error', () => undefined); // a failed spawn also ends in 'close', with no outcome
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        record.durationMs = performance.now() - t0;
        if (timedOut) {
          resolve({ ok: false, errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${id} Error: Task timed out after ${fn.timeoutS.toFixed(2)} seconds`, stackTrace: [] });
        } else if (outcome) {
          resolve(outcome);
        } else {
          const why = signal ? `signal: ${signal}` : `exit status ${code}`;
          resolve({ ok: false, errorType: 'Runtime.ExitError', errorMessage: `RequestId: ${id} Error: Runtime exited with error: ${why}`, stackTrace: [] });
        }
      });
      child.send({ event: record.event });
    });
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function collectLines(stream: NodeJS.ReadableStream, into: string[]): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      into.push(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  stream.on('end', () => {
    if (pending) into.push(pending);
  });
}

/** The X-Amz-Log-Result header: base64 of the last 4 KB of START / log lines / END / REPORT. */
function logTail(record: InvocationRecord, memoryMb: number): string {
  const ms = (record.durationMs ?? 0).toFixed(2);
  const usedMb = record.maxRssKb !== undefined ? Math.ceil(record.maxRssKb / 1024) : memoryMb;
  // Every sandbox here is fresh, so every invocation reports an init phase.
  const init = record.initMs !== undefined ? `\tInit Duration: ${record.initMs.toFixed(2)} ms` : '';
  const lines = [
    `START RequestId: ${record.requestId} Version: ${record.executedVersion}`,
    ...record.logs,
    `END RequestId: ${record.requestId}`,
    `REPORT RequestId: ${record.requestId}\tDuration: ${ms} ms\tBilled Duration: ${Math.ceil(Number(ms))} ms\tMemory Size: ${memoryMb} MB\tMax Memory Used: ${usedMb} MB${init}`,
  ];
  const bytes = Buffer.from(lines.join('\n') + '\n', 'utf8');
  return bytes.subarray(Math.max(0, bytes.byteLength - LOG_TAIL_BYTES)).toString('base64');
}

// ---------------------------------------------------------------------------------------------
// Sandbox side: one invocation of the real handler, then exit.

function errorMessage(err: unknown, fallbackType: string): SandboxMessage {
  if (err instanceof Error) return { kind: 'error', errorType: err.name || fallbackType, errorMessage: err.message, stackTrace: (err.stack ?? '').split('\n').slice(1).map((l) => l.trim()) };
  return { kind: 'error', errorType: fallbackType, errorMessage: String(err), stackTrace: [] };
}

function runSandbox(): void {
  let reported = false;
  let initMs: number | undefined;
  const report = (msg: SandboxMessage): void => {
    if (reported) return;
    reported = true;
    const full: SandboxMessage = { ...msg, maxRssKb: process.resourceUsage().maxRSS, ...(initMs !== undefined ? { initMs } : {}) };
    // Exit once the message is out: open handles (sockets, timers) must not keep a finished sandbox alive.
    process.send!(full, () => process.exit(0));
  };
  process.on('uncaughtException', (err) => report(errorMessage(err, 'Error')));
  process.on('unhandledRejection', (err) => report(errorMessage(err, 'Runtime.UnhandledPromiseRejection')));
  process.once('message', (msg: { event: unknown }) => {
    // performance.now() counts from process start: this is the sandbox's init phase.
    initMs = performance.now();
    void (async () => {
      try {
        const value = await handler(msg.event);
        let payload: string;
        try {
          // Lambda serialises the return value as JSON; undefined becomes null.
          payload = JSON.stringify(value) ?? 'null';
        } catch (err) {
          report({ kind: 'error', errorType: 'Runtime.MarshalError', errorMessage: `Unable to marshal response: ${(err as Error).message}`, stackTrace: [] });
          return;
        }
        report({ kind: 'result', payload });
      } catch (err) {
        report(errorMessage(err, 'Error'));
      }
    })();
  });
}

if (process.argv.includes(CHILD_FLAG) && typeof process.send === 'function') runSandbox();
