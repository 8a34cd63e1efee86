/**
 * Key schema: everything a job writes lives under `job/<jobId>/`, so concurrent jobs and HPO trials
 * never collide and `clean` can delete one prefix. Keys stay short and printable: memcached caps
 * them at 250 bytes and forbids spaces and control characters.
 */
import { ChannelError } from './errors.js';

const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SEGMENT = /^[A-Za-z0-9._~-]+$/;
export const MAX_KEY_BYTES = 250;

export function assertJobId(jobId: string): void {
  if (!JOB_ID.test(jobId)) {
    throw new ChannelError('KEY_INVALID', `job id '${jobId}' is invalid: expected 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
}

export function jobPrefix(jobId: string): string {
  assertJobId(jobId);
  return `job/${jobId}/`;
}

/** Builds `job/<jobId>/<part>/<part>...`, checking each part. */
export function jobKey(jobId: string, ...parts: Array<string | number>): string {
  const segments = parts.map(String);
  for (const s of segments) {
    if (!SEGMENT.test(s)) throw new ChannelError('KEY_INVALID', `key part '${s}' is invalid: expected letters, digits, '.', '_', '~' or '-'`);
  }
  return assertKey(jobPrefix(jobId) + segments.join('/'));
}

export function assertKey(key: string): string {
  if (key.length === 0 || Buffer.byteLength(key) > MAX_KEY_BYTES) {
    throw new ChannelError('KEY_INVALID', `key '${key.slice(0, 60)}${key.length > 60 ? '...' : ''}' is invalid: expected 1-${MAX_KEY_BYTES} bytes, got ${Buffer.byteLength(key)}`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(key)) throw new ChannelError('KEY_INVALID', `key '${key}' is invalid: spaces and control characters are not allowed`);
  return key;
}
