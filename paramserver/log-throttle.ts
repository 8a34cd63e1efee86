/**
 * The server's log, rate-limited: a client that floods the server with bad requests must not be
 * able to fill a disk through its log.
 */

/** Log lines allowed per window; the rest are counted and summarised in one line. */
const LOG_BURST = 100;
const LOG_WINDOW_MS = 10_000;

export class LogThrottle {
  private windowStart = 0;
  private lines = 0;
  private suppressed = 0;

  /** `sink` receives the lines let through; without one, log() does nothing. */
  constructor(private readonly sink: ((line: string) => void) | undefined) {}

  /** One line to the sink, at most LOG_BURST per window. */
  log(line: string): void {
    if (!this.sink) return;
    const now = Date.now();
    if (now - this.windowStart >= LOG_WINDOW_MS) {
      if (this.suppressed > 0) this.sink(`(${this.suppressed} log lines suppressed in the last ${LOG_WINDOW_MS} ms)`);
      this.windowStart = now;
      this.lines = 0;
      this.suppressed = 0;
    }
    if (this.lines >= LOG_BURST) {
      this.suppressed++;
      return;
    }
    this.lines++;
    this.sink(line);
  }
}
