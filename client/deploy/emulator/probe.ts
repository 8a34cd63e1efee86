/**
 * The dry run's check that a package really works on Lambda: unpacked where no node_modules is
 * visible, loaded by the emulated runtime with Lambda's environment, and handed an event it must
 * answer from its own code (a statistics task over an empty in-memory store: the handler
 * validates the event, opens the store and reports the missing shard by name).
 */
import { randomUUID } from 'node:crypto';
import { DeployError } from '../errors.js';
import type { WorkerPackage } from '../package.js';
import { runSandbox } from './sandbox.js';
import { unpackPackage } from './unpack.js';

interface ProbeResult {
  /** Process start to handler loaded. */
  initMs: number;
  /** Event handed over to the answer. */
  durationMs: number;
}

const PROBE_EVENT = { jobId: 'probe', rank: 0, world: 1, attempt: 0, deadlineMs: 0, task: { type: 'dataset-stats', shards: ['probe.shard'] }, endpoints: { store: 'memory://' } };
const EXPECTED = "shard 'probe.shard' does not exist in memory://";

/** Minimal Lambda environment for one emulated invocation of `dir`. */
export function lambdaEnvironment(dir: string, o: { functionName: string; memoryMb: number; timeoutS: number; region?: string; handler?: string }): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    LAMBDA_TASK_ROOT: dir,
    _HANDLER: o.handler ?? 'index.handler',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs20.x',
    AWS_LAMBDA_FUNCTION_NAME: o.functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(o.memoryMb),
    AWS_LAMBDA_FUNCTION_TIMEOUT: String(o.timeoutS),
    AWS_REGION: o.region ?? 'us-east-1',
    AWS_DEFAULT_REGION: o.region ?? 'us-east-1',
  };
}

export async function probePackage(pkg: WorkerPackage): Promise<ProbeResult> {
  const unpacked = await unpackPackage(pkg.zip);
  try {
    const r = await runSandbox({
      requestId: randomUUID(),
      codeDir: unpacked.dir,
      handler: pkg.handler,
      timeoutS: 30,
      memoryMb: 512,
      env: lambdaEnvironment(unpacked.dir, { functionName: 'cirrus-probe', memoryMb: 512, timeoutS: 30 }),
      event: { ...PROBE_EVENT, deadlineMs: Date.now() + 30_000 },
      functionName: 'cirrus-probe',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:cirrus-probe',
    });
    const o = r.outcome;
    if (o.ok || o.errorMessage !== EXPECTED) {
      const got = o.ok ? `a result (${o.payload.slice(0, 200)})` : `${o.errorType}: ${o.errorMessage}`;
      throw new DeployError('DEPLOY_PACKAGE_INVALID', `the package does not run on its own: its handler, unpacked in an empty directory, answered a probe event with ${got}; expected the error "${EXPECTED}"`);
    }
    return { initMs: r.initMs ?? 0, durationMs: r.durationMs };
  } finally {
    await unpacked.remove();
  }
}
