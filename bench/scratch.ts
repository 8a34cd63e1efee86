/** What a bench that trains needs around it: a scratch CIRRUS_HOME of its own, and its JSON result file. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RESULTS_DIR } from './channels.js';
import { machineInfo } from './machine.js';

/** Runs `body` with CIRRUS_HOME in a fresh temp dir (its embedded store), then restores it and removes the dir. */
export async function withScratchHome<T>(name: string, body: (work: string) => Promise<T>): Promise<T> {
  const work = mkdtempSync(join(tmpdir(), `cirrus-bench-${name}-`));
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
