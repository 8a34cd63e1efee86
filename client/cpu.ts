/**
 * CPU-seconds from the processes' own accounting: this process (process.cpuUsage) and other
 * processes the client started (Linux /proc/<pid>/stat utime + stime), for the run's CPU budget.
 */
import { readFileSync } from 'node:fs';

/** This process's user + system CPU time in seconds. */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Clock ticks per second of /proc's times: 100 on every Linux Node runs on. */
const CLK_TCK = 100;

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces), or undefined where /proc cannot tell. */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The user + system CPU seconds of process `pid` so far, or undefined where /proc cannot tell (not Linux, gone). */
export function processCpuSeconds(pid: number): number | undefined {
  const fields = statFields(pid);
  if (!fields) return undefined;
  // utime and stime are fields 14 and 15 of the line, so 12 and 13 after the name.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / CLK_TCK : undefined;
}

/**
 * CPU seconds of this process's waited-for children so far (Linux; NaN elsewhere): once a child
 * has been waited for, its CPU time and that of its waited-for descendants is added here.
 */
export function reapedChildrenCpuSeconds(): number {
  const fields = statFields('self');
  // cutime and cstime are fields 16 and 17 of the line, so 14 and 15 after the name.
  return fields ? (Number(fields[13]) + Number(fields[14])) / CLK_TCK : NaN;
}
