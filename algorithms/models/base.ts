/**
 * What every model module shares: the typed model error. (The seeded PRNG is ../rng.ts.)
 */
import { CirrusError } from '../../paramserver/index.js';

export type ModelErrorCode = 'MODEL_UNKNOWN_TYPE' | 'MODEL_SPEC' | 'MODEL_BATCH' | 'MODEL_WEIGHTS' | 'MODEL_LABEL' | 'MODEL_SEED' | 'MODEL_KERNELS' | 'MODEL_BACKEND';

export class ModelError extends CirrusError<ModelErrorCode> {}

