/**
 * `cirrus bench ps`: sparse push+pull pairs per second and their latency for W = 1, 2, 4, 8 client
 * processes against the parameter server (a real server process), and the same traffic through a
 * bare TCP echo server in the same run; the ratio is the server's rate over the echo's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ParamClient, SERVER_MAIN as PS_MAIN } from '../paramserver/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import type { ChildConfig, ChildResult } from './ps-client-child.js';
import { machineInfo } from './machine.js';
import { writeCriteoTraffic, type TrafficInfo } from './ps-traffic.js';
import { setPriority } from 'node:os';
import { formatTable } from '../client/index.js';
import { percentile } from './collective-runner.js';
import { benchPsTraining, type PsTrainRow } from './ps-train.js';
import { scratchDir } from './scratch.js';

const CHILD = fileURLToPath(new URL('./ps-client-child.js', import.meta.url));
const ECHO_MAIN = fileURLToPath(new URL('./ps-echo-main.js', import.meta.url));
const MODEL = 'bench/ps/model';
const START_TIMEOUT_MS = 30_000;

interface PsBenchRow {
  clients: number;
  pairsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  echoPairsPerSec: number;
  ratio: number;
}

interface PsBenchOptions {
  clients?: number[];
  /** Criteo-like rows for the training comparison (0 skips it). */
  trainRows?: number;
  trainEpochs?: number;
  durationMs?: number;
  /** Criteo-like rows whose 200-row batches make the traffic (default 40,000: 200 batches). */
  trafficRows?: number;
  log?: (line: string) => void;
}

interface PsBenchResult {
  rows: PsBenchRow[];
  training: PsTrainRow[];
  table: string;
  trainingTable: string;
  indicesPerPair: number;
  nnzPerRow: number;
  file: string;
}

/** Starts a server process that prints `listening host:port`; resolves with the address. */
async function startProcess(script: string, args: string[]): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not print 'listening' within ${START_TIMEOUT_MS} ms: ${stderr}`)), START_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^listening (\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with code ${code}: ${stderr}`));
    });
  });
  return { child, address };
}

/**
 * Clients run at a lower priority (both targets alike): on a small machine the co-located clients
 * would otherwise take the server's CPU share, and the scheduler's fairness, not the server, would
 * set the rate (with 8 busy clients the server gets one ninth of the CPU).
 */
function lowerPriority(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) setPriority(child.pid, CLIENT_NICE);
  } catch {
    // Not permitted here: the run goes on at equal priority.
  }
}

const CLIENT_NICE = 10;

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** W client processes: all connect, start together on one signal, run for durationMs. */
async function runClients(target: 'ps' | 'echo', address: string, clients: number, durationMs: number, trafficFile: string): Promise<{ pairs: number; latencies: number[] }> {
  const children: ChildProcess[] = [];
  try {
    const ready: Array<Promise<void>> = [];
    const results: Array<Promise<ChildResult>> = [];
    for (let rank = 0; rank < clients; rank++) {
      const cfg: ChildConfig = { target, address, model: MODEL, rank, durationMs, trafficFile };
      const child = spawn(process.execPath, [CHILD, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
      children.push(child);
      lowerPriority(child);
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const lines = createInterface({ input: child.stdout! });
      let onReady!: () => void;
      ready.push(new Promise<void>((r) => (onReady = r)));
      results.push(
        new Promise<ChildResult>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`bench client ${rank} (${target}) gave no result in time`)), durationMs + 60_000);
          lines.on('line', (line) => {
            const msg = JSON.parse(line) as { type: string };
            if (msg.type === 'ready') onReady();
            if (msg.type === 'result') {
              clearTimeout(timer);
              resolve(msg as ChildResult);
            }
          });
          child.once('exit', (code) => {
            if (code !== 0) {
              clearTimeout(timer);
              reject(new Error(`bench client ${rank} (${target}) exited with code ${code}: ${stderr}`));
            }
          });
        }),
      );
    }
    await Promise.race([Promise.all(ready), Promise.all(results)]);
    for (const c of children) c.stdin!.write('go\n');
    const all = await Promise.all(results);
    return { pairs: all.reduce((s, r) => s + r.pairs, 0), latencies: all.flatMap((r) => r.latenciesMs) };
  } finally {
    await Promise.all(children.map(stopProcess));
  }
}

export async function benchPs(opts: PsBenchOptions = {}): Promise<PsBenchResult> {
  const log = opts.log ?? (() => undefined);
  const clientsList = opts.clients ?? [1, 2, 4, 8];
  const durationMs = opts.durationMs ?? 3_000;
  const work = scratchDir('ps-traffic');
  const servers: ChildProcess[] = [];
  const rows: PsBenchRow[] = [];
  let traffic: TrafficInfo;
  try {
    log('bench ps: preparing Criteo-like batches');
    traffic = await writeCriteoTraffic(work, { rows: opts.trafficRows ?? 40_000, rowsPerBatch: 200, seed: 11 });
    const ps = await startProcess(PS_MAIN, ['--port', '0']);
    servers.push(ps.child);
    const echo = await startProcess(ECHO_MAIN, []);
    servers.push(echo.child);
    const admin = await ParamClient.connect(ps.address);
    try {
      await admin.createModel(MODEL, { size: traffic.features, optimizer: { type: 'sgd', learningRate: 0.01 }, sync: { mode: 'async' } });
    } finally {
      await admin.close();
    }
    for (const clients of clientsList) {
      log(`W = ${clients}: echo ...`);
      const e = await runClients('echo', echo.address, clients, durationMs, traffic.file);
      log(`W = ${clients}: parameter server ...`);
      const p = await runClients('ps', ps.address, clients, durationMs, traffic.file);
      const pairsPerSec = p.pairs / (durationMs / 1000);
      const echoPairsPerSec = e.pairs / (durationMs / 1000);
      rows.push({ clients, pairsPerSec, p50Ms: percentile(p.latencies, 50), p99Ms: percentile(p.latencies, 99), echoPairsPerSec, ratio: pairsPerSec / echoPairsPerSec });
    }
  } finally {
    await Promise.all(servers.map(stopProcess));
    rmSync(work, { recursive: true, force: true });
  }
  const indicesPerPair = Math.round(traffic.indicesPerBatch);
  const table = formatTable(
    ['clients', 'pairs/s', 'p50 ms', 'p99 ms', 'echo pairs/s', 'ratio'],
    rows.map((r) => [r.clients, Math.round(r.pairsPerSec), r.p50Ms.toFixed(3), r.p99Ms.toFixed(3), Math.round(r.echoPairsPerSec), r.ratio.toFixed(2)]),
  );
  let training: PsTrainRow[] = [];
  let trainingTable = '';
  if ((opts.trainRows ?? 200_000) > 0) {
    const t = await benchPsTraining({ rows: opts.trainRows ?? 200_000, epochs: opts.trainEpochs ?? 3, log });
    training = t.rows;
    const bsp = training.find((r) => r.algorithm === 'ga-sgd');
    trainingTable = formatTable(
      ['algorithm', 'sync', 'workers', 'epochs', 'test log-loss', 'vs ga-sgd/bsp', 'wall s', 'time / bsp', 'updates/s'],
      training.map((r) => [
        r.algorithm,
        r.sync,
        r.workers,
        r.epochs,
        r.testLogLoss.toFixed(4),
        bsp ? (r.testLogLoss - bsp.testLogLoss >= 0 ? '+' : '') + (r.testLogLoss - bsp.testLogLoss).toFixed(4) : '-',
        r.wallSeconds.toFixed(1),
        bsp ? (r.wallSeconds / bsp.wallSeconds).toFixed(2) : '-',
        Math.round(r.updatesPerSec),
      ]),
    ) + `\nCriteo-like sparse LR, ${opts.trainRows ?? 200_000} rows (90% train), batch 200 per worker, adagrad 0.05; best possible log-loss ${t.bayesLogLoss.toFixed(4)}`;
  }
  mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
  const file = join(DEFAULT_RESULTS_DIR, `ps-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: 'ps', machine: machineInfo(), durationMs, traffic: { batches: traffic.batches, rowsPerBatch: traffic.rowsPerBatch, nnzPerRow: traffic.nnzPerRow, indicesPerBatch: traffic.indicesPerBatch, features: traffic.features }, indicesPerPair, rows, training }, null, 2) + '\n');
  return { rows, training, table, trainingTable, indicesPerPair, nnzPerRow: traffic.nnzPerRow, file };
}
