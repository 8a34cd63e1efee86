/**
 * The models one server holds, by name, with their sync state and the pulls parked on them.
 * Transport-agnostic: the server passes an `owner` (its connection object) and a `respond`
 * callback, so parked pulls can be answered later and dropped when their connection closes.
 */
import { PsError } from './errors.js';
import { type ModelConfig, ParamModel, PsModelError, validateModelConfig } from './model.js';
import { Status, type StatusCode } from './protocol.js';
import { type Gradient, type ModelSync, checkIndices, createSync, resumeClock } from './sync.js';

export type Respond = (status: StatusCode, parts: Uint8Array[]) => void;

interface Entry {
  name: string;
  model: ParamModel;
  sync: ModelSync;
  /** Canonical JSON of the validated config: CREATE_MODEL is idempotent only for an identical one. */
  configKey: string;
  floats: number;
  parked: Set<Parked>;
}

interface Parked {
  owner: object;
  entry: Entry;
  minClock: number;
  timeoutMs: number;
  timer: NodeJS.Timeout;
  respond: Respond;
  answer: (entry: Entry) => Uint8Array[];
}

interface ModelServiceOptions {
  /** Bound on the floats held for all models (weights, optimizer state, scratch, BSP accumulators). */
  maxModelFloats: number;
  /** Bound on pulls parked by one connection. */
  maxParkedPerOwner: number;
}

const MAX_TIMER_MS = 0x7fffffff;

/** Floats a model costs: weights, optimizer state slots, and the sparse-push scratch (f32 sum + u8 mark). */
function modelFloats(config: ModelConfig): number {
  const slots = { sgd: 0, momentum: 1, nesterov: 1, adagrad: 1, adam: 3 }[config.optimizer.type];
  return Math.ceil(config.size * (1 + slots + 1.25));
}

/** Sorted-key JSON, so {a,b} and {b,a} compare equal. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Maps the model class's errors onto the server's typed errors (so they get the right status). */
function asPsError(err: unknown): unknown {
  if (!(err instanceof PsModelError)) return err;
  return new PsError(err.code === 'PS_RANGE' ? 'PS_RANGE' : 'PS_BAD_REQUEST', err.message, { cause: err });
}

export class ModelService {
  private readonly models = new Map<string, Entry>();
  private readonly parkedByOwner = new Map<object, Set<Parked>>();
  private floatsHeld = 0;
  private parkedCount = 0;
  /** Optimizer updates applied, over all models (a BSP round counts once). */
  updatesApplied = 0;

  constructor(private readonly opts: ModelServiceOptions) {}

  get modelCount(): number {
    return this.models.size;
  }
  get modelFloats(): number {
    return this.floatsHeld;
  }
  get parkedPulls(): number {
    return this.parkedCount;
  }
  parkedFor(owner: object): number {
    return this.parkedByOwner.get(owner)?.size ?? 0;
  }

  /** Creates a model; false when one with an identical config exists already (its weights are kept). */
  create(name: string, rawConfig: unknown, init: Float32Array | undefined): boolean {
    let config: ModelConfig;
    try {
      config = validateModelConfig(rawConfig);
    } catch (err) {
      throw asPsError(err);
    }
    const configKey = canonical(config);
    const existing = this.models.get(name);
    if (existing) {
      if (existing.configKey === configKey) return false;
      throw new PsError('PS_CONFLICT', `model '${name}' exists with a different config: ${existing.configKey}`);
    }
    if (init && init.length !== config.size) throw new PsError('PS_BAD_REQUEST', `initial weights of model '${name}' have ${init.length} values, the model size is ${config.size}`);
    this.admit(name, configKey, config, () => new ParamModel(config, init), 0);
    return true;
  }

  private admit(name: string, configKey: string, config: ModelConfig, build: () => ParamModel, start: number | undefined): void {
    // Checked before allocating: the bound is what keeps a hostile CREATE_MODEL from exhausting memory.
    const extra = config.sync.mode === 'bsp' ? config.size + Math.ceil(config.size / 4) : 0;
    const floats = modelFloats(config) + extra;
    if (this.floatsHeld + floats > this.opts.maxModelFloats) {
      throw new PsError('PS_TOO_LARGE', `model '${name}' needs ${floats} floats, which would bring the server to ${this.floatsHeld + floats}, over its bound of ${this.opts.maxModelFloats}`);
    }
    let model: ParamModel;
    try {
      model = build();
    } catch (err) {
      throw asPsError(err);
    }
    const sync = createSync(model, config.sync, start ?? resumeClock(model));
    this.models.set(name, { name, model, sync, configKey, floats, parked: new Set() });
    this.floatsHeld += floats;
  }

  /** Applies a push; returns the model clock afterwards. */
  push(name: string, rank: number, clock: number, grad: Gradient): number {
    const entry = this.get(name);
    const before = entry.sync.clock;
    try {
      this.updatesApplied += entry.sync.push(rank, clock, grad);
    } catch (err) {
      throw asPsError(err);
    }
    if (entry.sync.clock !== before) this.release(entry);
    return entry.sync.clock;
  }

  /**
   * Answers a pull now if the model clock is at least `minClock`, otherwise parks it until it is
   * or `timeoutMs` passes (0 = answer TIMEOUT at once). Indices are checked before parking.
   */
  pull(owner: object, name: string, minClock: number, timeoutMs: number, indices: Uint32Array | undefined, respond: Respond, encode: (clock: number, values: Float32Array) => Uint8Array[]): void {
    const entry = this.get(name);
    if (indices) checkIndices(entry.model.size, indices);
    // A copy of the weights: the socket may still hold the reply when the next push lands.
    const answer = (e: Entry) => encode(e.sync.clock, indices ? e.model.gather(indices) : e.model.weights.slice());
    if (entry.sync.clock >= minClock) {
      respond(Status.OK, answer(entry));
      return;
    }
    if (timeoutMs === 0) {
      respond(Status.TIMEOUT, [timeoutText(entry, minClock, 0)]);
      return;
    }
    let mine = this.parkedByOwner.get(owner);
    if ((mine?.size ?? 0) >= this.opts.maxParkedPerOwner) {
      throw new PsError('PS_TOO_LARGE', `this connection already has ${this.opts.maxParkedPerOwner} pulls parked (the per-connection bound)`);
    }
    const p: Parked = {
      owner,
      entry,
      minClock,
      timeoutMs,
      respond,
      answer,
      timer: setTimeout(() => {
        this.unpark(p);
        respond(Status.TIMEOUT, [timeoutText(entry, minClock, timeoutMs)]);
      }, Math.min(timeoutMs, MAX_TIMER_MS)),
    };
    if (!mine) this.parkedByOwner.set(owner, (mine = new Set()));
    mine.add(p);
    entry.parked.add(p);
    this.parkedCount++;
  }

  /** Drops a model; its parked pulls get NOT_FOUND. Returns whether it existed. */
  drop(name: string): boolean {
    const entry = this.models.get(name);
    if (!entry) return false;
    this.models.delete(name);
    this.floatsHeld -= entry.floats;
    for (const p of [...entry.parked]) {
      this.unpark(p);
      p.respond(Status.NOT_FOUND, [new TextEncoder().encode(`model '${name}' was dropped while the pull was parked`)]);
    }
    return true;
  }

  /** Forgets the pulls of a closed connection without answering them. */
  dropOwner(owner: object): void {
    for (const p of [...(this.parkedByOwner.get(owner) ?? [])]) this.unpark(p);
  }

  /** Answers every parked pull with `status` (used on shutdown). */
  answerAll(status: StatusCode, message: string): void {
    for (const mine of [...this.parkedByOwner.values()]) {
      for (const p of [...mine]) {
        this.unpark(p);
        p.respond(status, [new TextEncoder().encode(message)]);
      }
    }
  }

  /** The live models by name (a new Map: later creates and drops do not show in it). */
  current(): Map<string, ParamModel> {
    return new Map([...this.models].map(([name, e]) => [name, e.model]));
  }

  /** Installs restored models (replacing none: call on an empty service). */
  restore(models: Map<string, ParamModel>): void {
    for (const [name, model] of models) {
      if (this.models.has(name)) throw new PsError('PS_CONFLICT', `model '${name}' is already loaded`);
      this.admit(name, canonical(model.config), model.config, () => model, undefined);
    }
  }

  private get(name: string): Entry {
    const entry = this.models.get(name);
    if (!entry) throw new PsError('PS_NOT_FOUND', `no model named '${name}'`);
    return entry;
  }

  private release(entry: Entry): void {
    for (const p of [...entry.parked]) {
      if (entry.sync.clock < p.minClock) continue;
      this.unpark(p);
      p.respond(Status.OK, p.answer(entry));
    }
  }

  private unpark(p: Parked): void {
    clearTimeout(p.timer);
    const mine = this.parkedByOwner.get(p.owner);
    if (!mine?.delete(p)) return;
    if (mine.size === 0) this.parkedByOwner.delete(p.owner);
    p.entry.parked.delete(p);
    this.parkedCount--;
  }
}

function timeoutText(entry: Entry, minClock: number, timeoutMs: number): Uint8Array {
  return new TextEncoder().encode(`model '${entry.name}' is at clock ${entry.sync.clock}, short of ${minClock}, after ${timeoutMs} ms`);
}
