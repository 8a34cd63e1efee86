/** The shared conformance suite against every adapter, each on its real server. */
import { after, before } from 'node:test';
import { MemcachedChannel } from '../channels/adapters/memcached/index.js';
import { MemoryChannel, MemoryStore } from '../channels/adapters/memory/index.js';
import { PsChannel } from '../channels/adapters/ps/index.js';
import { S3Channel } from '../channels/adapters/s3/index.js';
import { s3SpecFor } from '../client/servers/index.js';
import { parseChannelSpec, type MemcachedSpec, type PsSpec, type S3Spec } from '../channels/spec.js';
import { channelConformance } from './support/conformance.js';
import { startTestServers, type TestServers } from './support/servers.js';

const run = `conf-${process.pid}-${Date.now()}/`;

let servers: TestServers;
before(async () => {
  servers = await startTestServers();
});
after(async () => {
  await servers?.stop();
});

// One shared in-process store, so "another client" sees the same data.
const memoryStore = new MemoryStore();
channelConformance({
  name: 'memory',
  prefix: run,
  abilities: ['list'],
  open: async () => new MemoryChannel(memoryStore),
});

channelConformance({
  name: 'memcached',
  prefix: run,
  abilities: ['list', 'putParts', 'readInto'],
  missing: () => servers.memcachedMissing,
  open: () => MemcachedChannel.open(parseChannelSpec({ kind: 'memcached', server: servers.memcached!.address }) as MemcachedSpec),
});

channelConformance({
  name: 's3',
  prefix: run,
  abilities: ['list'],
  open: () => S3Channel.open(parseChannelSpec(s3SpecFor(servers.s3, 'cirrus')) as S3Spec),
});

channelConformance({
  name: 'ps',
  prefix: run,
  abilities: ['list'],
  open: () => PsChannel.open(parseChannelSpec({ kind: 'ps', address: servers.ps.address }) as PsSpec),
});
