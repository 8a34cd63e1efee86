/** The shared conformance suite against every adapter, each on its real server. */
import { after, before } from 'node:test';
import { MemcachedChannel } from '../channels/memcached.js';
import type { MemcachedServer } from '../channels/memcached-server.js';
import { MemoryChannel, MemoryStore } from '../channels/memory.js';
import { PsChannel } from '../channels/ps.js';
import { S3Channel } from '../channels/s3.js';
import { s3SpecFor, startS3Server, type S3Server } from '../channels/s3-server.js';
import { parseChannelSpec, type MemcachedSpec, type PsSpec, type S3Spec } from '../channels/spec.js';
import { startParamServer, type ParamServer } from '../paramserver/index.js';
import { channelConformance } from './support/conformance.js';
import { memcachedForTests } from './support/servers.js';

let memcached: MemcachedServer | undefined;
let memcachedSkip: string | undefined;
let s3: S3Server;
let ps: ParamServer;
const run = `conf-${process.pid}-${Date.now()}/`;

before(async () => {
  const m = await memcachedForTests();
  memcached = m.server;
  memcachedSkip = m.skip;
  s3 = await startS3Server({ buckets: ['cirrus'] });
  ps = await startParamServer({ port: 0 });
});

after(async () => {
  await memcached?.stop();
  await s3?.stop();
  await ps?.stop();
});

// One shared in-process store, so "another client" sees the same data.
const memoryStore = new MemoryStore();
channelConformance({
  name: 'memory',
  prefix: run,
  open: async () => new MemoryChannel(memoryStore),
});

channelConformance({
  name: 'memcached',
  prefix: run,
  skip: () => memcachedSkip,
  open: () => MemcachedChannel.open(parseChannelSpec({ kind: 'memcached', server: memcached!.address }) as MemcachedSpec),
});

channelConformance({
  name: 's3',
  prefix: run,
  open: () => S3Channel.open(parseChannelSpec(s3SpecFor(s3, 'cirrus')) as S3Spec),
});

channelConformance({
  name: 'ps',
  prefix: run,
  open: () => PsChannel.open(parseChannelSpec({ kind: 'ps', address: ps.address }) as PsSpec),
});
