/**
 * Step 3 of a run, run: launch the workers and supervise them until they are done or a stop
 * condition fires. The supervisor (supervise.ts) holds every rank to its lease and relaunches what
 * is lost: BSP rolls every rank back to the committed checkpoint, ASP and async-sgd relaunch only
 * the lost rank. Between its polls it lets the model watch evaluate what was published and checks
 * the stop conditions (an abort, the time limit). run-workers.ts builds the supervisor.
 */
import type { ModelSpec } from '../../algorithms/index.js';
import { LambdaLauncher } from '../launchers/lambda/index.js';
import { LocalLauncher } from '../launchers/local.js';
import type { Launcher, WorkerResult } from '../launchers/types.js';
import { launcherLimits, type TrainParams } from '../train-params.js';
import type { Cleanup } from './cleanup.js';
import type { ModelWatch } from './evaluate.js';
import type { JobChannel, JobStore } from './provision.js';
import { supervise } from './run-workers.js';
import type { RelaunchRecord } from './supervise.js';
import type { TrainCallbacks } from './types.js';

interface RunOutcome {
  /** Every launcher result (every rank, attempt and generation), for the cost. */
  results: WorkerResult[];
  relaunches: RelaunchRecord[];
  /** Generations launched (0 when the run was aborted before any launch). */
  generations: number;
}

/** Why the user's signal stopped the run ('aborted: <reason>'), or undefined while it has not. */
export function abortReason(signal: AbortSignal | undefined): string | undefined {
  if (!signal?.aborted) return undefined;
  const r: unknown = signal.reason;
  return `aborted: ${r instanceof Error ? r.message : typeof r === 'string' ? r : 'the signal was aborted'}`;
}

interface RunContext {
  params: TrainParams;
  jobId: string;
  /** When train() began (Date.now()): stop.maxSeconds counts from there. */
  started: number;
  spec: ModelSpec;
  js: JobStore;
  jc: JobChannel;
  watch: ModelWatch;
  cleanup: Cleanup;
  callbacks: TrainCallbacks;
}

/** Launches the job's workers and supervises them; the watch evaluates and decides when to stop. */
export async function runJob({ params, jobId, started, spec, js, jc, watch, cleanup, callbacks }: RunContext): Promise<RunOutcome> {
  const launcher = callbacks.launcher ? await callbacks.launcher(params) : defaultLauncher(params);
  cleanup.add(() => launcher.close());
  const relaunches: RelaunchRecord[] = [];
  let generations = 0;
  // Aborted before launching: launch nothing.
  watch.stopReason ??= abortReason(callbacks.signal);
  if (watch.stopReason) return { results: [], relaunches, generations };
  const maxSeconds = params.stop.maxSeconds;
  const outcome = await supervise(params, spec, jobId, { store: js.store, channel: jc.spec, psShards: jc.psShards }, launcher, jc.channel, {
    tick: async () => {
      const aborted = abortReason(callbacks.signal);
      if (aborted) return (watch.stopReason ??= aborted);
      await watch.epochs();
      await watch.latest(false);
      if (maxSeconds !== undefined && Date.now() - started >= maxSeconds * 1000) watch.stopReason ??= `reached the time limit of ${maxSeconds} s`;
      return watch.stopReason;
    },
    onGeneration: (g) => {
      generations = g + 1;
      callbacks.onGeneration?.(g);
    },
    onRelaunch: (r) => {
      relaunches.push(r);
      js.record.save({ status: 'running', relaunches });
    },
  });
  return { results: outcome.results, relaunches, generations };
}

/** The launcher params.launcher describes: Lambda's Invoke API, or local child processes. */
function defaultLauncher(params: TrainParams): Launcher {
  const l = params.launcher;
  if (l.type === 'lambda') {
    // RequestResponse: each invocation's result (done / checkpointed) comes back in its response;
    // a generation never outlives Lambda's 15-minute limit, which the synchronous call allows.
    return new LambdaLauncher({
      functionName: l.functionName,
      invocationType: 'RequestResponse',
      concurrency: l.concurrency ?? params.workers,
      ...(l.region ? { region: l.region } : {}),
      ...(l.endpoint ? { endpoint: l.endpoint } : {}),
    });
  }
  // One warm spare for relaunches: a lost worker's successor skips node's start-up.
  return new LocalLauncher({ ...launcherLimits(params), concurrency: l.concurrency ?? params.workers, standby: 1 });
}

