/**
 * Successive halving, asynchronous (in the manner of ASHA), so a trial never waits for others:
 *
 * - Rungs are the epochs minEpochs * reduction^k (k = 0, 1, ...) below the trial's last epoch.
 * - When a trial ends a rung epoch, its objective there joins the rung's record. Let n be the
 *   number of trials that have reached the rung so far (this one included). While n < reduction
 *   the trial goes on; otherwise it goes on only if it ranks among the best floor(n / reduction)
 *   of those n (ties: the earlier trial id ranks higher; a missing value ranks last), else it is
 *   pruned.
 *
 * Decisions depend only on the order trials reach a rung and their values there, so a run with
 * one trial at a time is fully deterministic.
 */
import { compareByObjective, type Objective } from './objective.js';

export interface HalvingConfig {
  minEpochs: number;
  reduction: number;
}

export type RungDecision = 'continue' | 'prune';

interface RungEntry {
  trial: string;
  value: number;
}

export class SuccessiveHalving {
  private readonly rungs = new Map<number, RungEntry[]>();

  constructor(
    private readonly config: HalvingConfig,
    private readonly objective: Objective,
  ) {}

  /** Whether `epoch` is a rung for a trial that runs `epochs` epochs in all. */
  isRung(epoch: number, epochs: number): boolean {
    if (epoch >= epochs) return false;
    for (let r = this.config.minEpochs; r <= epoch; r *= this.config.reduction) if (r === epoch) return true;
    return false;
  }

  /** Rung epochs of a trial running `epochs` epochs. */
  rungsFor(epochs: number): number[] {
    const out: number[] = [];
    for (let r = this.config.minEpochs; r < epochs; r *= this.config.reduction) out.push(r);
    return out;
  }

  /** Records `trial` reaching rung `epoch` with objective `value` and decides its fate. */
  report(trial: string, epoch: number, value: number): RungDecision {
    const entries = this.rungs.get(epoch) ?? [];
    if (entries.some((e) => e.trial === trial)) return 'continue';
    entries.push({ trial, value });
    this.rungs.set(epoch, entries);
    const n = entries.length;
    if (n < this.config.reduction) return 'continue';
    const keep = Math.floor(n / this.config.reduction);
    const better = entries.filter((e) => e.trial !== trial && compareByObjective(this.objective, e.value, value, e.trial < trial ? -1 : 1) < 0).length;
    return better < keep ? 'continue' : 'prune';
  }

  /** Values recorded at a rung, in arrival order (for tests and reports). */
  rung(epoch: number): ReadonlyArray<Readonly<RungEntry>> {
    return this.rungs.get(epoch) ?? [];
  }
}
