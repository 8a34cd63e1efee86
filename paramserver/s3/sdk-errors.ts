/** AWS SDK error helpers shared by every S3 user (channel, object store, snapshots): reading errors, probing a bucket. */
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';

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

/** Why a request failed, for a message: the SDK error, plus a hint where S3 is known to mislead. */
export function describeRequestFailure(op: string, err: unknown): string {
  const reason = describeSdkError(err);
  // Without s3:ListBucket, S3 answers 403 instead of 404 for a missing key.
  if (op === 'GET' && httpStatus(err) === 403) return `${reason} (S3 also answers 403 for a missing key when the caller lacks s3:ListBucket)`;
  return reason;
}

/** 'k' or '3 keys ('a', 'b', ...)', for messages about batch requests. */
export function describeKeys(keys: string[]): string {
  if (keys.length === 1) return `'${keys[0]}'`;
  return `${keys.length} keys ('${keys[0]}'${keys.length > 1 ? `, '${keys[1]}'` : ''}${keys.length > 2 ? ', ...' : ''})`;
}

/** Why a bucket cannot be used, as found by probeBucket. */
export type BucketProblem = 'timeout' | 'unreachable' | 'missing' | 'denied' | 'wrong-region' | 'other';

/** HeadBucket within timeoutMs; undefined when the bucket answers, else what is wrong and the SDK error. */
export async function probeBucket(client: S3Client, bucket: string, timeoutMs: number): Promise<{ problem: BucketProblem; err: unknown } | undefined> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: abort.signal });
    return undefined;
  } catch (err) {
    if (abort.signal.aborted) return { problem: 'timeout', err };
    const status = httpStatus(err);
    const problem: BucketProblem =
      status === undefined ? 'unreachable' : status === 404 ? 'missing' : status === 403 ? 'denied' : status === 301 ? 'wrong-region' : 'other';
    return { problem, err };
  } finally {
    clearTimeout(timer);
  }
}
