/**
 * Polling with back-off for stores that cannot notify (memcached, S3). The first polls go out
 * back to back (each one costs a network round trip, well under a millisecond on memcached), then
 * the delay grows geometrically with jitter up to a cap, and never sleeps past the deadline.
 */
import { WaitTimeoutError } from './errors.js';

export interface PollPolicy {
  /** For this long (ms) after the wait starts, polls go out back to back, each after the last answer. */
  eagerMs: number;
  /** First sleep, in ms. */
  initialDelayMs: number;
  /** Growth factor per sleep. */
  factor: number;
  /** Longest sleep, in ms. */
  maxDelayMs: number;
  /** Fraction of each delay randomised (0..1): 0.5 means the delay is drawn from [0.75d, 1.25d]. */
  jitter: number;
  /**
   * Optional: no sleep longer than this fraction of the time waited so far (but at least
   * initialDelayMs). Bounds the lateness a poll adds to a wait to that fraction of the wait.
   */
  maxDelayFraction?: number;
}

export const FAST_POLL: PollPolicy = { eagerMs: 3, initialDelayMs: 1, factor: 1.5, maxDelayMs: 10, jitter: 0.5 };
export const SLOW_POLL: PollPolicy = { eagerMs: 0, initialDelayMs: 4, factor: 1.6, maxDelayMs: 100, jitter: 0.5 };

export class Backoff {
  private readonly started = performance.now();
  private readonly eagerUntil: number;
  private delay: number;
  constructor(private readonly policy: PollPolicy) {
    this.delay = policy.initialDelayMs;
    this.eagerUntil = this.started + policy.eagerMs;
  }
  /** Sleeps before the next poll (or only yields to the event loop while still eager). */
  async pause(deadline: number): Promise<void> {
    if (performance.now() < this.eagerUntil) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return;
    }
    const j = this.policy.jitter;
    const f = this.policy.maxDelayFraction;
    const base = f === undefined ? this.delay : Math.min(this.delay, Math.max(this.policy.initialDelayMs, f * (performance.now() - this.started)));
    const wanted = base * (1 - j / 2 + Math.random() * j);
    this.delay = Math.min(this.policy.maxDelayMs, this.delay * this.policy.factor);
    const ms = Math.max(0, Math.min(wanted, deadline - Date.now()));
    if (ms < 1) await new Promise<void>((resolve) => setImmediate(resolve));
    else await new Promise<void>((resolve) => setTimeout(resolve, ms));
  }
}

/**
 * Polls `fetch` for the keys still missing until all are present or the deadline passes.
 * `fetch` returns one entry per requested key (undefined = not there yet).
 */
export async function pollMany(
  keys: string[],
  deadline: number,
  fetch: (keys: string[]) => Promise<Array<Uint8Array | undefined>>,
  policy: PollPolicy,
  channelName: string,
  onValue?: (index: number, value: Uint8Array) => void,
): Promise<Uint8Array[]> {
  const started = Date.now();
  const out: Array<Uint8Array | undefined> = new Array(keys.length);
  let missing = keys.map((_, i) => i);
  const backoff = new Backoff(policy);
  for (;;) {
    const got = await fetch(missing.map((i) => keys[i]!));
    const still: number[] = [];
    missing.forEach((index, j) => {
      const value = got[j];
      if (value === undefined) still.push(index);
      else {
        out[index] = value;
        onValue?.(index, value);
      }
    });
    missing = still;
    if (missing.length === 0) return out as Uint8Array[];
    if (Date.now() >= deadline) throw new WaitTimeoutError(missing.map((i) => keys[i]!), Date.now() - started, channelName);
    await backoff.pause(deadline);
  }
}
