/**
 * Runs a training job's workers under the supervisor: BSP rolls every rank back to the committed
 * checkpoint, ASP and async-sgd relaunch only the lost rank; a sentinel key on the channel tells
 * a channel server that lost the job's state (restarted, flushed) or stopped answering.
 */
import type { ModelSpec } from '../../algorithms/index.js';
import { type Channel, jobKey } from '../../channels/index.js';
import type { Launcher } from '../launchers/types.js';
import type { TrainParams } from '../train-params.js';
import { Supervisor, type RelaunchRecord, type SuperviseResult } from './supervise.js';
import { trainEvent, type JobEndpoints } from './worker-event.js';

interface SuperviseHooks {
  tick(): Promise<string | undefined>;
  onGeneration?(generation: number): void;
  onRelaunch?(r: RelaunchRecord): void;
}

export const sentinelKey = (jobId: string) => jobKey(jobId, 'sentinel');

/** How long the sentinel check may take before the channel counts as hung. */
const HEALTH_TIMEOUT_MS = 3_000;

export async function supervise(params: TrainParams, spec: ModelSpec, jobId: string, at: JobEndpoints, launcher: Launcher, channel: Channel, hooks: SuperviseHooks): Promise<SuperviseResult> {
  const sentinel = sentinelKey(jobId);
  const mark = new Uint8Array([1]);
  await channel.put(sentinel, mark);
  const channelHealth = async (): Promise<string | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`${channel.endpoint} did not answer within ${HEALTH_TIMEOUT_MS} ms`), HEALTH_TIMEOUT_MS)));
    const check = (async () => {
      if ((await channel.get(sentinel)) !== undefined) return undefined;
      // The server answers but forgot the job (restarted or flushed): mark it again for the next check.
      await channel.put(sentinel, mark);
      return `${channel.endpoint} lost the job's keys (the server restarted or was flushed)`;
    })().catch((e: unknown) => `${channel.endpoint} failed: ${e instanceof Error ? e.message : String(e)}`);
    try {
      return await Promise.race([check, hung]);
    } finally {
      clearTimeout(timer);
    }
  };
  const supervisor = new Supervisor({
    jobId,
    world: params.workers,
    launcher,
    store: at.store.objects,
    // BSP is deterministic from a common checkpoint; the others continue from each rank's own.
    recovery: params.sync === 'bsp' && params.algorithm !== 'async-sgd' ? 'rollback' : 'rank',
    leaseMs: Math.round(params.leaseSeconds * 1000),
    maxAttempts: params.maxAttempts,
    event: (l) => trainEvent(params, spec, jobId, at, l),
    tick: hooks.tick,
    channelHealth,
    ...(hooks.onGeneration ? { onGeneration: hooks.onGeneration } : {}),
    ...(hooks.onRelaunch ? { onRelaunch: hooks.onRelaunch } : {}),
  });
  return supervisor.run();
}
