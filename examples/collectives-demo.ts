/**
 * End-to-end demo on the embedded defaults: starts an S3 server (s3rver) and a parameter server
 * in-process, plus a private memcached when the binary is installed, then runs AllReduce and
 * ScatterReduce with 4 real worker processes over each channel, checks every rank's result against
 * a local sum, and checks that nothing was left in the stores.
 *
 *   npm run example        (or: node dist/examples/collectives-demo.js)
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { openChannel, referenceReduce, type ChannelSpecInput } from '../channels/index.js';
import { findMemcachedBinary, formatTable, s3SpecFor, startMemcached, startS3Server } from '../client/index.js';
import { ParamClient, startParamServer } from '../paramserver/index.js';
import type { DemoRankConfig, DemoRankReport } from './collectives-worker.js';
import { demoVector } from './demo-vector.js';

const WORLD = 4;
const FLOATS = 100_000;
const ROUNDS = 6;
const WORKER = fileURLToPath(new URL('./collectives-worker.js', import.meta.url));
/** How long one rank's process may take in all before it is killed. */
const RANK_DEADLINE_MS = 120_000;

/** Runs one rank in its own process; resolves with its report, rejects with its stderr when it fails. */
function runRank(config: DemoRankConfig): Promise<DemoRankReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), RANK_DEADLINE_MS);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop()!) as DemoRankReport);
      else reject(new Error(`rank ${config.rank} exited with ${signal ?? `code ${code}`}: ${err.trim() || '(no output)'}`));
    });
  });
}

/** The median over rounds (the first, a warm-up, left out) of each round's slowest rank. */
function medianRoundMs(reports: DemoRankReport[]): number {
  const rounds = reports[0]!.durationsMs.slice(1).map((_, i) => Math.max(...reports.map((r) => r.durationsMs[i + 1]!)));
  rounds.sort((a, b) => a - b);
  return rounds[Math.floor((rounds.length - 1) / 2)]!;
}

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
      const sum = referenceReduce(Array.from({ length: WORLD }, (_, rank) => demoVector(rank, round, FLOATS)), 'mean');
      return createHash('sha256').update(new Uint8Array(sum.buffer)).digest('hex');
    });
    for (const [name, spec] of channels) {
      for (const pattern of ['allreduce', 'scatterreduce'] as const) {
        const jobId = `demo-${name}-${pattern}`;
        const ranks = Array.from({ length: WORLD }, (_, rank) => runRank({ channel: spec, jobId, rank, world: WORLD, pattern, floats: FLOATS, rounds: ROUNDS, timeoutMs: 30_000 }));
        // Every rank's process ends (a failing one lets the others reach their deadlines) before the first failure is reported.
        const settled = await Promise.allSettled(ranks);
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        const reports = settled.map((r) => (r as PromiseFulfilledResult<DemoRankReport>).value);
        const correct = reports.every((r) => r.hashes.length === ROUNDS && r.hashes.every((h, i) => h === expected[i]));
        if (!correct) throw new Error(`${name} ${pattern}: a rank's result differs from the local mean`);
        rows.push([name, pattern, WORLD, FLOATS, medianRoundMs(reports), 'yes']);
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
