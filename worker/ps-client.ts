/**
 * The parameter-server connection of an async-sgd worker: the ps channel's server, or the shards
 * listed in task.psShards. Counted into the worker's channel statistics by the caller.
 */
import { parseChannelSpec, parseChannelUrl, type ChannelSpec } from '../channels/index.js';
import { ParamClient, PsError, ShardedParamClient } from '../paramserver/index.js';
import type { PsModelClient } from './sync-ps.js';
import { WorkerTrainError, type TrainEvent } from './train-common.js';

interface WorkerPsClient extends PsModelClient {
  /** `launch`: generation * 1000 + attempt, registered once ever (a second delivery of one launch is refused). */
  register(task: string, rank: number, launch: number): Promise<void>;
  close(): Promise<void>;
}

function psSpecOf(event: TrainEvent, rank: number): Extract<ChannelSpec, { kind: 'ps' }> {
  const raw = event.endpoints.channel;
  if (raw === undefined) throw new WorkerTrainError('TRAIN_NO_CHANNEL', rank, `async-sgd needs a parameter server, but event.endpoints.channel is not set`);
  const spec = typeof raw === 'string' ? parseChannelUrl(raw) : parseChannelSpec(raw, 'event.endpoints.channel');
  if (spec.kind !== 'ps') throw new WorkerTrainError('TRAIN_MODEL_SPEC', rank, `async-sgd keeps the model on a parameter server: the channel must be 'ps', not '${spec.kind}'`);
  return spec;
}

export async function openPsModelClient(event: TrainEvent, rank: number): Promise<WorkerPsClient> {
  const spec = psSpecOf(event, rank);
  const opts = { timeoutMs: spec.timeoutMs, ...(spec.token ? { token: spec.token } : {}) };
  const shards = event.task.psShards;
  // Control keys (stop and done flags) and registrations live on one server: the channel's; the
  // model may be spread over shards.
  // A server restarting (e.g. from a snapshot) takes a moment: retry with back-off, bounded by its timeout.
  const control = await connectWithRetry(spec.address, opts);
  let model: ParamClient | ShardedParamClient = control;
  try {
    if (shards && (shards.length > 1 || shards[0] !== spec.address)) model = await ShardedParamClient.connect(shards, opts);
  } catch (err) {
    await control.close();
    throw err;
  }
  return {
    createModel: async (n, c, i) => void (await model.createModel(n, c, i)),
    push: async (n, g) => void (await model.push(n, g)),
    pullSparse: (n, idx, o) => model.pullSparse(n, idx, o),
    pullFull: (n, o) => model.pullFull(n, o),
    set: (k, v) => control.set(k, v),
    get: (k) => control.get(k),
    wait: (k, t) => control.wait(k, t),
    async register(task, r, launch) {
      try {
        await control.register(task, r, launch);
      } catch (err) {
        if (err instanceof PsError && err.code === 'PS_CONFLICT') {
          throw new WorkerTrainError('TRAIN_DUPLICATE', rank, `launch ${launch} of rank ${r} of job ${task} is already running (a duplicate invocation); this one exits`, { cause: err, causeCode: err.code });
        }
        throw err;
      }
    },
    async close() {
      await Promise.allSettled([control.close(), model === control ? undefined : model.close()]);
    },
  };
}

async function connectWithRetry(address: string, opts: { timeoutMs: number; token?: string }): Promise<ParamClient> {
  const deadline = Date.now() + opts.timeoutMs;
  for (let delay = 50; ; delay = Math.min(1_000, delay * 2)) {
    try {
      return await ParamClient.connect(address, opts);
    } catch (err) {
      if (Date.now() + delay >= deadline) throw err;
      await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
    }
  }
}
