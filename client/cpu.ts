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

/** The user + system CPU seconds of process `pid` so far, or undefined where /proc cannot tell (not Linux, gone). */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, so 12 and 13 after the name.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / CLK_TCK : undefined;
  } catch {
    return undefined;
  }
}
