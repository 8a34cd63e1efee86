/** Typed errors of the search: a stable code, and a message naming the field or trial. */
export type SearchErrorCode = 'SEARCH_CONFIG' | 'SEARCH_BUDGET' | 'SEARCH_NOT_FOUND' | 'SEARCH_STATE';

export class SearchError extends Error {
  readonly code: SearchErrorCode;
  constructor(code: SearchErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SearchError';
    this.code = code;
  }
}
