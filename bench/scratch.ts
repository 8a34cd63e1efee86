/** What a bench that trains needs around it: a scratch CIRRUS_HOME of its own, and its JSON result file. */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../client/index.js';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { machineInfo } from './machine.js';

/** Names the process that made a scratch dir, so a later bench can tell a dead bench's dir. */
const OWNER_FILE = 'owner.pid';
const SCRATCH_PREFIX = 'cirrus-bench-';


/** Removes the scratch dirs of benches that died without cleaning up (killed with SIGKILL). */
function sweepStaleScratch(): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(SCRATCH_PREFIX)) continue;
    const dir = join(tmpdir(), entry);
    let pid: number;
    try {
      pid = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
    } catch {
      continue; // not marked (or not a dir): not ours to judge
    }
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A fresh temp dir for one bench run (cirrus-bench-<name>-*), marked with this process's pid; what
 * earlier benches left when they were killed is swept first. The caller removes it when done.
 */
export function scratchDir(name: string): string {
  sweepStaleScratch();
  const dir = mkdtempSync(join(tmpdir(), `${SCRATCH_PREFIX}${name}-`));
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

/** Runs `body` with CIRRUS_HOME in a fresh temp dir (its embedded store), then restores it and removes the dir. */
export async function withScratchHome<T>(name: string, body: (work: string) => Promise<T>): Promise<T> {
  const work = scratchDir(name);
  const oldHome = process.env.CIRRUS_HOME;
  process.env.CIRRUS_HOME = join(work, '.cirrus');
  try {
    return await body(work);
  } finally {
    if (oldHome === undefined) delete process.env.CIRRUS_HOME;
    else process.env.CIRRUS_HOME = oldHome;
    rmSync(work, { recursive: true, force: true });
  }
}

/** Writes bench/results/<name>-<time>.json with the benchmark's name and the machine; returns the path. */
export function writeResult(name: string, result: object): string {
  mkdirSync(DEFAULT_RESULTS_DIR, { recursive: true });
  const file = join(DEFAULT_RESULTS_DIR, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: name, machine: machineInfo(), ...result }, null, 2) + '\n');
  return file;
}
