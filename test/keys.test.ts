import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertKey, jobKey, jobPrefix } from '../channels/keys.js';
import { parseChannelSpec, parseChannelUrl } from '../channels/spec.js';

test('job keys live under job/<jobId>/', () => {
  assert.equal(jobKey('run-1', 'coll', 'grad', 3, 'in', 0, 2), 'job/run-1/coll/grad/3/in/0/2');
  assert.equal(jobPrefix('a.b_c'), 'job/a.b_c/');
});

test('bad job ids, key parts and keys are rejected with the offending text', () => {
  assert.throws(() => jobKey('has space', 'x'), { code: 'KEY_INVALID', message: /job id 'has space' is invalid/ });
  assert.throws(() => jobKey('ok', 'a/b'), { code: 'KEY_INVALID', message: /key part 'a\/b' is invalid/ });
  assert.throws(() => assertKey('x'.repeat(251)), { code: 'KEY_INVALID', message: /expected 1-250 bytes, got 251/ });
  assert.throws(() => assertKey('a\nb'), { code: 'KEY_INVALID' });
});

test('channel URLs parse to specs with defaults', () => {
  assert.deepEqual(parseChannelUrl('memcached://127.0.0.1:11211'), { kind: 'memcached', server: '127.0.0.1:11211', timeoutMs: 5000, chunkBytes: 1023 * 1024, connections: 2, ttlS: 86_400 });
  assert.deepEqual(parseChannelUrl('ps://localhost:7070?timeoutMs=2000'), { kind: 'ps', address: 'localhost:7070', timeoutMs: 2000 });
  const s3 = parseChannelUrl('s3://my-bucket/runs/a?endpoint=http://127.0.0.1:4568');
  assert.equal(s3.kind, 's3');
  assert.deepEqual(s3, { kind: 's3', bucket: 'my-bucket', prefix: 'runs/a', endpoint: 'http://127.0.0.1:4568', region: 'us-east-1', forcePathStyle: true, timeoutMs: 30000 });
  assert.deepEqual(parseChannelUrl('memory://'), { kind: 'memory' });
});

test('unknown channels and malformed endpoints give one clear error naming the field', () => {
  assert.throws(() => parseChannelUrl('redis://127.0.0.1:6379'), { code: 'CHANNEL_UNKNOWN', message: "channel 'redis://127.0.0.1:6379': unknown channel 'redis'; expected one of memcached, s3, ps, memory" });
  assert.throws(() => parseChannelSpec({ kind: 'dynamo' }), { code: 'CHANNEL_UNKNOWN', message: 'channel.kind: unknown channel "dynamo"; expected one of memcached, s3, ps, memory' });
  assert.throws(() => parseChannelUrl('memcached://localhost'), { code: 'CHANNEL_ENDPOINT', message: /^memcached:\/\/localhost\.server: expected 'host:port'/ });
  assert.throws(() => parseChannelSpec({ kind: 'ps', address: '1.2.3.4:99999' }), { code: 'CHANNEL_ENDPOINT', message: 'channel.address: port must be 1-65535' });
  assert.throws(() => parseChannelSpec({ kind: 's3', bucket: 'Bad_Bucket' }), { code: 'CHANNEL_ENDPOINT', message: /^channel\.bucket: expected an S3 bucket name/ });
  assert.throws(() => parseChannelSpec({ kind: 's3', bucket: 'ok-bucket', endpoint: 'not a url' }), { code: 'CHANNEL_ENDPOINT', message: /^channel\.endpoint: expected an http\(s\) URL/ });
  assert.throws(() => parseChannelSpec({ kind: 'memcached', server: 'h:1', chunkBytes: 8 * 1024 * 1024 }), { code: 'CHANNEL_ENDPOINT', message: /^channel\.chunkBytes: / });
  assert.throws(() => parseChannelUrl('nonsense'), { code: 'CHANNEL_ENDPOINT', message: /expected a URL such as memcached:\/\// });
});
