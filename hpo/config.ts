/**
 * Validation of a search before anything starts: the options (zod), the grid or space, and every
 * trial's merged train params (parseTrainParams), with errors naming the field, e.g.
 * `search.grid.learningRate[1]: expected a learning rate > 0`.
 */
import { z } from 'zod';
import { parseTrainParams, trainParamsSchema, TrainError, type TrainParams } from '../client/index.js';
import { SearchError } from './errors.js';
import { DEFAULT_OBJECTIVE, isLossOnlyModel, objectiveSchema, type Objective } from './objective.js';
import type { HalvingConfig } from './halving.js';
import { applyTrialOverrides, distributionSchema, expandGrid, sampleSpace, trialId, type Distribution, type TrialOverrides } from './space.js';

/** Trials running at once when the options do not say. */
const DEFAULT_MAX_CONCURRENT_TRIALS = 2;

/** The validated, JSON-serialisable description of a search, stored in its state for resume. */
export interface SearchConfig {
  kind: 'grid' | 'random';
  base: Record<string, unknown>;
  grid?: Record<string, unknown[]>;
  space?: Record<string, Distribution>;
  trials?: number;
  seed?: number;
  objective: Objective;
  maxConcurrentTrials: number;
  workerBudget: number;
  earlyStopping?: { successiveHalving: HalvingConfig };
}

export interface PlannedTrial {
  id: string;
  overrides: TrialOverrides;
  params: TrainParams;
}

const commonShape = {
  base: z.record(z.string(), z.unknown(), { message: 'expected an object of train params' }),
  objective: objectiveSchema.optional(),
  maxConcurrentTrials: z.number().int().min(1, { message: 'expected at least 1 trial at a time' }).optional(),
  workerBudget: z.number().int().min(1, { message: 'expected a budget of at least 1 worker' }).optional(),
  earlyStopping: z
    .object({
      successiveHalving: z
        .object({
          minEpochs: z.number().int().min(1, { message: 'expected at least 1 epoch' }),
          reduction: z.number().int().min(2, { message: 'expected an integer reduction factor >= 2' }),
        })
        .strict(),
    })
    .strict()
    .optional(),
  searchId: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, { message: 'expected letters, digits, dot, dash or underscore' }).optional(),
};

const gridOptionsSchema = z
  .object({
    ...commonShape,
    grid: z
      .record(z.string(), z.array(z.unknown(), { message: 'expected a list of values' }).min(1, { message: 'expected a non-empty list of values' }), { message: 'expected an object of parameter -> list of values' })
      .refine((g) => Object.keys(g).length > 0, { message: 'expected at least one parameter to search over' }),
  })
  .strict();

const randomOptionsSchema = z
  .object({
    ...commonShape,
    space: z
      .record(z.string(), distributionSchema, { message: 'expected an object of parameter -> distribution' })
      .refine((s) => Object.keys(s).length > 0, { message: 'expected at least one parameter to search over' }),
    trials: z.number().int().min(1, { message: 'expected at least 1 trial' }).max(10_000),
    seed: z.number().int(),
  })
  .strict();

function zodToSearchError(error: z.ZodError): SearchError {
  const issue = error.issues[0]!;
  const path = ['search', ...issue.path.map(String)].join('.');
  const message = issue.code === 'unrecognized_keys' ? `unknown option(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}` : issue.message;
  return new SearchError('SEARCH_CONFIG', `${path}: ${message}`);
}

const TRAIN_PARAM_NAMES = Object.keys(trainParamsSchema.shape);

function checkParamName(where: string, key: string): void {
  const root = key.split('.')[0]!;
  if (!TRAIN_PARAM_NAMES.includes(root)) {
    throw new SearchError('SEARCH_CONFIG', `${where}.${key}: '${root}' is not a train parameter; allowed: ${TRAIN_PARAM_NAMES.join(', ')}`);
  }
}

export function describeOverrides(o: TrialOverrides): string {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ');
}

/**
 * Merges and validates one trial's params; a failure names the grid key and value index (or the
 * space key, or the base field) that caused it.
 */
function validateTrial(kind: 'grid' | 'random', base: Record<string, unknown>, overrides: TrialOverrides, id: string, grid?: Record<string, unknown[]>): TrainParams {
  try {
    return parseTrainParams(applyTrialOverrides(base, overrides));
  } catch (e) {
    if (!(e instanceof TrainError)) throw e;
    const m = /^params((?:\.[^:]+)?): ([\s\S]*)$/.exec(e.message);
    const field = m?.[1] ? m[1].slice(1) : '';
    const why = m ? m[2]! : e.message;
    const key = Object.keys(overrides).find((k) => field === k || field.startsWith(`${k}.`) || field.startsWith(`${k}[`) || k.startsWith(`${field}.`));
    if (key !== undefined && field !== '') {
      if (kind === 'grid' && grid) {
        const index = grid[key]!.findIndex((v) => Object.is(v, overrides[key]) || JSON.stringify(v) === JSON.stringify(overrides[key]));
        // An element of an array value keeps its position: search.grid.psShards[1][0].
        const element = field.startsWith(`${key}[`) ? field.slice(key.length) : '';
        throw new SearchError('SEARCH_CONFIG', `search.grid.${key}[${index}]${element}: ${why}`);
      }
      throw new SearchError('SEARCH_CONFIG', `search.space.${key} (trial ${id} sampled ${JSON.stringify(overrides[key])}): ${why}`);
    }
    // Not one key's fault: the base, or a combination (named by its trial).
    const where = field ? `search.base.${field}` : 'search.base';
    throw new SearchError('SEARCH_CONFIG', `${where}: ${why}${Object.keys(overrides).length ? ` (trial ${id}: ${describeOverrides(overrides)})` : ''}`);
  }
}

/**
 * The search's objective: the one given, or test accuracy, or for k-means and matrix factorization
 * the test loss (their accuracy is always 0, so every trial would tie). Accuracy or AUC given for
 * them is refused, naming the field.
 */
function objectiveFor(trials: PlannedTrial[], given: Objective | undefined): Objective {
  const lossOnly = [...new Set(trials.map((t) => t.params.model).filter(isLossOnlyModel))];
  if (given === undefined) return lossOnly.length > 0 ? { metric: 'testLoss', mode: 'min' } : DEFAULT_OBJECTIVE;
  if (lossOnly.length > 0 && (given.metric === 'testAccuracy' || given.metric === 'testAuc')) {
    throw new SearchError('SEARCH_CONFIG', `search.objective.metric: '${given.metric}' is not measured for ${lossOnly.join(' or ')} (always 0: no labels to match); use 'testLoss' (k-means: the within-cluster sum of squares per row; mf: the mean squared error)`);
  }
  return given;
}

/** The default budget: the workers the hungriest `maxConcurrent` trials need together. */
function defaultBudget(trials: PlannedTrial[], maxConcurrent: number): number {
  const needs = trials.map((t) => t.params.workers).sort((a, b) => b - a);
  return needs.slice(0, maxConcurrent).reduce((a, b) => a + b, 0);
}

function checkBudget(trials: PlannedTrial[], budget: number): void {
  const hungry = trials.find((t) => t.params.workers > budget);
  if (hungry) {
    throw new SearchError('SEARCH_BUDGET', `search.workerBudget: a budget of ${budget} worker(s) is smaller than trial ${hungry.id} needs (${hungry.params.workers} workers; ${describeOverrides(hungry.overrides)})`);
  }
}

function finishPlan(
  kind: 'grid' | 'random',
  common: { base: Record<string, unknown>; objective?: Objective; maxConcurrentTrials?: number; workerBudget?: number; earlyStopping?: { successiveHalving: HalvingConfig } },
  overrides: TrialOverrides[],
  extra: Pick<SearchConfig, 'grid' | 'space' | 'trials' | 'seed'>,
): { config: SearchConfig; trials: PlannedTrial[] } {
  const trials = overrides.map((o, i) => ({ id: trialId(i), overrides: o, params: validateTrial(kind, common.base, o, trialId(i), extra.grid) }));
  const maxConcurrentTrials = common.maxConcurrentTrials ?? Math.min(DEFAULT_MAX_CONCURRENT_TRIALS, trials.length);
  const workerBudget = common.workerBudget ?? defaultBudget(trials, maxConcurrentTrials);
  checkBudget(trials, workerBudget);
  const config: SearchConfig = {
    kind,
    base: common.base,
    ...extra,
    objective: objectiveFor(trials, common.objective),
    maxConcurrentTrials,
    workerBudget,
    ...(common.earlyStopping ? { earlyStopping: common.earlyStopping } : {}),
  };
  return { config, trials };
}

export function planGridSearch(options: unknown): { config: SearchConfig; trials: PlannedTrial[] } {
  const r = gridOptionsSchema.safeParse(options);
  if (!r.success) throw zodToSearchError(r.error);
  for (const key of Object.keys(r.data.grid)) checkParamName('search.grid', key);
  return finishPlan('grid', r.data, expandGrid(r.data.grid), { grid: r.data.grid });
}

export function planRandomSearch(options: unknown): { config: SearchConfig; trials: PlannedTrial[] } {
  const r = randomOptionsSchema.safeParse(options);
  if (!r.success) throw zodToSearchError(r.error);
  for (const key of Object.keys(r.data.space)) checkParamName('search.space', key);
  return finishPlan('random', r.data, sampleSpace(r.data.space, r.data.trials, r.data.seed), { space: r.data.space, trials: r.data.trials, seed: r.data.seed });
}

/** Re-plans a stored search (same trials, same ids); concurrency may be changed on resume. */
export function planFromConfig(config: SearchConfig, maxConcurrentTrials?: number): { config: SearchConfig; trials: PlannedTrial[] } {
  const common = { base: config.base, objective: config.objective, maxConcurrentTrials: maxConcurrentTrials ?? config.maxConcurrentTrials, ...(config.earlyStopping ? { earlyStopping: config.earlyStopping } : {}) };
  const budget = maxConcurrentTrials === undefined ? { workerBudget: config.workerBudget } : {};
  if (config.kind === 'grid') return planGridSearch({ ...common, ...budget, grid: config.grid });
  return planRandomSearch({ ...common, ...budget, space: config.space, trials: config.trials, seed: config.seed });
}
