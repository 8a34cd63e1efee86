/**
 * `cirrus.train(params)`: the stateful client of a training run. It validates the params, checks
 * the model fits the dataset, starts (or connects to) the channel, launches W stateless workers,
 * evaluates the newest published model on the test split as training goes (Cirrus's error task),
 * relaunches the next generation when workers checkpoint before their time limit, and returns the
 * model, the loss-over-time history, the final metrics and a cost estimate. Every run removes its
 * keys, workers and servers, whether it succeeds or fails.
 */
import { randomBytes } from 'node:crypto';
import { Evaluator } from '../algorithms/metrics.js';
import { createModel } from '../algorithms/models.js';
import type { Batch, Model, ModelSpec } from '../algorithms/model.js';
import { addStats, emptyStats, type Channel, type ChannelStats } from '../channels/channel.js';
import type { DatasetManifest } from '../channels/datasets/manifest.js';
import type { Shard } from '../channels/datasets/shard.js';
import { openChannel } from '../channels/factory.js';
import { aspKey, epochModelKey, finalModelKey, modelLatestKey, progressKey, psModelName } from '../channels/job-keys.js';
import { jobPrefix } from '../channels/keys.js';
import { startMemcached, type MemcachedServer } from '../channels/memcached-server.js';
import { unpackMessage } from '../channels/messages.js';
import { parseChannelUrl, type ChannelSpec } from '../channels/spec.js';
import { ShardedParamClient, startParamServer, type ParamServer } from '../paramserver/index.js';
import { loadPrices, trainCost, type TrainCost } from './cost.js';
import { LambdaLauncher } from './launchers/lambda/index.js';
import { LocalLauncher } from './launchers/local.js';
import type { Launcher, WorkerResult } from './launchers/types.js';
import { dropJobFromServer, sweepStale } from './job/clean.js';
import { sentinelKey, supervise } from './job/run-workers.js';
import type { RelaunchRecord } from './job/supervise.js';
import { TrainedModel } from './model-io.js';
import { pipelineFromStore } from './predict/pipeline.js';
import { misfitHint } from './preprocess/task-hint.js';
import { checkTestSplit } from './job/dataset-checks.js';
import { JobRecordWriter } from './job-record.js';
import { openStore, type StoreHandle } from './store.js';
import { checkPlanReachable, checkReachableFromWorkers } from './job/reachable.js';
import { ownCpuSeconds, processCpuSeconds } from './cpu.js';
import { resolveFunctionLimits } from './job/lambda-function.js';
import { launcherLimits, parseTrainParams, TrainError, type TrainParams, type TrainParamsInput } from './train-params.js';

export interface EpochLogs {
  epoch: number;
  step: number;
  wallSeconds: number;
  trainLoss: number;
  testLoss: number;
  testAccuracy: number;
  testAuc?: number;
}

export type HistoryRow = EpochLogs;

export interface TrainCallbacks {
  /** After each evaluation of a model published at the end of an epoch (epochs count from 1). */
  onEpochEnd?(epoch: number, logs: EpochLogs): void | Promise<void>;
  /** After each evaluation of a model published mid-epoch (publishEvery / evaluateEvery). */
  onEvaluate?(logs: EpochLogs): void | Promise<void>;
  /** Workers launched (generation 0) or relaunched (generation > 0). */
  onGeneration?(generation: number): void;
  /** A launcher factory, e.g. for the Lambda launcher; default from params.launcher. */
  launcher?: (params: TrainParams) => Promise<Launcher> | Launcher;
  /**
   * Aborting stops the workers at once, like a stop condition: the result carries the newest
   * evaluated model and `model.meta.stopped`; with no model published yet, train throws
   * TrainError 'TRAIN_STOPPED'.
   */
  signal?: AbortSignal;
  /** The job id, before anything is launched. */
  onStart?(jobId: string): void;
  /** An already-open store to use (and leave open) instead of opening params.store. */
  store?: StoreHandle;
  /**
   * async-sgd with psShards: the 'host:port' of each shard holding the model, in shard order, once
   * they listen (e.g. to watch their STATS while the run goes).
   */
  onPsShards?(addresses: readonly string[]): void;
}

export interface TrainMetrics {
  testAccuracy: number;
  /** The mean test loss: log-loss, hinge or cross-entropy; kmeans: SSE per row; mf: the MSE. */
  testLoss: number;
  /** mf: the test RMSE (the square root of testLoss). */
  testRmse?: number;
  testAuc?: number;
  trainLoss: number;
  epochs: number;
  steps: number;
  wallSeconds: number;
  updatesPerSec: number;
  generations: number;
  /** Bytes of updates the workers sent (pushes to the parameter server, vectors into collectives). */
  updateBytes: number;
}

export type { TrainCost } from './cost.js';

export interface TrainResult {
  jobId: string;
  model: TrainedModel;
  history: HistoryRow[];
  metrics: TrainMetrics;
  cost: TrainCost;
  /** Every relaunch of workers, with its cause (empty for a run without faults or time limits). */
  relaunches: RelaunchRecord[];
  /** Why the run ended: all epochs done, a stop condition reached, or an abort. */
  endReason: string;
}

/** What a train worker returns (see worker/train.ts). */
interface TrainWorkerValue {
  status: 'done' | 'checkpointed';
  epoch: number;
  steps: number;
  trainLoss: number;
  channelStats?: ChannelStats;
  shardReads?: number;
}

interface PublishedModel {
  weights: Float32Array;
  step: number;
  epoch: number;
}

export async function train(input: TrainParamsInput, callbacks: TrainCallbacks = {}): Promise<TrainResult> {
  const params = parseTrainParams(input);
  const cpuAtStart = ownCpuSeconds();
  /** Servers started in their own processes (memcached): their CPU counts in the run's. */
  const serverPids: number[] = [];
  // Before anything starts: endpoints Lambda workers could not reach, and the function's limits.
  checkPlanReachable(params);
  if (params.launcher.type === 'lambda') Object.assign(params.launcher, await resolveFunctionLimits(params.launcher));
  const started = Date.now();
  const jobId = `train-${started.toString(36)}-${randomBytes(3).toString('hex')}`;
  const cleanups: Array<() => Promise<void>> = [];
  let generationsUsed = 0;
  const store = callbacks.store ?? (await openStore(params.store, undefined, params.advertise !== undefined ? { host: params.advertise } : {}));
  if (!callbacks.store) cleanups.push(() => store.close());
  const jobRecord = new JobRecordWriter(store.objects, jobId, params, new Date(started));
  // What dead clients left (their keys, objects, private servers) goes first.
  await sweepStale(store);
  // The record exists before anything runs, so a client killed at any point leaves a job `clean` can find.
  jobRecord.save({ status: 'running' });
  await jobRecord.flush();
  const signal = callbacks.signal;
  const abortReason = (): string | undefined => (signal?.aborted ? `aborted: ${abortMessage(signal)}` : undefined);
  callbacks.onStart?.(jobId);
  try {
    if (params.launcher.type === 'lambda') await checkReachableFromWorkers({ store: store.workerTarget });
    const manifest = await store.datasets.manifest(params.dataset);
    const spec = modelSpecFor(params, manifest);
    const model = createModel(spec);
    checkWorkers(params, manifest);
    checkTestSplit(params, manifest);
    const testSet = await loadTestSet(store, manifest);

    const channelSpec = await startChannel(params, store, cleanups, (kind, pid, address) => {
      serverPids.push(pid);
      jobRecord.addServer(kind, pid, address);
      jobRecord.save({ status: 'running' });
    });
    const psShards = await startPsShards(params, channelSpec, model.size, jobId, cleanups);
    // A server given by address outlives the job: the job's model and registrations leave with it.
    if (channelSpec.kind === 'ps' && params.algorithm === 'async-sgd' && !psShards) cleanups.push(() => dropJobFromServer(channelSpec, jobId));
    if (psShards) callbacks.onPsShards?.(psShards);
    if (params.launcher.type === 'lambda') await checkReachableFromWorkers({ channel: channelSpec }, psShards);
    const channel = await openChannel(channelSpec);
    cleanups.push(() => channel.close());
    cleanups.push(() => removeJobKeys(channel, store.objects, jobId, params.workers, params.epochs));

    const launcher = callbacks.launcher ? await callbacks.launcher(params) : defaultLauncher(params);
    cleanups.push(() => launcher.close());

    const history: HistoryRow[] = [];
    const results: WorkerResult[] = [];
    const relaunches: RelaunchRecord[] = [];
    let lastStep = -1;
    let lastEvalAt = Date.now();
    let stopReason: string | undefined;
    let finalWeights: Float32Array | undefined;
    let finalStep = 0;
    let finalEpoch = 0;

    let nextEpoch = 1;
    const record = async (m: PublishedModel & { trainLoss?: number }, epochEnd: boolean): Promise<void> => {
      lastStep = m.step;
      lastEvalAt = Date.now();
      const ev = evaluate(model, m.weights, testSet);
      const logs: EpochLogs = {
        epoch: m.epoch,
        step: m.step,
        wallSeconds: (Date.now() - started) / 1000,
        trainLoss: m.trainLoss ?? (await meanTrainLoss(channel, jobId, params.workers)),
        testLoss: ev.loss,
        testAccuracy: ev.accuracy,
        ...(ev.auc !== undefined ? { testAuc: ev.auc } : {}),
      };
      history.push(logs);
      finalWeights = m.weights;
      finalStep = m.step;
      finalEpoch = m.epoch;
      jobRecord.save({ status: 'running', history });
      if (epochEnd) await callbacks.onEpochEnd?.(m.epoch, logs);
      else await callbacks.onEvaluate?.(logs);
      const st = params.stop;
      if (st.targetAccuracy !== undefined && logs.testAccuracy >= st.targetAccuracy) stopReason = `reached the target accuracy ${st.targetAccuracy}`;
      if (st.targetLoss !== undefined && logs.testLoss <= st.targetLoss) stopReason = `reached the target loss ${st.targetLoss}`;
    };
    /** Evaluates every epoch model rank 0 has published since the last call, in order. */
    const evaluateEpochs = async (): Promise<void> => {
      for (;;) {
        // An abort stops at once: epochs published meanwhile are not evaluated.
        if (abortReason()) return;
        const key = epochModelKey(jobId, nextEpoch);
        const bytes = await channel.get(key);
        if (!bytes) return;
        await record(unpackMessage<PublishedModel & { trainLoss: number }>(bytes), true);
        await channel.delete([key]);
        nextEpoch++;
      }
    };
    /** Mid-epoch evaluation of the newest model, every evaluateEvery seconds. */
    const evaluateLatest = async (force: boolean): Promise<void> => {
      const due = params.evaluateEvery !== undefined && Date.now() - lastEvalAt >= params.evaluateEvery * 1000;
      if (!due && !force) return;
      const bytes = await channel.get(modelLatestKey(jobId));
      if (!bytes) return;
      const m = unpackMessage<PublishedModel>(bytes);
      if (m.step !== lastStep) await record(m, false);
    };

    // Aborted before launching: launch nothing.
    stopReason ??= abortReason();
    if (!stopReason) {
      const outcome = await supervise(params, spec, jobId, { store, channel: channelSpec, psShards }, launcher, channel, {
        tick: async () => {
          const aborted = abortReason();
          if (aborted) return (stopReason ??= aborted);
          await evaluateEpochs();
          await evaluateLatest(false);
          if (params.stop.maxSeconds !== undefined && Date.now() - started >= params.stop.maxSeconds * 1000) stopReason ??= `reached the time limit of ${params.stop.maxSeconds} s`;
          return stopReason;
        },
        onGeneration: (g) => {
          generationsUsed = g + 1;
          callbacks.onGeneration?.(g);
        },
        onRelaunch: (r) => {
          relaunches.push(r);
          jobRecord.save({ status: 'running', relaunches });
        },
      });
      results.push(...outcome.results);
    }

    const aborted = abortReason();
    if (aborted) {
      // After an abort: the newest evaluated model, so an abort never waits for more evaluations.
      if (!finalWeights) await evaluateLatest(true);
      if (!finalWeights) throw new TrainError('TRAIN_STOPPED', `job ${jobId}: ${aborted} before any model was published`);
    } else {
      await evaluateEpochs();
      // The final model: what rank 0 wrote at the end, or the newest published one after a stop.
      const finalBytes = await channel.get(finalModelKey(jobId));
      if (finalBytes) {
        const m = unpackMessage<PublishedModel>(finalBytes);
        finalWeights = m.weights;
        finalStep = m.step;
        finalEpoch = m.epoch;
      } else {
        await evaluateLatest(true);
      }
    }
    if (!finalWeights) throw new TrainError('TRAIN_WORKER_FAILED', `job ${jobId}: the workers ended without publishing a model`);
    const final = evaluate(model, finalWeights, testSet);
    if (history.length === 0 || history[history.length - 1]!.step !== finalStep) {
      const logs: EpochLogs = {
        epoch: finalEpoch,
        step: finalStep,
        wallSeconds: (Date.now() - started) / 1000,
        trainLoss: await meanTrainLoss(channel, jobId, params.workers),
        testLoss: final.loss,
        testAccuracy: final.accuracy,
        ...(final.auc !== undefined ? { testAuc: final.auc } : {}),
      };
      history.push(logs);
    }
    const wallSeconds = (Date.now() - started) / 1000;
    const last = history[history.length - 1]!;
    const metrics: TrainMetrics = {
      testAccuracy: final.accuracy,
      testLoss: final.loss,
      ...(spec.type === 'mf' ? { testRmse: Math.sqrt(final.loss) } : {}),
      ...(final.auc !== undefined ? { testAuc: final.auc } : {}),
      trainLoss: last.trainLoss,
      epochs: finalEpoch,
      steps: finalStep,
      wallSeconds,
      updatesPerSec: finalStep / wallSeconds,
      generations: generationsUsed,
      updateBytes: results.reduce((s, r) => s + ((r.value as { updateBytes?: number } | undefined)?.updateBytes ?? 0), 0),
    };
    const cost: TrainCost = { ...estimateCost(params, manifest, results, wallSeconds, channelSpec.kind), ...cpuAccount(results, cpuAtStart, serverPids) };
    const trained = new TrainedModel(spec, finalWeights.slice(), { dataset: params.dataset, jobId, epochs: finalEpoch, steps: finalStep, ...(stopReason ? { stopped: stopReason } : {}) }, await pipelineFromStore(store.objects, manifest));
    const endReason = stopReason ?? `all ${params.epochs} epochs done`;
    jobRecord.save({ status: aborted ? 'stopped' : 'done', history, metrics, cost, endReason });
    return { jobId, model: trained, history, metrics, cost, relaunches, endReason };
  } catch (e) {
    const code = e instanceof TrainError ? e.code : undefined;
    const status = code === 'TRAIN_STOPPED' ? 'stopped' : code === 'TRAIN_DIVERGED' ? 'diverged' : 'failed';
    jobRecord.save({ status, error: (e as Error).message, endReason: code ?? (e as { code?: string }).code ?? 'error' });
    throw e;
  } finally {
    await jobRecord.flush();
    // Reverse order: launcher (workers) first, then keys, channel, servers, store.
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

/** Derives the model spec from the params and the dataset, refusing models that do not fit. */
export function modelSpecFor(params: TrainParams, m: DatasetManifest): ModelSpec {
  const misfit = (why: string) => new TrainError('TRAIN_MISFIT', `params.model: ${params.model} does not fit dataset '${m.name}' (${m.kind}, ${m.task}): ${why}${misfitHint(params.model, m)}`);
  if (m.kind === 'ratings' && params.model !== 'mf') throw misfit("ratings datasets need the matrix-factorization model 'mf'");
  switch (params.model) {
    case 'mf':
      if (m.kind !== 'ratings' || m.users === undefined || m.items === undefined) throw misfit('matrix factorization takes a ratings dataset (preprocess --format ratings)');
      // l2 is the per-rating regularization of the factors and biases a rating touches (ModelSpec.reg).
      return { type: 'mf', features: m.users + m.items, classes: 2, users: m.users, items: m.items, rank: params.factors, reg: params.l2 };
    case 'sparse-lr':
      if (m.kind !== 'sparse') throw misfit("sparse-lr takes sparse data; use 'dense-lr' for dense data");
      if (m.task !== 'binary') throw misfit('logistic regression needs binary labels');
      return { type: 'sparse-lr', features: m.features, classes: 2 };
    case 'dense-lr':
      if (m.kind !== 'dense') throw misfit("dense-lr takes dense data; use 'sparse-lr' for sparse data");
      if (m.task !== 'binary') throw misfit('logistic regression needs binary labels');
      return { type: 'dense-lr', features: m.features, classes: 2 };
    case 'svm':
      if (m.task !== 'binary') throw misfit('a linear SVM needs binary labels');
      return { type: 'svm', features: m.features, classes: 2 };
    case 'kmeans':
      if (m.kind !== 'dense') throw misfit('k-means takes dense data');
      if (m.trainRows < params.clusters) throw misfit(`k = ${params.clusters} clusters need at least ${params.clusters} training rows, it has ${m.trainRows}`);
      return { type: 'kmeans', features: m.features, classes: 2, clusters: params.clusters, init: params.init };
    case 'softmax':
    case 'mlp':
      if (m.task !== 'multiclass') throw misfit(`it needs a multiclass dataset; for binary labels use 'dense-lr', 'sparse-lr' or 'svm'`);
      if (params.model === 'mlp' && m.kind !== 'dense') throw misfit('the MLP takes dense data');
      return { type: params.model, features: m.features, classes: Math.max(2, m.classes), ...(params.model === 'mlp' ? { hidden: params.hidden } : {}) };
  }
}

function checkWorkers(params: TrainParams, m: DatasetManifest): void {
  const shards = m.train.shards.length;
  if (params.workers > shards) {
    throw new TrainError('TRAIN_PARAMS', `params.workers: ${params.workers} workers but dataset '${m.name}' has only ${shards} train shards; use at most ${shards} workers or re-shard with a smaller --shard-rows`);
  }
  const concurrency = params.launcher.concurrency;
  if (params.sync === 'bsp' && params.workers > 1 && concurrency !== undefined && concurrency < params.workers) {
    throw new TrainError('TRAIN_PARAMS', `params.launcher.concurrency: BSP needs all ${params.workers} workers running at once, but concurrency is ${concurrency}`);
  }
}

interface TestSet {
  shards: Shard[];
}

async function loadTestSet(store: StoreHandle, m: DatasetManifest): Promise<TestSet> {
  const shards: Shard[] = [];
  for (const ref of m.test.shards) shards.push(await store.datasets.readShard(ref));
  return { shards };
}

function evaluate(model: Model, weights: Float32Array, test: TestSet): { loss: number; accuracy: number; auc?: number } {
  const ev = new Evaluator(model.spec.classes <= 2 && model.spec.type !== 'softmax' && model.spec.type !== 'mlp' && model.spec.type !== 'kmeans' && model.spec.type !== 'mf');
  for (const shard of test.shards) {
    if (shard.kind === 'ratings') {
      // Matrix factorization: the loss is the squared error, so testLoss is the MSE (RMSE = its root).
      ev.add(model.evaluate({ kind: 'ratings', rows: shard.rows, users: shard.users, items: shard.items, ratings: shard.ratings }, weights));
      continue;
    }
    // A shard has the shape of a batch; evaluate in slices to bound the MLP's activations.
    const step = 8192;
    for (let start = 0; start < shard.rows; start += step) ev.add(model.evaluate(sliceShard(shard, start, Math.min(shard.rows, start + step)), weights), sliceLabels(shard, start, step));
  }
  return ev.result();
}

function sliceLabels(shard: Exclude<Shard, { kind: 'ratings' }>, start: number, step: number): Float32Array {
  return shard.labels.subarray(start, Math.min(shard.rows, start + step));
}

function sliceShard(shard: Exclude<Shard, { kind: 'ratings' }>, start: number, end: number): Batch {
  if (shard.kind === 'sparse') {
    return { kind: 'sparse', rows: end - start, cols: shard.cols, labels: shard.labels.subarray(start, end), indptr: shard.indptr.subarray(start, end + 1), indices: shard.indices, values: shard.values };
  }
  return { kind: 'dense', rows: end - start, cols: shard.cols, labels: shard.labels.subarray(start, end), x: shard.x.subarray(start * shard.cols, end * shard.cols) };
}

async function meanTrainLoss(channel: Channel, jobId: string, workers: number): Promise<number> {
  const records = await channel.getMany(Array.from({ length: workers }, (_, r) => progressKey(jobId, r)));
  const losses = records.flatMap((b) => (b ? [unpackMessage<{ trainLoss: number }>(b).trainLoss] : [])).filter(Number.isFinite);
  return losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : NaN;
}

/** The channel workers use: an embedded server started here, or the given URL. */
async function startChannel(params: TrainParams, store: StoreHandle, cleanups: Array<() => Promise<void>>, onServer: (kind: string, pid: number, address: string) => void): Promise<ChannelSpec> {
  switch (params.channel) {
    case 'ps': {
      // Reachable from other hosts only with a token: anyone who reaches it could read the model.
      const token = params.advertise !== undefined ? randomBytes(24).toString('base64url') : undefined;
      const ps: ParamServer = await startParamServer({ port: 0, ...(params.advertise !== undefined ? { host: params.advertise, token } : {}) });
      cleanups.push(() => ps.stop());
      return parseChannelUrl(`ps://${ps.address}${token ? `?token=${token}` : ''}`);
    }
    case 'memcached': {
      const mc: MemcachedServer = await startMemcached(params.advertise !== undefined ? { host: params.advertise } : {});
      cleanups.push(() => mc.stop());
      onServer('memcached', mc.pid, mc.address);
      return parseChannelUrl(`memcached://${mc.address}`);
    }
    case 's3': {
      if (typeof store.workerTarget === 'string') {
        if (!store.workerTarget.startsWith('s3://')) throw new TrainError('TRAIN_CHANNEL', `params.channel: 's3' needs an S3 object store, but the store is ${store.workerTarget}`);
        return parseChannelUrl(store.workerTarget);
      }
      return { ...store.workerTarget, prefix: 'channel/' };
    }
    default: {
      const spec = parseChannelUrl(params.channel);
      if (spec.kind === 'memory') throw new TrainError('TRAIN_CHANNEL', "params.channel: 'memory://' lives in one process and cannot reach worker processes; use ps, memcached or s3");
      return spec;
    }
  }
}

/**
 * async-sgd with psShards: the shard addresses the workers spread the model over (servers started
 * here for a count, which cleanup stops), or undefined when the model stays on the channel's server.
 * Cleanup also drops the job's model from the shards: servers given by address outlive the job.
 */
async function startPsShards(params: TrainParams, channel: ChannelSpec, modelSize: number, jobId: string, cleanups: Array<() => Promise<void>>): Promise<string[] | undefined> {
  const shards = params.psShards;
  if (shards === undefined || shards === 1) return undefined;
  const count = typeof shards === 'number' ? shards : shards.length;
  if (modelSize < count) throw new TrainError('TRAIN_PARAMS', `params.psShards: ${count} shards but the model has only ${modelSize} weights; every shard needs at least one`);
  // Workers prove the channel's token to every shard, so servers started here take the same one.
  const token = channel.kind === 'ps' ? channel.token : undefined;
  const opts = { ...(channel.kind === 'ps' ? { timeoutMs: channel.timeoutMs } : {}), ...(token ? { token } : {}) };
  let addresses: string[];
  if (typeof shards === 'number') {
    addresses = [];
    for (let i = 0; i < shards; i++) {
      const ps: ParamServer = await startParamServer({ port: 0, ...(token ? { token } : {}), ...(params.advertise !== undefined ? { host: params.advertise } : {}) });
      cleanups.push(() => ps.stop());
      addresses.push(ps.address);
    }
  } else {
    addresses = shards;
  }
  cleanups.push(() => dropShardedModel(addresses, opts, psModelName(jobId)));
  return addresses;
}

/** Removes every shard's slice of the model (a no-op on shards that never got one). */
async function dropShardedModel(addresses: string[], opts: { timeoutMs?: number; token?: string }, name: string): Promise<void> {
  const client = await ShardedParamClient.connect(addresses, opts);
  try {
    await client.dropModel(name);
  } finally {
    await client.close();
  }
}

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

function estimateCost(params: TrainParams, m: DatasetManifest, results: WorkerResult[], wallSeconds: number, channelKind: string): TrainCost {
  let stats = emptyStats();
  let shardReads = 0;
  for (const r of results) {
    const v = r.value as TrainWorkerValue | undefined;
    if (v?.channelStats) stats = addStats(stats, v.channelStats);
    shardReads += v?.shardReads ?? 0;
  }
  // Dataset reads: the shards the workers fetched (they cache what fits), and the client's test split.
  const storeGets = shardReads + m.test.shards.length;
  return trainCost({ workerDurationsMs: results.map((r) => r.durationMs), memoryMb: launcherLimits(params).memoryMb, channelKind, channelStats: stats, wallSeconds, storeGets }, loadPrices());
}

/** Deletes everything the job wrote: by listing where the channel can, and by known keys; and its control records and checkpoints in the store. */
async function removeJobKeys(channel: Channel, objects: StoreHandle['objects'], jobId: string, workers: number, epochs: number): Promise<void> {
  const keys = [modelLatestKey(jobId), finalModelKey(jobId), sentinelKey(jobId)];
  for (let e = 1; e <= epochs; e++) keys.push(epochModelKey(jobId, e));
  for (let r = 0; r < workers; r++) keys.push(progressKey(jobId, r), aspKey(jobId, r));
  if (channel.list) keys.push(...(await channel.list(jobPrefix(jobId))));
  await channel.delete([...new Set(keys)]);
  await objects.delete(await objects.list(jobPrefix(jobId)));
}

/**
 * The run's CPU-seconds: the workers' own reports, this process since train() began (it hosts the
 * embedded parameter server and S3 server and evaluates the model), and server processes it started.
 */
function cpuAccount(results: WorkerResult[], cpuAtStart: number, serverPids: number[]): Pick<TrainCost, 'workerCpuSeconds' | 'clientCpuSeconds' | 'serverCpuSeconds' | 'cpuSeconds'> {
  const workerCpuSeconds = results.reduce((s, r) => s + (r.cpuSeconds ?? 0), 0);
  const clientCpuSeconds = ownCpuSeconds() - cpuAtStart;
  const serverCpuSeconds = serverPids.reduce((s, pid) => s + (processCpuSeconds(pid) ?? 0), 0);
  return { workerCpuSeconds, clientCpuSeconds, serverCpuSeconds, cpuSeconds: workerCpuSeconds + clientCpuSeconds + serverCpuSeconds };
}

function abortMessage(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r.message;
  return typeof r === 'string' ? r : 'the signal was aborted';
}
