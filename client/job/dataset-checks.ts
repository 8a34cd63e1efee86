/** Checks of a run's params against its dataset that no schema can make (they need the manifest). */
import type { DatasetManifest } from '../../channels/index.js';
import { TrainError, type TrainParams } from '../train-params.js';

/** A target accuracy or loss is measured on the test split: without test rows it could never fire. */
export function checkTestSplit(params: Pick<TrainParams, 'stop'>, m: Pick<DatasetManifest, 'name' | 'testRows'>): void {
  if (m.testRows > 0) return;
  const target = params.stop?.targetAccuracy !== undefined ? 'stop.targetAccuracy' : params.stop?.targetLoss !== undefined ? 'stop.targetLoss' : undefined;
  if (target) {
    throw new TrainError('TRAIN_PARAMS', `params.${target}: dataset '${m.name}' has no test rows, so the target is never measured; preprocess it with --split below 1 or --test-file, or leave out the target`);
  }
}
