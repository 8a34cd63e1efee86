/** Reading AWS SDK errors: shared by the S3 channel and the S3 object store. */

export type SdkErrorShape = Error & { code?: string; errors?: unknown[]; $metadata?: { httpStatusCode?: number } };

export function httpStatus(err: unknown): number | undefined {
  return (err as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
}

/** NoSuchKey, or a 404 without a code; a missing bucket must stay an error. */
export function isMissingKey(err: unknown): boolean {
  const name = (err as SdkErrorShape | undefined)?.name;
  if (name === 'NoSuchKey') return true;
  return httpStatus(err) === 404 && name !== 'NoSuchBucket';
}

/** One line naming what failed: SDK error name, HTTP status, socket error code. */
export function describeSdkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as SdkErrorShape;
  let message = e.message;
  // Node's multi-address connect failures are AggregateErrors with an empty message.
  if (!message && Array.isArray(e.errors) && e.errors[0] instanceof Error) message = e.errors[0].message;
  const parts = [e.name && e.name !== 'Error' ? e.name : undefined, e.code && !message.includes(e.code) ? e.code : undefined].filter(Boolean);
  const status = httpStatus(err);
  const head = parts.join(' ') + (status !== undefined ? ` (HTTP ${status})` : '');
  return head ? `${head}: ${message || 'no message'}` : message || 'unknown error';
}

/** 'k' or '3 keys ('a', 'b', ...)', for messages about batch requests. */
export function describeKeys(keys: string[]): string {
  if (keys.length === 1) return `'${keys[0]}'`;
  return `${keys.length} keys ('${keys[0]}'${keys.length > 1 ? `, '${keys[1]}'` : ''}${keys.length > 2 ? ', ...' : ''})`;
}
