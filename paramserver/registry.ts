/**
 * Worker registrations: (task, rank, generation) may be registered once, ever. Lambda can deliver
 * an async invocation twice, so a second REGISTER of the same triple is refused with CONFLICT even
 * after a DEREGISTER; the entry stays as a tombstone until its task is forgotten (FORGET_TASK).
 * Memory is bounded by a cap on entries (live + tombstones) per server.
 */
import { PsError } from './errors.js';

export class Registry {
  /** task -> 'rank/generation' -> live (true) or deregistered (false). */
  private readonly tasks = new Map<string, Map<string, boolean>>();
  private entries = 0;

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries;
  }

  register(task: string, rank: number, generation: number): void {
    const id = `${rank}/${generation}`;
    const entries = this.tasks.get(task);
    const state = entries?.get(id);
    if (state !== undefined) {
      throw new PsError('PS_CONFLICT', `task '${task}' rank ${rank} generation ${generation} ${state ? 'is already registered' : 'was registered before and has deregistered'}`);
    }
    if (this.entries >= this.maxEntries) {
      throw new PsError('PS_TOO_LARGE', `the server holds ${this.entries} registrations, its bound; FORGET_TASK finished tasks`);
    }
    if (entries) entries.set(id, true);
    else this.tasks.set(task, new Map([[id, true]]));
    this.entries++;
  }

  /** Marks the triple deregistered; returns whether it was live. */
  deregister(task: string, rank: number, generation: number): boolean {
    const entries = this.tasks.get(task);
    const id = `${rank}/${generation}`;
    if (entries?.get(id) !== true) return false;
    entries.set(id, false);
    return true;
  }

  /** Drops every entry (live or not) of a task; returns how many. */
  forget(task: string): number {
    const n = this.tasks.get(task)?.size ?? 0;
    this.tasks.delete(task);
    this.entries -= n;
    return n;
  }

  /** Every entry as [task, 'rank/generation', live], for snapshots. */
  entriesList(): Array<[string, string, boolean]> {
    const out: Array<[string, string, boolean]> = [];
    for (const [task, m] of this.tasks) for (const [id, live] of m) out.push([task, id, live]);
    return out;
  }

  /** Replaces every entry with a snapshot's. */
  load(entries: ReadonlyArray<[string, string, boolean]>): void {
    this.tasks.clear();
    this.entries = 0;
    for (const [task, id, live] of entries) {
      const m = this.tasks.get(task) ?? new Map<string, boolean>();
      if (!m.has(id)) this.entries++;
      m.set(id, live);
      this.tasks.set(task, m);
    }
  }
}
