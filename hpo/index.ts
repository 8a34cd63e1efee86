/**
 * The package's front door: the client's API plus hyperparameter search. The client cannot import
 * this room (hpo -> client only), so `cirrus.gridSearch` is added here, on top of the client's
 * default export.
 */
import clientCirrus from '../client/index.js';
import { gridSearch, randomSearch, resumeSearch } from './search.js';

export * from '../client/index.js';
export { gridSearch, randomSearch, resumeSearch, sortTrials, SearchRun, type GridSearchOptions, type RandomSearchOptions, type SearchCallbacks, type SearchEvent, type SearchResult } from './search.js';
export { SearchError, type SearchErrorCode } from './errors.js';
export { SuccessiveHalving, type HalvingConfig, type RungDecision } from './halving.js';
export { expandGrid, sampleSpace, seededRandom, type Distribution, type TrialOverrides } from './space.js';
export { DEFAULT_OBJECTIVE, type Objective, type ObjectiveMetric } from './objective.js';
export { readSearchState, searchStateKey, type SearchState, type SearchStatus, type TrialState, type TrialStatus } from './state.js';
export type { SearchConfig } from './config.js';

const cirrus = { ...clientCirrus, gridSearch, randomSearch, resumeSearch };
export default cirrus;

// The room's error classes not exported above, so other rooms can catch them through this door.
export { ReportError, type ReportErrorCode } from './report-data.js';
