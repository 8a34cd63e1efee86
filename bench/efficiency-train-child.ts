/**
 * Child process of the efficiency bench: one cirrus.train run in a node process of its own, as a
 * user's `cirrus train` is (and as the plain process is), so node's start-up and module loading
 * count on both sides and the bench's own memory does not slow the client's spawns. Reads the
 * TrainParamsInput as JSON on stdin; prints one JSON line (TrainChildReport) on stdout.
 */
import { train, type TrainParamsInput } from '../client/index.js';
import { awaitChildrenReaped } from './child-cpu.js';

export interface TrainChildReport {
  epochs: number;
  testAccuracy: number;
  wallSeconds: number;
  workerCpuSeconds?: number;
  /** The client's CPU-s as train() accounts it (from its start; the parameter server is in-process). */
  clientCpuSeconds?: number;
  serverCpuSeconds?: number;
}

/** How often the run checks that the bench is still there. */
const PARENT_POLL_MS = 500;

async function main(): Promise<void> {
  // A bench killed mid-run must not leave its run going: train() handles SIGTERM by stopping its
  // workers, deleting its keys and stopping the servers it started.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, PARENT_POLL_MS).unref();
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const params = JSON.parse(Buffer.concat(chunks).toString('utf8')) as TrainParamsInput;
  const r = await train(params);
  // The launcher's close() killed its standby spare; its CPU counts once it has been waited for.
  const left = await awaitChildrenReaped();
  if (left.length > 0) process.stderr.write(`bench efficiency: processes ${left.join(', ')} still running after the run; their CPU-s is not counted\n`);
  const report: TrainChildReport = {
    epochs: r.metrics.epochs,
    testAccuracy: r.metrics.testAccuracy,
    wallSeconds: r.metrics.wallSeconds,
    ...(r.cost.workerCpuSeconds !== undefined ? { workerCpuSeconds: r.cost.workerCpuSeconds } : {}),
    ...(r.cost.clientCpuSeconds !== undefined ? { clientCpuSeconds: r.cost.clientCpuSeconds } : {}),
    ...(r.cost.serverCpuSeconds !== undefined ? { serverCpuSeconds: r.cost.serverCpuSeconds } : {}),
  };
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0));
}

await main();
