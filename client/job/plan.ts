/**
 * Step 1 of a run, the plan: everything that can be refused before a worker starts. The params
 * against the launcher (endpoints Lambda workers could not reach, the function's limits), then the
 * params against the dataset (shards per worker, a test split for the stop targets) and the model
 * against the dataset (a misfit names params.model and what would fit).
 */
import { createModel, enableTfjsKernels, tfjsKernelBackend, type Model, type ModelSpec } from '../../algorithms/index.js';
import type { DatasetManifest } from '../../channels/index.js';
import { misfitHint } from '../preprocess/task-hint.js';
import type { StoreHandle } from '../store.js';
import { TrainError, type TrainParams } from '../train-params.js';
import { resolveFunctionLimits } from './lambda-function.js';
import { checkPlanReachable, checkReachableFromWorkers } from './reachable.js';

interface JobPlan {
  manifest: DatasetManifest;
  spec: ModelSpec;
  /** The model, for the client's own evaluations. */
  model: Model;
}

/**
 * Before the store is opened: endpoints Lambda workers could not reach, and a Lambda launcher's
 * timeoutS and memoryMb filled from (and checked against) the deployed function.
 */
export async function preflight(params: TrainParams): Promise<void> {
  checkPlanReachable(params);
  if (params.launcher.type === 'lambda') Object.assign(params.launcher, await resolveFunctionLimits(params.launcher));
}

/** Reads the dataset's manifest and checks the params and the model against it. */
export async function planJob(params: TrainParams, store: StoreHandle): Promise<JobPlan> {
  if (params.launcher.type === 'lambda') await checkReachableFromWorkers({ store: store.workerTarget });
  const manifest = await store.datasets.manifest(params.dataset);
  const spec = modelSpecFor(params, manifest);
  // The client evaluates every epoch's MLP on the test split: on tfjs's matmuls, as the workers
  // train it, that is 4-5x less CPU than the JS loops. Where tfjs cannot start, the JS loops give
  // the same metrics (to float32 rounding), only slower, so the run goes on without it.
  if (spec.type === 'mlp' && tfjsKernelBackend() === null) await enableTfjsKernels().catch(() => undefined);
  const model = createModel(spec);
  checkWorkers(params, manifest);
  checkTestSplit(params, manifest);
  return { manifest, spec, model };
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

/** Every worker needs a train shard of its own; BSP needs every worker running at once. */
export function checkWorkers(params: Pick<TrainParams, 'workers' | 'sync' | 'launcher'>, m: Pick<DatasetManifest, 'name' | 'train'>): void {
  const shards = m.train.shards.length;
  if (params.workers > shards) {
    throw new TrainError('TRAIN_PARAMS', `params.workers: ${params.workers} workers but dataset '${m.name}' has only ${shards} train shards; use at most ${shards} workers or re-shard with a smaller --shard-rows`);
  }
  const concurrency = params.launcher.concurrency;
  if (params.sync === 'bsp' && params.workers > 1 && concurrency !== undefined && concurrency < params.workers) {
    throw new TrainError('TRAIN_PARAMS', `params.launcher.concurrency: BSP needs all ${params.workers} workers running at once, but concurrency is ${concurrency}`);
  }
}

/** A target accuracy or loss is measured on the test split: without test rows it could never fire. */
export function checkTestSplit(params: Pick<TrainParams, 'stop'>, m: Pick<DatasetManifest, 'name' | 'testRows'>): void {
  if (m.testRows > 0) return;
  const target = params.stop?.targetAccuracy !== undefined ? 'stop.targetAccuracy' : params.stop?.targetLoss !== undefined ? 'stop.targetLoss' : undefined;
  if (target) {
    throw new TrainError('TRAIN_PARAMS', `params.${target}: dataset '${m.name}' has no test rows, so the target is never measured; preprocess it with --split below 1 or --test-file, or leave out the target`);
  }
}
