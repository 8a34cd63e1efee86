/**
 * A search's state in the object store, `searches/<searchId>/state.json`: enough to resume it and
 * to report on it. Each write puts the complete object; writes are chained so they land in order.
 */
import type { ObjectStore } from '../channels/index.js';
import type { EpochLogs, TrainCost, TrainMetrics } from '../client/index.js';
import { SearchError } from './errors.js';
import type { Objective } from './objective.js';
import type { SearchConfig } from './config.js';
import type { TrialOverrides } from './space.js';

export type TrialStatus = 'pending' | 'running' | 'done' | 'failed' | 'killed' | 'pruned';
export type SearchStatus = 'running' | 'done' | 'stopped';

/** Statuses a trial never leaves; resume re-runs every other trial. */
export const FINAL_TRIAL_STATUSES: readonly TrialStatus[] = ['done', 'failed', 'pruned', 'killed'];

export interface TrialState {
  id: string;
  /** The overrides this trial applies to the base params. */
  params: TrialOverrides;
  status: TrialStatus;
  jobId?: string;
  /** The newest epoch the trial finished. */
  epoch?: number;
  metrics?: TrainMetrics;
  history: EpochLogs[];
  cost?: TrainCost;
  error?: string;
  startedAt?: string;
  endedAt?: string;
}

export interface SearchState {
  searchId: string;
  kind: 'grid' | 'random';
  objective: Objective;
  config: SearchConfig;
  createdAt: string;
  updatedAt: string;
  status: SearchStatus;
  trials: TrialState[];
}

export function searchStateKey(searchId: string): string {
  return `searches/${searchId}/state.json`;
}

export async function readSearchState(store: ObjectStore, searchId: string): Promise<SearchState> {
  const bytes = await store.get(searchStateKey(searchId));
  if (!bytes) throw new SearchError('SEARCH_NOT_FOUND', `search '${searchId}': no state at ${searchStateKey(searchId)} in ${store.url}`);
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as SearchState;
  } catch (e) {
    throw new SearchError('SEARCH_STATE', `search '${searchId}': ${searchStateKey(searchId)} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Serialises state writes; `flush` waits for the last one. A failed write is reported once, not thrown. */
export class SearchStateWriter {
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  constructor(private readonly store: ObjectStore) {}

  save(state: SearchState): void {
    const bytes = new TextEncoder().encode(JSON.stringify(state));
    this.chain = this.chain
      .then(() => this.store.put(searchStateKey(state.searchId), bytes))
      .catch((e: Error) => {
        this.failure ??= e;
      });
  }

  async flush(): Promise<void> {
    await this.chain;
    if (this.failure) throw new SearchError('SEARCH_STATE', `could not save the search state: ${this.failure.message}`, { cause: this.failure });
  }
}
