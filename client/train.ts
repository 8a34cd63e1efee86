/**
 * `cirrus.train(params)`: the stateful client of a training run, told as its steps (client/job/):
 *   plan       the params, the dataset and the model checked before anything starts (plan.ts)
 *   provision  the store and the job record, the channel and the servers it needs (provision.ts)
 *   run        W stateless workers launched and supervised, relaunched when lost (run.ts)
 *   evaluate   the published models on the test split as training goes, then the final one (evaluate.ts)
 *   account    the cost at list prices and the CPU-seconds (account.ts)
 *   clean up   keys, workers and servers removed, whether the run succeeds or fails (cleanup.ts)
 */
import { ownCpuSeconds } from './cpu.js';
import { accountCost } from './job/account.js';
import { Cleanup } from './job/cleanup.js';
import { loadTestShards, ModelWatch } from './job/evaluate.js';
import { planJob, preflight } from './job/plan.js';
import { newJobId, provisionChannel, provisionStore } from './job/provision.js';
import { failureUpdate } from './job/record.js';
import { abortReason, runJob } from './job/run.js';
import type { TrainCallbacks, TrainResult } from './job/types.js';
import { TrainedModel } from './model-io.js';
import { pipelineFromStore } from './predict/pipeline.js';
import { parseTrainParams, type TrainParamsInput } from './train-params.js';

export type { EpochLogs, HistoryRow, TrainCallbacks, TrainCost, TrainMetrics, TrainResult } from './job/types.js';
export { modelSpecFor } from './job/plan.js';

export async function train(input: TrainParamsInput, callbacks: TrainCallbacks = {}): Promise<TrainResult> {
  const params = parseTrainParams(input);
  const cpuAtStart = ownCpuSeconds();
  await preflight(params);
  const started = Date.now();
  const jobId = newJobId(started);
  const cleanup = new Cleanup();
  const js = await provisionStore(params, jobId, started, callbacks.store, cleanup);
  const aborted = () => abortReason(callbacks.signal);
  callbacks.onStart?.(jobId);
  try {
    const plan = await planJob(params, js.store);
    const testShards = await loadTestShards(js.store, plan.manifest);
    const jc = await provisionChannel(params, jobId, plan.model.size, js, cleanup, callbacks);
    const watch = new ModelWatch({ params, jobId, channel: jc.channel, model: plan.model, testShards, started, record: js.record, callbacks, aborted });
    const run = await runJob({ params, jobId, started, spec: plan.spec, js, jc, watch, cleanup, callbacks });
    const stopped = aborted();
    const final = await watch.settle(stopped);
    const metrics = await watch.metrics(final, run.results, run.generations);
    const cost = accountCost({ params, manifest: plan.manifest, results: run.results, wallSeconds: metrics.wallSeconds, channelKind: jc.spec.kind, cpuAtStart, serverPids: jc.serverPids });
    const meta = { dataset: params.dataset, jobId, epochs: final.epoch, steps: final.step, ...(watch.stopReason ? { stopped: watch.stopReason } : {}) };
    const model = new TrainedModel(plan.spec, final.weights.slice(), meta, await pipelineFromStore(js.store.objects, plan.manifest));
    const endReason = watch.stopReason ?? `all ${params.epochs} epochs done`;
    js.record.save({ status: stopped ? 'stopped' : 'done', history: watch.history, metrics, cost, endReason });
    return { jobId, model, history: watch.history, metrics, cost, relaunches: run.relaunches, endReason };
  } catch (e) {
    js.record.save(failureUpdate(e));
    throw e;
  } finally {
    await js.record.flush();
    await cleanup.run();
  }
}
