/**
 * Step 2 of a run, provision: what the workers need besides their event. First the store (the
 * datasets, and the job record, written before anything runs so a client killed at any point
 * leaves a job `cirrus clean` can find); then the channel (an embedded server started here, or the
 * one the params name) and, for async-sgd over several shards, the parameter-server shards. Each
 * thing started registers its undo with the run's Cleanup.
 */
import { randomBytes } from 'node:crypto';
import { openChannel, parseChannelUrl, psModelName, type Channel, type ChannelSpec } from '../../channels/index.js';
import { startMemcached, type MemcachedServer } from '../servers/index.js';
import { ShardedParamClient, startParamServer, type ParamServer } from '../../paramserver/index.js';
import { openStore, type StoreHandle } from '../store.js';
import { TrainError, type TrainParams } from '../train-params.js';
import { dropJobFromServer, sweepStale } from './clean.js';
import { removeJobKeys, type Cleanup } from './cleanup.js';
import { checkReachableFromWorkers } from './reachable.js';
import { JobRecordWriter } from './record.js';
import type { TrainCallbacks } from './types.js';

/** A job id that sorts by start time: train-<base36 ms>-<6 hex>. */
export function newJobId(started: number): string {
  return `train-${started.toString(36)}-${randomBytes(3).toString('hex')}`;
}

export interface JobStore {
  store: StoreHandle;
  record: JobRecordWriter;
}

/** Opens the store (or takes the caller's, left open), sweeps what dead clients left, and writes the job's record as running. */
export async function provisionStore(params: TrainParams, jobId: string, started: number, given: StoreHandle | undefined, cleanup: Cleanup): Promise<JobStore> {
  const store = given ?? (await openStore(params.store, undefined, params.advertise !== undefined ? { host: params.advertise } : {}));
  if (!given) cleanup.add(() => store.close());
  const record = new JobRecordWriter(store.objects, jobId, params, new Date(started));
  // What dead clients left (their keys, objects, private servers) goes first.
  await sweepStale(store);
  record.save({ status: 'running' });
  await record.flush();
  return { store, record };
}

export interface JobChannel {
  /** What workers are given to open the channel. */
  spec: ChannelSpec;
  /** The client's own connection to it (published models, progress). */
  channel: Channel;
  /** async-sgd over several shards: each shard's address, in shard order. */
  psShards: string[] | undefined;
  /** Server processes started for the job (their CPU counts in the run's). */
  serverPids: number[];
}

/** Starts or connects the channel (and the parameter-server shards) the job's workers use. */
export async function provisionChannel(params: TrainParams, jobId: string, modelSize: number, js: JobStore, cleanup: Cleanup, callbacks: Pick<TrainCallbacks, 'onPsShards'>): Promise<JobChannel> {
  const serverPids: number[] = [];
  const spec = await startChannel(params, js.store, cleanup, (kind, pid, address) => {
    serverPids.push(pid);
    js.record.addServer(kind, pid, address);
    js.record.save({ status: 'running' });
  });
  const psShards = await startPsShards(params, spec, modelSize, jobId, cleanup);
  // A server given by address outlives the job: the job's model and registrations leave with it.
  if (spec.kind === 'ps' && params.algorithm === 'async-sgd' && !psShards) cleanup.add(() => dropJobFromServer(spec, jobId));
  if (psShards) callbacks.onPsShards?.(psShards);
  if (params.launcher.type === 'lambda') await checkReachableFromWorkers({ channel: spec }, psShards);
  const channel = await openChannel(spec);
  cleanup.add(() => channel.close());
  cleanup.add(() => removeJobKeys(channel, js.store.objects, jobId, params.workers, params.epochs));
  return { spec, channel, psShards, serverPids };
}

/** The channel workers use: an embedded server started here, or the given URL. */
async function startChannel(params: TrainParams, store: StoreHandle, cleanup: Cleanup, onServer: (kind: string, pid: number, address: string) => void): Promise<ChannelSpec> {
  switch (params.channel) {
    case 'ps': {
      // Reachable from other hosts only with a token: anyone who reaches it could read the model.
      const token = params.advertise !== undefined ? randomBytes(24).toString('base64url') : undefined;
      const ps: ParamServer = await startParamServer({ port: 0, ...(params.advertise !== undefined ? { host: params.advertise, token } : {}) });
      cleanup.add(() => ps.stop());
      return parseChannelUrl(`ps://${ps.address}${token ? `?token=${token}` : ''}`);
    }
    case 'memcached': {
      const mc: MemcachedServer = await startMemcached(params.advertise !== undefined ? { host: params.advertise } : {});
      cleanup.add(() => mc.stop());
      onServer('memcached', mc.pid, mc.address);
      return parseChannelUrl(`memcached://${mc.address}`);
    }
    case 's3': {
      if (typeof store.workerTarget === 'string') {
        if (!store.workerTarget.startsWith('s3://')) throw new TrainError('TRAIN_CHANNEL', `params.channel: 's3' needs an S3 object store, but the store is ${store.workerTarget}`);
        return parseChannelUrl(store.workerTarget);
      }
      return { ...store.workerTarget, prefix: 'channel/' };
    }
    default: {
      const spec = parseChannelUrl(params.channel);
      if (spec.kind === 'memory') throw new TrainError('TRAIN_CHANNEL', "params.channel: 'memory://' lives in one process and cannot reach worker processes; use ps, memcached or s3");
      return spec;
    }
  }
}

/**
 * async-sgd with psShards: the shard addresses the workers spread the model over (servers started
 * here for a count, which cleanup stops), or undefined when the model stays on the channel's server.
 * Cleanup also drops the job's model from the shards: servers given by address outlive the job.
 */
async function startPsShards(params: TrainParams, channel: ChannelSpec, modelSize: number, jobId: string, cleanup: Cleanup): Promise<string[] | undefined> {
  const shards = params.psShards;
  if (shards === undefined || shards === 1) return undefined;
  const count = typeof shards === 'number' ? shards : shards.length;
  if (modelSize < count) throw new TrainError('TRAIN_PARAMS', `params.psShards: ${count} shards but the model has only ${modelSize} weights; every shard needs at least one`);
  // Workers prove the channel's token to every shard, so servers started here take the same one.
  const token = channel.kind === 'ps' ? channel.token : undefined;
  const opts = { ...(channel.kind === 'ps' ? { timeoutMs: channel.timeoutMs } : {}), ...(token ? { token } : {}) };
  let addresses: string[];
  if (typeof shards === 'number') {
    addresses = [];
    for (let i = 0; i < shards; i++) {
      const ps: ParamServer = await startParamServer({ port: 0, ...(token ? { token } : {}), ...(params.advertise !== undefined ? { host: params.advertise } : {}) });
      cleanup.add(() => ps.stop());
      addresses.push(ps.address);
    }
  } else {
    addresses = shards;
  }
  cleanup.add(() => dropShardedModel(addresses, opts, psModelName(jobId)));
  return addresses;
}

/** Removes every shard's slice of the model (a no-op on shards that never got one). */
async function dropShardedModel(addresses: string[], opts: { timeoutMs?: number; token?: string }, name: string): Promise<void> {
  const client = await ShardedParamClient.connect(addresses, opts);
  try {
    await client.dropModel(name);
  } finally {
    await client.close();
  }
}
