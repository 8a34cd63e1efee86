/**
 * The local launcher with real child processes: results come back, Lambda's limits (time, memory,
 * concurrency) are enforced, failures are reported with their cause, and no process is left over.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LocalLauncher, type LocalLauncherOptions } from '../client/launchers/local.js';
import type { WorkerEvent } from '../client/launchers/types.js';
import { StartQueue } from '../client/launchers/start-queue.js';

const launchers: LocalLauncher[] = [];
after(async () => {
  await Promise.all(launchers.map((l) => l.close()));
});

/** The test worker entry: production tasks plus `noop`. */
const TEST_ENTRY = fileURLToPath(new URL('./support/test-worker-main.js', import.meta.url));

function launcher(options: LocalLauncherOptions): LocalLauncher {
  const l = new LocalLauncher({ entry: TEST_ENTRY, ...options });
  launchers.push(l);
  return l;
}

function event(task: Record<string, unknown>, rank = 0, world = 1): WorkerEvent {
  return { jobId: 'launcher-test', rank, world, attempt: 0, deadlineMs: Date.now() + 600_000, task: task as WorkerEvent['task'], params: {}, endpoints: { store: 'memory://' } };
}

/** Whether a process runs. A zombie (dead, waiting to be reaped by a parent such as a container's PID 1 that never reaps) does not count. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ESRCH');
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

async function gone(pid: number, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

interface NoopValue {
  pid: number;
  startedAt: number;
  endedAt: number;
  allocatedMb: number;
}

test('a worker result comes back, with its logs, cold start and duration', async () => {
  const logs: string[] = [];
  const l = launcher({ timeoutS: 60, memoryMb: 256, concurrency: 2, onLog: (line, w) => logs.push(`${w.rank}:${line}`) });
  const h = await l.launch(event({ type: 'noop', sleepMs: 10, log: ['hello', 'world'] }, 1, 2));
  assert.equal(h.rank, 1);
  const r = await h.result;
  assert.equal(r.status, 'ok', JSON.stringify(r));
  const v = r.value as NoopValue;
  assert.equal(v.pid, h.pid);
  // Timers run on a monotonic clock and Date.now() is rounded: allow 1 ms of slack on a 10 ms sleep.
  assert.ok(v.endedAt >= v.startedAt + 9, `slept ${v.endedAt - v.startedAt} ms`);
  assert.deepEqual(logs, ['1:hello', '1:world']);
  assert.ok(r.coldStartMs > 0 && r.coldStartMs <= r.durationMs, `cold start ${r.coldStartMs} within duration ${r.durationMs}`);
  assert.ok(r.peakRssMb !== undefined && r.peakRssMb > 0);
  assert.equal(await gone(h.pid!, 2_000), true);
});

test('the time limit kills a sleeping worker: status timeout, no process left', async () => {
  const l = launcher({ timeoutS: 1, memoryMb: 256 });
  const h = await l.launch(event({ type: 'noop', sleepMs: 30_000 }));
  const r = await h.result;
  assert.equal(r.status, 'timeout');
  assert.equal(r.error?.code, 'TIMEOUT');
  assert.match(r.error!.message, /time limit of 1 s/);
  assert.ok(r.durationMs >= 1_000 && r.durationMs < 25_000, `killed at the limit, not at the end of the sleep (${r.durationMs} ms)`);
  assert.equal(alive(h.pid!), false, 'the timed-out worker is gone');
});

test('concurrency cap: 4 sleeping workers with concurrency 2 never overlap more than 2 at a time', async () => {
  const l = launcher({ timeoutS: 120, memoryMb: 256, concurrency: 2 });
  const handles = await Promise.all([0, 1, 2, 3].map((rank) => l.launch(event({ type: 'noop', sleepMs: 400 }, rank, 4))));
  let maxActive = 0;
  const sampler = setInterval(() => (maxActive = Math.max(maxActive, l.active)), 5);
  const results = await Promise.all(handles.map((h) => h.result));
  clearInterval(sampler);
  assert.ok(maxActive <= 2, `launcher ran ${maxActive} at once`);
  const spans = results.map((r) => {
    assert.equal(r.status, 'ok', JSON.stringify(r));
    const v = r.value as NoopValue;
    return [v.startedAt, v.endedAt] as const;
  });
  // At every start instant, count the workers whose span covers it.
  for (const [s] of spans) {
    const overlapping = spans.filter(([a, b]) => a <= s && s < b).length;
    assert.ok(overlapping <= 2, `${overlapping} workers ran at ${s}: ${JSON.stringify(spans)}`);
  }
  // And the queue did make progress in waves: the last start is after the first end.
  const firstEnd = Math.min(...spans.map(([, b]) => b));
  const lastStart = Math.max(...spans.map(([a]) => a));
  assert.ok(lastStart >= firstEnd);
});

test('a worker that throws gives status error with its message; abrupt exits and load failures are crashes (with stderr)', async () => {
  const l = launcher({ timeoutS: 60, memoryMb: 256 });
  const thrown = await (await l.launch(event({ type: 'noop', throwMessage: 'boom: the model diverged' }))).result;
  assert.equal(thrown.status, 'error');
  assert.equal(thrown.error?.code, 'WORKER_ERROR');
  assert.equal(thrown.error?.message, 'boom: the model diverged');

  const exited = await (await l.launch(event({ type: 'noop', exitCode: 3, log: ['about to exit'] }))).result;
  assert.equal(exited.status, 'error');
  assert.equal(exited.error?.code, 'WORKER_CRASHED');
  assert.match(exited.error!.message, /exited with code 3 before reporting a result/);

  // A worker that dies at load time: its stderr comes with the error.
  const broken = launcher({ timeoutS: 60, memoryMb: 256, entry: fileURLToPath(new URL('./no-such-worker.js', import.meta.url)) });
  const crashed = await (await broken.launch(event({ type: 'noop' }))).result;
  assert.equal(crashed.status, 'error');
  assert.equal(crashed.error?.code, 'WORKER_CRASHED');
  assert.equal(crashed.coldStartMs, 0, 'it never reached the handler');
  assert.match(crashed.error!.stderr ?? '', /Cannot find module/);
});

test('a bad event gives an error naming the field', async () => {
  const l = launcher({ timeoutS: 60, memoryMb: 256 });
  const cases: Array<[WorkerEvent, RegExp]> = [
    [{ ...event({ type: 'noop' }), rank: 'one' as unknown as number }, /^event\.rank: /],
    [{ ...event({ type: 'noop' }), rank: 3, world: 2 }, /^event\.rank: rank 3 is outside the world of 2/],
    [event({ type: 'dataset-stats', shards: ['a', 7] }), /^event\.task\.shards\[1\]: /],
    [event({ type: 'warp-drive' }), /^event\.task\.type: unknown task type "warp-drive"/],
    [event({ type: 'noop', sleeep: 5 }), /^event\.task\.sleeep: unknown field/],
    [{ ...event({ type: 'noop' }), endpoints: {} as WorkerEvent['endpoints'] }, /^event\.endpoints\.store: /],
  ];
  const results = await Promise.all(cases.map(async ([e]) => (await l.launch(e)).result));
  results.forEach((r, i) => {
    assert.equal(r.status, 'error');
    assert.equal(r.error?.code, 'EVENT_INVALID');
    assert.match(r.error!.message, cases[i]![1]);
  });
});

test('memory cap: a worker allocating far beyond memoryMb dies with OUT_OF_MEMORY (heap and off-heap)', async () => {
  // The heap case without the RSS watchdog, so V8's own cap (--max-old-space-size) is what stops it.
  const heapOnly = launcher({ timeoutS: 120, memoryMb: 96, rssPollMs: 0 });
  const watched = launcher({ timeoutS: 120, memoryMb: 96 });
  for (const allocate of ['heap', 'buffer'] as const) {
    const l = allocate === 'heap' ? heapOnly : watched;
    const h = await l.launch(event({ type: 'noop', allocateMb: 2048, allocate }));
    const r = await h.result;
    assert.equal(r.status, 'error', `${allocate}: ${JSON.stringify(r)}`);
    assert.equal(r.error?.code, 'OUT_OF_MEMORY', `${allocate}: ${JSON.stringify(r.error)}`);
    assert.match(r.error!.message, /ran out of memory: its limit is 96 MB/);
    assert.equal(alive(h.pid!), false);
  }
});

test('kill() and close(): queued and running workers end as killed, nothing is left running', async () => {
  const l = new LocalLauncher({ timeoutS: 120, memoryMb: 256, concurrency: 1 });
  const running = await l.launch(event({ type: 'noop', sleepMs: 30_000 }, 0, 3));
  const queued = await l.launch(event({ type: 'noop', sleepMs: 30_000 }, 1, 3));
  const killedInQueue = await l.launch(event({ type: 'noop', sleepMs: 30_000 }, 2, 3));
  killedInQueue.kill('not needed');
  const q = await killedInQueue.result;
  assert.equal(q.status, 'killed');
  assert.match(q.error!.message, /not needed/);
  assert.equal(killedInQueue.pid, undefined, 'a worker killed in the queue never started');
  while (running.pid === undefined) await new Promise((r) => setTimeout(r, 10));
  await l.close();
  const [a, b] = await Promise.all([running.result, queued.result]);
  assert.equal(a.status, 'killed');
  assert.equal(b.status, 'killed');
  assert.equal(alive(running.pid), false);
  if (queued.pid !== undefined) assert.equal(alive(queued.pid), false);
  await assert.rejects(l.launch(event({ type: 'noop' })), (e: unknown) => (e as { code?: string }).code === 'LAUNCHER_CLOSED');
});

test('each worker has a /tmp of its own, as a Lambda sandbox does: removed when it ends, also by kill -9', async () => {
  // Rank 0 sleeps (and is killed), rank 1 ends by itself; each logs the file it wrote.
  const tmpDirs = new Map<number, string>();
  const l = launcher({ timeoutS: 60, memoryMb: 256, concurrency: 2, onLog: (line, w) => line.startsWith('tmp ') && tmpDirs.set(w.rank, dirname(line.slice(4))) });
  const killed = await l.launch(event({ type: 'noop', writeTmp: true, sleepMs: 30_000 }, 0, 2));
  const done = await l.launch(event({ type: 'noop', writeTmp: true }, 1, 2));
  assert.equal((await done.result).status, 'ok');
  while (tmpDirs.size < 2) await new Promise((r) => setTimeout(r, 10));
  const [sleeping, finished] = [tmpDirs.get(0)!, tmpDirs.get(1)!];
  for (const d of [sleeping, finished]) assert.match(basename(d), /^cirrus-worker-tmp-/);
  assert.notEqual(sleeping, finished, 'one directory per worker');
  assert.equal(existsSync(finished), false, "a finished worker's /tmp is gone");
  assert.ok(readdirSync(sleeping).includes('scratch.bin'), 'the running worker wrote into its own /tmp');
  killed.kill('test');
  assert.equal((await killed.result).status, 'killed');
  assert.equal(existsSync(sleeping), false, "a killed worker's /tmp is gone");
});

test("a launcher's first worker /tmp sweeps the ones a dead launcher left (the pid in their name), not a live one's", async () => {
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.once('exit', r));
  const left = mkdtempSync(join(tmpdir(), `cirrus-worker-tmp-${dead.pid}-`));
  const kept = mkdtempSync(join(tmpdir(), `cirrus-worker-tmp-${process.pid}-`));
  try {
    const module = fileURLToPath(new URL('../client/launchers/sandbox-tmp.js', import.meta.url));
    const child = spawn(process.execPath, ['--input-type=module', '-e', `const { makeWorkerTmp } = await import(${JSON.stringify(module)}); makeWorkerTmp();`], { stdio: 'inherit' });
    assert.equal(await new Promise((r) => child.once('exit', r)), 0);
    assert.equal(existsSync(left), false, "a dead launcher's worker /tmp is swept");
    assert.equal(existsSync(kept), true, "a live launcher's is not");
  } finally {
    rmSync(left, { recursive: true, force: true });
    rmSync(kept, { recursive: true, force: true });
  }
});

/** Runs a parent process that launches a 30 s worker, then ends as `how`; returns the worker's pid. */
async function orphanCheck(how: 'exit' | 'sigkill'): Promise<number> {
  const launcherModule = fileURLToPath(new URL('../client/launchers/local.js', import.meta.url));
  const script = `
    const { LocalLauncher } = await import(${JSON.stringify(launcherModule)});
    const l = new LocalLauncher({ timeoutS: 120, memoryMb: 256 });
    const h = await l.launch({ jobId: 'orphan', rank: 0, world: 1, attempt: 0, deadlineMs: Date.now() + 60000, task: { type: 'noop', sleepMs: 30000 }, params: {}, endpoints: { store: 'memory://' } });
    while (h.pid === undefined) await new Promise((r) => setTimeout(r, 10));
    console.log(h.pid);
    ${how === 'exit' ? 'setTimeout(() => process.exit(0), 300);' : 'setTimeout(() => {}, 60000);'}
  `;
  const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve, reject) => {
    let out = '';
    parent.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    parent.on('error', reject);
    parent.on('exit', () => (out.includes('\n') ? undefined : reject(new Error('parent exited before reporting the worker pid'))));
  });
  if (how === 'sigkill') parent.kill('SIGKILL');
  await new Promise((r) => parent.once('close', r));
  return pid;
}

test('no orphans: workers die when the parent exits without close(), and when the parent is SIGKILLed', async () => {
  const exitPid = await orphanCheck('exit');
  assert.ok(exitPid > 0);
  assert.equal(await gone(exitPid, 3_000), true, 'worker of a parent that called process.exit()');
  const killPid = await orphanCheck('sigkill');
  // The parent had no chance to clean up: the worker notices that it was re-parented.
  assert.equal(await gone(killPid, 5_000), true, 'worker of a SIGKILLed parent');
});

test('StartQueue: starts in order, never more than the limit at once; removed items never start; stop() starts nothing more and waits', async () => {
  const started: number[] = [];
  const finishers = new Map<number, () => void>();
  let peak = 0;
  let live = 0;
  const queue = new StartQueue<number>(2, (n) => {
    started.push(n);
    live++;
    peak = Math.max(peak, live);
    return new Promise<void>((resolve) =>
      finishers.set(n, () => {
        live--;
        resolve();
      }),
    );
  });
  for (const n of [1, 2, 3, 4, 5]) queue.push(n);
  assert.deepEqual(started, [1, 2]);
  assert.equal(queue.active, 2);
  queue.remove(3);
  finishers.get(1)!();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [1, 2, 4], 'the removed item is skipped, the next one takes the slot');
  const stopped = queue.stop();
  let done = false;
  void stopped.then(() => (done = true));
  finishers.get(2)!();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [1, 2, 4], 'nothing starts after stop()');
  assert.equal(done, false, 'stop() waits for item 4');
  finishers.get(4)!();
  await stopped;
  assert.equal(queue.active, 0);
  assert.equal(peak, 2);
});
