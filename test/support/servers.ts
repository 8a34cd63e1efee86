/**
 * Real servers for tests. A server whose binary is missing is reported as `...Missing` (the
 * reason); the test hands that to skipOrFail (./skip-or-fail.ts), which fails it under CI and skips
 * it elsewhere.
 */
import { findMemcachedBinary, startMemcached, startS3Server, type MemcachedServer, type S3Server } from '../../client/servers/index.js';
import { startParamServer, type ParamServer } from '../../paramserver/index.js';

/** Why memcached cannot run here, or undefined when its binary is on PATH. */
export function memcachedMissing(): string | undefined {
  return findMemcachedBinary() ? undefined : 'memcached is not installed (apt-get install memcached)';
}

/** Starts a private memcached, or returns the reason it cannot (for skipOrFail). */
export async function memcachedForTests(): Promise<{ server?: MemcachedServer; missing?: string }> {
  const missing = memcachedMissing();
  return missing ? { missing } : { server: await startMemcached() };
}

export interface TestServers {
  /** Undefined (with memcachedMissing set) when the memcached binary is missing. */
  memcached: MemcachedServer | undefined;
  memcachedMissing: string | undefined;
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
    memcachedMissing: m.missing,
    s3,
    ps,
    async stop() {
      await m.server?.stop();
      await s3.stop();
      await ps.stop();
    },
  };
}
