/** Typed errors of the search: a stable code, and a message naming the field or trial. */
import { CirrusError } from '../paramserver/index.js';

export type SearchErrorCode = 'SEARCH_CONFIG' | 'SEARCH_BUDGET' | 'SEARCH_NOT_FOUND' | 'SEARCH_STATE';

export class SearchError extends CirrusError<SearchErrorCode> {}
