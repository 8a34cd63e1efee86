/**
 * `cirrus clean [<jobId>|--stale]`: removes what a training job left when its client died before
 * cleaning up (kill -9, a lost machine): its objects under job/<id>/ (control records, checkpoints),
 * its channel keys, its model and registrations on a parameter server, the private memcached it
 * started, and marks its record 'stopped'. A job is stale when its record says 'running' but its
 * client process (same host) is gone. Every run sweeps stale jobs first.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { type ObjectStore, openChannel, psModelName, jobPrefix, parseChannelUrl, type ChannelSpec } from '../../channels/index.js';
import { ParamClient } from '../../paramserver/index.js';
import { readJobRecord, writeJobRecord, type JobRecord } from './record.js';
import type { StoreHandle } from '../store.js';
import { processAlive } from '../process-alive.js';

interface CleanReport {
  jobId: string;
  objects: number;
  channelKeys: number;
  /** Server processes stopped (pids). */
  servers: number[];
  /** Steps that could not be done, with why (e.g. an external channel that is unreachable). */
  problems: string[];
}


/** The command line of a live process (Linux), to make sure a recorded pid is still the server it was. */
function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Whether the record's client is known to be dead: it ran on this host and its pid is gone. */
function clientGone(r: JobRecord): boolean {
  return r.status === 'running' && r.client?.host === hostname() && !processAlive(r.client.pid);
}

/** Jobs whose record says running but whose client died. */
export async function staleJobs(objects: ObjectStore): Promise<string[]> {
  const keys = (await objects.list('jobs/')).filter((k) => k.endsWith('/record.json'));
  const out: string[] = [];
  for (const key of keys) {
    const jobId = key.slice('jobs/'.length, -'/record.json'.length);
    const r = await readJobRecord(objects, jobId).catch(() => undefined);
    if (r && clientGone(r)) out.push(jobId);
  }
  return out;
}

export async function cleanJob(store: StoreHandle, jobId: string): Promise<CleanReport> {
  const report: CleanReport = { jobId, objects: 0, channelKeys: 0, servers: [], problems: [] };
  const record = await readJobRecord(store.objects, jobId);
  const prefix = jobPrefix(jobId);
  const objects = await store.objects.list(prefix);
  // The embedded s3 channel keeps its keys in the store under channel/.
  const channelObjects = await store.objects.list(`channel/${prefix}`);
  await store.objects.delete([...objects, ...channelObjects]);
  report.objects = objects.length + channelObjects.length;
  if (record) {
    await cleanChannel(record, jobId, report);
    if (record.status === 'running') {
      const updated: JobRecord = { ...record, status: 'stopped', endReason: 'cleaned up by `cirrus clean` after its client died', updatedAt: new Date().toISOString() };
      await writeJobRecord(store.objects, updated);
    }
  }
  return report;
}

/** Channel keys, the parameter-server model and registrations, and the servers the client started. */
async function cleanChannel(record: JobRecord, jobId: string, report: CleanReport): Promise<void> {
  const params = record.params as { channel?: string };
  const servers = record.servers ?? [];
  const targets: string[] = [];
  if (typeof params.channel === 'string' && params.channel.includes('://')) targets.push(params.channel);
  for (const s of servers) if (s.kind === 'memcached' && processAlive(s.pid)) targets.push(`memcached://${s.address}`);
  for (const url of targets) {
    try {
      const spec = parseChannelUrl(url);
      const ch = await openChannel(spec);
      try {
        const keys = ch.list ? await ch.list(jobPrefix(jobId)) : [];
        await ch.delete(keys);
        report.channelKeys += keys.length;
      } finally {
        await ch.close();
      }
      if (spec.kind === 'ps') await dropJobFromServer(spec, jobId);
    } catch (e) {
      report.problems.push(`${url}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  // Servers the dead client started for this job alone: stop them (only if the pid is still that server).
  for (const s of servers) {
    if (!processAlive(s.pid) || !commandLine(s.pid).includes(s.kind) || !commandLine(s.pid).includes(s.address.split(':').pop()!)) continue;
    process.kill(s.pid, 'SIGKILL');
    report.servers.push(s.pid);
  }
}

/** Drops the job's model and registrations from a parameter server (which outlives the job). */
export async function dropJobFromServer(spec: Extract<ChannelSpec, { kind: 'ps' }>, jobId: string): Promise<void> {
  const client = await ParamClient.connect(spec.address, { timeoutMs: spec.timeoutMs, ...(spec.token ? { token: spec.token } : {}) });
  try {
    await client.dropModel(psModelName(jobId));
    await client.forgetTask(jobId);
  } finally {
    await client.close();
  }
}

/** Cleans every stale job; never throws (a sweep must not stop a new run). */
export async function sweepStale(store: StoreHandle): Promise<CleanReport[]> {
  const out: CleanReport[] = [];
  try {
    for (const jobId of await staleJobs(store.objects)) out.push(await cleanJob(store, jobId));
  } catch {
    // best effort
  }
  return out;
}
