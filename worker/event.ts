/**
 * The worker event: everything a stateless worker gets, as small plain JSON (keys, not data, so it
 * fits Lambda's payload limit). Validated with zod on entry; a bad event fails with one error
 * naming the offending field.
 */
import { z } from 'zod';
import { CirrusError } from '../paramserver/index.js';
import { channelSpec, s3Spec } from '../channels/spec.js';

export class EventError extends CirrusError<'EVENT_INVALID'> {
  /** Dotted path of the offending field, e.g. 'event.task.shards[0]'. */
  readonly field: string;
  constructor(field: string, message: string) {
    super('EVENT_INVALID', `${field}: ${message}`);
    this.field = field;
  }
}

const objectKey = z.string().min(1, { message: 'expected a non-empty object key' });

/** Reads shards and returns their merged partial column statistics. */
const datasetStatsTask = z
  .object({
    type: z.literal('dataset-stats'),
    shards: z.array(objectKey).min(1, { message: 'expected at least one shard key' }),
  })
  .strict();

export const transformOp = z.discriminatedUnion('type', [
  z.object({ type: z.literal('minmax'), lo: z.number().finite(), hi: z.number().finite() }).strict(),
  z.object({ type: z.literal('zscore') }).strict(),
]);
export type TransformOp = z.infer<typeof transformOp>;

/** Reads shards, scales them with global statistics stored at statsKey, writes each to its target key. */
const datasetTransformTask = z
  .object({
    type: z.literal('dataset-transform'),
    op: transformOp,
    /** Object holding the global statistics as JSON ({count, min, max, mean, std}): too big for the event itself. */
    statsKey: objectKey,
    shards: z.array(z.object({ source: objectKey, target: objectKey }).strict()).min(1, { message: 'expected at least one shard' }),
    /** Also return the statistics of the written shards (the new dataset's own statistics). */
    outputStats: z.boolean().default(false),
  })
  .strict();

/**
 * Parses raw line-aligned chunks of an input file (gzip objects) into shards of one run, hashing
 * features; the client publishes the manifest once every chunk is done (client/preprocess/distributed.ts).
 */
export const datasetParseTask = z
  .object({
    type: z.literal('dataset-parse'),
    format: z.enum(['csv', 'criteo', 'libsvm']),
    /** Dataset name and run id: shards go to datasets/<name>/<runId>/<split>/<chunk>-<n>.shard. */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, { message: 'expected a dataset name' }),
    runId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, { message: 'expected a run id' }),
    /** The original input file, for error messages. */
    source: z.string().min(1),
    /** firstLine: the input file's line number of the chunk's first line. */
    chunks: z
      .array(z.object({ key: objectKey, index: z.number().int().nonnegative(), firstLine: z.number().int().positive() }).strict())
      .min(1, { message: 'expected at least one chunk' }),
    /** CSV header line, prepended to every chunk (chunks hold data lines only). */
    header: z.string().optional(),
    hash: z
      .object({ columns: z.array(z.string()), bits: z.number().int().min(1).max(30), bias: z.boolean().optional(), seed: z.number().int().optional() })
      .strict()
      .optional(),
    labelColumn: z.union([z.string(), z.number().int()]).optional(),
    task: z.enum(['binary', 'multiclass', 'regression']).optional(),
    classes: z.number().int().positive().optional(),
    /** libsvm feature space (the client scans it so every chunk agrees). */
    features: z.number().int().positive().optional(),
    zeroBased: z.boolean().optional(),
    split: z.number().min(0).max(1),
    /** Base seed; each chunk derives its own from (seed, chunk index). */
    seed: z.number().int(),
    rowsPerShard: z.number().int().positive().optional(),
  })
  .strict();
export type DatasetParseTask = z.infer<typeof datasetParseTask>;

const modelSpecSchema = z
  .object({
    type: z.enum(['sparse-lr', 'dense-lr', 'svm', 'softmax', 'mlp', 'kmeans', 'mf']),
    features: z.number().int().positive(),
    classes: z.number().int().min(2),
    hidden: z.array(z.number().int().positive()).optional(),
    clusters: z.number().int().positive().optional(),
    init: z.enum(['kmeans++', 'random']).optional(),
    users: z.number().int().positive().optional(),
    items: z.number().int().positive().optional(),
    rank: z.number().int().positive().optional(),
    reg: z.number().min(0).optional(),
  })
  .strict();

const optimizerSpecSchema = z
  .object({
    type: z.enum(['sgd', 'momentum', 'adagrad', 'adam']),
    lr: z.number().positive(),
    momentum: z.number().min(0).max(1).optional(),
    beta1: z.number().min(0).max(1).optional(),
    beta2: z.number().min(0).max(1).optional(),
    eps: z.number().positive().optional(),
  })
  .strict();

/**
 * Train on this rank's share of a dataset. GA-SGD exchanges gradients every batch; MA-SGD averages
 * models every `averageEvery` batches (0 = once per epoch). BSP: every rank takes part in every
 * round. ASP: no barrier; each rank publishes its cumulative update and waits only when it would
 * get more than `staleness` steps ahead of the slowest rank. async-sgd: the model lives on the
 * parameter server, which applies each worker's sparse update as it arrives (worker/sync-ps.ts).
 */
export const trainTask = z
  .object({
    type: z.literal('train'),
    dataset: z.string().min(1),
    model: modelSpecSchema,
    /** lloyd: k-means iterations, one per epoch (worker/train-lloyd.ts). */
    algorithm: z.enum(['ga-sgd', 'ma-sgd', 'async-sgd', 'lloyd', 'admm']),
    /** MLLess's significance filter (async-sgd, GA-SGD): 0 sends every update; > 0 is the initial relative threshold. */
    filterThreshold: z.number().min(0).default(0),
    /** admm: the penalty rho of the augmented Lagrangian, and the local SGD passes per round. */
    rho: z.number().positive().default(1),
    admmPasses: z.number().int().positive().default(2),
    /** 'async' (Hogwild on the parameter server) is for async-sgd only. */
    sync: z.enum(['bsp', 'asp', 'async']),
    collective: z.enum(['allreduce', 'scatterreduce']),
    epochs: z.number().int().positive(),
    batchSize: z.number().int().positive(),
    optimizer: optimizerSpecSchema,
    l2: z.number().min(0),
    seed: z.number().int(),
    averageEvery: z.number().int().nonnegative().default(0),
    staleness: z.number().int().nonnegative().default(4),
    readAhead: z.number().int().nonnegative().default(2),
    order: z.enum(['random', 'sequential']).default('random'),
    /** Rank 0 publishes the model for the client's evaluation every this many batches (0 = every epoch). */
    publishEvery: z.number().int().nonnegative().default(0),
    /** Generation number (0 first): a launch of every rank; it names the generation's collective keys. */
    generation: z.number().int().nonnegative().default(0),
    /** Resume from this checkpoint id of this rank (worker/checkpoint.ts); absent: start from the seed. */
    resumeFrom: z.number().int().nonnegative().optional(),
    /** Checkpoint every this many ms (BSP: the ranks agree on the round); 0: only before the deadline. */
    checkpointEveryMs: z.number().int().nonnegative().default(0),
    /** Set by a supervisor: claim the launch, hold a lease by heartbeat, write only while owning the rank (worker/lease.ts). */
    lease: z
      .object({
        leaseMs: z.number().int().positive(),
        heartbeatMs: z.number().int().positive(),
        claimTimeoutMs: z.number().int().positive(),
      })
      .strict()
      .optional(),
    /** Stop and checkpoint this long before deadlineMs. */
    checkpointMarginMs: z.number().int().nonnegative().default(5_000),
    /**
     * async-sgd: the parameter-server shards holding the model ('host:port' each, index ranges in
     * this order); default: the ps channel's own server.
     */
    psShards: z.array(z.string().min(1)).min(1).optional(),
    /** Longest wait for other ranks in one round. */
    roundTimeoutMs: z.number().int().positive().default(120_000),
  })
  .strict();
export type TrainTask = z.infer<typeof trainTask>;

const workerTask = z.discriminatedUnion('type', [datasetStatsTask, datasetTransformTask, datasetParseTask, trainTask]);
export type WorkerTask = z.infer<typeof workerTask>;
export const TASK_TYPES = ['dataset-stats', 'dataset-transform', 'dataset-parse', 'train'] as const;

/** The event around a task schema: the production tasks here, extra ones in test handlers. */
export function eventSchema<T extends z.ZodType>(task: T) {
  return z
    .object({
      jobId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { message: "expected 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit" }),
      rank: z.number().int().nonnegative(),
      world: z.number().int().positive(),
      attempt: z.number().int().nonnegative(),
      /** Epoch ms by which the worker must be done. */
      deadlineMs: z.number().int().positive(),
      task,
      params: z.record(z.string(), z.unknown()).default({}),
      endpoints: z
        .object({
          /** An object store URL ('s3://...', 'file:///...') or an S3 spec object. */
          store: z.union([z.string().min(1), s3Spec]),
          channel: z.union([z.string().min(1), channelSpec]).optional(),
        })
        .strict(),
    })
    .strict()
    .superRefine((e, ctx) => {
      if (e.rank >= e.world) ctx.addIssue({ code: 'custom', path: ['rank'], message: `rank ${e.rank} is outside the world of ${e.world} workers` });
    });
}

export const workerEvent = eventSchema(workerTask);

export type WorkerEvent = z.infer<typeof workerEvent>;
/** What a caller writes (defaults not yet applied). */
export type WorkerEventInput = z.input<typeof workerEvent>;

function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = 'event';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

/** Validates an event; throws EventError naming the first bad field. */
export function parseWorkerEvent(input: unknown): WorkerEvent {
  return parseEventWith(workerEvent, TASK_TYPES, input);
}

/** Validates an event against `schema`, whose tasks are `taskTypes`; throws EventError naming the first bad field. */
export function parseEventWith<S extends z.ZodType>(schema: S, taskTypes: readonly string[], input: unknown): z.infer<S> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new EventError('event', 'expected a JSON object');
  // A clear message for the most common mistake, before zod's generic union message.
  const task = (input as { task?: unknown }).task;
  const type = (task as { type?: unknown } | null | undefined)?.type;
  if (typeof task === 'object' && task !== null && !(taskTypes as readonly unknown[]).includes(type)) {
    throw new EventError('event.task.type', `unknown task type ${JSON.stringify(type)}; expected one of ${taskTypes.join(', ')}`);
  }
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  let path = issue.path;
  let message = issue.message;
  // Unrecognized keys: name the key itself.
  if (issue.code === 'unrecognized_keys') {
    path = [...path, issue.keys[0]!];
    message = 'unknown field';
  }
  throw new EventError(fieldPath(path), message);
}
