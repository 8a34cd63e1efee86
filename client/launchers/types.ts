/**
 * The launcher abstraction: the client hands a worker event to a launcher and gets back a handle
 * whose `result` settles when the worker is done. Local child processes and AWS Lambda implement
 * the same contract, so every workflow is launcher-agnostic.
 */
import { CirrusError } from '../../paramserver/index.js';
import type { WorkerEventInput } from '../../worker/event.js';

/** The event a launcher carries to the worker (validated by the worker itself, on entry). */
export type WorkerEvent = WorkerEventInput;

export type WorkerStatus = 'ok' | 'error' | 'timeout' | 'killed';

export interface WorkerError {
  /** Stable code: the worker's own error code (e.g. 'EVENT_INVALID', 'SHARD_FORMAT'), or the launcher's ('TIMEOUT', 'KILLED', 'OUT_OF_MEMORY', 'WORKER_CRASHED', 'SPAWN_FAILED'). */
  code: string;
  message: string;
  /** The tail of the worker's stderr, when it wrote any. */
  stderr?: string;
}

export interface WorkerResult {
  status: WorkerStatus;
  /** The handler's return value (status 'ok'). */
  value?: unknown;
  error?: WorkerError;
  /** From launch start (spawn / invoke) to the end of the worker. */
  durationMs: number;
  /** From launch start to handler entry; 0 when the worker never got there. */
  coldStartMs: number;
  peakRssMb?: number;
  /** The worker process's own CPU time (user + system, start-up included), when it reported one (local launcher). */
  cpuSeconds?: number;
}

export interface WorkerHandle {
  /** Unique per launch, for logs. */
  readonly id: string;
  readonly rank: number;
  /** Never rejects: failures are a status. */
  readonly result: Promise<WorkerResult>;
  /** Stops the worker (status 'killed' unless it already finished). */
  kill(reason: string): void;
}

export interface Launcher {
  /** Resolves once the launch is accepted (it may still queue behind a concurrency cap). */
  launch(event: WorkerEvent): Promise<WorkerHandle>;
  /** Stops every worker still running or queued and releases resources. */
  close(): Promise<void>;
}

export type LauncherErrorCode = 'LAUNCHER_CLOSED' | 'LAUNCHER_OPTIONS';

export class LauncherError extends CirrusError<LauncherErrorCode> {}
