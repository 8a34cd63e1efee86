/**
 * One client process of the parameter-server benchmark. argv[2] is a JSON ChildConfig. It connects,
 * warms up for WARM_UP_MS, prints {"type":"ready"}, waits for a line on stdin, then runs push+pull
 * pairs back to back (a closed loop) for durationMs and prints {"type":"result", pairs, latenciesMs}.
 */
import { createInterface } from 'node:readline';
import { ParamClient } from '../paramserver/index.js';
import { ECHO_PULL, ECHO_PUSH, EchoClient } from './ps-echo.js';
import { readTraffic } from './ps-traffic.js';

export interface ChildConfig {
  target: 'ps' | 'echo';
  address: string;
  model: string;
  rank: number;
  durationMs: number;
  /** File of batches written by writeCriteoTraffic. */
  trafficFile: string;
}

export interface ChildResult {
  type: 'result';
  pairs: number;
  latenciesMs: number[];
}

type Pair = (indices: Uint32Array, values: Float32Array, clock: number) => Promise<void>;

async function connect(cfg: ChildConfig): Promise<{ pair: Pair; close(): Promise<void> }> {
  if (cfg.target === 'ps') {
    const c = await ParamClient.connect(cfg.address);
    return {
      pair: async (indices, values, clock) => {
        // Sent back to back on one connection, as a training worker does; both replies awaited.
        await Promise.all([c.push(cfg.model, { rank: cfg.rank, clock, indices, values }), c.pullSparse(cfg.model, indices)]);
      },
      close: () => c.close(),
    };
  }
  const c = await EchoClient.connect(cfg.address);
  return {
    pair: async (indices, values) => {
      const push = new Uint8Array(indices.byteLength + values.byteLength);
      push.set(new Uint8Array(indices.buffer, indices.byteOffset, indices.byteLength), 0);
      push.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), indices.byteLength);
      const reply = await Promise.all([c.request(ECHO_PUSH, push), c.request(ECHO_PULL, new Uint8Array(indices.buffer, indices.byteOffset, indices.byteLength))]);
      // Decode the values as the PS client would, so both sides do the same work per pair.
      const b = reply[1];
      new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    },
    close: async () => c.close(),
  };
}

const WARM_UP_MS = 1500;

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]!) as ChildConfig;
  const all = readTraffic(cfg.trafficFile);
  // Each client starts at its own place in the batches, like workers on different shards.
  const traffic = all.map((_, i) => all[(i + cfg.rank * 7) % all.length]!);
  const conn = await connect(cfg);
  // Warm up before the clock starts, so the measurement is of compiled code, not of the JIT
  // compiling it on a core the server needs (same for both targets).
  const warmEnd = performance.now() + WARM_UP_MS;
  for (let i = 0; performance.now() < warmEnd; i++) {
    const b = traffic[i % traffic.length]!;
    await conn.pair(b.indices, b.values, i);
  }
  process.stdout.write(JSON.stringify({ type: 'ready' }) + '\n');
  const stdin = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => stdin.once('line', () => resolve()));
  stdin.close(); // an open stdin would keep this process alive after its result
  const latencies: number[] = [];
  const end = performance.now() + cfg.durationMs;
  let pairs = 0;
  while (performance.now() < end) {
    const b = traffic[pairs % traffic.length]!;
    const t0 = performance.now();
    await conn.pair(b.indices, b.values, pairs);
    latencies.push(performance.now() - t0);
    pairs++;
  }
  await conn.close();
  const result: ChildResult = { type: 'result', pairs, latenciesMs: latencies };
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`ps bench client: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
