/**
 * Step 6 of a run, clean up: every run removes what it made, whether it succeeds or fails. Each
 * step that starts or writes something registers how to undo it here; the undo runs in reverse
 * order (launcher and workers first, then keys, channel, servers, store), and one failing undo
 * does not stop the others. What a killed client left is swept by the next run (job/clean.ts).
 */
import { jobPrefix, aspKey, epochModelKey, finalModelKey, modelLatestKey, progressKey, type Channel, type ObjectStore } from '../../channels/index.js';
import { sentinelKey } from './run-workers.js';

export class Cleanup {
  private readonly undo: Array<() => Promise<void>> = [];

  /** Registers an undo; undos run last-registered first. */
  add(step: () => Promise<void>): void {
    this.undo.push(step);
  }

  /** Runs every undo once, newest first; never throws. */
  async run(): Promise<void> {
    const steps = this.undo.splice(0).reverse();
    for (const step of steps) await Promise.resolve().then(step).catch(() => undefined);
  }
}

/** Deletes everything the job wrote: by listing where the channel can, and by known keys; and its control records and checkpoints in the store. */
export async function removeJobKeys(channel: Channel, objects: ObjectStore, jobId: string, workers: number, epochs: number): Promise<void> {
  const keys = [modelLatestKey(jobId), finalModelKey(jobId), sentinelKey(jobId)];
  for (let e = 1; e <= epochs; e++) keys.push(epochModelKey(jobId, e));
  for (let r = 0; r < workers; r++) keys.push(progressKey(jobId, r), aspKey(jobId, r));
  if (channel.list) keys.push(...(await channel.list(jobPrefix(jobId))));
  await channel.delete([...new Set(keys)]);
  await objects.delete(await objects.list(jobPrefix(jobId)));
}
