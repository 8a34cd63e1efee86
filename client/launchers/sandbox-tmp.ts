/**
 * A /tmp of its own for each local worker, as each Lambda sandbox has: the worker's TMPDIR points
 * into a directory made for its process and removed when the process ends, whatever ended it (a
 * kill -9 mid-write included), and at the latest when the client exits. So a killed worker's
 * scratch files (a preprocessing chunk, say) never pile up in the machine's /tmp.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { makeOwnedTmpDir } from '../owned-tmp.js';

const live = new Set<string>();
let hooked = false;

/**
 * Makes a worker's temp dir (its name carries the client's pid, so the dirs of a client killed with
 * kill -9 are swept by the next one); pass it as TMPDIR and hand the child to removeWhenGone().
 */
export function makeWorkerTmp(): string {
  const dir = makeOwnedTmpDir('cirrus-worker-tmp-');
  live.add(dir);
  if (!hooked) {
    hooked = true;
    // 'exit' handlers are synchronous: whatever the children did not clean up goes now.
    process.on('exit', () => {
      for (const d of live) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

/** Removes `dir` once `child` has exited (or failed to start). */
export function removeWhenGone(child: ChildProcess, dir: string): void {
  const remove = (): void => {
    if (!live.delete(dir)) return;
    rmSync(dir, { recursive: true, force: true });
  };
  child.once('exit', remove);
  child.once('error', remove);
}
