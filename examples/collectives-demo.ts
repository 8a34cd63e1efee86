/**
 * End-to-end demo on the embedded defaults: starts an S3 server (s3rver) and a parameter server
 * in-process, plus a private memcached when the binary is installed, then runs AllReduce and
 * ScatterReduce with 4 real worker processes over each channel, checks every rank's result against
 * a local sum, and checks that nothing was left in the stores.
 *
 *   npm run example        (or: node dist/examples/collectives-demo.js)
 */
import { createHash } from 'node:crypto';
import { openChannel, referenceReduce, type ChannelSpecInput } from '../channels/index.js';
import { findMemcachedBinary, s3SpecFor, startMemcached, startS3Server } from '../client/servers/index.js';
import { percentile, roundTimes, runCollective } from '../bench/index.js';
import { makeVector } from '../bench/vectors.js';
import { formatTable } from '../bench/table.js';
import { ParamClient, startParamServer } from '../paramserver/index.js';

const WORLD = 4;
const FLOATS = 100_000;
const ROUNDS = 6;

async function main(): Promise<void> {
  const s3 = await startS3Server({ buckets: ['cirrus'] });
  const ps = await startParamServer({ port: 0 });
  const memcached = findMemcachedBinary() ? await startMemcached() : undefined;
  const channels: Array<[string, ChannelSpecInput]> = [
    ['s3', s3SpecFor(s3, 'cirrus')],
    ['ps', { kind: 'ps', address: ps.address }],
    ...(memcached ? [['memcached', { kind: 'memcached', server: memcached.address }] as [string, ChannelSpecInput]] : []),
  ];
  if (!memcached) console.log('memcached is not installed: skipping it (apt-get install memcached to include it)');
  const rows: Array<Array<string | number>> = [];
  try {
    const expected = Array.from({ length: ROUNDS }, (_, round) => {
      const sum = referenceReduce(Array.from({ length: WORLD }, (_, rank) => makeVector(5, rank, round, FLOATS)), 'mean');
      return createHash('sha256').update(new Uint8Array(sum.buffer)).digest('hex');
    });
    for (const [name, spec] of channels) {
      for (const pattern of ['allreduce', 'scatterreduce'] as const) {
        const jobId = `demo-${name}-${pattern}`;
        const result = await runCollective({ channel: spec, jobId, world: WORLD, pattern, op: 'mean', floats: FLOATS, rounds: ROUNDS, seed: 5, varyPerRound: true, hashes: true, bare: false, timeoutMs: 30_000 });
        const correct = result.collective.every((r) => r.hashes.every((h, i) => h === expected[i]));
        if (!correct) throw new Error(`${name} ${pattern}: a rank's result differs from the local mean`);
        const times = roundTimes(result.collective, 1);
        rows.push([name, pattern, WORLD, FLOATS, percentile(times, 50), 'yes']);
      }
    }
    // Every run closed its communicators: the stores that can list must be empty.
    const s3ch = await openChannel(s3SpecFor(s3, 'cirrus'));
    const left = (await s3ch.list!('job/')).length;
    await s3ch.close();
    const psClient = await ParamClient.connect(ps.address);
    const psLeft = (await psClient.list('job/')).length;
    await psClient.close();
    console.log(formatTable(['channel', 'pattern', 'workers', 'floats', 'median round ms', 'bit-exact'], rows));
    console.log(`\nkeys left behind: s3 ${left}, ps ${psLeft}`);
    if (left + psLeft > 0) throw new Error('keys were left behind');
  } finally {
    await memcached?.stop();
    await ps.stop();
    await s3.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
