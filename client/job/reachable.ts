/**
 * Endpoints that workers on other hosts can reach. Lambda workers run in AWS's network: a loopback
 * or unspecified address in their event points at their own sandbox, a file:// or memory:// store
 * at nothing they can read. A run with a Lambda launcher is refused before any invocation when an
 * endpoint is one of those, with the field and what to use instead.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { ChannelSpec, S3Spec } from '../../channels/index.js';
import { TrainError, type TrainParams } from '../train-params.js';

const ADVERTISE_HINT = "or --set advertise=<an address of this machine the workers can reach>, so the servers this client starts listen there";

/** Why `host` cannot be reached from another machine, or undefined when it can. */
export function unreachableReason(host: string): string | undefined {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return 'a loopback name';
  if (h === '0.0.0.0' || h === '::') return 'the unspecified address';
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::1' || /^::ffff:127\./.test(h)) return 'a loopback address';
  return undefined;
}

interface Endpoint {
  /** The event field, e.g. 'endpoints.channel.address'. */
  field: string;
  /** What the user configured it as, e.g. 'ps://127.0.0.1:7070'. */
  shown: string;
  host: string | undefined;
  /** Set when the kind itself can never be reached (file://, memory://). */
  never?: string;
  instead: string;
}

function hostOf(url: string): string {
  return new URL(url).hostname;
}

function hostOfAddress(address: string): string {
  const m = /^\[?([^\]]+?)\]?:\d+$/.exec(address);
  return m ? m[1]! : address;
}

function storeEndpoint(store: string | S3Spec): Endpoint {
  const instead = `use an S3 store the workers can reach (params.store 's3://bucket/prefix' on AWS), ${ADVERTISE_HINT}`;
  if (typeof store !== 'string') return { field: 'endpoints.store.endpoint', shown: store.endpoint ?? `s3://${store.bucket}`, host: store.endpoint ? hostOf(store.endpoint) : undefined, instead };
  if (store.startsWith('file://')) return { field: 'endpoints.store', shown: store, host: undefined, never: "a directory on this machine's disk", instead };
  if (store.startsWith('memory://')) return { field: 'endpoints.store', shown: store, host: undefined, never: "this process's memory", instead };
  const endpoint = /[?&]endpoint=([^&]+)/.exec(store)?.[1];
  return { field: 'endpoints.store', shown: store, host: endpoint ? hostOf(decodeURIComponent(endpoint)) : undefined, instead };
}

function channelEndpoint(spec: ChannelSpec): Endpoint {
  switch (spec.kind) {
    case 'ps':
      return { field: 'endpoints.channel.address', shown: `ps://${spec.address}`, host: hostOfAddress(spec.address), instead: `give the channel as ps://<host>:<port>?token=<secret> of a parameter server the workers can reach (npx cirrus ps --host 0.0.0.0 --token ...), ${ADVERTISE_HINT}` };
    case 'memcached':
      return { field: 'endpoints.channel.server', shown: `memcached://${spec.server}`, host: hostOfAddress(spec.server), instead: `give a memcached the workers can reach (ElastiCache in the function's VPC: memcached://<node>.cache.amazonaws.com:11211), ${ADVERTISE_HINT}` };
    case 's3':
      return { field: 'endpoints.channel.endpoint', shown: spec.endpoint ?? `s3://${spec.bucket}`, host: spec.endpoint ? hostOf(spec.endpoint) : undefined, instead: `use S3 itself (no endpoint) or an S3 server the workers can reach, ${ADVERTISE_HINT}` };
    case 'memory':
      return { field: 'endpoints.channel', shown: 'memory://', host: undefined, never: "this process's memory", instead: 'use ps, memcached or s3' };
  }
}

/** Every endpoint a worker event carries must be reachable from another host; throws TRAIN_ENDPOINT naming the first that is not. */
export async function checkReachableFromWorkers(endpoints: { store?: string | S3Spec; channel?: ChannelSpec }, psShards: readonly string[] = []): Promise<void> {
  const all: Endpoint[] = [];
  if (endpoints.store !== undefined) all.push(storeEndpoint(endpoints.store));
  if (endpoints.channel) all.push(channelEndpoint(endpoints.channel));
  psShards.forEach((a, i) => all.push({ field: `task.psShards[${i}]`, shown: a, host: hostOfAddress(a), instead: `give shard addresses the workers can reach, ${ADVERTISE_HINT}` }));
  for (const e of all) {
    let why = e.never ?? (e.host !== undefined ? unreachableReason(e.host) : undefined);
    if (!why && e.host !== undefined && isIP(e.host) === 0) why = await resolvesToLoopback(e.host);
    if (why) throw new TrainError('TRAIN_ENDPOINT', `${e.field}: ${e.shown} is ${why}, which Lambda workers cannot reach from their own hosts; ${e.instead}`);
  }
}

/** A host name whose every address is loopback (e.g. an /etc/hosts alias) is as unreachable as 127.0.0.1. */
async function resolvesToLoopback(host: string): Promise<string | undefined> {
  try {
    const addrs = await lookup(host, { all: true });
    if (addrs.length > 0 && addrs.every((a) => unreachableReason(a.address) !== undefined)) return `a name for ${addrs[0]!.address} (${unreachableReason(addrs[0]!.address)})`;
  } catch {
    // Not resolvable here: it may still resolve where the workers run (a VPC-private name).
  }
  return undefined;
}

/** params.advertise: an address of one of this machine's interfaces that is neither loopback nor unspecified. */
export function checkAdvertise(address: string): void {
  const why = unreachableReason(address);
  if (why) throw new TrainError('TRAIN_PARAMS', `params.advertise: ${address} is ${why}; give an address of this machine that the workers can reach`);
  if (isIP(address) === 0) throw new TrainError('TRAIN_PARAMS', `params.advertise: '${address}' is not an IP address; give one of this machine's addresses`);
  const mine = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
  if (!mine.includes(address)) {
    throw new TrainError('TRAIN_PARAMS', `params.advertise: ${address} is not an address of this machine (its addresses: ${mine.filter((a) => !unreachableReason(a)).join(', ') || 'none but loopback'})`);
  }
}

/**
 * Before anything starts: with a Lambda launcher, servers this client would start on 127.0.0.1
 * (no params.advertise) are refused naming the param; so is a bad params.advertise.
 */
export function checkPlanReachable(params: TrainParams): void {
  if (params.advertise !== undefined) checkAdvertise(params.advertise);
  if (params.launcher.type !== 'lambda' || params.advertise !== undefined) return;
  const local = (what: string) => `${what} would listen on 127.0.0.1, which Lambda workers cannot reach from their own hosts`;
  if (params.store === undefined) throw new TrainError('TRAIN_ENDPOINT', `params.store: ${local('the embedded S3 server')}; give an S3 store (--store s3://bucket/prefix) ${ADVERTISE_HINT}`);
  if (params.channel === 'ps') throw new TrainError('TRAIN_ENDPOINT', `params.channel: ${local("the client's parameter server")}; give ps://<host>:<port>?token=<secret> of a server the workers can reach (npx cirrus ps --host 0.0.0.0 --token ...) ${ADVERTISE_HINT}`);
  if (params.channel === 'memcached') throw new TrainError('TRAIN_ENDPOINT', `params.channel: ${local("the client's private memcached")}; give memcached://<host>:11211 of a server in the function's VPC (ElastiCache) ${ADVERTISE_HINT}`);
  if (typeof params.psShards === 'number' && params.psShards > 1) throw new TrainError('TRAIN_ENDPOINT', `params.psShards: ${local('the shards this client starts')}; give the addresses of running shards ${ADVERTISE_HINT}`);
}
