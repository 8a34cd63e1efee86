/**
 * The Lambda launcher over real HTTP, with @aws-sdk/client-lambda, against the Lambda stand-in,
 * which runs the unzipped test package (the real bundle of the test handler) in a sandbox process
 * per invocation.
 */
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { LambdaInvokeError, LambdaLauncher, LambdaPayloadError, type LambdaLauncherOptions, type LambdaWorkerError, type LambdaWorkerHandle } from '../client/launchers/lambda/index.js';
import type { WorkerEvent, WorkerResult } from '../client/launchers/types.js';
import { EventError } from '../worker/event.js';
import { parseNoopEvent } from './support/test-handler.js';
import { LambdaService, type InvocationRecord } from './support/lambda-service.js';
import { testPackage } from './support/test-package.js';

const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'AKIDCIRRUSTEST', secretAccessKey: 'cirrus-test-secret' };

let server: LambdaService;
const launchers: LambdaLauncher[] = [];

before(async () => {
  server = await LambdaService.start({
    region: REGION,
    defaultZip: (await testPackage()).zip,
    functions: {
      'cirrus-worker': { aliases: { prod: '3' } },
      'short-worker': { timeoutS: 1 },
      'locked-worker': { denied: true },
    },
  });
});

after(async () => {
  await Promise.all(launchers.map((l) => l.close()));
  await server.close();
});

function launcher(options: Partial<LambdaLauncherOptions> = {}): LambdaLauncher {
  const l = new LambdaLauncher({ functionName: 'cirrus-worker', region: REGION, endpoint: server.endpoint, credentials: CREDENTIALS, invocationType: 'RequestResponse', ...options });
  launchers.push(l);
  return l;
}

function event(task: Record<string, unknown>, extra: Record<string, unknown> = {}): WorkerEvent {
  return { jobId: 'lambda-test', rank: 0, world: 1, attempt: 0, deadlineMs: Date.now() + 600_000, task: task as WorkerEvent['task'], params: {}, endpoints: { store: 'memory://' }, ...extra };
}

interface NoopValue {
  remainingMs?: number;
  pid: number;
  startedAt: number;
  endedAt: number;
  allocatedMb: number;
}

function record(requestId: string | undefined): InvocationRecord {
  const r = server.invocations.find((i) => i.requestId === requestId);
  assert.ok(r, `the server has no invocation with request id ${requestId}`);
  return r;
}

/** A plain HTTP request to the server, for what the SDK never sends (no invocation-type header, DryRun, no signature). */
function raw(path: string, headers: Record<string, string>, body: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const SIGNED = { authorization: 'AWS4-HMAC-SHA256 Credential=AKIDCIRRUSTEST/20250101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00' };

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('RequestResponse returns the noop task result, its logs and the executed version', async () => {
  const before = { ...server.counts };
  const lines: string[] = [];
  const l = launcher({ onLog: (line) => lines.push(line) });
  const h = await l.launch(event({ type: 'noop', log: ['hello from rank 0'] }));
  const r = await h.result;
  assert.equal(r.status, 'ok', JSON.stringify(r.error));
  const v = r.value as NoopValue;
  assert.equal(v.allocatedMb, 0);
  assert.equal(typeof v.pid, 'number');
  assert.notEqual(v.pid, process.pid); // ran in its own sandbox
  // The handler got Lambda's context: its remaining time counts down from the function's 900 s.
  assert.ok(v.remainingMs !== undefined && v.remainingMs > 890_000 && v.remainingMs <= 900_000, String(v.remainingMs));
  assert.ok(v.endedAt >= v.startedAt);
  assert.ok(r.durationMs >= 0);
  const info = await h.accepted;
  assert.equal(info.statusCode, 200);
  assert.equal(info.executedVersion, '$LATEST');
  assert.equal(info.attempts, 1);
  assert.equal(h.requestId, info.requestId);
  assert.deepEqual(server.counts, { ...before, RequestResponse: before.RequestResponse + 1 });
  const rec = record(h.requestId);
  assert.deepEqual(rec.logs, ['hello from rank 0']);
  assert.equal(rec.type, 'RequestResponse');
  assert.equal((rec.event as { jobId: string }).jobId, 'lambda-test');
  // The SDK signed the request (the server requires the header) and asked for the log tail.
  assert.match(String(server.lastHeaders.authorization), /^AWS4-HMAC-SHA256 Credential=AKIDCIRRUSTEST\//);
  assert.equal(server.lastHeaders['x-amz-log-type'], 'Tail');
  // Log tail: START, the handler's line, END, REPORT; cold start and peak memory from REPORT.
  assert.equal(lines[0], `START RequestId: ${h.requestId} Version: $LATEST`);
  assert.equal(lines[1], 'hello from rank 0');
  assert.equal(lines[2], `END RequestId: ${h.requestId}`);
  assert.match(lines[3]!, /^REPORT RequestId: .*Init Duration: [\d.]+ ms$/);
  assert.ok(r.coldStartMs > 0);
  assert.equal(r.peakRssMb, Math.ceil(rec.maxRssKb! / 1024));
});

test('a handler that throws gives status error with the message and type (X-Amz-Function-Error)', async () => {
  const h = await launcher().launch(event({ type: 'noop', throwMessage: 'boom at rank 0' }));
  const r = await h.result;
  assert.equal(r.status, 'error');
  const e = r.error as LambdaWorkerError;
  assert.equal(e.code, 'WORKER_ERROR');
  assert.equal(e.message, 'boom at rank 0');
  assert.equal(e.type, 'Error');
  assert.ok(Array.isArray(e.stackTrace) && e.stackTrace.length > 0);
  assert.equal((await h.accepted).statusCode, 200);

  // The wire format the launcher read it from.
  const res = await raw('/2015-03-31/functions/cirrus-worker/invocations', SIGNED, JSON.stringify(event({ type: 'noop', throwMessage: 'boom' })));
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-amz-function-error'], 'Unhandled');
  const body = JSON.parse(res.body) as { errorMessage: string; errorType: string; stackTrace: string[] };
  assert.deepEqual(Object.keys(body).sort(), ['errorMessage', 'errorType', 'stackTrace']);
  assert.equal(body.errorMessage, 'boom');
  assert.equal(body.errorType, 'Error');
});

test('without X-Amz-Invocation-Type the invoke is RequestResponse; DryRun is 204; no Authorization is 403', async () => {
  const before = { ...server.counts };
  const res = await raw('/2015-03-31/functions/cirrus-worker/invocations', SIGNED, JSON.stringify(event({ type: 'noop' })));
  assert.equal(res.status, 200);
  assert.equal(res.headers['x-amz-executed-version'], '$LATEST');
  assert.equal(res.headers['x-amz-function-error'], undefined);
  const v = JSON.parse(res.body) as NoopValue;
  assert.equal(v.allocatedMb, 0);
  assert.equal(typeof v.pid, 'number');
  assert.deepEqual(server.counts, { ...before, RequestResponse: before.RequestResponse + 1 });

  const dry = await raw('/2015-03-31/functions/cirrus-worker/invocations', { ...SIGNED, 'x-amz-invocation-type': 'DryRun' }, JSON.stringify(event({ type: 'noop' })));
  assert.equal(dry.status, 204);
  assert.equal(dry.body, '');
  assert.deepEqual(server.counts, { ...before, RequestResponse: before.RequestResponse + 1, DryRun: before.DryRun + 1 });

  const unsigned = await raw('/2015-03-31/functions/cirrus-worker/invocations', {}, JSON.stringify(event({ type: 'noop' })));
  assert.equal(unsigned.status, 403);
  assert.equal(unsigned.headers['x-amzn-errortype'], 'MissingAuthenticationTokenException');
  assert.deepEqual(server.counts, { ...before, RequestResponse: before.RequestResponse + 1, DryRun: before.DryRun + 1 });
});

test('Event: 202 accepted, the result is {accepted: true}, and the handler really ran in the background', async () => {
  const before = { ...server.counts };
  const l = launcher({ invocationType: 'Event' });
  const h = await l.launch(event({ type: 'noop', log: ['event ran'], sleepMs: 200 }));
  const r = await h.result;
  assert.equal(r.status, 'ok');
  assert.deepEqual(r.value, { accepted: true });
  const info = await h.accepted;
  assert.equal(info.statusCode, 202);
  assert.equal(server.lastHeaders['x-amz-invocation-type'], 'Event');
  assert.equal(server.counts.Event, before.Event + 1);
  await server.idle();
  const rec = record(h.requestId);
  assert.equal(rec.type, 'Event');
  assert.deepEqual(rec.logs, ['event ran']);
  assert.equal(rec.outcome?.ok, true);
  assert.equal(server.counts.RequestResponse, before.RequestResponse);

  // On the wire: 202 and an empty body.
  const res = await raw('/2015-03-31/functions/cirrus-worker/invocations', { ...SIGNED, 'x-amz-invocation-type': 'Event' }, JSON.stringify(event({ type: 'noop' })));
  assert.equal(res.status, 202);
  assert.equal(res.body, '');
  await server.idle();
});

test('Event with awaitResult: the result comes from the watcher, durationMs spans invoke to result', async () => {
  const seen: Array<{ requestId: string | undefined; jobId: string }> = [];
  // Stands in for the training client's channel watcher: here the server's record of the run.
  const awaitResult = (e: WorkerEvent, ctx: { requestId: string | undefined; signal: AbortSignal }): Promise<WorkerResult> => {
    seen.push({ requestId: ctx.requestId, jobId: e.jobId });
    return new Promise((resolve) => {
      const check = (rec: InvocationRecord): boolean => {
        if (rec.requestId !== ctx.requestId || !rec.outcome) return false;
        server.off('invocation', check);
        const o = rec.outcome;
        resolve(o.ok ? { status: 'ok', value: JSON.parse(o.payload), durationMs: 0, coldStartMs: 0 } : { status: 'error', error: { code: 'WORKER_ERROR', message: o.errorMessage }, durationMs: 0, coldStartMs: 0 });
        return true;
      };
      const done = server.invocations.find((rec) => rec.requestId === ctx.requestId && rec.outcome);
      if (done) check(done);
      else server.on('invocation', check);
    });
  };
  const l = launcher({ invocationType: 'Event', resultChannel: { awaitResult } });
  const h = await l.launch(event({ type: 'noop', sleepMs: 100 }, { jobId: 'watched-job' }));
  const r = await h.result;
  assert.equal(r.status, 'ok', JSON.stringify(r.error));
  const v = r.value as NoopValue;
  assert.equal(v.allocatedMb, 0);
  assert.deepEqual(seen, [{ requestId: h.requestId, jobId: 'watched-job' }]);
  assert.equal(v.pid, JSON.parse((record(h.requestId).outcome as { payload: string }).payload).pid);
  assert.ok(r.durationMs > 0);
});

test('a function given as an ARN, as name:alias, and as an ARN with alias is found (%3A decoded)', async () => {
  const arn = server.arn('cirrus-worker');
  const cases: Array<[string, string | undefined, string]> = [
    [arn, undefined, '$LATEST'],
    ['cirrus-worker:prod', 'prod', '3'],
    [`${arn}:prod`, 'prod', '3'],
    ['123456789012:function:cirrus-worker', undefined, '$LATEST'],
  ];
  for (const [functionName, qualifier, version] of cases) {
    const h = await launcher({ functionName }).launch(event({ type: 'noop' }));
    const r = await h.result;
    assert.equal(r.status, 'ok', `${functionName}: ${JSON.stringify(r.error)}`);
    assert.equal((await h.accepted).executedVersion, version);
    const rec = record(h.requestId);
    assert.equal(rec.functionName, 'cirrus-worker');
    assert.equal(rec.qualifier, qualifier);
    assert.equal(server.lastPath, `/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`);
    assert.ok(server.lastPath.includes('%3A'));
  }
});

test('an unknown function (or alias) is the typed not-found error naming the function and region', async () => {
  for (const [functionName, missing] of [
    ['no-such-worker', 'arn:aws:lambda:us-east-1:123456789012:function:no-such-worker'],
    ['cirrus-worker:staging', 'arn:aws:lambda:us-east-1:123456789012:function:cirrus-worker:staging'],
  ] as const) {
    const requests = server.requests;
    const h = await launcher({ functionName }).launch(event({ type: 'noop' }));
    const err = await h.accepted.then(
      () => assert.fail('expected the invoke to be refused'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LambdaInvokeError);
    assert.equal(err.code, 'LAMBDA_FUNCTION_NOT_FOUND');
    assert.equal(err.functionName, functionName);
    assert.equal(err.region, REGION);
    assert.equal(err.awsError, 'ResourceNotFoundException');
    assert.equal(err.attempts, 1);
    assert.equal(err.message, `Lambda function '${functionName}' in ${REGION} (endpoint ${server.endpoint}) does not exist, or its alias/version does not: Function not found: ${missing}`);
    const r = await h.result;
    assert.equal(r.status, 'error');
    assert.deepEqual(r.error, { code: 'LAMBDA_FUNCTION_NOT_FOUND', message: err.message });
    assert.equal(server.requests, requests + 1); // not retried
  }
});

test('an oversize event is refused before sending, naming its size and the limit', async () => {
  const requests = server.requests;
  const big = event({ type: 'noop' }, { params: { blob: 'x'.repeat(300 * 1024) } });
  const bytes = Buffer.byteLength(JSON.stringify(big));
  await assert.rejects(launcher({ invocationType: 'Event' }).launch(big), (e: unknown) => {
    assert.ok(e instanceof LambdaPayloadError);
    assert.equal(e.code, 'LAMBDA_PAYLOAD_TOO_LARGE');
    assert.equal(e.bytes, bytes);
    assert.equal(e.limit, 262144);
    assert.equal(e.message, `the event for rank 0 is ${bytes} bytes, over the 262144-byte limit of a Event invoke of Lambda function 'cirrus-worker'; events must carry object keys and params, never data`);
    return true;
  });
  const huge = event({ type: 'noop' }, { params: { blob: 'x'.repeat(7 * 1024 * 1024) } });
  const hugeBytes = Buffer.byteLength(JSON.stringify(huge));
  await assert.rejects(launcher().launch(huge), (e: unknown) => e instanceof LambdaPayloadError && e.bytes === hugeBytes && e.limit === 6291456 && e.message.includes(`is ${hugeBytes} bytes, over the 6291456-byte limit`));
  assert.equal(server.requests, requests);

  // The same 300 KB event is within a synchronous invoke's limit.
  const r = await (await launcher().launch(big)).result;
  assert.equal(r.status, 'ok', JSON.stringify(r.error));
});

test('an event that fails the handler validation comes back as an error naming the field', async () => {
  const bad = event({ type: 'noop', sleepMs: -5 });
  let expected: EventError | undefined;
  try {
    parseNoopEvent(JSON.parse(JSON.stringify(bad)));
  } catch (e) {
    expected = e as EventError;
  }
  assert.ok(expected instanceof EventError);
  assert.equal(expected.field, 'event.task.sleepMs');
  const r = await (await launcher().launch(bad)).result;
  assert.equal(r.status, 'error');
  const e = r.error as LambdaWorkerError;
  assert.equal(e.type, 'EventError');
  assert.equal(e.message, expected.message);
  assert.ok(e.message.startsWith('event.task.sleepMs: '));
  assert.equal(e.code, 'WORKER_ERROR'); // Lambda's error payload drops the worker's own code

  const r2 = await (await launcher().launch(event({ type: 'noop' }, { rank: 3, world: 2 }))).result;
  assert.equal(r2.status, 'error');
  assert.equal(r2.error?.message, 'event.rank: rank 3 is outside the world of 2 workers');
});

test('throttling is retried with backoff, a bounded number of times', async () => {
  const requests = server.requests;
  server.throttleNext(2);
  const h = await launcher({ retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 } }).launch(event({ type: 'noop' }));
  assert.equal((await h.result).status, 'ok');
  assert.equal((await h.accepted).attempts, 3);
  assert.equal(server.requests, requests + 3);

  server.throttleNext(10);
  const h2 = await launcher({ retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 } }).launch(event({ type: 'noop' }));
  const r2 = await h2.result;
  server.throttleNext(0);
  assert.equal(r2.status, 'error');
  assert.equal(r2.error?.code, 'LAMBDA_THROTTLED');
  const err = await h2.accepted.catch((e: unknown) => e);
  assert.ok(err instanceof LambdaInvokeError);
  assert.equal(err.attempts, 3);
  assert.equal(server.requests, requests + 6);
  assert.match(err.message, /^invoking Lambda function 'cirrus-worker' in us-east-1 \(endpoint .*\) was throttled 3 times in a row \(TooManyRequestsException: Rate Exceeded\.\); giving up/);
});

test('access denied and an unreachable endpoint are typed errors naming the function and region', async () => {
  const denied = await launcher({ functionName: 'locked-worker' }).launch(event({ type: 'noop' }));
  const e1 = await denied.accepted.catch((e: unknown) => e);
  assert.ok(e1 instanceof LambdaInvokeError);
  assert.equal(e1.code, 'LAMBDA_ACCESS_DENIED');
  assert.match(e1.message, /^access denied invoking Lambda function 'locked-worker' in us-east-1 .*AccessDeniedException: User: .* is not authorized to perform: lambda:InvokeFunction/);
  assert.equal((await denied.result).error?.code, 'LAMBDA_ACCESS_DENIED');

  // A port that nothing listens on.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const endpoint = `http://127.0.0.1:${port}`;
  const down = await launcher({ endpoint, region: 'eu-west-1' }).launch(event({ type: 'noop' }));
  const e2 = await down.accepted.catch((e: unknown) => e);
  assert.ok(e2 instanceof LambdaInvokeError);
  assert.equal(e2.code, 'LAMBDA_NETWORK');
  assert.equal(e2.region, 'eu-west-1');
  assert.equal(e2.awsError, 'ECONNREFUSED');
  assert.ok(e2.message.startsWith(`could not reach Lambda function 'cirrus-worker' in eu-west-1 (endpoint ${endpoint}): ECONNREFUSED`), e2.message);
});

test('the function timeout and a process exit come back as Lambda reports them', async () => {
  const slow = await (await launcher({ functionName: 'short-worker' }).launch(event({ type: 'noop', sleepMs: 30_000 }))).result;
  assert.equal(slow.status, 'timeout');
  const te = slow.error as LambdaWorkerError;
  assert.equal(te.code, 'TIMEOUT');
  assert.equal(te.type, 'Sandbox.Timedout');
  assert.match(te.message, /Task timed out after 1\.00 seconds$/);

  const h = await launcher().launch(event({ type: 'noop', exitCode: 3 }));
  const crashed = await h.result;
  assert.equal(crashed.status, 'error');
  const ce = crashed.error as LambdaWorkerError;
  assert.equal(ce.code, 'WORKER_CRASHED');
  assert.equal(ce.type, 'Runtime.ExitError');
  assert.equal(ce.message, `RequestId: ${h.requestId} Error: Runtime exited with error: exit status 3`);
});

test('kill() marks the handle killed at once; the invocation itself runs on (Lambda cannot stop it)', async () => {
  const n = server.invocations.length;
  const h: LambdaWorkerHandle = await launcher().launch(event({ type: 'noop', sleepMs: 500, log: ['still running'] }));
  await waitFor(() => server.invocations.length > n, 'the invoke to reach the server');
  h.kill('test says stop');
  const r = await h.result;
  assert.equal(r.status, 'killed');
  assert.equal(r.error?.code, 'KILLED');
  assert.match(r.error!.message, /was marked killed: test says stop\. .*Lambda cannot stop a running invocation/);
  const err = await h.accepted.catch((e: unknown) => e);
  assert.ok(err instanceof LambdaInvokeError);
  assert.equal(err.code, 'LAMBDA_NOT_INVOKED');
  await server.idle();
  const rec = server.invocations[n]!;
  assert.equal(rec.outcome?.ok, true);
  assert.deepEqual(rec.logs, ['still running']);

  // Event + a watcher: kill aborts the watcher's signal.
  let aborted = false;
  const l = launcher({
    invocationType: 'Event',
    awaitResult: (_e, ctx) =>
      new Promise<WorkerResult>((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = true;
          reject(new Error('aborted'));
        });
      }),
  });
  const h2 = await l.launch(event({ type: 'noop' }));
  await h2.accepted;
  h2.kill('no longer needed');
  assert.equal((await h2.result).status, 'killed');
  assert.equal(aborted, true);
  await server.idle();
});

test('concurrency queues invokes; close() cancels the queued and in-flight ones', async () => {
  const n = server.invocations.length;
  const before = server.counts.RequestResponse;
  const l = new LambdaLauncher({ functionName: 'cirrus-worker', region: REGION, endpoint: server.endpoint, credentials: CREDENTIALS, invocationType: 'RequestResponse', concurrency: 1 });
  const handles = [
    await l.launch(event({ type: 'noop', sleepMs: 400 })),
    await l.launch(event({ type: 'noop' }, { rank: 1, world: 3 })),
    await l.launch(event({ type: 'noop' }, { rank: 2, world: 3 })),
  ];
  await waitFor(() => server.invocations.length > n, 'the first invoke to reach the server');
  assert.equal(l.active, 1);
  await l.close();
  const results = await Promise.all(handles.map((h) => h.result));
  assert.deepEqual(
    results.map((r) => r.status),
    ['killed', 'killed', 'killed'],
  );
  assert.equal(results[1]!.error?.message, `worker ${handles[1]!.id} (rank 1) was killed before it was invoked: launcher closed`);
  assert.equal(results[1]!.durationMs, 0);
  await assert.rejects(l.launch(event({ type: 'noop' })), { code: 'LAUNCHER_CLOSED' });
  await server.idle();
  assert.equal(server.counts.RequestResponse, before + 1); // the queued ones were never sent
});

test('bad options are refused with the field named; a watcher that ignores its signal does not hold close()', async () => {
  const base = { region: REGION, endpoint: server.endpoint, credentials: CREDENTIALS };
  assert.throws(() => new LambdaLauncher({ ...base, functionName: 'cirrus@worker' }), { code: 'LAUNCHER_OPTIONS', message: `LambdaLauncher functionName: expected a function name, 'name:alias', or an ARN, got "cirrus@worker"` });
  assert.throws(() => new LambdaLauncher({ ...base, functionName: 'cirrus-worker', concurrency: 0 }), { code: 'LAUNCHER_OPTIONS', message: 'LambdaLauncher concurrency: expected an integer >= 1, got 0' });
  const never = (): Promise<WorkerResult> => new Promise<WorkerResult>(() => undefined);
  assert.throws(() => new LambdaLauncher({ ...base, functionName: 'cirrus-worker', invocationType: 'RequestResponse', awaitResult: never }), {
    code: 'LAUNCHER_OPTIONS',
    message: "LambdaLauncher awaitResult: only applies to invocationType 'Event' (a synchronous invoke returns its result itself)",
  });
  // Options read from outside (a JSON config) may carry any type: each is refused naming its field.
  const loose = (o: Record<string, unknown>) => () => new LambdaLauncher({ ...base, functionName: 'cirrus-worker', ...o } as unknown as ConstructorParameters<typeof LambdaLauncher>[0]);
  assert.throws(loose({ functionName: 7 }), { code: 'LAUNCHER_OPTIONS', message: "LambdaLauncher functionName: expected a function name, 'name:alias', or an ARN, got 7" });
  assert.throws(loose({ concurrency: 1.5 }), { code: 'LAUNCHER_OPTIONS', message: 'LambdaLauncher concurrency: expected an integer >= 1, got 1.5' });
  assert.throws(loose({ invocationType: 'Sync' }), { code: 'LAUNCHER_OPTIONS', message: `LambdaLauncher invocationType: expected 'Event' or 'RequestResponse', got "Sync"` });
  assert.throws(loose({ retry: { attempts: 0 } }), { code: 'LAUNCHER_OPTIONS', message: 'LambdaLauncher retry.attempts: expected an integer >= 1, got 0' });
  assert.throws(loose({ retry: { baseDelayMs: 50, maxDelayMs: 10 } }), { code: 'LAUNCHER_OPTIONS', message: 'LambdaLauncher retry: expected 0 <= baseDelayMs <= maxDelayMs, got 50 and 10' });
  assert.throws(loose({ maxPayloadBytes: '6MB' }), { code: 'LAUNCHER_OPTIONS', message: 'LambdaLauncher maxPayloadBytes: expected a positive integer, got 6MB' });
  assert.throws(loose({ onLog: 'stderr' }), { code: 'LAUNCHER_OPTIONS', message: 'LambdaLauncher onLog: expected a function (line, worker) => void, got stderr' });
  assert.throws(loose({ awaitResult: never, resultChannel: { awaitResult: never } }), { code: 'LAUNCHER_OPTIONS', message: 'LambdaLauncher awaitResult: give awaitResult or resultChannel, not both' });

  const l = new LambdaLauncher({ ...base, functionName: 'cirrus-worker', invocationType: 'Event', awaitResult: never });
  const h = await l.launch(event({ type: 'noop' }));
  await h.accepted;
  await l.close();
  const r = await h.result;
  assert.equal(r.status, 'killed');
  assert.match(r.error!.message, /was marked killed: launcher closed\. Its invoke of Lambda function 'cirrus-worker' was accepted/);
  await server.idle();
});
