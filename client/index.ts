/**
 * The client room: the stateful side. `import cirrus from 'cirrus-ts'` gives the user-facing API;
 * the named exports are the building blocks.
 */
import { generateCriteoLike, type CriteoTruth } from './datasets/generate.js';
import { generateHiggsLike, type HiggsTruth } from './datasets/higgs.js';
import { preprocess } from './preprocess/preprocess.js';
import { train } from './train.js';
import { loadModel, saveModel } from './model-io.js';
import { openStore } from './store.js';

export { billedMs, channelCostUsd, channelKindOf, lambdaCost, loadPrices, nodeHoursUsd, s3RequestsUsd, trainCost, DEFAULT_PRICES_FILE, PricesError, type CostInputs, type Prices, type RequestCounts } from './cost.js';
export { buildProgram, main } from './cli.js';
export { processCpuSeconds, reapedChildrenCpuSeconds } from './cpu.js';
export { makeOwnedTmpDir } from './owned-tmp.js';
export { hasAccuracy } from './model-kinds.js';
export { openStore, cirrusHome, EMBEDDED_BUCKET, type StoreHandle } from './store.js';
export { preprocess, type PreprocessOptions } from './preprocess/preprocess.js';
export { generateRatings, type RatingsGenOptions, type RatingsTruth } from './datasets/ratings.js';
export { generateCriteoLike, GenerateError, type CriteoOptions, type CriteoTruth } from './datasets/generate.js';
export { generateHiggsLike, type HiggsOptions, type HiggsTruth } from './datasets/higgs.js';
export { LocalLauncher, type LocalLauncherOptions } from './launchers/local.js';
export { LauncherError, type Launcher, type WorkerEvent, type WorkerHandle, type WorkerResult, type LauncherErrorCode } from './launchers/types.js';

/** Writes a synthetic dataset file: Criteo-like TSV (with its truth: CTR, best log-loss) or Higgs-like CSV. */
function generate(opts: { kind: 'criteo'; rows: number; seed: number; file: string }): Promise<CriteoTruth>;
function generate(opts: { kind: 'higgs'; rows: number; seed: number; file: string }): Promise<HiggsTruth>;
function generate(opts: { kind: 'criteo' | 'higgs'; rows: number; seed: number; file: string }): Promise<CriteoTruth | HiggsTruth> {
  return opts.kind === 'criteo' ? generateCriteoLike(opts) : generateHiggsLike(opts);
}

/** Dataset helpers under one name, as in `cirrus.datasets.generate(...)`. */
export const datasets = {
  generate,
  /** Manifests of every dataset in the store (default: the embedded S3 server under .cirrus/). */
  async list(store?: string) {
    const h = await openStore(store);
    try {
      return await h.datasets.list();
    } finally {
      await h.close();
    }
  },
  async show(name: string, store?: string) {
    const h = await openStore(store);
    try {
      return await h.datasets.manifest(name);
    } finally {
      await h.close();
    }
  },
  async remove(name: string, store?: string) {
    const h = await openStore(store);
    try {
      await h.datasets.remove(name);
    } finally {
      await h.close();
    }
  },
};

export { train, type TrainResult, type TrainCallbacks, type EpochLogs, type HistoryRow, type TrainMetrics, type TrainCost } from './train.js';
export { parseTrainParams, trainParamsSchema, applyOverrides, launcherLimits, TrainError, type TrainParams, type TrainParamsInput, type TrainErrorCode } from './train-params.js';
export { readJobRecord, jobRecordKey, type JobRecord, type JobStatus } from './job/record.js';
export { formatNumber, formatTable } from './cli/table.js';
export { FASHION_MNIST_DIR, fashionMnistMissing, writeFashionSubset } from './datasets/fashion-subset.js';
export { ChaosLauncher, Killer, type Launch } from './launchers/chaos.js';
export { TrainedModel, saveModel, loadModel, ModelIoError, type ModelIoErrorCode } from './model-io.js';
export { jsonErrorAt } from './json-position.js';
export { inputPipelineSchema, type InputPipeline } from './predict/pipeline.js';
export { predictFile, type PredictFileOptions, type PredictFileResult } from './predict/predict-file.js';
export type { Prediction } from './predict/predict-rows.js';
export type { RawRow, RawCell } from './predict/prepare.js';
export { preprocessForTfjs, PREPROCESSING_FILE, type TfjsPreprocessing, type TfjsRawRow } from './predict/tfjs-preprocessing.js';
export { LambdaLauncher, LambdaInvokeError, LambdaPayloadError, type LambdaPayloadErrorCode } from './launchers/lambda/index.js';
export { deploy, deployDryRun, removeDeployment, parseDeployOptions, type DeployOptionsInput, type DeployResult, type DeployHooks } from './deploy/deploy.js';
export { buildWorkerPackage, checkPackageLimits, LAMBDA_ZIPPED_LIMIT, LAMBDA_UNZIPPED_LIMIT, type WorkerPackage } from './deploy/package.js';
export { DeployError, type DeployErrorCode } from './deploy/errors.js';
export { runSandbox, type SandboxRun, type SandboxResult, type SandboxOutcome } from './deploy/emulator/sandbox.js';
export { unpackPackage, nodeModulesAbove, type UnpackedPackage } from './deploy/emulator/unpack.js';
export { createWorkerNetwork, type WorkerNetwork } from './deploy/emulator/netns.js';
export { probePackage, lambdaEnvironment } from './deploy/emulator/probe.js';

const cirrus = { train, preprocess, datasets, save: saveModel, load: loadModel };
export default cirrus;

// The room's error classes not exported above, so other rooms can catch them through this door,
// and their base, so that the package's users can catch any Cirrus error.
export { CirrusError, type CirrusErrorOptions } from '../paramserver/index.js';
export { PreprocessError, WorkerFailedError, type PreprocessErrorCode } from './preprocess/index.js';
export { ModelQueryError } from './model-queries.js';
export { TfjsExportError, type TfjsExportErrorCode } from './tfjs-export.js';
export { S3RVER_CREDENTIALS, s3SpecFor, startS3Server, findMemcachedBinary, startMemcached, type S3Server, type S3ServerOptions, type MemcachedServer, type MemcachedServerOptions } from './servers/index.js';
