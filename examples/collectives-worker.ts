/**
 * One rank of the collectives demo (examples/collectives-demo.ts), in a process of its own: opens
 * the channel it is given, runs `rounds` rounds of AllReduce or ScatterReduce (mean) over it with
 * the other ranks, and prints one JSON line: each round's time and a hash of its result.
 */
import { createHash } from 'node:crypto';
import { Communicator, openChannel, parseChannelSpec } from '../channels/index.js';
import { demoVector } from './demo-vector.js';

export interface DemoRankConfig {
  channel: unknown;
  jobId: string;
  rank: number;
  world: number;
  pattern: 'allreduce' | 'scatterreduce';
  floats: number;
  rounds: number;
  /** Each collective's deadline. */
  timeoutMs: number;
}

export interface DemoRankReport {
  rank: number;
  durationsMs: number[];
  /** sha256 of each round's result, hex. */
  hashes: string[];
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? '') as DemoRankConfig;
  const channel = await openChannel(parseChannelSpec(c.channel));
  const comm = new Communicator(channel, { jobId: c.jobId, rank: c.rank, world: c.world, timeoutMs: c.timeoutMs });
  const report: DemoRankReport = { rank: c.rank, durationsMs: [], hashes: [] };
  try {
    for (let round = 0; round < c.rounds; round++) {
      const v = demoVector(c.rank, round, c.floats);
      const t0 = performance.now();
      const out = c.pattern === 'scatterreduce' ? await comm.scatterReduce(v, 'mean') : await comm.allReduce(v, 'mean');
      report.durationsMs.push(performance.now() - t0);
      report.hashes.push(createHash('sha256').update(new Uint8Array(out.buffer, out.byteOffset, out.byteLength)).digest('hex'));
    }
  } finally {
    // Closing removes this rank's keys, so the demo can check that nothing was left behind.
    await comm.close();
    await channel.close();
  }
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
