/**
 * Runs a search: schedules trials over a shared worker budget (first come, first served, in
 * trial order), runs each as an ordinary `train()` with its own job id on one shared store
 * handle, applies successive halving, and saves the search state after every trial status change
 * and epoch. `kill`, `killAll` and `stop` work while it runs.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { openStore, train, type EpochLogs, type StoreHandle, type TrainParams, type TrainParamsInput } from '../client/index.js';
import { planFromConfig, planGridSearch, planRandomSearch, type PlannedTrial, type SearchConfig } from './config.js';
import { SearchError } from './errors.js';
import { SuccessiveHalving } from './halving.js';
import { compareByObjective, objectiveValue, type Objective, type ObjectiveMetric } from './objective.js';
import type { Distribution } from './space.js';
import { FINAL_TRIAL_STATUSES, readSearchState, SearchStateWriter, type SearchState, type SearchStatus, type TrialState } from './state.js';

interface CommonSearchOptions {
  /** Train params shared by every trial; each trial overrides some of them. */
  base: Partial<TrainParamsInput> & Record<string, unknown>;
  objective?: { metric: ObjectiveMetric; mode?: 'max' | 'min' };
  /** Trials running at once (default 2). */
  maxConcurrentTrials?: number;
  /** Workers running at once over all trials (default: what the hungriest maxConcurrentTrials trials need together). */
  workerBudget?: number;
  earlyStopping?: { successiveHalving: { minEpochs: number; reduction: number } };
  /** An object store URL (opened and closed by the search) or an open handle (left open); default: base.store or the embedded store. */
  store?: string | StoreHandle;
  searchId?: string;
}

export interface GridSearchOptions extends CommonSearchOptions {
  grid: Record<string, readonly unknown[]>;
}

export interface RandomSearchOptions extends CommonSearchOptions {
  space: Record<string, Distribution>;
  trials: number;
  seed: number;
}

export type SearchEvent =
  | { type: 'trial'; trial: TrialState }
  | { type: 'epoch'; trial: TrialState; logs: EpochLogs }
  | { type: 'search'; status: SearchStatus };

export interface SearchCallbacks {
  /** Every trial status change, every epoch, and the search's end (also emitted as 'update'). */
  onUpdate?(event: SearchEvent): void;
}

export interface SearchResult {
  searchId: string;
  status: SearchStatus;
  objective: Objective;
  /** Finished ('done') trials best first by the objective, then the others with metrics, then the rest in id order. */
  trials: TrialState[];
  /** The best finished trial. */
  best: TrialState | undefined;
  top(k: number): TrialState[];
  /** Where the state lives (`searches/<searchId>/state.json` in this store). */
  storeUrl: string;
}

type StopAs = 'killed' | 'pruned' | 'interrupted';

interface RunningTrial {
  controller: AbortController;
  stopAs?: StopAs;
  workers: number;
  settled: Promise<void>;
}

interface RunOptions {
  searchId: string;
  config: SearchConfig;
  planned: PlannedTrial[];
  store: string | StoreHandle | undefined;
  existing?: TrialState[];
  createdAt?: string;
  callbacks: SearchCallbacks;
}

function newSearchId(): string {
  return `search-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Trials best first (see SearchResult.trials). */
export function sortTrials(objective: Objective, trials: readonly TrialState[]): TrialState[] {
  const group = (t: TrialState) => (t.status === 'done' ? 0 : t.metrics ? 1 : 2);
  return [...trials].sort((a, b) => {
    const g = group(a) - group(b);
    if (g !== 0) return g;
    const tie = a.id < b.id ? -1 : 1;
    return group(a) === 2 ? tie : compareByObjective(objective, objectiveValue(objective, a.metrics), objectiveValue(objective, b.metrics), tie);
  });
}

export class SearchRun extends EventEmitter {
  readonly searchId: string;
  readonly config: SearchConfig;
  readonly done: Promise<SearchResult>;
  private readonly planned: Map<string, PlannedTrial>;
  private readonly state: TrialState[];
  private readonly running = new Map<string, RunningTrial>();
  private readonly halving: SuccessiveHalving | undefined;
  private readonly createdAt: string;
  private status: SearchStatus = 'running';
  private stopping = false;
  private wake: () => void = () => {};
  private writer: SearchStateWriter | undefined;

  constructor(private readonly opts: RunOptions) {
    super();
    this.searchId = opts.searchId;
    this.config = opts.config;
    this.planned = new Map(opts.planned.map((p) => [p.id, p]));
    this.state = opts.existing ?? opts.planned.map((p) => ({ id: p.id, params: p.overrides, status: 'pending', history: [] }));
    this.createdAt = opts.createdAt ?? new Date().toISOString();
    const sh = opts.config.earlyStopping?.successiveHalving;
    this.halving = sh ? new SuccessiveHalving(sh, opts.config.objective) : undefined;
    this.replayRungs();
    // Started on the next tick, so listeners attached right after construction see every event.
    this.done = new Promise<void>((r) => setImmediate(r)).then(() => this.run());
  }

  /** The full train params a trial runs with (base + its overrides, defaults filled in). */
  trainParams(trialId: string): TrainParams {
    const p = this.planned.get(trialId);
    if (!p) throw new SearchError('SEARCH_CONFIG', `no trial '${trialId}' in search ${this.searchId}`);
    return p.params;
  }

  /** A copy of every trial's current state, in id order. */
  trials(): TrialState[] {
    return structuredClone(this.state);
  }

  /** Kills one trial: a pending one never starts, a running one stops at once. False when it had already ended. */
  kill(trialId: string): boolean {
    const trial = this.state.find((t) => t.id === trialId);
    if (!trial) throw new SearchError('SEARCH_CONFIG', `kill: no trial '${trialId}' in search ${this.searchId}`);
    if (trial.status === 'pending') {
      trial.status = 'killed';
      trial.endedAt = new Date().toISOString();
      this.trialChanged(trial);
      this.wake();
      return true;
    }
    const run = this.running.get(trialId);
    if (!run || run.stopAs) return false;
    run.stopAs = 'killed';
    run.controller.abort(`trial ${trialId} was killed`);
    return true;
  }

  /** Kills every pending and running trial; the search ends with status 'stopped'. */
  killAll(): void {
    this.stopping = true;
    for (const t of this.state) if (t.status === 'pending' || t.status === 'running') this.kill(t.id);
    this.wake();
  }

  /**
   * Interrupts the search so it can be resumed: running trials are stopped and go back to
   * 'pending' (resume re-runs them from scratch), pending ones stay pending; status 'stopped'.
   */
  stop(): void {
    this.stopping = true;
    for (const run of this.running.values()) {
      if (run.stopAs) continue;
      run.stopAs = 'interrupted';
      run.controller.abort(`search ${this.searchId} was stopped`);
    }
    this.wake();
  }

  private async run(): Promise<SearchResult> {
    const option = this.opts.store;
    const store = typeof option === 'object' ? option : await openStore(option ?? (typeof this.config.base.store === 'string' ? this.config.base.store : undefined));
    try {
      this.writer = new SearchStateWriter(store.objects);
      this.save();
      for (;;) {
        this.startWhatFits(store);
        if (this.running.size === 0) break;
        const woken = new Promise<void>((r) => (this.wake = r));
        await Promise.race([woken, ...[...this.running.values()].map((r) => r.settled)]);
      }
      this.status = this.stopping ? 'stopped' : 'done';
      this.save();
      this.emitEvent({ type: 'search', status: this.status });
      await this.writer.flush();
      return this.result(store.url);
    } finally {
      if (typeof option !== 'object') await store.close();
    }
  }

  /** Starts pending trials in id order while the next one fits the concurrency and worker budget. */
  private startWhatFits(store: StoreHandle): void {
    if (this.stopping) return;
    let used = 0;
    for (const r of this.running.values()) used += r.workers;
    for (const trial of this.state) {
      if (trial.status !== 'pending') continue;
      const planned = this.planned.get(trial.id)!;
      if (this.running.size >= this.config.maxConcurrentTrials || used + planned.params.workers > this.config.workerBudget) return;
      used += planned.params.workers;
      this.startTrial(trial, planned, store);
    }
  }

  private startTrial(trial: TrialState, planned: PlannedTrial, store: StoreHandle): void {
    resetTrial(trial);
    trial.status = 'running';
    trial.startedAt = new Date().toISOString();
    const run: RunningTrial = { controller: new AbortController(), workers: planned.params.workers, settled: Promise.resolve() };
    this.running.set(trial.id, run);
    this.trialChanged(trial);
    run.settled = this.runTrial(trial, planned, run, store).finally(() => this.running.delete(trial.id));
  }

  private async runTrial(trial: TrialState, planned: PlannedTrial, run: RunningTrial, store: StoreHandle): Promise<void> {
    const epochs = planned.params.epochs;
    let outcome: { status: TrialState['status'] | 'interrupted'; error?: string };
    try {
      const r = await train(planned.params as TrainParamsInput, {
        store,
        signal: run.controller.signal,
        onStart: (jobId) => {
          trial.jobId = jobId;
          this.trialChanged(trial);
        },
        onEpochEnd: (epoch, logs) => this.epochEnded(trial, run, epoch, epochs, logs),
      });
      trial.metrics = r.metrics;
      trial.cost = r.cost;
      trial.history = r.history;
      trial.epoch = r.metrics.epochs;
      outcome = { status: run.stopAs ?? 'done' };
    } catch (e) {
      outcome = run.stopAs ? { status: run.stopAs } : { status: 'failed', error: (e as Error).message };
    }
    if (outcome.status === 'interrupted') {
      resetTrial(trial);
      trial.status = 'pending';
    } else {
      trial.status = outcome.status;
      if (outcome.error !== undefined) trial.error = outcome.error;
      trial.endedAt = new Date().toISOString();
    }
    this.trialChanged(trial);
  }

  private epochEnded(trial: TrialState, run: RunningTrial, epoch: number, epochs: number, logs: EpochLogs): void {
    trial.epoch = epoch;
    trial.history.push(logs);
    if (this.halving && !run.stopAs && this.halving.isRung(epoch, epochs)) {
      if (this.halving.report(trial.id, epoch, objectiveValue(this.config.objective, logs)) === 'prune') {
        run.stopAs = 'pruned';
        run.controller.abort(`trial ${trial.id} was pruned at epoch ${epoch}`);
      }
    }
    this.save();
    this.emitEvent({ type: 'epoch', trial: structuredClone(trial), logs });
  }

  /** On resume: the rung values of trials that already ended, in id order. */
  private replayRungs(): void {
    if (!this.halving) return;
    for (const t of this.state) {
      if (!FINAL_TRIAL_STATUSES.includes(t.status)) continue;
      const epochs = this.planned.get(t.id)?.params.epochs ?? 0;
      for (const rung of this.halving.rungsFor(epochs)) {
        const row = t.history.find((h) => h.epoch === rung);
        if (row) this.halving.report(t.id, rung, objectiveValue(this.config.objective, row));
      }
    }
  }

  private trialChanged(trial: TrialState): void {
    this.save();
    this.emitEvent({ type: 'trial', trial: structuredClone(trial) });
  }

  private emitEvent(event: SearchEvent): void {
    this.opts.callbacks.onUpdate?.(event);
    this.emit('update', event);
  }

  private snapshot(): SearchState {
    return {
      searchId: this.searchId,
      kind: this.config.kind,
      objective: this.config.objective,
      config: this.config,
      createdAt: this.createdAt,
      updatedAt: new Date().toISOString(),
      status: this.status,
      trials: this.state,
    };
  }

  private save(): void {
    this.writer?.save(this.snapshot());
  }

  private result(storeUrl: string): SearchResult {
    const objective = this.config.objective;
    const trials = sortTrials(objective, structuredClone(this.state));
    const best = trials.find((t) => t.status === 'done');
    return { searchId: this.searchId, status: this.status, objective, trials, best, top: (k) => trials.slice(0, k), storeUrl };
  }
}

/** Clears what a run of the trial left, so a re-run starts from scratch. */
function resetTrial(t: TrialState): void {
  delete t.jobId;
  delete t.epoch;
  delete t.metrics;
  delete t.cost;
  delete t.error;
  delete t.startedAt;
  delete t.endedAt;
  t.history = [];
}

function splitStore<T extends { store?: string | StoreHandle; searchId?: string }>(options: T): { store: string | StoreHandle | undefined; searchId: string; rest: Omit<T, 'store'> } {
  const { store, ...rest } = options;
  return { store, searchId: options.searchId ?? newSearchId(), rest };
}

/**
 * Runs the Cartesian product of `grid` over `base` (trial ids t000... in grid order, the last key
 * varying fastest). Bad input throws a SearchError here, before anything starts.
 */
export function gridSearch(options: GridSearchOptions, callbacks: SearchCallbacks = {}): SearchRun {
  const { store, searchId, rest } = splitStore(options);
  const { config, trials } = planGridSearch(rest);
  return new SearchRun({ searchId, config, planned: trials, store, callbacks });
}

/** Runs `trials` samples of `space` (reproducible from `seed`) over `base`. */
export function randomSearch(options: RandomSearchOptions, callbacks: SearchCallbacks = {}): SearchRun {
  const { store, searchId, rest } = splitStore(options);
  const { config, trials } = planRandomSearch(rest);
  return new SearchRun({ searchId, config, planned: trials, store, callbacks });
}

/**
 * Continues a search from its saved state: trials that ended (done, failed, pruned, killed) keep
 * their results; the others (pending, or running when the client died) run again from scratch.
 */
export async function resumeSearch(searchId: string, options: { store?: string | StoreHandle; maxConcurrentTrials?: number } & SearchCallbacks = {}): Promise<SearchRun> {
  const handle = typeof options.store === 'object' ? options.store : await openStore(options.store);
  let state: SearchState;
  let plan: ReturnType<typeof planFromConfig>;
  try {
    state = await readSearchState(handle.objects, searchId);
    plan = planFromConfig(state.config, options.maxConcurrentTrials);
    if (plan.trials.length !== state.trials.length || plan.trials.some((p, i) => p.id !== state.trials[i]!.id)) {
      throw new SearchError('SEARCH_STATE', `search '${searchId}': the saved trials do not match its config (${state.trials.length} saved, ${plan.trials.length} planned)`);
    }
  } finally {
    // The run reopens a URL store itself; only a handle given by the caller is shared.
    if (typeof options.store !== 'object') await handle.close();
  }
  const existing = state.trials.map((t) => (FINAL_TRIAL_STATUSES.includes(t.status) ? t : { id: t.id, params: t.params, status: 'pending' as const, history: [] }));
  const callbacks: SearchCallbacks = options.onUpdate ? { onUpdate: options.onUpdate } : {};
  return new SearchRun({ searchId, config: plan.config, planned: plan.trials, store: options.store, existing, createdAt: state.createdAt, callbacks });
}
