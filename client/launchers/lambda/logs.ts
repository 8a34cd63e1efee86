/**
 * Lambda's log tail (LogType=Tail: the last 4 KB of a synchronous invocation's log, base64): its
 * lines, and the REPORT line's init duration (the cold start) and peak memory.
 */

interface LogTail {
  /** The decoded tail, at most 4 KB (for a worker error's stderr). */
  text: string;
  /** REPORT's 'Init Duration' in ms (cold starts only). */
  initMs?: number;
  /** REPORT's 'Max Memory Used' in MB. */
  maxMemoryMb?: number;
}

/** Decodes the tail, hands each line to onLine, and reads the REPORT line. */
export function parseLogTail(logResult: string | undefined, onLine?: (line: string) => void): LogTail {
  if (!logResult) return { text: '' };
  const text = Buffer.from(logResult, 'base64').toString('utf8');
  const out: LogTail = { text: text.slice(-4096) };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    onLine?.(line);
    if (line.startsWith('REPORT ')) {
      const init = /Init Duration: ([\d.]+) ms/.exec(line);
      const mem = /Max Memory Used: (\d+) MB/.exec(line);
      if (init) out.initMs = Number(init[1]);
      if (mem) out.maxMemoryMb = Number(mem[1]);
    }
  }
  return out;
}
