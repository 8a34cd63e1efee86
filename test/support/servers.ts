/**
 * Real servers for tests. A test whose server cannot start fails under CI=true; elsewhere it is
 * skipped with the reason (so a developer without memcached still runs the rest).
 */
import type { TestContext } from 'node:test';
import { findMemcachedBinary, startMemcached, type MemcachedServer } from '../../channels/memcached-server.js';
import { startS3Server, type S3Server } from '../../channels/s3-server.js';
import { startParamServer, type ParamServer } from '../../paramserver/index.js';

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

export interface TestServers {
  /** Undefined (with memcachedSkip set) when memcached is missing outside CI. */
  memcached: MemcachedServer | undefined;
  memcachedSkip: string | undefined;
  s3: S3Server;
  ps: ParamServer;
  stop(): Promise<void>;
}

/** One of each real server: a private memcached, an in-process s3rver (bucket 'cirrus'), a parameter server. */
export async function startTestServers(): Promise<TestServers> {
  const m = await memcachedForTests();
  const s3 = await startS3Server({ buckets: ['cirrus'] });
  const ps = await startParamServer({ port: 0 });
  return {
    memcached: m.server,
    memcachedSkip: m.skip,
    s3,
    ps,
    async stop() {
      await m.server?.stop();
      await s3.stop();
      await ps.stop();
    },
  };
}
