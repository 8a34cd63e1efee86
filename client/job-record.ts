/**
 * A training job's record in the object store, `jobs/<jobId>/record.json`, so a job can be
 * reported on (`cirrus report <jobId>`) after its client is gone. Each write puts the complete
 * object (never a partial file); writes are chained so a slow put never lands after a newer one.
 * A failing write never fails the training: the record is a by-product.
 */
import type { ObjectStore } from '../channels/datasets/types.js';
import type { EpochLogs, TrainCost, TrainMetrics } from './train.js';

export type JobStatus = 'running' | 'done' | 'failed' | 'stopped';

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
}

export function jobRecordKey(jobId: string): string {
  return `jobs/${jobId}/record.json`;
}

/** Reads a job's record; undefined when there is none. */
export async function readJobRecord(store: ObjectStore, jobId: string): Promise<JobRecord | undefined> {
  const bytes = await store.get(jobRecordKey(jobId));
  return bytes ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as JobRecord) : undefined;
}

export class JobRecordWriter {
  private chain: Promise<void> = Promise.resolve();
  private history: EpochLogs[] = [];

  constructor(
    private readonly store: ObjectStore,
    private readonly jobId: string,
    private readonly params: unknown,
    private readonly startedAt: Date,
  ) {}

  /** Queues a write of the whole record with this status (history: the newest known when omitted). */
  save(update: { status: JobStatus; history?: EpochLogs[]; metrics?: TrainMetrics; cost?: TrainCost; error?: string }): void {
    if (update.history) this.history = update.history;
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
    };
    const bytes = new TextEncoder().encode(JSON.stringify(record));
    this.chain = this.chain.then(() => this.store.put(jobRecordKey(this.jobId), bytes)).catch(() => undefined);
  }

  /** Resolves once every queued write has landed (or failed). */
  flush(): Promise<void> {
    return this.chain;
  }
}
