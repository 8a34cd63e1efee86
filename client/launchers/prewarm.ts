/**
 * Prewarmed local workers: worker processes spawned before their events exist, so node's start-up
 * and the worker's module loading overlap with the client's own (the CLI loading the training
 * modules, starting the store and the channel). A prewarmed child waits on stdin; the local
 * launcher that next starts a worker with the same entry, memory and flags takes it instead of
 * spawning, and sends it the event with its deadline (a prewarmed child's clock starts then, not
 * at its spawn). Children nobody takes are killed on release() or when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface PrewarmSpec {
  entry: string;
  memoryMb: number;
  nodeArgs?: string[];
  env?: Record<string, string>;
}

const pool = new Map<string, ChildProcess[]>();
let hooked = false;

function keyOf(s: PrewarmSpec): string {
  return JSON.stringify([s.entry, s.memoryMb, s.nodeArgs ?? [], s.env ?? {}]);
}

/** Spawns `count` children of `spec` now; they wait for an event on stdin. */
export function prewarmWorkers(count: number, spec: PrewarmSpec): void {
  if (!hooked) {
    hooked = true;
    process.on('exit', release);
  }
  const list = pool.get(keyOf(spec)) ?? [];
  for (let i = 0; i < count; i++) {
    const child = spawn(process.execPath, [...(spec.nodeArgs ?? []), `--max-old-space-size=${spec.memoryMb}`, spec.entry], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...(spec.env ?? {}), CIRRUS_WORKER_MEMORY_MB: String(spec.memoryMb), CIRRUS_WORKER_PREWARMED: '1' },
    });
    child.on('error', () => undefined);
    child.stdin!.on('error', () => undefined);
    // Waiting children must not keep a finished client alive.
    child.unref();
    list.push(child);
  }
  pool.set(keyOf(spec), list);
}

/** A live prewarmed child for `spec`, removed from the pool; undefined when there is none. */
export function takePrewarmed(spec: PrewarmSpec): ChildProcess | undefined {
  const list = pool.get(keyOf(spec));
  while (list && list.length > 0) {
    const child = list.shift()!;
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      child.ref();
      return child;
    }
  }
  return undefined;
}

/** Kills every child still waiting. */
export function release(): void {
  for (const list of pool.values()) {
    for (const child of list.splice(0)) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
