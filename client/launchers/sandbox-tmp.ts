/**
 * A /tmp of its own for each local worker, as each Lambda sandbox has: the worker's TMPDIR points
 * into a directory made for its process and removed when the process ends, whatever ended it (a
 * kill -9 mid-write included), and at the latest when the client exits. So a killed worker's
 * scratch files (a preprocessing chunk, say) never pile up in the machine's /tmp.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../process-alive.js';

const PREFIX = 'cirrus-worker-tmp-';
const live = new Set<string>();
let hooked = false;

/**
 * Removes the dirs of launchers that died without cleaning up (a client killed with SIGKILL: its
 * workers exit on their own and remove theirs, but not the spares that never ran). The launcher's
 * pid is in each dir's name.
 */
function sweepDeadLaunchers(): void {
  for (const entry of readdirSync(tmpdir())) {
    const pid = new RegExp(`^${PREFIX}(\\d+)-`).exec(entry)?.[1];
    if (pid !== undefined && !processAlive(Number(pid))) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
}

/** Makes a worker's temp dir; pass it as TMPDIR and hand the child to removeWhenGone(). */
export function makeWorkerTmp(): string {
  if (!hooked) sweepDeadLaunchers();
  const dir = mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`));
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
