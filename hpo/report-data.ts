/**
 * What the HTML report shows, loaded from the object store: a search's `searches/<id>/state.json`
 * or a single job's `jobs/<id>/record.json`, validated and normalized to one shape (ReportData) so
 * the renderer never sees the difference.
 */
import { z } from 'zod';
import type { ObjectStore } from '../channels/index.js';
import { CirrusError } from '../paramserver/index.js';
import { OBJECTIVE_METRICS, isLossOnlyModel, type ObjectiveMetric } from './objective.js';

export type ReportErrorCode =
  /** Neither a search state nor a job record exists under that id. */
  | 'REPORT_NOT_FOUND'
  /** A stored object is not JSON or lacks/mistypes a field. */
  | 'REPORT_BAD_RECORD'
  /** The id cannot be a key segment (empty, contains '/', ...). */
  | 'REPORT_BAD_ID';

export class ReportError extends CirrusError<ReportErrorCode> {}


export interface ReportObjective {
  metric: ObjectiveMetric;
  mode: 'max' | 'min';
}

/** One point of a curve. Values a diverged run stored as null (JSON has no NaN/Infinity) stay null. */
export interface ReportPoint {
  epoch: number;
  step: number;
  wallSeconds: number;
  trainLoss: number | null;
  testLoss: number | null;
  testAccuracy: number | null;
  /** Binary models only. */
  testAuc?: number | null;
}

export interface ReportMetrics {
  testAccuracy: number | null;
  testLoss: number | null;
  testAuc?: number | null;
  trainLoss?: number | null;
  epochs?: number;
  wallSeconds?: number;
}

export interface ReportRun {
  id: string;
  /** The params as one line of text, e.g. 'lr=0.1, batchSize=32'. */
  label: string;
  status: string;
  history: ReportPoint[];
  metrics?: ReportMetrics;
  costUsd?: number;
  workerSeconds?: number;
  jobId?: string;
  error?: string;
}

export interface ReportData {
  title: string;
  kind: 'search' | 'job';
  id: string;
  /** The key the data came from and the store it lives in, shown in the page footer. */
  source: string;
  status: string;
  objective: ReportObjective;
  /** False when every run's model has no accuracy (k-means, matrix factorization): the page shows losses only. Default true. */
  accuracy?: boolean;
  createdAt?: string;
  updatedAt?: string;
  runs: ReportRun[];
}

// Shapes written by the search and by train() (see hpo/ and client/train.ts). Objects strip
// unknown fields, so newer writers with extra fields still load.
const num = z.number();
const maybeNum = z.number().nullable();
const epochLogs = z.object({
  epoch: num,
  step: num,
  wallSeconds: num,
  trainLoss: maybeNum,
  testLoss: maybeNum,
  testAccuracy: maybeNum,
  testAuc: maybeNum.optional(),
});
const metrics = z.object({
  testAccuracy: maybeNum,
  testLoss: maybeNum,
  testAuc: maybeNum.optional(),
  trainLoss: maybeNum.optional(),
  epochs: num.optional(),
  wallSeconds: num.optional(),
});
const cost = z.object({ usd: num, workerSeconds: num.optional() });
const params = z.record(z.string(), z.unknown());
const time = z.union([z.string(), z.number()]);
const errorField = z.union([z.string(), z.object({ message: z.string() })]);

const searchState = z.object({
  searchId: z.string(),
  kind: z.enum(['grid', 'random']),
  // Every metric a search may optimise (objective.ts), so any search can be reported.
  objective: z.object({ metric: z.enum(OBJECTIVE_METRICS), mode: z.enum(['max', 'min']) }),
  createdAt: time.optional(),
  updatedAt: time.optional(),
  status: z.string(),
  trials: z.array(
    z.object({
      id: z.string(),
      params,
      status: z.string(),
      jobId: z.string().optional(),
      epoch: num.optional(),
      metrics: metrics.optional(),
      history: z.array(epochLogs),
      cost: cost.optional(),
      error: errorField.optional(),
    }),
  ),
});

const jobRecord = z.object({
  jobId: z.string(),
  params,
  status: z.string(),
  startedAt: time.optional(),
  updatedAt: time.optional(),
  history: z.array(epochLogs),
  metrics: metrics.optional(),
  cost: cost.optional(),
  error: errorField.optional(),
});

const searchStateKey = (id: string): string => `searches/${id}/state.json`;
const jobRecordKey = (id: string): string => `jobs/${id}/record.json`;

/** Loads a search (preferred) or a job by id from `objects`. */
export async function loadReportData(objects: ObjectStore, id: string, storeName: string = objects.url): Promise<ReportData> {
  // A '/' or '..' would read some other key; say so instead of a confusing not-found.
  if (!/^[A-Za-z0-9._-]+$/.test(id) || id === '.' || id === '..') {
    throw new ReportError('REPORT_BAD_ID', `report id '${id}' is not a search or job id (expected letters, digits, '.', '_' or '-')`);
  }
  const sKey = searchStateKey(id);
  const state = await objects.get(sKey);
  if (state) return fromSearch(parse(searchState, state, sKey), `${sKey} in ${storeName}`);
  const jKey = jobRecordKey(id);
  const record = await objects.get(jKey);
  if (record) return fromJob(parse(jobRecord, record, jKey), `${jKey} in ${storeName}`);
  throw new ReportError('REPORT_NOT_FOUND', `no search or job '${id}' in ${objects.url}: tried ${sKey} and ${jKey}`);
}

function parse<T>(schema: z.ZodType<T>, bytes: Uint8Array, key: string): T {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new ReportError('REPORT_BAD_RECORD', `${key} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  const r = schema.safeParse(json);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new ReportError('REPORT_BAD_RECORD', `${key}: field '${fieldPath(issue.path)}' ${issue.message}`);
}

/** ['trials', 2, 'history', 0, 'testLoss'] -> 'trials[2].history[0].testLoss' */
function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/** 'lr=0.1, batchSize=32'; strings bare, everything else as JSON. */
function paramsLabel(p: Record<string, unknown>): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v))}`)
    .join(', ');
}

function timeText(t: string | number | undefined): string | undefined {
  if (t === undefined) return undefined;
  return typeof t === 'number' ? new Date(t).toISOString() : t;
}

function errorText(e: z.infer<typeof errorField> | undefined): string | undefined {
  return e === undefined ? undefined : typeof e === 'string' ? e : e.message;
}

function runOf(r: {
  id: string;
  params: Record<string, unknown>;
  status: string;
  history: ReportPoint[];
  metrics?: ReportMetrics | undefined;
  cost?: z.infer<typeof cost> | undefined;
  jobId?: string | undefined;
  error?: z.infer<typeof errorField> | undefined;
}): ReportRun {
  const error = errorText(r.error);
  return {
    id: r.id,
    label: paramsLabel(r.params),
    status: r.status,
    history: r.history,
    ...(r.metrics ? { metrics: r.metrics } : {}),
    ...(r.cost ? { costUsd: r.cost.usd } : {}),
    ...(r.cost?.workerSeconds !== undefined ? { workerSeconds: r.cost.workerSeconds } : {}),
    ...(r.jobId ? { jobId: r.jobId } : {}),
    ...(error ? { error } : {}),
  };
}

function fromSearch(s: z.infer<typeof searchState>, source: string): ReportData {
  const createdAt = timeText(s.createdAt);
  const updatedAt = timeText(s.updatedAt);
  return {
    title: `${s.kind === 'grid' ? 'Grid' : 'Random'} search ${s.searchId}`,
    kind: 'search',
    id: s.searchId,
    source,
    status: s.status,
    objective: s.objective,
    ...(s.trials.length > 0 && s.trials.every((t) => isLossOnlyModel(t.params.model)) ? { accuracy: false } : {}),
    ...(createdAt ? { createdAt } : {}),
    ...(updatedAt ? { updatedAt } : {}),
    runs: s.trials.map((t) => runOf(t)),
  };
}

function fromJob(j: z.infer<typeof jobRecord>, source: string): ReportData {
  const createdAt = timeText(j.startedAt);
  const updatedAt = timeText(j.updatedAt);
  return {
    title: `Training job ${j.jobId}`,
    kind: 'job',
    id: j.jobId,
    source,
    status: j.status,
    ...(isLossOnlyModel(j.params.model) ? { objective: { metric: 'testLoss', mode: 'min' }, accuracy: false } : { objective: { metric: 'testAccuracy', mode: 'max' } }),
    ...(createdAt ? { createdAt } : {}),
    ...(updatedAt ? { updatedAt } : {}),
    runs: [runOf({ ...j, id: j.jobId })],
  };
}
