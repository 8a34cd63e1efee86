/**
 * The launchers' concurrency cap: items start in launch order, at most `limit` at a time; an item
 * holds its slot until its start() promise settles. Both launchers emulate Lambda's account
 * concurrency limit with it.
 */
export class StartQueue<T> {
  private readonly waiting: T[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly limit: number,
    /** Starts one item; must not reject (errors are the item's own to report). */
    private readonly start: (item: T) => Promise<void>,
  ) {}

  /** Items holding a slot now (not counting waiting ones). */
  get active(): number {
    return this.inFlight.size;
  }

  push(item: T): void {
    this.waiting.push(item);
    this.pump();
  }

  /** Takes a waiting item out of line (a worker killed before it started). */
  remove(item: T): void {
    const i = this.waiting.indexOf(item);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** Starts nothing more; resolves once every start in flight has settled. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.inFlight]);
  }

  private pump(): void {
    while (!this.stopped && this.inFlight.size < this.limit && this.waiting.length > 0) {
      const item = this.waiting.shift()!;
      const p: Promise<void> = this.start(item).then(() => {
        this.inFlight.delete(p);
        this.pump();
      });
      this.inFlight.add(p);
    }
  }
}
