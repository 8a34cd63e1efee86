/** Which endpoints Lambda workers can reach, and the worker's deadline from Lambda's context. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkAdvertise, checkReachableFromWorkers, unreachableReason } from '../client/job/reachable.js';
import { childContext } from '../worker/child.js';
import { withContextDeadline } from '../worker/handler.js';

test('loopback and unspecified hosts are unreachable from another machine; others are not judged', () => {
  for (const h of ['localhost', 'api.localhost', '127.0.0.1', '127.8.9.10', '::1', '[::1]', '::ffff:127.0.0.1']) assert.match(unreachableReason(h) ?? '', /loopback/, h);
  for (const h of ['0.0.0.0', '::', '[::]']) assert.equal(unreachableReason(h), 'the unspecified address', h);
  for (const h of ['10.0.0.5', '198.18.0.1', 'my-cache.abc123.cfg.use1.cache.amazonaws.com', '128.0.0.1']) assert.equal(unreachableReason(h), undefined, h);
});

test('each endpoint kind is refused with its field and what to use instead', async () => {
  await assert.rejects(checkReachableFromWorkers({ channel: { kind: 'memcached', server: '127.0.0.1:11211', timeoutMs: 5000, chunkBytes: 1024, connections: 1, ttlS: 3600 } }), {
    code: 'TRAIN_ENDPOINT',
    message: /^endpoints\.channel\.server: memcached:\/\/127\.0\.0\.1:11211 is a loopback address, which Lambda workers cannot reach from their own hosts; give a memcached the workers can reach \(ElastiCache/,
  });
  await assert.rejects(checkReachableFromWorkers({ store: 's3://data/x?endpoint=http%3A%2F%2Flocalhost%3A4568' }), { code: 'TRAIN_ENDPOINT', message: /^endpoints\.store: s3:\/\/data\/x\?endpoint=.* is a loopback name/ });
  await assert.rejects(checkReachableFromWorkers({ store: 'memory://' }), { message: /^endpoints\.store: memory:\/\/ is this process's memory/ });
  await assert.rejects(checkReachableFromWorkers({ channel: { kind: 's3', bucket: 'b', endpoint: 'http://0.0.0.0:9000', region: 'us-east-1', prefix: '', timeoutMs: 1 } }), { message: /^endpoints\.channel\.endpoint: http:\/\/0\.0\.0\.0:9000 is the unspecified address/ });
  await assert.rejects(checkReachableFromWorkers({}, ['10.0.0.1:7000', '[::1]:7001']), { message: /^task\.psShards\[1\]: \[::1\]:7001 is a loopback address/ });
  // Reachable endpoints pass: AWS S3 (no endpoint), a private address, an unresolvable VPC name.
  await checkReachableFromWorkers({ store: 's3://bucket/prefix', channel: { kind: 'ps', address: '10.1.2.3:7070', token: 't', timeoutMs: 1000 } }, ['node-1.cluster.invalid:7000']);
});

test('params.advertise must be one of this machine\'s own non-loopback addresses', () => {
  assert.throws(() => checkAdvertise('0.0.0.0'), { code: 'TRAIN_PARAMS', message: 'params.advertise: 0.0.0.0 is the unspecified address; give an address of this machine that the workers can reach' });
  assert.throws(() => checkAdvertise('my-host'), { code: 'TRAIN_PARAMS', message: "params.advertise: 'my-host' is not an IP address; give one of this machine's addresses" });
  assert.throws(() => checkAdvertise('203.0.113.77'), { code: 'TRAIN_PARAMS', message: /^params\.advertise: 203\.0\.113\.77 is not an address of this machine \(its addresses: / });
});

test("the worker's deadline is the earlier of the event's and the context's remaining time", () => {
  const now = Date.now();
  const e = { deadlineMs: now + 600_000, rank: 0 };
  const short = withContextDeadline(e, { getRemainingTimeInMillis: () => 3_000 });
  assert.equal(short.deadlineFrom, 'context');
  assert.ok(short.event.deadlineMs >= now + 3_000 && short.event.deadlineMs <= Date.now() + 3_000, String(short.event.deadlineMs - now));
  assert.equal(e.deadlineMs, now + 600_000, 'the event itself is not changed');
  const long = withContextDeadline(e, { getRemainingTimeInMillis: () => 900_000 });
  assert.deepEqual(long, { event: e, deadlineFrom: 'event' });
  assert.deepEqual(withContextDeadline(e, undefined), { event: e, deadlineFrom: 'event' });
  // The local launcher's children get the same shape, fed by its kill time.
  const ctx = childContext({ CIRRUS_WORKER_DEADLINE_MS: String(now + 5_000), CIRRUS_WORKER_MEMORY_MB: '512' })!;
  assert.equal(ctx.memoryLimitInMB, 512);
  const left = ctx.getRemainingTimeInMillis();
  assert.ok(left <= 5_000 && left > 0, String(left));
  assert.equal(childContext({}), undefined);
});
