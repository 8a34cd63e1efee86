/**
 * `cirrus.train(params)` parameters, validated with zod. Every error names its field and what is
 * allowed. Names follow tfjs where they fit (epochs, batchSize).
 */
import { z } from 'zod';
import { SPARSE_GRADIENT_MODELS } from '../algorithms/index.js';
import { parseAddress, CirrusError } from '../paramserver/index.js';

const MODEL_TYPES = ['sparse-lr', 'dense-lr', 'svm', 'softmax', 'mlp', 'kmeans', 'mf'] as const;

const launcherSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('local'),
      /** Memory cap per worker in MB (Lambda: 128-10240). */
      memoryMb: z.number().int().min(128).max(10240).default(2048),
      /** Time limit per worker generation in seconds (Lambda: at most 900). */
      timeoutS: z.number().positive().max(900).default(900),
      /** Workers running at once (default: all of them; BSP needs every worker running). */
      concurrency: z.number().int().positive().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('lambda'),
      functionName: z.string().min(1),
      region: z.string().min(1).optional(),
      endpoint: z.url().optional(),
      /** Default: the deployed function's MemorySize; when set it must equal it. */
      memoryMb: z.number().int().min(128).max(10240).optional(),
      /** Default: the deployed function's Timeout; when set it must not exceed it. */
      timeoutS: z.number().positive().max(900).optional(),
      concurrency: z.number().int().positive().optional(),
    })
    .strict(),
]);

export const trainParamsSchema = z
  .object({
    /** Dataset name in the object store (see `cirrus preprocess`). */
    dataset: z.string().min(1, { message: 'expected a dataset name' }),
    /** Object store URL; default: the embedded S3 server under .cirrus/. */
    store: z.string().min(1).optional(),
    model: z.enum(MODEL_TYPES),
    /** MLP hidden layer widths. */
    hidden: z.array(z.number().int().positive()).min(1).default([128]),
    /** mf: the rank of the user and item factors. */
    factors: z.number().int().min(1).max(1000).default(10),
    /** kmeans: the number of clusters k. */
    clusters: z.number().int().min(1).max(100_000).default(10),
    /** kmeans: the first centroids, k-means++ or k distinct random rows (seeded either way). */
    init: z.enum(['kmeans++', 'random']).default('kmeans++'),
    /**
     * async-sgd: the model lives on the parameter server; workers pull and push only the weights
     * their batch touches. lloyd: k-means iterations (one per epoch); the default for kmeans.
     */
    algorithm: z.enum(['ga-sgd', 'ma-sgd', 'async-sgd', 'lloyd', 'admm']).default('ga-sgd'),
    /**
     * MLLess's significance filter (async-sgd and GA-SGD): each worker accumulates its update and
     * sends only coordinates whose accumulated step exceeds this fraction of the weight (decaying as
     * 1/sqrt(1 + epoch)); 0 sends everything.
     */
    filterThreshold: z.number().min(0).default(0),
    /** admm: the augmented Lagrangian's penalty rho (consensus ADMM, LambdaML's form). */
    rho: z.number().positive({ message: 'expected rho > 0' }).default(1),
    /** admm: local SGD passes over the worker's shards per round (one round per epoch). */
    admmPasses: z.number().int().min(1).max(100).default(2),
    /** 'async' (Hogwild: the server applies every push at once) is for async-sgd only. */
    sync: z.enum(['bsp', 'asp', 'async']).default('bsp'),
    /** 'ps' (the embedded parameter server), 'memcached' (a private memcached), 's3' (the object store's S3), or a channel URL. */
    channel: z.string().min(1).default('ps'),
    /**
     * async-sgd: spread the model by index range over parameter-server shards. A number N: the
     * client starts N servers in-process on 127.0.0.1 and stops them at the end (1 = unset: the
     * model stays on the channel's server). An array of 'host:port' addresses: the shards of an
     * already running `npx cirrus ps --shards N`, in shard order; the client only drops the job's
     * model from them. Control keys stay on the channel's server either way.
     */
    psShards: z
      .union([z.number(), z.array(z.string())], { error: "expected a number of shards or an array of 'host:port' addresses" })
      .optional(),
    collective: z.enum(['allreduce', 'scatterreduce']).default('allreduce'),
    workers: z.number().int().min(1, { message: 'expected at least 1 worker' }).max(1000).default(2),
    epochs: z.number().int().min(1).max(100_000).default(5),
    batchSize: z.number().int().min(1).max(1_000_000).default(128),
    learningRate: z.number().positive({ message: 'expected a learning rate > 0' }).default(0.1),
    optimizer: z.enum(['sgd', 'momentum', 'adagrad', 'adam']).default('sgd'),
    momentum: z.number().min(0).max(1).optional(),
    l2: z.number().min(0, { message: 'expected an L2 coefficient >= 0' }).default(0),
    seed: z.number().int().default(0),
    /** MA-SGD: batches between model averages (0 = once per epoch). */
    averageEvery: z.number().int().nonnegative().default(0),
    /** ASP: how many steps a worker may run ahead of the slowest. */
    staleness: z.number().int().nonnegative().default(4),
    readAhead: z.number().int().nonnegative().max(64).default(2),
    /**
     * An address of this machine that workers on other hosts (Lambda) can reach: the servers this
     * client starts (the embedded store, parameter server, memcached, shards) listen there instead
     * of 127.0.0.1, and the parameter server then requires a token (generated per run).
     */
    advertise: z.string().min(1).optional(),
    launcher: launcherSchema.default({ type: 'local', memoryMb: 2048, timeoutS: 900 }),
    /** The client evaluates the newest model on the test split every `evaluateEvery` seconds and at every epoch. */
    evaluateEvery: z.number().positive().optional(),
    /** Rank 0 publishes the model every this many batches (0 = every epoch). */
    publishEvery: z.number().int().nonnegative().default(0),
    /** Workers checkpoint and return this long plus their measured step and checkpoint times before their time limit (default: 5% of it, at most 2 s). */
    checkpointMarginMs: z.number().int().nonnegative().optional(),
    /** Seconds between checkpoints in the object store (BSP: all ranks at one round); a lost worker costs at most this much work. 0: only at time limits. */
    checkpointEvery: z.number().nonnegative().default(5),
    /** Launches of one rank that may fail in a row without progress (a newer checkpoint) before the run fails. */
    maxAttempts: z.number().int().min(1).max(100).default(3),
    /** A worker whose heartbeat has not changed for this many seconds is replaced (a hang, a frozen host). */
    leaseSeconds: z.number().min(1).max(900).default(10),
    stop: z
      .object({
        targetAccuracy: z.number().min(0).max(1).optional(),
        targetLoss: z.number().positive().optional(),
        maxSeconds: z.number().positive().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

export type TrainParams = z.infer<typeof trainParamsSchema>;
export type TrainParamsInput = z.input<typeof trainParamsSchema>;

export type TrainErrorCode = 'TRAIN_PARAMS' | 'TRAIN_MISFIT' | 'TRAIN_WORKER_FAILED' | 'TRAIN_CHANNEL' | 'TRAIN_STOPPED' | 'TRAIN_ENDPOINT' | 'TRAIN_LAUNCHER' | 'TRAIN_DIVERGED';

/** The error a run reports (the worker's own is WorkerTrainError, which a failed rank's code names). */
export class TrainError extends CirrusError<TrainErrorCode> {}

/** The launcher's time and memory limits; a Lambda launcher's are filled from its function before a run starts. */
export function launcherLimits(p: TrainParams): { timeoutS: number; memoryMb: number } {
  const { timeoutS, memoryMb } = p.launcher;
  if (timeoutS === undefined || memoryMb === undefined) throw new TrainError('TRAIN_LAUNCHER', `params.launcher: the limits of Lambda function '${p.launcher.type === 'lambda' ? p.launcher.functionName : ''}' were not read before the run`);
  return { timeoutS, memoryMb };
}

/** Most in-process shards a run may start: more servers than this only add connections per worker. */
const MAX_PS_SHARDS = 64;

/** psShards: only for async-sgd; a count in 1..MAX_PS_SHARDS, or distinct valid addresses. */
function psShardsProblem(p: TrainParams): string | undefined {
  const shards = p.psShards;
  if (shards === undefined) return undefined;
  if (p.algorithm !== 'async-sgd') return `params.psShards: only async-sgd keeps its model on parameter servers, not ${p.algorithm}`;
  if (typeof shards === 'number') {
    if (!Number.isInteger(shards) || shards < 1 || shards > MAX_PS_SHARDS) return `params.psShards: expected a whole number of shards from 1 to ${MAX_PS_SHARDS} (or an array of 'host:port' addresses), got ${shards}`;
    return undefined;
  }
  if (shards.length === 0) return "params.psShards: expected at least one 'host:port' address, got an empty array";
  for (let i = 0; i < shards.length; i++) {
    try {
      parseAddress(shards[i]!);
    } catch (e) {
      return `params.psShards[${i}]: ${(e as Error).message}`;
    }
    // Two slices of one model under the same name on one server would collide.
    const first = shards.indexOf(shards[i]!);
    if (first < i) return `params.psShards[${i}]: '${shards[i]}' is listed twice (also at [${first}]); every shard needs its own server`;
  }
  return undefined;
}

/** Rules across fields, checked after each field is valid on its own. */
function crossFieldProblem(p: TrainParams): string | undefined {
  if (p.model === 'kmeans' && p.algorithm !== 'lloyd') return `params.algorithm: kmeans trains with 'lloyd', not ${p.algorithm}`;
  if (p.filterThreshold > 0 && p.algorithm !== 'async-sgd' && p.algorithm !== 'ga-sgd') return `params.filterThreshold: the significance filter works with async-sgd and ga-sgd, not ${p.algorithm}`;
  if (p.algorithm === 'admm') {
    if (!['sparse-lr', 'dense-lr', 'svm', 'softmax'].includes(p.model)) return `params.algorithm: admm trains the linear models (sparse-lr, dense-lr, svm, softmax), not ${p.model}`;
    if (p.sync !== 'bsp') return `params.sync: 'admm' runs under 'bsp' (every round needs every worker's model), not '${p.sync}'`;
  }
  if (p.algorithm === 'lloyd') {
    if (p.model !== 'kmeans') return `params.algorithm: 'lloyd' trains kmeans models, not ${p.model}`;
    if (p.sync !== 'bsp') return `params.sync: 'lloyd' runs under 'bsp' (every iteration needs every worker's sums), not '${p.sync}'`;
  }
  if (p.algorithm === 'async-sgd') {
    if (!SPARSE_GRADIENT_MODELS.includes(p.model)) return `params.algorithm: async-sgd pushes sparse gradients, which ${p.model} does not have; use sparse-lr, svm or softmax, or algorithm ga-sgd`;
    if (p.channel !== 'ps' && !p.channel.startsWith('ps://')) return `params.channel: async-sgd keeps the model on a parameter server, so the channel must be 'ps' or a ps:// URL, not '${p.channel}'`;
  } else if (p.sync === 'async') {
    return `params.sync: 'async' needs algorithm 'async-sgd' (the parameter server applies the updates); ${p.algorithm} runs under 'bsp' or 'asp'`;
  }
  return psShardsProblem(p);
}

/** Validates params; the error names the first bad field ('params.workers: expected ...'). */
export function parseTrainParams(input: unknown): TrainParams {
  // Each model's own algorithm is its default (kmeans: lloyd); ga-sgd for the rest.
  if (typeof input === 'object' && input !== null && (input as { model?: unknown }).model === 'kmeans' && (input as { algorithm?: unknown }).algorithm === undefined) {
    input = { ...input, algorithm: 'lloyd' };
  }
  const r = trainParamsSchema.safeParse(input);
  if (r.success) {
    const problem = crossFieldProblem(r.data);
    if (problem) throw new TrainError('TRAIN_PARAMS', problem);
    return r.data;
  }
  const issue = r.error.issues[0]!;
  const path = ['params', ...issue.path.map(String)].join('.');
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown parameter(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}; allowed: ${Object.keys(trainParamsSchema.shape).join(', ')}`;
  throw new TrainError('TRAIN_PARAMS', `${path}: ${message}`);
}

/**
 * Applies `--set key=value` overrides (dotted keys into nested objects; values parsed as JSON
 * when they parse, else kept as strings).
 */
type ZodShape = Record<string, z.ZodType>;

/** The schema's default for a missing object (a copy), if it has one. */
function defaultOf(schema: z.ZodType | undefined): Record<string, unknown> | undefined {
  const r = schema?.safeParse(undefined);
  return r?.success && typeof r.data === 'object' && r.data !== null ? structuredClone(r.data as Record<string, unknown>) : undefined;
}

/** The object shape under defaults and optionals, to follow deeper keys. */
function shapeOf(schema: z.ZodType | undefined): ZodShape | undefined {
  let s: unknown = schema;
  for (let i = 0; i < 5 && s; i++) {
    if (s instanceof z.ZodObject) return s.shape as ZodShape;
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = (s as z.ZodDefault<z.ZodType>).unwrap();
    else return undefined;
  }
  return undefined;
}

export function applyOverrides(params: Record<string, unknown>, sets: string[]): Record<string, unknown> {
  const out = structuredClone(params);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new TrainError('TRAIN_PARAMS', `--set '${s}': expected key=value`);
    const path = s.slice(0, eq).split('.');
    let value: unknown = s.slice(eq + 1);
    try {
      value = JSON.parse(value as string);
    } catch {
      // a bare string such as --set model=softmax
    }
    let node = out as Record<string, unknown>;
    let shape: ZodShape | undefined = trainParamsSchema.shape as ZodShape;
    for (const p of path.slice(0, -1)) {
      // A nested key of an object the config leaves out starts from that object's defaults
      // (--set launcher.timeoutS=60 keeps launcher.type 'local' and its memory).
      if (typeof node[p] !== 'object' || node[p] === null) node[p] = defaultOf(shape?.[p]) ?? {};
      node = node[p] as Record<string, unknown>;
      shape = shapeOf(shape?.[p]);
    }
    node[path[path.length - 1]!] = value;
  }
  return out;
}
