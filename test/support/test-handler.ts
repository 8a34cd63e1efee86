/**
 * A test-only worker handler: the production handler plus the `noop` task, which sleeps,
 * allocates memory, throws or exits abruptly so the launchers' limits can be exercised. It never
 * ships: the Lambda package of tests is built from this entry, the production package from
 * worker/handler.ts.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { eventSchema, handler as productionHandler, parseEventWith, TASK_TYPES, type WorkerContext } from '../../worker/index.js';

export const noopTask = z
  .object({
    type: z.literal('noop'),
    sleepMs: z.number().int().nonnegative().max(3_600_000).default(0),
    /** Megabytes to allocate and hold (before sleeping). */
    allocateMb: z.number().int().nonnegative().max(1_000_000).default(0),
    /** 'heap': JS arrays (bounded by --max-old-space-size); 'buffer': off-heap bytes (bounded by RSS). */
    allocate: z.enum(['heap', 'buffer']).default('heap'),
    /** Throw an Error with this message (after sleeping). */
    throwMessage: z.string().optional(),
    /** process.exit(code) without reporting a result (after sleeping). */
    exitCode: z.number().int().min(0).max(255).optional(),
    /** Lines printed to stdout first (logs). */
    log: z.array(z.string()).default([]),
    /** Write a file into os.tmpdir() first and log 'tmp <path>' (the launcher's per-worker /tmp). */
    writeTmp: z.boolean().default(false),
  })
  .strict();

const noopEvent = eventSchema(noopTask);

export interface NoopResult {
  pid: number;
  /** Epoch ms when the task started and ended (the launcher tests check overlaps with them). */
  startedAt: number;
  endedAt: number;
  allocatedMb: number;
  /** What the context said was left when the task started (undefined without a context). */
  remainingMs?: number;
}

/** Validates a noop event as the test handler does; throws EventError naming the first bad field. */
export function parseNoopEvent(input: unknown): z.infer<typeof noopEvent> {
  return parseEventWith(noopEvent, ['noop', ...TASK_TYPES], input);
}

export async function handler(event: unknown, context?: WorkerContext): Promise<unknown> {
  const type = (event as { task?: { type?: unknown } } | null)?.task?.type;
  if (type !== 'noop') return productionHandler(event, context);
  return runNoop(parseNoopEvent(event).task, context);
}

async function runNoop(task: z.infer<typeof noopTask>, context: WorkerContext | undefined): Promise<NoopResult> {
  const startedAt = Date.now();
  const remainingMs = context?.getRemainingTimeInMillis();
  for (const line of task.log) console.log(line);
  if (task.writeTmp) {
    const file = join(tmpdir(), 'scratch.bin');
    writeFileSync(file, Buffer.alloc(1024, 7));
    console.log(`tmp ${file}`);
  }
  const held: unknown[] = [];
  for (let mb = 0; mb < task.allocateMb; mb++) {
    if (task.allocate === 'buffer') held.push(Buffer.alloc(1024 * 1024, 1));
    // 131072 doubles = 1 MiB of V8 heap (arrays of doubles are stored unboxed).
    else held.push(new Array<number>(131072).fill(mb + 0.5));
  }
  if (task.sleepMs > 0) await new Promise((r) => setTimeout(r, task.sleepMs));
  if (task.exitCode !== undefined) process.exit(task.exitCode);
  if (task.throwMessage !== undefined) throw new Error(task.throwMessage);
  return { pid: process.pid, startedAt, endedAt: Date.now(), allocatedMb: held.length, ...(remainingMs !== undefined ? { remainingMs } : {}) };
}
