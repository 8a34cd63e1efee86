/**
 * A training job's record in the object store, `jobs/<jobId>/record.json`, so a job can be
 * reported on (`cirrus report <jobId>`) after its client is gone. Each write puts the complete
 * object (never a partial file); writes are chained so a slow put never lands after a newer one.
 * A failing write never fails the training: the record is a by-product.
 */
import { hostname } from 'node:os';
import type { ObjectStore } from '../../channels/index.js';
import { TrainError } from '../train-params.js';
import type { RelaunchRecord } from './supervise.js';
import type { EpochLogs, TrainCost, TrainMetrics } from './types.js';

export type JobStatus = 'running' | 'done' | 'failed' | 'stopped' | 'diverged';

export interface JobRecord {
  jobId: string;
  params: unknown;
  status: JobStatus;
  startedAt: string;
  updatedAt: string;
  history: EpochLogs[];
  metrics?: TrainMetrics;
  cost?: TrainCost;
  error?: string;
  /** Why the run ended: 'epochs done', a stop condition, an abort, or the error's code. */
  endReason?: string;
  /** Every relaunch, with its cause. */
  relaunches: RelaunchRecord[];
  /** The client that ran the job, so `cirrus clean --stale` can tell a dead one (pid on host). */
  client: { pid: number; host: string };
  /** Server processes the client started for the job (`cirrus clean` stops them when the client died). */
  servers: Array<{ kind: string; pid: number; address: string }>;
}

type JobRecordUpdate = { status: JobStatus; history?: EpochLogs[]; metrics?: TrainMetrics; cost?: TrainCost; error?: string; endReason?: string; relaunches?: RelaunchRecord[] };

export function jobRecordKey(jobId: string): string {
  return `jobs/${jobId}/record.json`;
}

/** The copy written before each record, so a client killed in the middle of a PUT (stores whose PUT is not atomic) leaves one readable. */
function jobRecordBackupKey(jobId: string): string {
  return `jobs/${jobId}/record.bak.json`;
}

/** Reads a job's record (its backup when the record itself is unreadable); undefined when there is none. */
export async function readJobRecord(store: ObjectStore, jobId: string): Promise<JobRecord | undefined> {
  const bytes = await store.get(jobRecordKey(jobId));
  if (!bytes) return undefined;
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as JobRecord;
  } catch (e) {
    const backup = await store.get(jobRecordBackupKey(jobId));
    if (!backup) throw e;
    return JSON.parse(Buffer.from(backup).toString('utf8')) as JobRecord;
  }
}

/** Writes a record: the backup first, then the record. */
export async function writeJobRecord(store: ObjectStore, record: JobRecord): Promise<void> {
  const bytes = new TextEncoder().encode(JSON.stringify(record));
  await store.put(jobRecordBackupKey(record.jobId), bytes);
  await store.put(jobRecordKey(record.jobId), bytes);
}

export class JobRecordWriter {
  private chain: Promise<void> = Promise.resolve();
  private history: EpochLogs[] = [];
  private relaunches: RelaunchRecord[] = [];
  private readonly servers: JobRecord['servers'] = [];

  constructor(
    private readonly store: ObjectStore,
    private readonly jobId: string,
    private readonly params: unknown,
    private readonly startedAt: Date,
  ) {}

  /** A server process started for the job, recorded with the next save. */
  addServer(kind: string, pid: number, address: string): void {
    this.servers.push({ kind, pid, address });
  }

  /** Queues a write of the whole record with this status (history: the newest known when omitted). */
  save(update: JobRecordUpdate): void {
    if (update.history) this.history = update.history;
    if (update.relaunches) this.relaunches = update.relaunches;
    const record: JobRecord = {
      jobId: this.jobId,
      params: this.params,
      status: update.status,
      startedAt: this.startedAt.toISOString(),
      updatedAt: new Date().toISOString(),
      history: this.history.map((h) => ({ ...h })),
      ...(update.metrics ? { metrics: update.metrics } : {}),
      ...(update.cost ? { cost: update.cost } : {}),
      ...(update.error !== undefined ? { error: update.error } : {}),
      ...(update.endReason !== undefined ? { endReason: update.endReason } : {}),
      relaunches: this.relaunches.map((r) => ({ ...r })),
      client: { pid: process.pid, host: hostname() },
      servers: [...this.servers],
    };
    this.chain = this.chain.then(() => writeJobRecord(this.store, record)).catch(() => undefined);
  }

  /** Resolves once every queued write has landed (or failed). */
  flush(): Promise<void> {
    return this.chain;
  }
}

/** The record of a run that threw `e`: stopped, diverged or failed, with the error's code as the end reason. */
export function failureUpdate(e: unknown): JobRecordUpdate {
  const code = e instanceof TrainError ? e.code : undefined;
  const status: JobStatus = code === 'TRAIN_STOPPED' ? 'stopped' : code === 'TRAIN_DIVERGED' ? 'diverged' : 'failed';
  return { status, error: (e as Error).message, endReason: code ?? (e as { code?: string }).code ?? 'error' };
}
