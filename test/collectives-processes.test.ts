/**
 * Collectives with W = 1..8 real worker processes against real memcached, s3rver and the parameter
 * server: every rank's result must equal the rank-order sum computed here, bit for bit, and nothing
 * may be left in the store afterwards.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import memjs from 'memjs';
import { referenceReduce } from '../channels/reduce.js';
import { S3Channel } from '../channels/adapters/s3/index.js';
import { s3SpecFor } from '../client/servers/index.js';
import { parseChannelSpec, type ChannelSpecInput, type S3Spec } from '../channels/spec.js';
import { ParamClient } from '../paramserver/index.js';
import { runCollective } from '../bench/collective-runner.js';
import { makeVector } from '../bench/vectors.js';
import { startTestServers, type TestServers } from './support/servers.js';
import { skipOrFail } from './support/skip-or-fail.js';


let servers: TestServers;
before(async () => {
  servers = await startTestServers();
});
after(async () => {
  await servers?.stop();
});

function expectedHashes(world: number, floats: number, rounds: number, op: 'sum' | 'mean'): string[] {
  return Array.from({ length: rounds }, (_, round) => {
    const out = referenceReduce(Array.from({ length: world }, (_, rank) => makeVector(11, rank, round, floats)), op);
    return createHash('sha256').update(new Uint8Array(out.buffer)).digest('hex');
  });
}

async function check(spec: ChannelSpecInput, world: number, floats: number, op: 'sum' | 'mean', jobId: string): Promise<void> {
  const rounds = 4;
  const result = await runCollective({ channel: spec, jobId, world, pattern: 'alternate', op, floats, rounds, seed: 11, varyPerRound: true, hashes: true, bare: false, timeoutMs: 30_000 }, 120_000);
  const expected = expectedHashes(world, floats, rounds, op);
  for (const rep of result.collective) assert.deepEqual(rep.hashes, expected, `W=${world} floats=${floats}: rank ${rep.rank} disagrees with the local rank-order ${op}`);
}

const configs = (world: number) => [
  { floats: 1001, op: world % 2 ? ('sum' as const) : ('mean' as const) },
  ...(world > 2 ? [{ floats: world - 1, op: 'sum' as const }] : []),
];

test('memcached: AllReduce and ScatterReduce, W = 1..8 processes, bit-exact, no keys left', async (t) => {
  if (skipOrFail(t, servers.memcachedMissing)) return;
  const spec = { kind: 'memcached', server: servers.memcached!.address } as const;
  for (let world = 1; world <= 8; world++) for (const c of configs(world)) await check(spec, world, c.floats, c.op, `mc-${world}-${c.floats}`);
  // A large vector exercises chunked values (1M floats = 4 MB > one chunk).
  await check(spec, 4, 1_000_000, 'mean', 'mc-large');
  const client = memjs.Client.create(servers.memcached!.address, { timeout: 5 });
  try {
    const stats = await new Promise<Record<string, string>>((resolve, reject) =>
      client.stats((err, _server, s) => (err ? reject(err) : resolve(s as Record<string, string>))),
    );
    assert.equal(stats.curr_items, '0', 'items left in memcached after every run closed');
  } finally {
    client.close();
  }
});

test('s3 (s3rver): AllReduce and ScatterReduce, W = 1..8 processes, bit-exact, no keys left', async () => {
  const spec = s3SpecFor(servers.s3, 'cirrus');
  for (let world = 1; world <= 8; world++) for (const c of configs(world)) await check(spec, world, c.floats, c.op, `s3-${world}-${c.floats}`);
  await check(spec, 4, 1_000_000, 'sum', 's3-large');
  const ch = await S3Channel.open(parseChannelSpec(spec) as S3Spec);
  try {
    assert.deepEqual(await ch.list('job/'), []);
  } finally {
    await ch.close();
  }
});

test('ps: AllReduce and ScatterReduce, W = 1..8 processes, bit-exact, no keys left', async () => {
  const spec = { kind: 'ps', address: servers.ps.address } as const;
  for (let world = 1; world <= 8; world++) for (const c of configs(world)) await check(spec, world, c.floats, c.op, `ps-${world}-${c.floats}`);
  const client = await ParamClient.connect(servers.ps.address);
  try {
    assert.deepEqual(await client.list('job/'), []);
  } finally {
    await client.close();
  }
});

test('a worker that never arrives fails the round with the missing rank named', async () => {
  const spec = { kind: 'ps', address: servers.ps.address } as const;
  // world 3 but only ranks 0 and 1 are started: run the runner with a 2-process world that claims 3.
  const err = await runCollective({ channel: spec, jobId: 'missing-rank', world: 3, pattern: 'allreduce', op: 'sum', floats: 10, rounds: 1, seed: 1, varyPerRound: true, hashes: false, bare: false, timeoutMs: 1500 }, 60_000, [0, 1]).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err, 'the run should fail');
  assert.match(err.message, /COLLECTIVE_TIMEOUT: allreduce round 0: rank 0 waited \d+ ms; rank 2 never arrived/);
});
