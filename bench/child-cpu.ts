/**
 * CPU-seconds of every process a bench's child started, from the kernel's own accounting: once a
 * child has been waited for, its CPU time and that of all its waited-for descendants (workers,
 * spares, servers it started) is added to this process's cutime + cstime (/proc/self/stat). The
 * difference across one child's run is then the whole run's CPU, whatever the child reports.
 */
import { readFileSync } from 'node:fs';

const CLK_TCK = 100;

/** CPU-seconds of this process's waited-for children so far (Linux; NaN elsewhere). */
export function reapedChildrenCpuSeconds(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // cutime and cstime are fields 16 and 17 of the line, so 14 and 15 after the name.
    return (Number(fields[13]) + Number(fields[14])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

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
