/**
 * The one base of every Cirrus-TS error: a stable upper-case `code` callers switch on, a `name`
 * equal to the class name, and an optional `cause` (Error's own). README.md "Error codes" lists
 * every code.
 *
 * It lives in paramserver, the lowest room, because every room may import paramserver's door
 * (paramserver/index.ts) and none may import a higher one. It has nothing to do with the parameter
 * server itself; the other rooms import it from that door.
 */

export interface CirrusErrorOptions {
  /** The error this one wraps; kept as Error's `cause`. */
  cause?: unknown;
}

/**
 * Subclasses narrow `C` to the union of their codes; most need no body at all:
 * `export class DatasetError extends CirrusError<DatasetErrorCode> {}`.
 */
export class CirrusError<C extends string = string> extends Error {
  /** Stable for callers (and the worker's Lambda errorType `Cirrus.<CODE>`). */
  readonly code: C;

  constructor(code: C, message: string, options?: CirrusErrorOptions) {
    // Only an actual cause is passed on, so `'cause' in err` says whether there was one.
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    // The subclass's own name, set once here (bundles keep class names: esbuild keepNames).
    this.name = new.target.name;
    this.code = code;
  }
}
