/**
 * What `cirrus grid-search` runs (hpo/cli.ts registers the command and loads this module only
 * when it runs).
 * Config: `{base, grid, objective?, earlyStopping?, workerBudget?, maxConcurrentTrials?}`, or
 * `{base, space, trials, seed, ...}` for a random search.
 */
import { readFileSync } from 'node:fs';
import { jsonErrorAt } from '../client/index.js';
import { SearchError } from './errors.js';
import { createLiveView } from './live-view.js';
import { writeResultFiles } from './results-files.js';
import { describeOverrides } from './config.js';
import { formatObjective, objectiveValue } from './objective.js';
import { gridSearch, randomSearch, resumeSearch, type SearchRun } from './search.js';
import { searchStateKey } from './state.js';

export interface GridSearchFlags {
  concurrency?: number;
  json?: boolean;
  resume?: string;
  store?: string;
}

function readSearchConfig(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SearchError('SEARCH_CONFIG', `${file}: cannot read the search config: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new SearchError('SEARCH_CONFIG', `${file}: ${jsonErrorAt(text, e)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SearchError('SEARCH_CONFIG', `${file}: expected a JSON object {base, grid} or {base, space, trials, seed}`);
  return v as Record<string, unknown>;
}

/** Validates and starts the search the config describes; errors name the file. */
function startFromConfig(file: string, flags: GridSearchFlags): SearchRun {
  const config = readSearchConfig(file);
  const options = { ...config, ...(flags.concurrency ? { maxConcurrentTrials: flags.concurrency } : {}), ...(flags.store ? { store: flags.store } : {}) };
  try {
    return 'space' in config ? randomSearch(options as never) : gridSearch(options as never);
  } catch (e) {
    if (e instanceof SearchError) throw new SearchError(e.code, `${file}: ${e.message}`);
    throw e;
  }
}

export async function runGridSearch(file: string | undefined, flags: GridSearchFlags): Promise<void> {
  let search: SearchRun;
  if (flags.resume) {
    const base = file ? (readSearchConfig(file).base as Record<string, unknown> | undefined) : undefined;
    const store = flags.store ?? (typeof base?.store === 'string' ? base.store : undefined);
    search = await resumeSearch(flags.resume, { ...(store ? { store } : {}), ...(flags.concurrency ? { maxConcurrentTrials: flags.concurrency } : {}) });
  } else {
    if (!file) throw new SearchError('SEARCH_CONFIG', 'grid-search: expected a config file (or --resume <searchId>)');
    search = startFromConfig(file, flags);
  }
  // Progress goes to stdout, except with --json, whose stdout is the one JSON object.
  const log = (l: string) => (flags.json ? process.stderr : process.stdout).write(`${l}\n`);
  const tty = !flags.json && process.stdout.isTTY === true;
  const trials = search.trials();
  const pending = trials.filter((t) => t.status === 'pending').length;
  log(`search ${search.searchId}: ${trials.length} trials (${pending} to run), up to ${search.config.maxConcurrentTrials} at once on ${search.config.workerBudget} workers; state in ${searchStateKey(search.searchId)}`);
  const view = createLiveView({ trials, paramsOf: (id) => search.trainParams(id), objective: search.config.objective, tty, write: log });
  search.on('update', (e) => view.update(e));

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('\nstopping: workers are stopped, keys cleaned and the state saved (Ctrl-C again to quit at once)');
    search.stop();
  };
  process.on('SIGINT', onSigint);
  let result;
  try {
    result = await search.done;
  } finally {
    view.stop();
    process.off('SIGINT', onSigint);
  }
  const files = writeResultFiles(result, process.cwd());
  if (flags.json) {
    const brief = (t: (typeof result.trials)[number]) => ({ id: t.id, params: t.params, status: t.status, metrics: t.metrics ?? null });
    process.stdout.write(JSON.stringify({ searchId: result.searchId, trials: result.trials.map(brief), best: result.best ? brief(result.best) : null }) + '\n');
  } else {
    const b = result.best;
    log('');
    const objective = search.config.objective;
    log(b ? `best: ${b.id} (${describeOverrides(b.params)}): ${objective.metric} ${formatObjective(objective, objectiveValue(objective, b.metrics))}${objective.metric === 'testLoss' ? '' : `, test loss ${b.metrics!.testLoss.toFixed(4)}`}, job ${b.jobId}` : 'best: no trial finished');
    log(`search ${result.searchId} ${result.status}; results written to ${files.json} and ${files.csv}`);
    if (result.status === 'stopped') log(`resume with: cirrus grid-search --resume ${result.searchId}${flags.store ? ` --store ${flags.store}` : ''}`);
  }
  if (interrupted) process.exitCode = 130;
}
