/**
 * Real servers for tests. A test whose server cannot start fails under CI=true; elsewhere it is
 * skipped with the reason (so a developer without memcached still runs the rest).
 */
import type { TestContext } from 'node:test';
import { findMemcachedBinary, startMemcached, type MemcachedServer } from '../../channels/memcached-server.js';

export const IN_CI = process.env.CI === 'true';

/** Starts a private memcached, or returns undefined (and the reason) when the binary is missing outside CI. */
export async function memcachedForTests(): Promise<{ server?: MemcachedServer; skip?: string }> {
  if (!findMemcachedBinary()) {
    const reason = 'memcached is not installed (apt-get install memcached)';
    if (IN_CI) throw new Error(`${reason}: required under CI=true`);
    return { skip: reason };
  }
  return { server: await startMemcached() };
}

export function skipIf(t: TestContext, reason: string | undefined): boolean {
  if (reason) t.skip(reason);
  return reason !== undefined;
}
