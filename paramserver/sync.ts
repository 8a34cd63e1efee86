/**
 * Synchronisation of pushes into one model (see PROTOCOL.md, "Sync modes"):
 *
 *   async  Hogwild: every push is applied at once; the clock counts applied pushes.
 *   ssp    bounded staleness: every push is applied at once; rank r's clock is one past its latest
 *          push's clock, and the model clock is the minimum over ranks. A worker at clock c pulls
 *          with minClock = c - staleness and so never runs ahead of the slowest rank by more.
 *   bsp    bulk synchronous: pushes for round r are summed; when all W ranks pushed round r the
 *          sum (or mean) is applied once and the clock becomes r + 1.
 *
 * A pull with minClock m is answered once `clock >= m` (the server parks it until then).
 */
import { PsError } from './errors.js';
import type { SyncConfig } from './model-config.js';
import type { ParamModel } from './model.js';

export type Gradient = { kind: 'dense'; values: Float32Array } | { kind: 'sparse'; indices: Uint32Array; values: Float32Array };

export interface ModelSync {
  /** The model clock pulls are compared against. */
  readonly clock: number;
  /** Floats held besides the model itself (accumulators), for the server's memory bound. */
  readonly extraFloats: number;
  /**
   * Applies or accumulates one push. Returns how many optimizer updates were applied (0 or 1).
   * Throws PsError (PS_CONFLICT, PS_RANGE, PS_BAD_REQUEST) and then has changed nothing.
   */
  push(rank: number, clock: number, grad: Gradient): number;
}

/**
 * Checks a gradient against the model before anything is touched. The model checks again when
 * applying, but BSP accumulates first, so a bad push must be caught here.
 */
function checkGradient(model: ParamModel, grad: Gradient): void {
  if (grad.kind === 'dense') {
    if (grad.values.length !== model.size) {
      throw new PsError('PS_BAD_REQUEST', `dense gradient has ${grad.values.length} values, the model size is ${model.size}`);
    }
    const v = grad.values;
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]!)) throw new PsError('PS_BAD_REQUEST', `gradient value at index ${i} is ${v[i]}`);
    }
    return;
  }
  const { indices, values } = grad;
  if (indices.length !== values.length) throw new PsError('PS_BAD_REQUEST', `sparse gradient has ${indices.length} indices but ${values.length} values`);
  checkIndices(model.size, indices);
  for (let k = 0; k < values.length; k++) {
    if (!Number.isFinite(values[k]!)) throw new PsError('PS_BAD_REQUEST', `gradient value at position ${k} (index ${indices[k]}) is ${values[k]}`);
  }
}

export function checkIndices(size: number, indices: Uint32Array): void {
  for (let k = 0; k < indices.length; k++) {
    if (indices[k]! >= size) throw new PsError('PS_RANGE', `index ${indices[k]} at position ${k} is out of range for a model of size ${size}`);
  }
}

function checkRank(rank: number, workers: number): void {
  if (rank >= workers) throw new PsError('PS_RANGE', `rank ${rank} is out of range for ${workers} workers`);
}

function apply(model: ParamModel, grad: Gradient): void {
  if (grad.kind === 'dense') model.applyDense(grad.values);
  else model.applySparse(grad.indices, grad.values);
}

class AsyncSync implements ModelSync {
  readonly extraFloats = 0;
  constructor(
    private readonly model: ParamModel,
    public clock: number,
  ) {}
  push(_rank: number, _clock: number, grad: Gradient): number {
    // The model validates the whole push before changing anything, so no separate check pass.
    apply(this.model, grad);
    this.clock++;
    return 1;
  }
}

class SspSync implements ModelSync {
  readonly extraFloats = 0;
  /** Per rank: one past the clock of its latest push. */
  private readonly next: number[];
  clock: number;
  constructor(
    private readonly model: ParamModel,
    workers: number,
    start: number,
  ) {
    this.next = new Array<number>(workers).fill(start);
    this.clock = start;
  }
  push(rank: number, clock: number, grad: Gradient): number {
    checkRank(rank, this.next.length);
    // A clock below the rank's next one is a duplicate (Lambda may run an invocation twice).
    if (clock < this.next[rank]!) throw new PsError('PS_CONFLICT', `rank ${rank} already pushed clock ${clock} (its next clock is ${this.next[rank]})`);
    apply(this.model, grad); // validates the whole push before changing anything
    this.next[rank] = clock + 1;
    let min = Infinity;
    for (const c of this.next) min = Math.min(min, c);
    this.clock = min;
    return 1;
  }
}

class BspSync implements ModelSync {
  readonly extraFloats: number;
  clock: number;
  private readonly pushed: Uint8Array;
  private count = 0;
  /** Sum of this round's pushes; allocated on the first push so idle models cost nothing. */
  private acc: Float32Array | undefined;
  /** Coordinates touched by sparse pushes this round (ascending order restored at apply time). */
  private touched: Uint8Array | undefined;
  private touchedList: number[] = [];
  private dense = false;
  constructor(
    private readonly model: ParamModel,
    workers: number,
    private readonly mean: boolean,
    start: number,
  ) {
    this.pushed = new Uint8Array(workers);
    this.clock = start;
    this.extraFloats = model.size + Math.ceil(model.size / 4);
  }

  push(rank: number, clock: number, grad: Gradient): number {
    checkRank(rank, this.pushed.length);
    if (clock !== this.clock) throw new PsError('PS_CONFLICT', `BSP push of rank ${rank} is for round ${clock}, but the current round is ${this.clock}`);
    if (this.pushed[rank]) throw new PsError('PS_CONFLICT', `rank ${rank} already pushed round ${clock}`);
    checkGradient(this.model, grad);
    const acc = (this.acc ??= new Float32Array(this.model.size));
    if (grad.kind === 'dense') {
      const v = grad.values;
      for (let i = 0; i < v.length; i++) acc[i] = acc[i]! + v[i]!;
      this.dense = true;
    } else {
      const touched = (this.touched ??= new Uint8Array(this.model.size));
      const { indices, values } = grad;
      for (let k = 0; k < indices.length; k++) {
        const i = indices[k]!;
        acc[i] = acc[i]! + values[k]!;
        if (!touched[i]) {
          touched[i] = 1;
          this.touchedList.push(i);
        }
      }
    }
    this.pushed[rank] = 1;
    if (++this.count < this.pushed.length) return 0;
    this.finishRound(acc);
    return 1;
  }

  private finishRound(acc: Float32Array): void {
    const w = this.pushed.length;
    if (this.dense) {
      if (this.mean) for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! / w;
      this.model.applyDense(acc);
      acc.fill(0);
    } else {
      // Only the touched coordinates are stepped, so untouched ones see no L2 decay or momentum step.
      const idx = Uint32Array.from(this.touchedList).sort();
      const vals = new Float32Array(idx.length);
      for (let k = 0; k < idx.length; k++) {
        const i = idx[k]!;
        vals[k] = this.mean ? acc[i]! / w : acc[i]!;
        acc[i] = 0;
      }
      this.model.applySparse(idx, vals);
    }
    if (this.touched) for (const i of this.touchedList) this.touched[i] = 0;
    this.touchedList = [];
    this.dense = false;
    this.pushed.fill(0);
    this.count = 0;
    this.clock++;
  }
}

/**
 * Builds the sync state for a model. `start` is the clock to resume from: 0 for a new model; for
 * one restored from a snapshot, derived from its update count (see PROTOCOL.md, "Snapshots").
 */
export function createSync(model: ParamModel, config: SyncConfig, start = 0): ModelSync {
  switch (config.mode) {
    case 'async':
      return new AsyncSync(model, start);
    case 'ssp':
      return new SspSync(model, config.workers, start);
    case 'bsp':
      return new BspSync(model, config.workers, config.reduce === 'mean', start);
  }
}

/** Clock to resume from after a restore: async and bsp count one update per push/round; ssp has W pushes per clock. */
export function resumeClock(model: ParamModel): number {
  const sync = model.config.sync;
  return sync.mode === 'ssp' ? Math.floor(model.updates / sync.workers) : model.updates;
}
