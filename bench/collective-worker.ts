/**
 * One worker process of the collective benchmark and tests. Protocol on stdio, one JSON object per
 * line: the worker prints {type:'ready'}, waits for 'go', runs the rounds, prints {type:'collective'};
 * if asked for a bare replay it waits for 'bare', replays the same traffic with the bare client and
 * prints {type:'bare'}; then it exits. Every wait has a deadline.
 */
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Communicator, canPutParts, canReadInto, type LentBuffer, type PutParts as PutPartsChannel, type ReadInto as ReadIntoChannel, emptyStats, type Channel, type ChannelStats, openChannel, jobKey, parseChannelSpec } from '../channels/index.js';
import { openBareClient } from './bare-clients.js';
import { RecordingChannel, type RoundTraffic } from './recording-channel.js';
import { makeVector } from './vectors.js';

export type BenchPattern = 'allreduce' | 'allgather' | 'scatterreduce';
const CYCLE: BenchPattern[] = ['scatterreduce', 'allreduce', 'allgather'];

export interface WorkerConfig {
  channel: unknown;
  jobId: string;
  rank: number;
  world: number;
  /**
   * 'allreduce' = leader AllReduce, 'allgather' = AllReduce by gathering, 'scatterreduce';
   * 'alternate' cycles through all three (tests that rounds of different patterns never mix).
   */
  pattern: BenchPattern | 'alternate';
  op: 'sum' | 'mean';
  floats: number;
  rounds: number;
  seed: number;
  /** New vector every round (tests) or one reused vector (benchmark: keeps generation out of the timing). */
  varyPerRound: boolean;
  /** Report a hash of every round's result. */
  hashes: boolean;
  bare: boolean;
  timeoutMs: number;
}

export interface CollectiveReport {
  type: 'collective';
  rank: number;
  durationsMs: number[];
  /** Channel counters of each round (this rank's requests and bytes by kind). */
  stats: ChannelStats[];
  hashes: string[];
  closeMs: number;
  /** This process's CPU time (user + system) over all rounds, in ms. */
  cpuMs: number;
}

export interface BareReport {
  type: 'bare';
  rank: number;
  durationsMs: number[];
  /** This process's CPU time (user + system) over all replayed rounds, in ms. */
  cpuMs: number;
}

const cpuMsSince = (start: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};

/** A RecordingChannel that keeps the channel's waitManyInto and putParts, so the collectives run as they do unwrapped. */
class RecordingReadIntoChannel extends RecordingChannel implements ReadIntoChannel, PutPartsChannel {
  constructor(private readonly base: Channel & ReadIntoChannel & PutPartsChannel) {
    super(base);
  }
  async putParts(key: string, head: Uint8Array, body: Uint8Array): Promise<void> {
    this.traffic.puts.push(head.byteLength + body.byteLength);
    return this.base.putParts(key, head, body);
  }
  async waitManyInto(
    keys: string[],
    deadline: number,
    dest: (index: number, byteLength: number) => LentBuffer | undefined,
    onValue?: (index: number, value: Uint8Array) => void,
  ): Promise<Uint8Array[]> {
    // A value read in two pieces comes back as its head: record the length that was read.
    const lengths: number[] = [];
    const vs = await this.base.waitManyInto(keys, deadline, (i, n) => ((lengths[i] = n), dest(i, n)), onValue);
    vs.forEach((v, i) => this.traffic.gets.push(lengths[i] ?? v.byteLength));
    return vs;
  }
}

const send = (msg: object) => process.stdout.write(JSON.stringify(msg) + '\n');

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '') as WorkerConfig;
  const lines = createInterface({ input: process.stdin });
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  lines.on('line', (l) => {
    queue.push(l.trim());
    wake?.();
  });
  const expect = async (word: string) => {
    const deadline = Date.now() + config.timeoutMs * 4;
    while (queue.length === 0) {
      if (Date.now() > deadline) throw new Error(`rank ${config.rank}: no '${word}' from the parent before the deadline`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
    const got = queue.shift();
    if (got !== word) throw new Error(`rank ${config.rank}: expected '${word}' from the parent, got '${got}'`);
  };

  const spec = parseChannelSpec(config.channel);
  const inner = await openChannel(spec);
  const channel = canReadInto(inner) && canPutParts(inner) ? new RecordingReadIntoChannel(inner) : new RecordingChannel(inner);
  const comm = new Communicator(channel, { jobId: config.jobId, rank: config.rank, world: config.world, timeoutMs: config.timeoutMs });
  const fixed = config.varyPerRound ? undefined : makeVector(config.seed, config.rank, 0, config.floats);
  send({ type: 'ready', rank: config.rank });
  await expect('go');

  const report: CollectiveReport = { type: 'collective', rank: config.rank, durationsMs: [], stats: [], hashes: [], closeMs: 0, cpuMs: 0 };
  const traffic: RoundTraffic[] = [];
  const result = new Float32Array(config.floats);
  const cpu0 = process.cpuUsage();
  for (let round = 0; round < config.rounds; round++) {
    const v = fixed ?? makeVector(config.seed, config.rank, round, config.floats);
    const before = channel.stats();
    channel.take();
    const t0 = performance.now();
    const pattern = config.pattern === 'alternate' ? CYCLE[round % CYCLE.length]! : config.pattern;
    // One result buffer for every round, as the training workers do.
    const out =
      pattern === 'scatterreduce' ? await comm.scatterReduce(v, config.op, result) : await comm.allReduce(v, config.op, pattern === 'allgather' ? 'gather' : 'leader', result);
    report.durationsMs.push(performance.now() - t0);
    traffic.push(channel.take());
    const after = channel.stats();
    const diff = emptyStats();
    for (const k of ['put', 'get', 'list', 'delete'] as const) {
      diff[k].requests = after[k].requests - before[k].requests;
      diff[k].bytes = after[k].bytes - before[k].bytes;
    }
    report.stats.push(diff);
    if (config.hashes) report.hashes.push(createHash('sha256').update(new Uint8Array(out.buffer, out.byteOffset, out.byteLength)).digest('hex'));
  }
  report.cpuMs = cpuMsSince(cpu0);
  const c0 = performance.now();
  await comm.close();
  report.closeMs = performance.now() - c0;
  send(report);

  if (config.bare) {
    await replayBare(config, spec, traffic, expect);
  }
  await channel.close();
  lines.close();
}

/** Replays each round's recorded puts (in parallel), then its gets (in parallel), with the bare client. */
async function replayBare(config: WorkerConfig, spec: ReturnType<typeof parseChannelSpec>, traffic: RoundTraffic[], expect: (w: string) => Promise<void>): Promise<void> {
  const bare = await openBareClient(spec);
  const key = (kind: string, i: number) => jobKey(config.jobId, 'bare', config.rank, kind, i);
  const maxGets = Math.max(0, ...traffic.map((t) => t.gets.length));
  const getSizes = new Map<string, number>();
  // Values to read must exist first: write them untimed.
  for (let i = 0; i < maxGets; i++) {
    const size = Math.max(...traffic.map((t) => t.gets[i] ?? 0));
    getSizes.set(key('g', i), size);
    await bare.put(key('g', i), new Uint8Array(size));
  }
  const payload = new Uint8Array(Math.max(0, ...traffic.flatMap((t) => t.puts)));
  send({ type: 'bare-ready', rank: config.rank });
  await expect('bare');
  const report: BareReport = { type: 'bare', rank: config.rank, durationsMs: [], cpuMs: 0 };
  const written = new Set<string>();
  const cpu0 = process.cpuUsage();
  for (const t of traffic) {
    const t0 = performance.now();
    await Promise.all(t.puts.map((size, i) => {
      written.add(key('p', i));
      return bare.put(key('p', i), payload.subarray(0, size));
    }));
    await Promise.all(t.gets.map((_, i) => bare.get(key('g', i))));
    report.durationsMs.push(performance.now() - t0);
  }
  report.cpuMs = cpuMsSince(cpu0);
  send(report);
  await bare.delete([...getSizes.keys(), ...written]);
  await bare.close();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`collective worker failed: ${e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e)}\n`);
    process.exit(1);
  },
);
