/**
 * Making a bench child's CPU count in full: the kernel adds a child's CPU time, and that of its
 * waited-for descendants (workers, spares, servers it started), to its parent's once the child has
 * been waited for (client/cpu.ts, reapedChildrenCpuSeconds). A child therefore waits for its own
 * children before it exits.
 */
import { readFileSync } from 'node:fs';

/** Live children of this process (Linux; [] where /proc cannot tell). */
function liveChildren(): string[] {
  try {
    return readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Waits (up to `deadlineMs`) until every child of this process has exited and been waited for, so
 * that their CPU reaches this process's cutime before it exits itself (a child still alive at our
 * exit would be re-parented to init, and its CPU counted nowhere).
 */
export async function awaitChildrenReaped(deadlineMs = 5_000): Promise<string[]> {
  const end = Date.now() + deadlineMs;
  let live = liveChildren();
  while (live.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    live = liveChildren();
  }
  return live;
}
